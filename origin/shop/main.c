/* origin/shop/main.c - shop-app: the sample storefront's app server (h2o, HTTP/1.1 and h2c).
 *
 * Owns: the command line and YAML config, the workers' own state (one read-only SQLite connection
 * each; their loops, listeners, signals and graceful stop are cdn/daemon.h's), the request
 * handler, the service-delay queue, metrics, the access log and reload (SIGHUP).
 *
 * Rules:
 * - Nothing sleeps on a loop: a configured service delay parks the request in a per-thread queue
 *   sorted by due time, with one cdn_timer armed for its head. A parked request whose client goes
 *   away is unlinked by its pool's dispose callback.
 * - The caching headers come from the rules set (rules.c); SIGHUP swaps in a new set and retires
 *   the old one (cdn_daemon_retire: freed once every worker has finished its loop turn). No rule
 *   pointer is kept across turns: a parked request and an image render match theirs again when
 *   they resume.
 * - Responses are built whole (pages are small; images come from the shared, refcounted cache and
 *   stay referenced until h2o has sent them). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <h2o.h>

#include "cdn/config.h"
#include "cdn/daemon.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/metrics.h"
#include "cdn/proc.h"
#include "origin/shop/shop.h"

#define PROG "shop-app"
#define MAX_WORKERS 16
#define MAX_BODY (8u << 20)

/* ---------------- configuration ---------------- */

struct app_conf {
    struct cdn_conf_addr listen;
    const char *name;
    unsigned threads;
    const char *db;
    unsigned products;
    long long seed;
    const char *cdn_host;
    uint64_t image_cache;
    unsigned render_threads;
    const char *error_log;
    const char *log_level;
    const char *access_log;
    int access_log_format;
    const char *pid_file;
    uint64_t graceful_timeout;
    uint64_t delay;
    double error_rate;
    int gzip;
    struct shop_rules rules;   /* "headers:" (empty: the built-in set) */
    const char *error_cache_control;
    const char *server_error_cache_control;
};

static const char *const alog_formats[] = {"combined", "json", NULL};

static const cdn_conf_field_t rule_fields[] = {
    {"prefix", CDN_CT_STR, offsetof(struct shop_rule, prefix), CDN_CF_REQUIRED},
    {"cache_control", CDN_CT_STR, offsetof(struct shop_rule, cache_control)},
    {"vary", CDN_CT_STR, offsetof(struct shop_rule, vary)},
    {"surrogate_control", CDN_CT_STR, offsetof(struct shop_rule, surrogate_control)},
    {"delay", CDN_CT_DURATION, offsetof(struct shop_rule, delay_ms)},
    {"error_rate", CDN_CT_DOUBLE, offsetof(struct shop_rule, error_rate), 0, 0, 0, 0.0, 1.0},
    {"gzip", CDN_CT_BOOL, offsetof(struct shop_rule, gzip)},
    {NULL}};

/* "headers:" is a list of rules; each starts from defaults (gzip on), which the schema's LIST
 * type cannot express, so it is decoded by hand. */
static int decode_rules(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    struct shop_rules *r = out;
    if (cdn_conf_kind(n) != CDN_CONF_SEQ)
        return cdn_conf_fail(c, n, err, "expected a list of {prefix, cache_control, ...}");
    size_t cnt = cdn_conf_len(n);
    r->rules = cdn_conf_alloc(c, (cnt ? cnt : 1) * sizeof(*r->rules));
    r->n = 0;
    for (size_t i = 0; i < cnt; i++) {
        struct shop_rule *x = &r->rules[r->n];
        memset(x, 0, sizeof(*x));
        x->gzip = 1;
        if (cdn_conf_decode(c, cdn_conf_item(n, i), rule_fields, x, err) != 0)
            return -1;
        if (x->prefix[0] != '/')
            return cdn_conf_fail(c, cdn_conf_item(n, i), err, "prefix must start with '/'");
        r->n++;
    }
    shop_rules_sort(r);
    return 0;
}

static const cdn_conf_field_t conf_fields[] = {
    {"listen", CDN_CT_ADDR, offsetof(struct app_conf, listen), .addr_default_host = "127.0.0.1"},
    {"name", CDN_CT_STR, offsetof(struct app_conf, name)},
    {"threads", CDN_CT_UINT, offsetof(struct app_conf, threads), 0, 1, MAX_WORKERS},
    {"db", CDN_CT_STR, offsetof(struct app_conf, db)},
    {"products", CDN_CT_UINT, offsetof(struct app_conf, products), 0, 1, 10000000},
    {"seed", CDN_CT_INT, offsetof(struct app_conf, seed), 0, 0, LLONG_MAX},
    {"cdn_host", CDN_CT_STR, offsetof(struct app_conf, cdn_host)},
    {"image_cache", CDN_CT_SIZE, offsetof(struct app_conf, image_cache)},
    {"render_threads", CDN_CT_UINT, offsetof(struct app_conf, render_threads), 0, 1, 64},
    {"error_log", CDN_CT_STR, offsetof(struct app_conf, error_log)},
    {"log_level", CDN_CT_STR, offsetof(struct app_conf, log_level)},
    {"access_log", CDN_CT_STR, offsetof(struct app_conf, access_log)},
    {"access_log_format", CDN_CT_ENUM, offsetof(struct app_conf, access_log_format), .enum_names = alog_formats},
    {"pid_file", CDN_CT_STR, offsetof(struct app_conf, pid_file)},
    {"graceful_timeout", CDN_CT_DURATION, offsetof(struct app_conf, graceful_timeout)},
    {"delay", CDN_CT_DURATION, offsetof(struct app_conf, delay)},
    {"error_rate", CDN_CT_DOUBLE, offsetof(struct app_conf, error_rate), 0, 0, 0, 0.0, 1.0},
    {"gzip", CDN_CT_BOOL, offsetof(struct app_conf, gzip)},
    {"headers", CDN_CT_CUSTOM, offsetof(struct app_conf, rules), .custom = decode_rules},
    {"error_cache_control", CDN_CT_STR, offsetof(struct app_conf, error_cache_control)},
    {"server_error_cache_control", CDN_CT_STR, offsetof(struct app_conf, server_error_cache_control)},
    {NULL}};

static void conf_defaults(struct app_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->threads = 1;
    c->products = SHOP_DEFAULT_PRODUCTS;
    c->seed = SHOP_DEFAULT_SEED;
    c->cdn_host = "https://img.shop.test";
    c->image_cache = 128u << 20;
    c->render_threads = 2;
    c->log_level = "info";
    c->graceful_timeout = 10000;
    c->gzip = 1;
}

/* Loads and decodes a config file into *out (defaults first). NULL with err on failure. */
static cdn_conf_t *conf_load(const char *path, struct app_conf *out, cdn_conf_err_t *err)
{
    cdn_conf_t *c = cdn_conf_load_file(path, err);
    if (c == NULL)
        return NULL;
    if (cdn_conf_decode(c, cdn_conf_root(c), conf_fields, out, err) != 0) {
        cdn_conf_free(c);
        return NULL;
    }
    if (out->log_level && cdn_log_level_parse(out->log_level) < 0) {
        cdn_conf_fail(c, cdn_conf_get(cdn_conf_root(c), "log_level"), err, "expected debug, info, notice, warn or error");
        cdn_conf_free(c);
        return NULL;
    }
    return c;
}

/* ---------------- state ---------------- */

enum req_class { C_HOME, C_CATEGORY, C_PRODUCT, C_IMAGE, C_API, C_SEARCH, C_CART, C_HEALTH, C_METRICS, C_OTHER, C_N };
static const char *const class_names[C_N] = {"home", "category", "product", "image", "api", "search",
                                             "cart", "health", "metrics", "other"};

struct delayed {
    h2o_linklist_t link;
    uint64_t due;
    h2o_req_t *req;
    struct worker *w;
};

struct render_job;

struct worker {
    int idx;
    struct cdn_worker *cw;     /* its loop, context and listener (cdn/daemon.h) */
    h2o_evloop_t *loop;
    shop_catalog_t *cat;
    uint64_t rng;              /* error injection only: predictable, never for secrets (see new_sid) */
    h2o_linklist_t delayed;    /* sorted by due */
    cdn_timer_t *delay_timer;
    int render_efd;            /* render threads wake the loop through it */
    cdn_watch_t *render_watch;
    pthread_mutex_t render_mu;
    struct render_job *render_done; /* finished jobs, under render_mu */
};

static struct app {
    struct app_conf conf;
    const char *conf_path;
    cdn_conf_t *cdoc;          /* the first document: restart-only settings point into it */
    cdn_conf_t *reload_doc;    /* the last reload's: retired when the next one replaces it */
    cdn_daemon_t *d;
    const struct shop_rules *rules;  /* atomic pointer: SIGHUP swaps it */
    struct shop_rules rules_buf;
    h2o_globalconf_t h2o;
    struct shop_site site;
    char name[128];
    shop_imgcache_t *images;
    cdn_alog_t *alog;
    cdn_metrics_t *metrics;
    cdn_metric_t *m_requests, *m_latency, *m_renders, *m_img_hits;
    cdn_series_t *s_renders, *s_img_hits;
    cdn_series_t *s_latency[C_N];
    pthread_mutex_t render_mu; /* the render queue */
    pthread_cond_t render_cv;
    struct render_job *render_head, **render_tail;
    int nworkers;
    struct worker workers[MAX_WORKERS];
    int64_t catalog_time;
} app;

static __thread struct worker *self;

static const struct shop_rules *rules_now(void) { return __atomic_load_n(&app.rules, __ATOMIC_ACQUIRE); }

/* Request counters by class and status; series are looked up once and kept. */
static cdn_series_t *status_series(enum req_class cls, int status)
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

static enum req_class classify(const char *p, size_t len)
{
#define PFX(lit) (len >= sizeof(lit) - 1 && memcmp(p, lit, sizeof(lit) - 1) == 0)
    if (len == 1 && p[0] == '/')
        return C_HOME;
    if (PFX("/img/"))
        return C_IMAGE;
    if (PFX("/p/"))
        return C_PRODUCT;
    if (PFX("/c/"))
        return C_CATEGORY;
    if (PFX("/api/search"))
        return C_SEARCH;
    if (PFX("/api/cart") || PFX("/cart"))
        return C_CART;
    if (PFX("/api/"))
        return C_API;
    if (PFX("/healthz"))
        return C_HEALTH;
    if (PFX("/metrics"))
        return C_METRICS;
    return C_OTHER;
#undef PFX
}

/* ---------------- response helpers ---------------- */

static h2o_iovec_t req_header(h2o_req_t *req, const h2o_token_t *tok)
{
    ssize_t i = h2o_find_header(&req->headers, tok, -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

static h2o_iovec_t req_header_str(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

static int is_method(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static void set_hdr(h2o_req_t *req, const h2o_token_t *tok, const char *v)
{
    if (v != NULL && *v)
        h2o_set_header(&req->pool, &req->res.headers, tok, v, strlen(v), 1);
}

static void set_hdr_str(h2o_req_t *req, const char *name, const char *v)
{
    if (v != NULL && *v)
        h2o_set_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, v, strlen(v), 1);
}

static void common_headers(h2o_req_t *req)
{
    set_hdr_str(req, "x-served-by", app.name);
    h2o_iovec_t rid = req_header_str(req, "x-request-id");
    if (rid.base != NULL)
        h2o_set_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 1, rid.base, rid.len, 1);
}

static void send_error(h2o_req_t *req, int status, const char *reason, const char *msg)
{
    const struct shop_rules *r = rules_now();
    req->res.status = status;
    req->res.reason = reason;
    common_headers(req);
    set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; charset=utf-8");
    set_hdr(req, H2O_TOKEN_CACHE_CONTROL, status >= 500 ? r->server_error_cache_control : r->error_cache_control);
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    size_t len = strlen(msg);
    req->res.content_length = len;
    h2o_send_inline(req, msg, len);
}

/* Validators: If-None-Match (weak) first; If-Modified-Since only when there is no INM. */
static int not_modified(h2o_req_t *req, const char *etag, int64_t last_modified)
{
    h2o_iovec_t inm = req_header(req, H2O_TOKEN_IF_NONE_MATCH);
    if (inm.base != NULL)
        return etag != NULL && shop_etag_match_weak(inm.base, inm.len, etag, strlen(etag));
    h2o_iovec_t ims = req_header(req, H2O_TOKEN_IF_MODIFIED_SINCE);
    time_t t;
    if (ims.base != NULL && last_modified > 0 && shop_http_date_parse(ims.base, ims.len, &t) == 0)
        return (int64_t)t >= last_modified;
    return 0;
}

static void send_304(h2o_req_t *req)
{
    static h2o_generator_t gen = {NULL, NULL};
    req->res.status = 304;
    req->res.reason = "Not Modified";
    req->res.content_length = SIZE_MAX;
    /* a 304 carries the validators and caching headers, no body or type */
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0)
        h2o_delete_header(&req->res.headers, ct);
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    h2o_start_response(req, &gen);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

static void set_cache_headers(h2o_req_t *req, const struct shop_rule *rule, const char *surrogate_key,
                              int64_t last_modified, const char *etag)
{
    if (rule != NULL) {
        set_hdr(req, H2O_TOKEN_CACHE_CONTROL, rule->cache_control);
        if (rule->vary)
            h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY, rule->vary, strlen(rule->vary));
        set_hdr_str(req, "surrogate-control", rule->surrogate_control);
    }
    set_hdr_str(req, "surrogate-key", surrogate_key);
    if (last_modified > 0) {
        char *d = h2o_mem_alloc_pool(&req->pool, 30);
        shop_http_date_format((time_t)last_modified, d);
        set_hdr(req, H2O_TOKEN_LAST_MODIFIED, d);
    }
    if (etag != NULL)
        set_hdr(req, H2O_TOKEN_ETAG, etag);
}

/* A text body (HTML, JSON): weak ETag from the bytes (gzip may change the encoding, not the
 * meaning), validators, gzip when the rule allows and the client asks. */
static void send_text(h2o_req_t *req, const struct shop_rule *rule, const char *ctype, struct shop_buf *body,
                      const char *surrogate_key, int64_t last_modified)
{
    if (body->failed) {
        shop_buf_free(body);
        send_error(req, 500, "Internal Server Error", "response too large\n");
        return;
    }
    char *etag = h2o_mem_alloc_pool(&req->pool, 24);
    snprintf(etag, 24, "W/\"%016llx\"", (unsigned long long)shop_hash64(body->p, body->len));
    req->res.status = 200;
    req->res.reason = "OK";
    common_headers(req);
    set_hdr(req, H2O_TOKEN_CONTENT_TYPE, ctype);
    set_cache_headers(req, rule, surrogate_key, last_modified, etag);
    int gz = app.conf.gzip && (rule == NULL || rule->gzip);
    if (gz && (rule == NULL || rule->vary == NULL || strcasestr(rule->vary, "accept-encoding") == NULL))
        h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY, H2O_STRLIT("Accept-Encoding"));
    req->compress_hint = gz ? H2O_COMPRESS_HINT_AUTO : H2O_COMPRESS_HINT_DISABLE;
    if (not_modified(req, etag, last_modified)) {
        shop_buf_free(body);
        send_304(req);
        return;
    }
    req->res.content_length = body->len;
    h2o_send_inline(req, body->p ? body->p : "", body->len);
    shop_buf_free(body);
}

static void send_json(h2o_req_t *req, const struct shop_rule *rule, struct shop_buf *b, const char *sk, int64_t lm)
{
    send_text(req, rule, "application/json", b, sk, lm);
}

/* ---------------- handlers ---------------- */

/* "/p/42" style ids: digits only, 1..UINT32_MAX; the rest of the path after them in *rest. */
static int parse_id(const char *p, size_t len, uint32_t *id, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9' && i < 10)
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0 || v == 0 || v > UINT32_MAX || (p[0] == '0'))
        return -1;
    *id = (uint32_t)v;
    *used = i;
    return 0;
}

static h2o_iovec_t query_of(h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init("", 0);
    return h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
}

static void on_home(h2o_req_t *req, const struct shop_rule *rule)
{
    struct shop_category cats[SHOP_NUM_CATEGORIES];
    struct shop_product featured[12];
    int nc = shop_catalog_categories(self->cat, cats, SHOP_NUM_CATEGORIES), nf = 0;
    for (int i = 0; i < nc && nf < 12; i++)
        if (shop_catalog_list(self->cat, cats[i].id, 0, 1, &featured[nf]) == 1)
            nf++;
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    shop_page_home(&b, &app.site, cats, nc, featured, nf);
    send_text(req, rule, "text/html; charset=utf-8", &b, "home", app.catalog_time);
}

static void on_category(h2o_req_t *req, const struct shop_rule *rule, const char *slug_p, size_t slug_len)
{
    char slug[64], pg[16];
    struct shop_category cat;
    if (slug_len == 0 || slug_len >= sizeof(slug)) {
        send_error(req, 404, "Not Found", "no such category\n");
        return;
    }
    memcpy(slug, slug_p, slug_len);
    slug[slug_len] = '\0';
    int rc = shop_catalog_category_by_slug(self->cat, slug, &cat);
    if (rc <= 0) {
        send_error(req, rc < 0 ? 500 : 404, rc < 0 ? "Internal Server Error" : "Not Found", "no such category\n");
        return;
    }
    h2o_iovec_t q = query_of(req);
    long page = 1;
    if (shop_query_get(q.base, q.len, "page", pg, sizeof(pg)) > 0) {
        char *end;
        page = strtol(pg, &end, 10);
        if (*end || page < 1 || page > 1000000) {
            send_error(req, 400, "Bad Request", "page must be a positive integer\n");
            return;
        }
    }
    uint32_t pages = (cat.count + SHOP_PAGE_SIZE - 1) / SHOP_PAGE_SIZE;
    if ((uint32_t)page > (pages ? pages : 1)) {
        send_error(req, 404, "Not Found", "no such page\n");
        return;
    }
    struct shop_product items[SHOP_PAGE_SIZE];
    int n = shop_catalog_list(self->cat, cat.id, (uint32_t)(page - 1) * SHOP_PAGE_SIZE, SHOP_PAGE_SIZE, items);
    if (n < 0) {
        send_error(req, 500, "Internal Server Error", "catalog error\n");
        return;
    }
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    shop_page_category(&b, &app.site, &cat, (uint32_t)page, items, n);
    char sk[32];
    snprintf(sk, sizeof(sk), "category-%u", cat.id);
    send_text(req, rule, "text/html; charset=utf-8", &b, h2o_strdup(&req->pool, sk, SIZE_MAX).base, app.catalog_time);
}

static int load_product(h2o_req_t *req, uint32_t id, struct shop_product *p)
{
    int rc = shop_catalog_product(self->cat, id, p);
    if (rc < 0)
        send_error(req, 500, "Internal Server Error", "catalog error\n");
    else if (rc == 0)
        send_error(req, 404, "Not Found", "no such product\n");
    return rc == 1 ? 0 : -1;
}

static const char *product_keys(h2o_req_t *req, const struct shop_product *p)
{
    char sk[64];
    snprintf(sk, sizeof(sk), "product-%u category-%u", p->id, p->category_id);
    return h2o_strdup(&req->pool, sk, SIZE_MAX).base;
}

static void on_product(h2o_req_t *req, const struct shop_rule *rule, uint32_t id, int json)
{
    struct shop_product *p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
    if (load_product(req, id, p) != 0)
        return;
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    if (json) {
        shop_json_product(&b, &app.site, p);
        send_json(req, rule, &b, product_keys(req, p), p->updated_at);
    } else {
        shop_page_product(&b, &app.site, p);
        send_text(req, rule, "text/html; charset=utf-8", &b, product_keys(req, p), p->updated_at);
    }
}

static void on_image_dispose(void *p) { shop_image_release(*(struct shop_image **)p); }

static void send_image(h2o_req_t *req, const struct shop_rule *rule, const struct shop_product *p,
                       struct shop_image *img, int hit);
static void render_submit(struct worker *w, h2o_req_t *req, const struct shop_rule *rule, const struct shop_product *p,
                          enum shop_img_size size);

static void on_image(h2o_req_t *req, const struct shop_rule *rule, uint32_t id, enum shop_img_size size)
{
    struct shop_product *p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
    if (load_product(req, id, p) != 0)
        return;
    struct shop_image *img = shop_imgcache_lookup(app.images, id, size);
    if (img != NULL) {
        cdn_counter_inc(app.s_img_hits);
        send_image(req, rule, p, img, 1);
    }
    else
        render_submit(self, req, rule, p, size); /* rendered on a render thread, not on the loop */
}

/* img: a reference the response takes over (released when the request's pool goes). */
static void send_image(h2o_req_t *req, const struct shop_rule *rule, const struct shop_product *p,
                       struct shop_image *img, int hit)
{
    if (img == NULL) {
        send_error(req, 500, "Internal Server Error", "image rendering failed\n");
        return;
    }
    struct shop_image **ref = h2o_mem_alloc_shared(&req->pool, sizeof(*ref), on_image_dispose);
    *ref = img;

    char sk[80];
    snprintf(sk, sizeof(sk), "product-%u category-%u image-%u", p->id, p->category_id, p->id);
    req->res.status = 200;
    req->res.reason = "OK";
    common_headers(req);
    set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "image/png");
    set_hdr(req, H2O_TOKEN_ACCEPT_RANGES, "bytes");
    set_cache_headers(req, rule, h2o_strdup(&req->pool, sk, SIZE_MAX).base, p->updated_at, img->etag);
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    if (not_modified(req, img->etag, p->updated_at)) {
        send_304(req);
        return;
    }
    uint64_t first = 0, last = img->len - 1;
    h2o_iovec_t range = req_header(req, H2O_TOKEN_RANGE);
    if (range.base != NULL && (is_method(req, "GET") || is_method(req, "HEAD"))) {
        /* If-Range: the range applies only to the representation the client has */
        h2o_iovec_t ifr = req_header(req, H2O_TOKEN_IF_RANGE);
        int use = 1;
        if (ifr.base != NULL) {
            time_t t;
            if (ifr.len > 0 && (ifr.base[0] == '"' || ifr.base[0] == 'W'))
                use = shop_etag_match_strong(ifr.base, ifr.len, img->etag, strlen(img->etag));
            else
                use = shop_http_date_parse(ifr.base, ifr.len, &t) == 0 && (int64_t)t == p->updated_at;
        }
        if (use) {
            switch (shop_range_parse(range.base, range.len, img->len, &first, &last)) {
            case SHOP_RANGE_NONE:
                first = 0, last = img->len - 1;
                break;
            case SHOP_RANGE_OK: {
                char *cr = h2o_mem_alloc_pool(&req->pool, 64);
                snprintf(cr, 64, "bytes %llu-%llu/%zu", (unsigned long long)first, (unsigned long long)last, img->len);
                set_hdr(req, H2O_TOKEN_CONTENT_RANGE, cr);
                req->res.status = 206;
                req->res.reason = "Partial Content";
                break;
            }
            case SHOP_RANGE_UNSAT: {
                char *cr = h2o_mem_alloc_pool(&req->pool, 48);
                snprintf(cr, 48, "bytes */%zu", img->len);
                h2o_iovec_t body = h2o_iovec_init(H2O_STRLIT("range not satisfiable\n"));
                req->res.status = 416;
                req->res.reason = "Range Not Satisfiable";
                set_hdr(req, H2O_TOKEN_CONTENT_RANGE, cr);
                set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain");
                req->res.content_length = body.len;
                h2o_send_inline(req, body.base, body.len);
                return;
            }
            }
        }
    }
    static h2o_generator_t gen = {NULL, NULL};
    h2o_iovec_t buf = h2o_iovec_init((char *)img->data + first, (size_t)(last - first + 1));
    req->res.content_length = buf.len;
    h2o_start_response(req, &gen);
    if (is_method(req, "HEAD"))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void on_search(h2o_req_t *req, const struct shop_rule *rule)
{
    char q[256];
    h2o_iovec_t qs = query_of(req);
    if (shop_query_get(qs.base, qs.len, "q", q, sizeof(q)) < 0) {
        send_error(req, 400, "Bad Request", "missing or too long q parameter\n");
        return;
    }
    struct shop_product *items = h2o_mem_alloc_pool(&req->pool, sizeof(*items) * SHOP_PAGE_SIZE);
    int n = shop_catalog_search(self->cat, q, SHOP_PAGE_SIZE, items);
    if (n < 0) {
        send_error(req, 500, "Internal Server Error", "search failed\n");
        return;
    }
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    shop_json_search(&b, &app.site, q, items, n);
    send_json(req, rule, &b, "search", app.catalog_time);
}

/* A session id: 128 bits from the kernel's CSPRNG as 32 hex digits (plus NUL). A sid names a
 * user, so it must not be guessable from another one (it once was a splitmix64 stream: one cookie
 * gave away all the next ones). 0, or -1 if the kernel gave fewer bytes (no entropy yet). */
static int new_sid(char out[33])
{
    uint8_t r[16];
    ssize_t n;
    while ((n = getrandom(r, sizeof(r), 0)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof(r))
        return -1;
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return 0;
}

/* The cart lives in the "cart" cookie; a "sid" cookie names the user. Never cacheable. */
static void on_cart(h2o_req_t *req, const struct shop_rule *rule, int json)
{
    struct shop_cart cart = {0};
    char v[1024];
    int changed = 0;
    h2o_iovec_t cookie = {NULL, 0};
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        /* HTTP/2 may split cookies over several headers: look in each */
        h2o_iovec_t c = req->headers.entries[i].value;
        if (shop_cookie_get(c.base, c.len, "cart", v, sizeof(v)) >= 0)
            shop_cart_parse(v, strlen(v), &cart);
        if (shop_cookie_get(c.base, c.len, "sid", v, sizeof(v)) > 0)
            cookie = c;
    }
    if (is_method(req, "POST")) {
        /* parameters from the query or a form body */
        h2o_iovec_t src[2] = {query_of(req), req->entity};
        for (int k = 0; k < 2; k++) {
            char num[16];
            if (src[k].base == NULL)
                continue;
            unsigned long id, qty = 1;
            if (shop_query_get(src[k].base, src[k].len, "qty", num, sizeof(num)) > 0)
                qty = strtoul(num, NULL, 10);
            if (shop_query_get(src[k].base, src[k].len, "add", num, sizeof(num)) > 0 &&
                (id = strtoul(num, NULL, 10)) >= 1 && id <= UINT32_MAX && qty >= 1 && qty <= 999) {
                struct shop_product p;
                if (shop_catalog_product(self->cat, (uint32_t)id, &p) != 1) {
                    send_error(req, 404, "Not Found", "no such product\n");
                    return;
                }
                if (shop_cart_set(&cart, (uint32_t)id, (uint32_t)qty) != 0) {
                    send_error(req, 400, "Bad Request", "cart is full\n");
                    return;
                }
                changed = 1;
            }
            if (shop_query_get(src[k].base, src[k].len, "remove", num, sizeof(num)) > 0 &&
                (id = strtoul(num, NULL, 10)) >= 1 && id <= UINT32_MAX) {
                shop_cart_set(&cart, (uint32_t)id, 0);
                changed = 1;
            }
        }
    } else if (!is_method(req, "GET") && !is_method(req, "HEAD")) {
        set_hdr(req, H2O_TOKEN_ALLOW, "GET, HEAD, POST");
        send_error(req, 405, "Method Not Allowed", "method not allowed\n");
        return;
    }
    struct shop_product *items = h2o_mem_alloc_pool(&req->pool, sizeof(*items) * (cart.n ? cart.n : 1));
    for (size_t i = 0; i < cart.n; i++)
        if (shop_catalog_product(self->cat, cart.items[i].id, &items[i]) != 1)
            items[i].id = 0;
    if (cookie.base == NULL) {
        char sid[33];
        if (new_sid(sid) != 0) {
            send_error(req, 503, "Service Unavailable", "no session id available\n");
            return;
        }
        char *sc = h2o_mem_alloc_pool(&req->pool, 96);
        snprintf(sc, 96, "sid=%s; Path=/; HttpOnly; SameSite=Lax", sid);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, sc, strlen(sc));
    }
    if (changed) {
        char cv[SHOP_CART_MAX * 24];
        shop_cart_format(&cart, cv, sizeof(cv));
        char *sc = h2o_mem_alloc_pool(&req->pool, sizeof(cv) + 64);
        snprintf(sc, sizeof(cv) + 64, "cart=%s; Path=/; SameSite=Lax", cv);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, sc, strlen(sc));
    }
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    if (json)
        shop_json_cart(&b, items, &cart, (int)cart.n);
    else
        shop_page_cart(&b, &app.site, items, &cart, (int)cart.n);
    /* no validators on private answers */
    req->res.status = 200;
    req->res.reason = "OK";
    common_headers(req);
    set_hdr(req, H2O_TOKEN_CONTENT_TYPE, json ? "application/json" : "text/html; charset=utf-8");
    set_hdr(req, H2O_TOKEN_CACHE_CONTROL, rule && rule->cache_control ? rule->cache_control : "private, no-store");
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    if (b.failed) {
        shop_buf_free(&b);
        send_error(req, 500, "Internal Server Error", "response too large\n");
        return;
    }
    req->res.content_length = b.len;
    h2o_send_inline(req, b.p ? b.p : "", b.len);
    shop_buf_free(&b);
}

static void on_metrics(h2o_req_t *req, const struct shop_rule *rule)
{
    size_t len = 0;
    char *text = cdn_metrics_render(app.metrics, &len);
    if (text == NULL) {
        send_error(req, 500, "Internal Server Error", "metrics unavailable\n");
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; version=0.0.4");
    set_hdr(req, H2O_TOKEN_CACHE_CONTROL, rule && rule->cache_control ? rule->cache_control : "no-store");
    req->res.content_length = len;
    h2o_send_inline(req, text, len); /* copies into the pool */
    free(text);
}

/* Dispatch after any service delay. */
static void serve(h2o_req_t *req)
{
    const char *p = req->path_normalized.base;
    size_t len = req->path_normalized.len;
    const struct shop_rule *rule = shop_rules_match(rules_now(), p, len);
    enum req_class cls = classify(p, len);
    int get = is_method(req, "GET") || is_method(req, "HEAD");
    uint32_t id;
    size_t used;

    if (cls != C_CART && !get) {
        set_hdr(req, H2O_TOKEN_ALLOW, "GET, HEAD");
        send_error(req, 405, "Method Not Allowed", "method not allowed\n");
        return;
    }
    switch (cls) {
    case C_HOME:
        on_home(req, rule);
        return;
    case C_HEALTH:
        if (len == 8) {
            req->res.status = 200;
            req->res.reason = "OK";
            set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain");
            set_hdr(req, H2O_TOKEN_CACHE_CONTROL, "no-store");
            req->res.content_length = 3;
            h2o_send_inline(req, H2O_STRLIT("ok\n"));
            return;
        }
        break;
    case C_METRICS:
        if (len == 8) {
            on_metrics(req, rule);
            return;
        }
        break;
    case C_CATEGORY:
        on_category(req, rule, p + 3, len - 3);
        return;
    case C_PRODUCT:
        if (parse_id(p + 3, len - 3, &id, &used) == 0 && used == len - 3) {
            on_product(req, rule, id, 0);
            return;
        }
        break;
    case C_API:
        if (len > 14 && memcmp(p, "/api/products/", 14) == 0 && parse_id(p + 14, len - 14, &id, &used) == 0 &&
            used == len - 14) {
            on_product(req, rule, id, 1);
            return;
        }
        break;
    case C_SEARCH:
        if (len == 11) {
            on_search(req, rule);
            return;
        }
        break;
    case C_CART:
        if ((len == 5 && memcmp(p, "/cart", 5) == 0) || (len == 9 && memcmp(p, "/api/cart", 9) == 0)) {
            if (len == 5 && !get) {
                set_hdr(req, H2O_TOKEN_ALLOW, "GET, HEAD");
                send_error(req, 405, "Method Not Allowed", "method not allowed\n");
                return;
            }
            on_cart(req, rule, len == 9);
            return;
        }
        break;
    case C_IMAGE:
        /* /img/<id>/<size>.png */
        if (parse_id(p + 5, len - 5, &id, &used) == 0) {
            const char *s = p + 5 + used;
            size_t sl = len - 5 - used;
            if (sl > 5 && s[0] == '/' && memcmp(s + sl - 4, ".png", 4) == 0) {
                int size = shop_img_size_parse(s + 1, sl - 5);
                if (size >= 0) {
                    on_image(req, rule, id, (enum shop_img_size)size);
                    return;
                }
            }
        }
        break;
    default:
        break;
    }
    send_error(req, 404, "Not Found", "not found\n");
}

/* ---------------- image rendering off the loop ----------------
 * A cache miss goes to a render thread; the finished job comes back to the worker through its
 * eventfd. The request may be gone by then: its pool's dispose clears job->req (both run on the
 * worker's thread, the render thread never touches req). */

struct render_job {
    struct render_job *next;
    struct worker *w;
    h2o_req_t *req;            /* NULL once the client went away */
    struct render_job **anchor; /* in the request's pool */
    const struct shop_product *p;
    uint32_t id;
    enum shop_img_size size;
    struct shop_image *img;
    struct render_job *waiters; /* leader only: the same image asked for while it renders */
    struct render_job *pending_next;
};

/* Renders in progress (leaders), so that concurrent misses for one image render it once. Under
 * app.render_mu. */
#define PENDING_BUCKETS 256
static struct render_job *pending[PENDING_BUCKETS];

static unsigned pending_bucket(uint32_t id, enum shop_img_size size) { return (id * 3u + (unsigned)size) % PENDING_BUCKETS; }

static void on_job_anchor_dispose(void *p)
{
    struct render_job *job = *(struct render_job **)p;
    if (job != NULL)
        job->req = NULL;
}

static void *render_main(void *arg)
{
    for (;;) {
        pthread_mutex_lock(&app.render_mu);
        while (app.render_head == NULL)
            pthread_cond_wait(&app.render_cv, &app.render_mu);
        struct render_job *job = app.render_head;
        app.render_head = job->next;
        if (app.render_head == NULL)
            app.render_tail = &app.render_head;
        pthread_mutex_unlock(&app.render_mu);
        int hit;
        struct shop_image *img = shop_imgcache_get(app.images, job->id, job->size, &hit);
        if (img != NULL && !hit)
            cdn_counter_inc(app.s_renders); /* waiters of this render are not counted again */
        /* leave the pending table, taking the waiters along */
        pthread_mutex_lock(&app.render_mu);
        struct render_job **pp = &pending[pending_bucket(job->id, job->size)];
        while (*pp != NULL && *pp != job)
            pp = &(*pp)->pending_next;
        if (*pp == job)
            *pp = job->pending_next;
        struct render_job *waiters = job->waiters;
        pthread_mutex_unlock(&app.render_mu);
        job->img = img;
        job->waiters = NULL;
        for (struct render_job *j = job, *next; j != NULL; j = next) {
            next = j == job ? waiters : j->next;
            if (j != job) {
                if (img != NULL)
                    __atomic_add_fetch(&img->refcnt, 1, __ATOMIC_ACQ_REL); /* each response holds one */
                j->img = img;
            }
            struct worker *w = j->w;
            pthread_mutex_lock(&w->render_mu);
            j->next = w->render_done;
            w->render_done = j;
            pthread_mutex_unlock(&w->render_mu);
            uint64_t one = 1;
            if (write(w->render_efd, &one, sizeof(one)) < 0) {
                /* the counter cannot overflow in practice; nothing else to do */
            }
        }
    }
    return NULL;
}

static void on_render_done(cdn_watch_t *watch, int fd, int events, void *data)
{
    struct worker *w = data;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: another wakeup already drained it */
    }
    pthread_mutex_lock(&w->render_mu);
    struct render_job *list = w->render_done;
    w->render_done = NULL;
    pthread_mutex_unlock(&w->render_mu);
    while (list != NULL) {
        struct render_job *job = list;
        list = job->next;
        if (job->req != NULL) {
            *job->anchor = NULL;
            /* the rule is matched again: a reload may have retired the one of the request's start */
            h2o_iovec_t path = job->req->path_normalized;
            send_image(job->req, shop_rules_match(rules_now(), path.base, path.len), job->p, job->img, 0);
        } else
            shop_image_release(job->img);
        free(job);
    }
}

static void render_submit(struct worker *w, h2o_req_t *req, const struct shop_rule *rule, const struct shop_product *p,
                          enum shop_img_size size)
{
    struct render_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        send_error(req, 503, "Service Unavailable", "out of memory\n");
        return;
    }
    job->w = w;
    job->req = req;
    job->p = p;
    job->id = p->id;
    job->size = size;
    job->anchor = h2o_mem_alloc_shared(&req->pool, sizeof(*job->anchor), on_job_anchor_dispose);
    *job->anchor = job;
    pthread_mutex_lock(&app.render_mu);
    unsigned b = pending_bucket(job->id, job->size);
    struct render_job *leader = pending[b];
    while (leader != NULL && (leader->id != job->id || leader->size != job->size))
        leader = leader->pending_next;
    if (leader != NULL) {
        job->next = leader->waiters; /* rendered once, for everyone waiting */
        leader->waiters = job;
    } else {
        job->pending_next = pending[b];
        pending[b] = job;
        *app.render_tail = job;
        app.render_tail = &job->next;
        pthread_cond_signal(&app.render_cv);
    }
    pthread_mutex_unlock(&app.render_mu);
}

/* ---------------- service delay queue ---------------- */

static void on_delayed_dispose(void *p)
{
    struct delayed *d = p;
    if (h2o_linklist_is_linked(&d->link))
        h2o_linklist_unlink(&d->link); /* the client went away while we waited */
}

static void arm_delay_timer(struct worker *w)
{
    if (h2o_linklist_is_empty(&w->delayed)) {
        cdn_timer_stop(w->delay_timer);
        return;
    }
    struct delayed *head = H2O_STRUCT_FROM_MEMBER(struct delayed, link, w->delayed.next);
    uint64_t now = cdn_now_ms();
    cdn_timer_start(w->delay_timer, head->due > now ? head->due - now : 0);
}

static void on_delay_timer(cdn_timer_t *t, void *data)
{
    struct worker *w = data;
    uint64_t now = cdn_now_ms();
    while (!h2o_linklist_is_empty(&w->delayed)) {
        struct delayed *d = H2O_STRUCT_FROM_MEMBER(struct delayed, link, w->delayed.next);
        if (d->due > now)
            break;
        h2o_linklist_unlink(&d->link);
        serve(d->req);
    }
    arm_delay_timer(w);
}

static void park(struct worker *w, h2o_req_t *req, uint64_t delay_ms)
{
    struct delayed *d = h2o_mem_alloc_shared(&req->pool, sizeof(*d), on_delayed_dispose);
    memset(d, 0, sizeof(*d));
    d->due = cdn_now_ms() + delay_ms;
    d->req = req;
    d->w = w;
    /* insert sorted, scanning from the tail: equal delays arrive in order */
    h2o_linklist_t *pos = w->delayed.prev;
    while (pos != &w->delayed && H2O_STRUCT_FROM_MEMBER(struct delayed, link, pos)->due > d->due)
        pos = pos->prev;
    h2o_linklist_insert(pos->next, &d->link);
    arm_delay_timer(w);
}

/* ---------------- the request entry, logging ---------------- */

static int on_req(h2o_handler_t *h, h2o_req_t *req)
{
    struct worker *w = self = cdn_worker_of(req)->data; /* the thread's worker, for the handlers below */
    cdn_worker_track(req);
    const struct shop_rule *rule = shop_rules_match(rules_now(), req->path_normalized.base, req->path_normalized.len);
    enum req_class cls = classify(req->path_normalized.base, req->path_normalized.len);
    int ops = cls == C_HEALTH || cls == C_METRICS; /* never slowed down or failed on purpose */
    double rate = rule && rule->error_rate > 0 ? rule->error_rate : app.conf.error_rate;
    uint64_t delay = rule && rule->delay_ms ? rule->delay_ms : app.conf.delay;
    if (!ops && rate > 0 && (shop_rand_next(&w->rng) >> 11) * (1.0 / 9007199254740992.0) < rate) {
        send_error(req, 500, "Internal Server Error", "injected error\n");
        return 0;
    }
    if (!ops && delay > 0)
        park(w, req, delay);
    else
        serve(req);
    return 0;
}

static void on_log_access(h2o_logger_t *logger, h2o_req_t *req)
{
    enum req_class cls = classify(req->path_normalized.base, req->path_normalized.len);
    int status = req->res.status;
    struct timeval end;
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

/* ---------------- workers ---------------- */

/* Main thread, in cdn_daemon_new: a worker's own state on its loop. */
static int on_worker_init(struct cdn_worker *cw, void *data, char *err, size_t errlen)
{
    struct worker *w = &app.workers[cw->id];
    (void)data;
    cw->data = w;
    w->cw = cw;
    w->idx = (int)cw->id;
    w->rng = 0xC0FFEEULL + (uint64_t)w->idx * 7919 + (uint64_t)getpid();
    h2o_linklist_init_anchor(&w->delayed);
    w->loop = cw->loop;
    w->delay_timer = cdn_timer_new(w->loop, on_delay_timer, w);
    if (w->delay_timer == NULL) {
        snprintf(err, errlen, "cannot create a timer");
        return -1;
    }
    pthread_mutex_init(&w->render_mu, NULL);
    w->render_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->render_efd < 0 || (w->render_watch = cdn_watch_new(w->loop, w->render_efd, on_render_done, w)) == NULL) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        return -1;
    }
    cdn_watch_set(w->render_watch, CDN_WATCH_READ);
    w->cat = shop_catalog_open(app.conf.db, err, errlen);
    if (w->cat == NULL)
        return -1;
    return 0;
}

/* The worker's thread, after its drain. */
static void on_worker_exit(struct cdn_worker *cw, void *data)
{
    struct worker *w = cw->data;
    (void)data;
    shop_catalog_close(w->cat);
    w->cat = NULL;
}

/* ---------------- signals, reload ---------------- */

static void free_doc(void *doc) { cdn_conf_free(doc); }

static void on_reopen(void *data)
{
    (void)data;
    if (app.alog != NULL)
        cdn_alog_reopen(app.alog);
}

/* SIGHUP: the header rules, delay and error rate change live; listen, threads, db need a
 * restart. The replaced rules go to cdn_daemon_retire: no request keeps a rule across a loop
 * turn (parked and rendering requests match theirs again when they resume). */
static void on_reload(void *data)
{
    (void)data;
    if (app.conf_path == NULL) {
        cdn_notice("SIGHUP: logs reopened");
        return;
    }
    struct app_conf nc;
    conf_defaults(&nc);
    cdn_conf_err_t err;
    cdn_conf_t *doc = conf_load(app.conf_path, &nc, &err);
    if (doc == NULL) {
        cdn_err("reload failed, keeping the running config: %s", err.msg);
        return;
    }
    struct shop_rules *nr = cdn_conf_alloc(doc, sizeof(*nr));
    *nr = nc.rules.n ? nc.rules : *shop_rules_default();
    if (nc.error_cache_control)
        nr->error_cache_control = nc.error_cache_control;
    if (nc.server_error_cache_control)
        nr->server_error_cache_control = nc.server_error_cache_control;
    app.conf.delay = nc.delay;
    app.conf.error_rate = nc.error_rate;
    __atomic_store_n(&app.rules, nr, __ATOMIC_RELEASE);
    if (app.reload_doc != NULL && cdn_daemon_retire(app.d, app.reload_doc, free_doc) != 0)
        cdn_warn("reload: cannot retire the previous config (out of memory): it stays");
    app.reload_doc = doc;
    cdn_notice("SIGHUP: config %s reloaded (%zu header rules)", app.conf_path, nr->n);
}

/* ---------------- main ---------------- */

static double gauge_img_bytes(void *d) { return (double)shop_imgcache_bytes(app.images); }
static double gauge_img_count(void *d) { return (double)shop_imgcache_count(app.images); }
static double gauge_products(void *d) { return (double)app.conf.products; }

static int setup_metrics(void)
{
    const char *req_labels[] = {"class", "status", NULL};
    const char *lat_labels[] = {"class", NULL};
    app.metrics = cdn_metrics_new();
    if (app.metrics == NULL)
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

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [options]\n"
            "The lab shop's app server: catalog pages, JSON API, product images, cart.\n\n"
            "  -a, --listen ADDR       listen on ADDR (127.0.0.1:8081); quick mode when no config\n"
            "  -c, --config FILE       YAML config (see origin/examples/shop-app.yaml)\n"
            "  -t, --test              check the config and the catalog, then exit\n"
            "      --generate N        generate a catalog of N products into --db and exit\n"
            "                          (with -a: generate, then serve)\n"
            "      --seed S            catalog seed (default %d)\n"
            "      --db FILE           catalog file (default: the cache folder)\n"
            "      --threads N         worker threads (default 1)\n"
            "      --cdn-host URL      where pages link images (default https://img.shop.test;\n"
            "                          \"\" for same-origin)\n"
            "      --name NAME         this instance's name (X-Served-By), default the listen address\n"
            "      --delay MS          service delay per request, in milliseconds\n"
            "      --error-rate P      fraction of requests answered 500 (0..1)\n"
            "      --access-log FILE   access log (\"-\" = stdout)\n"
            "      --error-log FILE    error log (default stderr)\n"
            "      --pid-file FILE     write the pid there\n"
            "  -V, --version           print the version\n"
            "  -h, --help              this text\n"
            "Signals: TERM/INT stop gracefully, HUP reopens logs and reloads header rules.\n",
            SHOP_DEFAULT_SEED);
}

/* $XDG_CACHE_HOME/cdn-lab or ~/.cache/cdn-lab, created unless only named (create 0: a config
 * test writes nothing). */
static int cache_dir(char *out, size_t cap, int create)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char base[PATH_MAX];
    if (x != NULL && *x)
        snprintf(base, sizeof(base), "%s", x);
    else if (home != NULL && *home)
        snprintf(base, sizeof(base), "%s/.cache", home);
    else
        snprintf(base, sizeof(base), "/tmp");
    if ((size_t)snprintf(out, cap, "%s/cdn-lab", base) >= cap)
        return -1;
    if (!create)
        return 0;
    mkdir(base, 0755);
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_GENERATE = 256, O_SEED, O_DB, O_THREADS, O_CDN, O_NAME, O_DELAY, O_ERATE, O_ALOG, O_ELOG, O_PID };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'a'}, {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'}, {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'},
        {"generate", required_argument, NULL, O_GENERATE}, {"seed", required_argument, NULL, O_SEED},
        {"db", required_argument, NULL, O_DB}, {"threads", required_argument, NULL, O_THREADS},
        {"cdn-host", required_argument, NULL, O_CDN}, {"name", required_argument, NULL, O_NAME},
        {"delay", required_argument, NULL, O_DELAY}, {"error-rate", required_argument, NULL, O_ERATE},
        {"access-log", required_argument, NULL, O_ALOG}, {"error-log", required_argument, NULL, O_ELOG},
        {"pid-file", required_argument, NULL, O_PID}, {NULL, 0, NULL, 0}};
    const char *listen = NULL, *db = NULL, *cdn = NULL, *name = NULL, *alog = NULL, *elog = NULL, *pid = NULL;
    long generate = -1, threads = -1;
    long long seed = -1;
    double erate = -1;
    long delay = -1;
    int test = 0, ch;
    char *end;

    conf_defaults(&app.conf);
    while ((ch = getopt_long(argc, argv, "a:c:tVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': listen = optarg; break;
        case 'c': app.conf_path = optarg; break;
        case 't': test = 1; break;
        case 'V': cdn_print_version(PROG); return 0;
        case 'h': usage(stdout); return 0;
        case O_GENERATE:
            generate = strtol(optarg, &end, 10);
            if (*end || generate < 1 || generate > 10000000) {
                fprintf(stderr, PROG ": --generate wants a product count from 1 to 10000000\n");
                return 2;
            }
            break;
        case O_SEED:
            seed = strtoll(optarg, &end, 10);
            if (*end || seed < 0) {
                fprintf(stderr, PROG ": --seed wants a non-negative integer\n");
                return 2;
            }
            break;
        case O_DB: db = optarg; break;
        case O_THREADS:
            threads = strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > MAX_WORKERS) {
                fprintf(stderr, PROG ": --threads wants 1..%d\n", MAX_WORKERS);
                return 2;
            }
            break;
        case O_CDN: cdn = optarg; break;
        case O_NAME: name = optarg; break;
        case O_DELAY:
            delay = strtol(optarg, &end, 10);
            if (*end || delay < 0) {
                fprintf(stderr, PROG ": --delay wants milliseconds\n");
                return 2;
            }
            break;
        case O_ERATE:
            erate = strtod(optarg, &end);
            if (*end || erate < 0 || erate > 1) {
                fprintf(stderr, PROG ": --error-rate wants a fraction from 0 to 1\n");
                return 2;
            }
            break;
        case O_ALOG: alog = optarg; break;
        case O_ELOG: elog = optarg; break;
        case O_PID: pid = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }

    if (app.conf_path != NULL) {
        cdn_conf_err_t err;
        app.cdoc = conf_load(app.conf_path, &app.conf, &err);
        if (app.cdoc == NULL) {
            fprintf(stderr, PROG ": %s\n", err.msg);
            return 1;
        }
    }
    /* the command line wins over the file */
    if (listen != NULL) {
        app.conf.listen.len = sizeof(app.conf.listen.ss);
        if (cdn_parse_addr(listen, "127.0.0.1", &app.conf.listen.ss, &app.conf.listen.len) != 0) {
            fprintf(stderr, PROG ": bad listen address '%s'\n", listen);
            return 2;
        }
        app.conf.listen.text = listen;
    }
    if (db) app.conf.db = db;
    if (cdn) app.conf.cdn_host = cdn;
    if (name) app.conf.name = name;
    if (alog) app.conf.access_log = alog;
    if (elog) app.conf.error_log = elog;
    if (pid) app.conf.pid_file = pid;
    if (threads > 0) app.conf.threads = (unsigned)threads;
    if (seed >= 0) app.conf.seed = seed;
    if (generate > 0) app.conf.products = (unsigned)generate;
    if (delay >= 0) app.conf.delay = (uint64_t)delay;
    if (erate >= 0) app.conf.error_rate = erate;

    /* a config test writes nothing: not even the error log (its messages go to stderr) */
    if (cdn_log_open(PROG, test ? NULL : app.conf.error_log, (enum cdn_log_level)cdn_log_level_parse(app.conf.log_level)) != 0) {
        fprintf(stderr, PROG ": cannot open error log %s: %s\n", app.conf.error_log, strerror(errno));
        return 1;
    }

    /* the catalog: generate on request, or in quick mode into the cache folder when missing */
    char dbpath[PATH_MAX], err[512];
    if (app.conf.db == NULL) {
        char dir[PATH_MAX - 64];
        if (cache_dir(dir, sizeof(dir), !test) != 0) {
            fprintf(stderr, PROG ": no cache folder for the catalog (set XDG_CACHE_HOME or use --db)\n");
            return 1;
        }
        snprintf(dbpath, sizeof(dbpath), "%s/catalog-%u-%lld.db", dir, app.conf.products, app.conf.seed);
        app.conf.db = dbpath;
    }
    int serving = app.conf.listen.len > 0;
    if (test && !serving) {
        fprintf(stderr, PROG ": nothing to listen on (-a ADDR or listen: in the config)\n");
        return 1;
    }
    if (test && access(app.conf.db, F_OK) != 0) {
        /* the catalog is made at start when missing: a config test only says so */
        printf(PROG ": configuration ok (catalog %s does not exist yet: %u products are generated at start)\n",
               app.conf.db, app.conf.products);
        return 0;
    }
    if (!test && (generate > 0 || (access(app.conf.db, R_OK) != 0 && serving))) {
        if (shop_catalog_generate(app.conf.db, app.conf.products, (uint64_t)app.conf.seed, err, sizeof(err)) != 0) {
            fprintf(stderr, PROG ": generating %s: %s\n", app.conf.db, err);
            return 1;
        }
        cdn_info("catalog %s: %u products, seed %lld", app.conf.db, app.conf.products, app.conf.seed);
        if (!serving && !test)
            return 0;
    }
    shop_catalog_t *probe = shop_catalog_open(app.conf.db, err, sizeof(err));
    if (probe == NULL) {
        const cdn_conf_node_t *at = db == NULL && app.cdoc != NULL ? cdn_conf_get(cdn_conf_root(app.cdoc), "db") : NULL;
        if (at != NULL) { /* the file named it: say where */
            cdn_conf_err_t cerr;
            cdn_conf_fail(app.cdoc, at, &cerr, "db: not a catalog: %s", err);
            fprintf(stderr, PROG ": %s\n", cerr.msg);
        } else {
            fprintf(stderr, PROG ": %s\n", err);
        }
        return 1;
    }
    app.conf.products = shop_catalog_count(probe);
    app.catalog_time = shop_catalog_generated_at(probe);
    shop_catalog_close(probe);
    if (!serving) {
        fprintf(stderr, PROG ": nothing to listen on (-a ADDR or listen: in the config)\n");
        return test ? 1 : 2;
    }
    if (test) {
        printf(PROG ": configuration ok (catalog %s, %u products)\n", app.conf.db, app.conf.products);
        return 0;
    }

    /* rules */
    if (app.conf.rules.n > 0) {
        app.rules_buf = app.conf.rules;
    } else
        app.rules_buf = *shop_rules_default();
    if (app.conf.error_cache_control)
        app.rules_buf.error_cache_control = app.conf.error_cache_control;
    if (app.conf.server_error_cache_control)
        app.rules_buf.server_error_cache_control = app.conf.server_error_cache_control;
    app.rules = &app.rules_buf;

    char abuf[64];
    cdn_addr_str((struct sockaddr *)&app.conf.listen.ss, abuf, sizeof(abuf));
    snprintf(app.name, sizeof(app.name), "%s", app.conf.name ? app.conf.name : abuf);
    app.site.img_base = app.conf.cdn_host ? app.conf.cdn_host : "";
    app.site.name = app.name;
    app.images = shop_imgcache_new((size_t)app.conf.image_cache);
    if (app.images == NULL || setup_metrics() != 0) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    if (app.conf.access_log != NULL) {
        app.alog = cdn_alog_open(app.conf.access_log, (enum cdn_alog_format)app.conf.access_log_format);
        if (app.alog == NULL) {
            fprintf(stderr, PROG ": cannot open access log %s: %s\n", app.conf.access_log, strerror(errno));
            return 1;
        }
    }
    if (app.conf.pid_file != NULL && cdn_pidfile_write(app.conf.pid_file, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }

    /* h2o: one host, one path, our handler + gzip filter + logger */
    h2o_config_init(&app.h2o);
    app.h2o.server_name = h2o_iovec_init(H2O_STRLIT(PROG));
    app.h2o.max_request_entity_size = 1u << 20; /* the shop takes small forms only (h2o: 413 above) */
    h2o_hostconf_t *hc = h2o_config_register_host(&app.h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = on_req;
    h2o_compress_register(pc, &(h2o_compress_args_t){.min_size = 150, .gzip = {1}, .brotli = {-1}});
    h2o_create_logger(pc, sizeof(h2o_logger_t))->log_access = on_log_access;

    struct cdn_daemon_opts dopts = {.prog = PROG, .threads = app.conf.threads, .listen = (struct sockaddr *)&app.conf.listen.ss,
                                    .listen_len = app.conf.listen.len, .reuseport = 1, .h2o = &app.h2o,
                                    .drain_ms = app.conf.graceful_timeout, .on_worker_init = on_worker_init,
                                    .on_worker_exit = on_worker_exit, .on_reload = on_reload, .on_reopen = on_reopen};
    app.nworkers = (int)app.conf.threads;
    if ((app.d = cdn_daemon_new(&dopts, err, sizeof(err))) == NULL) {
        fprintf(stderr, PROG ": %s\n", err);
        if (app.conf.pid_file)
            cdn_pidfile_remove(app.conf.pid_file);
        return 1;
    }
    pthread_mutex_init(&app.render_mu, NULL);
    pthread_cond_init(&app.render_cv, NULL);
    app.render_tail = &app.render_head;
    for (unsigned i = 0; i < app.conf.render_threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, render_main, NULL) != 0) {
            fprintf(stderr, PROG ": cannot start render threads\n");
            return 1;
        }
        pthread_detach(t);
    }
    cdn_notice("listening on %s (%d thread%s, catalog %s: %u products, images on %s)", abuf, app.nworkers,
               app.nworkers > 1 ? "s" : "", app.conf.db, app.conf.products, *app.site.img_base ? app.site.img_base : "this host");
    int rc = cdn_daemon_run(app.d);
    cdn_daemon_free(app.d);
    cdn_notice("stopped");
    if (app.conf.pid_file)
        cdn_pidfile_remove(app.conf.pid_file);
    if (app.alog)
        cdn_alog_close(app.alog);
    return rc;
}
