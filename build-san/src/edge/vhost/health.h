/* edge/vhost/health.h - active health checks of parent edges.
 *
 * Every interval, each distinct parent URL of the vhost table gets `GET <url><path>` (default
 * /healthz) with our CDN-Loop entry, so that a cdn-edge parent answers it itself (handler.c) rather
 * than forwarding it. `fall` failed checks in a row (no answer within the timeout, or a status
 * outside 200-399) mark the parent down for every vhost that lists it (edge_parent.check_down, which
 * edge_parent_pick skips); `rise` good checks in a row mark it up again (cdn/risefall.h, the rule
 * every health check shares). Parents start up.
 *
 * Runs on one loop (the main thread's) with its own HTTP client; the marks are atomics read by
 * the workers. edge_health_set() swaps in a new vhost table (SIGHUP) keeping each URL's state. */
#ifndef EDGE_HEALTH_H
#define EDGE_HEALTH_H

#include <stdint.h>
#include <h2o.h>

#include "cdn/metrics.h"
#include "edge/vhost/vhost.h"

struct edge_health_conf {
    uint64_t interval_ms;  /* 0: no checks */
    uint64_t timeout_ms;   /* per check; 0: the interval */
    unsigned rise, fall;   /* 0 counts as 1 */
    const char *path;      /* "/healthz" */
    const char *cache_name;/* "cdn-edge-NAME", sent in CDN-Loop */
    const char *edge_key;  /* sent as CDN-Edge-Key so that the parent knows us, or NULL */
};

struct edge_health;
struct edge_health *edge_health_new(h2o_evloop_t *loop, const struct edge_health_conf *c, cdn_series_t *m_down,
                                    char *err, size_t errlen);
/* Checks the parents of vs from now on (in-flight checks of the old table are cancelled). */
void edge_health_set(struct edge_health *h, const struct edge_vhosts *vs);
void edge_health_free(struct edge_health *h);

#endif
