/* origin/shop/admin.c - shop-app's operations side: its metrics, /healthz and /metrics (served on
 * the app's own listener, never delayed or failed on purpose) and the access log with the
 * request counters and latencies it feeds. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#include "origin/shop/app.h"

static const char *const class_names[C_N] = {"home", "category", "product", "image", "api", "search",
                                             "cart", "health", "metrics", "other", "asset"};

/* Request counters by class and status; series are looked up once and kept. */
static cdn_series_t *status_series(enum app_class cls, int status)
{
    static const int known[] = {200, 206, 304, 400, 401, 404, 405, 413, 416, 500, 503};
    static cdn_series_t *cache[C_N][sizeof(known) / sizeof(known[0])];
    size_t k;
    for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
        if (known[k] == status)
            break;
    cdn_series_t *s = k < sizeof(known) / sizeof(known[0]) ? __atomic_load_n(&cache[cls][k], __ATOMIC_ACQUIRE) : NULL;
    if (s != NULL)
        return s;
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    const char *labels[] = {class_names[cls], st};
    s = cdn_metric_series(app.m_requests, labels);
    if (k < sizeof(known) / sizeof(known[0]))
        __atomic_store_n(&cache[cls][k], s, __ATOMIC_RELEASE);
    return s;
}

void app_on_log_access(h2o_logger_t *logger, h2o_req_t *req)
{
    enum app_class cls = app_classify(req->path_normalized.base, req->path_normalized.len);
    int status = req->res.status;
    struct timeval end;
    (void)logger;
    gettimeofday(&end, NULL);
    const struct timeval *b = &req->timestamps.request_begin_at;
    double secs = (end.tv_sec - b->tv_sec) + (end.tv_usec - b->tv_usec) / 1e6;
    cdn_counter_inc(status_series(cls, status));
    cdn_histogram_observe(app.s_latency[cls], secs < 0 ? 0 : secs);
    if (app.alog == NULL)
        return;
    char peer[CDN_PEER_TEXT_MAX];
    struct cdn_alog_entry e;
    cdn_alog_entry_from_req(req, &e, peer);
    cdn_alog_write(app.alog, &e);
}

void app_on_health(h2o_req_t *req)
{
    app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain");
    app_set_hdr(req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    app_send(req, 200, "OK", H2O_STRLIT("ok\n"));
}

void app_on_metrics(h2o_req_t *req, const struct shop_rule *rule)
{
    size_t len = 0;
    char *text = cdn_metrics_render(app.metrics, &len);
    if (text == NULL) {
        app_send_error(req, 500, "Internal Server Error", "metrics unavailable\n");
        return;
    }
    app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; version=0.0.4");
    app_set_hdr(req, H2O_TOKEN_CACHE_CONTROL, rule && rule->cache_control ? rule->cache_control : "no-store");
    app_send(req, 200, "OK", text, len);
    free(text);
}

static double gauge_img_bytes(void *d) { return (double)shop_imgcache_bytes(app.images); }
static double gauge_img_count(void *d) { return (double)shop_imgcache_count(app.images); }
static double gauge_products(void *d) { return (double)app.conf.products; }

int app_metrics_init(void)
{
    const char *req_labels[] = {"class", "status", NULL};
    const char *lat_labels[] = {"class", NULL};
    app.metrics = cdn_metrics_new();
    if (app.metrics == NULL || cdn_metrics_add_process(app.metrics, "shop") != 0)
        return -1;
    app.m_requests = cdn_metrics_counter(app.metrics, "shop_requests_total", "Requests answered, by class and status", req_labels);
    app.m_latency = cdn_metrics_histogram(app.metrics, "shop_request_duration_seconds",
                                          "Time from request to last byte, by class", lat_labels,
                                          cdn_metrics_latency_buckets, cdn_metrics_latency_nbuckets);
    app.m_renders = cdn_metrics_counter(app.metrics, "shop_image_renders_total", "Images rendered (cache misses)", NULL);
    app.m_img_hits = cdn_metrics_counter(app.metrics, "shop_image_cache_hits_total", "Images served from memory", NULL);
    if (!app.m_requests || !app.m_latency || !app.m_renders || !app.m_img_hits)
        return -1;
    app.s_renders = cdn_metric_plain(app.m_renders);
    app.s_img_hits = cdn_metric_plain(app.m_img_hits);
    for (int i = 0; i < C_N; i++) {
        const char *v[] = {class_names[i]};
        app.s_latency[i] = cdn_metric_series(app.m_latency, v);
    }
    cdn_metrics_gauge_fn(app.metrics, "shop_image_cache_bytes", "Bytes of rendered images held in memory", gauge_img_bytes, NULL);
    cdn_metrics_gauge_fn(app.metrics, "shop_image_cache_entries", "Rendered images held in memory", gauge_img_count, NULL);
    cdn_metrics_gauge_fn(app.metrics, "shop_catalog_products", "Products in the catalog", gauge_products, NULL);
    return 0;
}
