/* lab/lib/scale.h - the app pool's auto-scaling policy and its decision, a pure function.
 *
 * Owns: nothing; the policy lives in the topology (struct lab_topo.scale, `scale:` in the YAML,
 * checked by topo.c), the samples in the caller's window (lab/cdnlab/scale.c keeps the last few
 * hundred, one per interval, oldest first).
 *
 * Rules of the decision (lab_scale_decide), in this order:
 *   1. no sample, or the newest is older than two intervals: hold ("no recent sample");
 *   2. fewer healthy apps than `min` (an app died) and room below `max`: up at once, no cool-down;
 *   3. less than `cooldown` since the last change: hold;
 *   4. up when EVERY sample of the last `up_after` is over a target (per healthy app in flight >
 *      target_inflight, or pool p95 > target_p95_ms, or mean app CPU > target_cpu), the window
 *      covering the whole span; a p95 of fewer than p95_min_requests requests is not judged
 *      (one slow request in a quiet second is noise, not load), neither here nor in 5; at `max`: hold, saying so;
 *   5. down when EVERY sample of the last `down_after` is under `down_below` x each target that is
 *      set, in-flight and CPU counted as if the pool had one app fewer (the load moves onto the
 *      others); never at `min`, never with fewer than two healthy apps (the last healthy app stays);
 *   6. else hold.
 * Each decision comes with its reason: the rule, the numbers that made it and the thresholds. */
#ifndef LAB_SCALE_H
#define LAB_SCALE_H

#include <stddef.h>
#include <stdint.h>

struct lab_scale_conf {
    int on;                     /* a scale: section was given */
    unsigned min, max;          /* pool size bounds (apps in shop-lb's pool) */
    double target_inflight;     /* requests in flight per healthy app (0: not a target) */
    uint64_t target_p95_ms;     /* the pool's p95 over one interval (0: not a target) */
    double target_cpu;          /* mean CPU per app, 1.0 = one core (0: not a target) */
    double down_below;          /* scale in under this share of every target (default 0.5) */
    unsigned p95_min_requests;  /* an interval with fewer requests says nothing about p95 (default 5) */
    uint64_t up_after_ms, down_after_ms, cooldown_ms, interval_ms;
};

/* One look at the pool, taken every interval. */
struct lab_scale_sample {
    uint64_t t_ms;              /* CLOCK_MONOTONIC */
    unsigned size;              /* apps in shop-lb's pool (up, down or draining; not removed) */
    unsigned healthy;           /* of them up and not drained */
    double inflight;            /* requests in flight to the pool, all backends */
    double p95_ms;              /* the pool's p95 over the interval (-1: no request in it) */
    double requests;            /* requests the pool answered in the interval (what p95 is made of) */
    double cpu;                 /* mean CPU of the pool's apps over the interval (1.0 = a core) */
};

enum lab_scale_action { LAB_SCALE_HOLD, LAB_SCALE_UP, LAB_SCALE_DOWN };

/* The decision for the window w[0..n) (oldest first) at now; last_change_ms is the time of the
 * last scale-up or scale-down (0: none yet). The reason goes into reason (always written). */
enum lab_scale_action lab_scale_decide(const struct lab_scale_conf *p, const struct lab_scale_sample *w, size_t n,
                                       uint64_t now_ms, uint64_t last_change_ms, char *reason, size_t rlen);
const char *lab_scale_action_name(enum lab_scale_action a);
/* The q-quantile (0..1) of a histogram's interval: bucket upper bounds le[0..nb) (seconds, the
 * last may be +Inf) and the counts per bucket in that interval (not cumulative), linear inside a
 * bucket as Prometheus' histogram_quantile does; in ms, -1 without a count. */
double lab_scale_quantile_ms(const double *le, const double *count, size_t nb, double q);

#endif
