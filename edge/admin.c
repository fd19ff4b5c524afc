/* edge/admin.c - cdn-edge's admin listener (cdn/admin.h: /healthz, answering 503 while draining,
 * and /metrics) with its own routes: /purge?url=URL or ?tag=TAG, /drain and /undrain; and the
 * edge's metrics. Runs on the main thread's loop (worker 0's); the draining flag is an atomic that
 * the workers read (the public /healthz a child edge checks). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/admin.h"
#include "cdn/http.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "edge/admin.h"
#include "edge/purge/cmd.h"
#include "edge/http/accept.h"

static int send_text(h2o_req_t *req, int status, const char *body)
{
    const char *r = cdn_http_reason(status);
    cdn_admin_send_text(req, status, r != NULL ? r : "Bad Request", body);
    return 0;
}

static int draining(const struct edge_server *s) { return __atomic_load_n(&s->draining, __ATOMIC_RELAXED); }

/* /healthz: 503 while draining, so that health checkers move traffic away. */
static int health_status(void *data, const char **body)
{
    int d = draining(data);
    *body = d ? "draining\n" : "ok\n";
    return d ? 503 : 200;
}

/* Drain: health checkers (cdn-health, cdn-dns, child edges) see 503 and move traffic away while
 * this edge still serves whatever reaches it, so that nothing in flight fails.
 * GET /drain shows the state; POST /drain starts; DELETE /drain or POST /undrain ends. */
static int drain(h2o_req_t *req, struct edge_server *s, int undrain_path)
{
    h2o_iovec_t m = req->method;
    int set = -1;
    if (h2o_memis(m.base, m.len, H2O_STRLIT("POST")))
        set = !undrain_path;
    else if (h2o_memis(m.base, m.len, H2O_STRLIT("DELETE")) && !undrain_path)
        set = 0;
    else if (!h2o_memis(m.base, m.len, H2O_STRLIT("GET")) && !h2o_memis(m.base, m.len, H2O_STRLIT("HEAD")))
        return send_text(req, 405, "POST, DELETE or GET\n");
    if (set >= 0 && __atomic_exchange_n(&s->draining, set, __ATOMIC_RELAXED) != set)
        cdn_log(CDN_LOG_INFO, "admin: %s", set ? "draining: /healthz answers 503" : "undrained: /healthz answers 200");
    return send_text(req, 200, draining(s) ? "draining\n" : "serving\n");
}

static int on_drain(h2o_req_t *req, void *data) { return drain(req, data, 0); }
static int on_undrain(h2o_req_t *req, void *data) { return drain(req, data, 1); }

/* The value of name in a query (percent-decoded into a pool copy), or NULL. */
static const char *query_arg(h2o_req_t *req, const char *name, size_t *vl)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *e = amp ? amp : end;
        if ((size_t)(e - q) > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            size_t l = (size_t)(e - q - nl - 1);
            char *v = h2o_mem_alloc_pool(&req->pool, l + 1);
            ssize_t d = cdn_pct_decode(q + nl + 1, l, v, l + 1, CDN_PCT_PLUS);
            if (d < 0)
                return NULL;
            v[d] = '\0';
            *vl = (size_t)d;
            return v;
        }
        q = amp ? amp + 1 : end;
    }
    return NULL;
}

/* /purge?url=URL, ?prefix=HOST/PATH, ?tag=TAG, ?all=HOST (each with &soft=1 for a soft purge), or
 * ?cmd=COMMAND (the bus's text form, edge/purge/cmd.h). Applied at once, locally; "purged N". Any
 * method (the token is checked before, cdn/admin.h). */
static int on_purge(h2o_req_t *req, void *data)
{
    struct edge_server *s = data;
    static const char *const kinds[] = {"url", "prefix", "tag", "all"};
    char text[EDGE_PURGE_TEXT_MAX + 32];
    size_t vl = 0, tl = 0;
    const char *v = query_arg(req, "cmd", &vl);
    if (v != NULL && vl < sizeof(text)) {
        memcpy(text, v, vl);
        tl = vl;
    }
    for (int k = 0; v == NULL && k < 4; k++)
        if ((v = query_arg(req, kinds[k], &vl)) != NULL) {
            size_t sl = 0;
            const char *soft = query_arg(req, "soft", &sl);
            int w = snprintf(text, sizeof(text), "%s %s %s", soft && sl == 1 && soft[0] == '1' ? "soft" : "hard",
                             kinds[k], v);
            tl = w > 0 && (size_t)w < sizeof(text) ? (size_t)w : sizeof(text);
        }
    if (v == NULL)
        return send_text(req, 400, "purge?url=URL, ?prefix=HOST/PATH, ?tag=TAG, ?all=HOST (&soft=1), or ?cmd=COMMAND\n");
    struct edge_purge_cmd *c = malloc(sizeof(*c));
    char err[160], body[200];
    if (c == NULL)
        return send_text(req, 503, "out of memory\n");
    if (edge_purge_parse(text, tl, &s->conf.key, c, err, sizeof(err)) < 0) {
        free(c);
        snprintf(body, sizeof(body), "bad purge: %s\n", err);
        return send_text(req, 400, body);
    }
    size_t n = edge_store_purge(s->store, c, (int64_t)(cdn_wall_now() * 1000.0));
    free(c);
    cdn_counter_add(s->m_purged, n);
    snprintf(body, sizeof(body), "purged %zu\n", n);
    return send_text(req, 200, body);
}

/* purge and drain change state: they need the admin token (cdn/admin.h); GET /drain only shows */
static const struct cdn_admin_route routes[] = {
    {"/purge", 0, on_purge, CDN_ADMIN_AUTH_ALL},
    {"/drain", 0, on_drain, CDN_ADMIN_AUTH_UNSAFE},
    {"/undrain", 0, on_undrain, CDN_ADMIN_AUTH_ALL},
};

cdn_admin_t *edge_admin_start(h2o_evloop_t *loop, struct edge_server *s, const struct sockaddr *addr, socklen_t len,
                              char *err, size_t errlen)
{
    struct cdn_admin_opts o = {.addr = addr, .addr_len = len, .metrics = s->metrics, .health_status = health_status,
                               .routes = routes, .nroutes = sizeof(routes) / sizeof(routes[0]), .data = s,
                               .token = s->conf.admin_token};
    return cdn_admin_start(loop, &o, err, errlen);
}

static double g_ram_bytes(void *d) { return (double)edge_store_bytes(((struct edge_server *)d)->store, EDGE_TIER_RAM); }
static double g_disk_bytes(void *d) { return (double)edge_store_bytes(((struct edge_server *)d)->store, EDGE_TIER_DISK); }
static double g_ram_objs(void *d) { return (double)edge_store_count(((struct edge_server *)d)->store, EDGE_TIER_RAM); }
static double g_disk_objs(void *d) { return (double)edge_store_count(((struct edge_server *)d)->store, EDGE_TIER_DISK); }
static double disk_health(void *d, int which)
{
    int full;
    uint64_t errors, refused;
    edge_store_disk_health(((struct edge_server *)d)->store, &full, &errors, &refused);
    return which == 0 ? full : which == 1 ? (double)errors : (double)refused;
}
static double g_disk_full(void *d) { return disk_health(d, 0); }
static double g_disk_errors(void *d) { return disk_health(d, 1); }
static double g_disk_refused(void *d) { return disk_health(d, 2); }
static double disk_log(void *d, int which)
{
    uint64_t bytes, cleaned;
    edge_store_disk_log(((struct edge_server *)d)->store, &bytes, &cleaned);
    return which == 0 ? (double)bytes : (double)cleaned;
}
static double g_disk_log_bytes(void *d) { return disk_log(d, 0); }
static double g_disk_cleaned(void *d) { return disk_log(d, 1); }
static double g_purge_refused(void *d) { return (double)edge_store_refused(((struct edge_server *)d)->store); }
static double g_draining(void *d) { return draining(d) ? 1.0 : 0.0; }
static double g_rl_keys(void *d)
{
    const struct edge_server *s = d;
    return s->rl ? (double)cdn_rl_keys(s->rl) : 0.0;
}

void edge_server_metrics_init(struct edge_server *s)
{
    cdn_metrics_t *m = s->metrics = cdn_metrics_new();
    static const char *const cache_l[] = {"result", NULL}, *const tier_l[] = {"tier", NULL};
    static const char *const req_l[] = {"result", "tier", NULL}, *const up_l[] = {"upstream", NULL};
    (void)cache_l;
    if (m != NULL && cdn_metrics_add_process(m, "edge") != 0)
        cdn_warn("metrics: process_* and edge_build_info not registered");
    cdn_metric_t *req = cdn_metrics_counter(m, "edge_requests_total", "Requests by cache result and the tier that answered", req_l);
    const char *names[] = {"hit", "miss", "stale", "revalidated", "pass", "error", "purge"};
    const char *tiers[] = {"ram", "rocksdb", "parent", "origin", "none"};
    /* only the combinations that happen, so that a scrape shows no impossible series */
    for (int i = 0; i < 7; i++)
        for (int t = 0; t < 5; t++) {
            int from_cache = t <= 1, upstream = t == 2 || t == 3;
            int ok = (i == 0 && from_cache) || (i == 2 && (from_cache || t == 4)) ||
                     ((i == 1 || i == 3 || i == 4) && upstream) || ((i == 5 || i == 6) && t == 4);
            s->m_req[i][t] = ok ? cdn_metric_series(req, (const char *const[]){names[i], tiers[t]}) : NULL;
        }
    cdn_metric_t *fe = cdn_metrics_counter(m, "edge_fetches_total", "Requests sent upstream, by upstream kind", up_l);
    s->m_fetch[0] = cdn_metric_series(fe, (const char *const[]){"parent"});
    s->m_fetch[1] = cdn_metric_series(fe, (const char *const[]){"origin"});
    s->m_parent_down = cdn_metric_plain(cdn_metrics_counter(m, "edge_parent_down_total", "Times a parent was marked down (connection failed)", NULL));
    s->m_mirror = cdn_metric_plain(cdn_metrics_counter(m, "edge_collapsed_other_worker_total", "Requests that joined a fetch another worker thread owns (also in edge_collapsed_total)", NULL));
    s->m_loop = cdn_metric_plain(cdn_metrics_counter(m, "edge_loops_total", "Requests refused with 508 (CDN-Loop names this edge)", NULL));
    s->m_h2_resets = cdn_metric_plain(cdn_metrics_counter(m, "edge_h2_resets_total", "HTTP/2 streams the client reset before their response was complete", NULL));
    s->m_send_timeout = cdn_metric_plain(cdn_metrics_counter(m, "edge_send_timeouts_total", "Responses ended because the client took nothing of them for send_timeout (a zero HTTP/2 window, an undrained socket)", NULL));
    s->m_h2_empty_goaway = cdn_metric_plain(cdn_metrics_counter(m, "edge_h2_empty_goaway_total", "HTTP/2 connections sent GOAWAY (ENHANCE_YOUR_CALM) and closed for more than h2_empty_frame_limit empty frames a second", NULL));
    s->m_h2_goaway = cdn_metric_plain(cdn_metrics_counter(m, "edge_h2_reset_goaway_total", "HTTP/2 connections sent GOAWAY (ENHANCE_YOUR_CALM) for resetting streams faster than h2_reset_limit", NULL));
    s->m_orphan_drop = cdn_metric_plain(cdn_metrics_counter(m, "edge_fetch_orphan_dropped_total", "Fetches dropped from the max_fetches queue: every client waiting for them had gone", NULL));
    s->m_rl_limited = cdn_metric_plain(cdn_metrics_counter(m, "edge_ratelimit_limited_total", "Requests refused with 429 by a rate_limit", NULL));
    s->m_bad_request = cdn_metric_plain(cdn_metrics_counter(m, "edge_bad_request_total", "HTTP/1 requests refused with 400 by the strict framing check (RFC 9112: Host, Content-Length, Transfer-Encoding, obs-fold)", NULL));
    s->m_purge_refused = cdn_metric_plain(cdn_metrics_counter(m, "edge_purge_refused_total", "PURGE requests on a public listener refused: not enabled on the vhost (405), not from its networks (403), no or a wrong token (401)", NULL));
    s->m_backlog_hits = cdn_metric_plain(cdn_metrics_counter(m, "edge_purge_backlog_hits_total", "Hits served before the purge bus's backlog was applied (purge_bus start: serve; Cache-Status ...; purge-backlog)", NULL));
    s->m_bad_host = cdn_metric_plain(cdn_metrics_counter(m, "edge_bad_host_total", "Requests refused with 400: invalid or missing Host / :authority", NULL));
    static const char *const fmt_l[] = {"format", NULL};
    cdn_metric_t *imf = cdn_metrics_counter(m, "edge_image_requests_total", "Requests on image_paths by the format their Accept was normalised to", fmt_l);
    for (int f = 0; f < EDGE_IMGFMT_N; f++)
        s->m_imgfmt[f] = cdn_metric_series(imf, (const char *const[]){edge_imgfmt_name[f]});
    cdn_metric_t *th = cdn_metrics_counter(m, "edge_tier_hits_total", "Hits by tier", tier_l);
    s->m_tier_hit[EDGE_TIER_NONE] = cdn_metric_series(th, (const char *const[]){"none"});
    s->m_tier_hit[EDGE_TIER_RAM] = cdn_metric_series(th, (const char *const[]){"ram"});
    s->m_tier_hit[EDGE_TIER_DISK] = cdn_metric_series(th, (const char *const[]){"rocksdb"});
    s->m_origin = cdn_metric_plain(cdn_metrics_counter(m, "edge_origin_fetches_total", "Requests sent to an origin directly (not via a parent)", NULL));
    s->m_origin_err = cdn_metric_plain(cdn_metrics_counter(m, "edge_origin_errors_total", "Origin fetches without a response", NULL));
    s->m_collapsed = cdn_metric_plain(cdn_metrics_counter(m, "edge_collapsed_total", "Requests that joined a fetch in flight", NULL));
    s->m_bytes = cdn_metric_plain(cdn_metrics_counter(m, "edge_body_bytes_sent_total", "Body bytes sent to clients", NULL));
    s->m_hit_bytes = cdn_metric_plain(cdn_metrics_counter(m, "edge_hit_body_bytes_sent_total", "Body bytes sent to clients from this edge's cache (hits and stale answers; with edge_body_bytes_sent_total the byte hit ratio)", NULL));
    s->m_purged = cdn_metric_plain(cdn_metrics_counter(m, "edge_purged_objects_total", "Objects removed by purge or invalidation", NULL));
    s->m_corrupt = cdn_metric_plain(cdn_metrics_counter(m, "edge_corrupt_objects_total", "Stored objects that failed their checksum", NULL));
    s->m_queued = cdn_metric_plain(cdn_metrics_counter(m, "edge_fetch_queued_total", "Origin fetches that waited for a max_fetches slot", NULL));
    s->m_busy = cdn_metric_plain(cdn_metrics_counter(m, "edge_fetch_busy_total", "Origin fetches refused with 503: no max_fetches slot within the connect timeout", NULL));
    s->m_parent_5xx = cdn_metric_plain(cdn_metrics_counter(m, "edge_parent_errors_total", "Parent answers 5xx/508 passed over for the next parent or the origin", NULL));
    s->m_check_down = cdn_metric_plain(cdn_metrics_counter(m, "edge_parent_check_down_total", "Times the active health check marked a parent down", NULL));
    s->m_expired = cdn_metric_plain(cdn_metrics_counter(m, "edge_expired_total", "Objects removed by the expiry sweep (stale beyond their stale-while-revalidate/stale-if-error windows)", NULL));
    s->m_interim = cdn_metric_plain(cdn_metrics_counter(m, "edge_interim_responses_total", "Interim (1xx) responses from upstream forwarded to clients", NULL));
    s->m_stored = cdn_metric_plain(cdn_metrics_counter(m, "edge_stored_objects_total", "Objects written to the store", NULL));
    s->m_latency = cdn_metric_plain(cdn_metrics_histogram(m, "edge_request_duration_seconds", "Request duration", NULL,
                                                          cdn_metrics_latency_buckets, cdn_metrics_latency_nbuckets));
    cdn_metrics_gauge_fn(m, "edge_ram_bytes", "Bytes in the RAM tier", g_ram_bytes, s);
    cdn_metrics_gauge_fn(m, "edge_disk_bytes", "Bytes in the RocksDB tier", g_disk_bytes, s);
    cdn_metrics_gauge_fn(m, "edge_ram_objects", "Objects in the RAM tier", g_ram_objs, s);
    cdn_metrics_gauge_fn(m, "edge_disk_objects", "Objects in the RocksDB tier", g_disk_objs, s);
    cdn_metrics_gauge_fn(m, "edge_disk_full", "1 while the RocksDB tier is read-only after a failed write (a full disk), until there is room", g_disk_full, s);
    cdn_metrics_gauge_fn(m, "edge_disk_write_errors_total", "Writes to the RocksDB tier that failed", g_disk_errors, s);
    cdn_metrics_gauge_fn(m, "edge_disk_log_bytes", "Bytes of the disk tier's body log files (live records and garbage not yet cleaned)", g_disk_log_bytes, s);
    cdn_metrics_gauge_fn(m, "edge_disk_segments_cleaned_total", "Body log segments cleaned (live records moved, the file removed)", g_disk_cleaned, s);
    cdn_metrics_gauge_fn(m, "edge_disk_refused_total", "Objects not written to the disk tier because it was full or its writer was 64 MiB behind", g_disk_refused, s);
    cdn_metrics_gauge_fn(m, "edge_ratelimit_keys", "Client keys the rate limiter holds now (at most rate_limit_keys)", g_rl_keys, s);
    cdn_metrics_gauge_fn(m, "edge_purge_fill_refused_total", "Objects not stored because they may have been born before a purge that covers them (a fill in flight, a parent's copy)", g_purge_refused, s);
    cdn_metrics_gauge_fn(m, "edge_draining", "1 while draining (admin POST /drain): /healthz answers 503", g_draining, s);
}
