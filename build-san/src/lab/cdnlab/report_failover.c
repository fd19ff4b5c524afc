/* lab/cdnlab/report_failover.c - the report's failover section: for every fault in faults.tsv that falls
 * inside the last load run, what the failed edge's region saw (lab/lib/failover.c does the numbers):
 * the time to the first success at the next edge, the time to return after the undo, failed
 * requests in between, the hit ratio before and at the edge that took over (cold cache), and how
 * long requests still went to the dead edge (DNS routing: cached answers). Also writes
 * DIR/failover.tsv (one line per fault, with the routing mode of the run, for side-by-side
 * tables) and DIR/failover_REGION.tsv (answers per 0.5 s per edge, for the plot). */
#include "config.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/failover.h"
#include "lab/cdnlab/labrun.h"

/* failover_REGION.png/.svg: answers per 0.5 s by edge, failures, and the fault/undo times. */
static void plot(struct lab_run *r, const char *odir, const char *region, double tf, double tu, const char *what)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) return;
    char gp[PATH_MAX], data[PATH_MAX], cmd[PATH_MAX + 64];
    snprintf(gp, sizeof(gp), "%s/failover_%s.gp", odir, region);
    snprintf(data, sizeof(data), "%s/failover_%s.tsv", odir, region);
    FILE *f = fopen(gp, "w");
    if (!f) return;
    fprintf(f, "set datafile separator '\\t'\nset xlabel 'seconds'\nset ylabel 'answers per 0.5 s'\nset key outside\n");
    fprintf(f, "set arrow 1 from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb 'red'\n", tf, tf);
    fprintf(f, "set label 1 '%s' at %.3f, graph 0.95 textcolor rgb 'red'\n", what, tf);
    if (tu >= 0) {
        fprintf(f, "set arrow 2 from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb 'dark-green'\n", tu, tu);
        fprintf(f, "set label 2 'recover' at %.3f, graph 0.9 textcolor rgb 'dark-green'\n", tu);
    }
    for (int fmt = 0; fmt < 2; fmt++) {
        fprintf(f, "set terminal %s\nset output '%s/failover_%s.%s'\n", fmt ? "svg size 900,450" : "pngcairo size 900,450",
                odir, region, fmt ? "svg" : "png");
        fprintf(f, "set title 'clients in %s: which edge answered (fault: %s)'\nplot ", region, what);
        for (size_t e = 0; e < r->topo->edges.n; e++) {
            const char *en = lab_topo_edge(r->topo, e)->name;
            fprintf(f, "'%s' using 1:(strcol(2) eq '%s' ? 1 : 0) smooth frequency with steps title '%s', ", data, en, en);
        }
        fprintf(f, "'%s' using 1:(strcol(2) eq 'failed' ? 1 : 0) smooth frequency with steps lw 2 title 'failed'\n", data);
    }
    fclose(f);
    snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>>'%s/gnuplot.log'", gp, odir);
    if (system(cmd) != 0) fprintf(stderr, "cdn-lab: gnuplot failed for %s (see %s/gnuplot.log)\n", gp, odir);
}

struct fault_ev {
    double t;
    char what[24], node[32];
};

static int undo_kind(const char *w)
{
    return !strcmp(w, "recover") || !strcmp(w, "restart") || !strcmp(w, "heal");
}

static size_t read_faults(const char *statedir, struct fault_ev *ev, size_t max)
{
    char p[PATH_MAX], line[256];
    snprintf(p, sizeof(p), "%s/faults.tsv", statedir);
    FILE *f = fopen(p, "r");
    size_t n = 0;
    while (f && n < max && fgets(line, sizeof(line), f))
        if (sscanf(line, "%lf\t%23s\t%31s", &ev[n].t, ev[n].what, ev[n].node) == 3) n++;
    if (f) fclose(f);
    return n;
}

static struct lab_logrec *read_log(const char *statedir, const char *region, size_t *n, double *t0, double *tmax)
{
    char p[PATH_MAX], line[1024];
    *n = 0;
    *tmax = 0;
    snprintf(p, sizeof(p), "%s/load-%s.log.t0", statedir, region);
    FILE *f = fopen(p, "r");
    if (!f) return NULL;
    int ok = fscanf(f, "%lf", t0) == 1;
    fclose(f);
    if (!ok) return NULL;
    snprintf(p, sizeof(p), "%s/load-%s.log", statedir, region);
    if (!(f = fopen(p, "r"))) return NULL;
    size_t cap = 0;
    struct lab_logrec *v = NULL;
    while (fgets(line, sizeof(line), f)) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 4096;
            struct lab_logrec *q = realloc(v, nc * sizeof(*v));
            if (!q) break;
            v = q;
            cap = nc;
        }
        if (lab_log_parse(line, strlen(line), &v[*n]) == 0) {
            if (v[*n].t > *tmax) *tmax = v[*n].t;
            (*n)++;
        }
    }
    fclose(f);
    return v;
}

static void pct(char *b, size_t n, double v)
{
    if (isnan(v)) snprintf(b, n, "-");
    else snprintf(b, n, "%.1f", 100 * v);
}

static void secs(char *b, size_t n, double v)
{
    if (v < 0) snprintf(b, n, "-");
    else snprintf(b, n, "%.2f", v);
}

int lab_report_failover(struct lab_run *r, const char *odir, FILE *o, FILE *rf)
{
    struct fault_ev ev[256];
    size_t ne = read_faults(r->statedir, ev, 256);
    if (!ne) return 0;
    char routing[32] = "topology", p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/load.routing", r->statedir);
    FILE *f = fopen(p, "r");
    if (f) {
        if (fscanf(f, "%31s", routing) != 1) snprintf(routing, sizeof(routing), "topology");
        fclose(f);
    }
    snprintf(p, sizeof(p), "%s/failover.tsv", odir);
    FILE *tsv = fopen(p, "w");
    int shown = 0;
    for (size_t i = 0; i < ne; i++) {
        if (undo_kind(ev[i].what)) continue;
        int k = lab_plan_find_name(r->plan, ev[i].node);
        if (k < 0 || r->plan->nodes[k].kind != LAB_EDGE) continue;
        const struct lab_node *nd = &r->plan->nodes[k];
        const char *region = lab_topo_reg(r->topo, (size_t)nd->region)->name;
        size_t n;
        double t0, tmax;
        struct lab_logrec *v = read_log(r->statedir, region, &n, &t0, &tmax);
        double tf = ev[i].t - t0, tu = -1;
        if (!v || tf < 0 || tf > tmax) { /* not during the last load run */
            free(v);
            continue;
        }
        for (size_t j = i + 1; j < ne; j++)
            if (!strcmp(ev[j].node, ev[i].node) && undo_kind(ev[j].what)) {
                tu = ev[j].t - t0;
                break;
            }
        struct lab_fo_result res;
        lab_failover_analyse(v, n, nd->name + 2, nd->addr, tf, tu, &res);
        if (!shown++) {
            lab_out2(o, rf, "\nfailover (routing: %s), for the clients of the failed edge's region; seconds on the load's clock\n",
                 routing);
            lab_out2(o, rf, "%-13s %-6s %-6s %7s %-6s %8s %7s %6s %7s %8s %9s %9s\n", "fault", "edge", "region", "at", "next",
                 "failover", "return", "failed", "hit%pre", "hit%next", "hit%next", "dead-edge");
            lab_out2(o, rf, "%-13s %-6s %-6s %7s %-6s %8s %7s %6s %7s %8s %9s %9s\n", "", "", "", "", "", "s", "s", "", "",
                 "first 5s", "to return", "last use s");
        }
        char a[16], b[16], c[16], d[16], e[16], g[16];
        secs(a, sizeof(a), res.failover_s);
        secs(b, sizeof(b), res.return_s);
        pct(c, sizeof(c), res.hit_before);
        pct(d, sizeof(d), res.hit_next_5s);
        pct(e, sizeof(e), res.hit_next_all);
        secs(g, sizeof(g), res.last_dead_s);
        lab_out2(o, rf, "%-13s %-6s %-6s %7.2f %-6s %8s %7s %6u %7s %8s %9s %9s\n", ev[i].what, nd->name + 2, region, tf,
             *res.next_edge ? res.next_edge : "-", a, b, res.failed, c, d, e, g);
        if (tsv)
            fprintf(tsv, "%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%u\t%s\t%s\t%s\t%s\n", routing, ev[i].what, nd->name + 2, region,
                    tf, *res.next_edge ? res.next_edge : "-", a, b, res.failed, c, d, e, g);
        /* answers per 0.5 s per edge (and failures) around the fault, for the plot */
        snprintf(p, sizeof(p), "%s/failover_%s.tsv", odir, region);
        FILE *pf = fopen(p, "w");
        for (size_t j = 0; pf && j < n; j++)
            fprintf(pf, "%.1f\t%s\n", floor(v[j].t * 2) / 2,
                    v[j].status > 0 && v[j].status < 500 ? v[j].edge : "failed");
        if (pf) fclose(pf);
        snprintf(p, sizeof(p), "%s/failover_%s.events", odir, region);
        if ((pf = fopen(p, "w"))) {
            fprintf(pf, "%.3f\t%s\n", tf, ev[i].what);
            if (tu >= 0) fprintf(pf, "%.3f\trecover\n", tu);
            fclose(pf);
        }
        plot(r, odir, region, tf, tu, ev[i].what);
        free(v);
    }
    if (tsv) fclose(tsv);
    if (shown)
        lab_out2(o, rf, "(failover: fault -> first success at another edge; return: undo -> first success back; failed: transport "
                    "errors and 5xx in between; dead-edge last use: DNS clients' cached answers)\n");
    return shown;
}
