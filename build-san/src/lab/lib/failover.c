/* lab/lib/failover.c - failover, return, failures and the hit-ratio dip of one fault (failover.h). */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lab/lib/failover.h"

static int success(const struct lab_logrec *r) { return r->status > 0 && r->status < 500; }
static int failure(const struct lab_logrec *r) { return r->status == 0 || r->status >= 500; }
static int is_hit(const struct lab_logrec *r) { return !strcmp(r->cache, "hit"); }

void lab_failover_analyse(const struct lab_logrec *recs, size_t n, const char *dead, const char *dead_addr,
                          double t_fault, double t_undo, struct lab_fo_result *o)
{
    memset(o, 0, sizeof(*o));
    o->failover_s = o->return_s = o->last_dead_s = -1;
    double t_fo = INFINITY, t_back = INFINITY;
    unsigned hb = 0, h5 = 0, ha = 0, na = 0;
    /* pass 1: the takeover and the return */
    for (size_t i = 0; i < n; i++) {
        const struct lab_logrec *r = &recs[i];
        if (r->t < t_fault || !success(r)) continue;
        if (strcmp(r->edge, dead) && !(dead_addr && !strcmp(r->edge, dead_addr)) && r->t < t_fo &&
            (t_undo < 0 || r->t - r->latency_ms / 1e3 < t_undo)) {
            t_fo = r->t;
            snprintf(o->next_edge, sizeof(o->next_edge), "%s", r->edge);
        }
        if (t_undo >= 0 && !strcmp(r->edge, dead) && r->t - r->latency_ms / 1e3 >= t_undo && r->t < t_back) t_back = r->t;
    }
    if (isfinite(t_fo)) o->failover_s = t_fo - t_fault;
    if (isfinite(t_back)) o->return_s = t_back - t_undo;
    double t_end = isfinite(t_back) ? t_back : INFINITY;
    /* pass 2: failures, hit ratios, the last use of the dead edge */
    for (size_t i = 0; i < n; i++) {
        const struct lab_logrec *r = &recs[i];
        if (r->t >= t_fault && r->t <= t_end && failure(r)) o->failed++;
        if (r->t >= t_fault - 10 && r->t < t_fault && !strcmp(r->edge, dead) && success(r)) {
            o->n_before++;
            hb += is_hit(r);
        }
        if (isfinite(t_fo) && r->t >= t_fo && !strcmp(r->edge, o->next_edge) && success(r)) {
            if (r->t < t_fo + 5) {
                o->n_next_5s++;
                h5 += is_hit(r);
            }
            if (r->t < t_end) {
                na++;
                ha += is_hit(r);
            }
        }
        int to_dead = !strcmp(r->edge, dead) || (dead_addr && !strcmp(r->edge, dead_addr));
        if (to_dead && failure(r) && r->t >= t_fault && (t_undo < 0 || r->t - r->latency_ms / 1e3 < t_undo) &&
            r->t - t_fault > o->last_dead_s)
            o->last_dead_s = r->t - t_fault;
    }
    o->hit_before = o->n_before ? (double)hb / o->n_before : NAN;
    o->hit_next_5s = o->n_next_5s ? (double)h5 / o->n_next_5s : NAN;
    o->hit_next_all = na ? (double)ha / na : NAN;
}
