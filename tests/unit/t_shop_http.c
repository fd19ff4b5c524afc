/* tests/unit/t_shop_http.c - the origin's parsers of request header values (origin/http.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <stdio.h>
#include "origin/shop/shop.h"

#define H2O_LIT(s) (s), sizeof(s) - 1

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

static void t_local_path(void **state)
{
    assert_true(shop_local_path_ok(H2O_LIT("/cart")));
    assert_true(shop_local_path_ok(H2O_LIT("/p/42?x=1")));
    assert_true(shop_local_path_ok(H2O_LIT("/")));
    assert_false(shop_local_path_ok(H2O_LIT("//evil.test/")));
    assert_false(shop_local_path_ok(H2O_LIT("/\\evil.test")));
    assert_false(shop_local_path_ok(H2O_LIT("https://evil.test/")));
    assert_false(shop_local_path_ok(H2O_LIT("/a\r\nSet-Cookie: x")));
    assert_false(shop_local_path_ok(H2O_LIT("/a b")));
    assert_false(shop_local_path_ok(H2O_LIT("")));
}

/* The stylesheet and script: hashed names, found by their name only; pages link them. */
static void t_assets_pages(void **state)
{
    const struct shop_asset *css = shop_asset_get(SHOP_ASSET_CSS), *js = shop_asset_get(SHOP_ASSET_JS);
    char want[64];
    snprintf(want, sizeof(want), "/assets/shop.%016llx.css", (unsigned long long)shop_hash64(css->body, css->len));
    assert_string_equal(css->path, want);
    assert_true(strncmp(js->path, "/assets/shop.", 13) == 0 && strstr(js->path, ".js") != NULL);
    assert_ptr_equal(shop_asset_find(css->path, strlen(css->path)), css);
    assert_ptr_equal(shop_asset_find(js->path, strlen(js->path)), js);
    assert_null(shop_asset_find(H2O_LIT("/assets/shop.0000000000000000.css")));
    struct shop_site site = {"https://img.shop.test", "t"};
    struct shop_product p = {.id = 42, .name = "Lamp <42>", .price_cents = 1999, .stock = 3, .description = "A lamp."};
    struct shop_buf b;
    shop_buf_init(&b, 1 << 20);
    shop_page_product(&b, &site, &p);
    assert_non_null(strstr(b.p, css->path));
    assert_non_null(strstr(b.p, js->path));
    assert_non_null(strstr(b.p, "<form class=\"buy\" method=\"post\" action=\"/cart\">"));
    assert_non_null(strstr(b.p, "Lamp &lt;42&gt;"));
    shop_buf_free(&b);
    shop_buf_init(&b, 1 << 20);
    shop_page_search(&b, &site, "<x>", &p, 1);
    assert_non_null(strstr(b.p, "&ldquo;&lt;x&gt;&rdquo; (1)"));
    assert_non_null(strstr(b.p, "href=\"/p/42\""));
    shop_buf_free(&b);
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
        cmocka_unit_test(t_cookie_query), cmocka_unit_test(t_cart), cmocka_unit_test(t_local_path), cmocka_unit_test(t_assets_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
