/* edge/main.c - cdn-edge: options and config, listeners (HTTP/1.1 + h2c, TLS with ALPN h2),
 * worker threads (one h2o loop each), the admin listener (/healthz, /metrics, /purge, /drain) on
 * the main thread, signals and graceful stop.
 *
 * Quick mode: cdn-edge -a 127.0.0.1:8080 -b http://127.0.0.1:8000 [-d DIR] [--tls ADDR --cert F --key F]
 * Without -d the RocksDB tier lives in a fresh temporary folder removed at exit. */
#include "config.h"
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cdn/config.h"
#include "cdn/http.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/proc.h"
#include "edge/edge.h"
#include "edge/vhost/health.h"
#include "edge/vhost/vhconf.h"

#define MAX_LISTEN 8

struct listen_spec {
    struct sockaddr_storage ss;
    socklen_t len;
    int tls;
};

static struct {
    struct listen_spec listen[MAX_LISTEN];
    int nlisten;
    struct sockaddr_storage admin;
    socklen_t admin_len;
    const char *cert, *key, *dir, *pid_file, *access_log;
    uint64_t ram_bytes, disk_bytes;
    int ram_policy;
    int test_only;
    char tmpdir[PATH_MAX];
    const char *parents[EDGE_MAX_PARENTS + 1];
    size_t nparents;
    int parent_only;
    unsigned max_fetches;
    struct cdn_conf_list file_vhosts;
    const char *config;          /* -c FILE, re-read on SIGHUP */
    const cdn_conf_node_t *cert_node, *key_node; /* where the file set cert / key (for errors) */
    struct {                     /* the command line's share, before the file (for reloads) */
        const char *origin;
        size_t nparents;
        int parent_only;
        unsigned max_fetches;
    } cli;
    struct edge_health_conf health;
} opt;

static struct edge_server srv;
static volatile int stopping;
static SSL_CTX *ssl_ctx;

struct worker_thread {
    struct edge_worker w;
    pthread_t tid;
    h2o_accept_ctx_t actx[MAX_LISTEN];
    h2o_socket_t *ls[MAX_LISTEN];
    int fds[MAX_LISTEN];
    h2o_globalconf_t *conf;
};

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        h2o_accept(listener->data, sock);
}

/* Runs on the worker's thread (cdn/loop.h keeps per-thread state for its loops) once every
 * worker has left its loop (stop_barrier): no loop runs any more, so no owner publishes to a
 * feed and no message reaches a queue that is going away. What was still in flight at the 5 s
 * deadline is cancelled without callbacks (its fetch state is not freed). */
static pthread_barrier_t stop_barrier;

static void worker_dispose(struct worker_thread *t)
{
    h2o_evloop_t *loop = t->w.ctx.loop;
    for (int i = 0; i < opt.nlisten; i++)
        if (t->ls[i] == NULL) /* never wrapped: the worker failed before its loop ran */
            close(t->fds[i]);
    edge_worker_dispose(&t->w);
    cdn_httpc_free(t->w.httpc);
    if (t->w.srv != NULL) {
        h2o_multithread_unregister_receiver(t->w.ctx.queue, &t->w.recv);
        edge_idmap_free(&t->w.fetches);
    }
    h2o_evloop_run(loop, 0); /* frees the sockets closed above */
    /* idle keep-alive connections (clients, a child's health checks) are still open: expire
     * their timeouts now, which closes them (h2o 2.2.5 has no call that closes them all) */
    h2o_context_t *ctx = &t->w.ctx;
    h2o_timeout_t *tos[] = {&ctx->zero_timeout, &ctx->one_sec_timeout, &ctx->hundred_ms_timeout,
                            &ctx->handshake_timeout, &ctx->http1.req_timeout, &ctx->http2.idle_timeout,
                            &ctx->http2.graceful_shutdown_timeout};
    for (int round = 0; round < 8 && !(h2o_linklist_is_empty(&ctx->http1._conns) &&
                                       h2o_linklist_is_empty(&ctx->http2._conns)); round++) {
        for (size_t i = 0; i < sizeof(tos) / sizeof(tos[0]); i++)
            h2o_timeout_run(loop, tos[i], UINT64_MAX / 2);
        h2o_evloop_run(loop, 0);
    }
    if (!h2o_linklist_is_empty(&ctx->http1._conns) || !h2o_linklist_is_empty(&ctx->http2._conns)) {
        cdn_warn("worker: connections still busy at exit; their memory is left to the OS");
        return;
    }
    /* h2o 2.2.5: h2o_context_request_shutdown links this entry and nothing unlinks it, and
     * h2o_context_dispose asserts that its timeouts are empty */
    if (h2o_timeout_is_linked(&t->w.ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&t->w.ctx.http2._graceful_shutdown_timeout);
    h2o_multithread_queue_t *q = t->w.ctx.queue;
    h2o_context_dispose(&t->w.ctx);
    free(q); /* h2o 2.2.5's h2o_multithread_destroy_queue does not free the queue itself */
    h2o_evloop_run(loop, 0);
    cdn_loop_dispose(loop);
    h2o_evloop_destroy(loop);
}

static void *worker_main(void *arg)
{
    struct worker_thread *t = arg;
    char err[256];
    h2o_context_init(&t->w.ctx, h2o_evloop_create(), t->conf);
    if (edge_worker_init(&t->w, &srv, err, sizeof(err)) < 0) {
        cdn_err("worker: %s", err);
        pthread_barrier_wait(&stop_barrier);
        worker_dispose(t);
        return NULL;
    }
    for (int i = 0; i < opt.nlisten; i++) {
        t->actx[i].ctx = &t->w.ctx;
        t->actx[i].hosts = t->conf->hosts;
        t->actx[i].ssl_ctx = opt.listen[i].tls ? ssl_ctx : NULL;
        t->ls[i] = h2o_evloop_socket_create(t->w.ctx.loop, t->fds[i], H2O_SOCKET_FLAG_DONT_READ);
        t->ls[i]->data = &t->actx[i];
        h2o_socket_read_start(t->ls[i], on_accept);
    }
    int closed = 0;
    uint64_t stop_at = 0;
    for (;;) {
        h2o_evloop_run(t->w.ctx.loop, 100);
        if (stopping && !closed) {
            /* stop accepting; let what is in flight finish (bounded) */
            for (int i = 0; i < opt.nlisten; i++) {
                h2o_socket_read_stop(t->ls[i]);
                h2o_socket_close(t->ls[i]);
            }
            h2o_context_request_shutdown(&t->w.ctx);
            closed = 1;
            stop_at = cdn_now_ms() + 5000;
        }
        if (closed && (cdn_httpc_inflight(t->w.httpc) == 0 || cdn_now_ms() > stop_at))
            break;
    }
    pthread_barrier_wait(&stop_barrier);
    worker_dispose(t);
    return NULL;
}

/* --- admin: /healthz, /metrics, /purge?url=URL or ?tag=TAG, /drain --- */
static int admin_send(h2o_req_t *req, int status, const char *ctype, const char *body, size_t len)
{
    req->res.status = status;
    const char *r = cdn_http_reason(status);
    req->res.reason = r != NULL ? r : "Bad Request";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    char *b = h2o_mem_alloc_pool(&req->pool, len ? len : 1);
    memcpy(b, body, len);
    h2o_send_inline(req, b, len);
    return 0;
}

/* Drain: health checkers (cdn-health, cdn-dns, child edges) see 503 and move traffic away while
 * this edge still serves whatever reaches it, so that nothing in flight fails.
 * GET /drain shows the state; POST /drain starts; DELETE /drain or POST /undrain ends. */
static int admin_drain(h2o_req_t *req, int undrain_path)
{
    h2o_iovec_t m = req->method;
    int set = -1;
    if (h2o_memis(m.base, m.len, H2O_STRLIT("POST")))
        set = !undrain_path;
    else if (h2o_memis(m.base, m.len, H2O_STRLIT("DELETE")) && !undrain_path)
        set = 0;
    else if (!h2o_memis(m.base, m.len, H2O_STRLIT("GET")) && !h2o_memis(m.base, m.len, H2O_STRLIT("HEAD")))
        return admin_send(req, 405, "text/plain", "POST, DELETE or GET\n", 20);
    if (set >= 0 && __atomic_exchange_n(&srv.draining, set, __ATOMIC_RELAXED) != set)
        cdn_log(CDN_LOG_INFO, "admin: %s", set ? "draining: /healthz answers 503" : "undrained: /healthz answers 200");
    if (__atomic_load_n(&srv.draining, __ATOMIC_RELAXED))
        return admin_send(req, 200, "text/plain", "draining\n", 9);
    return admin_send(req, 200, "text/plain", "serving\n", 8);
}

static int on_admin(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t p = req->path_normalized;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/healthz"))) {
        if (__atomic_load_n(&srv.draining, __ATOMIC_RELAXED))
            return admin_send(req, 503, "text/plain", "draining\n", 9);
        return admin_send(req, 200, "text/plain", "ok\n", 3);
    }
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/drain")))
        return admin_drain(req, 0);
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/undrain")))
        return admin_drain(req, 1);
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/metrics"))) {
        size_t len;
        char *m = cdn_metrics_render(srv.metrics, &len);
        if (m == NULL)
            return admin_send(req, 500, "text/plain", "render failed\n", 14);
        int r = admin_send(req, 200, "text/plain; version=0.0.4", m, len);
        free(m);
        return r;
    }
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/purge")) && req->query_at != SIZE_MAX) {
        const char *q = req->path.base + req->query_at + 1;
        size_t ql = req->path.len - req->query_at - 1;
        char *v = h2o_mem_alloc_pool(&req->pool, ql + 1);
        size_t n = 0;
        char body[64];
        if (ql > 4 && memcmp(q, "tag=", 4) == 0) {
            size_t vl = (size_t)cdn_pct_decode(q + 4, ql - 4, v, ql + 1, CDN_PCT_PLUS);
            n = edge_store_purge_tag(srv.store, v, vl);
        } else if (ql > 4 && memcmp(q, "url=", 4) == 0) {
            size_t vl = (size_t)cdn_pct_decode(q + 4, ql - 4, v, ql + 1, CDN_PCT_PLUS);
            /* scheme://host/target -> primary key */
            const char *sep = strstr(v, "://");
            const char *path = sep ? strchr(sep + 3, '/') : NULL;
            char key[EDGE_KEY_MAX];
            int kl = -1;
            if (sep && path) {
                char scheme[8];
                snprintf(scheme, sizeof(scheme), "%.*s", (int)(sep - v), v);
                kl = edge_key_primary(&srv.conf.key, scheme, sep + 3, (size_t)(path - sep - 3), path,
                                      vl - (size_t)(path - v), key, sizeof(key));
            }
            if (kl < 0)
                return admin_send(req, 400, "text/plain", "bad url\n", 8);
            n = edge_store_purge_url(srv.store, key, (size_t)kl);
        } else {
            return admin_send(req, 400, "text/plain", "purge?url=URL or purge?tag=TAG\n", 31);
        }
        cdn_counter_add(srv.m_purged, n);
        int l = snprintf(body, sizeof(body), "purged %zu\n", n);
        return admin_send(req, 200, "text/plain", body, (size_t)l);
    }
    return admin_send(req, 404, "text/plain", "not found\n", 10);
}

static double g_ram_bytes(void *d) { return (double)edge_store_bytes(srv.store, EDGE_TIER_RAM); }
static double g_disk_bytes(void *d) { return (double)edge_store_bytes(srv.store, EDGE_TIER_DISK); }
static double g_ram_objs(void *d) { return (double)edge_store_count(srv.store, EDGE_TIER_RAM); }
static double g_disk_objs(void *d) { return (double)edge_store_count(srv.store, EDGE_TIER_DISK); }
static double g_draining(void *d) { return __atomic_load_n(&srv.draining, __ATOMIC_RELAXED) ? 1.0 : 0.0; }

void edge_server_metrics_init(struct edge_server *s)
{
    cdn_metrics_t *m = s->metrics = cdn_metrics_new();
    static const char *const cache_l[] = {"result", NULL}, *const tier_l[] = {"tier", NULL};
    static const char *const req_l[] = {"result", "tier", NULL}, *const up_l[] = {"upstream", NULL};
    (void)cache_l;
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
    s->m_h2_goaway = cdn_metric_plain(cdn_metrics_counter(m, "edge_h2_reset_goaway_total", "HTTP/2 connections sent GOAWAY (ENHANCE_YOUR_CALM) for resetting streams faster than h2_reset_limit", NULL));
    s->m_orphan_drop = cdn_metric_plain(cdn_metrics_counter(m, "edge_fetch_orphan_dropped_total", "Fetches dropped from the max_fetches queue: every client waiting for them had gone", NULL));
    s->m_bad_host = cdn_metric_plain(cdn_metrics_counter(m, "edge_bad_host_total", "Requests refused with 400: invalid or missing Host / :authority", NULL));
    cdn_metric_t *th = cdn_metrics_counter(m, "edge_tier_hits_total", "Hits by tier", tier_l);
    s->m_tier_hit[EDGE_TIER_NONE] = cdn_metric_series(th, (const char *const[]){"none"});
    s->m_tier_hit[EDGE_TIER_RAM] = cdn_metric_series(th, (const char *const[]){"ram"});
    s->m_tier_hit[EDGE_TIER_DISK] = cdn_metric_series(th, (const char *const[]){"disk"});
    s->m_origin = cdn_metric_plain(cdn_metrics_counter(m, "edge_origin_fetches_total", "Requests sent to an origin directly (not via a parent)", NULL));
    s->m_origin_err = cdn_metric_plain(cdn_metrics_counter(m, "edge_origin_errors_total", "Origin fetches without a response", NULL));
    s->m_collapsed = cdn_metric_plain(cdn_metrics_counter(m, "edge_collapsed_total", "Requests that joined a fetch in flight", NULL));
    s->m_bytes = cdn_metric_plain(cdn_metrics_counter(m, "edge_body_bytes_sent_total", "Body bytes sent to clients", NULL));
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
    cdn_metrics_gauge_fn(m, "edge_ram_bytes", "Bytes in the RAM tier", g_ram_bytes, NULL);
    cdn_metrics_gauge_fn(m, "edge_disk_bytes", "Bytes in the RocksDB tier", g_disk_bytes, NULL);
    cdn_metrics_gauge_fn(m, "edge_ram_objects", "Objects in the RAM tier", g_ram_objs, NULL);
    cdn_metrics_gauge_fn(m, "edge_disk_objects", "Objects in the RocksDB tier", g_disk_objs, NULL);
    cdn_metrics_gauge_fn(m, "edge_draining", "1 while draining (admin POST /drain): /healthz answers 503", g_draining, NULL);
}

static void reload_vhosts(void);
static void on_signal(int signo, void *data)
{
    if (signo == SIGTERM || signo == SIGINT)
        stopping = 1;
    else if (signo == SIGHUP) {
        cdn_log_reopen();
        if (srv.alog)
            cdn_alog_reopen(srv.alog);
        reload_vhosts();
    }
}

/* The expiry sweep runs on the main thread: the store is thread-safe and the pass takes the
 * RocksDB tier's lock in small steps, so no worker waits long. */
static void on_sweep(cdn_timer_t *t, void *data)
{
    size_t n = edge_store_expire(srv.store, (int64_t)time(NULL), (int64_t)srv.conf.expire_keep_s);
    if (n > 0) {
        cdn_counter_add(srv.m_expired, n);
        cdn_debug("expiry sweep: %zu objects removed", n);
    }
    cdn_timer_start(t, srv.conf.expire_sweep_ms);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cdn-edge -a ADDR:PORT -b ORIGIN-URL [options]\n"
            "       cdn-edge -c FILE [-t]\n"
            "  -a, --listen ADDR:PORT   plain listener: HTTP/1.1 and h2c (prior knowledge); repeatable\n"
            "  -b, --backend URL        origin base URL (http://127.0.0.1:8000): the default vhost\n"
            "      --parent URL         parent (shield) edge; repeatable (rendezvous hashing by key)\n"
            "      --parent-only        never go to the origin directly (502 when no parent is up)\n"
            "      --parent-retry MS    skip a parent that refused connections this long (default 10000)\n"
            "      --parent-check MS    GET /healthz on each parent this often (default 5000; 0: off);\n"
            "                           2 failures in a row mark it down, 2 successes up again\n"
            "      --served-by NAME     add X-Served-By: NAME to every response\n"
            "      --tls ADDR:PORT      TLS listener (ALPN h2, http/1.1); needs --cert and --key\n"
            "      --cert FILE, --key FILE\n"
            "  -A, --admin ADDR:PORT    admin listener: /healthz /metrics /purge?url=|tag= /drain (default none)\n"
            "  -d, --dir DIR            RocksDB folder (default: a fresh temporary folder)\n"
            "  -s, --ram SIZE           RAM tier bytes (default 256MiB)\n"
            "  -S, --disk SIZE          RocksDB tier bytes (default 4GiB)\n"
            "      --expire-sweep MS    remove objects stale beyond their stale-while-revalidate /\n"
            "                           stale-if-error windows this often (default 60000; 0: never)\n"
            "      --expire-keep S      ... and keep objects with a validator S seconds longer, for\n"
            "                           a cheap 304 revalidation (default 0)\n"
            "      --range-fetch-above SIZE  a Range miss on an object known to be larger asks\n"
            "                           upstream for the range only, uncached (default 0: whole)\n"
            "      --policy P           RAM eviction policy: s3fifo (default), sieve or lru\n"
            "  -n, --name NAME          cache name in Cache-Status: cdn-edge-NAME (default edge); an\n"
            "                           token: a letter, then letters, digits or !#$%%&'*+-.^_`|~\n"
            "  -w, --workers N          worker threads (default: number of CPUs)\n"
            "      --edge-cc NAME       edge-specific targeted Cache-Control field (RFC 9213)\n"
            "      --drop-param NAME    query parameter left out of cache keys (prefix*); repeatable\n"
            "      --sort-params        sort query parameters in cache keys\n"
            "      --timeout MS         origin transfer timeout (default 30000)\n"
            "      --connect-timeout MS origin connect timeout (default 3000); also bounds the wait\n"
            "                           for a fetch slot (--max-fetches)\n"
            "      --max-fetches N      concurrent requests to each origin (default 256, 0 = no\n"
            "                           limit); more wait in a FIFO queue, then 503\n"
            "      --h2-reset-limit N   HTTP/2 streams a client may reset per connection per second\n"
            "                           before GOAWAY (default 100, 0 = no bound)\n"
            "      --edge-key KEY       shared by the edges of one CDN: sent to parents, and what\n"
            "                           makes a request another edge's (CDN-Edge-Key; none: no one)\n"
            "      --edge-key-file FILE the same, read from FILE's first line (not shown by ps)\n"
            "  -p, --pid-file FILE\n"
            "      --access-log FILE    JSON lines access log (- for stdout)\n"
            "  -c, --config FILE        YAML config (see docs/EDGE.md)\n"
            "  -t, --test               check the configuration and exit\n"
            "  -l, --log-level LEVEL    debug|info|notice|warn|error\n"
            "  -V, --version, -h, --help\n");
}

/* The cache name goes into Cache-Status (an sf-token, RFC 8941 3.3.4), Via (a pseudonym: a
 * token, RFC 9110 7.6.3) and CDN-Loop (a token, RFC 8586): what all three accept is a letter
 * first, then tchar. */
static int name_ok(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr(tchar, *s) != NULL))
            return 0;
    return 1;
}
#define NAME_RULE "a token: a letter first, then letters, digits or !#$%&'*+-.^_`|~"

/* The first line of a key file (at least 16 visible characters), or NULL. Kept until exit. */
static const char *read_key_file(const char *path)
{
    static char key[256];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *r = fgets(key, sizeof(key), f);
    fclose(f);
    if (r == NULL)
        return NULL;
    key[strcspn(key, "\r\n")] = '\0';
    for (const char *p = key; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return NULL;
    return strlen(key) >= 16 ? key : NULL;
}

static int add_listen(const char *s, int tls)
{
    if (opt.nlisten == MAX_LISTEN)
        return -1;
    struct listen_spec *l = &opt.listen[opt.nlisten];
    if (cdn_parse_addr(s, "127.0.0.1", &l->ss, &l->len) < 0)
        return -1;
    l->tls = tls;
    opt.nlisten++;
    return 0;
}

/* -c FILE: the same settings as the options, as YAML. */
struct file_conf {
    const char *name, *origin, *admin, *dir, *pid_file, *policy, *edge_cc, *cert, *key, *log_level, *served_by,
        *parent_check_path, *edge_key;
    struct cdn_conf_list listen, tls_listen, drop_params, parents, vhosts;
    uint64_t ram, disk, max_object, range_fetch_above, expire_sweep, expire_keep, connect_timeout, timeout, heuristic_max, parent_retry,
        parent_check_interval, parent_check_timeout;
    long long workers, max_fetches, h2_reset_limit, parent_check_rise, parent_check_fall;
    int sort_params, store_set_cookie, parent_only;
};

static const cdn_conf_field_t conf_fields[] = {
    {"name", CDN_CT_STR, offsetof(struct file_conf, name)},
    {"origin", CDN_CT_STR, offsetof(struct file_conf, origin)},
    {"parents", CDN_CT_STRLIST, offsetof(struct file_conf, parents)},
    {"parent_only", CDN_CT_BOOL, offsetof(struct file_conf, parent_only)},
    {"parent_retry", CDN_CT_DURATION, offsetof(struct file_conf, parent_retry)},
    {"served_by", CDN_CT_STR, offsetof(struct file_conf, served_by)},
    {"parent_check_interval", CDN_CT_DURATION, offsetof(struct file_conf, parent_check_interval)},
    {"parent_check_timeout", CDN_CT_DURATION, offsetof(struct file_conf, parent_check_timeout)},
    {"parent_check_rise", CDN_CT_INT, offsetof(struct file_conf, parent_check_rise), 0, 1, 100},
    {"parent_check_fall", CDN_CT_INT, offsetof(struct file_conf, parent_check_fall), 0, 1, 100},
    {"parent_check_path", CDN_CT_STR, offsetof(struct file_conf, parent_check_path)},
    {"vhosts", CDN_CT_CUSTOM, offsetof(struct file_conf, vhosts), 0, 0, 0, 0, 0, NULL, NULL, 0, edge_vhconf_decode},
    {"listen", CDN_CT_STRLIST, offsetof(struct file_conf, listen)},
    {"tls_listen", CDN_CT_STRLIST, offsetof(struct file_conf, tls_listen)},
    {"cert", CDN_CT_STR, offsetof(struct file_conf, cert)},
    {"key", CDN_CT_STR, offsetof(struct file_conf, key)},
    {"admin", CDN_CT_STR, offsetof(struct file_conf, admin)},
    {"dir", CDN_CT_STR, offsetof(struct file_conf, dir)},
    {"pid_file", CDN_CT_STR, offsetof(struct file_conf, pid_file)},
    {"ram", CDN_CT_SIZE, offsetof(struct file_conf, ram)},
    {"disk", CDN_CT_SIZE, offsetof(struct file_conf, disk)},
    {"ram_policy", CDN_CT_STR, offsetof(struct file_conf, policy)},
    {"max_object", CDN_CT_SIZE, offsetof(struct file_conf, max_object)},
    {"range_fetch_above", CDN_CT_SIZE, offsetof(struct file_conf, range_fetch_above)},
    {"expire_sweep", CDN_CT_DURATION, offsetof(struct file_conf, expire_sweep)},
    {"expire_keep", CDN_CT_DURATION, offsetof(struct file_conf, expire_keep)},
    {"workers", CDN_CT_INT, offsetof(struct file_conf, workers), 0, 1, 256},
    {"max_fetches", CDN_CT_INT, offsetof(struct file_conf, max_fetches), 0, 0, 1000000},
    {"edge_key", CDN_CT_STR, offsetof(struct file_conf, edge_key)},
    {"h2_reset_limit", CDN_CT_INT, offsetof(struct file_conf, h2_reset_limit), 0, 0, 1000000},
    {"edge_cache_control", CDN_CT_STR, offsetof(struct file_conf, edge_cc)},
    {"drop_params", CDN_CT_STRLIST, offsetof(struct file_conf, drop_params)},
    {"sort_params", CDN_CT_BOOL, offsetof(struct file_conf, sort_params)},
    {"store_set_cookie", CDN_CT_BOOL, offsetof(struct file_conf, store_set_cookie)},
    {"heuristic_max", CDN_CT_DURATION, offsetof(struct file_conf, heuristic_max)},
    {"connect_timeout", CDN_CT_DURATION, offsetof(struct file_conf, connect_timeout)},
    {"timeout", CDN_CT_DURATION, offsetof(struct file_conf, timeout)},
    {"log_level", CDN_CT_STR, offsetof(struct file_conf, log_level)},
    {NULL},
};

/* What the file's values must be beyond their types, at the offending node: the cache name, the
 * origin's and the parents' schemes, the log level. At start-up and on SIGHUP. */
static int check_file_values(cdn_conf_t *c, const struct file_conf *fc, cdn_conf_err_t *err)
{
    const cdn_conf_node_t *root = cdn_conf_root(c);
    const char *b;
    if (fc->name != NULL && !name_ok(fc->name))
        return cdn_conf_fail(c, cdn_conf_get(root, "name"), err, "name '%s' must be %s", fc->name, NAME_RULE);
    if (fc->origin != NULL) {
        if (edge_url_base(fc->origin, &b) < 0)
            return cdn_conf_fail(c, cdn_conf_get(root, "origin"), err, "origin '%s' must be an http:// or https:// URL",
                                 fc->origin);
        if (b != fc->origin)
            free((char *)b);
    }
    if (fc->parents.n > EDGE_MAX_PARENTS)
        return cdn_conf_fail(c, cdn_conf_get(root, "parents"), err, "at most %d parents", EDGE_MAX_PARENTS);
    for (size_t i = 0; i < fc->parents.n; i++) {
        const char *u = ((const char **)fc->parents.items)[i];
        if (edge_url_base(u, &b) < 0)
            return cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(root, "parents"), i), err,
                                 "parent '%s' must be an http:// or https:// URL", u);
        if (b != u)
            free((char *)b);
    }
    if (fc->log_level != NULL && cdn_log_level_parse(fc->log_level) < 0)
        return cdn_conf_fail(c, cdn_conf_get(root, "log_level"), err, "log_level must be debug, info, notice, warn or error");
    return 0;
}

/* The file's settings as the first load decoded them (conf_run) and the defaults it decoded them
 * over, from the command line and built in (conf_base): a reload decodes the new file over
 * conf_base and compares it with conf_run to name the keys it changed but cannot apply. */
static struct file_conf conf_base, conf_run;

/* The config document: decoded strings point into it, so it lives until exit. */
static cdn_conf_t *conf_doc;
static void conf_doc_free(void)
{
    cdn_conf_free(conf_doc);
    conf_doc = NULL;
}

static int load_config(const char *path, char *err, size_t errlen)
{
    cdn_conf_err_t cerr;
    cdn_conf_t *c = conf_doc = cdn_conf_load_file(path, &cerr);
    if (c == NULL) {
        snprintf(err, errlen, "%s", cerr.msg);
        return -1;
    }
    struct file_conf fc = {.parent_retry = srv.conf.parent_retry_ms, .parent_only = opt.parent_only,
                           .parent_check_interval = opt.health.interval_ms, .parent_check_timeout = opt.health.timeout_ms,
                           .parent_check_rise = opt.health.rise, .parent_check_fall = opt.health.fall,
                           .workers = srv.conf.workers, .max_fetches = opt.max_fetches,
                           .h2_reset_limit = srv.conf.h2_reset_limit, .ram = opt.ram_bytes, .disk = opt.disk_bytes,
                           .max_object = srv.conf.max_object, .range_fetch_above = srv.conf.range_fetch_above,
                           .expire_sweep = srv.conf.expire_sweep_ms, .expire_keep = srv.conf.expire_keep_s * 1000,
                           .connect_timeout = srv.conf.connect_timeout_ms,
                           .timeout = srv.conf.timeout_ms, .heuristic_max = (uint64_t)srv.conf.fresh.heuristic_max * 1000};
    struct file_conf base = fc;
    if (cdn_conf_decode(c, cdn_conf_root(c), conf_fields, &fc, &cerr) < 0) {
        snprintf(err, errlen, "%s", cerr.msg);
        conf_doc_free();
        return -1;
    }
    conf_base = base;
    conf_run = fc;
    /* strings live in the document: keep it for the life of the process */
    if (check_file_values(c, &fc, &cerr) < 0) {
        snprintf(err, errlen, "%s", cerr.msg);
        return -1;
    }
    const cdn_conf_node_t *root = cdn_conf_root(c);
    for (size_t i = 0; i < fc.listen.n; i++)
        if (add_listen(((const char **)fc.listen.items)[i], 0) < 0) {
            cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(root, "listen"), i), &cerr, "bad listen address '%s'%s",
                          ((const char **)fc.listen.items)[i], opt.nlisten == MAX_LISTEN ? " (too many)" : "");
            snprintf(err, errlen, "%s", cerr.msg);
            return -1;
        }
    for (size_t i = 0; i < fc.tls_listen.n; i++)
        if (add_listen(((const char **)fc.tls_listen.items)[i], 1) < 0) {
            cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(root, "tls_listen"), i), &cerr, "bad tls_listen address '%s'%s",
                          ((const char **)fc.tls_listen.items)[i], opt.nlisten == MAX_LISTEN ? " (too many)" : "");
            snprintf(err, errlen, "%s", cerr.msg);
            return -1;
        }
    if (fc.admin && cdn_parse_addr(fc.admin, "127.0.0.1", &opt.admin, &opt.admin_len) < 0) {
        cdn_conf_fail(c, cdn_conf_get(root, "admin"), &cerr, "bad admin address '%s'", fc.admin);
        snprintf(err, errlen, "%s", cerr.msg);
        return -1;
    }
    if (fc.policy && (opt.ram_policy = edge_policy_kind_parse(fc.policy)) < 0) {
        cdn_conf_fail(c, cdn_conf_get(root, "ram_policy"), &cerr, "ram_policy must be s3fifo, sieve or lru");
        snprintf(err, errlen, "%s", cerr.msg);
        return -1;
    }
    if (fc.drop_params.n > 0) {
        const char **d = cdn_conf_alloc(c, (fc.drop_params.n + 1) * sizeof(*d));
        if (d == NULL) {
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        memcpy(d, fc.drop_params.items, fc.drop_params.n * sizeof(*d));
        srv.conf.key.drop_params = d;
    }
    if (fc.cert != NULL)
        opt.cert_node = cdn_conf_get(root, "cert");
    if (fc.key != NULL)
        opt.key_node = cdn_conf_get(root, "key");
    if (fc.log_level && cdn_log_level_parse(fc.log_level) >= 0)
        cdn_log_set_level(cdn_log_level_parse(fc.log_level));
    srv.conf.name = fc.name ? fc.name : srv.conf.name;
    srv.conf.origin = fc.origin ? fc.origin : srv.conf.origin;
    for (size_t i = 0; i < fc.parents.n && opt.nparents < EDGE_MAX_PARENTS + 1; i++)
        opt.parents[opt.nparents++] = ((const char **)fc.parents.items)[i];
    opt.parent_only = fc.parent_only;
    opt.max_fetches = (unsigned)fc.max_fetches;
    opt.health.interval_ms = fc.parent_check_interval;
    opt.health.timeout_ms = fc.parent_check_timeout;
    opt.health.rise = (unsigned)fc.parent_check_rise;
    opt.health.fall = (unsigned)fc.parent_check_fall;
    opt.health.path = fc.parent_check_path ? fc.parent_check_path : opt.health.path;
    opt.file_vhosts = fc.vhosts;
    srv.conf.parent_retry_ms = fc.parent_retry;
    srv.conf.served_by = fc.served_by ? fc.served_by : srv.conf.served_by;
    opt.cert = fc.cert ? fc.cert : opt.cert;
    opt.key = fc.key ? fc.key : opt.key;
    opt.dir = fc.dir ? fc.dir : opt.dir;
    opt.pid_file = fc.pid_file ? fc.pid_file : opt.pid_file;
    opt.ram_bytes = fc.ram;
    opt.disk_bytes = fc.disk;
    srv.conf.max_object = fc.max_object;
    srv.conf.range_fetch_above = fc.range_fetch_above;
    srv.conf.expire_sweep_ms = fc.expire_sweep;
    srv.conf.expire_keep_s = fc.expire_keep / 1000;
    srv.conf.workers = (int)fc.workers;
    srv.conf.h2_reset_limit = (unsigned)fc.h2_reset_limit;
    srv.conf.edge_key = fc.edge_key ? fc.edge_key : srv.conf.edge_key;
    srv.conf.fresh.edge_cc_name = fc.edge_cc ? fc.edge_cc : srv.conf.fresh.edge_cc_name;
    srv.conf.key.sort_params |= fc.sort_params;
    srv.conf.fresh.store_set_cookie = fc.store_set_cookie;
    srv.conf.fresh.heuristic_max = (int64_t)(fc.heuristic_max / 1000);
    srv.conf.connect_timeout_ms = fc.connect_timeout;
    srv.conf.timeout_ms = fc.timeout;
    return 0;
}

/* Vhost tables replaced by a reload: fetches in flight may still point into them, so they are
 * freed only at exit. */
static struct retired_vhosts {
    struct edge_vhosts *vs;
    struct retired_vhosts *next;
} *retired;
static struct edge_health *health;

/* The keys a reload applies; every other key needs a restart. */
static int reload_applies(const char *key)
{
    static const char *const applied[] = {"origin", "vhosts", "parents", "parent_only", "max_fetches", NULL};
    for (size_t i = 0; applied[i] != NULL; i++)
        if (strcmp(key, applied[i]) == 0)
            return 1;
    return 0;
}

/* A field's value as text, for the log ("unset" for an absent string, a list joined by commas). */
static const char *field_text(const cdn_conf_field_t *f, const struct file_conf *fc, char *buf, size_t len)
{
    const char *p = (const char *)fc + f->off;
    switch (f->type) {
    case CDN_CT_STR: snprintf(buf, len, "%s", *(const char *const *)p ? *(const char *const *)p : "unset"); break;
    case CDN_CT_INT: snprintf(buf, len, "%lld", *(const long long *)p); break;
    case CDN_CT_BOOL: snprintf(buf, len, "%s", *(const int *)p ? "true" : "false"); break;
    case CDN_CT_SIZE: snprintf(buf, len, "%llu bytes", (unsigned long long)*(const uint64_t *)p); break;
    case CDN_CT_DURATION: snprintf(buf, len, "%llums", (unsigned long long)*(const uint64_t *)p); break;
    case CDN_CT_STRLIST: {
        const struct cdn_conf_list *l = (const void *)p;
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < l->n && o < len; i++) {
            int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", ((const char *const *)l->items)[i]);
            o += w > 0 ? (size_t)w : 0;
        }
        if (l->n == 0)
            snprintf(buf, len, "none");
        break;
    }
    default: snprintf(buf, len, "?"); break;
    }
    return buf;
}

/* Logs each key whose value in the new file (nfc) differs from the running one (conf_run) that a
 * reload does not apply, the way nginx names what needs a restart. Returns how many. */
static int log_unapplied(const struct file_conf *nfc)
{
    int n = 0;
    for (const cdn_conf_field_t *f = conf_fields; f->key != NULL; f++) {
        if (reload_applies(f->key))
            continue;
        const char *a = (const char *)&conf_run + f->off, *b = (const char *)nfc + f->off;
        int same;
        switch (f->type) {
        case CDN_CT_STR: {
            const char *x = *(const char *const *)a, *y = *(const char *const *)b;
            same = x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
            break;
        }
        case CDN_CT_INT: same = *(const long long *)a == *(const long long *)b; break;
        case CDN_CT_BOOL: same = *(const int *)a == *(const int *)b; break;
        case CDN_CT_SIZE:
        case CDN_CT_DURATION: same = *(const uint64_t *)a == *(const uint64_t *)b; break;
        case CDN_CT_STRLIST: {
            const struct cdn_conf_list *x = (const void *)a, *y = (const void *)b;
            same = x->n == y->n;
            for (size_t i = 0; same && i < x->n; i++)
                same = strcmp(((const char *const *)x->items)[i], ((const char *const *)y->items)[i]) == 0;
            break;
        }
        default: same = 1; break; /* no other type among the keys a reload skips */
        }
        if (!same) {
            char was[128], now[128];
            cdn_warn("reload: '%s' changed (%s -> %s): needs a restart, not applied", f->key,
                     field_text(f, &conf_run, was, sizeof(was)), field_text(f, nfc, now, sizeof(now)));
            n++;
        }
    }
    return n;
}

/* SIGHUP: re-reads the config file and swaps in a new vhost table (origin, vhosts, parents,
 * parent_only, max_fetches). Every other key needs a restart: each one whose value changed is
 * logged as not applied. On any error the running table stays and the error (file:line:col
 * where the document has one) is logged. */
static void reload_vhosts(void)
{
    if (opt.config == NULL) {
        cdn_notice("SIGHUP: no config file (-c) to reload");
        return;
    }
    cdn_conf_err_t cerr;
    char err[512];
    cdn_conf_t *c = cdn_conf_load_file(opt.config, &cerr);
    struct file_conf fc = conf_base;
    if (c == NULL || cdn_conf_decode(c, cdn_conf_root(c), conf_fields, &fc, &cerr) < 0 ||
        check_file_values(c, &fc, &cerr) < 0) {
        cdn_err("reload failed, keeping the running vhosts: %s", cerr.msg);
        cdn_conf_free(c);
        return;
    }
    const char *parents[2 * EDGE_MAX_PARENTS];
    size_t np = 0;
    for (size_t i = 0; i < opt.cli.nparents && np < 2 * EDGE_MAX_PARENTS; i++)
        parents[np++] = opt.parents[i];
    for (size_t i = 0; i < fc.parents.n && np < 2 * EDGE_MAX_PARENTS; i++)
        parents[np++] = ((const char **)fc.parents.items)[i];
    struct edge_vhosts *nv = calloc(1, sizeof(*nv));
    struct retired_vhosts *r = malloc(sizeof(*r));
    if (nv == NULL || r == NULL ||
        edge_vhosts_build(nv, &fc.vhosts, fc.origin ? fc.origin : opt.cli.origin, parents, np, fc.parent_only,
                          (unsigned)fc.max_fetches, err, sizeof(err)) < 0) {
        cdn_err("reload failed, keeping the running vhosts: %s: %s", opt.config, nv && r ? err : "out of memory");
        free(nv);
        free(r);
        cdn_conf_free(c);
        return;
    }
    int unapplied = log_unapplied(&fc);
    cdn_conf_free(c); /* the table owns copies of what it keeps */
    r->vs = __atomic_exchange_n(&srv.conf.vhosts, nv, __ATOMIC_ACQ_REL);
    r->next = retired;
    retired = r;
    if (health != NULL)
        edge_health_set(health, nv);
    if (unapplied > 0)
        cdn_notice("reloaded %s: %zu vhost names%s (applied: origin, vhosts, parents, parent_only, max_fetches); %d "
                   "changed key%s not applied, see above", opt.config, nv->n, nv->dflt ? " and a default" : "", unapplied,
                   unapplied == 1 ? "" : "s");
    else
        cdn_notice("reloaded %s: %zu vhost names%s (applied: origin, vhosts, parents, parent_only, max_fetches)", opt.config,
                   nv->n, nv->dflt ? " and a default" : "");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"listen", 1, NULL, 'a'},  {"backend", 1, NULL, 'b'},    {"tls", 1, NULL, 1},
        {"cert", 1, NULL, 2},      {"key", 1, NULL, 3},          {"admin", 1, NULL, 'A'},
        {"dir", 1, NULL, 'd'},     {"ram", 1, NULL, 's'},        {"disk", 1, NULL, 'S'},
        {"policy", 1, NULL, 4},    {"name", 1, NULL, 'n'},       {"workers", 1, NULL, 'w'},
        {"edge-cc", 1, NULL, 5},   {"drop-param", 1, NULL, 6},   {"sort-params", 0, NULL, 7},
        {"timeout", 1, NULL, 8},   {"connect-timeout", 1, NULL, 9}, {"pid-file", 1, NULL, 'p'},
        {"config", 1, NULL, 'c'},  {"test", 0, NULL, 't'},       {"log-level", 1, NULL, 'l'},
        {"access-log", 1, NULL, 10}, {"parent", 1, NULL, 11}, {"parent-only", 0, NULL, 12},
        {"parent-retry", 1, NULL, 13}, {"served-by", 1, NULL, 14}, {"max-fetches", 1, NULL, 15},
        {"range-fetch-above", 1, NULL, 16}, {"expire-sweep", 1, NULL, 17},
        {"expire-keep", 1, NULL, 19}, {"h2-reset-limit", 1, NULL, 20}, {"edge-key", 1, NULL, 21}, {"edge-key-file", 1, NULL, 22},
        {"parent-check", 1, NULL, 18}, {"version", 0, NULL, 'V'}, {"help", 0, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    static const char *drop[32];
    int ndrop = 0, loglevel = CDN_LOG_INFO;
    const char *config = NULL;
    char err[512];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    srv.conf.name = "edge";
    srv.conf.workers = ncpu > 0 ? (int)ncpu : 1;
    srv.conf.max_object = 64 << 20;
    srv.conf.connect_timeout_ms = 3000;
    srv.conf.timeout_ms = 30000;
    srv.conf.parent_retry_ms = 10000;
    srv.conf.expire_sweep_ms = 60000;
    opt.health = (struct edge_health_conf){.interval_ms = 5000, .timeout_ms = 1000, .rise = 2, .fall = 2,
                                           .path = "/healthz"};
    edge_fresh_conf_default(&srv.conf.fresh);
    srv.conf.key.drop_params = drop;
    opt.ram_bytes = 256ULL << 20;
    opt.disk_bytes = 4ULL << 30;
    opt.ram_policy = EDGE_POLICY_S3FIFO;
    opt.max_fetches = EDGE_MAX_FETCHES_DEFAULT;
    srv.conf.h2_reset_limit = EDGE_H2_RESET_LIMIT_DEFAULT;
    int c;
    while ((c = getopt_long(argc, argv, "a:b:A:d:s:S:n:w:p:c:tl:Vh", lo, NULL)) != -1) {
        switch (c) {
        case 'a':
        case 1:
            if (add_listen(optarg, c == 1) < 0) {
                fprintf(stderr, "cdn-edge: bad listen address '%s'\n", optarg);
                return 2;
            }
            break;
        case 'b': srv.conf.origin = optarg; break;
        case 2: opt.cert = optarg; break;
        case 3: opt.key = optarg; break;
        case 'A':
            if (cdn_parse_addr(optarg, "127.0.0.1", &opt.admin, &opt.admin_len) < 0) {
                fprintf(stderr, "cdn-edge: bad admin address '%s'\n", optarg);
                return 2;
            }
            break;
        case 'd': opt.dir = optarg; break;
        case 's':
        case 'S':
            if (cdn_parse_size(optarg, c == 's' ? &opt.ram_bytes : &opt.disk_bytes) < 0) {
                fprintf(stderr, "cdn-edge: bad size '%s'\n", optarg);
                return 2;
            }
            break;
        case 4:
            if ((opt.ram_policy = edge_policy_kind_parse(optarg)) < 0) {
                fprintf(stderr, "cdn-edge: --policy must be s3fifo, sieve or lru\n");
                return 2;
            }
            break;
        case 'n':
            if (!name_ok(optarg)) {
                fprintf(stderr, "cdn-edge: bad --name '%s': must be %s\n", optarg, NAME_RULE);
                return 2;
            }
            srv.conf.name = optarg;
            break;
        case 'w': srv.conf.workers = atoi(optarg); break;
        case 5: srv.conf.fresh.edge_cc_name = optarg; break;
        case 6:
            if (ndrop < 31)
                drop[ndrop++] = optarg;
            break;
        case 7: srv.conf.key.sort_params = 1; break;
        case 8: srv.conf.timeout_ms = strtoull(optarg, NULL, 10); break;
        case 9: srv.conf.connect_timeout_ms = strtoull(optarg, NULL, 10); break;
        case 'p': opt.pid_file = optarg; break;
        case 10: opt.access_log = optarg; break;
        case 11:
            if (opt.nparents == EDGE_MAX_PARENTS) {
                fprintf(stderr, "cdn-edge: at most %d parents\n", EDGE_MAX_PARENTS);
                return 2;
            }
            opt.parents[opt.nparents++] = optarg;
            break;
        case 12: opt.parent_only = 1; break;
        case 13: srv.conf.parent_retry_ms = strtoull(optarg, NULL, 10); break;
        case 14: srv.conf.served_by = optarg; break;
        case 16:
            if (cdn_parse_size(optarg, &srv.conf.range_fetch_above) < 0) {
                fprintf(stderr, "cdn-edge: bad size '%s'\n", optarg);
                return 2;
            }
            break;
        case 17: srv.conf.expire_sweep_ms = strtoull(optarg, NULL, 10); break;
        case 19: srv.conf.expire_keep_s = strtoull(optarg, NULL, 10); break;
        case 15: opt.max_fetches = (unsigned)strtoul(optarg, NULL, 10); break;
        case 20: srv.conf.h2_reset_limit = (unsigned)strtoul(optarg, NULL, 10); break;
        case 21: srv.conf.edge_key = optarg; break;
        case 22:
            if ((srv.conf.edge_key = read_key_file(optarg)) == NULL) {
                fprintf(stderr, "cdn-edge: --edge-key-file %s: cannot read a key from it\n", optarg);
                return 2;
            }
            break;
        case 'c': config = optarg; break;
        case 18: opt.health.interval_ms = strtoull(optarg, NULL, 10); break;
        case 't': opt.test_only = 1; break;
        case 'l':
            if ((loglevel = cdn_log_level_parse(optarg)) < 0) {
                fprintf(stderr, "cdn-edge: bad log level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'V': cdn_print_version("cdn-edge"); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    cdn_log_open("cdn-edge", NULL, (enum cdn_log_level)loglevel);
    opt.config = config;
    opt.cli.origin = srv.conf.origin;
    opt.cli.nparents = opt.nparents;
    opt.cli.parent_only = opt.parent_only;
    opt.cli.max_fetches = opt.max_fetches;
    if (config != NULL && load_config(config, err, sizeof(err)) < 0) {
        fprintf(stderr, "cdn-edge: %s\n", err);
        return 1;
    }
    /* from here on what is missing or wrong may be the file's doing: with -c it is a bad file (1) */
    int bad = config != NULL ? 1 : 2;
    if ((srv.conf.origin == NULL && opt.file_vhosts.n == 0) || opt.nlisten == 0 || srv.conf.workers < 1 ||
        srv.conf.workers > 256) {
        fprintf(stderr, "cdn-edge: %s%sneed at least one listener (-a%s) and an origin (-b, or origin: or vhosts: in "
                        "the file)%s\n", config ? config : "", config ? ": " : "", config ? " or listen: in the file" : "",
                srv.conf.workers < 1 ||
                srv.conf.workers > 256 ? ", and 1 to 256 workers" : "");
        if (config == NULL)
            usage(stderr);
        return bad;
    }
    if (opt.nparents > EDGE_MAX_PARENTS) {
        fprintf(stderr, "cdn-edge: at most %d parents (--parent and parents: together)\n", EDGE_MAX_PARENTS);
        return bad;
    }
    if ((srv.conf.vhosts = calloc(1, sizeof(*srv.conf.vhosts))) == NULL) {
        fprintf(stderr, "cdn-edge: out of memory\n");
        return 1;
    }
    if (edge_vhosts_build(srv.conf.vhosts, &opt.file_vhosts, srv.conf.origin, opt.parents, opt.nparents,
                          opt.parent_only, opt.max_fetches, err, sizeof(err)) < 0) {
        fprintf(stderr, "cdn-edge: %s\n", err);
        return bad;
    }
    int want_tls = 0;
    for (int i = 0; i < opt.nlisten; i++)
        want_tls |= opt.listen[i].tls;
    if (want_tls) {
        if (opt.cert == NULL || opt.key == NULL) {
            fprintf(stderr, "cdn-edge: a TLS listener needs a certificate and a key (--cert and --key, or cert: "
                            "and key: in the file)\n");
            return bad;
        }
        if ((ssl_ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
            fprintf(stderr, "cdn-edge: cannot make a TLS context: %s\n", ERR_error_string(ERR_get_error(), NULL));
            return 1;
        }
        SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
        int cert_bad = SSL_CTX_use_certificate_chain_file(ssl_ctx, opt.cert) != 1;
        if (cert_bad || SSL_CTX_use_PrivateKey_file(ssl_ctx, opt.key, SSL_FILETYPE_PEM) != 1) {
            /* the place in the file when the file named it; a certificate and key that do not
             * match are the key's fault */
            const char *what = cert_bad ? "certificate" : "key", *file = cert_bad ? opt.cert : opt.key;
            const cdn_conf_node_t *at = cert_bad ? opt.cert_node : opt.key_node;
            char why[256];
            ERR_error_string_n(ERR_get_error(), why, sizeof(why));
            if (at != NULL) {
                cdn_conf_err_t cerr;
                cdn_conf_fail(conf_doc, at, &cerr, "cannot load the %s %s: %s", cert_bad ? "cert" : "key", file, why);
                fprintf(stderr, "cdn-edge: %s\n", cerr.msg);
            } else {
                fprintf(stderr, "cdn-edge: cannot load the %s %s: %s\n", what, file, why);
            }
            SSL_CTX_free(ssl_ctx);
            return 1;
        }
        h2o_ssl_register_alpn_protocols(ssl_ctx, h2o_http2_alpn_protocols);
    }
    if (opt.test_only) {
        printf("cdn-edge: configuration ok\n");
        edge_vhosts_free(srv.conf.vhosts);
        free(srv.conf.vhosts);
        conf_doc_free();
        SSL_CTX_free(ssl_ctx);
        return 0;
    }
    snprintf(srv.cache_name, sizeof(srv.cache_name), "cdn-edge-%s", srv.conf.name);
    snprintf(srv.via, sizeof(srv.via), "1.1 cdn-edge-%s", srv.conf.name);
    if (cdn_signals_block() < 0) {
        fprintf(stderr, "cdn-edge: cannot block signals\n");
        return 1;
    }
    if (opt.dir == NULL) {
        const char *td = getenv("TMPDIR");
        if (td == NULL || *td == '\0')
            td = "/tmp";
        if ((size_t)snprintf(opt.tmpdir, sizeof(opt.tmpdir), "%s/cdn-edge.XXXXXX", td) >= sizeof(opt.tmpdir)) {
            fprintf(stderr, "cdn-edge: TMPDIR too long: %s\n", td);
            return 1;
        }
        if (mkdtemp(opt.tmpdir) == NULL) {
            fprintf(stderr, "cdn-edge: mkdtemp %s: %s\n", opt.tmpdir, strerror(errno));
            opt.tmpdir[0] = '\0';
            return 1;
        }
        opt.dir = opt.tmpdir;
    }
    struct edge_store_conf sc = {opt.ram_bytes, opt.disk_bytes, (enum edge_policy_kind)opt.ram_policy, opt.dir};
    if ((srv.store = edge_store_open(&sc, err, sizeof(err))) == NULL) {
        fprintf(stderr, "cdn-edge: %s\n", err);
        return 1;
    }
    edge_server_metrics_init(&srv);
    if (opt.access_log && (srv.alog = cdn_alog_open(opt.access_log, CDN_ALOG_JSON)) == NULL) {
        fprintf(stderr, "cdn-edge: access log %s: %s\n", opt.access_log, strerror(errno));
        return 1;
    }
    if (opt.pid_file && cdn_pidfile_write(opt.pid_file, err, sizeof(err)) < 0) {
        fprintf(stderr, "cdn-edge: %s\n", err);
        return 1;
    }

    /* public config and listeners: one socket per worker (SO_REUSEPORT) */
    h2o_globalconf_t conf;
    h2o_config_init(&conf);
    conf.server_name = h2o_iovec_init(NULL, 0); /* the origin's Server passes through instead */
    h2o_hostconf_t *hc = h2o_config_register_host(&conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    edge_handler_register(hc, &srv);
    int nw = srv.conf.workers;
    static struct worker_thread *wt; /* static: reachable (for LeakSanitizer) until exit */
    if ((wt = calloc((size_t)nw, sizeof(*wt))) == NULL) {
        fprintf(stderr, "cdn-edge: out of memory\n");
        return 1;
    }
    for (int k = 0; k < nw; k++) {
        wt[k].conf = &conf;
        for (int i = 0; i < opt.nlisten; i++) {
            wt[k].fds[i] = cdn_listen_tcp((struct sockaddr *)&opt.listen[i].ss, opt.listen[i].len, 1, err, sizeof(err));
            if (wt[k].fds[i] < 0) {
                fprintf(stderr, "cdn-edge: %s\n", err);
                return 1;
            }
        }
    }
    /* admin on the main thread */
    h2o_globalconf_t aconf;
    h2o_context_t actx;
    h2o_accept_ctx_t aaccept = {0};
    h2o_config_init(&aconf);
    h2o_hostconf_t *ahc = h2o_config_register_host(&aconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_create_handler(h2o_config_register_path(ahc, "/", 0), sizeof(h2o_handler_t))->on_req = on_admin;
    h2o_context_init(&actx, h2o_evloop_create(), &aconf);
    h2o_socket_t *as = NULL;
    if (opt.admin_len > 0) {
        int afd = cdn_listen_tcp((struct sockaddr *)&opt.admin, opt.admin_len, 0, err, sizeof(err));
        if (afd < 0) {
            fprintf(stderr, "cdn-edge: admin: %s\n", err);
            return 1;
        }
        aaccept.ctx = &actx;
        aaccept.hosts = aconf.hosts;
        as = h2o_evloop_socket_create(actx.loop, afd, H2O_SOCKET_FLAG_DONT_READ);
        as->data = &aaccept;
        h2o_socket_read_start(as, on_accept);
    }
    cdn_signals_t *sigs = cdn_signals_watch(actx.loop, on_signal, NULL);
    if (sigs == NULL) {
        fprintf(stderr, "cdn-edge: cannot watch signals\n");
        return 1;
    }
    pthread_barrier_init(&stop_barrier, NULL, (unsigned)nw);
    cdn_timer_t *sweep = NULL;
    if (srv.conf.expire_sweep_ms > 0 && (sweep = cdn_timer_new(actx.loop, on_sweep, NULL)) != NULL)
        cdn_timer_start(sweep, srv.conf.expire_sweep_ms);
    if (opt.health.interval_ms > 0) {
        opt.health.cache_name = srv.cache_name;
        opt.health.edge_key = srv.conf.edge_key;
        if ((health = edge_health_new(actx.loop, &opt.health, srv.m_check_down, err, sizeof(err))) == NULL) {
            fprintf(stderr, "cdn-edge: parent checks: %s\n", err);
            return 1;
        }
        edge_health_set(health, srv.conf.vhosts);
    }
    cdn_hash_init(); /* the keyed hash's secret, before any worker hashes a key */
    for (int k = 0; k < nw; k++)
        pthread_create(&wt[k].tid, NULL, worker_main, &wt[k]);
    char a0[64];
    cdn_notice("serving %zu vhost names%s on %s (%d workers, store %s)", srv.conf.vhosts->n,
               srv.conf.vhosts->dflt ? " and a default" : "",
               cdn_addr_str((struct sockaddr *)&opt.listen[0].ss, a0, sizeof(a0)), nw, opt.dir);
    while (!stopping)
        h2o_evloop_run(actx.loop, 200);
    cdn_notice("stopping");
    for (int k = 0; k < nw; k++)
        pthread_join(wt[k].tid, NULL); /* each worker disposed its own context and loop */
    pthread_barrier_destroy(&stop_barrier);
    free(wt);
    wt = NULL;
    if (as != NULL)
        h2o_socket_close(as);
    cdn_signals_free(sigs);
    if (sweep != NULL)
        cdn_timer_free(sweep);
    edge_health_free(health);
    health = NULL;
    h2o_evloop_run(actx.loop, 0);
    h2o_multithread_queue_t *aq = actx.queue;
    h2o_context_dispose(&actx);
    free(aq);
    h2o_evloop_run(actx.loop, 0);
    cdn_loop_dispose(actx.loop);
    h2o_evloop_destroy(actx.loop);
    h2o_config_dispose(&aconf);
    h2o_config_dispose(&conf);
    edge_store_close(srv.store); /* waits for queued writes */
    if (srv.alog)
        cdn_alog_close(srv.alog);
    cdn_metrics_free(srv.metrics);
    edge_handler_global_free();
    edge_vhosts_free(srv.conf.vhosts);
    free(srv.conf.vhosts);
    while (retired != NULL) {
        struct retired_vhosts *n = retired->next;
        edge_vhosts_free(retired->vs);
        free(retired->vs);
        free(retired);
        retired = n;
    }
    conf_doc_free();
    if (ssl_ctx != NULL)
        SSL_CTX_free(ssl_ctx);
    if (opt.pid_file)
        cdn_pidfile_remove(opt.pid_file);
    if (opt.tmpdir[0])
        nftw(opt.tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    cdn_notice("stopped");
    return 0;
}
