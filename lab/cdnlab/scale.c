/* lab/cdnlab/scale.c - `cdn-lab scale`: the app pool's auto-scaler, a small controller like an
 * auto-scaling group. The decision is lab/lib/scale.c's pure function; this file measures, acts
 * and writes down.
 *
 * Owns: STATE/scale.log (every decision that changes or refuses to change the pool, and every
 * step of a change, with its reason; also on stdout), STATE/scale.tsv (one line per interval:
 * the sample and the decision, the scenario's plot) and STATE/scale-backends.tsv (per backend and
 * interval: state, in flight, requests, p95, CPU). Times are CLOCK_MONOTONIC seconds, the clock of
 * cdn-load's LOG.t0 and faults.tsv.
 *
 * Each interval (topology `scale.interval`): shop-lb's GET /backends (state and requests in flight
 * per backend) and /metrics (shop_lb_backend_duration_seconds: this interval's p50/p95/p99 from
 * the histogram's deltas, per backend and for the pool; shop_lb_requests_total by status: requests
 * and 5xx), and each pool app's CPU from /proc/PID/stat (utime + stime). Then lab_scale_decide().
 *
 * A change is a small state machine, advanced every 100 ms between samples, one at a time:
 *   up:   the lowest spare app slot (a planned app node not running: `up` made its namespace and
 *         address) is started like `up` starts apps (lab_start_proc, recorded in the state file);
 *         once its /healthz answers it is added with POST /backends/default?add=ADDR (shop-lb
 *         sends it nothing before its own first health check passes). 20 s without health: stopped.
 *   down: an unhealthy app of the pool, else the newest (highest index), is drained (POST .../drain: no new request),
 *         then we wait until shop-lb's in-flight count for it is 0 (60 s at most), remove it
 *         (POST .../remove), SIGTERM it (shop-app's graceful stop) and record it as stopped on
 *         purpose ("proc NAME 0 0": `status` does not count it as dead).
 * An app of the pool whose process is gone is removed from shop-lb at the next sample (not a
 * change: no drain, nothing to wait for), so the decision sees the smaller pool and replaces it
 * at once below min. The cool-down starts when a change completes. `--fixed` measures and decides the same but never
 * acts (the baseline of the scenario). */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"
#include "lab/cdnlab/labrun.h"
#include "lab/lib/scale.h"

#define MAX_BE 32
#define NB 16           /* histogram buckets incl. +Inf */
#define WINDOW 600      /* samples kept for the decision */

struct be {
    char addr[64];
    int present, up, drained;
    unsigned active;
    int node;           /* plan node of the app at this address, -1 if none */
    /* cumulative histogram and its previous scrape */
    double cum[NB], prev[NB];
    int have_prev;
    double p95_ms;
    double reqs;        /* attempts this interval */
    unsigned long long ticks, prev_ticks;
    double cpu;
};

static struct {
    const struct lab_node *lb;
    struct be be[MAX_BE];
    size_t nbe;
    double le[NB];
    size_t nle;
    double status_prev[6], status_cum[6]; /* shop_lb_requests_total by class: [0] other, [1..5] 1xx..5xx */
    int have_status;
    FILE *log, *tsv, *btsv;
    int fixed;
    long clk;
    uint64_t last_sample;
} S;

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A line in scale.log and on stdout: "T_MONO  WHAT  text". */
static void say(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *what, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    double t = (double)mono_ms() / 1000.0;
    printf("%.3f %-6s %s\n", t, what, msg);
    fflush(stdout);
    if (S.log) {
        fprintf(S.log, "%.3f\t%s\t%s\n", t, what, msg);
        fflush(S.log);
    }
}

static struct be *be_get(const char *addr, size_t len)
{
    for (size_t i = 0; i < S.nbe; i++)
        if (strlen(S.be[i].addr) == len && !memcmp(S.be[i].addr, addr, len)) return &S.be[i];
    if (S.nbe == MAX_BE || len >= sizeof(S.be[0].addr)) return NULL;
    struct be *b = &S.be[S.nbe++];
    memset(b, 0, sizeof(*b));
    memcpy(b->addr, addr, len);
    b->node = -1;
    for (size_t k = 0; k < L.plan.nnodes; k++) {
        char a[64];
        snprintf(a, sizeof(a), "%s:%d", L.plan.nodes[k].addr, LAB_PORT_APP);
        if (L.plan.nodes[k].kind == LAB_APP && !strcmp(a, b->addr)) b->node = (int)k;
    }
    return b;
}

/* GET /backends: which backends are in the pool, their state and requests in flight; -1 when
 * shop-lb does not answer. */
static int read_backends(void)
{
    char *body = NULL;
    size_t len = 0;
    int st = lab_http_get(S.lb->ns, S.lb->mgmt, LAB_PORT_LB_ADMIN, "/backends", &body, &len);
    if (st != 200 || !body) {
        free(body);
        return -1;
    }
    for (size_t i = 0; i < S.nbe; i++) S.be[i].present = 0;
    for (char *p = strstr(body, "\"addr\":\""); p; p = strstr(p, "\"addr\":\"")) {
        p += 8;
        char *e = strchr(p, '"');
        if (!e) break;
        struct be *b = be_get(p, (size_t)(e - p));
        char *next = strstr(e, "\"addr\":\"");
        char *stp = strstr(e, "\"state\":\""), *ac = strstr(e, "\"active\":");
        if (b && stp && (!next || stp < next)) {
            b->present = 1;
            b->up = !strncmp(stp + 9, "up\"", 3);
            b->drained = !strncmp(stp + 9, "drained\"", 8);
            b->active = ac && (!next || ac < next) ? (unsigned)strtoul(ac + 9, NULL, 10) : 0;
        }
        p = e;
    }
    free(body);
    return 0;
}

/* A label's value in a metrics line: `name="value"` between s and the closing brace. */
static int label(const char *s, const char *name, char *out, size_t n)
{
    char k[64];
    snprintf(k, sizeof(k), "%s=\"", name);
    const char *p = strstr(s, k), *end = strchr(s, '}');
    if (!p || (end && p > end)) return -1;
    p += strlen(k);
    const char *q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= n) return -1;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = 0;
    return 0;
}

/* GET /metrics: every backend's latency histogram (cumulative), requests by status class. */
static int read_metrics(void)
{
    char *body = NULL;
    size_t len = 0;
    int st = lab_http_get(S.lb->ns, S.lb->mgmt, LAB_PORT_LB_ADMIN, "/metrics", &body, &len);
    if (st != 200 || !body) {
        free(body);
        return -1;
    }
    memset(S.status_cum, 0, sizeof(S.status_cum));
    for (char *line = body, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char v[64], le[32];
        if (!strncmp(line, "shop_lb_backend_duration_seconds_bucket{", 40)) {
            if (label(line, "backend", v, sizeof(v)) < 0 || label(line, "le", le, sizeof(le)) < 0) continue;
            const char *val = strrchr(line, ' ');
            struct be *b = be_get(v, strlen(v));
            if (!b || !val) continue;
            double bound = !strcmp(le, "+Inf") ? INFINITY : strtod(le, NULL);
            size_t k;
            for (k = 0; k < S.nle && S.le[k] != bound; k++)
                ;
            if (k == S.nle) {
                if (S.nle == NB) continue;
                S.le[S.nle++] = bound; /* the exposition lists bounds in order */
            }
            b->cum[k] = strtod(val + 1, NULL);
        } else if (!strncmp(line, "shop_lb_requests_total{", 23)) {
            if (label(line, "status", v, sizeof(v)) < 0) continue;
            const char *val = strrchr(line, ' ');
            int cls = atoi(v) / 100;
            if (val) S.status_cum[cls >= 1 && cls <= 5 ? cls : 0] += strtod(val + 1, NULL);
        }
    }
    free(body);
    return 0;
}

/* utime + stime of a pid, in clock ticks; 0 when it is gone. */
static unsigned long long proc_ticks(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    int ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    char *s = ok ? strrchr(buf, ')') : NULL;
    if (!s) return 0;
    unsigned long long ut = 0, stt = 0;
    /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) != 2) return 0;
    return ut + stt;
}

/* The recorded process of node k (pid 0 when none or stopped). */
static struct lab_proc_rec app_proc(int k)
{
    struct lab_proc_rec pr[256], none = {.pid = 0};
    size_t n = lab_read_procs(pr, 256);
    for (size_t i = 0; i < n; i++)
        if (k >= 0 && !strcmp(pr[i].name, L.plan.nodes[k].name)) return pr[i];
    return none;
}

/* One sample: backends, metrics, CPU; the interval's numbers into *s. -1 when shop-lb is away. */
static int take_sample(struct lab_scale_sample *s, double *p50, double *p99, double *reqs, double *errs)
{
    uint64_t now = mono_ms();
    double dt = S.last_sample ? (double)(now - S.last_sample) / 1000.0 : 0;
    if (read_backends() < 0 || read_metrics() < 0) return -1;
    memset(s, 0, sizeof(*s));
    s->t_ms = now;
    double pool[NB] = {0};
    double cpu_sum = 0;
    unsigned cpu_n = 0;
    for (size_t i = 0; i < S.nbe; i++) {
        struct be *b = &S.be[i];
        double d[NB] = {0}, tot = 0;
        for (size_t k = 0; k < S.nle; k++) {
            double c = b->cum[k] - (k ? b->cum[k - 1] : 0), pc = b->have_prev ? b->prev[k] - (k ? b->prev[k - 1] : 0) : c;
            d[k] = c - pc > 0 ? c - pc : 0; /* per-bucket counts of this interval */
            if (!b->have_prev) d[k] = 0;    /* the first scrape has no interval */
            pool[k] += d[k];
            tot += d[k];
        }
        memcpy(b->prev, b->cum, sizeof(b->prev));
        b->have_prev = 1;
        b->reqs = tot;
        b->p95_ms = lab_scale_quantile_ms(S.le, d, S.nle, 0.95);
        b->cpu = 0;
        if (b->node >= 0) {
            struct lab_proc_rec pr = app_proc(b->node);
            unsigned long long t = pr.pid > 0 && lab_proc_alive(pr.pid, pr.start) ? proc_ticks(pr.pid) : 0;
            if (t && b->prev_ticks && dt > 0 && t >= b->prev_ticks) b->cpu = (double)(t - b->prev_ticks) / (double)S.clk / dt;
            b->prev_ticks = t;
        }
        if (!b->present) continue;
        s->size++;
        s->healthy += b->up && !b->drained;
        s->inflight += b->active;
        cpu_sum += b->cpu;
        cpu_n++;
    }
    s->cpu = cpu_n ? cpu_sum / cpu_n : 0;
    s->p95_ms = lab_scale_quantile_ms(S.le, pool, S.nle, 0.95);
    for (size_t k = 0; k < S.nle; k++) s->requests += pool[k];
    *p50 = lab_scale_quantile_ms(S.le, pool, S.nle, 0.50);
    *p99 = lab_scale_quantile_ms(S.le, pool, S.nle, 0.99);
    *reqs = *errs = 0;
    for (int c = 0; c < 6; c++) {
        double d = S.have_status ? S.status_cum[c] - S.status_prev[c] : 0;
        *reqs += d;
        if (c == 5 || c == 0) *errs += d;
    }
    memcpy(S.status_prev, S.status_cum, sizeof(S.status_prev));
    S.have_status = 1;
    S.last_sample = now;
    return 0;
}

/* --- a change in progress --- */
enum change_kind { CH_NONE, CH_UP, CH_DOWN };
static struct {
    enum change_kind kind;
    int node;
    uint64_t t0;
    char addr[64];
} C;

static void app_addr(int k, char *out, size_t n) { snprintf(out, n, "%s:%d", L.plan.nodes[k].addr, LAB_PORT_APP); }

static int pool_has(int k)
{
    char a[64];
    app_addr(k, a, sizeof(a));
    for (size_t i = 0; i < S.nbe; i++)
        if (S.be[i].present && !strcmp(S.be[i].addr, a)) return 1;
    return 0;
}

/* Starts the lowest spare app slot; 0, or -1 when there is none. */
static int start_up(const char *reason, unsigned size)
{
    for (size_t k = 0; k < L.plan.nnodes; k++) {
        const struct lab_node *n = &L.plan.nodes[k];
        if (n->kind != LAB_APP || pool_has((int)k)) continue;
        struct lab_proc_rec pr = app_proc((int)k);
        if (pr.pid > 0 && lab_proc_alive(pr.pid, pr.start)) continue; /* running, not ours to start */
        struct lab_argv a = {0};
        lab_daemon_argv((int)k, &a);
        pid_t pid = lab_start_proc(n, n->name, &a);
        C = (typeof(C)){CH_UP, (int)k, mono_ms(), ""};
        app_addr((int)k, C.addr, sizeof(C.addr));
        say("up", "start %s (%s, pid %d), pool %u -> %u, because: %s", n->name, C.addr, (int)pid, size, size + 1, reason);
        return 0;
    }
    say("hold", "scale-up wanted but no spare app slot (the plan has %u): %s", L.topo->app_slots, reason);
    return -1;
}

/* Drains an app of the pool, an unhealthy one first, else the newest; 0, or -1 when there is none. */
static int start_down(const char *reason, unsigned size)
{
    int best = -1, best_up = 1;
    for (size_t i = 0; i < S.nbe; i++) {
        const struct be *b = &S.be[i];
        if (!b->present || b->drained || b->node < 0) continue;
        if (best < 0 || (!b->up && best_up) ||
            (b->up == best_up && L.plan.nodes[b->node].index > L.plan.nodes[best].index))
            best = b->node, best_up = b->up;
    }
    if (best < 0) return -1;
    char t[160];
    C = (typeof(C)){CH_DOWN, best, mono_ms(), ""};
    app_addr(best, C.addr, sizeof(C.addr));
    snprintf(t, sizeof(t), "/backends/default/%s/drain", C.addr);
    int st = lab_http_call(S.lb->ns, S.lb->mgmt, LAB_PORT_LB_ADMIN, "POST", t);
    say("down", "drain %s (%s), shop-lb said %d, pool %u -> %u, because: %s", L.plan.nodes[best].name, C.addr, st, size,
        size - 1, reason);
    if (st != 200) {
        C.kind = CH_NONE;
        return -1;
    }
    return 0;
}

/* An app of the pool whose process is gone (crashed, killed) leaves shop-lb's pool at once, so
 * that it no longer counts in the pool's size; the decision then sees the pool one app smaller
 * (and below min, replaces it at once). The number removed; adjusts the sample. */
static unsigned remove_dead(struct lab_scale_sample *s)
{
    unsigned n = 0;
    for (size_t i = 0; i < S.nbe; i++) {
        struct be *b = &S.be[i];
        if (!b->present || b->node < 0 || (C.kind != CH_NONE && C.node == b->node)) continue;
        struct lab_proc_rec pr = app_proc(b->node);
        if (pr.pid <= 0 || lab_proc_alive(pr.pid, pr.start)) continue;
        if (S.fixed) {
            say("would", "remove %s: its process %d is gone (--fixed: not acted on)", L.plan.nodes[b->node].name, (int)pr.pid);
            continue;
        }
        char t[160];
        snprintf(t, sizeof(t), "/backends/default/%s/remove", b->addr);
        int st = lab_http_call(S.lb->ns, S.lb->mgmt, LAB_PORT_LB_ADMIN, "POST", t);
        say("removed", "%s: its process %d is gone (crashed or killed): out of shop-lb's pool (POST .../remove: %d), "
                       "pool %u -> %u", L.plan.nodes[b->node].name, (int)pr.pid, st, s->size, s->size - 1);
        if (st != 200) continue;
        b->present = 0;
        s->size--;
        if (b->up && !b->drained && s->healthy) s->healthy--;
        s->inflight -= b->active;
        n++;
    }
    return n;
}

/* Advances the change in progress; 1 when it completed (the cool-down starts). */
static int advance(void)
{
    const struct lab_node *n = &L.plan.nodes[C.node];
    uint64_t el = mono_ms() - C.t0;
    if (C.kind == CH_UP) {
        struct lab_proc_rec pr = app_proc(C.node);
        if (!lab_proc_alive(pr.pid, pr.start) || el > 20000) {
            say("fail", "%s did not become healthy (%s after %.1f s); stopped, its log: logs/%s.log", n->name,
                lab_proc_alive(pr.pid, pr.start) ? "no /healthz" : "exited", (double)el / 1000.0, n->name);
            lab_stop_pid(pr.pid, pr.start, SIGKILL);
            lab_state_add("proc %s 0 0", n->name);
            C.kind = CH_NONE;
            return 1;
        }
        if (!lab_node_healthy(n)) return 0;
        char t[160];
        snprintf(t, sizeof(t), "/backends/default?add=%s", C.addr);
        int st = lab_http_call(S.lb->ns, S.lb->mgmt, LAB_PORT_LB_ADMIN, "POST", t);
        say(st == 200 ? "added" : "fail", "%s healthy after %.1f s; POST /backends/default?add=%s: %d", n->name,
            (double)el / 1000.0, C.addr, st);
        C.kind = CH_NONE;
        return 1;
    }
    if (C.kind == CH_DOWN) {
        if (read_backends() < 0) return 0;
        const struct be *b = be_get(C.addr, strlen(C.addr));
        if (b && b->present && b->active > 0 && el < 60000) return 0;
        char t[160];
        snprintf(t, sizeof(t), "/backends/default/%s/remove", C.addr);
        int st = lab_http_call(S.lb->ns, S.lb->mgmt, LAB_PORT_LB_ADMIN, "POST", t);
        struct lab_proc_rec pr = app_proc(C.node);
        lab_stop_pid(pr.pid, pr.start, SIGTERM); /* shop-app's graceful stop: nothing in flight is cut */
        lab_state_add("proc %s 0 0", n->name);   /* stopped on purpose */
        say("removed", "%s: in flight %u after %.1f s of drain%s; POST .../remove: %d; SIGTERM (graceful stop)", n->name,
            b ? b->active : 0, (double)el / 1000.0, el >= 60000 ? " (gave up waiting: 60 s)" : "", st);
        C.kind = CH_NONE;
        return 1;
    }
    return 0;
}

static void usage_scale(void)
{
    fprintf(stderr, "usage: " PROG " scale [-d DURATION] [--fixed]\n"
                    "  the app pool's auto-scaler (policy: the topology's scale: section); runs until SIGTERM/SIGINT\n"
                    "  or DURATION; --fixed: measure and decide, never act (a fixed pool's baseline)\n");
}

int lab_cmd_scale(int argc, char **argv)
{
    uint64_t dur = 0;
    static const struct option so[] = {{"duration", required_argument, NULL, 'd'}, {"fixed", no_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:fh", so, NULL)) != -1) {
        if (c == 'd') {
            if (cdn_parse_duration_ms(optarg, &dur) < 0) lab_die("scale: bad duration '%s'", optarg);
        } else if (c == 'f') S.fixed = 1;
        else {
            usage_scale();
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        usage_scale();
        return 2;
    }
    if (lab_load_state() < 0) lab_die("no lab in %s (cdn-lab up first)", L.statedir);
    lab_load_topology(L.topo_path);
    const struct lab_scale_conf *pol = &L.topo->scale;
    if (!pol->on) lab_die("scale: the topology %s has no scale: section (min, max, targets; docs/LAB.md)", L.topo_path);
    S.lb = &L.plan.nodes[lab_plan_find(&L.plan, LAB_LB, 0)];
    S.clk = sysconf(_SC_CLK_TCK);
    char p[PATH_MAX];
    lab_path(p, sizeof(p), "scale.lock"); /* one scaler per lab: two would fight over the pool */
    int lk = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lk < 0 || flock(lk, LOCK_EX | LOCK_NB) < 0) lab_die("scale: another cdn-lab scale runs on this lab (%s)", p);
    lab_path(p, sizeof(p), "scale.log");
    S.log = fopen(p, "a");
    lab_path(p, sizeof(p), "scale.tsv");
    S.tsv = fopen(p, "w");
    lab_path(p, sizeof(p), "scale-backends.tsv");
    S.btsv = fopen(p, "w");
    if (!S.log || !S.tsv || !S.btsv) lab_die("scale: cannot write in %s", L.statedir);
    fprintf(S.tsv, "t\tsize\thealthy\tinflight\tp50_ms\tp95_ms\tp99_ms\tcpu\treq\terr5xx\tdecision\treason\n");
    fprintf(S.btsv, "t\tbackend\tapp\tstate\tinflight\treq\tp95_ms\tcpu\n");
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    say("start", "policy min %u max %u, targets: in flight %.1f per app, p95 %llu ms, CPU %.2f; down below %.2f of them; "
                 "p95 judged from %u requests an interval; up after %.1f s, down after %.1f s, cool-down %.1f s, every %.1f s%s",
        pol->min, pol->max, pol->target_inflight, (unsigned long long)pol->target_p95_ms, pol->target_cpu, pol->down_below,
        pol->p95_min_requests,
        (double)pol->up_after_ms / 1000.0, (double)pol->down_after_ms / 1000.0, (double)pol->cooldown_ms / 1000.0,
        (double)pol->interval_ms / 1000.0, S.fixed ? "; --fixed: decisions are not acted on" : "");
    static struct lab_scale_sample w[WINDOW];
    size_t n = 0;
    uint64_t start = mono_ms(), next = start, last_change = 0;
    enum lab_scale_action last_act = LAB_SCALE_HOLD;
    char last_reason_kind[32] = "";
    while (!stop_flag && (!dur || mono_ms() - start < dur)) {
        while (waitpid(-1, NULL, WNOHANG) > 0) /* apps we stopped */
            ;
        if (C.kind != CH_NONE && advance()) last_change = mono_ms();
        uint64_t now = mono_ms();
        if (now < next) {
            usleep(100000);
            continue;
        }
        next += pol->interval_ms;
        if (next < now) next = now + pol->interval_ms;
        struct lab_scale_sample s;
        double p50, p99, reqs, errs;
        if (take_sample(&s, &p50, &p99, &reqs, &errs) < 0) {
            say("hold", "shop-lb's admin does not answer");
            continue;
        }
        remove_dead(&s);
        if (n == WINDOW) {
            memmove(w, w + 1, (WINDOW - 1) * sizeof(w[0]));
            n--;
        }
        w[n++] = s;
        char reason[512];
        enum lab_scale_action a = lab_scale_decide(pol, w, n, s.t_ms, last_change, reason, sizeof(reason));
        if (a != LAB_SCALE_HOLD && C.kind != CH_NONE) {
            snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason), " (waiting: a change is in progress)");
            a = LAB_SCALE_HOLD;
        }
        const char *dn = lab_scale_action_name(a);
        fprintf(S.tsv, "%.3f\t%u\t%u\t%.0f\t%.1f\t%.1f\t%.1f\t%.3f\t%.0f\t%.0f\t%s\t%s\n", (double)s.t_ms / 1000.0, s.size,
                s.healthy, s.inflight, p50, s.p95_ms, p99, s.cpu, reqs, errs, S.fixed && a != LAB_SCALE_HOLD ? "would" : dn,
                reason);
        fflush(S.tsv);
        for (size_t i = 0; i < S.nbe; i++) {
            const struct be *b = &S.be[i];
            if (!b->present) continue;
            fprintf(S.btsv, "%.3f\t%s\t%s\t%s\t%u\t%.0f\t%.1f\t%.3f\n", (double)s.t_ms / 1000.0, b->addr,
                    b->node >= 0 ? L.plan.nodes[b->node].name : "-", b->drained ? "drained" : b->up ? "up" : "down",
                    b->active, b->reqs, b->p95_ms, b->cpu);
        }
        fflush(S.btsv);
        /* the log: every up/down, and a hold that refuses a trigger (at max, at min, the last app) once per kind */
        char kind[32];
        snprintf(kind, sizeof(kind), "%.31s", reason);
        kind[strcspn(kind, ":0123456789")] = 0;
        if (a == LAB_SCALE_HOLD && (!strncmp(reason, "at m", 4) || strstr(reason, "it stays") || !strncmp(reason, "no spare", 8))) {
            if (strcmp(kind, last_reason_kind)) say("hold", "%s", reason);
        }
        snprintf(last_reason_kind, sizeof(last_reason_kind), "%s", a == LAB_SCALE_HOLD ? kind : "");
        if (a == LAB_SCALE_HOLD) continue;
        if (S.fixed) {
            if (a != last_act || now - last_change >= pol->cooldown_ms) {
                say("would", "%s (--fixed: not acted on): %s", dn, reason);
                last_change = now; /* so that the log says it once per cool-down, as a real change would */
                last_act = a;
            }
            continue;
        }
        if (a == LAB_SCALE_UP) start_up(reason, s.size);
        else start_down(reason, s.size);
        last_act = a;
    }
    if (C.kind != CH_NONE)
        say("stop", "a change is in progress (%s %s): left as it is", C.kind == CH_UP ? "starting" : "draining",
            L.plan.nodes[C.node].name);
    size_t size = 0;
    for (size_t i = 0; i < S.nbe; i++) size += S.be[i].present;
    say("stop", "after %.1f s, pool %zu", (double)(mono_ms() - start) / 1000.0, size);
    fclose(S.log);
    fclose(S.tsv);
    fclose(S.btsv);
    return 0;
}

/* --- the report's section (report.c calls it; nothing without STATE/scale.log) --- */

/* `cdn-lab report`: what the scaler did (every change of scale.log with its reason), the pool's
 * range and app-seconds over scale.tsv, and scale.png (pool size and origin p50/p99 over time)
 * when gnuplot is installed. */
void lab_report_scale(const struct lab_run *r, const char *odir, FILE *o, FILE *rf)
{
    char p[PATH_MAX], line[2048];
    snprintf(p, sizeof(p), "%s/scale.log", r->statedir);
    FILE *f = fopen(p, "r");
    if (!f) return;
    lab_out2(o, rf, "\n== Auto-scaler (cdn-lab scale; %s)\n", p);
    unsigned changes = 0;
    while (fgets(line, sizeof(line), f)) {
        char *what = strchr(line, '\t'), *msg = what ? strchr(what + 1, '\t') : NULL;
        if (!msg) continue;
        *msg++ = 0;
        what++;
        if (strcmp(what, "up") && strcmp(what, "added") && strcmp(what, "down") && strcmp(what, "removed") &&
            strcmp(what, "fail") && strcmp(what, "hold") && strcmp(what, "would"))
            continue;
        changes += !strcmp(what, "added") || !strcmp(what, "removed");
        lab_out2(o, rf, "  %.*s %-7s %s", (int)strcspn(line, "\t"), line, what, msg);
    }
    fclose(f);
    snprintf(p, sizeof(p), "%s/scale.tsv", r->statedir);
    f = fopen(p, "r");
    double t0 = -1, prev = -1, app_s = 0;
    unsigned lo = ~0u, hi = 0, n = 0, size = 0;
    while (f && fgets(line, sizeof(line), f)) {
        double t;
        if (sscanf(line, "%lf\t%u", &t, &size) != 2) continue;
        if (t0 < 0) t0 = t;
        if (prev >= 0) app_s += size * (t - prev);
        prev = t;
        lo = size < lo ? size : lo;
        hi = size > hi ? size : hi;
        n++;
    }
    if (f) fclose(f);
    if (!n) return;
    lab_out2(o, rf, "  %u changes; pool %u to %u apps over %.0f s (%u samples), %.0f app-seconds\n", changes, lo, hi,
             prev - t0, n, app_s);
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) return;
    char gp[PATH_MAX + 16], cmd[2 * PATH_MAX + 64];
    snprintf(gp, sizeof(gp), "%s/scale.gp", odir);
    FILE *g = fopen(gp, "w");
    if (!g) return;
    fprintf(g, "set terminal pngcairo size 900,600 font ',9'\nset output '%s/scale.png'\nset datafile separator '\\t'\n"
               "set multiplot layout 2,1 title 'cdn-lab scale: the app pool'\nset grid\nset key top right\n"
               "set ylabel 'apps'\nset yrange [0:%u]\nplot '%s' every ::1 using ($1-%.3f):2 with steps lw 2 title 'pool', "
               "'' every ::1 using ($1-%.3f):3 with steps dt 2 title 'healthy'\n"
               "set ylabel 'ms'\nset logscale y\nset yrange [1:20000]\nset xlabel 's since the scaler started'\n"
               "plot '%s' every ::1 using ($1-%.3f):($5 > 0 ? $5 : 1/0) with lines title 'origin p50', "
               "'' every ::1 using ($1-%.3f):($7 > 0 ? $7 : 1/0) with lines title 'origin p99'\nunset multiplot\n",
            odir, hi + 1, p, t0, t0, p, t0, t0);
    fclose(g);
    snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>>'%s/gnuplot.log'", gp, odir);
    if (system(cmd) == 0) lab_out2(o, rf, "  plot: %s/scale.png\n", odir);
}
