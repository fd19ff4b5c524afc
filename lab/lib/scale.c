/* lab/lib/scale.c - the auto-scaler's decision (rules in scale.h): a pure function of the policy,
 * a window of samples and the time, so tests/unit/t_lab_scale.c drives it with tables, no sleeps. */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lab/lib/scale.h"

const char *lab_scale_action_name(enum lab_scale_action a)
{
    return a == LAB_SCALE_UP ? "up" : a == LAB_SCALE_DOWN ? "down" : "hold";
}

/* Which target a sample is over; the reason's words in why. 0 when none. */
static int over(const struct lab_scale_conf *p, const struct lab_scale_sample *s, char *why, size_t wl)
{
    double per = s->healthy ? s->inflight / s->healthy : s->inflight;
    if (p->target_inflight > 0 && per > p->target_inflight) {
        snprintf(why, wl, "in flight %.1f per healthy app > target %.1f", per, p->target_inflight);
        return 1;
    }
    if (p->target_p95_ms && s->requests >= p->p95_min_requests && s->p95_ms > (double)p->target_p95_ms) {
        snprintf(why, wl, "p95 %.0f ms > target %llu ms", s->p95_ms, (unsigned long long)p->target_p95_ms);
        return 1;
    }
    if (p->target_cpu > 0 && s->cpu > p->target_cpu) {
        snprintf(why, wl, "app CPU %.2f > target %.2f", s->cpu, p->target_cpu);
        return 1;
    }
    return 0;
}

/* Is the sample under down_below of every target with one app fewer? When not, why not. */
static int under(const struct lab_scale_conf *p, const struct lab_scale_sample *s, char *why, size_t wl)
{
    unsigned fewer = s->healthy > 1 ? s->healthy - 1 : 1;
    double per = s->inflight / fewer, cpu = s->cpu * s->size / (s->size > 1 ? s->size - 1 : 1);
    if (p->target_inflight > 0 && per >= p->down_below * p->target_inflight) {
        snprintf(why, wl, "with %u apps in flight would be %.1f per app >= %.1f", fewer, per,
                 p->down_below * p->target_inflight);
        return 0;
    }
    if (p->target_p95_ms && s->requests >= p->p95_min_requests && s->p95_ms >= p->down_below * (double)p->target_p95_ms) {
        snprintf(why, wl, "p95 %.0f ms >= %.0f ms", s->p95_ms, p->down_below * (double)p->target_p95_ms);
        return 0;
    }
    if (p->target_cpu > 0 && cpu >= p->down_below * p->target_cpu) {
        snprintf(why, wl, "with %u apps CPU would be %.2f >= %.2f", s->size - 1, cpu, p->down_below * p->target_cpu);
        return 0;
    }
    return 1;
}

/* The first sample of the window at or after since (n if none); the window covers the span when
 * a sample at or before since exists (the one before the returned index, or the returned one). */
static size_t first_since(const struct lab_scale_sample *w, size_t n, uint64_t since, int *covered)
{
    size_t i = n;
    while (i > 0 && w[i - 1].t_ms >= since) i--;
    *covered = (i > 0) || (n > 0 && w[0].t_ms <= since);
    return i;
}

enum lab_scale_action lab_scale_decide(const struct lab_scale_conf *p, const struct lab_scale_sample *w, size_t n,
                                       uint64_t now_ms, uint64_t last_change_ms, char *reason, size_t rlen)
{
    if (n == 0 || now_ms > w[n - 1].t_ms + 2 * (p->interval_ms ? p->interval_ms : 1000)) {
        snprintf(reason, rlen, "no recent sample");
        return LAB_SCALE_HOLD;
    }
    const struct lab_scale_sample *s = &w[n - 1];
    if (s->healthy < p->min && s->size < p->max) {
        snprintf(reason, rlen, "%u healthy apps < min %u (pool %u)", s->healthy, p->min, s->size);
        return LAB_SCALE_UP;
    }
    if (last_change_ms && now_ms < last_change_ms + p->cooldown_ms) {
        snprintf(reason, rlen, "cool-down: %.1f s left", (double)(last_change_ms + p->cooldown_ms - now_ms) / 1000.0);
        return LAB_SCALE_HOLD;
    }
    char why[160];
    int covered;
    uint64_t since = now_ms >= p->up_after_ms ? now_ms - p->up_after_ms : 0;
    size_t i = first_since(w, n, since, &covered);
    int all_over = covered && i < n;
    for (size_t k = i; all_over && k < n; k++) all_over = over(p, &w[k], why, sizeof(why));
    if (all_over) {
        over(p, s, why, sizeof(why)); /* the newest sample's numbers */
        if (s->size >= p->max) {
            snprintf(reason, rlen, "at max %u: %s for %.0f s", p->max, why, (double)p->up_after_ms / 1000.0);
            return LAB_SCALE_HOLD;
        }
        snprintf(reason, rlen, "%s for %.0f s (%zu samples), pool %u -> %u", why, (double)p->up_after_ms / 1000.0, n - i,
                 s->size, s->size + 1);
        return LAB_SCALE_UP;
    }
    since = now_ms >= p->down_after_ms ? now_ms - p->down_after_ms : 0;
    i = first_since(w, n, since, &covered);
    int all_under = covered && i < n;
    for (size_t k = i; all_under && k < n; k++) all_under = under(p, &w[k], why, sizeof(why));
    if (all_under) {
        if (s->size <= p->min) {
            snprintf(reason, rlen, "at min %u: load low for %.0f s", p->min, (double)p->down_after_ms / 1000.0);
            return LAB_SCALE_HOLD;
        }
        if (s->healthy < 2) {
            snprintf(reason, rlen, "load low but only %u healthy app: it stays", s->healthy);
            return LAB_SCALE_HOLD;
        }
        double per = s->inflight / (s->healthy - 1);
        snprintf(reason, rlen, "load low for %.0f s (%zu samples): in flight %.1f (%.1f per app with one fewer), p95 %.0f ms, "
                 "CPU %.2f; pool %u -> %u", (double)p->down_after_ms / 1000.0, n - i, s->inflight, per, s->p95_ms, s->cpu,
                 s->size, s->size - 1);
        return LAB_SCALE_DOWN;
    }
    double per = s->healthy ? s->inflight / s->healthy : s->inflight;
    snprintf(reason, rlen, "within targets: in flight %.1f per app, p95 %.0f ms, CPU %.2f, pool %u", per, s->p95_ms, s->cpu,
             s->size);
    return LAB_SCALE_HOLD;
}

double lab_scale_quantile_ms(const double *le, const double *count, size_t nb, double q)
{
    double total = 0;
    for (size_t i = 0; i < nb; i++) total += count[i];
    if (total <= 0) return -1;
    double rank = q * total, cum = 0;
    for (size_t i = 0; i < nb; i++) {
        if (count[i] > 0 && cum + count[i] >= rank) {
            double lo = i ? le[i - 1] : 0, hi = le[i];
            if (isinf(hi)) return lo * 1000.0; /* beyond the last bound: the bound, as Prometheus */
            return (lo + (hi - lo) * (rank - cum) / count[i]) * 1000.0;
        }
        cum += count[i];
    }
    return le[nb - 1] * 1000.0;
}
