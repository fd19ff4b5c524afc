/* Unit tests for lab/lib/top.c (`cdn-lab top`): parsing an edge's and shop-lb's /metrics, rates
 * and ratios between two scrapes (restarts, an edge down, nothing to divide), histogram quantiles,
 * the terminal frame and the JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/top.h"

/* An edge's scrape with req requests of which hit hits (ram), the rest from the origin. */
static void edge_text(char *out, size_t cap, double hit, double miss, double bytes, double hbytes, int lag, int drain,
                      double b1, double b2, double b3)
{
    snprintf(out, cap,
             "# HELP edge_requests_total Requests\n# TYPE edge_requests_total counter\n"
             "edge_requests_total{result=\"hit\",tier=\"ram\"} %.0f\n"
             "edge_requests_total{result=\"miss\",tier=\"origin\"} %.0f\n"
             "edge_requests_total{result=\"error\",tier=\"none\"} 2\n"
             "edge_body_bytes_sent_total %.0f\r\n"
             "edge_hit_body_bytes_sent_total %.0f\n"
             "edge_origin_fetches_total %.0f\n"
             "edge_request_duration_seconds_bucket{le=\"0.001\"} %.0f\n"
             "edge_request_duration_seconds_bucket{le=\"0.01\"} %.0f\n"
             "edge_request_duration_seconds_bucket{le=\"+Inf\"} %.0f\n"
             "edge_request_duration_seconds_sum 1.5\nedge_request_duration_seconds_count %.0f\n"
             "edge_draining %d\nedge_purge_stream_lag %d\nedge_purge_bus_up 1\n"
             "edge_something_else{a=\"b}\"} 7\n",
             hit, miss, bytes, hbytes, miss, b1, b2, b3, b3, drain, lag);
}

static void test_parse(void **state)
{
    (void)state;
    char t[2048];
    edge_text(t, sizeof(t), 30, 10, 1000, 600, 3, 1, 20, 35, 42);
    struct lab_top_snap s;
    lab_top_snap_init(&s, 5);
    assert_true(lab_top_parse(t, strlen(t), &s) >= 10);
    assert_true(s.t == 5);
    assert_true(s.req == 42 && s.hit == 30 && s.err == 2);
    assert_true(s.tier[LAB_TOP_RAM] == 30 && s.tier[LAB_TOP_ORIGIN] == 10 && s.tier[LAB_TOP_DISK] == 0);
    assert_true(s.bytes == 1000 && s.hit_bytes == 600 && s.origin == 10);
    assert_int_equal(s.nb, 3);
    assert_true(s.le[0] == 0.001 && s.le[1] == 0.01 && isinf(s.le[2]) && s.cum[2] == 42);
    assert_true(s.draining == 1 && s.lag == 3 && s.bus_up == 1);
    assert_true(isnan(s.lb_req));
    /* shop-lb's requests by status; buckets in any order */
    const char *lb = "shop_lb_requests_total{status=\"200\"} 90\nshop_lb_requests_total{status=\"503\"} 4\n"
                     "shop_lb_requests_total{status=\"504\"} 1\n";
    lab_top_snap_init(&s, 0);
    assert_int_equal(lab_top_parse(lb, strlen(lb), &s), 3);
    assert_true(s.lb_req == 95 && s.lb_5xx == 5);
    const char *h = "edge_request_duration_seconds_bucket{le=\"+Inf\"} 5\nedge_request_duration_seconds_bucket{le=\"0.1\"} 4\n"
                    "garbage line\nedge_draining notanumber\n";
    lab_top_snap_init(&s, 0);
    assert_int_equal(lab_top_parse(h, strlen(h), &s), 2);
    assert_true(s.nb == 2 && s.le[0] == 0.1 && isinf(s.le[1]));
    assert_true(isnan(s.draining) && isnan(s.hit_bytes) && isnan(s.lag));
}

static void test_quantile(void **state)
{
    (void)state;
    double le[] = {0.001, 0.01, 0.1, INFINITY};
    double c[] = {50, 90, 100, 100};
    assert_true(fabs(lab_top_quantile(le, c, 4, 0.5) - 0.001) < 1e-12);      /* the 50th of 50 in the first */
    assert_true(fabs(lab_top_quantile(le, c, 4, 0.25) - 0.0005) < 1e-12);    /* half way into [0, 1 ms] */
    assert_true(fabs(lab_top_quantile(le, c, 4, 0.95) - 0.055) < 1e-12);     /* half way into (10, 100 ms] */
    double c2[] = {0, 0, 0, 10};
    assert_true(lab_top_quantile(le, c2, 4, 0.99) == 0.1); /* all above the last bound: that bound */
    double z[] = {0, 0, 0, 0};
    assert_true(isnan(lab_top_quantile(le, z, 4, 0.5)));
    assert_true(isnan(lab_top_quantile(le, c, 0, 0.5)));
}

static void snap(struct lab_top_snap *s, double t, double hit, double miss, double bytes, double hbytes, double b1,
                 double b2, double b3)
{
    char txt[2048];
    edge_text(txt, sizeof(txt), hit, miss, bytes, hbytes, 0, 0, b1, b2, b3);
    lab_top_snap_init(s, t);
    s->up = 1;
    lab_top_parse(txt, strlen(txt), s);
}

static void test_rate(void **state)
{
    (void)state;
    struct lab_top_snap a, b;
    struct lab_top_row r;
    snap(&a, 10, 100, 50, 10000, 6000, 100, 140, 152);
    snap(&b, 12, 160, 70, 14000, 9000, 160, 220, 232); /* +60 hits +20 misses in 2 s, +4000 B of which 3000 hits */
    assert_int_equal(lab_top_rate(&a, &b, 1, &r), 0);
    assert_true(fabs(r.req_s - 40) < 1e-9);
    assert_true(fabs(r.hit - 0.75) < 1e-9);
    assert_true(fabs(r.byte_hit - 0.75) < 1e-9);
    assert_true(fabs(r.tier[LAB_TOP_RAM] - 0.75) < 1e-9 && fabs(r.tier[LAB_TOP_ORIGIN] - 0.25) < 1e-9);
    assert_true(r.tier[LAB_TOP_DISK] == 0 && fabs(r.origin_s - 10) < 1e-9 && r.err_s == 0);
    /* 60 of 80 under 1 ms: p50 at 40/60 of the first bucket; p99 in (1, 10 ms] */
    assert_true(fabs(r.p50_ms - 1.0 * 40 / 60) < 1e-9);
    assert_true(r.p99_ms > 1 && r.p99_ms <= 10);
    assert_true(r.up && r.healthy && !r.draining);
    /* the same time twice: no rate */
    assert_int_equal(lab_top_rate(&b, &b, 1, &r), -1);
    /* the edge restarted: its counters since the restart */
    struct lab_top_snap c;
    snap(&c, 13, 3, 1, 100, 50, 3, 4, 4);
    assert_int_equal(lab_top_rate(&b, &c, 1, &r), 0);
    assert_true(fabs(r.req_s - 6) < 1e-9); /* 3 + 1 + 2 errors in 1 s */
    assert_true(fabs(r.err_s - 2) < 1e-9);
    /* nothing happened: rates 0, ratios unknown */
    struct lab_top_snap d = c;
    d.t = 14;
    assert_int_equal(lab_top_rate(&c, &d, 0, &r), 0);
    assert_true(r.req_s == 0 && isnan(r.hit) && isnan(r.byte_hit) && isnan(r.p50_ms) && isnan(r.tier[0]));
    assert_true(!r.healthy);
    /* the edge does not answer */
    struct lab_top_snap e;
    lab_top_snap_init(&e, 15);
    assert_int_equal(lab_top_rate(&d, &e, 0, &r), 0);
    assert_true(!r.up && isnan(r.req_s));
    /* back: no rates from that gap (the next pair has them again) */
    struct lab_top_snap f = d;
    f.t = 16;
    assert_int_equal(lab_top_rate(&e, &f, 1, &r), 0);
    assert_true(r.up && isnan(r.req_s) && isnan(r.hit));
}

static void test_text_json(void **state)
{
    (void)state;
    struct lab_top_row rows[2] = {
        {.req_s = 40, .hit = 0.75, .byte_hit = 0.5, .tier = {0.7, 0.05, 0, 0.25}, .origin_s = 10, .err_s = 0,
         .p50_ms = 0.7, .p99_ms = 9.9, .lag = 0, .up = 1, .healthy = 1},
        {.req_s = 10, .hit = NAN, .byte_hit = NAN, .tier = {NAN, NAN, NAN, NAN}, .origin_s = 2, .err_s = 1,
         .p50_ms = NAN, .p99_ms = NAN, .lag = NAN, .up = 1, .healthy = 1, .draining = 1},
    };
    const char *names[] = {"eu1", "shield"}, *regs[] = {"eu", "us"};
    int parent[] = {0, 1};
    struct lab_top_frame f = {.lab = "default", .t = 3, .n = 2, .names = names, .regions = regs, .parent = parent,
                              .rows = rows, .lb_req_s = 12, .lb_5xx_s = 0};
    struct lab_buf b = {0};
    lab_top_text(&f, &b);
    assert_false(b.oom);
    assert_non_null(strstr(b.s, "lab 'default'"));
    assert_non_null(strstr(b.s, "\neu1        eu        40.0   75.0   50.0    70     5     0    25     10.0    0.0      0.7      9.9 ok           0\n"));
    assert_non_null(strstr(b.s, "\nshield*    us        10.0      -      -     -     -     -     -      2.0    1.0        -        - draining     -\n"));
    /* the clients' total leaves the shield out */
    assert_non_null(strstr(b.s, "clients (no *)       40.0   75.0   err/s 0.0   origin (shop-lb) 12.0 req/s, 0.0 5xx/s\n"));
    lab_buf_free(&b);
    memset(&b, 0, sizeof(b));
    lab_top_json(&f, &b);
    assert_false(b.oom);
    assert_non_null(strstr(b.s, "{\"lab\":\"default\",\"t\":3.000,\"origin\":{\"req_s\":12.00,\"err_s\":0.00},\"edges\":["));
    assert_non_null(strstr(b.s, "{\"name\":\"eu1\",\"region\":\"eu\",\"parent\":false,\"state\":\"ok\",\"up\":true,"
                                "\"healthy\":true,\"draining\":false,\"req_s\":40.00,\"hit\":0.7500,\"byte_hit\":0.5000,"
                                "\"tiers\":{\"ram\":0.7000,\"rocksdb\":0.0500,\"parent\":0.0000,\"origin\":0.2500},"
                                "\"origin_s\":10.00,\"err_s\":0.00,\"p50_ms\":0.70,\"p99_ms\":9.90,\"lag\":0}"));
    assert_non_null(strstr(b.s, "\"state\":\"draining\""));
    assert_non_null(strstr(b.s, "\"hit\":null,\"byte_hit\":null"));
    assert_true(b.s[b.len - 1] == '}');
    lab_buf_free(&b);
}

static void test_hit_curve(void **state)
{
    (void)state;
    /* 30 req/s for 10.5 s: every third a miss; the last half second (stragglers) makes no point */
    double t[400];
    unsigned char h[400];
    size_t n = 0;
    for (int i = 0; i < 315; i++, n++) {
        t[n] = i / 30.0;
        h[n] = i % 3 != 0;
    }
    struct lab_hit_point p[64];
    size_t k = lab_hit_curve(t, h, n, 1.0, 5.0, 20, p, 64);
    assert_int_equal(k, 10); /* ends 1..10 s; none at 11 s past the last request at 10.47 s */
    assert_true(p[0].t == 1.0 && p[0].n == 30 && p[9].t == 10.0);
    assert_true(p[4].n == 150 && p[9].n == 150); /* the 5 s window, full from 5 s on */
    for (size_t i = 0; i < k; i++) {
        assert_true(fabs(p[i].win - 2.0 / 3) < 1e-9);
        assert_true(fabs(p[i].cum - 2.0 / 3) < 1e-9);
    }
    /* a window below min_n gives no point; the cumulative ratio counts from the start */
    double t2[] = {0.1, 0.2, 5.5, 9.0, 9.1};
    unsigned char h2[] = {0, 0, 1, 1, 1};
    k = lab_hit_curve(t2, h2, 5, 1.0, 2.0, 2, p, 64);
    assert_int_equal(k, 2); /* windows ending at 1 and 2 s hold the 2 misses; later ones fewer than 2 */
    assert_true(p[0].t == 1.0 && p[0].win == 0 && p[0].cum == 0 && p[0].n == 2);
    assert_true(p[1].t == 2.0 && p[1].win == 0 && p[1].n == 2);
    k = lab_hit_curve(t2, h2, 5, 1.0, 5.0, 1, p, 64); /* 5 s window, any count: up to 9 s, not past it */
    assert_int_equal(k, 9);
    assert_true(p[8].t == 9.0 && p[8].n == 1 && p[8].win == 1 && fabs(p[8].cum - 1.0 / 3) < 1e-9);
    assert_int_equal(lab_hit_curve(t2, h2, 0, 1.0, 5.0, 1, p, 64), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_text_json),
        cmocka_unit_test(test_hit_curve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
