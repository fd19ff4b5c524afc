/* lib/httpc_h1.h - internal: cdn_httpc's HTTP/1.1 engine on h2o sockets (lib/httpc_h1.c).
 *
 * lib/httpc.c hands it the plain requests it takes (h1c_accepts: http://, GET or HEAD, no body)
 * when the client was made with cdn_httpc_opts.h1_engine; everything else stays on libcurl.
 * Its requests are cdn_httpc_req_t handles to callers; httpc.c tells them apart by their first
 * word (H1C_REQ_MAGIC) and passes cancel/pause/info here. The engine keeps the contract of
 * cdn/httpc.h and docs/HTTPC.md on its own: its own re-entrancy guard, timers, keep-alive pool.
 * It uses nothing of httpc.c (the URL fuzz harness compiles httpc.c into itself). */
#ifndef CDN_HTTPC_H1_H
#define CDN_HTTPC_H1_H

#include <string.h>
#include "cdn/httpc.h"

#define H1C_REQ_MAGIC 0x48315251u /* "H1RQ" */

typedef struct h1c h1c_t;

struct h1c_opts {
    cdn_resolver_t *resolver;
    const char *local_ip; /* already checked by httpc.c */
    uint64_t connect_timeout_ms, timeout_ms, max_body; /* defaults applied */
    long max_host_conns, max_idle_conns;
};

/* The streaming chunked decoder (httpc_h1.c; tests/fuzz/fuzz_httpc_chunked.c): zeroed to start.
 * Looks at buf[0..len) without changing it: 1 with a piece of body at buf[*skip], *n bytes
 * (consume *skip + *n); 0 when more bytes are needed and 2 at the end of the message (consume
 * *skip either way); -1 on bad framing. */
struct h1c_chunked {
    int st;
    uint64_t left;
    int digits;
};
int h1c_chunk_next(struct h1c_chunked *d, const char *buf, size_t len, size_t *skip, size_t *n);

h1c_t *h1c_new(h2o_evloop_t *loop, const struct h1c_opts *o);
/* Cancels everything silently; safe inside any callback of the engine (finished on the way out). */
void h1c_free(h1c_t *c);
/* 1 when the engine can take req (its URL already split by httpc.c into host and port, http://). */
int h1c_accepts(const struct cdn_httpc_request *req);
/* fetch_cb non-NULL: cdn_httpc_fetch (the body is collected). NULL only when the client closes
 * or memory runs out. */
cdn_httpc_req_t *h1c_start(h1c_t *c, const struct cdn_httpc_request *req, const char *host, long port,
                           const struct cdn_httpc_cbs *cbs, cdn_httpc_fetch_cb fetch_cb, void *data);
void h1c_cancel(cdn_httpc_req_t *r);
void h1c_pause(cdn_httpc_req_t *r, int paused);
const struct cdn_httpc_info *h1c_info(const cdn_httpc_req_t *r);
size_t h1c_inflight(const h1c_t *c);

static inline int h1c_is_req(const cdn_httpc_req_t *r)
{
    uint32_t m;
    memcpy(&m, (const void *)r, sizeof(m));
    return m == H1C_REQ_MAGIC;
}

#endif
