/* lab/cdnlab/rtt.c - `cdn-lab rtt`: the round trip each client region sees to every edge, measured,
 * beside the configured one (2 x the one-way delay between the regions).
 *
 * A sample is one TCP handshake: a non-blocking connect() from the region's first client address
 * (a socket made inside the client namespace) to the edge's HTTP port, timed until the socket is
 * writable, i.e. until the SYN-ACK is back: one round trip plus the stacks' own cost. Each round
 * starts every (region, edge) connect at once, so the whole table takes about `-n` times the
 * longest round trip. No HTTP request is sent, so the edges' request counters do not move; the
 * socket is reset on close (linger 0) to leave no TIME_WAIT behind.
 * Writes STATE/rtt.tsv: from_region edge edge_region configured_ms min_ms median_ms samples. */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labrun.h"
#include "lab/lib/workload.h"

#define MAX_SAMPLES 50
#define MAX_PAIRS (LAB_MAX_REGIONS * 64)

struct pair {
    int from, edge;                /* region index, edge index */
    double ms[MAX_SAMPLES];
    int n;
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* One round: every pair's handshake at once; samples of those that completed within timeout_ms. */
static void round_once(const struct lab_run *r, struct pair *pp, size_t np, int timeout_ms)
{
    static struct pollfd pf[MAX_PAIRS];
    static double t0[MAX_PAIRS];
    const struct lab_plan *p = r->plan;
    for (size_t i = 0; i < np; i++) {
        pf[i] = (struct pollfd){.fd = -1, .events = POLLOUT};
        const struct lab_node *c = &p->nodes[lab_plan_find(p, LAB_CLIENT, pp[i].from)];
        const struct lab_node *e = &p->nodes[lab_plan_find(p, LAB_EDGE, pp[i].edge)];
        int fd = r->ns_socket(c->ns);
        if (fd < 0) continue;
        struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET, .sin_port = htons(LAB_PORT_HTTP)};
        inet_pton(AF_INET, c->addr, &src.sin_addr);
        inet_pton(AF_INET, e->addr, &dst.sin_addr);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
            (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)) {
            close(fd);
            continue;
        }
        t0[i] = mono_ms();
        pf[i].fd = fd;
    }
    double deadline = mono_ms() + timeout_ms;
    for (;;) {
        size_t open_n = 0;
        for (size_t i = 0; i < np; i++) open_n += pf[i].fd >= 0;
        int left = (int)(deadline - mono_ms());
        if (!open_n || left <= 0) break;
        if (poll(pf, np, left) <= 0) continue;
        double now = mono_ms();
        for (size_t i = 0; i < np; i++) {
            if (pf[i].fd < 0 || !pf[i].revents) continue;
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(pf[i].fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (!err && (pf[i].revents & POLLOUT) && pp[i].n < MAX_SAMPLES) pp[i].ms[pp[i].n++] = now - t0[i];
            close(pf[i].fd);
            pf[i].fd = -1; /* poll ignores negative fds */
        }
    }
    for (size_t i = 0; i < np; i++)
        if (pf[i].fd >= 0) close(pf[i].fd);
}

int lab_cmd_rtt(struct lab_run *r, int argc, char **argv)
{
    int samples = 5, quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) samples = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-q")) quiet = 1;
        else {
            fprintf(stderr, "cdn-lab: rtt [-n SAMPLES] [-q]\n");
            return 2;
        }
    }
    if (samples < 1 || samples > MAX_SAMPLES) {
        fprintf(stderr, "cdn-lab: rtt -n: 1 to %d\n", MAX_SAMPLES);
        return 2;
    }
    const struct lab_topo *t = r->topo;
    static struct pair pp[MAX_PAIRS];
    size_t np = 0;
    for (size_t f = 0; f < t->regions.n; f++)
        for (size_t e = 0; e < t->edges.n && np < MAX_PAIRS; e++) pp[np++] = (struct pair){.from = (int)f, .edge = (int)e};
    for (int k = 0; k < samples; k++) {
        round_once(r, pp, np, 2000);
        usleep(20000);
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/rtt.tsv", r->statedir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cdn-lab: %s: %s\n", path, strerror(errno));
        return 1;
    }
    int missing = 0;
    for (size_t i = 0; i < np; i++) {
        struct pair *q = &pp[i];
        int er = t->edge_region[q->edge];
        if (q->n) qsort(q->ms, (size_t)q->n, sizeof(double), cmp_d);
        uint64_t conf = r->plan->mode == LAB_NETNS ? 2 * t->delay_ms[q->from][er] : 0;
        if (!q->n) missing++;
        fprintf(f, "%s\t%s\t%s\t%llu\t%.3f\t%.3f\t%d\n", lab_topo_reg(t, (size_t)q->from)->name,
                lab_topo_edge(t, (size_t)q->edge)->name, lab_topo_reg(t, (size_t)er)->name, (unsigned long long)conf,
                q->n ? q->ms[0] : NAN, q->n ? lab_percentile(q->ms, (size_t)q->n, 50) : NAN, q->n);
    }
    fclose(f);
    if (!quiet) lab_report_rtt(r, stdout, NULL);
    if (missing) fprintf(stderr, "cdn-lab: rtt: %d region -> edge pairs did not connect\n", missing);
    return missing ? 1 : 0;
}

/* The region x region matrix from rtt.tsv: per pair, the median over every edge of the target
 * region of the per-edge medians, and the lowest sample, beside the configured round trip. */
void lab_report_rtt(const struct lab_run *r, FILE *o, FILE *rf)
{
    char path[PATH_MAX], line[512];
    snprintf(path, sizeof(path), "%s/rtt.tsv", r->statedir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    const struct lab_topo *t = r->topo;
    size_t nr = t->regions.n;
    static double med[LAB_MAX_REGIONS][LAB_MAX_REGIONS][64], lo[LAB_MAX_REGIONS][LAB_MAX_REGIONS];
    int n[LAB_MAX_REGIONS][LAB_MAX_REGIONS] = {{0}};
    for (size_t a = 0; a < nr; a++)
        for (size_t b = 0; b < nr; b++) lo[a][b] = INFINITY;
    while (fgets(line, sizeof(line), f)) {
        char from[32], edge[32], to[32];
        unsigned long long conf;
        double mn, md;
        int k;
        if (sscanf(line, "%31s %31s %31s %llu %lf %lf %d", from, edge, to, &conf, &mn, &md, &k) != 7 || k < 1) continue;
        int a = lab_topo_region(t, from), b = lab_topo_region(t, to);
        if (a < 0 || b < 0 || n[a][b] >= 64) continue;
        med[a][b][n[a][b]++] = md;
        if (mn < lo[a][b]) lo[a][b] = mn;
    }
    fclose(f);
    lab_out2(o, rf, "\nRTT per region pair, measured (TCP handshake from the client region to its edges; ms: median, lowest)\n"
                "and configured (2 x one-way delay%s):\n%-8s", r->plan->mode == LAB_NETNS ? "" : "; loopback mode has none",
         "from\\to");
    for (size_t b = 0; b < nr; b++) lab_out2(o, rf, " %22s", lab_topo_reg(t, b)->name);
    lab_out2(o, rf, "\n");
    for (size_t a = 0; a < nr; a++) {
        lab_out2(o, rf, "%-8s", lab_topo_reg(t, a)->name);
        for (size_t b = 0; b < nr; b++) {
            char cell[48];
            unsigned long long conf = r->plan->mode == LAB_NETNS ? 2 * (unsigned long long)t->delay_ms[a][b] : 0;
            if (!n[a][b]) {
                snprintf(cell, sizeof(cell), "- (%llu)", conf);
            } else {
                qsort(med[a][b], (size_t)n[a][b], sizeof(double), cmp_d);
                snprintf(cell, sizeof(cell), "%.1f, %.1f (%llu)", lab_percentile(med[a][b], (size_t)n[a][b], 50), lo[a][b],
                         conf);
            }
            lab_out2(o, rf, " %22s", cell);
        }
        lab_out2(o, rf, "\n");
    }
}
