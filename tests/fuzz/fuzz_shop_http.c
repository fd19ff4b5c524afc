/* tests/fuzz/fuzz_shop_http.c - libFuzzer harness for the origin's header-value parsers
 * (origin/http.c): Range, If-None-Match/If-Range, HTTP dates, Cookie, query strings, cart cookie.
 * The first byte picks the parser; the rest is the header value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "origin/shop/shop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* a private copy with nothing after it, so ASan sees any read past the end */
    size_t len = size - 1;
    char *v = malloc(len ? len : 1);
    if (v == NULL)
        return 0;
    memcpy(v, data + 1, len);
    char out[64];
    uint64_t a, b;
    time_t t;
    struct shop_cart cart;
    switch (data[0] % 6) {
    case 0:
        if (shop_range_parse(v, len, 1000, &a, &b) == SHOP_RANGE_OK && (a > b || b >= 1000))
            abort();
        shop_range_parse(v, len, 0, &a, &b);
        break;
    case 1:
        shop_etag_match_weak(v, len, "\"0123456789abcdef\"", 18);
        shop_etag_match_weak(v, len, "W/\"x\"", 5);
        break;
    case 2:
        shop_etag_match_strong(v, len, "\"0123456789abcdef\"", 18);
        break;
    case 3:
        shop_http_date_parse(v, len, &t);
        break;
    case 4:
        shop_cookie_get(v, len, "sid", out, sizeof(out));
        shop_cookie_get(v, len, "cart", out, sizeof(out));
        shop_query_get(v, len, "q", out, sizeof(out));
        shop_query_get(v, len, "page", out, 1);
        if (shop_accept_q(v, len, "image/webp") > 1000)
            abort();
        if (shop_local_path_ok(v, len) && (v[0] != '/' || (len > 1 && (v[1] == '/' || v[1] == '\\'))))
            abort();
        break;
    case 5: {
        shop_cart_parse(v, len, &cart);
        if (cart.n > SHOP_CART_MAX)
            abort();
        char buf[16];
        shop_cart_format(&cart, buf, sizeof(buf));
        break;
    }
    }
    free(v);
    return 0;
}
