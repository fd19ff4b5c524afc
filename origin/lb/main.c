/* origin/lb/main.c - shop-lb: the L7 load balancer and API gateway in front of the shop-apps.
 *
 * Owns: pools of backends (state, health, slow start), routing by path prefix, gateway auth, the
 * proxying of a request to a backend through cdn_httpc (streamed back with h2o_send/proceed and
 * back-pressure by pausing the upstream), retries, the admin listener, metrics and logs.
 *
 * Rules:
 * - `threads` workers, each its own h2o loop, context, SO_REUSEPORT listener, cdn_httpc (so its own
 *   keep-alive pool to the backends) and timeouts. Worker 0 is the main thread: it also runs the
 *   admin listener, the signals (SIGHUP reload) and every active health check.
 * - Shared state (pools, backends: up/down, streaks, slow start, drained/removed, requests in
 *   flight for leastconn, the rr counters, the ring; routes, protected paths, retries, health
 *   settings) is read and written only under lb.mu. Holds are short (a pick, a counter); nothing
 *   under it blocks or calls into curl. Strings of the config documents are never freed (reloads
 *   keep the old documents), so a route or token pointer taken under the lock stays valid.
 * - A request lives on the worker that accepted its connection; its upstream transfer uses that
 *   worker's httpc and timeouts. Metrics are per-thread counters (cdn/metrics.h).
 * - A backend is eligible when it is up (active checks: `rise` successes bring it up, `fall`
 *   failures take it down; passive: `passive_fails` consecutive connect errors/timeouts/5xx take it
 *   down at once), not drained and not removed. A returning backend's weight ramps from 10% to
 *   100% over slow_start (round robin and least connections; the hash ring gives keys back at once).
 * - Retries: only idempotent methods, only when the backend failed before the response started,
 *   each on a backend not tried yet, at most `retries` times. A response that started is relayed
 *   as it is (an error in its body aborts the client's response).
 * - A proxied request's state lives in the request's pool; the pool's dispose cancels the upstream
 *   transfer, so a client that goes away frees everything. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <h2o.h>

#include "cdn/config.h"
#include "cdn/http.h"
#include "cdn/httpc.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/metrics.h"
#include "cdn/proc.h"
#include "origin/lb/lb.h"
#include "origin/shop/shop.h"

#define PROG "shop-lb"
#define MAX_BACKENDS 64      /* the retry exclusion mask is 64 bits */
#define MAX_POOLS 16
#define PEND_HIGH (256u << 10) /* pause the upstream above this much unsent body */
#define MAX_THREADS 64       /* CDN_METRICS_MAX_THREADS: one metrics slot per worker */

/* ---------------- configuration ---------------- */

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
};

struct lb_conf {
    struct cdn_conf_addr listen, admin;
    const char *error_log, *log_level, *access_log, *pid_file;
    int access_log_format;
    unsigned retries;
    unsigned threads;
    struct conf_timeouts timeouts;
    struct conf_health health;
    struct cdn_conf_list pools;     /* struct conf_pool */
    struct cdn_conf_list routes;    /* struct conf_route */
    struct cdn_conf_list protect;   /* struct conf_protect */
};

static const char *const alog_formats[] = {"combined", "json", NULL};

static const cdn_conf_field_t backend_fields[] = {
    {"addr", CDN_CT_STR, offsetof(struct conf_backend, addr), CDN_CF_REQUIRED},
    {"weight", CDN_CT_UINT, offsetof(struct conf_backend, weight), 0, 1, 1000},
    {NULL}};
static const cdn_conf_field_t pool_fields[] = {
    {"name", CDN_CT_STR, offsetof(struct conf_pool, name)},
    {"algo", CDN_CT_ENUM, offsetof(struct conf_pool, algo), .enum_names = lb_algo_names},
    {"vnodes", CDN_CT_UINT, offsetof(struct conf_pool, vnodes), 0, 1, 1000},
    {"backends", CDN_CT_LIST, offsetof(struct conf_pool, backends), CDN_CF_REQUIRED, .sub = backend_fields,
     .sub_size = sizeof(struct conf_backend)},
    {NULL}};
static const cdn_conf_field_t route_fields[] = {
    {"prefix", CDN_CT_STR, offsetof(struct conf_route, prefix), CDN_CF_REQUIRED},
    {"pool", CDN_CT_STR, offsetof(struct conf_route, pool), CDN_CF_REQUIRED},
    {NULL}};
static const cdn_conf_field_t protect_fields[] = {
    {"prefix", CDN_CT_STR, offsetof(struct conf_protect, prefix), CDN_CF_REQUIRED},
    {"token", CDN_CT_STR, offsetof(struct conf_protect, token), CDN_CF_REQUIRED},
    {NULL}};
static const cdn_conf_field_t health_fields[] = {
    {"enabled", CDN_CT_BOOL, offsetof(struct conf_health, enabled)},
    {"path", CDN_CT_STR, offsetof(struct conf_health, path)},
    {"interval", CDN_CT_DURATION, offsetof(struct conf_health, interval)},
    {"timeout", CDN_CT_DURATION, offsetof(struct conf_health, timeout)},
    {"rise", CDN_CT_UINT, offsetof(struct conf_health, rise), 0, 1, 100},
    {"fall", CDN_CT_UINT, offsetof(struct conf_health, fall), 0, 1, 100},
    {"passive_fails", CDN_CT_UINT, offsetof(struct conf_health, passive_fails), 0, 0, 1000},
    {"slow_start", CDN_CT_DURATION, offsetof(struct conf_health, slow_start)},
    {NULL}};
static const cdn_conf_field_t timeout_fields[] = {
    {"connect", CDN_CT_DURATION, offsetof(struct conf_timeouts, connect)},
    {"first_byte", CDN_CT_DURATION, offsetof(struct conf_timeouts, first_byte)},
    {"idle", CDN_CT_DURATION, offsetof(struct conf_timeouts, idle)},
    {"total", CDN_CT_DURATION, offsetof(struct conf_timeouts, total)},
    {NULL}};
static const cdn_conf_field_t conf_fields[] = {
    {"listen", CDN_CT_ADDR, offsetof(struct lb_conf, listen), CDN_CF_REQUIRED, .addr_default_host = "127.0.0.1"},
    {"admin", CDN_CT_ADDR, offsetof(struct lb_conf, admin), .addr_default_host = "127.0.0.1"},
    {"error_log", CDN_CT_STR, offsetof(struct lb_conf, error_log)},
    {"log_level", CDN_CT_STR, offsetof(struct lb_conf, log_level)},
    {"access_log", CDN_CT_STR, offsetof(struct lb_conf, access_log)},
    {"access_log_format", CDN_CT_ENUM, offsetof(struct lb_conf, access_log_format), .enum_names = alog_formats},
    {"pid_file", CDN_CT_STR, offsetof(struct lb_conf, pid_file)},
    {"retries", CDN_CT_UINT, offsetof(struct lb_conf, retries), 0, 0, 10},
    {"threads", CDN_CT_UINT, offsetof(struct lb_conf, threads), 0, 1, MAX_THREADS},
    {"timeouts", CDN_CT_STRUCT, offsetof(struct lb_conf, timeouts), .sub = timeout_fields},
    {"health", CDN_CT_STRUCT, offsetof(struct lb_conf, health), .sub = health_fields},
    {"pools", CDN_CT_MAP, offsetof(struct lb_conf, pools), CDN_CF_REQUIRED, .sub = pool_fields,
     .sub_size = sizeof(struct conf_pool)},
    {"routes", CDN_CT_LIST, offsetof(struct lb_conf, routes), 0, .sub = route_fields, .sub_size = sizeof(struct conf_route)},
    {"protected", CDN_CT_LIST, offsetof(struct lb_conf, protect), 0, .sub = protect_fields,
     .sub_size = sizeof(struct conf_protect)},
    {NULL}};

static void conf_defaults(struct lb_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->log_level = "info";
    c->retries = 2;
    c->threads = 1;
    c->timeouts = (struct conf_timeouts){.connect = 1000, .first_byte = 15000, .idle = 30000, .total = 300000};
    c->health = (struct conf_health){.enabled = 1, .path = "/healthz", .interval = 1000, .timeout = 1000,
                                     .slow_start = 10000, .rise = 2, .fall = 2, .passive_fails = 3};
}

/* ---------------- state ---------------- */

struct pool;

struct backend {
    struct pool *pool;
    char addr[128];          /* "127.0.0.1:8081" */
    char base[160];          /* "http://127.0.0.1:8081" */
    int up, drained, removed;
    int checked;             /* has had a health check answer yet */
    unsigned ok_streak, fail_streak, passive_streak;
    uint64_t up_since;       /* for slow start */
    cdn_timer_t *check_timer;
    cdn_httpc_req_t *check;
    uint64_t requests, errors;
    cdn_series_t *s_requests, *s_errors, *s_up, *s_active, *s_latency;
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

/* One event loop and everything that belongs to it. */
struct worker {
    unsigned id;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx;
    int listen_fd;
    h2o_socket_t *ls;
    cdn_httpc_t *httpc;
    h2o_timeout_t fb_timeout, idle_timeout;
    size_t inflight;
    cdn_series_t *s_requests;
};

static struct lb {
    pthread_mutex_t mu;             /* the shared state: see the rules at the top */
    struct lb_conf conf;
    cdn_conf_t *cdoc;
    struct pool pools[MAX_POOLS];
    size_t npools;
    struct route routes[64];
    size_t nroutes;
    h2o_globalconf_t h2o;
    h2o_hostconf_t *hc_proxy, *hc_admin;
    h2o_hostconf_t *hosts_proxy[2], *hosts_admin[2];
    struct worker workers[MAX_THREADS];
    unsigned nworkers;
    h2o_evloop_t *loop;             /* worker 0's: health checks, admin, signals */
    cdn_httpc_t *httpc;             /* worker 0's: health checks */
    h2o_accept_ctx_t actx_admin;
    h2o_socket_t *ls_admin;
    cdn_alog_t *alog;
    cdn_metrics_t *metrics;
    cdn_metric_t *m_be_requests, *m_be_errors, *m_be_up, *m_be_active, *m_be_latency, *m_requests, *m_retries,
        *m_checks;
    cdn_metric_t *m_thread_requests;
    cdn_series_t *s_retries;
    uint64_t rid_seq;               /* atomic */
    uint64_t rid_salt;
    int stopping;                   /* atomic: set by the main thread's signal watch */
} lb = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void lb_lock(void) { pthread_mutex_lock(&lb.mu); }
static void lb_unlock(void) { pthread_mutex_unlock(&lb.mu); }
static int stopping(void) { return __atomic_load_n(&lb.stopping, __ATOMIC_ACQUIRE); }
static struct worker *worker_of(h2o_req_t *req) { return H2O_STRUCT_FROM_MEMBER(struct worker, ctx, req->conn->ctx); }

static uint64_t now_ms(void) { return cdn_now_ms(); }

/* The algorithms' view of a pool, refreshed before each choice (slow start depends on the time).
 * Under lb.mu. */
static void refresh_members(struct pool *p)
{
    uint64_t now = now_ms(), ss = lb.conf.health.slow_start;
    for (size_t i = 0; i < p->n; i++) {
        struct backend *b = &p->be[i];
        struct lb_member *m = &p->m[i];
        m->available = b->up && !b->drained && !b->removed;
        double f = 1.0;
        if (ss > 0 && now - b->up_since < ss) {
            f = (double)(now - b->up_since) / (double)ss;
            f = f < 0.1 ? 0.1 : f;
        }
        m->eff_weight = m->available ? m->weight * f : 0;
    }
}

static int rebuild_ring(struct pool *p)
{
    /* removed backends leave the ring; the others keep their points */
    struct lb_member tmp[MAX_BACKENDS];
    for (size_t i = 0; i < p->n; i++) {
        tmp[i] = p->m[i];
        if (p->be[i].removed)
            tmp[i].weight = 0;
    }
    struct lb_ring r;
    size_t total = 0;
    for (size_t i = 0; i < p->n; i++)
        total += tmp[i].weight;
    if (total == 0) {
        lb_ring_free(&p->ring);
        return 0;
    }
    /* members with weight 0 still get `vnodes` points in lb_ring_build: filter them out */
    struct lb_member live[MAX_BACKENDS];
    uint32_t map[MAX_BACKENDS];
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (tmp[i].weight) {
            live[k] = tmp[i];
            map[k++] = (uint32_t)i;
        }
    if (lb_ring_build(&r, live, k, p->vnodes) != 0)
        return -1;
    for (size_t i = 0; i < r.n; i++)
        r.pts[i].member = map[r.pts[i].member];
    lb_ring_free(&p->ring);
    p->ring = r;
    return 0;
}

static void set_up(struct backend *b, int up, const char *why)
{
    if (b->up == up)
        return;
    b->up = up;
    if (up)
        b->up_since = now_ms();
    b->ok_streak = b->fail_streak = b->passive_streak = 0;
    cdn_gauge_set(b->s_up, up);
    if (up)
        cdn_notice("backend %s/%s is up (%s)", b->pool->name, b->addr, why);
    else
        cdn_warn("backend %s/%s is down (%s)", b->pool->name, b->addr, why);
}

/* Passive health: consecutive failures of real requests take a backend down at once. Any thread;
 * takes lb.mu. */
static void passive_result(struct backend *b, int failed)
{
    if (failed)
        cdn_counter_inc(b->s_errors);
    lb_lock();
    if (!failed) {
        b->passive_streak = 0;
    } else {
        b->errors++;
        if (lb.conf.health.passive_fails > 0 && ++b->passive_streak >= lb.conf.health.passive_fails && b->up)
            set_up(b, 0, "passive: consecutive failures");
    }
    lb_unlock();
}

/* ---------------- active health checks ----------------
 * All on the main thread (worker 0's loop and httpc). The main thread writes the health settings,
 * b->removed and b->check only itself, so it reads them without the lock; the rest takes lb.mu. */

static void schedule_check(struct backend *b, uint64_t ms) { cdn_timer_start(b->check_timer, ms); }

static void on_check_done(const char *errstr, int status, const void *body, size_t len,
                          const struct cdn_httpc_info *info, void *data)
{
    struct backend *b = data;
    b->check = NULL;
    int ok = errstr == NULL && status >= 200 && status < 300;
    const char *lbl[] = {ok ? "ok" : "fail", NULL};
    cdn_counter_inc(cdn_metric_series(lb.m_checks, lbl));
    lb_lock();
    int first = !b->checked;
    b->checked = 1;
    if (ok) {
        b->fail_streak = 0;
        /* a new backend needs one pass (no request waits `rise` intervals at start-up); one that
         * went down needs `rise` */
        if (!b->up && (first || ++b->ok_streak >= lb.conf.health.rise)) {
            set_up(b, 1, first ? "first health check passed" : "health check passed");
            if (first)
                b->up_since = 0; /* no slow start for a backend never seen before */
        }
    } else {
        b->ok_streak = 0;
        if (b->up && ++b->fail_streak >= lb.conf.health.fall) {
            char why[160];
            snprintf(why, sizeof(why), "health check: %s", errstr ? errstr : "bad status");
            set_up(b, 0, why);
        }
    }
    lb_unlock();
    if (!b->removed && !stopping())
        schedule_check(b, lb.conf.health.interval);
}

static void on_check_timer(cdn_timer_t *t, void *data)
{
    struct backend *b = data;
    if (b->removed || b->check != NULL)
        return;
    char url[400];
    snprintf(url, sizeof(url), "%s%s", b->base, lb.conf.health.path);
    struct cdn_httpc_request r = {.method = "GET", .url = url, .timeout_ms = lb.conf.health.timeout};
    b->check = cdn_httpc_fetch(lb.httpc, &r, on_check_done, b);
    if (b->check == NULL)
        schedule_check(b, lb.conf.health.interval);
}

/* ---------------- pools (main thread, under lb.mu) ---------------- */

static int backend_add(struct pool *p, const char *addr, unsigned weight, char *err, size_t errlen)
{
    const char *a = addr;
    if (strncmp(a, "http://", 7) == 0)
        a += 7;
    size_t al = strlen(a);
    while (al > 0 && a[al - 1] == '/')
        al--;
    if (al == 0 || al >= sizeof(p->be[0].addr) || strchr(a, ':') == NULL) {
        snprintf(err, errlen, "backend '%s': expected host:port or http://host:port", addr);
        return -1;
    }
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->be[i].addr) == al && memcmp(p->be[i].addr, a, al) == 0) {
            if (!p->be[i].removed) {
                snprintf(err, errlen, "backend %.*s is already in pool %s", (int)al, a, p->name);
                return -1;
            }
            /* re-added: the same slot keeps its ring points */
            p->be[i].removed = 0;
            p->m[i].weight = weight ? weight : 1;
            p->be[i].up = !lb.conf.health.enabled;
            p->be[i].up_since = now_ms();
            cdn_gauge_set(p->be[i].s_up, p->be[i].up);
            if (lb.conf.health.enabled)
                schedule_check(&p->be[i], 0);
            return rebuild_ring(p) ? (snprintf(err, errlen, "out of memory"), -1) : 0;
        }
    if (p->n >= MAX_BACKENDS) {
        snprintf(err, errlen, "pool %s is full (%d backends)", p->name, MAX_BACKENDS);
        return -1;
    }
    struct backend *b = &p->be[p->n];
    memset(b, 0, sizeof(*b));
    b->pool = p;
    memcpy(b->addr, a, al);
    b->addr[al] = '\0';
    memcpy(b->base, "http://", 7);
    memcpy(b->base + 7, a, al); /* al < sizeof(addr) < sizeof(base) - 7 */
    b->base[7 + al] = '\0';
    /* with checks on, a backend starts down and comes up after its first passing check: nothing is
     * sent to an address that was never seen alive */
    b->up = !lb.conf.health.enabled;
    b->up_since = 0;
    const char *lbl[] = {p->name, b->addr, NULL};
    b->s_requests = cdn_metric_series(lb.m_be_requests, lbl);
    b->s_errors = cdn_metric_series(lb.m_be_errors, lbl);
    b->s_up = cdn_metric_series(lb.m_be_up, lbl);
    b->s_active = cdn_metric_series(lb.m_be_active, lbl);
    b->s_latency = cdn_metric_series(lb.m_be_latency, lbl);
    cdn_gauge_set(b->s_up, b->up);
    p->m[p->n] = (struct lb_member){.name = b->addr, .weight = weight ? weight : 1};
    p->n++;
    b->check_timer = cdn_timer_new(lb.loop, on_check_timer, b);
    if (lb.conf.health.enabled)
        schedule_check(b, 0);
    if (rebuild_ring(p) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void backend_remove(struct backend *b)
{
    b->removed = 1;
    b->up = 0;
    cdn_gauge_set(b->s_up, 0);
    cdn_timer_stop(b->check_timer);
    rebuild_ring(b->pool);
}

static struct pool *pool_find(const char *name)
{
    for (size_t i = 0; i < lb.npools; i++)
        if (strcmp(lb.pools[i].name, name) == 0)
            return &lb.pools[i];
    return NULL;
}

/* ---------------- proxying ---------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

#define PX_MAGIC 0x50585251u

struct pxreq {
    h2o_generator_t super;
    uint32_t magic;
    struct worker *w;
    h2o_req_t *req;
    struct pool *pool;
    struct backend *be;
    cdn_httpc_req_t *up;
    const char **hdrs;
    char *url;
    uint64_t tried;
    unsigned attempts, retries;
    uint64_t start_ms, attempt_ms;
    struct buf out, pend;        /* out: handed to h2o_send until proceed; pend: arrived since */
    h2o_timeout_entry_t timer;   /* first byte, then idle */
    unsigned head_sent : 1, sending : 1, upstream_done : 1, upstream_failed : 1, paused : 1, finished : 1;
    const char *request_id;
    const char *upstream_name;
};

static void px_release_backend(struct pxreq *px)
{
    if (px->be != NULL) {
        struct pool *p = px->be->pool;
        size_t i = (size_t)(px->be - p->be);
        lb_lock();
        if (p->m[i].active > 0)
            p->m[i].active--;
        lb_unlock();
        cdn_gauge_add(px->be->s_active, -1); /* per-thread deltas: no lock on the gauge */
        px->be = NULL;
    }
}

static void on_px_dispose(void *d)
{
    struct pxreq *px = d;
    if (px->up != NULL) {
        cdn_httpc_cancel(px->up);
        px->up = NULL;
    }
    if (h2o_timeout_is_linked(&px->timer))
        h2o_timeout_unlink(&px->timer);
    px_release_backend(px);
    free(px->out.p);
    free(px->pend.p);
    px->w->inflight--;
}

static void send_plain(h2o_req_t *req, int status, const char *reason, const char *msg)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("text/plain; charset=utf-8"), 1);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("no-store"), 1);
    size_t len = strlen(msg);
    req->res.content_length = len;
    h2o_send_inline(req, msg, len);
}

static int try_backend(struct pxreq *px);

static void flush(struct pxreq *px)
{
    if (px->sending || px->finished)
        return;
    if (px->pend.len == 0 && !px->upstream_done)
        return;
    /* swap: what arrived is now what h2o is sending */
    struct buf t = px->out;
    px->out = px->pend;
    px->pend = t;
    px->pend.len = 0;
    h2o_iovec_t iov = h2o_iovec_init(px->out.p, px->out.len);
    h2o_send_state_t st = H2O_SEND_STATE_IN_PROGRESS;
    if (px->upstream_done)
        st = px->upstream_failed ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL;
    if (st != H2O_SEND_STATE_IN_PROGRESS)
        px->finished = 1;
    px->sending = st == H2O_SEND_STATE_IN_PROGRESS;
    h2o_send(px->req, &iov, iov.len ? 1 : 0, st);
}

static void on_px_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct pxreq *px = (struct pxreq *)g;
    px->sending = 0;
    px->out.len = 0;
    if (px->paused && px->up != NULL && px->pend.len < PEND_HIGH) {
        px->paused = 0;
        cdn_httpc_pause(px->up, 0); /* may deliver buffered body right here */
    }
    flush(px);
}

static void on_px_stop(h2o_generator_t *g, h2o_req_t *req)
{
    struct pxreq *px = (struct pxreq *)g;
    if (px->up != NULL) {
        cdn_httpc_cancel(px->up);
        px->up = NULL;
    }
}

static int hop_by_hop(const char *n, size_t l) { return (cdn_http_hdr_class(n, l) & CDN_HDR_HOP) != 0; }

static const char *reason_of(int status)
{
    const char *r = cdn_http_reason(status);
    if (r != NULL)
        return r;
    return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
}

static int on_up_head(cdn_httpc_req_t *r, int status, int version, const struct cdn_httpc_header *h, size_t n, void *data)
{
    struct pxreq *px = data;
    h2o_req_t *req = px->req;
    if (h2o_timeout_is_linked(&px->timer))
        h2o_timeout_unlink(&px->timer);
    h2o_timeout_link(px->w->loop, &px->w->idle_timeout, &px->timer);
    passive_result(px->be, status >= 500);
    req->res.status = status;
    req->res.reason = reason_of(status);
    for (size_t i = 0; i < n; i++) {
        if (hop_by_hop(h[i].name, h[i].name_len))
            continue;
        if (h[i].name_len == 14 && strncasecmp(h[i].name, "content-length", 14) == 0) {
            char tmp[24];
            size_t l = h[i].value_len < sizeof(tmp) - 1 ? h[i].value_len : sizeof(tmp) - 1;
            memcpy(tmp, h[i].value, l);
            tmp[l] = '\0';
            req->res.content_length = strtoull(tmp, NULL, 10);
            continue;
        }
        if (h[i].name_len == 4 && strncasecmp(h[i].name, "date", 4) == 0)
            continue; /* h2o adds its own */
        if (h[i].name_len == 6 && strncasecmp(h[i].name, "server", 6) == 0)
            continue;
        h2o_iovec_t name = h2o_strdup(&req->pool, h[i].name, h[i].name_len);
        h2o_strtolower(name.base, name.len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 1, NULL,
                              h2o_strdup(&req->pool, h[i].value, h[i].value_len).base, h[i].value_len);
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VIA, NULL, H2O_STRLIT("1.1 shop-lb"));
    h2o_set_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 1, px->request_id,
                          strlen(px->request_id), 1);
    h2o_set_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-backend"), 1, px->upstream_name,
                          strlen(px->upstream_name), 1);
    /* the app already chose its encoding; do not compress again here */
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    px->head_sent = 1;
    h2o_start_response(req, &px->super);
    return 0;
}

static int on_up_body(cdn_httpc_req_t *r, const void *buf, size_t len, void *data)
{
    struct pxreq *px = data;
    if (h2o_timeout_is_linked(&px->timer))
        h2o_timeout_unlink(&px->timer);
    h2o_timeout_link(px->w->loop, &px->w->idle_timeout, &px->timer);
    if (buf_add(&px->pend, buf, len) != 0)
        return 1;
    if (px->pend.len >= PEND_HIGH && !px->paused) {
        px->paused = 1;
        cdn_httpc_pause(r, 1);
    }
    flush(px);
    return 0;
}

static int idempotent(h2o_req_t *req)
{
    static const char *const m[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", NULL};
    for (int i = 0; m[i]; i++)
        if (h2o_memis(req->method.base, req->method.len, m[i], strlen(m[i])))
            return 1;
    return 0;
}

/* The backend failed before any response byte: retry elsewhere, or answer 502/504. */
static void failed_before_head(struct pxreq *px, const char *errstr, int timeout)
{
    struct backend *be = px->be;
    cdn_info("backend %s/%s failed for %.*s: %s", be ? be->pool->name : "-", be ? be->addr : "-",
             (int)px->req->path.len, px->req->path.base, errstr);
    if (be)
        passive_result(be, 1);
    px_release_backend(px);
    if (idempotent(px->req) && px->attempts <= px->retries && !stopping()) {
        cdn_counter_inc(lb.s_retries);
        if (try_backend(px) == 0)
            return;
    }
    px->finished = 1;
    if (timeout)
        send_plain(px->req, 504, "Gateway Timeout", "backend did not answer in time\n");
    else {
        char msg[256];
        snprintf(msg, sizeof(msg), "backend error: %s\n", errstr);
        send_plain(px->req, 502, "Bad Gateway", h2o_strdup(&px->req->pool, msg, SIZE_MAX).base);
    }
}

static void on_up_done(cdn_httpc_req_t *r, const char *errstr, void *data)
{
    struct pxreq *px = data;
    px->up = NULL;
    if (h2o_timeout_is_linked(&px->timer))
        h2o_timeout_unlink(&px->timer);
    if (px->be != NULL)
        cdn_histogram_observe(px->be->s_latency, (now_ms() - px->attempt_ms) / 1000.0);
    if (!px->head_sent) {
        failed_before_head(px, errstr ? errstr : "no response", 0);
        return;
    }
    px_release_backend(px);
    px->upstream_done = 1;
    px->upstream_failed = errstr != NULL;
    flush(px);
}

static void on_px_timeout(h2o_timeout_entry_t *e)
{
    struct pxreq *px = H2O_STRUCT_FROM_MEMBER(struct pxreq, timer, e);
    if (px->up != NULL) {
        cdn_httpc_cancel(px->up);
        px->up = NULL;
    }
    if (!px->head_sent) {
        failed_before_head(px, "first byte timeout", 1);
        return;
    }
    cdn_warn("backend %s: idle timeout mid-body", px->upstream_name);
    px_release_backend(px);
    px->upstream_done = 1;
    px->upstream_failed = 1;
    flush(px);
}

static const struct cdn_httpc_cbs up_cbs = {on_up_head, on_up_body, on_up_done};

/* Under lb.mu. */
static int pick(struct pxreq *px)
{
    struct pool *p = px->pool;
    refresh_members(p);
    switch (p->algo) {
    case LB_RR:
        return lb_pick_rr(p->m, p->n, px->tried);
    case LB_LEASTCONN:
        return lb_pick_leastconn(p->m, p->n, px->tried, &p->rotor);
    case LB_HASH_CLIENT: {
        struct sockaddr_storage ss;
        socklen_t sl = px->req->conn->callbacks->get_peername(px->req->conn, (struct sockaddr *)&ss);
        uint64_t h = 0;
        if (sl > 0 && ss.ss_family == AF_INET)
            h = shop_hash64(&((struct sockaddr_in *)&ss)->sin_addr, 4);
        else if (sl > 0 && ss.ss_family == AF_INET6)
            h = shop_hash64(&((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        return lb_ring_pick(&p->ring, p->m, p->n, h, px->tried);
    }
    case LB_HASH_URL:
        return lb_ring_pick(&p->ring, p->m, p->n, shop_hash64(px->req->path.base, px->req->path.len), px->tried);
    }
    return -1;
}

/* Starts one attempt on a backend not tried yet. 0, or -1 when no backend is left. */
static int try_backend(struct pxreq *px)
{
    h2o_req_t *req = px->req;
    lb_lock();
    int i = pick(px);
    if (i < 0) {
        lb_unlock();
        return -1;
    }
    struct backend *b = &px->pool->be[i];
    px->pool->m[i].active++;
    b->requests++;
    /* b->base never changes once the slot exists (a re-added backend keeps its address) */
    size_t bl = strlen(b->base);
    px->url = h2o_mem_alloc_pool(&req->pool, bl + req->path.len + 1);
    memcpy(px->url, b->base, bl);
    lb_unlock();
    memcpy(px->url + bl, req->path.base, req->path.len);
    px->url[bl + req->path.len] = '\0';
    px->tried |= 1ull << i;
    px->attempts++;
    px->be = b;
    px->upstream_name = b->addr;
    cdn_gauge_add(b->s_active, 1);
    cdn_counter_inc(b->s_requests);
    struct cdn_httpc_request r = {
        .method = h2o_strdup(&req->pool, req->method.base, req->method.len < 15 ? req->method.len : 15).base,
        .url = px->url,
        .headers = px->hdrs,
        .body = req->entity.base,
        .body_len = req->entity.base ? req->entity.len : 0,
        .timeout_ms = lb.conf.timeouts.total,
    };
    px->attempt_ms = now_ms();
    px->up = cdn_httpc_start(px->w->httpc, &r, &up_cbs, px);
    if (px->up == NULL) {
        px_release_backend(px);
        return -1;
    }
    h2o_timeout_link(px->w->loop, &px->w->fb_timeout, &px->timer);
    return 0;
}

/* "name: value" in the request's pool. */
static const char *header_line(h2o_req_t *req, const char *name, size_t nl, const char *value, size_t vl)
{
    char *line = h2o_mem_alloc_pool(&req->pool, nl + 2 + vl + 1);
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl);
    line[nl + 2 + vl] = '\0';
    return line;
}

/* Request headers for the backend: the client's minus hop-by-hop ones, plus X-Forwarded-For,
 * X-Forwarded-Proto, Via and X-Request-Id. */
static const char **build_headers(h2o_req_t *req, const char *rid, const char *client)
{
    size_t n = req->headers.size;
    const char **h = h2o_mem_alloc_pool(&req->pool, sizeof(*h) * (n + 6));
    size_t k = 0;
    h2o_iovec_t xff = {NULL, 0};
    for (size_t i = 0; i < n; i++) {
        const h2o_header_t *e = &req->headers.entries[i];
        /* hop-by-hop fields and those each hop sets itself (Content-Length, Expect) stay here */
        if ((cdn_http_hdr_class(e->name->base, e->name->len) & (CDN_HDR_HOP | CDN_HDR_NO_FORWARD)) ||
            h2o_memis(e->name->base, e->name->len, H2O_STRLIT("x-request-id")))
            continue;
        if (h2o_memis(e->name->base, e->name->len, H2O_STRLIT("x-forwarded-for"))) {
            xff = e->value;
            continue;
        }
        h[k++] = header_line(req, e->name->base, e->name->len, e->value.base, e->value.len);
    }
    size_t l = xff.len + strlen(client) + 40;
    char *line = h2o_mem_alloc_pool(&req->pool, l);
    if (xff.base != NULL)
        snprintf(line, l, "X-Forwarded-For: %.*s, %s", (int)xff.len, xff.base, client);
    else
        snprintf(line, l, "X-Forwarded-For: %s", client);
    h[k++] = line;
    h[k++] = "X-Forwarded-Proto: http";
    h[k++] = "Via: 1.1 shop-lb";
    l = strlen(rid) + 20;
    line = h2o_mem_alloc_pool(&req->pool, l);
    snprintf(line, l, "X-Request-Id: %s", rid);
    h[k++] = line;
    h[k] = NULL;
    return h;
}

static void client_addr(h2o_req_t *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    snprintf(out, cap, "-");
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl > 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)cap);
    else if (sl > 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
}

static int on_proxy_req(h2o_handler_t *h, h2o_req_t *req)
{
    const char *path = req->path_normalized.base;
    size_t plen = req->path_normalized.len;

    /* gateway auth before anything touches a backend */
    lb_lock();
    for (size_t i = 0; i < lb.conf.protect.n; i++) {
        const struct conf_protect *pr = &((const struct conf_protect *)lb.conf.protect.items)[i];
        size_t pl = strlen(pr->prefix);
        if (plen < pl || memcmp(path, pr->prefix, pl) != 0)
            continue;
        ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
        int ok = 0;
        if (ai >= 0) {
            h2o_iovec_t v = req->headers.entries[ai].value;
            size_t tl = strlen(pr->token);
            ok = v.len == 7 + tl && strncasecmp(v.base, "Bearer ", 7) == 0 && memcmp(v.base + 7, pr->token, tl) == 0;
        }
        if (!ok) {
            lb_unlock();
            h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, H2O_STRLIT("Bearer realm=\"shop-lb\""), 1);
            send_plain(req, 401, "Unauthorized", "this path needs a bearer token\n");
            return 0;
        }
    }
    struct pool *pool = NULL;
    size_t best = 0;
    for (size_t i = 0; i < lb.nroutes; i++) {
        size_t pl = strlen(lb.routes[i].prefix);
        if (pl <= plen && memcmp(path, lb.routes[i].prefix, pl) == 0 && (pool == NULL || pl > best)) {
            pool = lb.routes[i].pool;
            best = pl;
        }
    }
    unsigned retries = lb.conf.retries;
    lb_unlock();
    if (pool == NULL) {
        send_plain(req, 404, "Not Found", "no route for this path\n");
        return 0;
    }
    struct worker *w = worker_of(req);
    cdn_counter_inc(w->s_requests);
    struct pxreq *px = h2o_mem_alloc_shared(&req->pool, sizeof(*px), on_px_dispose);
    memset(px, 0, sizeof(*px));
    w->inflight++;
    px->magic = PX_MAGIC;
    px->w = w;
    px->super.proceed = on_px_proceed;
    px->super.stop = on_px_stop;
    px->req = req;
    px->pool = pool;
    px->retries = retries;
    px->timer.cb = on_px_timeout;
    px->start_ms = now_ms();
    px->upstream_name = "-";

    ssize_t ri = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (ri >= 0 && req->headers.entries[ri].value.len > 0 && req->headers.entries[ri].value.len <= 128) {
        px->request_id = h2o_strdup(&req->pool, req->headers.entries[ri].value.base, req->headers.entries[ri].value.len).base;
    } else {
        char *id = h2o_mem_alloc_pool(&req->pool, 33);
        uint64_t seq = __atomic_add_fetch(&lb.rid_seq, 1, __ATOMIC_RELAXED);
        snprintf(id, 33, "%016llx%016llx", (unsigned long long)lb.rid_salt,
                 (unsigned long long)shop_hash64(&(uint64_t){seq ^ lb.rid_salt}, 8));
        px->request_id = id;
    }
    char client[INET6_ADDRSTRLEN];
    client_addr(req, client, sizeof(client));
    px->hdrs = build_headers(req, px->request_id, client);

    if (try_backend(px) != 0) {
        px->finished = 1;
        char msg[200];
        snprintf(msg, sizeof(msg), "no healthy backend in pool '%s'\n", pool->name);
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, H2O_STRLIT("1"), 1);
        send_plain(req, 503, "Service Unavailable", h2o_strdup(&req->pool, msg, SIZE_MAX).base);
    }
    return 0;
}

static void on_log_access(h2o_logger_t *logger, h2o_req_t *req)
{
    /* One series per status code, looked up once: cdn_metric_series() takes the family's lock. */
    static cdn_series_t *by_status[600]; /* shared by the workers: atomic loads and stores */
    int code = req->res.status >= 100 && req->res.status < 600 ? req->res.status : 0;
    cdn_series_t *s = __atomic_load_n(&by_status[code], __ATOMIC_ACQUIRE);
    if (s == NULL) {
        char st[16];
        snprintf(st, sizeof(st), "%d", req->res.status);
        const char *lbl[] = {st, NULL};
        s = cdn_metric_series(lb.m_requests, lbl);
        if (code != 0)
            __atomic_store_n(&by_status[code], s, __ATOMIC_RELEASE);
    }
    cdn_counter_inc(s);
    if (lb.alog == NULL)
        return;
    char client[INET6_ADDRSTRLEN];
    client_addr(req, client, sizeof(client));
    struct timeval end;
    gettimeofday(&end, NULL);
    const struct timeval *b = &req->timestamps.request_begin_at;
    int64_t us = (int64_t)(end.tv_sec - b->tv_sec) * 1000000 + (end.tv_usec - b->tv_usec);
    ssize_t ri = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    ssize_t bi = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-backend"), -1);
#define DUP(v) h2o_strdup(&req->pool, (v).base, (v).len).base
    ssize_t ua = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    ssize_t rf = h2o_find_header(&req->headers, H2O_TOKEN_REFERER, -1);
    struct cdn_alog_entry e = {
        .start = *b,
        .remote_addr = client,
        .host = DUP(req->input.authority),
        .method = DUP(req->method),
        .target = DUP(req->input.path),
        .protocol = req->version >= 0x200 ? "HTTP/2" : req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1",
        .status = req->res.status,
        .bytes_sent = req->bytes_sent,
        .referer = rf >= 0 ? DUP(req->headers.entries[rf].value) : NULL,
        .user_agent = ua >= 0 ? DUP(req->headers.entries[ua].value) : NULL,
        .duration_us = us > 0 ? (uint64_t)us : 0,
        .upstream = bi >= 0 ? DUP(req->res.headers.entries[bi].value) : NULL,
        .request_id = ri >= 0 ? DUP(req->res.headers.entries[ri].value) : NULL,
    };
#undef DUP
    cdn_alog_write(lb.alog, &e);
}

/* ---------------- admin ---------------- */

static void admin_backends_json(struct shop_buf *b)
{
    shop_buf_printf(b, "{\"pools\":[");
    for (size_t i = 0; i < lb.npools; i++) {
        struct pool *p = &lb.pools[i];
        refresh_members(p);
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

static struct backend *backend_find(struct pool *p, const char *addr, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (!p->be[i].removed && strlen(p->be[i].addr) == len && memcmp(p->be[i].addr, addr, len) == 0)
            return &p->be[i];
    return NULL;
}

/* GET /healthz, /metrics, /backends; POST /backends/<pool>/<addr>/(drain|enable|remove);
 * POST /backends/<pool>?add=<addr>[&weight=N] */
static int on_admin_req(h2o_handler_t *h, h2o_req_t *req)
{
    const char *p = req->path_normalized.base;
    size_t len = req->path_normalized.len;
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
              h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    int post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    if (get && h2o_memis(p, len, H2O_STRLIT("/healthz"))) {
        send_plain(req, 200, "OK", stopping() ? "stopping\n" : "ok\n");
        return 0;
    }
    if (get && h2o_memis(p, len, H2O_STRLIT("/metrics"))) {
        size_t ml;
        char *text = cdn_metrics_render(lb.metrics, &ml);
        if (text == NULL) {
            send_plain(req, 500, "Internal Server Error", "metrics unavailable\n");
            return 0;
        }
        req->res.status = 200;
        req->res.reason = "OK";
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("text/plain; version=0.0.4"), 1);
        req->res.content_length = ml;
        h2o_send_inline(req, text, ml);
        free(text);
        return 0;
    }
    if (len >= 9 && memcmp(p, "/backends", 9) == 0) {
        if (get && len == 9) {
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
            return 0;
        }
        if (post && len > 10 && p[9] == '/') {
            const char *rest = p + 10, *end = p + len;
            const char *slash = memchr(rest, '/', (size_t)(end - rest));
            char pname[64];
            size_t pl = (size_t)((slash ? slash : end) - rest);
            if (pl == 0 || pl >= sizeof(pname)) {
                send_plain(req, 404, "Not Found", "no such pool\n");
                return 0;
            }
            memcpy(pname, rest, pl);
            pname[pl] = '\0';
            /* the admin handler runs on the main thread; pools only grow there */
            struct pool *pool = pool_find(pname);
            if (pool == NULL) {
                send_plain(req, 404, "Not Found", "no such pool\n");
                return 0;
            }
            if (slash == NULL) {
                char addr[160], w[16], err[256];
                h2o_iovec_t q = req->query_at != SIZE_MAX ? h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1)
                                                         : h2o_iovec_init("", 0);
                if (shop_query_get(q.base, q.len, "add", addr, sizeof(addr)) <= 0) {
                    send_plain(req, 400, "Bad Request", "expected ?add=host:port\n");
                    return 0;
                }
                unsigned weight = 1;
                if (shop_query_get(q.base, q.len, "weight", w, sizeof(w)) > 0)
                    weight = (unsigned)strtoul(w, NULL, 10);
                int rc = -1;
                if (weight >= 1 && weight <= 1000) {
                    lb_lock();
                    rc = backend_add(pool, addr, weight, err, sizeof(err));
                    lb_unlock();
                }
                if (rc != 0) {
                    send_plain(req, 400, "Bad Request", weight < 1 || weight > 1000 ? "weight must be 1..1000\n"
                                                                                      : h2o_strdup(&req->pool, err, SIZE_MAX).base);
                    return 0;
                }
                cdn_notice("admin: added %s to pool %s", addr, pool->name);
                send_plain(req, 200, "OK", "added\n");
                return 0;
            }
            const char *a = slash + 1;
            const char *verb = memrchr(a, '/', (size_t)(end - a));
            if (verb == NULL) {
                send_plain(req, 404, "Not Found", "expected /backends/<pool>/<addr>/<drain|enable|remove>\n");
                return 0;
            }
            lb_lock();
            struct backend *be = backend_find(pool, a, (size_t)(verb - a));
            if (be == NULL) {
                lb_unlock();
                send_plain(req, 404, "Not Found", "no such backend\n");
                return 0;
            }
            verb++;
            size_t vl = (size_t)(end - verb);
            int known = 1;
            if (h2o_memis(verb, vl, H2O_STRLIT("drain")))
                be->drained = 1;
            else if (h2o_memis(verb, vl, H2O_STRLIT("enable"))) {
                if (be->drained)
                    be->up_since = now_ms(); /* back from a drain: slow start again */
                be->drained = 0;
            } else if (h2o_memis(verb, vl, H2O_STRLIT("remove")))
                backend_remove(be);
            else
                known = 0;
            lb_unlock(); /* every worker's next pick sees the change */
            if (!known) {
                send_plain(req, 404, "Not Found", "unknown action\n");
                return 0;
            }
            cdn_notice("admin: %.*s %s/%s", (int)vl, verb, pool->name, be->addr);
            send_plain(req, 200, "OK", "done\n");
            return 0;
        }
    }
    send_plain(req, 404, "Not Found", "admin: /healthz /metrics /backends\n");
    return 0;
}

/* ---------------- config (start and SIGHUP) ---------------- */

/* "http://host:port/" or "host:port" -> "host:port"; its length, or 0 when malformed. */
static size_t norm_addr(const char *addr, const char **out)
{
    const char *a = addr;
    if (strncmp(a, "http://", 7) == 0)
        a += 7;
    size_t al = strlen(a);
    while (al > 0 && a[al - 1] == '/')
        al--;
    *out = a;
    return al == 0 || al >= sizeof(((struct backend *)0)->addr) || memchr(a, ':', al) == NULL ? 0 : al;
}

/* What a decoded file's values must be beyond their types, each error at the offending node
 * (file:line:col): backends that are host:port, routes to pools that exist, prefixes that start
 * with '/', a health path, a log level. At start-up and on SIGHUP, before sync_config (which checks
 * again what depends on the running state: the pool count with removed pools). */
static int conf_check(cdn_conf_t *c, const struct lb_conf *nc, cdn_conf_err_t *err)
{
    const cdn_conf_node_t *root = cdn_conf_root(c), *pools = cdn_conf_get(root, "pools");
    const cdn_conf_node_t *routes = cdn_conf_get(root, "routes"), *protect = cdn_conf_get(root, "protected");
    const struct conf_pool *cps = nc->pools.items;
    const struct conf_route *crs = nc->routes.items;
    const struct conf_protect *prs = nc->protect.items;
    if (nc->log_level != NULL && cdn_log_level_parse(nc->log_level) < 0)
        return cdn_conf_fail(c, cdn_conf_get(root, "log_level"), err, "log_level must be debug, info, notice, warn or error");
    if (nc->health.path == NULL || nc->health.path[0] != '/')
        return cdn_conf_fail(c, cdn_conf_get(cdn_conf_get(root, "health"), "path"), err, "health.path must start with '/'");
    if (nc->pools.n > MAX_POOLS)
        return cdn_conf_fail(c, pools, err, "at most %d pools", MAX_POOLS);
    for (size_t i = 0; i < nc->pools.n; i++) {
        const cdn_conf_node_t *pn = cdn_conf_value(pools, i), *bn = cdn_conf_get(pn, "backends");
        if (strlen(cps[i].name) >= sizeof(((struct pool *)0)->name))
            return cdn_conf_fail(c, cdn_conf_key(pools, i), err, "pool name longer than %zu bytes",
                                 sizeof(((struct pool *)0)->name) - 1);
        if (cps[i].backends.n == 0 || cps[i].backends.n > MAX_BACKENDS)
            return cdn_conf_fail(c, bn != NULL ? bn : pn, err, "pool %s: 1 to %d backends", cps[i].name, MAX_BACKENDS);
        for (size_t k = 0; k < cps[i].backends.n; k++) {
            const char *a, *addr = ((const struct conf_backend *)cps[i].backends.items)[k].addr;
            if (norm_addr(addr, &a) == 0)
                return cdn_conf_fail(c, cdn_conf_get(cdn_conf_item(bn, k), "addr"), err,
                                     "pool %s: backend '%s': expected host:port or http://host:port", cps[i].name, addr);
        }
    }
    if (nc->routes.n > sizeof(lb.routes) / sizeof(lb.routes[0]))
        return cdn_conf_fail(c, routes, err, "at most %zu routes", sizeof(lb.routes) / sizeof(lb.routes[0]));
    for (size_t i = 0; i < nc->routes.n; i++) {
        const cdn_conf_node_t *rn = cdn_conf_item(routes, i);
        size_t k;
        for (k = 0; k < nc->pools.n && strcmp(cps[k].name, crs[i].pool) != 0; k++)
            ;
        if (crs[i].prefix[0] != '/')
            return cdn_conf_fail(c, cdn_conf_get(rn, "prefix"), err, "route %s: prefix must start with '/'", crs[i].prefix);
        if (k == nc->pools.n)
            return cdn_conf_fail(c, cdn_conf_get(rn, "pool"), err, "route %s: names an unknown pool '%s'", crs[i].prefix,
                                 crs[i].pool);
    }
    for (size_t i = 0; i < nc->protect.n; i++) {
        const cdn_conf_node_t *pn = cdn_conf_item(protect, i);
        if (prs[i].prefix[0] != '/')
            return cdn_conf_fail(c, cdn_conf_get(pn, "prefix"), err, "protected %s: prefix must start with '/'",
                                 prs[i].prefix);
        if (prs[i].token[0] == '\0')
            return cdn_conf_fail(c, cdn_conf_get(pn, "token"), err, "protected %s: token must not be empty", prs[i].prefix);
    }
    return 0;
}

/* Makes pools, backends, routes and protected paths what the config says. Everything is checked
 * before anything changes, so a bad reload leaves the running state alone. Main thread, under
 * lb.mu (the workers see the new state at their next request). Backends that stay
 * keep their health state and counters; new ones are health-checked before they get traffic;
 * the ones that went are removed (their ring points with them). */
static int sync_config(struct lb_conf *nc, char *err, size_t errlen)
{
    const struct conf_pool *cps = nc->pools.items;
    const struct conf_route *crs = nc->routes.items;
    const struct conf_protect *prs = nc->protect.items;
    size_t newpools = 0;
    for (size_t i = 0; i < nc->pools.n; i++) {
        if (cps[i].backends.n == 0 || cps[i].backends.n > MAX_BACKENDS) {
            snprintf(err, errlen, "pool %s: 1 to %d backends", cps[i].name, MAX_BACKENDS);
            return -1;
        }
        if (pool_find(cps[i].name) == NULL)
            newpools++;
        for (size_t k = 0; k < cps[i].backends.n; k++) {
            const char *a;
            if (norm_addr(((const struct conf_backend *)cps[i].backends.items)[k].addr, &a) == 0) {
                snprintf(err, errlen, "pool %s: backend '%s': expected host:port or http://host:port", cps[i].name,
                         ((const struct conf_backend *)cps[i].backends.items)[k].addr);
                return -1;
            }
        }
    }
    if (lb.npools + newpools > MAX_POOLS) {
        snprintf(err, errlen, "at most %d pools (removed ones count until a restart)", MAX_POOLS);
        return -1;
    }
    if (nc->routes.n > sizeof(lb.routes) / sizeof(lb.routes[0])) {
        snprintf(err, errlen, "at most %zu routes", sizeof(lb.routes) / sizeof(lb.routes[0]));
        return -1;
    }
    for (size_t i = 0; i < nc->routes.n; i++) {
        size_t k;
        for (k = 0; k < nc->pools.n && strcmp(cps[k].name, crs[i].pool) != 0; k++)
            ;
        if (k == nc->pools.n || crs[i].prefix[0] != '/') {
            snprintf(err, errlen, "route %s: %s", crs[i].prefix, k == nc->pools.n ? "names an unknown pool" : "prefix must start with '/'");
            return -1;
        }
    }
    for (size_t i = 0; i < nc->protect.n; i++)
        if (prs[i].prefix[0] != '/' || prs[i].token[0] == '\0') {
            snprintf(err, errlen, "protected %s: prefix must start with '/' and token must not be empty", prs[i].prefix);
            return -1;
        }
    if (nc->health.path == NULL || nc->health.path[0] != '/') {
        snprintf(err, errlen, "health.path must start with '/'");
        return -1;
    }

    /* apply */
    lb.conf.retries = nc->retries;
    lb.conf.health = nc->health;
    lb.conf.protect = nc->protect;
    for (size_t i = 0; i < nc->pools.n; i++) {
        struct pool *p = pool_find(cps[i].name);
        if (p == NULL) {
            p = &lb.pools[lb.npools++];
            snprintf(p->name, sizeof(p->name), "%s", cps[i].name);
        }
        p->algo = (enum lb_algo)cps[i].algo;
        p->vnodes = cps[i].vnodes ? cps[i].vnodes : 160;
        int keep[MAX_BACKENDS] = {0};
        for (size_t k = 0; k < cps[i].backends.n; k++) {
            const struct conf_backend *cb = &((const struct conf_backend *)cps[i].backends.items)[k];
            const char *a;
            size_t al = norm_addr(cb->addr, &a);
            struct backend *be = backend_find(p, a, al);
            if (be != NULL) {
                p->m[be - p->be].weight = cb->weight ? cb->weight : 1;
                keep[be - p->be] = 1;
            } else if (backend_add(p, cb->addr, cb->weight, err, errlen) == 0) {
                be = backend_find(p, a, al);
                if (be != NULL)
                    keep[be - p->be] = 1;
            } else
                cdn_err("pool %s: %s", p->name, err);
        }
        for (size_t k = 0; k < p->n; k++)
            if (!keep[k] && !p->be[k].removed)
                backend_remove(&p->be[k]);
        rebuild_ring(p);
    }
    for (size_t i = 0; i < lb.npools; i++) {
        size_t k;
        for (k = 0; k < nc->pools.n && strcmp(cps[k].name, lb.pools[i].name) != 0; k++)
            ;
        if (k == nc->pools.n) /* a pool that left the config: nothing routes to it any more */
            for (size_t b = 0; b < lb.pools[i].n; b++)
                if (!lb.pools[i].be[b].removed)
                    backend_remove(&lb.pools[i].be[b]);
    }
    lb.nroutes = 0;
    for (size_t i = 0; i < nc->routes.n; i++)
        lb.routes[lb.nroutes++] = (struct route){crs[i].prefix, pool_find(crs[i].pool)};
    if (lb.nroutes == 0 && nc->pools.n == 1)
        lb.routes[lb.nroutes++] = (struct route){"/", pool_find(cps[0].name)};
    return 0;
}

static const char *lb_conf_path;
static cdn_conf_t *old_docs[64];
static size_t nold;

static void reload(void)
{
    cdn_conf_err_t cerr;
    char err[512];
    if (lb_conf_path == NULL)
        return;
    if (nold >= sizeof(old_docs) / sizeof(old_docs[0])) {
        cdn_err("reload refused: too many reloads kept alive (restart the process)");
        return;
    }
    struct lb_conf nc;
    conf_defaults(&nc);
    cdn_conf_t *doc = cdn_conf_load_file(lb_conf_path, &cerr);
    if (doc == NULL || cdn_conf_decode(doc, cdn_conf_root(doc), conf_fields, &nc, &cerr) != 0 ||
        conf_check(doc, &nc, &cerr) != 0) {
        cdn_err("reload failed, keeping the running config: %s", cerr.msg);
        cdn_conf_free(doc);
        return;
    }
    lb_lock();
    int rc = sync_config(&nc, err, sizeof(err));
    lb_unlock();
    if (rc != 0) {
        cdn_err("reload failed, keeping the running config: %s: %s", lb_conf_path, err);
        cdn_conf_free(doc);
        return;
    }
    /* the old document stays: routes and in-flight requests may still point into it */
    old_docs[nold++] = lb.cdoc;
    lb.cdoc = doc;
    cdn_notice("SIGHUP: %s reloaded (%zu pools, %zu routes); listeners, threads and timeouts need a restart", lb_conf_path,
               nc.pools.n, lb.nroutes);
}

/* ---------------- main ---------------- */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_accept_ctx_t *actx = listener->data;
    h2o_socket_t *sock;
    for (int i = 0; i < 16 && (sock = h2o_evloop_socket_accept(listener)) != NULL; i++)
        h2o_accept(actx, sock);
}

static h2o_socket_t *watch_listener(h2o_evloop_t *loop, int fd, h2o_accept_ctx_t *actx)
{
    h2o_socket_t *s = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    s->data = actx;
    h2o_socket_read_start(s, on_accept);
    return s;
}

/* Runs a worker's loop until a stop was asked and its requests in flight are done (at most 10 s). */
static void worker_run(struct worker *w)
{
    int closing = 0;
    uint64_t deadline = 0;
    for (;;) {
        h2o_evloop_run(w->loop, 100);
        if (stopping() && !closing) {
            closing = 1;
            h2o_socket_read_stop(w->ls);
            h2o_socket_close(w->ls);
            h2o_context_request_shutdown(&w->ctx);
            deadline = now_ms() + 10000;
        }
        if (closing && (w->inflight == 0 || now_ms() >= deadline))
            break;
    }
}

static unsigned workers_done; /* atomic */

/* A worker that is done stays parked until the process exits: h2o 2.2.5 keeps recycled memory in
 * thread-locals it cannot free, which would be lost (and reported by LeakSanitizer) on thread exit. */
static void *worker_thread(void *arg)
{
    worker_run(arg);
    __atomic_add_fetch(&workers_done, 1, __ATOMIC_RELEASE);
    for (;;)
        pause(); /* every signal is blocked here: only exit() ends it */
    return NULL;
}

static void on_signal(int signo, void *data)
{
    if (signo == SIGHUP) {
        cdn_log_reopen();
        if (lb.alog)
            cdn_alog_reopen(lb.alog);
        cdn_notice("SIGHUP: logs reopened");
        reload();
    } else if (signo == SIGTERM || signo == SIGINT) {
        if (!stopping())
            cdn_notice("signal %d: stopping (finishing requests in flight)", signo);
        __atomic_store_n(&lb.stopping, 1, __ATOMIC_RELEASE);
    }
}

static int setup_metrics(void)
{
    const char *be_labels[] = {"pool", "backend", NULL};
    const char *st_labels[] = {"status", NULL};
    const char *ck_labels[] = {"result", NULL};
    lb.metrics = cdn_metrics_new();
    if (lb.metrics == NULL)
        return -1;
    lb.m_be_requests = cdn_metrics_counter(lb.metrics, "shop_lb_backend_requests_total", "Attempts sent to a backend", be_labels);
    lb.m_be_errors = cdn_metrics_counter(lb.metrics, "shop_lb_backend_errors_total", "Connect errors, timeouts and 5xx of a backend", be_labels);
    lb.m_be_up = cdn_metrics_gauge(lb.metrics, "shop_lb_backend_up", "1 when the backend is healthy", be_labels);
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
    lb.s_retries = cdn_metric_plain(lb.m_retries);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " [options]\n"
               "L7 load balancer and API gateway for the lab shop.\n\n"
               "  -a, --listen ADDR          listen on ADDR (quick mode: one pool, route /)\n"
               "  -b, --backend URL          a backend (http://host:port or host:port), repeatable\n"
               "      --algo A               rr | leastconn | hash-client | hash-url (default rr)\n"
               "      --admin ADDR           admin listener (/healthz /metrics /backends)\n"
               "      --retries N            retries of idempotent requests (default 2)\n"
               "      --threads N            worker threads, one event loop each (default 1)\n"
               "      --health-interval MS   active check interval (default 1000)\n"
               "      --rise N / --fall N    checks to come up / go down (default 2 / 2)\n"
               "      --slow-start MS        weight ramp after a return (default 10000)\n"
               "      --no-health            no active checks (backends start up)\n"
               "      --connect-timeout MS / --first-byte-timeout MS\n"
               "      --access-log FILE / --error-log FILE / --pid-file FILE\n"
               "  -c, --config FILE          YAML config (see origin/examples/shop-lb.yaml)\n"
               "  -t, --test                 check the config and exit\n"
               "  -V, --version / -h, --help\n");
}

int main(int argc, char **argv)
{
    enum { O_ALGO = 256, O_ADMIN, O_RETRIES, O_HINT, O_RISE, O_FALL, O_SLOW, O_NOHEALTH, O_CTO, O_FBTO, O_ALOG, O_ELOG, O_PID, O_THREADS };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'a'}, {"backend", required_argument, NULL, 'b'},
        {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'},
        {"algo", required_argument, NULL, O_ALGO}, {"admin", required_argument, NULL, O_ADMIN},
        {"retries", required_argument, NULL, O_RETRIES}, {"health-interval", required_argument, NULL, O_HINT},
        {"rise", required_argument, NULL, O_RISE}, {"fall", required_argument, NULL, O_FALL},
        {"slow-start", required_argument, NULL, O_SLOW}, {"no-health", no_argument, NULL, O_NOHEALTH},
        {"connect-timeout", required_argument, NULL, O_CTO}, {"first-byte-timeout", required_argument, NULL, O_FBTO},
        {"access-log", required_argument, NULL, O_ALOG}, {"error-log", required_argument, NULL, O_ELOG},
        {"pid-file", required_argument, NULL, O_PID}, {"threads", required_argument, NULL, O_THREADS},
        {NULL, 0, NULL, 0}};
    const char *listen = NULL, *admin = NULL, *conf_path = NULL, *backends[MAX_BACKENDS];
    int nb = 0, algo = LB_RR, test = 0, ch;
    long retries = -1, threads = -1, hint = -1, rise = -1, fall = -1, slow = -1, cto = -1, fbto = -1, nohealth = 0;
    const char *alog = NULL, *elog = NULL, *pid = NULL;
    char err[512];

#define NUM(dst, lo, hi, what)                                                                                          \
    do {                                                                                                                \
        char *e_;                                                                                                       \
        dst = strtol(optarg, &e_, 10);                                                                                  \
        if (*e_ || dst < (lo) || dst > (hi)) {                                                                          \
            fprintf(stderr, PROG ": " what " wants a number from %ld to %ld\n", (long)(lo), (long)(hi));              \
            return 2;                                                                                                   \
        }                                                                                                               \
    } while (0)
    conf_defaults(&lb.conf);
    while ((ch = getopt_long(argc, argv, "a:b:c:tVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': listen = optarg; break;
        case 'b':
            if (nb >= MAX_BACKENDS) {
                fprintf(stderr, PROG ": at most %d backends\n", MAX_BACKENDS);
                return 2;
            }
            backends[nb++] = optarg;
            break;
        case 'c': conf_path = optarg; break;
        case 't': test = 1; break;
        case 'V': cdn_print_version(PROG); return 0;
        case 'h': usage(stdout); return 0;
        case O_ALGO:
            if ((algo = lb_algo_parse(optarg)) < 0) {
                fprintf(stderr, PROG ": --algo wants rr, leastconn, hash-client or hash-url\n");
                return 2;
            }
            break;
        case O_ADMIN: admin = optarg; break;
        case O_RETRIES: NUM(retries, 0, 10, "--retries"); break;
        case O_THREADS: NUM(threads, 1, MAX_THREADS, "--threads"); break;
        case O_HINT: NUM(hint, 10, 3600000, "--health-interval"); break;
        case O_RISE: NUM(rise, 1, 100, "--rise"); break;
        case O_FALL: NUM(fall, 1, 100, "--fall"); break;
        case O_SLOW: NUM(slow, 0, 3600000, "--slow-start"); break;
        case O_NOHEALTH: nohealth = 1; break;
        case O_CTO: NUM(cto, 1, 600000, "--connect-timeout"); break;
        case O_FBTO: NUM(fbto, 1, 3600000, "--first-byte-timeout"); break;
        case O_ALOG: alog = optarg; break;
        case O_ELOG: elog = optarg; break;
        case O_PID: pid = optarg; break;
        default: usage(stderr); return 2;
        }
    }
#undef NUM
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    lb_conf_path = conf_path;
    if (conf_path != NULL) {
        cdn_conf_err_t cerr;
        lb.cdoc = cdn_conf_load_file(conf_path, &cerr);
        if (lb.cdoc == NULL || cdn_conf_decode(lb.cdoc, cdn_conf_root(lb.cdoc), conf_fields, &lb.conf, &cerr) != 0 ||
            conf_check(lb.cdoc, &lb.conf, &cerr) != 0) {
            fprintf(stderr, PROG ": %s\n", cerr.msg);
            return 1;
        }
    } else if (listen == NULL || nb == 0) {
        fprintf(stderr, PROG ": give -c FILE, or -a ADDR with at least one -b BACKEND (see --help)\n");
        return 2;
    }
    if (listen != NULL) {
        lb.conf.listen.len = sizeof(lb.conf.listen.ss);
        if (cdn_parse_addr(listen, "127.0.0.1", &lb.conf.listen.ss, &lb.conf.listen.len) != 0) {
            fprintf(stderr, PROG ": bad listen address '%s'\n", listen);
            return 2;
        }
    }
    if (admin != NULL) {
        lb.conf.admin.len = sizeof(lb.conf.admin.ss);
        if (cdn_parse_addr(admin, "127.0.0.1", &lb.conf.admin.ss, &lb.conf.admin.len) != 0) {
            fprintf(stderr, PROG ": bad admin address '%s'\n", admin);
            return 2;
        }
    }
    if (retries >= 0) lb.conf.retries = (unsigned)retries;
    if (threads > 0) lb.conf.threads = (unsigned)threads;
    if (hint > 0) lb.conf.health.interval = (uint64_t)hint, lb.conf.health.timeout = (uint64_t)hint;
    if (rise > 0) lb.conf.health.rise = (unsigned)rise;
    if (fall > 0) lb.conf.health.fall = (unsigned)fall;
    if (slow >= 0) lb.conf.health.slow_start = (uint64_t)slow;
    if (nohealth) lb.conf.health.enabled = 0;
    if (cto > 0) lb.conf.timeouts.connect = (uint64_t)cto;
    if (fbto > 0) lb.conf.timeouts.first_byte = (uint64_t)fbto;
    if (alog) lb.conf.access_log = alog;
    if (elog) lb.conf.error_log = elog;
    if (pid) lb.conf.pid_file = pid;
    if (lb.conf.health.path == NULL || lb.conf.health.path[0] != '/') {
        fprintf(stderr, PROG ": health.path must start with '/'\n");
        return 1;
    }
    if (cdn_log_level_parse(lb.conf.log_level) < 0) {
        fprintf(stderr, PROG ": log_level must be debug, info, notice, warn or error\n");
        return 1;
    }
    if (cdn_log_open(PROG, lb.conf.error_log, (enum cdn_log_level)cdn_log_level_parse(lb.conf.log_level)) != 0) {
        fprintf(stderr, PROG ": cannot open error log: %s\n", strerror(errno));
        return 1;
    }

    lb.rid_salt = shop_hash64(&(uint64_t){(uint64_t)getpid() ^ cdn_now_ms()}, 8);
    if (setup_metrics() != 0) {
        fprintf(stderr, PROG ": cannot set up metrics\n");
        return 1;
    }
    /* every worker's loop and upstream client; worker 0 (this thread) also runs the health checks */
    lb.nworkers = lb.conf.threads ? lb.conf.threads : 1;
    struct cdn_httpc_opts hopts = {.connect_timeout_ms = lb.conf.timeouts.connect, .timeout_ms = lb.conf.timeouts.total,
                                   .max_body = UINT64_MAX / 2};
    for (unsigned i = 0; i < lb.nworkers; i++) {
        struct worker *w = &lb.workers[i];
        w->id = i;
        w->listen_fd = -1;
        w->loop = h2o_evloop_create();
        if ((w->httpc = cdn_httpc_new(w->loop, &hopts, err, sizeof(err))) == NULL) {
            fprintf(stderr, PROG ": %s\n", err);
            return 1;
        }
        char tl[16];
        snprintf(tl, sizeof(tl), "%u", i);
        w->s_requests = cdn_metric_series(lb.m_thread_requests, (const char *[]){tl, NULL});
    }
    lb.loop = lb.workers[0].loop;
    lb.httpc = lb.workers[0].httpc;

    /* pools and routes: from the config, or the quick mode's one pool on "/" */
    if (conf_path != NULL && sync_config(&lb.conf, err, sizeof(err)) != 0) { /* one thread yet: no lock needed */
        fprintf(stderr, PROG ": %s: %s\n", conf_path, err);
        return 1;
    }
    if (nb > 0) {
        struct pool *p = lb.npools ? &lb.pools[0] : &lb.pools[lb.npools++];
        if (p->name[0] == '\0') {
            snprintf(p->name, sizeof(p->name), "default");
            p->algo = (enum lb_algo)algo;
            p->vnodes = 160;
        }
        for (int i = 0; i < nb; i++)
            if (backend_add(p, backends[i], 1, err, sizeof(err)) != 0) {
                fprintf(stderr, PROG ": %s\n", err);
                return 2;
            }
        if (lb.nroutes == 0)
            lb.routes[lb.nroutes++] = (struct route){"/", p};
    }
    if (test) {
        printf(PROG ": configuration ok (%zu pools, %zu routes)\n", lb.npools, lb.nroutes);
        return 0;
    }
    if (lb.conf.access_log) {
        lb.alog = cdn_alog_open(lb.conf.access_log, (enum cdn_alog_format)lb.conf.access_log_format);
        if (lb.alog == NULL) {
            fprintf(stderr, PROG ": cannot open access log %s: %s\n", lb.conf.access_log, strerror(errno));
            return 1;
        }
    }
    if (lb.conf.pid_file && cdn_pidfile_write(lb.conf.pid_file, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }

    h2o_config_init(&lb.h2o);
    lb.h2o.server_name = h2o_iovec_init(H2O_STRLIT(PROG));
    lb.h2o.max_request_entity_size = 64u << 20; /* bodies are buffered before they go upstream */
    lb.hc_proxy = h2o_config_register_host(&lb.h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(lb.hc_proxy, "/", 0);
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = on_proxy_req;
    h2o_create_logger(pc, sizeof(h2o_logger_t))->log_access = on_log_access;
    lb.hc_admin = h2o_config_register_host(&lb.h2o, h2o_iovec_init(H2O_STRLIT("admin")), 65535);
    h2o_create_handler(h2o_config_register_path(lb.hc_admin, "/", 0), sizeof(h2o_handler_t))->on_req = on_admin_req;
    /* each listener sees one host only: the proxy never answers admin paths and vice versa */
    lb.hosts_proxy[0] = lb.hc_proxy;
    lb.hosts_admin[0] = lb.hc_admin;
    /* one listener per worker: SO_REUSEPORT lets the kernel spread connections over them */
    int admin_fd = -1;
    for (unsigned i = 0; i < lb.nworkers; i++) {
        struct worker *w = &lb.workers[i];
        w->listen_fd = cdn_listen_tcp((const struct sockaddr *)&lb.conf.listen.ss, lb.conf.listen.len, lb.nworkers > 1,
                                      err, sizeof(err));
        if (w->listen_fd < 0)
            break;
    }
    if (lb.workers[lb.nworkers - 1].listen_fd < 0 ||
        (lb.conf.admin.len > 0 &&
         (admin_fd = cdn_listen_tcp((const struct sockaddr *)&lb.conf.admin.ss, lb.conf.admin.len, 0, err, sizeof(err))) < 0)) {
        fprintf(stderr, PROG ": %s\n", err);
        if (lb.conf.pid_file)
            cdn_pidfile_remove(lb.conf.pid_file);
        return 1;
    }
    for (unsigned i = 0; i < lb.nworkers; i++) {
        struct worker *w = &lb.workers[i];
        h2o_context_init(&w->ctx, w->loop, &lb.h2o);
        h2o_timeout_init(w->loop, &w->fb_timeout, lb.conf.timeouts.first_byte);
        h2o_timeout_init(w->loop, &w->idle_timeout, lb.conf.timeouts.idle);
        w->actx = (h2o_accept_ctx_t){.ctx = &w->ctx, .hosts = lb.hosts_proxy};
        w->ls = watch_listener(w->loop, w->listen_fd, &w->actx);
    }
    lb.actx_admin = (h2o_accept_ctx_t){.ctx = &lb.workers[0].ctx, .hosts = lb.hosts_admin};
    if (admin_fd >= 0)
        lb.ls_admin = watch_listener(lb.loop, admin_fd, &lb.actx_admin);
    /* signals blocked before the workers start, so they inherit the mask and only the main loop sees them */
    cdn_signals_t *sigs = NULL;
    if (cdn_signals_block() != 0 || (sigs = cdn_signals_watch(lb.loop, on_signal, NULL)) == NULL) {
        fprintf(stderr, PROG ": cannot watch signals\n");
        return 1;
    }
    for (unsigned i = 1; i < lb.nworkers; i++)
        if (pthread_create(&lb.workers[i].tid, NULL, worker_thread, &lb.workers[i]) != 0) {
            fprintf(stderr, PROG ": cannot start worker thread %u\n", i);
            __atomic_store_n(&lb.stopping, 1, __ATOMIC_RELEASE);
            while (__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE) < i - 1)
                usleep(10000);
            return 1;
        }
    char abuf[64];
    cdn_notice("listening on %s, %u thread(s), %zu pool(s), health checks %s",
               cdn_addr_str((struct sockaddr *)&lb.conf.listen.ss, abuf, sizeof(abuf)), lb.nworkers, lb.npools,
               lb.conf.health.enabled ? "on" : "off");

    worker_run(&lb.workers[0]);
    while (__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE) < lb.nworkers - 1)
        usleep(10000); /* each worker is done within its own 10 s drain deadline */
    cdn_signals_free(sigs);
    cdn_notice("stopped");
    if (lb.conf.pid_file)
        cdn_pidfile_remove(lb.conf.pid_file);
    if (lb.alog)
        cdn_alog_close(lb.alog);
    return 0;
}
