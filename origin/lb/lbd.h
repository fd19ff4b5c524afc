/* origin/lb/lbd.h - shop-lb's internal API between its files: the config (conf.c), the pools,
 * their health and reloads (pool.c), the proxy (proxy.c), the admin endpoints and metrics
 * (admin.c); main.c ties them to the daemon runtime (cdn/daemon.h).
 *
 * Rules:
 * - `threads` workers (cdn/daemon.h), each with its own cdn_httpc (so its own keep-alive pool to
 *   the backends) and timeouts in struct lb_worker. Worker 0 is the main thread: it also runs
 *   the admin listener, the signals (SIGHUP reload) and every active health check.
 * - Shared state (pools, backends: up/down, streaks, slow start, drained/removed, requests in
 *   flight for leastconn, the rr counters, the ring; routes, protected paths, retries, health
 *   settings) is read and written only under lb.mu. Holds are short (a pick, a counter); nothing
 *   under it blocks or calls into curl.
 * - Config lifetime: the first document lives as long as the process (restart-only settings:
 *   listen, logs, pid file point into it). A reload's document replaces the previous reload's,
 *   which goes to cdn_daemon_retire: freed once every worker has finished the loop turn it was
 *   in. Pointers into a document (route prefixes, tokens, the health path) are therefore used
 *   within one callback, under lb.mu, never kept across turns.
 * - A request lives on the worker that accepted its connection; its upstream transfer uses that
 *   worker's httpc and timeouts. Metrics are per-thread counters (cdn/metrics.h).
 * - A backend is eligible when it is up (active checks: the rise/fall rule of cdn/risefall.h;
 *   passive: `passive_fails` consecutive connect errors/timeouts/5xx take it down at once), not
 *   drained and not removed. A returning backend's weight ramps from 10% to 100% over slow_start
 *   (round robin and least connections; the hash ring gives keys back at once). */
#ifndef ORIGIN_LB_LBD_H
#define ORIGIN_LB_LBD_H

#include <pthread.h>
#include <h2o.h>

#include "cdn/admin.h"
#include "cdn/breaker.h"
#include "cdn/config.h"
#include "cdn/daemon.h"
#include "cdn/httpc.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/metrics.h"
#include "cdn/ratelimit.h"
#include "cdn/risefall.h"
#include "origin/lb/lb.h"

#define PROG "shop-lb"
#define MAX_BACKENDS 64      /* the retry exclusion mask is 64 bits */
#define MAX_POOLS 16
#define MAX_ROUTES 64
#define MAX_THREADS 64       /* CDN_METRICS_MAX_THREADS: one metrics slot per worker */

/* ---------------- conf.c ---------------- */

struct conf_backend {
    const char *addr;
    unsigned weight;
};

struct conf_pool {
    const char *name;       /* the map key */
    int algo;
    unsigned vnodes;
    struct cdn_conf_list backends; /* struct conf_backend */
};

struct conf_route {
    const char *prefix;
    const char *pool;
};

struct conf_protect {
    const char *prefix;
    const char *token;
};

struct conf_health {
    int enabled;
    const char *path;
    uint64_t interval, timeout, slow_start;
    unsigned rise, fall, passive_fails;
};

struct conf_timeouts {
    uint64_t connect, first_byte, idle, total;
    uint64_t hedge;                 /* no first byte this long: an idempotent request is also sent
                                       to another backend, the first answer wins (0: off) */
};

/* breaker: {...} (cdn/breaker.h): one circuit breaker per backend; off unless failures or
 * error_ratio is set */
struct conf_breaker {
    unsigned failures, min_requests, probes;
    double error_ratio;
    uint64_t window, open;
};

struct conf_ratelimit {
    const char *rate, *key, *path_prefix, *name, *redis;
    long long burst;
    uint64_t redis_timeout;
};

struct lb_conf {
    struct cdn_conf_addr listen, admin;
    const char *admin_token_file;   /* POST /backends needs its token (cdn/admin.h); none: 403 */
    const char *error_log, *log_level, *access_log, *pid_file;
    int access_log_format;
    int upstream_curl;              /* upstream_engine: 0 h1 (GET/HEAD on cdn_httpc's HTTP/1.1 engine), 1 curl */
    unsigned retries;
    unsigned threads;
    uint64_t graceful_timeout;      /* drain deadline of a graceful stop */
    struct conf_timeouts timeouts;
    struct conf_health health;
    struct conf_breaker breaker;
    struct cdn_conf_list pools;     /* struct conf_pool */
    struct cdn_conf_list routes;    /* struct conf_route */
    struct cdn_conf_list protect;   /* struct conf_protect */
    struct conf_ratelimit rate_limit; /* rate off when absent; redis and redis_timeout: restart */
};

/* What the command line says; applied over the file at start and again on every reload. */
struct lb_cmdline {
    const char *conf_path, *listen, *admin, *backends[MAX_BACKENDS];
    const char *admin_token_file;
    int nb, algo, test, nohealth;
    long retries, threads, hint, rise, fall, slow, cto, fbto;
    const char *alog, *elog, *pid;
    int alog_format; /* --access-log-format: -1 unset, else enum cdn_alog_format */
    int engine;      /* --upstream-engine: -1 unset, 0 h1, 1 curl */
};

/* Parses argv: 0 to go on, or the exit code (+1: 0 for --help/--version, 2 for a usage error). */
int lb_cmdline_parse(int argc, char **argv, struct lb_cmdline *cl);
/* Defaults, then the file (if any), then the command line, into *c; *doc is the decoded file
 * (NULL without one), which c's strings point into. 0, or -1 with err set (file:line:col). */
int lb_conf_load(const struct lb_cmdline *cl, struct lb_conf *c, cdn_conf_t **doc, char *err, size_t errlen);
/* "http://host:port/" or "host:port" -> "host:port"; its length, or 0 when malformed. */
size_t lb_norm_addr(const char *addr, const char **out);

/* ---------------- pool.c: shared state ---------------- */

struct pool;

struct backend {
    struct pool *pool;
    char addr[128];          /* "127.0.0.1:8081" */
    char base[160];          /* "http://127.0.0.1:8081" */
    int up, drained, removed;
    struct cdn_risefall hc;  /* active checks (its `up` mirrors `up` above) */
    unsigned passive_streak;
    uint64_t up_since;       /* for slow start */
    cdn_timer_t *check_timer;
    cdn_httpc_req_t *check;
    uint64_t requests, errors;
    struct cdn_breaker brk;  /* under lb.mu: open, it is not eligible (half-open: probes only) */
    cdn_series_t *s_requests, *s_errors, *s_up, *s_active, *s_latency, *s_brk;
};

struct pool {
    char name[64];
    enum lb_algo algo;
    unsigned vnodes;
    size_t n;
    struct backend be[MAX_BACKENDS];
    struct lb_member m[MAX_BACKENDS];
    struct lb_ring ring;
    unsigned rotor;
};

struct route {
    const char *prefix;
    struct pool *pool;
};
/* A worker's own state (cdn_worker.data). */
struct lb_worker {
    struct cdn_worker *cw;
    h2o_evloop_t *loop;
    cdn_httpc_t *httpc;
    h2o_timeout_t fb_timeout, idle_timeout, hedge_timeout;
    int hedge_on;
    cdn_series_t *s_requests;
    struct cdn_rlshare *rls;        /* rate limits shared through Redis (rate_limit.redis), or NULL */
};

/* The rate limit in force (limit.c), under lb.mu; rebuilt from the config by lb_sync_config. */
#define LB_RL_NAME_MAX 64
#define LB_RL_PREFIX_MAX 256
#define LB_RL_BY_LOCAL 4            /* decided by the local table, no Redis configured */
struct lb_limit {
    int on, key;
    struct cdn_rl_rate rate;
    char name[LB_RL_NAME_MAX + 1], prefix[LB_RL_PREFIX_MAX], header[LB_RL_NAME_MAX + 1];
};

extern struct lb {
    pthread_mutex_t mu;             /* the shared state: see the rules at the top */
    struct lb_conf conf;
    struct lb_cmdline cmdline;
    cdn_conf_t *doc0;               /* the first document: lives as long as the process */
    cdn_conf_t *doc;                /* the last reload's, retired when replaced */
    struct pool pools[MAX_POOLS];
    size_t npools;
    struct route routes[MAX_ROUTES];
    size_t nroutes;
    h2o_globalconf_t h2o;
    cdn_daemon_t *d;
    struct lb_worker workers[MAX_THREADS];
    h2o_evloop_t *loop;             /* worker 0's: health checks, admin, signals */
    cdn_httpc_t *httpc;             /* worker 0's: health checks */
    cdn_alog_t *alog;
    cdn_metrics_t *metrics;
    cdn_metric_t *m_be_breaker;     /* gauge: 0 closed, 1 open, 2 half-open */
    cdn_metric_t *m_be_requests, *m_be_errors, *m_be_up, *m_be_active, *m_be_latency, *m_requests, *m_retries,
        *m_checks, *m_reloads;
    cdn_metric_t *m_thread_requests;
    cdn_series_t *s_retries, *s_reload_ok, *s_reload_err, *s_hedges;
    struct lb_limit limit;
    struct cdn_rl *rl_local;        /* the local GCRA table, all workers (thread-safe) */
    cdn_metric_t *m_rl, *m_rl_by;
    cdn_series_t *s_rl_allowed, *s_rl_limited, *s_rl_by[5];
    uint64_t rid_seq;               /* atomic */
    uint64_t rid_salt;
} lb;

static inline void lb_lock(void) { pthread_mutex_lock(&lb.mu); }
static inline void lb_unlock(void) { pthread_mutex_unlock(&lb.mu); }
static inline int lb_stopping(void) { return lb.d != NULL && cdn_daemon_stopping(lb.d); }

/* The algorithms' view of a pool, refreshed before each choice (slow start depends on the time).
 * Under lb.mu. */
void lb_refresh_members(struct pool *p);
/* Passive health: a real request's outcome. Any thread; takes lb.mu. */
void lb_passive_result(struct backend *b, int failed);
/* The backend's breaker (conf.breaker): a request to it was let through (under lb.mu, at the
 * pick; *probe set for a half-open probe); its outcome, once (any thread; takes lb.mu); or its
 * release when it ended without one (the client left). Transitions are logged and in the gauge
 * shop_lb_backend_breaker. */
void lb_breaker_sent(struct backend *b, int *probe);
void lb_breaker_result(struct backend *b, int failed, int probe);
void lb_breaker_release(struct backend *b, int probe);
/* Main thread, under lb.mu. */
int lb_backend_add(struct pool *p, const char *addr, unsigned weight, char *err, size_t errlen);
void lb_backend_remove(struct backend *b);
struct backend *lb_backend_find(struct pool *p, const char *addr, size_t len);
struct pool *lb_pool_find(const char *name);
/* Makes pools, backends, routes and protected paths what c says (checked first: a bad config
 * changes nothing). Main thread, under lb.mu. 0 or -1 with err. */
int lb_sync_config(struct lb_conf *c, char *err, size_t errlen);
/* The quick mode's pool "default" on "/" with the command line's backends. Main thread. */
int lb_quick_pool(const struct lb_cmdline *cl, char *err, size_t errlen);
/* SIGHUP: the file and the command line again; the running state stays on error. */
void lb_reload(void *data);

/* ---------------- proxy.c ---------------- */

int lb_on_proxy_req(h2o_handler_t *h, h2o_req_t *req);
/* After the gateway's checks: route to a pool and proxy (takes lb.mu itself). 0. */
int lb_proxy_route(h2o_req_t *req);

/* ---------------- limit.c ---------------- */

/* The rate limit of the request's path, then lb_proxy_route, or a 429; now or once Redis
 * answered. 0 (the handler's answer). */
int lb_limit_req(h2o_req_t *req, struct lb_worker *w);
/* Under lb.mu: lb.limit from c. */
void lb_limit_sync(const struct lb_conf *c);
/* What conf_check asks of rate_limit: 0, or -1 with the field at fault (NULL: the map) and why. */
int lb_limit_conf_check(const struct conf_ratelimit *r, const char **bad_field, char *why, size_t whylen);
void lb_on_log_access(h2o_logger_t *logger, h2o_req_t *req);
void lb_send_plain(h2o_req_t *req, int status, const char *reason, const char *msg);

/* ---------------- admin.c ---------------- */

int lb_metrics_init(void);
/* The admin listener (/healthz /metrics /backends) on the main loop. NULL with err set. */
cdn_admin_t *lb_admin_start(char *err, size_t errlen);

#endif
