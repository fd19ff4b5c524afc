/* origin/shop/app.h - shop-app's internal API between its files: the settings and reload (conf.c),
 * the request entry, the service-delay queue and the handlers (serve.c), the response helpers
 * (respond.c), image rendering off the loop (render.c), Idempotency-Key (idem.c), metrics,
 * /healthz and /metrics (admin.c); main.c ties them to the daemon runtime (cdn/daemon.h). The
 * library parts (parsers, rules, catalog, images, pages) are shop.h's; the daemon's own functions
 * here are prefixed app_.
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
 *   stay referenced until h2o has sent them).
 * - A request lives on the worker that accepted it (app_worker_of); its handlers use that worker's
 *   catalog connection. Shared state: the image cache and the render queue (their own locks),
 *   the Idempotency-Key store (its own lock), metrics (per-thread counters), the rules (an atomic
 *   pointer). */
#ifndef ORIGIN_SHOP_APP_H
#define ORIGIN_SHOP_APP_H

#include <pthread.h>
#include <h2o.h>

#include "cdn/config.h"
#include "cdn/daemon.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/metrics.h"
#include "origin/shop/shop.h"
#include "origin/shop/db.h"

#define PROG "shop-app"
#define MAX_WORKERS 16
#define MAX_BODY (8u << 20)

/* ---------------- conf.c ---------------- */

struct app_conf {
    struct cdn_conf_addr listen;
    const char *name;
    unsigned threads;
    const char *db;            /* a catalog file or a postgresql:// URL (db.h) */
    struct app_db_conf pg;     /* "db:" as a map: primary, replica, ... (db.h) */
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
    uint64_t idempotency_ttl;  /* Idempotency-Key: how long an answer is kept */
    unsigned idempotency_keys; /* how many at most (0: the header is ignored) */
    uint64_t idempotency_bytes; /* and in how many bytes */
};

/* What the command line says; applied over the file at start and again on every reload. Unset:
 * NULL or -1. */
struct app_cmdline {
    const char *conf_path, *listen, *db, *cdn, *name, *alog, *elog, *pid;
    int alog_format; /* --access-log-format: -1 unset, else enum cdn_alog_format */
    long generate, threads, delay;
    long long seed;
    double erate;
    int test;
};

/* Parses argv: 0 to go on, or the exit code + 1 (0 for --help/--version, 2 for a usage error). */
int app_cmdline_parse(int argc, char **argv, struct app_cmdline *cl);
/* Defaults, then the file (if any), then the command line, into *c; *doc is the decoded file
 * (NULL without one), which c's strings point into. 0, or the exit code (1: a bad file, 2: a bad
 * command line) with err set (file:line:col). */
int app_conf_load(const struct app_cmdline *cl, struct app_conf *c, cdn_conf_t **doc, char *err, size_t errlen);
/* The rules a config asks for: its "headers:" or the built-in set, with its error Cache-Controls. */
struct shop_rules app_conf_rules(const struct app_conf *c);
/* The catalog: names the default file (the cache folder), generates it when asked or missing,
 * opens it once to count the products. -1: go on serving; otherwise the exit code (messages
 * printed). A config test (-t) writes nothing. */
int app_catalog_prepare(void);
/* SIGHUP: the file and the command line again; the header rules, delay and error rate change
 * live. The running state stays on error. Main thread. */
void app_reload(void *data);

/* ---------------- shared state ---------------- */

enum app_class { C_HOME, C_CATEGORY, C_PRODUCT, C_IMAGE, C_API, C_SEARCH, C_CART, C_HEALTH, C_METRICS, C_OTHER, C_ASSET, C_N };

struct render_job;

/* A worker's own state (cdn_worker.data). */
struct app_worker {
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
    h2o_linklist_t idem_claims; /* this worker's requests holding an Idempotency-Key claim (idem.c) */
    struct app_db_rows *db_rows; /* PostgreSQL: the rows of the request being served (db.c) */
    struct app_pgpool *db_pool[APP_PG_NROLES]; /* PostgreSQL: primary and replica connections */
};

struct app_idem;

extern struct app {
    struct app_conf conf;
    struct app_cmdline cmdline;
    cdn_conf_t *cdoc;          /* the first document: restart-only settings point into it */
    cdn_conf_t *reload_doc;    /* the last reload's: retired when the next one replaces it */
    cdn_daemon_t *d;
    const struct shop_rules *rules;  /* atomic pointer: SIGHUP swaps it */
    struct shop_rules rules_buf;
    h2o_globalconf_t h2o;
    struct shop_site site;
    char name[128];
    shop_imgcache_t *images;
    struct app_idem *idem;     /* Idempotency-Key answers (idem.c); NULL: the header is ignored */
    cdn_alog_t *alog;
    cdn_metrics_t *metrics;
    cdn_metric_t *m_requests, *m_latency, *m_renders, *m_img_hits;
    cdn_series_t *s_renders, *s_img_hits;
    cdn_series_t *s_latency[C_N];
    pthread_mutex_t render_mu; /* the render queue */
    pthread_cond_t render_cv;
    struct render_job *render_head, **render_tail;
    int nworkers;
    struct app_worker workers[MAX_WORKERS];
    int64_t catalog_time;
} app;

static inline const struct shop_rules *app_rules_now(void) { return __atomic_load_n(&app.rules, __ATOMIC_ACQUIRE); }
static inline struct app_worker *app_worker_of(h2o_req_t *req) { return cdn_worker_of(req)->data; }

/* ---------------- serve.c ---------------- */

int app_on_req(h2o_handler_t *h, h2o_req_t *req);
enum app_class app_classify(const char *p, size_t len);
/* The worker's delay queue: its timer. Main thread, in on_worker_init. */
int app_delay_init(struct app_worker *w);

/* ---------------- respond.c ---------------- */

h2o_iovec_t app_req_header(h2o_req_t *req, const h2o_token_t *tok);
h2o_iovec_t app_req_header_str(h2o_req_t *req, const char *name);
int app_is_method(h2o_req_t *req, const char *m);
void app_set_hdr(h2o_req_t *req, const h2o_token_t *tok, const char *v);
void app_set_hdr_str(h2o_req_t *req, const char *name, const char *v);
/* X-Served-By, and the X-Request-Id echoed. */
void app_common_headers(h2o_req_t *req);
/* A whole response from the status, the headers set so far and body (copied into the pool); every
 * answer but an image's or a 304 goes out here, so that an Idempotency-Key claim sees it. */
void app_send(h2o_req_t *req, int status, const char *reason, const char *body, size_t len);
void app_send_error(h2o_req_t *req, int status, const char *reason, const char *msg);
/* A text body (HTML, JSON) with weak ETag, validators, caching headers and gzip by the rule; takes
 * body (freed). */
void app_send_text(h2o_req_t *req, const struct shop_rule *rule, const char *ctype, struct shop_buf *body,
                   const char *surrogate_key, int64_t last_modified);
/* img: a reference the response takes over (released when the request's pool goes); NULL: 500. */
/* negotiated: the URL named no format (chosen by Accept), so the answer says Vary: Accept. */
void app_send_image(h2o_req_t *req, const struct shop_rule *rule, const struct shop_product *p,
                    struct shop_image *img, int negotiated);

/* ---------------- render.c ---------------- */

/* The render threads. Main thread, before the daemon runs. 0 or -1. */
int app_render_start(unsigned threads);
/* The worker's eventfd the render threads wake it with. 0, or -1 with err. */
int app_render_worker_init(struct app_worker *w, char *err, size_t errlen);
/* A cache miss: rendered on a render thread, answered on w's loop (p in the request's pool). */
void app_render_submit(struct app_worker *w, h2o_req_t *req, const struct shop_product *p, enum shop_img_size size,
                       enum shop_img_fmt fmt, int negotiated);

/* ---------------- idem.c ---------------- */

/* The store of answers by key: at most max_entries and max_bytes, each for ttl_ms. Main thread,
 * after app_metrics_init (its counters). NULL when out of memory. */
struct app_idem *app_idem_new(size_t max_entries, uint64_t ttl_ms, size_t max_bytes);
enum app_idem_claim { APP_IDEM_NONE, APP_IDEM_CLAIMED, APP_IDEM_ANSWERED };
/* On a request's arrival: NONE (no key, not a POST, or no client to scope it to: serve it as it
 * is), CLAIMED (the first with its key: serve it; app_send remembers its answer), or ANSWERED
 * (the first answer replayed, or a 400, 409, 422 or 503 sent). */
enum app_idem_claim app_idem_claim(h2o_req_t *req);
/* From app_send, with the answer about to go out: remembers it when req holds a claim. */
void app_idem_answer(h2o_req_t *req, const char *body, size_t len);

/* ---------------- admin.c ---------------- */

int app_metrics_init(void);
/* /healthz and /metrics, on the app's own listener (never delayed or failed on purpose). */
void app_on_health(h2o_req_t *req);
void app_on_metrics(h2o_req_t *req, const struct shop_rule *rule);
void app_on_log_access(h2o_logger_t *logger, h2o_req_t *req);

#endif
