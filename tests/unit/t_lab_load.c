/* Unit tests for lab/lib/workload.c: Zipf sampler, Poisson gaps, request generators (same seed, same
 * sequence), oracleGeneral records, the per-request log line, Cache-Status parsing, percentiles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lab/lib/workload.h"

static void test_zipf(void **state)
{
    struct lab_zipf z;
    assert_int_equal(lab_zipf_init(&z, 1000, 1.0), 0);
    assert_int_equal(lab_zipf_rank(&z, 0.0), 1);
    assert_int_equal(lab_zipf_rank(&z, 0.999999999), 1000);
    /* P(rank 1) = 1/H(1000) = 0.1336; rank 2 half of that. */
    uint64_t s = 5;
    int c1 = 0, c2 = 0, n = 200000;
    for (int i = 0; i < n; i++) {
        size_t r = lab_zipf_rank(&z, lab_rng_unit(&s));
        assert_true(r >= 1 && r <= 1000);
        c1 += r == 1;
        c2 += r == 2;
    }
    assert_in_range(c1, (int)(0.1336 * n * 0.97), (int)(0.1336 * n * 1.03));
    assert_in_range(c2, (int)(0.0668 * n * 0.95), (int)(0.0668 * n * 1.05));
    lab_zipf_free(&z);
    /* alpha 0 is uniform */
    assert_int_equal(lab_zipf_init(&z, 4, 0.0), 0);
    assert_int_equal(lab_zipf_rank(&z, 0.24), 1);
    assert_int_equal(lab_zipf_rank(&z, 0.26), 2);
    assert_int_equal(lab_zipf_rank(&z, 0.76), 4);
    lab_zipf_free(&z);
    assert_int_equal(lab_zipf_init(&z, 0, 1.0), -1);
}

static void test_poisson(void **state)
{
    uint64_t s = 9;
    double sum = 0;
    int n = 100000;
    for (int i = 0; i < n; i++) sum += lab_poisson_gap(200.0, lab_rng_unit(&s));
    assert_true(fabs(sum / n - 0.005) < 0.0001); /* mean gap 1/rate */
    assert_true(lab_poisson_gap(10.0, 0.0) == 0.0);
    assert_true(isinf(lab_poisson_gap(0.0, 0.5)));
    assert_true(isfinite(lab_poisson_gap(10.0, 1.0)));
}

static void seq(enum lab_wl_kind k, uint64_t seed, char out[][96], int n)
{
    struct lab_wl w;
    assert_int_equal(lab_wl_init(&w, k, 500, 0.9, seed), 0);
    struct lab_wl_req r;
    for (int i = 0; i < n; i++) {
        assert_int_equal(lab_wl_next(&w, &r), 1);
        snprintf(out[i], 96, "%d%.90s", r.host, r.path);
    }
    lab_wl_free(&w);
}

static void test_same_seed_same_sequence(void **state)
{
    static char a[300][96], b[300][96], c[300][96];
    for (int k = LAB_WL_SHOPPER; k <= LAB_WL_ZIPF; k++) {
        seq(k, 42, a, 300);
        seq(k, 42, b, 300);
        seq(k, 43, c, 300);
        int diff = 0;
        for (int i = 0; i < 300; i++) {
            assert_string_equal(a[i], b[i]);
            diff += strcmp(a[i], c[i]) != 0;
        }
        assert_true(diff > 50);
    }
    /* Shopper: a page, then its medium and large images. */
    seq(LAB_WL_SHOPPER, 1, a, 3);
    unsigned id;
    assert_int_equal(sscanf(a[0], "1/p/%u", &id), 1);
    char want[96];
    snprintf(want, sizeof(want), "0/img/%u/medium.png", id);
    assert_string_equal(a[1], want);
    snprintf(want, sizeof(want), "0/img/%u/large.png", id);
    assert_string_equal(a[2], want);
}

static void put_og(unsigned char *p, uint32_t ts, uint64_t id, uint32_t size, int64_t next)
{
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(ts >> (8 * k));
    for (int k = 0; k < 8; k++) p[4 + k] = (unsigned char)(id >> (8 * k));
    for (int k = 0; k < 4; k++) p[12 + k] = (unsigned char)(size >> (8 * k));
    for (int k = 0; k < 8; k++) p[16 + k] = (unsigned char)((uint64_t)next >> (8 * k));
}

static void test_trace(void **state)
{
    unsigned char buf[24 * 3 + 5];
    put_og(buf, 1, 7, 1000, 3);
    put_og(buf + 24, 2, 1234567890123ull, 2000, -1);
    put_og(buf + 48, 3, 7, 1000, -1);
    struct lab_og_req q;
    assert_int_equal(lab_og_read(buf, sizeof(buf), 1, &q), 0);
    assert_true(q.id == 1234567890123ull && q.size == 2000 && q.next == -1 && q.ts == 2);
    assert_int_equal(lab_og_read(buf, sizeof(buf), 3, &q), -1); /* the 5 stray bytes are not a record */
    struct lab_wl w;
    assert_int_equal(lab_wl_init(&w, LAB_WL_TRACE, 100, 0, 1), 0);
    lab_wl_set_trace(&w, buf, sizeof(buf), 0);
    struct lab_wl_req r;
    assert_int_equal(lab_wl_next(&w, &r), 1);
    assert_string_equal(r.path, "/img/8/thumb.png");
    assert_int_equal(lab_wl_next(&w, &r), 1);
    assert_int_equal(lab_wl_next(&w, &r), 1);
    assert_string_equal(r.path, "/img/8/thumb.png"); /* same id, same URL */
    assert_int_equal(lab_wl_next(&w, &r), 0);
    lab_wl_set_trace(&w, buf, sizeof(buf), 1);
    for (int i = 0; i < 7; i++) assert_int_equal(lab_wl_next(&w, &r), 1);
    lab_wl_free(&w);
}

static void test_log_roundtrip(void **state)
{
    struct lab_logrec r = {.t = 12.3456, .latency_ms = 81.25, .phase = 'm', .status = 200, .bytes = 21196};
    strcpy(r.region, "eu");
    strcpy(r.edge, "us1");
    strcpy(r.cache, "hit");
    strcpy(r.tier, "disk");
    strcpy(r.url, "https://img.shop.test:8443/img/5/thumb.png");
    char line[512];
    size_t n = lab_log_format(&r, line, sizeof(line));
    assert_string_equal(line, "12.346\tm\teu\tus1\t200\t21196\t81.250\thit/disk\thttps://img.shop.test:8443/img/5/thumb.png\n");
    struct lab_logrec p;
    assert_int_equal(lab_log_parse(line, n, &p), 0);
    assert_string_equal(p.edge, "us1");
    assert_string_equal(p.cache, "hit");
    assert_string_equal(p.tier, "disk");
    assert_int_equal(p.status, 200);
    assert_true(p.bytes == 21196);
    assert_true(fabs(p.latency_ms - 81.25) < 1e-9);
    static const char *bad[] = {"", "1\tm\teu\n", "x\tm\teu\te\t200\t1\t1\thit\t/u", "1\tq\teu\te\t200\t1\t1\thit\t/u",
                                "1\tm\teu\te\t200\t1\t1\thit\t/u\textra", "1\tm\teu\te\t-3\t1\t1\thit\t/u",
                                "1\tm\t\te\t200\t1\t1\thit\t/u"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_int_equal(lab_log_parse(bad[i], strlen(bad[i]), &p), -1);
}

static void test_cache_status(void **state)
{
    char e[32], res[16], t[8];
#define CS(s) lab_cache_status_parse(s, strlen(s), e, sizeof(e), res, sizeof(res), t, sizeof(t))
    CS("cdn-edge-eu1; hit");
    assert_string_equal(e, "eu1");
    assert_string_equal(res, "hit");
    assert_string_equal(t, "ram");
    CS("cdn-edge-us1; hit; detail=disk");
    assert_string_equal(res, "hit");
    assert_string_equal(t, "disk");
    CS("cdn-edge-ap1; fwd=miss; fwd-status=200; stored");
    assert_string_equal(e, "ap1");
    assert_string_equal(res, "miss");
    assert_string_equal(t, "");
    CS("cdn-edge-shield; hit, cdn-edge-eu2; fwd=miss; stored");
    assert_string_equal(e, "eu2");
    assert_string_equal(res, "miss");
    assert_string_equal(t, "parent");
    CS("cdn-edge-shield; hit, cdn-edge-eu1; hit"); /* the child's copy keeps the parent's entry */
    assert_string_equal(e, "eu1");
    assert_string_equal(res, "hit");
    assert_string_equal(t, "ram");
    CS("cdn-edge-shield; fwd=miss; stored, cdn-edge-eu1; fwd=miss; stored");
    assert_string_equal(res, "miss");
    assert_string_equal(t, "");
    CS("other");
    assert_string_equal(e, "other");
    assert_string_equal(res, "");
#undef CS
}

/* The report's tiers: edge RAM, edge disk, a parent's cache, the origin; no answer is none. */
static void test_log_tier(void **state)
{
    struct lab_logrec r = {.status = 200};
    snprintf(r.cache, sizeof(r.cache), "hit");
    snprintf(r.tier, sizeof(r.tier), "ram");
    assert_int_equal(lab_log_tier(&r), 0);
    snprintf(r.tier, sizeof(r.tier), "disk");
    assert_int_equal(lab_log_tier(&r), 1);
    snprintf(r.cache, sizeof(r.cache), "miss");
    snprintf(r.tier, sizeof(r.tier), "parent");
    assert_int_equal(lab_log_tier(&r), 2);
    r.tier[0] = 0;
    assert_int_equal(lab_log_tier(&r), 3);
    r.status = 503;
    assert_int_equal(lab_log_tier(&r), -1);
    r.status = 0;
    assert_int_equal(lab_log_tier(&r), -1);
}

static void test_percentile(void **state)
{
    double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_true(lab_percentile(v, 10, 50) == 5);
    assert_true(lab_percentile(v, 10, 95) == 10);
    assert_true(lab_percentile(v, 10, 0) == 1);
    assert_true(lab_percentile(v, 0, 50) == 0);
}

/* --ramp: parsing, the rate between points, and thinning keeping the arrivals of each stretch */
static void test_ramp(void **state)
{
    (void)state;
    struct lab_ramp r;
    assert_int_equal(lab_ramp_parse("0:4,20:40,40:40,60:4", &r), 0);
    assert_int_equal(r.n, 4);
    assert_true(lab_ramp_rate(&r, 0) == 4);
    assert_true(fabs(lab_ramp_rate(&r, 10) - 22) < 1e-9);
    assert_true(lab_ramp_rate(&r, 30) == 40);
    assert_true(fabs(lab_ramp_rate(&r, 50) - 22) < 1e-9);
    assert_true(lab_ramp_rate(&r, 99) == 4);
    assert_true(lab_ramp_max(&r) == 40);
    static const char *const bad[] = {"", "5:4", "0:4,0:5", "0:4,10:-1", "0:0", "0:4;10:5", "x", "0:4,5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_int_equal(lab_ramp_parse(bad[i], &r), -1);
    /* thinning: about 10 s x 5/s in [0, 10) and 10 s x 50/s in [10, 20) */
    assert_int_equal(lab_ramp_parse("0:5,10:5,10.001:50", &r), 0);
    uint64_t rng = 7;
    double t = 0, m = lab_ramp_max(&r);
    unsigned lo = 0, hi = 0;
    while (t < 20) {
        t += lab_poisson_gap(m, lab_rng_unit(&rng));
        if (t < 20 && lab_rng_unit(&rng) * m < lab_ramp_rate(&r, t)) *(t < 10 ? &lo : &hi) += 1;
    }
    assert_in_range(lo, 30, 70);
    assert_in_range(hi, 430, 570);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zipf),  cmocka_unit_test(test_poisson), cmocka_unit_test(test_same_seed_same_sequence),
        cmocka_unit_test(test_trace), cmocka_unit_test(test_log_roundtrip), cmocka_unit_test(test_cache_status),
        cmocka_unit_test(test_percentile), cmocka_unit_test(test_log_tier), cmocka_unit_test(test_ramp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
