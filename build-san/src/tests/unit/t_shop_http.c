/* tests/unit/t_shop_http.c - the origin's parsers of request header values (origin/http.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "origin/shop/shop.h"

static enum shop_range_result R(const char *v, uint64_t size, uint64_t *a, uint64_t *b)
{
    *a = *b = 12345;
    return shop_range_parse(v, strlen(v), size, a, b);
}

static void t_range(void **state)
{
    uint64_t a, b;
    assert_int_equal(R("bytes=0-99", 1000, &a, &b), SHOP_RANGE_OK);
    assert_int_equal(a, 0);
    assert_int_equal(b, 99);
    assert_int_equal(R("bytes=500-", 1000, &a, &b), SHOP_RANGE_OK);
    assert_int_equal(a, 500);
    assert_int_equal(b, 999);
    assert_int_equal(R("bytes=-100", 1000, &a, &b), SHOP_RANGE_OK);
    assert_int_equal(a, 900);
    assert_int_equal(b, 999);
    assert_int_equal(R("bytes=-5000", 1000, &a, &b), SHOP_RANGE_OK); /* suffix longer than body */
    assert_int_equal(a, 0);
    assert_int_equal(R("bytes=990-5000", 1000, &a, &b), SHOP_RANGE_OK); /* clamped */
    assert_int_equal(b, 999);
    assert_int_equal(R("Bytes=1-1 ", 1000, &a, &b), SHOP_RANGE_OK);
    assert_int_equal(R("bytes=1000-", 1000, &a, &b), SHOP_RANGE_UNSAT);
    assert_int_equal(R("bytes=5000-6000", 1000, &a, &b), SHOP_RANGE_UNSAT);
    assert_int_equal(R("bytes=-0", 1000, &a, &b), SHOP_RANGE_UNSAT);
    /* ignored: malformed, other units, several ranges */
    assert_int_equal(R("bytes=9-1", 1000, &a, &b), SHOP_RANGE_NONE);
    assert_int_equal(R("bytes=-", 1000, &a, &b), SHOP_RANGE_NONE);
    assert_int_equal(R("items=0-1", 1000, &a, &b), SHOP_RANGE_NONE);
    assert_int_equal(R("bytes=0-1,5-6", 1000, &a, &b), SHOP_RANGE_NONE);
    assert_int_equal(R("bytes=0-1x", 1000, &a, &b), SHOP_RANGE_NONE);
    assert_int_equal(R("bytes=99999999999999999999999-", 1000, &a, &b), SHOP_RANGE_NONE);
    assert_int_equal(R("", 1000, &a, &b), SHOP_RANGE_NONE);
}

static int INM(const char *v, const char *etag) { return shop_etag_match_weak(v, strlen(v), etag, strlen(etag)); }

static void t_etag(void **state)
{
    assert_true(INM("\"abc\"", "\"abc\""));
    assert_true(INM("W/\"abc\"", "\"abc\""));      /* weak comparison */
    assert_true(INM("\"abc\"", "W/\"abc\""));
    assert_true(INM("\"x\", \"y\" ,W/\"abc\"", "\"abc\""));
    assert_true(INM(" * ", "\"abc\""));
    assert_true(INM(",,\"abc\"", "\"abc\""));
    assert_false(INM("\"abcd\"", "\"abc\""));
    assert_false(INM("abc", "\"abc\""));             /* unquoted: malformed */
    assert_false(INM("\"x\" garbage \"abc\"", "\"abc\""));
    assert_false(INM("", "\"abc\""));
    assert_false(INM("\"abc", "\"abc\""));
    const char *e = "\"abc\"";
    assert_true(shop_etag_match_strong("\"abc\"", 5, e, strlen(e)));
    assert_false(shop_etag_match_strong("W/\"abc\"", 7, e, strlen(e)));
    assert_false(shop_etag_match_strong("\"abc\"", 5, "W/\"abc\"", 7));
}

static void t_date(void **state)
{
    time_t t;
    const char *d[] = {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(shop_http_date_parse(d[i], strlen(d[i]), &t), 0);
        assert_int_equal((long long)t, 784111777LL);
    }
    char buf[30];
    shop_http_date_format(784111777, buf);
    assert_string_equal(buf, d[0]);
    shop_http_date_format(1700000000, buf);
    assert_int_equal(shop_http_date_parse(buf, strlen(buf), &t), 0);
    assert_int_equal((long long)t, 1700000000LL);
    const char *bad[] = {"", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 25:49:37 GMT", "garbage", "Sun, 06 Nov 1994 08:49:37 GMTx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(shop_http_date_parse(bad[i], strlen(bad[i]), &t), -1);
}

static void t_cookie_query(void **state)
{
    char out[64];
    const char *c = "a=1; sid=abc123 ;cart=\"1:2.3:4\"; empty=; flag";
    assert_int_equal(shop_cookie_get(c, strlen(c), "sid", out, sizeof(out)), 6);
    assert_string_equal(out, "abc123");
    assert_int_equal(shop_cookie_get(c, strlen(c), "cart", out, sizeof(out)), 7);
    assert_string_equal(out, "1:2.3:4");
    assert_int_equal(shop_cookie_get(c, strlen(c), "empty", out, sizeof(out)), 0);
    assert_int_equal(shop_cookie_get(c, strlen(c), "flag", out, sizeof(out)), 0);
    assert_int_equal(shop_cookie_get(c, strlen(c), "nope", out, sizeof(out)), -1);
    assert_int_equal(shop_cookie_get(c, strlen(c), "sid", out, 4), -1); /* too long for out */
    const char *q = "?page=2&q=red+shoe%21&x";
    assert_int_equal(shop_query_get(q, strlen(q), "q", out, sizeof(out)), 9);
    assert_string_equal(out, "red shoe!");
    assert_int_equal(shop_query_get(q, strlen(q), "page", out, sizeof(out)), 1);
    assert_int_equal(shop_query_get(q, strlen(q), "x", out, sizeof(out)), 0);
    assert_int_equal(shop_query_get(q, strlen(q), "p", out, sizeof(out)), -1);
    assert_int_equal(shop_query_get("q=%zz%4", 7, "q", out, sizeof(out)), 5); /* bad escapes kept */
    assert_string_equal(out, "%zz%4");
}

static void t_cart(void **state)
{
    struct shop_cart cart;
    const char *v = "1:2.3:4.bad.5:0.7:1x.9:999";
    assert_int_equal(shop_cart_parse(v, strlen(v), &cart), 3);
    char buf[256];
    assert_int_equal(shop_cart_format(&cart, buf, sizeof(buf)), strlen("1:2.3:4.9:999"));
    assert_string_equal(buf, "1:2.3:4.9:999");
    assert_int_equal(shop_cart_set(&cart, 3, 0), 0);
    assert_int_equal(shop_cart_set(&cart, 1, 5), 0);
    shop_cart_format(&cart, buf, sizeof(buf));
    assert_string_equal(buf, "1:5.9:999");
    for (uint32_t i = 100; i < 100 + SHOP_CART_MAX - 2; i++)
        assert_int_equal(shop_cart_set(&cart, i, 1), 0);
    assert_int_equal(shop_cart_set(&cart, 5000, 1), -1);
    assert_true(shop_cart_format(&cart, buf, 8) > 8); /* truncation reported */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_range), cmocka_unit_test(t_etag), cmocka_unit_test(t_date),
        cmocka_unit_test(t_cookie_query), cmocka_unit_test(t_cart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
