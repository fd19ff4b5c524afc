/* lab/cdnlab/top.c - `cdn-lab top`: the live view of a lab that is up, like varnishstat or
 * traffic_top. Every interval (default 1 s) it scrapes each edge's /metrics and /healthz (from
 * inside the edge's namespace, lab_http_get) and shop-lb's /metrics, turns two scrapes into rates
 * and ratios (lab/lib/top.c, pure and unit-tested) and prints a frame: per edge req/s, object and
 * byte hit ratio, the tier split, origin fetches/s, errors/s, p50/p99, health and drain state, the
 * purge bus's stream lag; the clients' total and shop-lb's requests/s.
 *
 * Options: --once (one frame, after one interval, then exit: for tests and pipes), --count N,
 * --interval SECONDS, --http [ADDR:]PORT (the status page: `/` an HTML page with the same figures
 * and live SVG charts, `/status.json` the figures with the last 120 frames of history; served from
 * the namespace cdn-lab runs in, by default on 127.0.0.1; everything the page needs is in it).
 *
 * Rules: one thread; it ends by itself when the lab goes down (its state file is gone). The status page is served between scrapes (poll on the listener until the
 * next tick); a client gets one answer and the connection is closed; a request it does not finish
 * sending within 1 s gets nothing. Frames go to stdout: on a terminal each one replaces the last;
 * elsewhere (and with --once) they follow each other, separated by a blank line; with --http only
 * on a terminal. */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"
#include "lab/lib/top.h"

#define HIST 120 /* frames of history in /status.json */

extern const char lab_top_page[]; /* top_page.c */

struct top {
    size_t n;                       /* edges */
    const char *names[64], *regions[64];
    int parent[64], node[64], lb;
    struct lab_top_snap prev[64], cur[64], lbprev, lbcur;
    struct lab_top_row rows[64];
    double t0, lb_req_s, lb_5xx_s;
    /* history, a ring of HIST frames */
    size_t hn, hhead;
    double ht[HIST], hreq[64][HIST], hhit[64][HIST], hp99[64][HIST], hlb[HIST];
    struct lab_buf json;            /* the last frame with its history, for /status.json */
    int lfd;                        /* the status page's listener, or -1 */
};

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void scrape_one(const struct lab_node *nd, int port, double t, struct lab_top_snap *s)
{
    char *body = NULL;
    size_t len = 0;
    lab_top_snap_init(s, t);
    int st = lab_http_get(nd->ns, nd->mgmt, port, "/metrics", &body, &len); /* admins: the management network */
    if (st == 200 && body) {
        s->up = 1;
        lab_top_parse(body, len, s);
    }
    free(body);
}

static void scrape(struct top *T, int health[64])
{
    double t = mono();
    for (size_t i = 0; i < T->n; i++) {
        const struct lab_node *nd = &L.plan.nodes[T->node[i]];
        scrape_one(nd, LAB_PORT_EDGE_ADMIN, t, &T->cur[i]);
        health[i] = T->cur[i].up && lab_node_healthy(nd);
    }
    if (T->lb >= 0) scrape_one(&L.plan.nodes[T->lb], LAB_PORT_LB_ADMIN, t, &T->lbcur);
}

static double lb_rate(double a, double b, double dt)
{
    if (isnan(a) || isnan(b) || !(dt > 0)) return NAN;
    return (b >= a ? b - a : b) / dt;
}

static void hist_arr(struct lab_buf *b, const double *v, size_t start, size_t n, int prec)
{
    lab_buf_printf(b, "[");
    for (size_t k = 0; k < n; k++) {
        if (k) lab_buf_printf(b, ",");
        lab_top_json_num(b, v[(start + k) % HIST], prec);
    }
    lab_buf_printf(b, "]");
}

/* The rows from prev -> cur, the history, the JSON; prev becomes cur. */
static void step(struct top *T, const int health[64], struct lab_top_frame *f)
{
    for (size_t i = 0; i < T->n; i++) {
        lab_top_rate(&T->prev[i], &T->cur[i], health[i], &T->rows[i]);
        T->prev[i] = T->cur[i];
    }
    T->lb_req_s = lb_rate(T->lbprev.lb_req, T->lbcur.lb_req, T->lbcur.t - T->lbprev.t);
    T->lb_5xx_s = lb_rate(T->lbprev.lb_5xx, T->lbcur.lb_5xx, T->lbcur.t - T->lbprev.t);
    T->lbprev = T->lbcur;
    *f = (struct lab_top_frame){.lab = L.topo->name, .t = mono() - T->t0, .n = T->n, .names = T->names,
                                .regions = T->regions, .parent = T->parent, .rows = T->rows,
                                .lb_req_s = T->lb_req_s, .lb_5xx_s = T->lb_5xx_s};
    size_t slot = (T->hhead + T->hn) % HIST;
    if (T->hn == HIST) T->hhead = (T->hhead + 1) % HIST;
    else T->hn++;
    T->ht[slot] = f->t;
    T->hlb[slot] = T->lb_req_s;
    for (size_t i = 0; i < T->n; i++) {
        T->hreq[i][slot] = T->rows[i].req_s;
        T->hhit[i][slot] = T->rows[i].hit;
        T->hp99[i][slot] = T->rows[i].p99_ms;
    }
    if (T->lfd < 0) return;
    struct lab_buf *b = &T->json;
    lab_buf_free(b);
    memset(b, 0, sizeof(*b));
    lab_top_json(f, b);
    if (b->oom || !b->len) return;
    b->s[--b->len] = 0; /* reopen the object for the history */
    lab_buf_printf(b, ",\"interval_frames\":%zu,\"history\":{\"t\":", T->hn);
    hist_arr(b, T->ht, T->hhead, T->hn, 1);
    lab_buf_printf(b, ",\"origin_req_s\":");
    hist_arr(b, T->hlb, T->hhead, T->hn, 2);
    lab_buf_printf(b, ",\"edges\":{");
    for (size_t i = 0; i < T->n; i++) {
        lab_buf_printf(b, "%s\"%s\":{\"req_s\":", i ? "," : "", T->names[i]);
        hist_arr(b, T->hreq[i], T->hhead, T->hn, 2);
        lab_buf_printf(b, ",\"hit\":");
        hist_arr(b, T->hhit[i], T->hhead, T->hn, 4);
        lab_buf_printf(b, ",\"p99_ms\":");
        hist_arr(b, T->hp99[i], T->hhead, T->hn, 2);
        lab_buf_printf(b, "}");
    }
    lab_buf_printf(b, "}}}");
}

/* --- the status page --- */
static int listen_on(const char *spec)
{
    char host[64] = "127.0.0.1";
    const char *c = strrchr(spec, ':');
    int port;
    if (c) {
        snprintf(host, sizeof(host), "%.*s", (int)(c - spec) < 63 ? (int)(c - spec) : 63, spec);
        port = atoi(c + 1);
    } else {
        port = atoi(spec);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        lab_die("top --http [ADDR:]PORT: bad address '%s' (an IPv4 address and a port)", spec);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0) lab_die("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
        lab_die("top --http %s:%d: %s", host, port, strerror(errno));
    printf("status page: http://%s:%d/ (JSON: http://%s:%d/status.json)\n", host, port, host, port);
    fflush(stdout);
    return fd;
}

static void answer(int fd, int status, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\n\r\n",
                     status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Method Not Allowed", type, len);
    if (write(fd, head, (size_t)n) != n) return;
    while (len > 0) {
        ssize_t w = write(fd, body, len);
        if (w <= 0) return;
        body += w;
        len -= (size_t)w;
    }
}

static void serve_one(struct top *T, int fd)
{
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char req[4096];
    size_t len = 0;
    while (len < sizeof(req) - 1) {
        ssize_t r = read(fd, req + len, sizeof(req) - 1 - len);
        if (r <= 0) return;
        len += (size_t)r;
        req[len] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    char method[8] = "", target[256] = "";
    if (sscanf(req, "%7s %255s", method, target) != 2) return;
    char *q = strchr(target, '?');
    if (q) *q = 0;
    int head = !strcmp(method, "HEAD");
    if (strcmp(method, "GET") && !head) {
        answer(fd, 405, "text/plain", "GET only\n", 9);
    } else if (!strcmp(target, "/") || !strcmp(target, "/index.html")) {
        answer(fd, 200, "text/html; charset=utf-8", lab_top_page, head ? 0 : strlen(lab_top_page));
    } else if (!strcmp(target, "/status.json")) {
        const char *j = T->json.s && T->json.len ? T->json.s : "{\"edges\":[],\"history\":null}";
        answer(fd, 200, "application/json", j, head ? 0 : strlen(j));
    } else {
        answer(fd, 404, "text/plain", "not found: / and /status.json\n", 30);
    }
}

/* Until `until` (mono seconds): answer the status page's clients, or just sleep. */
static void wait_until(struct top *T, double until)
{
    for (;;) {
        double left = until - mono();
        if (left <= 0 || stop_flag) return;
        if (T->lfd < 0) {
            struct timespec ts = {.tv_sec = (time_t)left, .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd p = {.fd = T->lfd, .events = POLLIN};
        if (poll(&p, 1, (int)(left * 1000) + 1) > 0) {
            int c = accept4(T->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0) {
                serve_one(T, c);
                close(c);
            }
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " top [--once | --count N] [--interval SECONDS] [--http [ADDR:]PORT]\n"
               "  per edge: req/s, hit%% (objects), byte%% (bytes), tiers (share answered by ram, rocksdb,\n"
               "  a parent, the origin), origin fetches/s, errors/s, p50/p99 ms, state (ok, draining,\n"
               "  FAILING, DOWN), purge stream lag; * marks a parent (shield) edge\n"
               "  --once           one frame (after one interval) and exit\n"
               "  --count N        N frames and exit\n"
               "  --interval S     seconds between frames (default 1, 0.2 to 60)\n"
               "  --http [A:]PORT  serve the status page (/ and /status.json) on A (default 127.0.0.1)\n");
}

int lab_cmd_top(int argc, char **argv)
{
    long count = -1;
    double interval = 1.0;
    const char *http = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--once")) count = 1;
        else if (!strcmp(a, "--count") && i + 1 < argc) count = atol(argv[++i]);
        else if (!strcmp(a, "--interval") && i + 1 < argc) interval = atof(argv[++i]);
        else if (!strcmp(a, "--http") && i + 1 < argc) http = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!(interval >= 0.2 && interval <= 60) || count == 0 || count < -1) {
        usage(stderr);
        return 2;
    }
    if (lab_load_state() < 0) lab_die("no lab in %s (cdn-lab up first)", L.statedir);
    lab_load_topology(L.topo_path);
    static struct top T;
    T.lfd = -1;
    T.lb = lab_plan_find(&L.plan, LAB_LB, 0);
    for (size_t i = 0; i < L.plan.nnodes && T.n < 64; i++) {
        const struct lab_node *nd = &L.plan.nodes[i];
        if (nd->kind != LAB_EDGE) continue;
        const struct lab_edge *e = lab_topo_edge(L.topo, (size_t)nd->index);
        T.node[T.n] = (int)i;
        T.names[T.n] = e->name;
        T.regions[T.n] = lab_topo_reg(L.topo, (size_t)nd->region)->name;
        T.parent[T.n] = e->parent;
        T.n++;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (http) T.lfd = listen_on(http);
    int tty = isatty(1), health[64];
    int show = !http || tty;
    T.t0 = mono();
    scrape(&T, health);
    for (size_t i = 0; i < T.n; i++) T.prev[i] = T.cur[i];
    T.lbprev = T.lbcur;
    double next = T.t0 + interval;
    for (long frames = 0; !stop_flag && (count < 0 || frames < count); frames++) {
        wait_until(&T, next);
        if (stop_flag) break;
        char st[PATH_MAX];
        lab_path(st, sizeof(st), "state");
        if (access(st, F_OK) != 0) { /* the lab went down: nothing more to show */
            fprintf(stderr, PROG ": top: the lab in %s is down\n", L.statedir);
            break;
        }
        next += interval;
        if (next < mono()) next = mono() + interval; /* scrapes slower than the interval: no burst */
        scrape(&T, health);
        struct lab_top_frame f;
        step(&T, health, &f);
        if (!show) continue;
        struct lab_buf b = {0};
        lab_top_text(&f, &b);
        if (b.s) {
            if (tty && count != 1) fputs("\033[H\033[2J", stdout);
            else if (frames) fputs("\n", stdout);
            fputs(b.s, stdout);
            lab_db_status(stdout); /* a database in the lab: each replica's replay lag (psql) */
            fflush(stdout);
        }
        lab_buf_free(&b);
    }
    if (T.lfd >= 0) close(T.lfd);
    lab_buf_free(&T.json);
    return 0;
}
