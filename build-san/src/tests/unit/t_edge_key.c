/* Unit tests for edge/http/cache_key.c (primary key normalisation, Vary lists and variant keys) and
 * edge/http/range.c (Range against a stored size). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "edge/http/cache_key.h"
#include "edge/http/range.h"

static const char *key(const struct edge_key_conf *c, const char *scheme, const char *host,
                       const char *target)
{
    static char out[1024];
    if (edge_key_primary(c, scheme, host, strlen(host), target, strlen(target), out, sizeof(out)) < 0)
        return "ERR";
    return out;
}

static void primary(void **state)
{
    struct edge_key_conf c = {0};
    assert_string_equal(key(&c, "http", "Img.Shop.TEST:80", "/a/b?x=1"), "http://img.shop.test/a/b?x=1");
    assert_string_equal(key(&c, "https", "img.shop.test:443", "/"), "https://img.shop.test/");
    assert_string_equal(key(&c, "http", "img.shop.test:8080", "/"), "http://img.shop.test:8080/");
    assert_string_equal(key(&c, "http", "h.", "/"), "http://h/");
    /* percent-encoding: unreserved decoded, others uppercased, invalid kept */
    assert_string_equal(key(&c, "http", "h", "/%7euser/%2f%41%zz"), "http://h/~user/%2FA%zz");
    /* dot segments */
    assert_string_equal(key(&c, "http", "h", "/a/./b/../c"), "http://h/a/c");
    assert_string_equal(key(&c, "http", "h", "/../../x"), "http://h/x");
    assert_string_equal(key(&c, "http", "h", "/a/b/.."), "http://h/a/");
    assert_string_equal(key(&c, "http", "h", "/a//b"), "http://h/a//b"); /* not equivalent */
    assert_string_equal(key(&c, "http", "h", "/a#frag"), "http://h/a");
    assert_string_equal(key(&c, "http", "h", "*"), "ERR");
    /* query kept as is by default (order matters to origins) */
    assert_string_equal(key(&c, "http", "h", "/p?b=2&a=1&&"), "http://h/p?b=2&a=1");
    /* drop and sort */
    const char *drop[] = {"utm_*", "fbclid", NULL};
    c.drop_params = drop;
    c.sort_params = 1;
    assert_string_equal(key(&c, "http", "h", "/p?utm_source=x&b=2&fbclid=9&a=1&a=0&utm_x"),
                        "http://h/p?a=0&a=1&b=2");
    assert_string_equal(key(&c, "http", "h", "/p?utm_source=x"), "http://h/p");
    assert_string_equal(key(&c, "http", "h", "/p?fbclidx=1"), "http://h/p?fbclidx=1");
    c.ignore_query = 1;
    assert_string_equal(key(&c, "http", "h", "/p?z=1"), "http://h/p");
    /* never truncated */
    char small[16];
    assert_int_equal(edge_key_primary(&c, "http", "h", 1, "/0123456789abcdef", 17, small, sizeof(small)), -1);
}

static void vary(void **state)
{
    char out[256];
    struct edge_hdr h[3] = {
        {"Vary", 4, "Accept-Encoding, accept-language", 32},
        {"vary", 4, " User-Agent ,Accept-Encoding", 28},
    };
    assert_int_equal(edge_vary_normalize(h, 2, out, sizeof(out)), 42);
    assert_string_equal(out, "accept-encoding,accept-language,user-agent");
    assert_int_equal(edge_vary_normalize(h, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    /* "*" anywhere in the list: never matches */
    h[2] = (struct edge_hdr){"Vary", 4, "Cookie, *", 9};
    assert_int_equal(edge_vary_normalize(h, 3, out, sizeof(out)), -1);

    const char *v = "accept-encoding,accept-language";
    struct edge_hdr r1[] = {{"Accept-Encoding", 15, "GZIP,  br", 9}, {"accept-language", 15, "en-US;  q=1", 11}};
    struct edge_hdr r2[] = {{"accept-encoding", 15, "br, gzip", 8}, {"Accept-Language", 15, "en-US ;q=1", 10}};
    struct edge_hdr r3[] = {{"accept-encoding", 15, "br, gzip", 8}};
    struct edge_hdr r4[] = {{"accept-encoding", 15, "br, gzip", 8}, {"Accept-Language", 15, "", 0}};
    char k1[256], k2[256], k3[256], k4[256];
    assert_true(edge_vary_key(v, strlen(v), r1, 2, k1, sizeof(k1)) > 0);
    assert_true(edge_vary_key(v, strlen(v), r2, 2, k2, sizeof(k2)) > 0);
    assert_true(edge_vary_key(v, strlen(v), r3, 1, k3, sizeof(k3)) > 0);
    assert_true(edge_vary_key(v, strlen(v), r4, 2, k4, sizeof(k4)) > 0);
    assert_string_equal(k1, "accept-encoding=br, gzip\naccept-language=en-us;q=1\n");
    assert_string_equal(k1, k2);          /* same after normalisation */
    assert_string_not_equal(k1, k3);      /* absent differs */
    assert_string_not_equal(k3, k4);      /* absent differs from empty */
    /* a header sent twice is one list */
    struct edge_hdr r5[] = {{"accept-encoding", 15, "gzip", 4}, {"accept-encoding", 15, "br", 2},
                            {"Accept-Language", 15, "en-US;q=1", 9}};
    char k5[256];
    assert_true(edge_vary_key(v, strlen(v), r5, 3, k5, sizeof(k5)) > 0);
    assert_string_equal(k5, k1);
    assert_int_equal(edge_vary_key(v, strlen(v), r1, 2, k5, 10), -1);
    /* language tags are case-insensitive, but their order is kept (an origin may break ties by it) */
    struct edge_hdr l1[] = {{"Accept-Language", 15, "en, de", 6}}, l2[] = {{"Accept-Language", 15, "eN, De", 6}},
                    l3[] = {{"Accept-Language", 15, "de, en", 6}};
    const char *vl = "accept-language";
    char a1[64], a2[64], a3[64];
    assert_true(edge_vary_key(vl, strlen(vl), l1, 1, a1, sizeof(a1)) > 0);
    assert_true(edge_vary_key(vl, strlen(vl), l2, 1, a2, sizeof(a2)) > 0);
    assert_true(edge_vary_key(vl, strlen(vl), l3, 1, a3, sizeof(a3)) > 0);
    assert_string_equal(a1, a2);
    assert_string_not_equal(a1, a3);
}

struct range_case {
    const char *h;
    uint64_t size;
    int want;
    uint64_t first, last;
};

static void ranges(void **state)
{
    static const struct range_case cases[] = {
        {"bytes=0-99", 1000, EDGE_RANGE_OK, 0, 99},
        {"bytes=0-", 1000, EDGE_RANGE_OK, 0, 999},
        {"bytes=990-2000", 1000, EDGE_RANGE_OK, 990, 999},
        {"bytes=-10", 1000, EDGE_RANGE_OK, 990, 999},
        {"bytes=-2000", 1000, EDGE_RANGE_OK, 0, 999},
        {"Bytes = 5-5", 1000, EDGE_RANGE_OK, 5, 5},
        {"bytes=1000-", 1000, EDGE_RANGE_UNSAT, 0, 0},
        {"bytes=-0", 1000, EDGE_RANGE_UNSAT, 0, 0},
        {"bytes=0-0", 0, EDGE_RANGE_UNSAT, 0, 0},
        {"bytes=-5", 0, EDGE_RANGE_UNSAT, 0, 0},
        {"bytes=2000-3000, 4000-", 1000, EDGE_RANGE_UNSAT, 0, 0},
        /* several ranges: answered with the whole object */
        {"bytes=0-1, 5-6", 1000, EDGE_RANGE_NONE, 0, 0},
        {"bytes=0-1, 2000-", 1000, EDGE_RANGE_NONE, 0, 0},
        /* syntax errors and other units: ignored */
        {"bytes=5-1", 1000, EDGE_RANGE_NONE, 0, 0},
        {"bytes=a-b", 1000, EDGE_RANGE_NONE, 0, 0},
        {"bytes=", 1000, EDGE_RANGE_NONE, 0, 0},
        {"bytes=-", 1000, EDGE_RANGE_NONE, 0, 0},
        {"items=0-5", 1000, EDGE_RANGE_NONE, 0, 0},
        {"bytes 0-5", 1000, EDGE_RANGE_NONE, 0, 0},
        {"bytes=0-5x", 1000, EDGE_RANGE_NONE, 0, 0},
        {"bytes=99999999999999999999999-", 1000, EDGE_RANGE_UNSAT, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t f = 0, l = 0;
        int got = edge_range_parse(cases[i].h, strlen(cases[i].h), cases[i].size, &f, &l);
        if (got != cases[i].want || (got == EDGE_RANGE_OK && (f != cases[i].first || l != cases[i].last)))
            fail_msg("case %zu (%s / %llu): got %d %llu-%llu", i, cases[i].h,
                     (unsigned long long)cases[i].size, got, (unsigned long long)f, (unsigned long long)l);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(primary),
        cmocka_unit_test(vary),
        cmocka_unit_test(ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
