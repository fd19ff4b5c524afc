/* lab/cdnlab/report_recon.c - the report's numbers that come from /metrics: the parent (shield) edges' table,
 * origin offload, and the reconciliation of what the edges, the parents, the client logs and
 * shop-lb each counted over one load run.
 *
 * What is compared with what (docs/EDGE.md, metric names):
 *   requests  clients' requests with a response  =  over child edges: edge_requests_total minus
 *             result="revalidated" (a 304 revalidation counts twice) plus edge_collapsed_total
 *             (requests that joined a fetch in flight are only there)
 *   hits      clients' "hit" (last Cache-Status entry)  =  child edges' result="hit"
 *   parent    children's edge_fetches_total{upstream="parent"}  =  parents' requests, counted as above
 *             parents' hits <= clients' parent-cache answers <= that + the children's collapsed
 *             (followers of a child's fetch get the parent's answer but the parent saw one request)
 *   origin    every edge's edge_origin_fetches_total (direct origin fetches only)  =  shop-lb's
 *             shop_lb_requests_total
 * The scrapes are taken before and after the whole run, so the log side counts warm-up too. */
#include "config.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/cdnlab/labrun.h"

static double metric_sum(const char *file, const char *name, const char *match)
{
    FILE *f = fopen(file, "r");
    if (!f) return NAN;
    char line[1024];
    double s = 0;
    size_t nl = strlen(name);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, nl) || (line[nl] != ' ' && line[nl] != '{')) continue;
        if (match && !strstr(line, match)) continue;
        char *sp = strrchr(line, ' ');
        if (sp) s += strtod(sp + 1, NULL);
    }
    fclose(f);
    return s;
}

double lab_metric_delta(const struct lab_run *r, const char *node, const char *name, const char *match)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof(a), "%s/metrics/after-%s.txt", r->statedir, node);
    snprintf(b, sizeof(b), "%s/metrics/before-%s.txt", r->statedir, node);
    return metric_sum(a, name, match) - metric_sum(b, name, match);
}

/* One edge's counts over the run. */
struct edge_counts {
    double req;       /* requests it answered or joined to a fetch, revalidations once */
    double collapsed;
    double hits;
    double to_parent; /* fetches sent to a parent */
    double to_origin; /* fetches sent to the origin directly */
};

static void edge_counts(const struct lab_run *r, const struct lab_node *n, struct edge_counts *c)
{
    double all = lab_metric_delta(r, n->name, "edge_requests_total", NULL);
    double reval = lab_metric_delta(r, n->name, "edge_requests_total", "result=\"revalidated\"");
    c->collapsed = lab_metric_delta(r, n->name, "edge_collapsed_total", NULL);
    c->req = all - reval + c->collapsed;
    c->hits = lab_metric_delta(r, n->name, "edge_requests_total", "result=\"hit\"");
    c->to_parent = lab_metric_delta(r, n->name, "edge_fetches_total", "upstream=\"parent\"");
    c->to_origin = lab_metric_delta(r, n->name, "edge_origin_fetches_total", NULL);
}

static int is_parent(const struct lab_run *r, const struct lab_node *n)
{
    return n->kind == LAB_EDGE && lab_topo_edge(r->topo, (size_t)n->index)->parent;
}

void lab_report_parents(const struct lab_run *r, FILE *o, FILE *rf)
{
    if (!r->topo->nparents) return;
    lab_out2(o, rf, "\nparent edges (shield tier; /metrics over the whole run incl. warm-up):\n%-10s %8s %8s %8s %10s\n",
         "parent", "requests", "hits", "hit%", "to origin");
    for (size_t i = 0; i < r->plan->nnodes; i++) {
        const struct lab_node *n = &r->plan->nodes[i];
        if (!is_parent(r, n)) continue;
        struct edge_counts c;
        edge_counts(r, n, &c);
        if (isnan(c.req)) {
            lab_out2(o, rf, "%-10s (no scrape)\n", lab_topo_edge(r->topo, (size_t)n->index)->name);
            continue;
        }
        lab_out2(o, rf, "%-10s %8.0f %8.0f %8.1f %10.0f\n", lab_topo_edge(r->topo, (size_t)n->index)->name, c.req, c.hits,
             c.req > 0 ? 100.0 * c.hits / c.req : 0, c.to_origin);
    }
}

static const char *verdict(double a, double b) { return fabs(a - b) < 0.5 ? "agree" : "DIFFER"; }

void lab_report_reconcile(const struct lab_run *r, const struct lab_log_counts *lc, FILE *o, FILE *rf)
{
    struct edge_counts ch = {0}, pa = {0};
    for (size_t i = 0; i < r->plan->nnodes; i++) {
        const struct lab_node *n = &r->plan->nodes[i];
        if (n->kind != LAB_EDGE) continue;
        struct edge_counts c;
        edge_counts(r, n, &c);
        struct edge_counts *s = is_parent(r, n) ? &pa : &ch;
        s->req += c.req;
        s->collapsed += c.collapsed;
        s->hits += c.hits;
        s->to_parent += c.to_parent;
        s->to_origin += c.to_origin;
    }
    double lb_req = lab_metric_delta(r, "lb", "shop_lb_requests_total", NULL);
    if (isnan(lb_req))
        lab_out2(o, rf, "\norigin offload: unknown (no shop-lb scrape)\n");
    else
        lab_out2(o, rf, "\norigin offload: %.1f%% (shop-lb answered %.0f requests for %llu client requests)\n",
             lc->logged ? 100.0 * (1.0 - lb_req / (double)lc->logged) : 0.0, lb_req, (unsigned long long)lc->logged);
    lab_out2(o, rf, "reconciliation (whole run incl. warm-up):\n");
    {   /* a fault that killed and restarted a daemon resets its counters: say so beside any DIFFER */
        char fp[PATH_MAX];
        snprintf(fp, sizeof(fp), "%s/faults.tsv", r->statedir);
        FILE *ff = fopen(fp, "r");
        if (ff) {
            if (fgetc(ff) != EOF)
                lab_out2(o, rf, "  (this lab had faults (faults.tsv): a killed daemon restarts its counters at 0, so the "
                            "edge and shop-lb sides miss what it counted before; DIFFER is expected then)\n");
            fclose(ff);
        }
    }
    if (isnan(ch.req)) {
        lab_out2(o, rf, "  no edge scrapes\n");
        return;
    }
    /* A request without a response (timeout, cut at the end, refused) may or may not have reached
     * an edge: those are the only slack allowed. */
    double answered = (double)(lc->logged - lc->no_response);
    const char *v = verdict(ch.req, answered);
    char why[160] = "";
    if (*v == 'D' && ch.req > answered && ch.req <= answered + (double)lc->no_response) {
        v = "agree";
        snprintf(why, sizeof(why), " (%.0f of the %llu without a response reached an edge)", ch.req - answered,
                 (unsigned long long)lc->no_response);
    } else if (*v == 'D') {
        snprintf(why, sizeof(why), ", difference %+.0f", ch.req - answered);
    }
    char nr[48] = "";
    if (lc->no_response) snprintf(nr, sizeof(nr), " (+%llu without)", (unsigned long long)lc->no_response);
    lab_out2(o, rf, "  requests: edges counted %.0f (%.0f of them joined a fetch in flight), clients logged %.0f answered%s -> %s%s\n",
         ch.req, ch.collapsed, answered, nr, v, why);
    lab_out2(o, rf, "  hits:     edges counted %.0f, clients logged %llu -> %s\n", ch.hits, (unsigned long long)lc->hits,
         verdict(ch.hits, (double)lc->hits));
    if (r->topo->nparents && !isnan(pa.req)) {
        lab_out2(o, rf, "  parent:   children sent %.0f, parents counted %.0f -> %s\n", ch.to_parent, pa.req,
             verdict(ch.to_parent, pa.req));
        double m = (double)lc->parent_hits;
        int ok = m + 0.5 >= pa.hits && m <= pa.hits + ch.collapsed + 0.5;
        lab_out2(o, rf, "            parents' hits %.0f, clients answered from a parent's cache %.0f (may exceed by the children's "
                    "%.0f joined requests) -> %s\n", pa.hits, m, ch.collapsed, ok ? "agree" : "DIFFER");
    }
    if (!isnan(lb_req)) {
        double f = ch.to_origin + (isnan(pa.to_origin) ? 0 : pa.to_origin);
        char split[64] = "";
        if (r->topo->nparents) snprintf(split, sizeof(split), " (parents %.0f, children %.0f)", pa.to_origin, ch.to_origin);
        lab_out2(o, rf, "  origin:   edges fetched %.0f%s, shop-lb answered %.0f -> %s\n", f, split, lb_req, verdict(f, lb_req));
    }
}
