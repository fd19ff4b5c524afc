/* origin/lb/admin.c - shop-lb's admin listener (cdn/admin.h: /healthz, /metrics, and /backends
 * to see, drain, enable, remove and add backends) and its metrics. The admin runs on the main
 * thread, where pools only grow. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/admin.h"
#include "cdn/rlshare.h"
#include "origin/lb/lbd.h"
#include "origin/shop/shop.h"

static void admin_backends_json(struct shop_buf *b)
{
    shop_buf_printf(b, "{\"pools\":[");
    for (size_t i = 0; i < lb.npools; i++) {
        struct pool *p = &lb.pools[i];
        lb_refresh_members(p);
        shop_buf_printf(b, "%s{\"name\":", i ? "," : "");
        shop_buf_json(b, p->name);
        shop_buf_printf(b, ",\"algo\":\"%s\",\"backends\":[", lb_algo_names[p->algo]);
        int first = 1;
        for (size_t k = 0; k < p->n; k++) {
            struct backend *be = &p->be[k];
            if (be->removed)
                continue;
            shop_buf_printf(b, "%s{\"addr\":", first ? "" : ",");
            shop_buf_json(b, be->addr);
            shop_buf_printf(b, ",\"state\":\"%s\",\"weight\":%u,\"effective_weight\":%.2f,\"active\":%u,"
                               "\"requests\":%llu,\"errors\":%llu}",
                            be->drained ? "drained" : be->up ? "up" : "down", p->m[k].weight, p->m[k].eff_weight,
                            p->m[k].active, (unsigned long long)be->requests, (unsigned long long)be->errors);
            first = 0;
        }
        shop_buf_printf(b, "]}");
    }
    shop_buf_printf(b, "]}\n");
}

static void backends_list(h2o_req_t *req)
{
    struct shop_buf b;
    shop_buf_init(&b, 1 << 20);
    lb_lock();
    admin_backends_json(&b);
    lb_unlock();
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("application/json"), 1);
    req->res.content_length = b.len;
    h2o_send_inline(req, b.p ? b.p : "", b.len);
    shop_buf_free(&b);
}

/* POST /backends/<pool>?add=<addr>[&weight=N] */
static void backend_add(h2o_req_t *req, struct pool *pool)
{
    char addr[160], w[16], err[256];
    h2o_iovec_t q = req->query_at != SIZE_MAX ? h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1)
                                             : h2o_iovec_init("", 0);
    if (shop_query_get(q.base, q.len, "add", addr, sizeof(addr)) <= 0) {
        lb_send_plain(req, 400, "Bad Request", "expected ?add=host:port\n");
        return;
    }
    unsigned weight = 1;
    if (shop_query_get(q.base, q.len, "weight", w, sizeof(w)) > 0)
        weight = (unsigned)strtoul(w, NULL, 10);
    int rc = -1;
    if (weight >= 1 && weight <= 1000) {
        lb_lock();
        rc = lb_backend_add(pool, addr, weight, err, sizeof(err));
        lb_unlock();
    }
    if (rc != 0) {
        lb_send_plain(req, 400, "Bad Request", weight < 1 || weight > 1000 ? "weight must be 1..1000\n"
                                                                          : h2o_strdup(&req->pool, err, SIZE_MAX).base);
        return;
    }
    cdn_notice("admin: added %s to pool %s", addr, pool->name);
    lb_send_plain(req, 200, "OK", "added\n");
}

/* POST /backends/<pool>/<addr>/(drain|enable|remove): a is "<addr>/<verb>", up to end. */
static void backend_action(h2o_req_t *req, struct pool *pool, const char *a, const char *end)
{
    const char *verb = memrchr(a, '/', (size_t)(end - a));
    if (verb == NULL) {
        lb_send_plain(req, 404, "Not Found", "expected /backends/<pool>/<addr>/<drain|enable|remove>\n");
        return;
    }
    lb_lock();
    struct backend *be = lb_backend_find(pool, a, (size_t)(verb - a));
    if (be == NULL) {
        lb_unlock();
        lb_send_plain(req, 404, "Not Found", "no such backend\n");
        return;
    }
    verb++;
    size_t vl = (size_t)(end - verb);
    int known = 1;
    if (h2o_memis(verb, vl, H2O_STRLIT("drain")))
        be->drained = 1;
    else if (h2o_memis(verb, vl, H2O_STRLIT("enable"))) {
        if (be->drained)
            be->up_since = cdn_now_ms(); /* back from a drain: slow start again */
        be->drained = 0;
    } else if (h2o_memis(verb, vl, H2O_STRLIT("remove")))
        lb_backend_remove(be);
    else
        known = 0;
    lb_unlock(); /* every worker's next pick sees the change */
    if (!known) {
        lb_send_plain(req, 404, "Not Found", "unknown action\n");
        return;
    }
    cdn_notice("admin: %.*s %s/%s", (int)vl, verb, pool->name, be->addr);
    lb_send_plain(req, 200, "OK", "done\n");
}

/* GET /backends; POST /backends/<pool>/<addr>/(drain|enable|remove);
 * POST /backends/<pool>?add=<addr>[&weight=N] */
static int on_backends(h2o_req_t *req, void *data)
{
    const char *p = req->path_normalized.base;
    size_t len = req->path_normalized.len;
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
              h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    int post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    (void)data;
    if (len < 9 || memcmp(p, "/backends", 9) != 0)
        return -1;
    if (get && len == 9) {
        backends_list(req);
        return 0;
    }
    if (!post || len <= 10 || p[9] != '/')
        return -1;
    const char *rest = p + 10, *end = p + len;
    const char *slash = memchr(rest, '/', (size_t)(end - rest));
    char pname[64];
    size_t pl = (size_t)((slash ? slash : end) - rest);
    /* the admin handler runs on the main thread; pools only grow there */
    struct pool *pool = NULL;
    if (pl > 0 && pl < sizeof(pname)) {
        memcpy(pname, rest, pl);
        pname[pl] = '\0';
        pool = lb_pool_find(pname);
    }
    if (pool == NULL)
        lb_send_plain(req, 404, "Not Found", "no such pool\n");
    else if (slash == NULL)
        backend_add(req, pool);
    else
        backend_action(req, pool, slash + 1, end);
    return 0;
}

static double retired_configs(void *data)
{
    (void)data;
    return lb.d != NULL ? (double)cdn_daemon_retired(lb.d) : 0;
}

static double redis_up(void *data)
{
    (void)data;
    double n = 0;
    for (unsigned i = 0; i < MAX_THREADS; i++)
        if (__atomic_load_n(&lb.workers[i].rls, __ATOMIC_ACQUIRE) != NULL)
            n += cdn_rlshare_up(lb.workers[i].rls);
    return n;
}

int lb_metrics_init(void)
{
    const char *be_labels[] = {"pool", "backend", NULL};
    const char *st_labels[] = {"status", NULL};
    const char *ck_labels[] = {"result", NULL};
    lb.metrics = cdn_metrics_new();
    if (lb.metrics == NULL || cdn_metrics_add_process(lb.metrics, "shop_lb") != 0)
        return -1;
    lb.m_be_requests = cdn_metrics_counter(lb.metrics, "shop_lb_backend_requests_total", "Attempts sent to a backend", be_labels);
    lb.m_be_errors = cdn_metrics_counter(lb.metrics, "shop_lb_backend_errors_total", "Connect errors, timeouts and 5xx of a backend", be_labels);
    lb.m_be_up = cdn_metrics_gauge(lb.metrics, "shop_lb_backend_up", "1 when the backend is healthy", be_labels);
    lb.m_be_breaker = cdn_metrics_gauge(lb.metrics, "shop_lb_backend_breaker", "Circuit breaker of the backend: 0 closed, 1 open, 2 half-open", be_labels);
    lb.m_be_active = cdn_metrics_gauge(lb.metrics, "shop_lb_backend_active", "Requests in flight to the backend", be_labels);
    lb.m_be_latency = cdn_metrics_histogram(lb.metrics, "shop_lb_backend_duration_seconds", "Attempt duration per backend",
                                            be_labels, cdn_metrics_latency_buckets, cdn_metrics_latency_nbuckets);
    lb.m_requests = cdn_metrics_counter(lb.metrics, "shop_lb_requests_total", "Client requests answered, by status", st_labels);
    lb.m_retries = cdn_metrics_counter(lb.metrics, "shop_lb_retries_total", "Requests retried on another backend", NULL);
    lb.m_checks = cdn_metrics_counter(lb.metrics, "shop_lb_health_checks_total", "Active health checks by result", ck_labels);
    const char *th_labels[] = {"thread", NULL};
    lb.m_thread_requests = cdn_metrics_counter(lb.metrics, "shop_lb_thread_requests_total", "Proxied requests per worker thread", th_labels);
    if (!lb.m_thread_requests || !lb.m_be_requests || !lb.m_be_errors || !lb.m_be_up || !lb.m_be_active || !lb.m_be_latency || !lb.m_requests ||
        !lb.m_retries || !lb.m_checks)
        return -1;
    lb.m_reloads = cdn_metrics_counter(lb.metrics, "shop_lb_reloads_total", "Configuration reloads (SIGHUP) by result", ck_labels);
    if (lb.m_reloads == NULL ||
        cdn_metrics_gauge_fn(lb.metrics, "shop_lb_config_retired", "Replaced configurations not freed yet", retired_configs, NULL) != 0)
        return -1;
    lb.m_rl = cdn_metrics_counter(lb.metrics, "shop_lb_ratelimit_requests_total", "Requests under rate_limit, admitted or refused (429)", (const char *[]){"result", NULL});
    lb.m_rl_by = cdn_metrics_counter(lb.metrics, "shop_lb_ratelimit_decisions_total", "Rate-limit decisions by who made them: redis (shared), local (no redis configured), or the local table because redis was down, slow or in error", (const char *[]){"by", NULL});
    if (lb.m_rl == NULL || lb.m_rl_by == NULL ||
        cdn_metrics_gauge_fn(lb.metrics, "shop_lb_ratelimit_redis_up", "Workers connected to the rate-limit redis", redis_up, NULL) != 0)
        return -1;
    lb.s_rl_allowed = cdn_metric_series(lb.m_rl, (const char *[]){"allowed", NULL});
    lb.s_rl_limited = cdn_metric_series(lb.m_rl, (const char *[]){"limited", NULL});
    for (int i = 0; i < 4; i++)
        lb.s_rl_by[i] = cdn_metric_series(lb.m_rl_by, (const char *[]){cdn_rlshare_by_names[i], NULL});
    lb.s_rl_by[LB_RL_BY_LOCAL] = cdn_metric_series(lb.m_rl_by, (const char *[]){"local", NULL});
    lb.s_retries = cdn_metric_plain(lb.m_retries);
    lb.s_hedges = cdn_metric_plain(cdn_metrics_counter(lb.metrics, "shop_lb_hedges_total",
        "Idempotent requests also sent to a second backend: no first byte within timeouts.hedge", NULL));
    lb.s_reload_ok = cdn_metric_series(lb.m_reloads, (const char *[]){"ok", NULL});
    lb.s_reload_err = cdn_metric_series(lb.m_reloads, (const char *[]){"error", NULL});
    return 0;
}

static const char *health_text(void *data)
{
    (void)data;
    return lb_stopping() ? "stopping\n" : "ok\n";
}

/* GET /backends is open; changing them (POST) needs the admin token (cdn/admin.h: 401 without
 * it, 403 when shop-lb has none), and an admin address off loopback needs a token to start. */
cdn_admin_t *lb_admin_start(char *err, size_t errlen)
{
    static const struct cdn_admin_route routes[] = {{"/backends", 1, on_backends, CDN_ADMIN_AUTH_UNSAFE}};
    static char token[256];
    char why[300];
    if (lb.conf.admin_token_file != NULL &&
        cdn_token_read(lb.conf.admin_token_file, token, sizeof(token), why, sizeof(why)) < 0) {
        snprintf(err, errlen, "admin_token_file %s", why);
        return NULL;
    }
    if (lb.conf.admin_token_file == NULL && !cdn_addr_is_loopback((const struct sockaddr *)&lb.conf.admin.ss)) {
        snprintf(err, errlen, "the admin listener is not on loopback: it needs a token (admin_token_file: or "
                              "--admin-token-file) so that nobody else can change the backends");
        return NULL;
    }
    struct cdn_admin_opts o = {.addr = (const struct sockaddr *)&lb.conf.admin.ss, .addr_len = lb.conf.admin.len,
                               .server_name = PROG, .metrics = lb.metrics, .health = health_text,
                               .routes = routes, .nroutes = 1,
                               .token = lb.conf.admin_token_file != NULL ? token : NULL};
    return cdn_admin_start(lb.loop, &o, err, errlen);
}
