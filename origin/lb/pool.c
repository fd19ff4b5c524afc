/* origin/lb/pool.c - shop-lb's shared state: pools and their backends (health, slow start, the
 * ring), routes, and how a config (at start or on SIGHUP) becomes that state. The rules are in
 * lbd.h.
 *
 * Active health checks all run on the main thread (worker 0's loop and httpc). The main thread
 * writes the health settings, b->removed and b->check only itself, so it reads them without the
 * lock; the rest takes lb.mu. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "origin/lb/lbd.h"

struct lb lb = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t now_ms(void) { return cdn_now_ms(); }

/* The breaker's settings (cdn/breaker.h) from the config. Under lb.mu. */
static struct cdn_breaker_conf brk_conf(void)
{
    const struct conf_breaker *c = &lb.conf.breaker;
    return (struct cdn_breaker_conf){.failures = c->failures, .ratio = c->error_ratio, .min_requests = c->min_requests,
                                     .window_ms = c->window, .open_ms = c->open, .probes = c->probes};
}

/* May the breaker let a request through now (without taking it)? Under lb.mu. */
static int brk_eligible(const struct backend *b, const struct cdn_breaker_conf *c, uint64_t now)
{
    if (!cdn_breaker_on(c) || b->brk.state == CDN_BREAKER_CLOSED)
        return 1;
    if (b->brk.state == CDN_BREAKER_OPEN)
        return now >= b->brk.opened_at + c->open_ms;
    return b->brk.probes_out < (c->probes ? c->probes : 1);
}

void lb_refresh_members(struct pool *p)
{
    uint64_t now = now_ms(), ss = lb.conf.health.slow_start;
    struct cdn_breaker_conf bc = brk_conf();
    for (size_t i = 0; i < p->n; i++) {
        struct backend *b = &p->be[i];
        struct lb_member *m = &p->m[i];
        m->available = b->up && !b->drained && !b->removed && brk_eligible(b, &bc, now);
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
    b->hc.up = (uint8_t)up;
    b->hc.ok_run = b->hc.fail_run = 0;
    b->passive_streak = 0;
    cdn_gauge_set(b->s_up, up);
    if (up)
        cdn_notice("backend %s/%s is up (%s)", b->pool->name, b->addr, why);
    else
        cdn_warn("backend %s/%s is down (%s)", b->pool->name, b->addr, why);
}

/* A breaker's move (under lb.mu): the gauge and a log line. */
static void brk_moved(struct backend *b, enum cdn_breaker_state from)
{
    if (b->brk.state == from)
        return;
    cdn_gauge_set(b->s_brk, b->brk.state == CDN_BREAKER_OPEN ? 1 : b->brk.state == CDN_BREAKER_HALF_OPEN ? 2 : 0);
    if (b->brk.state == CDN_BREAKER_OPEN)
        cdn_warn("backend %s/%s: breaker %s -> open for %llu ms", b->pool->name, b->addr, cdn_breaker_state_name(from),
                 (unsigned long long)lb.conf.breaker.open);
    else
        cdn_notice("backend %s/%s: breaker %s -> %s", b->pool->name, b->addr, cdn_breaker_state_name(from),
                   cdn_breaker_state_name(b->brk.state));
}

void lb_breaker_sent(struct backend *b, int *probe)
{
    struct cdn_breaker_conf bc = brk_conf();
    enum cdn_breaker_state from = b->brk.state;
    if (!cdn_breaker_allow(&b->brk, &bc, now_ms(), probe))
        *probe = 0; /* picked as eligible a moment ago: cannot happen under the same lock */
    brk_moved(b, from);
}

void lb_breaker_result(struct backend *b, int failed, int probe)
{
    lb_lock();
    struct cdn_breaker_conf bc = brk_conf();
    enum cdn_breaker_state from = b->brk.state;
    cdn_breaker_report(&b->brk, &bc, !failed, probe, now_ms());
    brk_moved(b, from);
    lb_unlock();
}

void lb_breaker_release(struct backend *b, int probe)
{
    lb_lock();
    cdn_breaker_release(&b->brk, probe);
    lb_unlock();
}

/* Consecutive failures of real requests take a backend down at once. */
void lb_passive_result(struct backend *b, int failed)
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

/* ---------------- active health checks (main thread) ---------------- */

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
    int first = !b->hc.seen, was = b->up;
    b->hc.up = (uint8_t)b->up;
    /* a new backend needs one pass (no request waits `rise` intervals at start-up); one that went
     * down needs `rise` */
    int up = cdn_risefall_observe(&b->hc, ok, lb.conf.health.rise, lb.conf.health.fall);
    if (up && !was) {
        set_up(b, 1, first ? "first health check passed" : "health check passed");
        if (first)
            b->up_since = 0; /* no slow start for a backend never seen before */
    } else if (!up && was) {
        char why[160];
        snprintf(why, sizeof(why), "health check: %s", errstr ? errstr : "bad status");
        set_up(b, 0, why);
    }
    lb_unlock();
    if (!b->removed && !lb_stopping())
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

int lb_backend_add(struct pool *p, const char *addr, unsigned weight, char *err, size_t errlen)
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
    b->s_brk = cdn_metric_series(lb.m_be_breaker, lbl);
    cdn_breaker_init(&b->brk);
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

void lb_backend_remove(struct backend *b)
{
    b->removed = 1;
    b->up = 0;
    cdn_gauge_set(b->s_up, 0);
    cdn_timer_stop(b->check_timer);
    rebuild_ring(b->pool);
}

struct pool *lb_pool_find(const char *name)
{
    for (size_t i = 0; i < lb.npools; i++)
        if (strcmp(lb.pools[i].name, name) == 0)
            return &lb.pools[i];
    return NULL;
}

struct backend *lb_backend_find(struct pool *p, const char *addr, size_t len)
{
    for (size_t i = 0; i < p->n; i++)
        if (!p->be[i].removed && strlen(p->be[i].addr) == len && memcmp(p->be[i].addr, addr, len) == 0)
            return &p->be[i];
    return NULL;
}

int lb_sync_config(struct lb_conf *nc, char *err, size_t errlen)
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
        if (lb_pool_find(cps[i].name) == NULL)
            newpools++;
        for (size_t k = 0; k < cps[i].backends.n; k++) {
            const char *a;
            if (lb_norm_addr(((const struct conf_backend *)cps[i].backends.items)[k].addr, &a) == 0) {
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
        struct pool *p = lb_pool_find(cps[i].name);
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
            size_t al = lb_norm_addr(cb->addr, &a);
            struct backend *be = lb_backend_find(p, a, al);
            if (be != NULL) {
                p->m[be - p->be].weight = cb->weight ? cb->weight : 1;
                keep[be - p->be] = 1;
            } else if (lb_backend_add(p, cb->addr, cb->weight, err, errlen) == 0) {
                be = lb_backend_find(p, a, al);
                if (be != NULL)
                    keep[be - p->be] = 1;
            } else
                cdn_err("pool %s: %s", p->name, err);
        }
        for (size_t k = 0; k < p->n; k++)
            if (!keep[k] && !p->be[k].removed)
                lb_backend_remove(&p->be[k]);
        rebuild_ring(p);
    }
    for (size_t i = 0; i < lb.npools; i++) {
        size_t k;
        for (k = 0; k < nc->pools.n && strcmp(cps[k].name, lb.pools[i].name) != 0; k++)
            ;
        if (k == nc->pools.n) /* a pool that left the config: nothing routes to it any more */
            for (size_t b = 0; b < lb.pools[i].n; b++)
                if (!lb.pools[i].be[b].removed)
                    lb_backend_remove(&lb.pools[i].be[b]);
    }
    lb.nroutes = 0;
    for (size_t i = 0; i < nc->routes.n; i++)
        lb.routes[lb.nroutes++] = (struct route){crs[i].prefix, lb_pool_find(crs[i].pool)};
    if (lb.nroutes == 0 && nc->pools.n == 1)
        lb.routes[lb.nroutes++] = (struct route){"/", lb_pool_find(cps[0].name)};
    lb_limit_sync(nc);
    return 0;
}

int lb_quick_pool(const struct lb_cmdline *cl, char *err, size_t errlen)
{
    if (cl->nb == 0)
        return 0;
    struct pool *p = lb.npools ? &lb.pools[0] : &lb.pools[lb.npools++];
    if (p->name[0] == '\0') {
        snprintf(p->name, sizeof(p->name), "default");
        p->algo = (enum lb_algo)cl->algo;
        p->vnodes = 160;
    }
    for (int i = 0; i < cl->nb; i++)
        if (lb_backend_find(p, cl->backends[i], strlen(cl->backends[i])) == NULL &&
            lb_backend_add(p, cl->backends[i], 1, err, errlen) != 0)
            return -1;
    if (lb.nroutes == 0)
        lb.routes[lb.nroutes++] = (struct route){"/", p};
    return 0;
}

static void free_doc(void *doc) { cdn_conf_free(doc); }

void lb_reload(void *data)
{
    char err[512];
    (void)data;
    if (lb.alog)
        cdn_alog_reopen(lb.alog);
    cdn_notice("SIGHUP: logs reopened");
    if (lb.cmdline.conf_path == NULL)
        return;
    struct lb_conf nc;
    cdn_conf_t *doc;
    if (lb_conf_load(&lb.cmdline, &nc, &doc, err, sizeof(err)) != 0) {
        cdn_err("reload failed, keeping the running config: %s", err);
        cdn_counter_inc(lb.s_reload_err);
        return;
    }
    lb_lock();
    int rc = lb_sync_config(&nc, err, sizeof(err));
    lb_unlock();
    if (rc != 0) {
        cdn_err("reload failed, keeping the running config: %s: %s", lb.cmdline.conf_path, err);
        cdn_counter_inc(lb.s_reload_err);
        cdn_conf_free(doc);
        return;
    }
    /* the previous reload's document goes once no worker can still be in a callback that read it
     * (the first one stays: restart-only settings point into it) */
    if (lb.doc != NULL && cdn_daemon_retire(lb.d, lb.doc, free_doc) != 0)
        cdn_warn("reload: cannot retire the previous config (out of memory): it stays");
    lb.doc = doc;
    cdn_counter_inc(lb.s_reload_ok);
    cdn_notice("SIGHUP: %s reloaded (%zu pools, %zu routes); listeners, threads and timeouts need a restart",
               lb.cmdline.conf_path, nc.pools.n, lb.nroutes);
}
