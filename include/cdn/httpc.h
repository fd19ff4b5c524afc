/* cdn/httpc.h - an asynchronous HTTP client: libcurl's multi-socket API on an h2o evloop.
 *
 * Owns: one curl multi per loop (per thread), a pool of reusable easy handles, the socket watches
 * and the timer. Names are resolved with cdn/resolver.h (c-ares) and handed to curl with
 * CURLOPT_RESOLVE, never by curl's threaded resolver. Nothing blocks the loop.
 *
 * A request streams: on_head once with the status and headers, on_body for each chunk, then
 * on_done exactly once (errstr NULL when the response completed). Returning non-zero from
 * on_head/on_body aborts the transfer (on_done then gets "aborted"). After cdn_httpc_cancel() no
 * callback runs. Bodies above max_body fail with "response too large". errstr is for people;
 * what went wrong, for a program to act on, is the cdn_httpc_info's `error` (enum
 * cdn_httpc_error), valid inside on_done like the rest of it. */
#ifndef CDN_HTTPC_H
#define CDN_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "cdn/resolver.h"

typedef struct cdn_httpc cdn_httpc_t;
typedef struct cdn_httpc_req cdn_httpc_req_t;

struct cdn_httpc_opts {
    cdn_resolver_t *resolver;   /* NULL: only IP-literal URLs (and "localhost") work */
    const char *local_ip;       /* source address for connections, or NULL */
    uint64_t connect_timeout_ms;/* 0 = 3000 */
    uint64_t timeout_ms;        /* whole transfer; 0 = 30000 */
    uint64_t max_body;          /* 0 = 64 MiB */
    long max_host_conns;        /* 0 = no limit */
    long max_idle_conns;        /* kept-alive connections kept open (all hosts); 0 = 256 */
    int http2;                  /* allow HTTP/2 (ALPN h2; for http:// h2c via "Upgrade: h2c", since
                                   libcurl 7.88.1 breaks reuse of prior-knowledge connections) */
    int insecure_tls;           /* do not verify certificates (lab self-signed) */
    int h1_engine;              /* plain http:// GET/HEAD without a body go to the HTTP/1.1 engine
                                   on h2o sockets (lib/httpc_h1.c) instead of libcurl: same contract,
                                   about half the CPU (docs/HTTPC.md "Two engines"); 0 = libcurl only */
};

struct cdn_httpc_header {
    const char *name;  size_t name_len;
    const char *value; size_t value_len;
};

struct cdn_httpc_request {
    const char *method;               /* NULL = GET */
    const char *url;
    const char *const *headers;       /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;                 /* copied; NULL for none */
    size_t body_len;
    uint64_t timeout_ms;              /* 0 = the client's default */
    const char *connect_to;           /* "ip:port": connect there whatever the URL says */
};

struct cdn_httpc_cbs {
    /* http_version: 10, 11, 20. headers valid only during the call. */
    int (*on_head)(cdn_httpc_req_t *r, int status, int http_version,
                   const struct cdn_httpc_header *headers, size_t nheaders, void *data);
    int (*on_body)(cdn_httpc_req_t *r, const void *buf, size_t len, void *data);
    void (*on_done)(cdn_httpc_req_t *r, const char *errstr, void *data);
    /* Optional: an interim response (1xx other than 100 and 101, e.g. 103 Early Hints) before the
     * final head, for a proxy to forward (RFC 9110 15.2). 100 Continue answers curl's own Expect
     * and is not passed. headers valid only during the call. */
    void (*on_info)(cdn_httpc_req_t *r, int status, const struct cdn_httpc_header *headers, size_t nheaders,
                    void *data);
};

/* What ended a transfer, for a caller to decide on (retry elsewhere, 502 or 504...). */
enum cdn_httpc_error {
    CDN_HTTPC_OK = 0,
    CDN_HTTPC_REFUSED,       /* connection refused: nothing listens (the request was not sent) */
    CDN_HTTPC_CONNECT,       /* could not connect otherwise (unreachable, no route) */
    CDN_HTTPC_CONNECT_TIMEOUT, /* no connection within the connect timeout */
    CDN_HTTPC_DNS,           /* the name did not resolve */
    CDN_HTTPC_TLS,           /* handshake or certificate */
    CDN_HTTPC_TIMEOUT,       /* the transfer's deadline passed after connecting */
    CDN_HTTPC_RESET,         /* the connection broke: reset, closed early, nothing or part sent back */
    CDN_HTTPC_PROTOCOL,      /* a response that is not valid HTTP */
    CDN_HTTPC_TOO_LARGE,     /* head or body over its limit */
    CDN_HTTPC_ABORTED,       /* on_head / on_body said stop */
    CDN_HTTPC_INTERNAL,      /* out of memory, curl's own errors */
};
/* "refused", "timeout"... (for logs and metrics labels). */
const char *cdn_httpc_error_name(enum cdn_httpc_error e);

/* Details of a finished transfer, valid inside on_done. */
struct cdn_httpc_info {
    enum cdn_httpc_error error;
    int status;
    uint64_t body_bytes;
    double total_s, connect_s, ttfb_s;
    char primary_ip[64];
    long new_connections;  /* 0 when a kept-alive connection was reused */
};

cdn_httpc_t *cdn_httpc_new(h2o_evloop_t *loop, const struct cdn_httpc_opts *opts, char *err, size_t errlen);
/* Cancels what is in flight (no callbacks) and frees everything. */
void cdn_httpc_free(cdn_httpc_t *c);
/* NULL only on a bad argument (errstr says why through on_done is not used then). */
cdn_httpc_req_t *cdn_httpc_start(cdn_httpc_t *c, const struct cdn_httpc_request *req,
                                 const struct cdn_httpc_cbs *cbs, void *data);
void cdn_httpc_cancel(cdn_httpc_req_t *r);
/* Flow control: stop reading the body (the consumer is slow) and start again. */
void cdn_httpc_pause(cdn_httpc_req_t *r, int paused);
const struct cdn_httpc_info *cdn_httpc_info(const cdn_httpc_req_t *r);
size_t cdn_httpc_inflight(const cdn_httpc_t *c);

/* Buffered convenience: the whole body collected (up to max_body), for health checks and tests.
 * body is valid only during the call. */
typedef void (*cdn_httpc_fetch_cb)(const char *errstr, int status, const void *body, size_t len,
                                   const struct cdn_httpc_info *info, void *data);
cdn_httpc_req_t *cdn_httpc_fetch(cdn_httpc_t *c, const struct cdn_httpc_request *req,
                                 cdn_httpc_fetch_cb cb, void *data);

#endif
