/* lab/cdnlab/report.c - `cdn-lab report [-o DIR]`: reads the load logs and scrapes that
 * `cdn-lab load` (run_load.c) left in the state directory; prints hit ratios (object, byte;
 * overall, per edge, per tier, per region), origin offload, latency percentiles per region for hits
 * and misses, the lowest latency seen per region -> edge pair (about one round trip), errors by
 * kind, and whether the edges' counters, the logs and the origin's counter reconcile; draws plots
 * with gnuplot when it is installed, and writes report.txt and index.html.
 * Everything it writes goes into DIR (made if missing), by default STATE/report: never into the
 * current directory. */
#include "config.h"
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lab/cdnlab/labrun.h"
#include "lab/lib/workload.h"
#include "lab/lib/top.h" /* lab_hit_curve: the hit-ratio plot's points */

struct agg {
    char key[40];
    uint64_t req, hits, bytes, hit_bytes, err;
};

static struct agg *agg_get(struct agg *a, size_t *n, size_t max, const char *key)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(a[i].key, key)) return &a[i];
    if (*n >= max) return NULL;
    memset(&a[*n], 0, sizeof(a[*n]));
    snprintf(a[*n].key, sizeof(a[*n].key), "%s", key);
    return &a[(*n)++];
}

static void agg_add(struct agg *a, const struct lab_logrec *rec)
{
    if (!a) return;
    a->req++;
    a->bytes += rec->bytes;
    if (!strcmp(rec->cache, "hit")) {
        a->hits++;
        a->hit_bytes += rec->bytes;
    }
    if (rec->status == 0 || rec->status >= 500) a->err++;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

struct lat { double *v; size_t n, cap; };
static void lat_add(struct lat *l, double v)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        double *p = realloc(l->v, nc * sizeof(double));
        if (!p) return;
        l->v = p;
        l->cap = nc;
    }
    l->v[l->n++] = v;
}

/* printf to both of two streams (terminal and report file); either may be NULL */
void lab_out2(FILE *a, FILE *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (a) vfprintf(a, fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    if (b) vfprintf(b, fmt, ap);
    va_end(ap);
}

/* latency samples per region (hits, misses): file scope so that every return path frees them */
static struct lat lat_hit[LAB_MAX_REGIONS], lat_miss[LAB_MAX_REGIONS];

/* mkdir -p: DIR and its missing parents; 0 when DIR is (now) a directory. */
static int mkdir_p(const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST) return -1;
            *c = '/';
        }
    if (mkdir(p, 0755) < 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(p, &st) < 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* What one report run gathers from the load logs, and where it writes. */
static const char *const tier_names[4] = {"ram", "disk", "parent", "origin"};
struct report {
    struct lab_run *r;
    const char *odir;
    char tsv[PATH_MAX], cdfp[PATH_MAX], rp[PATH_MAX]; /* timeline.tsv, latency.tsv, report.txt */
    FILE *o, *rf;                                     /* the terminal, report.txt (may be NULL) */
    struct agg edges[64], regions[LAB_MAX_REGIONS], errs[16], all;
    size_t ne, nreg, nerr;
    /* where each answered request came from: the edge's RAM or disk, a parent's cache, the origin */
    uint64_t tier_n[4];
    struct lab_log_counts lc; /* whole run (warm-up too): the window the scrapes saw */
    double minrtt[LAB_MAX_REGIONS][64];
    uint64_t malformed, warm;
};

static int report_main(struct lab_run *r, const char *defdir, int argc, char **argv);
int lab_cmd_report(struct lab_run *r, int argc, char **argv)
{
    char *defdir = NULL;
    if (asprintf(&defdir, "%s/report", r->statedir) < 0) return 1;
    int rc = report_main(r, defdir, argc, argv);
    free(defdir);
    for (size_t i = 0; i < LAB_MAX_REGIONS; i++) {
        free(lat_hit[i].v);
        free(lat_miss[i].v);
        lat_hit[i] = lat_miss[i] = (struct lat){0};
    }
    return rc;
}

/* `down` moves the lab's logs next to the last report written outside the state directory:
 * "report DIR" in the state file (defdir is STATE/report). */
static void note_report_dir(const char *defdir, const char *odir)
{
    char abs[PATH_MAX], st[PATH_MAX];
    if (!strcmp(odir, defdir) || !realpath(odir, abs)) return;
    snprintf(st, sizeof(st), "%.*s/state", (int)(strlen(defdir) - strlen("/report")), defdir);
    FILE *f = fopen(st, "a");
    if (!f) return;
    fprintf(f, "report %s\n", abs);
    fclose(f);
}

/* Output: -o DIR, else STATE/report (never the current directory; `down` removes STATE, so a
 * report to keep goes to -o). 0, or the exit status. */
static int out_dir(const char *defdir, int argc, char **argv, const char **odir)
{
    *odir = defdir;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-o")) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                fprintf(stderr, "cdn-lab: report -o DIR\n");
                return 2;
            }
            *odir = argv[++i];
        }
    if (mkdir_p(*odir) < 0) {
        fprintf(stderr, "cdn-lab: report: cannot make %s: %s\n", *odir, strerror(errno));
        return 1;
    }
    note_report_dir(defdir, *odir);
    return 0;
}

/* One log record into the counts; tl: the timeline (t edge hit(0/1) for the warm-up curve). */
static void count_rec(struct report *R, const struct lab_logrec *rec, FILE *tl)
{
    if (tl) fprintf(tl, "%.3f\t%s\t%d\n", rec->t, rec->edge, !strcmp(rec->cache, "hit"));
    int tier = lab_log_tier(rec);
    R->lc.logged++;
    R->lc.no_response += rec->status == 0;
    R->lc.hits += !strcmp(rec->cache, "hit");
    R->lc.parent_hits += tier == 2;
    if (rec->phase == 'w') {
        R->warm++;
        return;
    }
    agg_add(&R->all, rec);
    agg_add(agg_get(R->edges, &R->ne, 64, rec->edge), rec);
    agg_add(agg_get(R->regions, &R->nreg, LAB_MAX_REGIONS, rec->region), rec);
    if (tier >= 0) R->tier_n[tier]++;
    if (rec->status == 0 || rec->status >= 400) {
        char k[40];
        snprintf(k, sizeof(k), "%s", rec->status ? (rec->status >= 500 ? "5xx" : "4xx") : "transport");
        if (rec->status) snprintf(k, sizeof(k), "status %d", rec->status);
        agg_add(agg_get(R->errs, &R->nerr, 16, k), rec);
    }
    int ri = lab_topo_region(R->r->topo, rec->region);
    if (ri < 0) return;
    if (rec->status == 200 || rec->status == 304) {
        lat_add(!strcmp(rec->cache, "hit") ? &lat_hit[ri] : &lat_miss[ri], rec->latency_ms);
        if (!strcmp(rec->cache, "hit"))
            for (size_t e = 0; e < R->r->topo->edges.n && e < 64; e++)
                if (!strcmp(lab_topo_edge(R->r->topo, e)->name, rec->edge) && rec->latency_ms < R->minrtt[ri][e])
                    R->minrtt[ri][e] = rec->latency_ms;
    }
}

/* Every STATE/load-*.log into the counts, and timeline.tsv; 1 without logs. */
static int read_logs(struct report *R)
{
    char pat[PATH_MAX];
    snprintf(pat, sizeof(pat), "%s/load-*.log", R->r->statedir);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0) {
        fprintf(stderr, "cdn-lab: no load logs in %s (run `cdn-lab load` first)\n", R->r->statedir);
        return 1;
    }
    for (size_t i = 0; i < LAB_MAX_REGIONS; i++)
        for (size_t j = 0; j < 64; j++) R->minrtt[i][j] = INFINITY;
    snprintf(R->tsv, sizeof(R->tsv), "%s/timeline.tsv", R->odir);
    FILE *tl = fopen(R->tsv, "w");
    snprintf(R->cdfp, sizeof(R->cdfp), "%s/latency.tsv", R->odir);
    for (size_t gi = 0; gi < g.gl_pathc; gi++) {
        FILE *f = fopen(g.gl_pathv[gi], "r");
        if (!f) continue;
        char line[1024];
        while (fgets(line, sizeof(line), f)) {
            struct lab_logrec rec;
            if (lab_log_parse(line, strlen(line), &rec) < 0) {
                R->malformed++;
                continue;
            }
            count_rec(R, &rec, tl);
        }
        fclose(f);
    }
    globfree(&g);
    if (tl) fclose(tl);
    return 0;
}

/* The totals, the edges' and the tiers' tables; 1 when nothing was measured. */
static int print_totals(struct report *R)
{
    FILE *o = R->o, *rf = R->rf;
    const struct lab_topo *t = R->r->topo;
    const struct agg *all = &R->all;
    lab_out2(o, rf, "== CDN lab report: topology '%s' (%s mode)\n", t->name, R->r->plan->mode == LAB_NETNS ? "namespaces" : "loopback");
    lab_out2(o, rf, "requests measured %llu (warm-up %llu left out, %llu malformed log lines)\n", (unsigned long long)all->req,
        (unsigned long long)R->warm, (unsigned long long)R->malformed);
    if (!all->req) {
        lab_out2(o, rf, "no measured requests\n");
        return 1;
    }
    lab_out2(o, rf, "hit ratio: object %.1f%%, byte %.1f%%   errors %llu\n", 100.0 * all->hits / all->req,
        all->bytes ? 100.0 * all->hit_bytes / all->bytes : 0, (unsigned long long)all->err);
    if (t->nparents)
        lab_out2(o, rf, "with the parent tier: %.1f%% of requests answered from a cache (edge or parent)\n",
            100.0 * (double)(R->tier_n[0] + R->tier_n[1] + R->tier_n[2]) / (double)all->req);
    lab_out2(o, rf, "\n%-10s %8s %8s %8s %10s\n", "edge", "requests", "hit%", "bytehit%", "MB");
    for (size_t i = 0; i < R->ne; i++) {
        const struct agg *e = &R->edges[i];
        lab_out2(o, rf, "%-10s %8llu %8.1f %8.1f %10.1f\n", e->key, (unsigned long long)e->req,
            100.0 * e->hits / e->req, e->bytes ? 100.0 * e->hit_bytes / e->bytes : 0, e->bytes / 1e6);
    }
    lab_out2(o, rf, "\n%-10s %8s %8s   (the tier that answered; parent: a child's miss that a parent's cache served)\n",
        "tier", "requests", "of all");
    for (size_t i = 0; i < 4; i++)
        if (i != 2 || t->nparents || R->tier_n[2])
            lab_out2(o, rf, "%-10s %8llu %7.1f%%\n", tier_names[i], (unsigned long long)R->tier_n[i],
                100.0 * (double)R->tier_n[i] / (double)all->req);
    return 0;
}

/* Latency percentiles per region (hits, misses), and latency.tsv: the CDF of all answered
 * requests per region. */
static void print_latency(struct report *R)
{
    FILE *o = R->o, *rf = R->rf;
    lab_out2(o, rf, "\n%-8s %8s %6s | %-22s | %-22s\n", "region", "requests", "hit%", "hit ms p50/p95/p99", "miss ms p50/p95/p99");
    FILE *cdf = fopen(R->cdfp, "w");
    for (size_t i = 0; i < R->nreg; i++) {
        const struct agg *rg = &R->regions[i];
        int ri = lab_topo_region(R->r->topo, rg->key);
        if (ri < 0) continue;
        if (lat_hit[ri].n) qsort(lat_hit[ri].v, lat_hit[ri].n, sizeof(double), cmp_d); /* v is NULL when empty */
        if (lat_miss[ri].n) qsort(lat_miss[ri].v, lat_miss[ri].n, sizeof(double), cmp_d);
        struct lat *h = &lat_hit[ri], *m = &lat_miss[ri];
        lab_out2(o, rf, "%-8s %8llu %6.1f | %6.1f %7.1f %7.1f | %6.1f %7.1f %7.1f\n", rg->key,
            (unsigned long long)rg->req, 100.0 * rg->hits / rg->req, lab_percentile(h->v, h->n, 50),
            lab_percentile(h->v, h->n, 95), lab_percentile(h->v, h->n, 99), lab_percentile(m->v, m->n, 50),
            lab_percentile(m->v, m->n, 95), lab_percentile(m->v, m->n, 99));
        if (cdf) { /* latency CDF, all answered requests of the region */
            struct lat all_l = {0};
            for (size_t k = 0; k < h->n; k++) lat_add(&all_l, h->v[k]);
            for (size_t k = 0; k < m->n; k++) lat_add(&all_l, m->v[k]);
            if (all_l.n) qsort(all_l.v, all_l.n, sizeof(double), cmp_d);
            fprintf(cdf, "# %s\n", rg->key);
            size_t step = all_l.n > 500 ? all_l.n / 500 : 1;
            for (size_t k = 0; k < all_l.n; k += step) fprintf(cdf, "%.3f\t%.4f\n", all_l.v[k], (double)(k + 1) / all_l.n);
            fprintf(cdf, "\n\n");
            free(all_l.v);
        }
    }
    if (cdf) fclose(cdf);
}

/* The lowest hit latency per region -> edge pair, and the errors by kind. */
static void print_minrtt_errors(struct report *R)
{
    FILE *o = R->o, *rf = R->rf;
    const struct lab_topo *t = R->r->topo;
    lab_out2(o, rf, "\nlowest hit latency, region -> edge (ms; about one round trip on a reused connection):\n%-8s", "");
    for (size_t e = 0; e < t->edges.n && e < 64; e++)
        if (!lab_topo_edge(t, e)->parent) lab_out2(o, rf, " %8s", lab_topo_edge(t, e)->name); /* clients never reach parents */
    lab_out2(o, rf, "\n");
    for (size_t ri = 0; ri < t->regions.n; ri++) {
        lab_out2(o, rf, "%-8s", lab_topo_reg(t, ri)->name);
        for (size_t e = 0; e < t->edges.n && e < 64; e++)
            if (lab_topo_edge(t, e)->parent) continue;
            else if (isinf(R->minrtt[ri][e])) lab_out2(o, rf, " %8s", "-");
            else lab_out2(o, rf, " %8.1f", R->minrtt[ri][e]);
        lab_out2(o, rf, "\n");
    }
    lab_report_rtt(R->r, o, rf);
    if (R->nerr) {
        lab_out2(o, rf, "\nerrors by kind:\n");
        for (size_t i = 0; i < R->nerr; i++) lab_out2(o, rf, "  %-12s %llu\n", R->errs[i].key, (unsigned long long)R->errs[i].req);
    }
}

/* tiers.tsv (the bars of the tiers plot); the number of bars. */
static int write_tiers(const struct report *R, const char *tiers_tsv)
{
    FILE *tf = fopen(tiers_tsv, "w");
    int ntiers = 0;
    for (size_t i = 0; tf && i < 4; i++)
        if (i != 2 || R->r->topo->nparents || R->tier_n[2]) {
            fprintf(tf, "%s\t%llu\n", tier_names[i], (unsigned long long)R->tier_n[i]);
            ntiers++;
        }
    if (tf) fclose(tf);
    return ntiers;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* hitratio.tsv from timeline.tsv: per edge (one gnuplot index each, in R->edges' order) a point
 * every second with the hit ratio of the last 5 s and the cumulative one (lab_hit_curve: a 1 s bin
 * at 30 req/s was noise, and the run's last second, its stragglers, made an empty last bin). */
static void write_hitratio(const struct report *R, const char *out)
{
    FILE *in = fopen(R->tsv, "r"), *o = fopen(out, "w");
    double *t[64] = {0};
    unsigned char *h[64] = {0};
    size_t n[64] = {0}, cap[64] = {0};
    char line[256], ed[64];
    double tt;
    int hit;
    while (in && o && fgets(line, sizeof(line), in))
        if (sscanf(line, "%lf\t%63[^\t]\t%d", &tt, ed, &hit) == 3)
            for (size_t e = 0; e < R->ne && e < 64; e++) {
                if (strcmp(R->edges[e].key, ed)) continue;
                if (n[e] == cap[e]) {
                    size_t nc = cap[e] ? cap[e] * 2 : 1024;
                    double *nt = realloc(t[e], nc * sizeof(double));
                    if (nt) t[e] = nt;
                    unsigned char *nh = realloc(h[e], nc);
                    if (nh) h[e] = nh;
                    if (!nt || !nh) break;
                    cap[e] = nc;
                }
                t[e][n[e]] = tt;
                h[e][n[e]++] = (unsigned char)(hit != 0);
                break;
            }
    for (size_t e = 0; o && e < R->ne && e < 64; e++) {
        /* in time order (the regions' logs follow each other in the timeline): a hit is t's
         * lowest bit after scaling to microseconds, so one sort keeps the pairs together */
        for (size_t i = 0; i < n[e]; i++) t[e][i] = floor(t[e][i] * 1e6) * 2 + h[e][i];
        qsort(t[e], n[e], sizeof(double), cmp_double);
        for (size_t i = 0; i < n[e]; i++) {
            h[e][i] = (unsigned char)fmod(t[e][i], 2.0);
            t[e][i] = (t[e][i] - h[e][i]) / 2e6;
        }
        struct lab_hit_point pt[4096];
        size_t k = lab_hit_curve(t[e], h[e], n[e], 1.0, 5.0, 5, pt, 4096);
        fprintf(o, "# %s: t  hit ratio (last 5 s)  cumulative  requests in the window\n", R->edges[e].key);
        for (size_t i = 0; i < k; i++) fprintf(o, "%.0f\t%.4f\t%.4f\t%zu\n", pt[i].t, pt[i].win, pt[i].cum, pt[i].n);
        if (!k) fprintf(o, "nan\tnan\tnan\t0\n"); /* keeps the edge's index */
        fprintf(o, "\n\n");
        free(t[e]);
        free(h[e]);
    }
    if (in) fclose(in);
    if (o) fclose(o);
}

/* plots.gp: hit ratio over time per edge, latency CDF per region, requests per tier; PNG and SVG.
 * -1 if it cannot be written. */
static int write_gnuplot(const struct report *R, const char *gp)
{
    const char *odir = R->odir;
    FILE *f = fopen(gp, "w");
    if (!f) return -1;
    char tiers_tsv[PATH_MAX];
    snprintf(tiers_tsv, sizeof(tiers_tsv), "%s/tiers.tsv", odir);
    int ntiers = write_tiers(R, tiers_tsv);
    char hr_tsv[PATH_MAX];
    snprintf(hr_tsv, sizeof(hr_tsv), "%s/hitratio.tsv", odir);
    write_hitratio(R, hr_tsv);
    fprintf(f, "set datafile separator '\\t'\n");
    for (int fmt = 0; fmt < 2; fmt++) {
        const char *term = fmt ? "svg size 900,500" : "pngcairo size 900,500", *ext = fmt ? "svg" : "png";
        fprintf(f, "set terminal %s\n", term);
        fprintf(f, "set output '%s/hitratio.%s'\nset title 'hit ratio per edge: last 5 s (solid), cumulative (dashed)'\n"
                   "set xlabel 'seconds'\nset ylabel 'hit ratio'\nset yrange [0:1]\nset key outside\n", odir, ext);
        fprintf(f, "plot ");
        for (size_t i = 0; i < R->ne; i++)
            fprintf(f, "%s'%s' index %zu using 1:2 with lines lw 2 lc %zu title '%s', '' index %zu using 1:3 with lines dt 2 lc %zu notitle",
                    i ? ", " : "", hr_tsv, i, i + 1, R->edges[i].key, i, i + 1);
        fprintf(f, "\nset output '%s/latency_cdf.%s'\nset title 'latency CDF per region'\nset xlabel 'ms'\n"
                   "set ylabel 'fraction'\nset logscale x\nplot ", odir, ext);
        for (size_t i = 0; i < R->nreg; i++)
            fprintf(f, "%s'%s' index %zu using 1:2 with lines title '%s'", i ? ", " : "", R->cdfp, i, R->regions[i].key);
        fprintf(f, "\nunset logscale x\nset output '%s/tiers.%s'\nset title 'requests per answering tier'\nset style fill solid\n"
                   "set yrange [0:*]\nset ylabel 'requests'\nset xlabel ''\nset boxwidth 0.6\nset xrange [-0.5:%d.5]\n"
                   "plot '%s' using 0:2:xtic(1) with boxes notitle\nset autoscale x\nunset boxwidth\n"
                   "set yrange [0:1]\n", odir, ext, ntiers - 1, tiers_tsv);
    }
    fclose(f);
    return 0;
}

/* The page loads of `cdn-lab browse -o DIR/browse` (lab/browse.py), when it ran into this report's
 * folder before the report: its table, as it wrote it. */
static void print_browse(const struct report *R)
{
    char p[PATH_MAX + 32], line[512];
    snprintf(p, sizeof(p), "%s/browse/browse.txt", R->odir);
    FILE *f = fopen(p, "r");
    if (!f) return;
    lab_out2(R->o, R->rf, "\npage loads in Chromium per region (cdn-lab browse; screenshots: browse/index.html)\n");
    while (fgets(line, sizeof(line), f))
        lab_out2(R->o, R->rf, "  %s", line);
    fclose(f);
}

/* index.html: the plots and report.txt (escaped). */
static void write_html(const struct report *R, const char *hp)
{
    const struct lab_topo *t = R->r->topo;
    FILE *h = fopen(hp, "w");
    if (!h) return;
    fprintf(h, "<!doctype html><meta charset=utf-8><title>CDN lab report: %s</title>\n<h1>CDN lab: %s</h1>\n"
               "<img src=hitratio.svg><img src=latency_cdf.svg><img src=tiers.svg>\n<pre>\n", t->name, t->name);
    FILE *x = fopen(R->rp, "r");
    char line[512];
    while (x && fgets(line, sizeof(line), x))
        for (char *c = line; *c; c++)
            fputs(*c == '<' ? "&lt;" : *c == '&' ? "&amp;" : (char[]){*c, 0}, h);
    if (x) fclose(x);
    fprintf(h, "</pre>\n");
    char bp[PATH_MAX + 32];
    snprintf(bp, sizeof(bp), "%s/browse/index.html", R->odir);
    if (access(bp, R_OK) == 0) /* cdn-lab browse ran into this folder: its screenshots */
        fprintf(h, "<p><a href=browse/index.html>Page loads in Chromium, with screenshots</a></p>\n"
                   "<a href=browse/index.html><img src=browse/eu-cold-home.png width=320>"
                   "<img src=browse/eu-warm-product.png width=320></a>\n");
    fclose(h);
}

/* The plots with gnuplot, when it is installed, and the page. */
static void plots(const struct report *R)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("\n(gnuplot not installed: no plots; apt-get install gnuplot-nox)\nreport: %s\n", R->rp);
        return;
    }
    char gp[PATH_MAX];
    snprintf(gp, sizeof(gp), "%s/plots.gp", R->odir);
    if (write_gnuplot(R, gp) < 0) return;
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>'%s/gnuplot.log'", gp, R->odir);
    int rc = system(cmd);
    char hp[PATH_MAX];
    snprintf(hp, sizeof(hp), "%s/index.html", R->odir);
    write_html(R, hp);
    printf("\nplots%s: %s/{hitratio,latency_cdf,tiers}.{png,svg}, page %s, text %s\n", rc ? " (gnuplot failed, see gnuplot.log)" : "",
           R->odir, hp, R->rp);
}

static int report_main(struct lab_run *r, const char *defdir, int argc, char **argv)
{
    static struct report R; /* large; one report per process */
    memset(&R, 0, sizeof(R));
    R.r = r;
    int rc = out_dir(defdir, argc, argv, &R.odir);
    if (rc || (rc = read_logs(&R))) return rc;
    snprintf(R.rp, sizeof(R.rp), "%s/report.txt", R.odir);
    R.rf = fopen(R.rp, "w");
    R.o = stdout;
    if (print_totals(&R)) {
        if (R.rf) fclose(R.rf);
        return 1;
    }
    lab_report_parents(r, R.o, R.rf);
    print_latency(&R);
    print_minrtt_errors(&R);
    lab_report_reconcile(r, &R.lc, R.o, R.rf);
    lab_report_replay(r, R.o, R.rf);
    lab_report_failover(r, R.odir, R.o, R.rf);
    lab_report_db(r, R.o, R.rf);
    print_browse(&R);
    if (R.rf) fclose(R.rf);
    plots(&R);
    return 0;
}
