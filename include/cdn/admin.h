/* cdn/admin.h - the admin listener every daemon has: GET /healthz, GET /metrics (Prometheus text)
 * and a route table for the program's own endpoints (shop-lb's /backends, ...).
 *
 * Owns: its own h2o configuration and context on the loop it is given (a daemon's main loop), the
 * listening socket. Rules: the admin listener never serves the program's site and the site's
 * listeners never serve admin paths. Routes run on that loop's thread. Anything else is 404 with
 * the list of paths.
 *
 * Locking: a route marked CDN_ADMIN_AUTH_* changes state and needs `Authorization: Bearer TOKEN`
 * with the listener's token (cdn_admin_opts.token, read from a file by the program; compared in
 * constant time). Without the header or with another token: 401 (WWW-Authenticate: Bearer); when
 * the program has no token at all the route is disabled: 403. Each refusal is counted in
 * cdn_admin_refused_total{reason="missing|wrong|no-token"} (when there are metrics). */
#ifndef CDN_ADMIN_H
#define CDN_ADMIN_H

#include <stddef.h>
#include <sys/socket.h>
#include <h2o.h>

#include "cdn/metrics.h"

typedef struct cdn_admin cdn_admin_t;

struct cdn_admin_route {
    const char *path;            /* "/backends" */
    int prefix;                  /* also "/backends/..." (and "/backends?...") */
    /* Answers req (0), or -1: not answered (404). */
    int (*on_req)(h2o_req_t *req, void *data);
    int auth;                    /* CDN_ADMIN_OPEN (0), or who needs the token (below) */
};
enum {
    CDN_ADMIN_OPEN = 0,          /* no token: read-only routes */
    CDN_ADMIN_AUTH_UNSAFE = 1,   /* methods other than GET and HEAD need the token */
    CDN_ADMIN_AUTH_ALL = 2,      /* every method needs the token */
};

struct cdn_admin_opts {
    const struct sockaddr *addr;
    socklen_t addr_len;
    const char *server_name;                 /* the Server header; NULL: h2o's */
    cdn_metrics_t *metrics;                  /* /metrics; NULL: no /metrics */
    void (*before_metrics)(void *data);      /* refresh gauges before a scrape; may be NULL */
    /* /healthz's body: NULL or a NULL callback means "ok\n" (always 200). */
    const char *(*health)(void *data);
    /* Or /healthz's status (e.g. 503 while draining) and body; takes the place of `health` when
     * set. A NULL body means "ok\n". */
    int (*health_status)(void *data, const char **body);
    const struct cdn_admin_route *routes;    /* may be NULL; the table must outlive the listener */
    size_t nroutes;
    void *data;
    const char *token;                       /* the bearer token of CDN_ADMIN_AUTH_* routes; NULL:
                                                those routes answer 403 */
};

/* Listens and serves on loop. NULL with err set. */
cdn_admin_t *cdn_admin_start(h2o_evloop_t *loop, const struct cdn_admin_opts *o, char *err, size_t errlen);
/* On the loop's thread, before the loop goes away. NULL is fine. */
void cdn_admin_free(cdn_admin_t *a);

/* Helpers for handlers (admin routes, and programs that answer /healthz or /metrics on their
 * own port): a text/plain response, and the metrics exposition with the given Cache-Control
 * (NULL: none). */
void cdn_admin_send_text(h2o_req_t *req, int status, const char *reason, const char *body);
void cdn_admin_send_metrics(h2o_req_t *req, cdn_metrics_t *m, const char *cache_control);

/* 1 when the request carries `Authorization: Bearer <token>` (scheme case-insensitive), compared
 * in constant time for a given presented length; 0 otherwise (also for a NULL token). */
int cdn_admin_bearer_ok(const h2o_req_t *req, const char *token);
/* Compares a (alen bytes) with b (blen) in time that depends only on alen: 1 when equal. */
int cdn_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* 1 for 127.0.0.0/8, ::1 and ::ffff:127.x: an admin listener there needs no token to start. */
int cdn_addr_is_loopback(const struct sockaddr *sa);
/* The first line of a token file: at least 16 visible ASCII characters (no spaces), at most 255,
 * into buf. 0, or -1 with a reason in err. */
int cdn_token_read(const char *path, char *buf, size_t cap, char *err, size_t errlen);

#endif
