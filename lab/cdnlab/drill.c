/* lab/cdnlab/drill.c - `cdn-lab drill`: issue 19's fault drills. Each drill runs one origin-side
 * fault under the shopper load (open loop, every region) with a warm cache, once with the edges'
 * breaker and fast stale on and once with them off, and reports per fault and mode: the client
 * error rate (and the errors on objects cached before the fault), hit-path and miss-path p50/p99
 * during the fault, the requests the edges sent to the origin meanwhile, the time to detect (a
 * breaker leaves "closed", or a parent is marked down) and to recover.
 *
 * One run (drill x mode):
 *   mode switch   every edge restarted with (on) or without (off) STATE/drill-resil.yaml
 *   t0            `cdn-lab load -w shopper -R RATE -d W+F+R+X` starts (this program, forked; X:
 *                 1 to 6 s for the restarts of the fault and its undo)
 *   t0 + W        `cdn-lab purge --soft all PAGES`: every cached page is stale, so a request for
 *                 it needs the origin (the case the mechanisms are for: without it nearly every
 *                 object stays fresh through a short fault); the images stay fresh (the hit
 *                 path); then the fault, t_fault
 *   F s after the fault is in place (restarts take time): the undo; t_back once it is done
 *   until the load ends: every edge's /metrics polled every 200 ms; after t_back, a new object
 *                 (/p/1?drill=N, a URL nobody asked for) through the origin region's edge at
 *                 each poll until one comes back 200 (wan-loss: through the first region whose
 *                 link to the origin's region lost packets)
 * Each run has a load seed of its own: with one seed, a run found its fault window's URLs warmed
 * by the run before it. Detect: the first poll after the fault that saw a breaker transition to
 * open, or a parent marked down. Recover: the first breaker transition to closed after t_back,
 * and the clients' view: the first new object answered 200 after t_back.
 * "During the fault" is [t_fault, t_back) by the time a request was sent (completion - latency,
 * on CLOCK_MONOTONIC like cdn-load's LOG.t0). "Cached before the fault": a URL its region's edge
 * had answered from its cache (hit or stale) before t_fault. Three paths: hit (Cache-Status hit),
 * stale (fwd=stale: stale-while-revalidate, stale-if-error, fast stale, the breaker's grace) and
 * miss (anything else below 500: the edge asked upstream); errors: status 0 (transport,
 * timeout) or 5xx, which have no latency in any path.
 *
 * Faults (the origin as the edges see it is shop-lb): origin-hang (SIGSTOP shop-lb),
 * origin-slow (every app restarted with --delay SLOW ms), origin-errors (every app killed:
 * shop-lb answers 5xx), origin-down (shop-lb killed: refused), app-kill (app1 killed: shop-lb's
 * retries), app-hang (app1 stopped with SIGSTOP: shop-lb's first-byte timeout and hedged
 * retries), parent-down (the shield killed), wan-loss (--loss PCT, 10%, packet loss both ways in
 * the WAN relays on every link to the origin's region, wanloss.c: the other regions' fetches from
 * the shield and the origin, and whatever else crosses those links; namespaces only, left out of
 * the default set without relays). The undo restarts or continues what the fault took, or sets
 * the loss back to none.
 *
 * The modes of a drill run side by side, their order alternating from drill to drill (on-off,
 * off-on, ...): the caches only grow during a set, so a mode always run second would find more
 * of the long tail cached.
 *
 * Output: the table on stdout and in OUT/drill.txt (default OUT: STATE/drill), one line per run
 * in OUT/drill.tsv (with the fast-stale and breaker-stale answers, t_fault and t_back), each
 * run's client logs as OUT/NAME-MODE-REGION.log. Leaves the edges in the mode of the last run
 * ("off": the lab's own command lines, with every drill in both modes).
 *
 * Rules: one process, single-threaded; the processes it restarts are recorded in the state file
 * like `up`'s (lab_start_proc), so `down` stops them. A restart waits until the old process is
 * gone, not only a zombie leader: a cdn-edge's other threads hold its RocksDB lock meanwhile. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"
#include "lab/lib/workload.h"

#define POLL_MS 200
#define MAX_POLLS 4096

struct drill_opts {
    double warm_s, fault_s, rest_s, rate;
    unsigned slow_ms;
    unsigned first_byte_ms; /* breaker.first_byte in mode "on" (default 2000; 0: not set) */
    int expire;
    double loss_pct;        /* wan-loss */
    char out[PATH_MAX];
};

static const char *const drill_names[] = {"origin-hang", "origin-slow", "origin-errors", "origin-down", "app-kill",
                                          "app-hang", "parent-down", "wan-loss"};
#define NDRILLS (sizeof(drill_names) / sizeof(drill_names[0]))

/* One poll of every edge's /metrics (counters per edge: an edge the drill restarts starts at 0). */
#define DRILL_MAX_EDGES 32
struct poll {
    double t;
    int breakers_open;   /* edges with some upstream's breaker not closed */
    int ok[DRILL_MAX_EDGES];
    double origin_fetches[DRILL_MAX_EDGES], refused[DRILL_MAX_EDGES], parent_down[DRILL_MAX_EDGES];
    double opened[DRILL_MAX_EDGES], closed[DRILL_MAX_EDGES]; /* breaker transitions to open, to closed */
    double slow_stale[DRILL_MAX_EDGES], brk_stale[DRILL_MAX_EDGES]; /* fast stale; stale because the breaker was open */
};

struct run_result {
    const char *drill, *mode;
    double t0, t_fault, t_back; /* the load's start, the fault, the origin side back (CLOCK_MONOTONIC) */
    uint64_t n, errors, pre_n, pre_errors, hit_n, stale_n, miss_n;
    double hit_p50, hit_p99, stale_p50, stale_p99, miss_p50, miss_p99, base_hit_p50, base_hit_p99;
    double origin_req, refused, slow_stale, brk_stale; /* edges' counters over the fault */
    double detect_s, recover_breaker_s, recover_client_s; /* NAN: none */
    int ok;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double d = t - mono_s();
    if (d > 0) usleep((useconds_t)(d * 1e6));
}

/* --- processes --- */

static struct lab_proc_rec *find_proc(struct lab_proc_rec *pr, size_t np, const char *name)
{
    for (size_t i = 0; i < np; i++)
        if (!strcmp(pr[i].name, name)) return &pr[i];
    return NULL;
}

static int node_named(const char *name)
{
    int k = lab_plan_find_name(&L.plan, name);
    if (k < 0) lab_die("drill: no host %s in this lab", name);
    return k;
}

static void signal_node(int k, int sig)
{
    struct lab_proc_rec pr[256];
    size_t np = lab_read_procs(pr, 256);
    struct lab_proc_rec *me = find_proc(pr, np, L.plan.nodes[k].name);
    if (!me || !lab_proc_alive(me->pid, me->start)) return;
    lab_stop_pid(me->pid, me->start, sig);
    if (sig == SIGKILL || sig == SIGTERM) {
        for (int t = 0; t < 100 && lab_proc_alive(me->pid, me->start); t++) usleep(50000);
        if (lab_proc_alive(me->pid, me->start)) lab_stop_pid(me->pid, me->start, SIGKILL);
        for (int t = 0; t < 40 && lab_proc_alive(me->pid, me->start); t++) usleep(50000);
        /* and gone: a multi-threaded process's leader shows Z while its other threads still
         * exit, holding its files (cdn-edge's RocksDB lock: its successor failed to open the
         * store); ours (started by an earlier run of this drill) are reaped here */
        for (int t = 0; t < 100 && kill(me->pid, 0) == 0; t++) {
            waitpid(me->pid, NULL, WNOHANG);
            usleep(20000);
        }
    }
}

static const char *resil_conf(void)
{
    static char p[PATH_MAX];
    lab_path(p, sizeof(p), "drill-resil.yaml");
    return p;
}

/* (Re)starts node k with its lab command line plus the extras; waits until it is healthy (10 s),
 * unless it is an app given a delay (its /healthz is as slow as the rest). */
static double g_error_rate; /* an app restarted by start_node answers this share 500 (fault origin-errors) */

static int start_node(int k, int resil_on, unsigned delay_ms)
{
    const struct lab_node *n = &L.plan.nodes[k];
    /* an app is killed (shop-lb retries what it had in flight): a slow one would take its delay
     * per request in flight to stop */
    signal_node(k, n->kind == LAB_APP ? SIGKILL : SIGTERM);
    struct lab_argv a = {0};
    lab_daemon_argv(k, &a);
    if (n->kind == LAB_EDGE && resil_on) {
        lab_argv_add(&a, "-c");
        lab_argv_add(&a, "%s", resil_conf());
    }
    if (n->kind == LAB_APP && delay_ms) {
        lab_argv_add(&a, "--delay");
        lab_argv_add(&a, "%u", delay_ms);
    }
    if (n->kind == LAB_APP && g_error_rate > 0) {
        lab_argv_add(&a, "--error-rate");
        lab_argv_add(&a, "%g", g_error_rate);
    }
    lab_start_proc(n, n->name, &a);
    if (n->kind == LAB_APP && (delay_ms || g_error_rate > 0)) return 0; /* its /healthz is slow or failing too */
    for (int t = 0; t < 200; t++) {
        if (lab_node_healthy(n)) return 0;
        usleep(50000);
    }
    fprintf(stderr, PROG ": drill: %s not healthy after 10 s\n", n->name);
    lab_tail_log(n->name);
    return -1;
}

static void set_edges(int on)
{
    for (size_t i = 0; i < L.plan.nnodes; i++)
        if (L.plan.nodes[i].kind == LAB_EDGE && start_node((int)i, on, 0) < 0) lab_die("drill: edges not healthy");
}

static void apps_each(int kill_them, unsigned delay_ms)
{
    for (size_t i = 0; i < L.plan.nnodes; i++)
        if (L.plan.nodes[i].kind == LAB_APP) {
            if (kill_them) signal_node((int)i, SIGKILL);
            else start_node((int)i, 0, delay_ms);
        }
}

static int shield_node(void)
{
    for (size_t i = 0; i < L.topo->edges.n; i++)
        if (lab_topo_edge(L.topo, i)->parent) return lab_plan_find(&L.plan, LAB_EDGE, (int)i);
    return -1;
}

static int g_wan_sel[LAB_WAN_MAX]; /* wan-loss: the links to the origin's region */

static void inject(const char *d, const struct drill_opts *o)
{
    int lb = lab_plan_find(&L.plan, LAB_LB, 0);
    if (!strcmp(d, "wan-loss")) {
        char desc[256];
        lab_wan_select(NULL, g_wan_sel, desc, sizeof(desc));
        if (lab_wan_set_loss(g_wan_sel, o->loss_pct / 100.0, NULL) < 0) fprintf(stderr, PROG ": drill: wan-loss not in place\n");
    }
    if (!strcmp(d, "origin-hang")) signal_node(lb, SIGSTOP);
    else if (!strcmp(d, "origin-slow")) apps_each(0, o->slow_ms);
    else if (!strcmp(d, "origin-errors")) apps_each(1, 0);
    else if (!strcmp(d, "origin-down")) signal_node(lb, SIGKILL);
    else if (!strcmp(d, "app-kill")) signal_node(node_named("app1"), SIGKILL);
    else if (!strcmp(d, "app-hang")) signal_node(node_named("app1"), SIGSTOP);
    else if (!strcmp(d, "parent-down")) signal_node(shield_node(), SIGKILL);
}

static void undo(const char *d, int on)
{
    int lb = lab_plan_find(&L.plan, LAB_LB, 0);
    if (!strcmp(d, "origin-hang")) signal_node(lb, SIGCONT);
    else if (!strcmp(d, "origin-slow") || !strcmp(d, "origin-errors")) apps_each(0, 0);
    else if (!strcmp(d, "origin-down")) start_node(lb, 0, 0);
    else if (!strcmp(d, "app-kill")) start_node(node_named("app1"), 0, 0);
    else if (!strcmp(d, "app-hang")) signal_node(node_named("app1"), SIGCONT);
    else if (!strcmp(d, "parent-down")) start_node(shield_node(), on, 0);
    else if (!strcmp(d, "wan-loss") && lab_wan_set_loss(g_wan_sel, 0, NULL) < 0)
        lab_die("drill: a relay did not go back to no loss");
}

/* `cdn-lab fault` for the origin side (issue 19), each for a duration, then undone:
 *   origin-hang | origin-down | parent-down | origin-slow MS | origin-errors RATE | app-hang APP
 * The same injections as the drills (SIGSTOP/SIGCONT, kill and start, apps restarted with
 * --delay or --error-rate). 0, or 1 when a node did not come back healthy. */
int lab_fault_origin(const char *what, const char *arg, double for_s)
{
    int lb = lab_plan_find(&L.plan, LAB_LB, 0), k = -1;
    const char *name = "shop-lb";
    if (!strcmp(what, "origin-hang")) {
        signal_node(lb, SIGSTOP);
    } else if (!strcmp(what, "origin-down")) {
        signal_node(lb, SIGKILL);
    } else if (!strcmp(what, "parent-down")) {
        if ((k = shield_node()) < 0) lab_die("fault parent-down: this topology has no parent edge");
        name = L.plan.nodes[k].name;
        signal_node(k, SIGKILL);
    } else if (!strcmp(what, "origin-slow")) {
        char *end;
        long ms = arg ? strtol(arg, &end, 10) : -1;
        if (!arg || *end || ms < 1 || ms > 60000) lab_die("fault origin-slow MS: a delay of 1 to 60000 ms per request");
        name = "every shop-app";
        apps_each(0, (unsigned)ms);
    } else if (!strcmp(what, "origin-errors")) {
        char *end;
        double r = arg ? strtod(arg, &end) : -1;
        if (!arg || *end || !(r > 0 && r <= 1)) lab_die("fault origin-errors RATE: the share of requests answered 500, above 0 and at most 1");
        name = "every shop-app";
        g_error_rate = r;
        apps_each(0, 0);
        g_error_rate = 0;
    } else if (!strcmp(what, "app-hang")) {
        if (!arg) lab_die("fault app-hang APP (e.g. app1)");
        k = node_named(arg);
        if (L.plan.nodes[k].kind != LAB_APP) lab_die("fault app-hang: %s is not a shop-app", arg);
        name = "that shop-app";
        signal_node(k, SIGSTOP);
    } else {
        return -1;
    }
    double t0 = mono_s(); /* the fault holds for_s from when it is in place */
    printf("%s%s%s on %s for %.1f s\n", what, arg ? " " : "", arg ? arg : "", name, for_s);
    fflush(stdout);
    sleep_until(t0 + for_s);
    int rc = 0;
    if (!strcmp(what, "origin-hang")) signal_node(lb, SIGCONT);
    else if (!strcmp(what, "origin-down")) rc = start_node(lb, 0, 0) < 0;
    else if (!strcmp(what, "parent-down")) rc = start_node(k, 0, 0) < 0;
    else if (!strcmp(what, "origin-slow") || !strcmp(what, "origin-errors")) apps_each(0, 0);
    else if (!strcmp(what, "app-hang")) signal_node(k, SIGCONT);
    printf("%s undone after %.1f s%s\n", what, mono_s() - t0, rc ? " (NOT healthy again: see its log)" : "");
    return rc;
}

/* --- metrics --- */

/* Sum of the samples of `name` (a plain name matches "name " and "name{...} ") whose line holds
 * `label` (NULL: all). */
static double metric_sum_of(const char *body, const char *name, const char *label, double *max);
static double metric_sum(const char *body, const char *name, double *max)
{
    return metric_sum_of(body, name, NULL, max);
}

static double metric_sum_of(const char *body, const char *name, const char *label, double *max)
{
    double sum = 0;
    size_t nl = strlen(name);
    if (max) *max = 0;
    for (const char *p = body; p && *p;) {
        const char *e = strchr(p, '\n');
        const char *lim = e ? e : p + strlen(p);
        if (!strncmp(p, name, nl) && (p[nl] == ' ' || p[nl] == '{') &&
            (!label || memmem(p, (size_t)(lim - p), label, strlen(label)))) {
            const char *sp = p + nl;
            const char *v = NULL;
            for (const char *q = sp; q < lim; q++)
                if (*q == ' ') v = q + 1;
            if (v) {
                double x = strtod(v, NULL);
                sum += x;
                if (max && x > *max) *max = x;
            }
        }
        p = e ? e + 1 : NULL;
    }
    return sum;
}

static void poll_edges(struct poll *pl)
{
    memset(pl, 0, sizeof(*pl));
    pl->t = mono_s();
    for (size_t i = 0, e = 0; i < L.plan.nnodes && e < DRILL_MAX_EDGES; i++) {
        const struct lab_node *n = &L.plan.nodes[i];
        if (n->kind != LAB_EDGE) continue;
        e++;
        char *body = NULL;
        size_t len = 0;
        if (lab_http_get(n->ns, n->mgmt, LAB_PORT_EDGE_ADMIN, "/metrics", &body, &len) == 200 && body) {
            double mx;
            metric_sum(body, "edge_breaker_state", &mx);
            pl->breakers_open += mx > 0;
            pl->ok[e - 1] = 1;
            pl->origin_fetches[e - 1] = metric_sum(body, "edge_origin_fetches_total", NULL);
            pl->refused[e - 1] = metric_sum(body, "edge_breaker_refused_total", NULL);
            pl->parent_down[e - 1] = metric_sum(body, "edge_parent_down_total", NULL);
            pl->opened[e - 1] = metric_sum_of(body, "edge_breaker_transitions_total", "to=\"open\"", NULL);
            pl->closed[e - 1] = metric_sum_of(body, "edge_breaker_transitions_total", "to=\"closed\"", NULL);
            pl->slow_stale[e - 1] = metric_sum(body, "edge_stale_slow_total", NULL);
            pl->brk_stale[e - 1] = metric_sum(body, "edge_breaker_stale_total", NULL);
        }
        free(body);
    }
}

/* A counter's growth over polls [from, to], summed over the edges: a value below the last one
 * seen is a restarted edge, which counts from 0 again; an edge that did not answer is skipped. */
static double growth(const struct poll *pl, size_t from, size_t to, size_t off)
{
    double sum = 0;
    for (size_t e = 0; e < DRILL_MAX_EDGES; e++) {
        double last = NAN;
        for (size_t i = from; i <= to; i++) {
            if (!pl[i].ok[e]) continue;
            double v = *(const double *)((const char *)&pl[i] + off + e * sizeof(double));
            if (!isnan(last)) sum += v >= last ? v - last : v;
            last = v;
        }
    }
    return sum;
}

/* --- the client logs --- */

struct urlset {
    char **k;
    size_t cap, n;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int urlset_has(const struct urlset *u, const char *s)
{
    if (!u->cap) return 0;
    for (size_t i = fnv(s) & (u->cap - 1);; i = (i + 1) & (u->cap - 1)) {
        if (!u->k[i]) return 0;
        if (!strcmp(u->k[i], s)) return 1;
    }
}

static void urlset_add(struct urlset *u, const char *s)
{
    if (urlset_has(u, s)) return;
    if ((u->n + 1) * 2 > u->cap) {
        struct urlset b = {.cap = u->cap ? u->cap * 2 : 1024};
        b.k = calloc(b.cap, sizeof(*b.k));
        if (!b.k) lab_die("out of memory");
        for (size_t i = 0; i < u->cap; i++)
            if (u->k[i]) {
                size_t j = fnv(u->k[i]) & (b.cap - 1);
                while (b.k[j]) j = (j + 1) & (b.cap - 1);
                b.k[j] = u->k[i];
                b.n++;
            }
        free(u->k);
        *u = b;
    }
    size_t j = fnv(s) & (u->cap - 1);
    while (u->k[j]) j = (j + 1) & (u->cap - 1);
    u->k[j] = strdup(s);
    if (!u->k[j]) lab_die("out of memory");
    u->n++;
}

static void urlset_free(struct urlset *u)
{
    for (size_t i = 0; i < u->cap; i++) free(u->k[i]);
    free(u->k);
    memset(u, 0, sizeof(*u));
}

struct dvec {
    double *v;
    size_t n, cap;
};

static void dpush(struct dvec *d, double x)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->v = realloc(d->v, d->cap * sizeof(*d->v));
        if (!d->v) lab_die("out of memory");
    }
    d->v[d->n++] = x;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void pctl(struct dvec *d, double *p50, double *p99)
{
    qsort(d->v, d->n, sizeof(*d->v), dcmp);
    *p50 = d->n ? lab_percentile(d->v, d->n, 50) : NAN;
    *p99 = d->n ? lab_percentile(d->v, d->n, 99) : NAN;
}

/* 0 a hit, 1 a stale copy served (fwd=stale: swr, stale-if-error, fast stale, breaker grace),
 * 2 anything else (the edge asked upstream) */
static int path_of(const struct lab_logrec *r)
{
    return !strcmp(r->cache, "hit") ? 0 : !strcmp(r->cache, "stale") ? 1 : 2;
}

/* Reads every region's log of the run (copied to OUT), fills the client-side numbers of res. */
static void read_logs(const struct drill_opts *o, struct run_result *res)
{
    struct dvec hit = {0}, stale = {0}, miss = {0}, base = {0};
    for (size_t k = 0; k < L.topo->regions.n; k++) {
        const char *rn = lab_topo_reg(L.topo, k)->name;
        char lp[PATH_MAX], tp[PATH_MAX + 8], cp[PATH_MAX + 128];
        lab_path(lp, sizeof(lp), "load-%s.log", rn);
        snprintf(tp, sizeof(tp), "%s.t0", lp);
        double t0 = NAN;
        FILE *f = fopen(tp, "r");
        if (f) {
            if (fscanf(f, "%lf", &t0) != 1) t0 = NAN;
            fclose(f);
        }
        f = fopen(lp, "r");
        if (!f || isnan(t0)) {
            if (f) fclose(f);
            fprintf(stderr, PROG ": drill: no log for region %s\n", rn);
            continue;
        }
        snprintf(cp, sizeof(cp), "%s/%s-%s-%s.log", o->out, res->drill, res->mode, rn);
        FILE *cf = fopen(cp, "w");
        struct urlset pre = {0};
        /* two passes: the URLs answered before the fault, then the requests during it */
        char line[1024];
        for (int pass = 0; pass < 2; pass++) {
            rewind(f);
            while (fgets(line, sizeof(line), f)) {
                struct lab_logrec r;
                if (pass == 0 && cf) fputs(line, cf);
                if (lab_log_parse(line, strlen(line), &r) < 0) continue;
                double done = t0 + r.t, sent = done - r.latency_ms / 1000.0;
                int err = r.status == 0 || r.status >= 500;
                if (pass == 0) {
                    if (!err && path_of(&r) < 2 && done < res->t_fault) urlset_add(&pre, r.url); /* it was in the cache */
                    if (!err && path_of(&r) == 0 && sent < res->t_fault - 0.2 && sent > res->t_fault - o->warm_s / 2)
                        dpush(&base, r.latency_ms);
                    continue;
                }
                if (sent < res->t_fault || sent >= res->t_back) continue;
                res->n++;
                res->errors += err;
                if (urlset_has(&pre, r.url)) {
                    res->pre_n++;
                    res->pre_errors += err;
                }
                if (err) continue;
                int pa = path_of(&r);
                dpush(pa == 0 ? &hit : pa == 1 ? &stale : &miss, r.latency_ms);
            }
        }
        if (cf) fclose(cf);
        fclose(f);
        urlset_free(&pre);
    }
    res->hit_n = hit.n;
    res->stale_n = stale.n;
    res->miss_n = miss.n;
    pctl(&hit, &res->hit_p50, &res->hit_p99);
    pctl(&stale, &res->stale_p50, &res->stale_p99);
    pctl(&miss, &res->miss_p50, &res->miss_p99);
    pctl(&base, &res->base_hit_p50, &res->base_hit_p99);
    free(hit.v), free(stale.v), free(miss.v), free(base.v);
}

/* --- one run --- */

/* Seconds the fault and its undo take beyond F (restarts), added to the load's duration. */
static double drill_extra_s(const char *d)
{
    return !strcmp(d, "origin-slow") ? 6 : !strcmp(d, "origin-hang") || !strcmp(d, "app-hang") || !strcmp(d, "wan-loss") ? 1 : 3;
}

static pid_t start_load(const struct drill_opts *o, const char *d, unsigned seed)
{
    char me[PATH_MAX + 16], rate[32], dur[32], sd[16];
    snprintf(sd, sizeof(sd), "%u", seed);
    snprintf(me, sizeof(me), "%s/cdn-lab", L.exedir);
    snprintf(rate, sizeof(rate), "%g", o->rate);
    snprintf(dur, sizeof(dur), "%gs", o->warm_s + o->fault_s + o->rest_s + drill_extra_s(d));
    for (size_t k = 0; k < L.topo->regions.n; k++) { /* a fresh LOG.t0 marks each region's start */
        char p[PATH_MAX];
        lab_path(p, sizeof(p), "load-%s.log.t0", lab_topo_reg(L.topo, k)->name);
        unlink(p);
    }
    pid_t pid = fork();
    if (pid == 0) {
        char lp[PATH_MAX + 16];
        snprintf(lp, sizeof(lp), "%s/load.out", o->out);
        if (!freopen(lp, "a", stdout) || !freopen(lp, "a", stderr)) _exit(127);
        execl(me, me, "-s", L.statedir, "load", "-w", "shopper", "-R", rate, "-d", dur, "-s", sd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The first region's LOG.t0 (cdn-load writes it as it starts), waiting up to 30 s for it. */
static double load_t0(void)
{
    char p[PATH_MAX];
    lab_path(p, sizeof(p), "load-%s.log.t0", lab_topo_reg(L.topo, 0)->name);
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(p, "r");
        double t = NAN;
        if (f) {
            if (fscanf(f, "%lf", &t) != 1) t = NAN;
            fclose(f);
        }
        if (!isnan(t)) return t;
        usleep(100000);
    }
    return NAN;
}

/* Every page (the second CDN name) marked stale; the images stay fresh: hits. */
static void soft_purge_pages(void)
{
    char me[PATH_MAX + 16];
    snprintf(me, sizeof(me), "%s/cdn-lab", L.exedir);
    const char *const *hn = L.topo->hostnames.items;
    char h1[128];
    snprintf(h1, sizeof(h1), "%s.%s", L.topo->hostnames.n > 1 ? hn[1] : hn[0], L.topo->zone);
    char *av[] = {me, "-s", L.statedir, "purge", "--soft", "--wait=3", "all", h1, NULL};
    if (lab_run_argv(av, 1) != 0) fprintf(stderr, PROG ": drill: the soft purge did not complete on every edge\n");
}

/* A new object through the origin's region's edge (a URL nobody asked for: only the origin can
 * answer it): 1 when it came back 200. The clients' view of "the origin is back". For wan-loss,
 * whose links all end in the origin's region, through the first other region with a relay to it
 * (its fetches cross a link that lost packets). */
static int probe_new_object(unsigned n, const char *d)
{
    int r = L.topo->origin_region;
    if (!strcmp(d, "wan-loss"))
        for (size_t i = 0; i < L.plan.nrelays; i++)
            if (L.plan.relays[i].ra == L.topo->origin_region || L.plan.relays[i].rb == L.topo->origin_region) {
                r = L.plan.relays[i].ra == L.topo->origin_region ? L.plan.relays[i].rb : L.plan.relays[i].ra;
                break;
            }
    int c = lab_plan_find(&L.plan, LAB_CLIENT, r), e = -1;
    for (size_t i = 0; i < L.topo->edges.n && e < 0; i++)
        if (L.topo->edge_region[i] == r && !lab_topo_edge(L.topo, i)->parent) e = lab_plan_find(&L.plan, LAB_EDGE, (int)i);
    for (size_t i = 0; i < L.topo->edges.n && e < 0; i++)
        if (!lab_topo_edge(L.topo, i)->parent) e = lab_plan_find(&L.plan, LAB_EDGE, (int)i);
    if (c < 0 || e < 0) return 0;
    char target[96];
    snprintf(target, sizeof(target), "/p/1?drill=%ld-%u", (long)getpid(), n);
    return lab_http_get(L.plan.nodes[c].ns, L.plan.nodes[e].addr, LAB_PORT_HTTP, target, NULL, NULL) == 200;
}

static void run_one(const char *d, const char *mode, unsigned seed, const struct drill_opts *o, struct run_result *res)
{
    static struct poll polls[MAX_POLLS];
    size_t np = 0;
    memset(res, 0, sizeof(*res));
    res->drill = d;
    res->mode = mode;
    int on = !strcmp(mode, "on");
    fprintf(stderr, PROG ": drill %s, breaker and fast stale %s\n", d, mode);
    pid_t load = start_load(o, d, seed);
    double t0 = load_t0();
    if (isnan(t0)) {
        kill(load, SIGTERM);
        waitpid(load, NULL, 0);
        lab_die("drill: the load did not start (see %s/load.out)", o->out);
    }
    sleep_until(t0 + o->warm_s);
    if (o->expire) soft_purge_pages();
    poll_edges(&polls[np++]); /* polls[0]: just before the fault */
    res->t_fault = mono_s();
    inject(d, o);
    double t_undo = mono_s() + o->fault_s; /* F once the fault is in place (restarts take time) */
    while (mono_s() < t_undo && np < MAX_POLLS - 64) {
        poll_edges(&polls[np++]);
        usleep(POLL_MS * 1000);
    }
    undo(d, on);
    res->t_back = mono_s();
    size_t back = np;
    poll_edges(&polls[np++]);
    int st = 0;
    double client_back = NAN;
    static unsigned probes;
    while (waitpid(load, &st, WNOHANG) == 0) {
        if (np < MAX_POLLS) poll_edges(&polls[np++]);
        if (isnan(client_back) && probe_new_object(probes++, d)) client_back = mono_s();
        usleep(POLL_MS * 1000);
    }
    res->ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    res->origin_req = growth(polls, 0, back, offsetof(struct poll, origin_fetches));
    res->refused = growth(polls, 0, back, offsetof(struct poll, refused));
    res->slow_stale = growth(polls, 0, back, offsetof(struct poll, slow_stale));
    res->brk_stale = growth(polls, 0, back, offsetof(struct poll, brk_stale));
    /* detect: the first poll after the fault that saw a breaker open (a transition, not the
     * gauge: an idle upstream's breaker stays open until asked again) or a parent marked down;
     * recover: the first breaker that closed after the origin side was back */
    res->detect_s = res->recover_breaker_s = NAN;
    for (size_t i = 1; i < np; i++) {
        const struct poll *pl = &polls[i];
        if (isnan(res->detect_s) && (growth(polls, 0, i, offsetof(struct poll, opened)) > 0 ||
                                     growth(polls, 0, i, offsetof(struct poll, parent_down)) > 0))
            res->detect_s = pl->t - res->t_fault;
        /* from the last poll before the undo: a breaker can close within the undo's own poll
         * period (the hung requests' answers close it at once), 0 then */
        if (i >= back && back > 0 && isnan(res->recover_breaker_s) &&
            growth(polls, back - 1, i, offsetof(struct poll, closed)) > 0)
            res->recover_breaker_s = pl->t > res->t_back ? pl->t - res->t_back : 0;
    }
    read_logs(o, res);
    res->recover_client_s = isnan(client_back) ? NAN : client_back - res->t_back;
    res->t0 = t0;
}

/* --- output --- */

static void fmt_s(char *b, size_t n, double x)
{
    if (isnan(x)) snprintf(b, n, "-");
    else snprintf(b, n, "%.2f", x);
}

static void fmt_ms(char *b, size_t n, double x)
{
    if (isnan(x)) snprintf(b, n, "-");
    else if (x < 10) snprintf(b, n, "%.1f", x);
    else snprintf(b, n, "%.0f", x);
}

static void print_row(FILE *f, const struct run_result *r)
{
    char hp50[16], hp99[16], bp99[16], sp50[16], sp99[16], mp50[16], mp99[16], det[16], rb[16], rc[16];
    fmt_ms(sp50, sizeof(sp50), r->stale_p50);
    fmt_ms(sp99, sizeof(sp99), r->stale_p99);
    fmt_ms(hp50, sizeof(hp50), r->hit_p50);
    fmt_ms(hp99, sizeof(hp99), r->hit_p99);
    fmt_ms(bp99, sizeof(bp99), r->base_hit_p99);
    fmt_ms(mp50, sizeof(mp50), r->miss_p50);
    fmt_ms(mp99, sizeof(mp99), r->miss_p99);
    fmt_s(det, sizeof(det), r->detect_s);
    fmt_s(rb, sizeof(rb), r->recover_breaker_s);
    fmt_s(rc, sizeof(rc), r->recover_client_s);
    fprintf(f, "| %s | %s | %llu | %.2f%% (%llu) | %llu of %llu | %s / %s (%s) | %s / %s | %s / %s | %.0f (%.0f refused) | %s | %s / %s |%s\n",
            r->drill, r->mode, (unsigned long long)r->n, r->n ? 100.0 * (double)r->errors / (double)r->n : 0.0,
            (unsigned long long)r->errors, (unsigned long long)r->pre_errors, (unsigned long long)r->pre_n, hp50, hp99,
            bp99, sp50, sp99, mp50, mp99, r->origin_req, r->refused, det, rb, rc, r->ok ? "" : " (load failed)");
}

static void print_table(FILE *f, const struct run_result *rs, size_t n, const struct drill_opts *o)
{
    int wan = 0;
    for (size_t i = 0; i < n; i++) wan |= !strcmp(rs[i].drill, "wan-loss");
    fprintf(f, "fault %.0f s under shopper load %.0f/s per region after %.0f s of warm-up%s; latencies in ms",
            o->fault_s, o->rate, o->warm_s, o->expire ? " and a soft purge of every page (images stay fresh)" : "");
    if (wan) fprintf(f, "; wan-loss: %g%% both ways on every WAN link to the origin's region", o->loss_pct);
    fprintf(f, "\n\n");
    fprintf(f, "| drill | breaker+fast stale | requests | client errors | errors on cached before | hit p50 / p99 (before) |"
               " stale p50 / p99 | miss p50 / p99 | origin requests | detect s | recover breaker / clients s |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) print_row(f, &rs[i]);
}

static void write_resil_conf(const struct drill_opts *o)
{
    FILE *f = fopen(resil_conf(), "w");
    if (!f) lab_die("drill: cannot write %s: %s", resil_conf(), strerror(errno));
    fprintf(f, "# cdn-lab drill: the edges' resilience settings in mode \"on\" (docs/EDGE.md, Resilience)\n"
               "stale_first_byte_timeout: 1s\n"
               "breaker: {failures: 5, error_ratio: 0.5, min_requests: 20, window: 10s, open: 2s, probes: 1, grace: 1h");
    if (o->first_byte_ms) fprintf(f, ",\n          first_byte: %ums", o->first_byte_ms);
    fprintf(f, "}\n");
    if (fclose(f) != 0) lab_die("drill: cannot write %s", resil_conf());
}

static void usage_drill(FILE *f)
{
    fprintf(f, "Usage: " PROG " drill [-o DIR] [--drills A,B..] [--modes on,off] [-W S] [-F S] [-R S] [--rate R]\n"
               "                   [--slow MS] [--no-expire] [--first-byte MS] [--loss PCT]\n"
               "  drills: origin-hang origin-slow origin-errors origin-down app-kill app-hang parent-down wan-loss\n"
               "          (default: all; wan-loss only where the lab has WAN relays: namespaces, delays)\n"
               "  -W warm-up (8), -F fault (6), -R after the undo (6) seconds; --rate per region (30/s);\n"
               "  --slow the apps' delay in origin-slow (2500 ms); --no-expire: no soft purge before the fault;\n"
               "  --first-byte: breaker.first_byte in mode on (default 2000; 0: not set);\n"
               "  --loss: wan-loss's packet loss on the links to the origin's region (10%%)\n");
}

int lab_cmd_drill(int argc, char **argv)
{
    struct drill_opts o = {.warm_s = 8, .fault_s = 6, .rest_s = 6, .rate = 30, .slow_ms = 2500, .expire = 1,
                           .first_byte_ms = 2000, .loss_pct = 10};
    char drills[256] = "", modes[32] = "on,off";
    static const struct option lo[] = {{"drills", required_argument, NULL, 'd'}, {"modes", required_argument, NULL, 'm'},
                                       {"rate", required_argument, NULL, 'r'},   {"slow", required_argument, NULL, 's'},
                                       {"no-expire", no_argument, NULL, 'x'},    {"help", no_argument, NULL, 'h'},
                                       {"first-byte", required_argument, NULL, 'b'},
                                       {"loss", required_argument, NULL, 'l'},
                                       {NULL, 0, NULL, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "o:W:F:R:h", lo, NULL)) != -1) switch (c) {
        case 'o': snprintf(o.out, sizeof(o.out), "%s", optarg); break;
        case 'W': o.warm_s = atof(optarg); break;
        case 'F': o.fault_s = atof(optarg); break;
        case 'R': o.rest_s = atof(optarg); break;
        case 'r': o.rate = atof(optarg); break;
        case 's': o.slow_ms = (unsigned)atoi(optarg); break;
        case 'x': o.expire = 0; break;
        case 'b': o.first_byte_ms = (unsigned)atoi(optarg); break;
        case 'l': {
            char *end;
            o.loss_pct = strtod(optarg, &end);
            if (*end == '%') end++;
            if (*end || !(o.loss_pct > 0 && o.loss_pct <= 100)) {
                fprintf(stderr, PROG ": drill --loss PCT: above 0 and at most 100\n");
                return 2;
            }
            break;
        }
        case 'd': snprintf(drills, sizeof(drills), "%s", optarg); break;
        case 'm': snprintf(modes, sizeof(modes), "%s", optarg); break;
        case 'h': usage_drill(stdout); return 0;
        default: usage_drill(stderr); return 2;
        }
    if (optind != argc || o.warm_s < 2 || o.fault_s < 1 || o.rest_s < 1 || o.rate <= 0) {
        usage_drill(stderr);
        return 2;
    }
    if (lab_load_state() < 0) lab_die("no lab in %s (cdn-lab up first)", L.statedir);
    lab_load_topology(L.topo_path);
    if (!*o.out) lab_path(o.out, sizeof(o.out), "drill");
    char mk[PATH_MAX + 16];
    snprintf(mk, sizeof(mk), "mkdir -p %s", o.out);
    if (lab_runf(1, "%s", mk) != 0) lab_die("drill: cannot make %s", o.out);
    const char *list[NDRILLS];
    size_t nd = 0;
    if (!*drills)
        for (size_t i = 0; i < NDRILLS; i++) {
            if (!strcmp(drill_names[i], "wan-loss") && !lab_wan_relays()) continue; /* loopback: no WAN */
            if (!strcmp(drill_names[i], "parent-down") && shield_node() < 0) continue;
            list[nd++] = drill_names[i];
        }
    else
        for (char *s = strtok(drills, ","); s && nd < NDRILLS; s = strtok(NULL, ",")) {
            size_t i = 0;
            while (i < NDRILLS && strcmp(s, drill_names[i])) i++;
            if (i == NDRILLS) lab_die("drill: unknown drill '%s'", s);
            if (!strcmp(s, "parent-down") && shield_node() < 0) lab_die("drill: parent-down needs a parent edge");
            if (!strcmp(s, "wan-loss") && !lab_wan_relays()) lab_die("drill: wan-loss needs WAN relays (namespaces, regions with a delay)");
            list[nd++] = drill_names[i];
        }
    const char *mlist[2];
    size_t nm = 0;
    for (char *s = strtok(modes, ","); s && nm < 2; s = strtok(NULL, ",")) {
        if (strcmp(s, "on") && strcmp(s, "off")) lab_die("drill: --modes on,off");
        mlist[nm++] = !strcmp(s, "on") ? "on" : "off";
    }
    write_resil_conf(&o);
    struct run_result *rs = calloc(nd * nm, sizeof(*rs));
    if (!rs) lab_die("out of memory");
    size_t nr = 0;
    char tsvp[PATH_MAX + 16];
    snprintf(tsvp, sizeof(tsvp), "%s/drill.tsv", o.out);
    FILE *tsv = fopen(tsvp, "w");
    if (tsv)
        fprintf(tsv, "drill\tmode\trequests\terrors\tcached_before\tcached_before_errors\thit_n\thit_p50_ms\thit_p99_ms\t"
                     "base_hit_p50_ms\tbase_hit_p99_ms\tstale_n\tstale_p50_ms\tstale_p99_ms\tmiss_n\tmiss_p50_ms\tmiss_p99_ms\torigin_requests\trefused\t"
                     "detect_s\trecover_breaker_s\trecover_clients_s\tload_ok\tt_fault_s\tt_back_s\tfast_stale\tbreaker_stale\n");
    /* drill by drill, its modes side by side, the order alternating (on-off, off-on, ...): the
     * caches only grow during a drill set, and a mode always run second would find more of the
     * long tail cached */
    const char *cur = NULL;
    for (size_t i = 0; i < nd; i++) {
        for (size_t mm = 0; mm < nm; mm++) {
            size_t m = i % 2 ? nm - 1 - mm : mm;
            if (!cur || strcmp(cur, mlist[m])) set_edges(!strcmp(mlist[m], "on"));
            cur = mlist[m];
            struct run_result *r = &rs[nr++];
            /* a seed of its own per run: a run must not find its fault window's URLs warmed
             * by the run before it (the same seed made "off" after "on" look better) */
            run_one(list[i], mlist[m], 1000 + 100 * (unsigned)nr, &o, r);
            print_row(stderr, r);
            if (tsv) {
                fprintf(tsv, "%s\t%s\t%llu\t%llu\t%llu\t%llu\t%llu\t%.2f\t%.2f\t%.2f\t%.2f\t%llu\t%.2f\t%.2f\t%llu\t%.2f\t%.2f\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%d\t%.3f\t%.3f\t%.0f\t%.0f\n",
                        r->drill, r->mode, (unsigned long long)r->n, (unsigned long long)r->errors,
                        (unsigned long long)r->pre_n, (unsigned long long)r->pre_errors, (unsigned long long)r->hit_n,
                        r->hit_p50, r->hit_p99, r->base_hit_p50, r->base_hit_p99, (unsigned long long)r->stale_n,
                        r->stale_p50, r->stale_p99, (unsigned long long)r->miss_n,
                        r->miss_p50, r->miss_p99, r->origin_req, r->refused, r->detect_s, r->recover_breaker_s,
                        r->recover_client_s, r->ok, r->t_fault - r->t0, r->t_back - r->t0, r->slow_stale,
                        r->brk_stale);
                fflush(tsv);
            }
        }
    }
    if (tsv) fclose(tsv);
    /* rows of one drill side by side: on then off */
    struct run_result *sorted = calloc(nr, sizeof(*sorted));
    size_t ns = 0;
    for (size_t i = 0; i < nd; i++)
        for (size_t k = 0; k < nr; k++)
            if (rs[k].drill == list[i]) sorted[ns++] = rs[k];
    print_table(stdout, sorted, ns, &o);
    char tp[PATH_MAX + 16];
    snprintf(tp, sizeof(tp), "%s/drill.txt", o.out);
    FILE *tf = fopen(tp, "w");
    if (tf) {
        print_table(tf, sorted, ns, &o);
        fclose(tf);
    }
    printf("\ndrill: %s/drill.txt, drill.tsv, the client logs per run\n", o.out);
    int bad = 0;
    for (size_t i = 0; i < nr; i++) bad += !rs[i].ok;
    free(sorted);
    free(rs);
    return bad ? 1 : 0;
}
