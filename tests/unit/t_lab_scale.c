/* Unit tests for lab/lib/scale.c: the auto-scaler's decision (up / down / hold and the reason) from
 * a window of samples and the policy, table-driven with `now` passed in; the interval quantile of
 * a histogram; and the topology's scale: section (defaults, spare app slots, line-numbered errors). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lab/lib/scale.h"
#include "lab/lib/topo.h"

static const struct lab_scale_conf pol = {.on = 1, .min = 1, .max = 4, .target_inflight = 4, .target_p95_ms = 500,
                                          .down_below = 0.5, .p95_min_requests = 5, .up_after_ms = 5000, .down_after_ms = 20000,
                                          .cooldown_ms = 10000, .interval_ms = 1000};

/* n samples one second apart ending at t_end (ms), all alike. */
static size_t fill(struct lab_scale_sample *w, size_t n, uint64_t t_end, unsigned size, unsigned healthy, double inflight,
                   double p95)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (struct lab_scale_sample){.t_ms = t_end - (n - 1 - i) * 1000, .size = size, .healthy = healthy,
                                         .inflight = inflight, .p95_ms = p95, .cpu = 0.1, .requests = 10};
    return n;
}

static enum lab_scale_action dec(const struct lab_scale_conf *p, const struct lab_scale_sample *w, size_t n, uint64_t now,
                                 uint64_t last, char *why)
{
    return lab_scale_decide(p, w, n, now, last, why, 256);
}

static void test_up(void **state)
{
    (void)state;
    struct lab_scale_sample w[64];
    char why[256];
    uint64_t now = 100000;
    /* 6 samples over 5 s, 2 apps with 12 in flight (6 per app > 4): up, the reason says so */
    size_t n = fill(w, 6, now, 2, 2, 12, 100);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_UP);
    assert_non_null(strstr(why, "in flight 6.0 per healthy app > target 4.0"));
    assert_non_null(strstr(why, "pool 2 -> 3"));
    /* over for only 3 s of the 5: hold (the window does not cover up_after) */
    n = fill(w, 4, now, 2, 2, 12, 100);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    /* one sample in the window under the target: hold */
    n = fill(w, 6, now, 2, 2, 12, 100);
    w[3].inflight = 4;
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    assert_non_null(strstr(why, "within targets"));
    /* p95 over its target while in flight is low: up, for the p95 */
    n = fill(w, 6, now, 2, 2, 1, 900);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_UP);
    assert_non_null(strstr(why, "p95 900 ms > target 500 ms"));
    /* the same p95 from 4 requests an interval: not judged, hold */
    for (size_t i = 0; i < n; i++) w[i].requests = 4;
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    /* an older sample under the target outside the window does not matter */
    n = fill(w, 10, now, 2, 2, 12, 100);
    w[0].inflight = 0;
    w[2].inflight = 0;
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_UP);
}

static void test_bounds_and_cooldown(void **state)
{
    (void)state;
    struct lab_scale_sample w[64];
    char why[256];
    uint64_t now = 100000;
    /* at max: hold, naming max */
    size_t n = fill(w, 6, now, 4, 4, 40, 100);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    assert_non_null(strstr(why, "at max 4"));
    /* cool-down: 4 s after a change with 10 s of cool-down */
    n = fill(w, 6, now, 2, 2, 40, 100);
    assert_int_equal(dec(&pol, w, n, now, now - 4000, why), LAB_SCALE_HOLD);
    assert_non_null(strstr(why, "cool-down: 6.0 s left"));
    assert_int_equal(dec(&pol, w, n, now, now - 10000, why), LAB_SCALE_UP);
    /* no healthy app left (min 1): up at once, even in the cool-down */
    n = fill(w, 1, now, 1, 0, 0, -1);
    assert_int_equal(dec(&pol, w, n, now, now - 1000, why), LAB_SCALE_UP);
    assert_non_null(strstr(why, "0 healthy apps < min 1"));
    /* stale window: hold */
    n = fill(w, 6, now - 5000, 2, 2, 40, 100);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    assert_string_equal(why, "no recent sample");
    assert_int_equal(dec(&pol, w, 0, now, 0, why), LAB_SCALE_HOLD);
}

static void test_down(void **state)
{
    (void)state;
    struct lab_scale_sample w[64];
    char why[256];
    uint64_t now = 200000;
    /* 3 apps, 2 in flight, p95 50 ms for 20 s: with 2 apps 1 per app < 0.5 x 4: down */
    size_t n = fill(w, 21, now, 3, 3, 2, 50);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_DOWN);
    assert_non_null(strstr(why, "load low for 20 s"));
    assert_non_null(strstr(why, "pool 3 -> 2"));
    /* low for only 15 s: hold */
    n = fill(w, 16, now, 3, 3, 2, 50);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    /* one sample where one app fewer would carry 2.5 per app (>= 2): hold */
    n = fill(w, 21, now, 3, 3, 2, 50);
    w[10].inflight = 5;
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    /* p95 at 300 ms (>= 0.5 x 500): hold */
    n = fill(w, 21, now, 3, 3, 0, 300);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    /* p95 at 300 ms from 2 requests an interval (a quiet second): not judged, down */
    for (size_t i = 0; i < n; i++) w[i].requests = 2;
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_DOWN);
    /* idle pool (no request: p95 -1) at min: hold at min */
    n = fill(w, 21, now, 1, 1, 0, -1);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    assert_non_null(strstr(why, "at min 1"));
    /* min 1 but 2 apps of which only 1 healthy: never below one healthy app */
    n = fill(w, 21, now, 2, 1, 0, -1);
    assert_int_equal(dec(&pol, w, n, now, 0, why), LAB_SCALE_HOLD);
    assert_non_null(strstr(why, "only 1 healthy app"));
    /* min 2: 2 apps idle stay */
    struct lab_scale_conf p2 = pol;
    p2.min = 2;
    n = fill(w, 21, now, 2, 2, 0, -1);
    assert_int_equal(dec(&p2, w, n, now, 0, why), LAB_SCALE_HOLD);
    assert_non_null(strstr(why, "at min 2"));
    /* cpu target: 3 apps at 0.3 each -> 0.45 with 2 >= 0.5 x 0.8: hold; at 0.2 -> 0.3: down */
    struct lab_scale_conf pc = pol;
    pc.target_inflight = 0;
    pc.target_p95_ms = 0;
    pc.target_cpu = 0.8;
    n = fill(w, 21, now, 3, 3, 0, -1);
    for (size_t i = 0; i < n; i++) w[i].cpu = 0.3;
    assert_int_equal(dec(&pc, w, n, now, 0, why), LAB_SCALE_HOLD);
    for (size_t i = 0; i < n; i++) w[i].cpu = 0.2;
    assert_int_equal(dec(&pc, w, n, now, 0, why), LAB_SCALE_DOWN);
    for (size_t i = 0; i < n; i++) w[i].cpu = 0.9;
    assert_int_equal(dec(&pc, w, n, now, 0, why), LAB_SCALE_UP);
    assert_non_null(strstr(why, "app CPU 0.90 > target 0.80"));
}

static void test_quantile(void **state)
{
    (void)state;
    const double le[] = {0.01, 0.1, 1, INFINITY};
    const double c1[] = {0, 10, 0, 0};
    /* all in (10 ms, 100 ms]: the median half way, p95 at 95% of the bucket */
    assert_true(fabs(lab_scale_quantile_ms(le, c1, 4, 0.5) - 55) < 1e-6);
    assert_true(fabs(lab_scale_quantile_ms(le, c1, 4, 0.95) - 95.5) < 1e-6);
    const double c2[] = {90, 0, 0, 10};
    assert_true(lab_scale_quantile_ms(le, c2, 4, 0.5) < 10);
    assert_true(fabs(lab_scale_quantile_ms(le, c2, 4, 0.99) - 1000) < 1e-6); /* +Inf: the last bound */
    const double c0[] = {0, 0, 0, 0};
    assert_true(lab_scale_quantile_ms(le, c0, 4, 0.95) < 0);
}

static const char base[] = "regions: {us: {}}\nedges: [{name: us1, region: us}]\norigin: {region: us, apps: %u}\n%s";

static struct lab_topo *load(const char *scale, unsigned apps, cdn_conf_t **c, cdn_conf_err_t *err)
{
    char text[1024];
    snprintf(text, sizeof(text), base, apps, scale);
    return lab_topo_load_string("t.yaml", text, strlen(text), c, err);
}

static void test_topo(void **state)
{
    (void)state;
    cdn_conf_t *c;
    cdn_conf_err_t err;
    struct lab_topo *t = load("", 2, &c, &err);
    assert_non_null(t);
    assert_false(t->scale.on);
    assert_int_equal(t->app_slots, 2);
    cdn_conf_free(c);
    t = load("scale: {min: 1, max: 5, target_inflight: 4, target_p95: 300ms, up_after: 3s, down_after: 10s, cooldown: 5s}\n",
             1, &c, &err);
    if (!t) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(t);
    assert_true(t->scale.on);
    assert_int_equal(t->scale.max, 5);
    assert_int_equal(t->scale.target_p95_ms, 300);
    assert_int_equal(t->scale.up_after_ms, 3000);
    assert_int_equal(t->scale.interval_ms, 1000); /* default */
    assert_true(t->scale.down_below == 0.5);
    assert_int_equal(t->app_slots, 5);
    /* the plan: 5 app nodes, the spares after the others */
    static struct lab_plan p;
    char msg[200];
    assert_int_equal(lab_plan_make(t, LAB_NETNS, "x", 100, &p, msg, sizeof(msg)), 0);
    int apps = 0;
    for (size_t i = 0; i < p.nnodes; i++) apps += p.nodes[i].kind == LAB_APP;
    assert_int_equal(apps, 5);
    assert_int_not_equal(lab_plan_find_name(&p, "app5"), -1);
    struct lab_argv a;
    lab_cmd_lb(t, &p, lab_plan_find(&p, LAB_LB, 0), "", "/s", &a);
    int bs = 0;
    for (int i = 0; i < a.argc; i++) bs += !strcmp(a.argv[i], "-b");
    assert_int_equal(bs, 1); /* shop-lb starts with origin.apps only */
    cdn_conf_free(c);
    /* origin.render_threads reaches shop-app's command line (each app a 1-vCPU instance) */
    const char rt[] = "regions: {us: {}}\nedges: [{name: us1, region: us}]\norigin: {region: us, apps: 1, render_threads: 1}\n";
    t = lab_topo_load_string("t.yaml", rt, strlen(rt), &c, &err);
    assert_non_null(t);
    assert_int_equal(lab_plan_make(t, LAB_LOOPBACK, "x", 100, &p, msg, sizeof(msg)), 0);
    lab_cmd_app(t, &p, lab_plan_find(&p, LAB_APP, 0), "", "/s", &a);
    int found = 0;
    for (int i = 0; i + 1 < a.argc; i++) found |= !strcmp(a.argv[i], "--render-threads") && !strcmp(a.argv[i + 1], "1");
    assert_true(found);
    cdn_conf_free(c);
    /* errors, each at its line */
    static const struct { const char *scale; unsigned apps; const char *want; } bad[] = {
        {"scale: {min: 3, max: 2, target_inflight: 4}\n", 2, "t.yaml:4:"},
        {"scale: {min: 1, max: 2, target_inflight: 4}\n", 3, "the pool starts within"},
        {"scale:\n  min: 1\n  max: 3\n", 1, "no target"},
        {"scale:\n  target_inflight: 4\n  up_after: 10ms\n", 1, "t.yaml:6:"},
        {"scale:\n  target_inflight: 4\n  down_below: 2\n", 1, "t.yaml:6:"},
        {"scale:\n  target_inflight: 4\n  max: 40\n", 1, "t.yaml:6:"},
        {"scale:\n  target_inflight: -1\n", 1, "t.yaml:5:"},
        {"scale:\n  target_inflight: 4\n  interval: 50ms\n", 1, "interval from 100ms"},
        {"scale:\n  target_infligt: 4\n", 1, "t.yaml:5:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = load(bad[i].scale, bad[i].apps, &c, &err);
        if (t || !strstr(err.msg, bad[i].want)) fprintf(stderr, "case %zu: %s\n", i, t ? "loaded" : err.msg);
        assert_null(t);
        assert_non_null(strstr(err.msg, bad[i].want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_up), cmocka_unit_test(test_bounds_and_cooldown), cmocka_unit_test(test_down),
        cmocka_unit_test(test_quantile), cmocka_unit_test(test_topo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
