/* tests/unit/t_shop_image.c - deterministic PNG rendering and the bounded image cache. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "origin/shop/shop.h"

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void t_render(void **state)
{
    size_t prev = 0;
    for (int s = 0; s < SHOP_IMG_NSIZES; s++) {
        uint8_t *a, *b, *c;
        size_t la, lb, lc;
        assert_int_equal(shop_image_render(42, s, SHOP_IMG_PNG, &a, &la), 0);
        assert_int_equal(shop_image_render(42, s, SHOP_IMG_PNG, &b, &lb), 0);
        assert_int_equal(shop_image_render(43, s, SHOP_IMG_PNG, &c, &lc), 0);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la); /* same id, same bytes */
        assert_true(la != lc || memcmp(a, c, la) != 0);
        assert_memory_equal(a, "\x89PNG\r\n\x1a\n", 8);
        assert_memory_equal(a + 12, "IHDR", 4);
        assert_int_equal(be32(a + 16), shop_img_size_px[s]);
        assert_int_equal(be32(a + 20), shop_img_size_px[s]);
        assert_true(la > 2000);      /* size-realistic: kilobytes ... */
        assert_true(la < 800000);    /* ... to a few hundred KB */
        assert_true(la > prev);
        prev = la;
        free(a), free(b), free(c);
    }
    assert_int_equal(shop_img_size_parse("medium", 6), SHOP_IMG_MEDIUM);
    assert_int_equal(shop_img_size_parse("huge", 4), -1);
}

/* WebP: a RIFF/WEBP file, the same bytes twice, smaller than the PNG of the same size. */
static void t_render_webp(void **state)
{
    for (int s = 0; s < SHOP_IMG_NSIZES; s++) {
        uint8_t *a, *b, *png;
        size_t la, lb, lp;
        assert_int_equal(shop_image_render(42, s, SHOP_IMG_WEBP, &a, &la), 0);
        assert_int_equal(shop_image_render(42, s, SHOP_IMG_WEBP, &b, &lb), 0);
        assert_int_equal(shop_image_render(42, s, SHOP_IMG_PNG, &png, &lp), 0);
        assert_memory_equal(a, "RIFF", 4);
        assert_memory_equal(a + 8, "WEBP", 4);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        assert_true(la < lp);
        free(a), free(b), free(png);
    }
    assert_int_equal(shop_img_size_parse("640", 3), SHOP_IMG_W640);
    assert_int_equal(shop_img_size_px[SHOP_IMG_W1280], 1280);
}

/* AVIF: an ISO BMFF file with the avif brand, the same bytes twice, smaller than the PNG. */
static void t_render_avif(void **state)
{
    for (int s = SHOP_IMG_W160; s < SHOP_IMG_NSIZES; s += 2) { /* 160, 600, 1200: a spread, not all */
        uint8_t *a, *b, *png;
        size_t la, lb, lp;
        assert_int_equal(shop_image_render(7, s, SHOP_IMG_AVIF, &a, &la), 0);
        assert_int_equal(shop_image_render(7, s, SHOP_IMG_AVIF, &b, &lb), 0);
        assert_int_equal(shop_image_render(7, s, SHOP_IMG_PNG, &png, &lp), 0);
        assert_memory_equal(a + 4, "ftypavif", 8);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        assert_true(la < lp);
        free(a), free(b), free(png);
    }
}

/* Accept: what a browser, curl and odd fields give image/webp. */
static void t_accept(void **state)
{
#define Q(s) shop_accept_q(s, strlen(s), "image/webp")
    assert_int_equal(Q("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"), 1000);
    assert_int_equal(Q("*/*"), -1);
    assert_int_equal(Q("image/*"), -1);
    assert_int_equal(Q("image/png, image/webp;q=0"), 0);
    assert_int_equal(Q("image/WebP ; Q=0.5"), 500);
    assert_int_equal(Q("text/html;x=\"a,image/webp\", image/png"), -1);
    assert_int_equal(Q("image/webp;q=1.5"), -1);
    assert_int_equal(Q("image/webp;q=0.123"), 123);
    assert_int_equal(Q("image/webp;q="), -1);
    assert_int_equal(Q(""), -1);
    assert_int_equal(Q(",,;;,"), -1);
#undef Q
}

static void t_cache(void **state)
{
    shop_imgcache_t *c = shop_imgcache_new(200000);
    int hit;
    struct shop_image *a = shop_imgcache_get(c, 1, SHOP_IMG_THUMB, SHOP_IMG_PNG, &hit);
    assert_non_null(a);
    assert_false(hit);
    struct shop_image *b = shop_imgcache_get(c, 1, SHOP_IMG_THUMB, SHOP_IMG_PNG, &hit);
    assert_true(hit);
    assert_ptr_equal(a, b);
    assert_int_equal(strlen(a->etag), 18);
    assert_int_equal(a->etag[0], '"');
    /* fill past the bound: the cache stays under it, and references held stay valid */
    for (uint32_t id = 2; id < 40; id++)
        shop_image_release(shop_imgcache_get(c, id, SHOP_IMG_THUMB, SHOP_IMG_PNG, &hit));
    assert_true(shop_imgcache_bytes(c) <= 200000);
    assert_true(shop_imgcache_count(c) < 39);
    assert_memory_equal(a->data, "\x89PNG", 4);
    struct shop_image *again = shop_imgcache_get(c, 1, SHOP_IMG_THUMB, SHOP_IMG_PNG, &hit);
    assert_false(hit); /* evicted, rendered anew: same bytes, same ETag */
    assert_int_equal(again->len, a->len);
    assert_string_equal(again->etag, a->etag);
    shop_image_release(again);
    shop_image_release(a);
    shop_image_release(b);
    /* an image larger than the whole cache is served but not kept */
    struct shop_image *big = shop_imgcache_get(c, 5, SHOP_IMG_LARGE, SHOP_IMG_PNG, &hit);
    assert_non_null(big);
    assert_true(shop_imgcache_bytes(c) <= 200000);
    shop_image_release(big);
    shop_imgcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(t_render), cmocka_unit_test(t_cache), cmocka_unit_test(t_render_webp), cmocka_unit_test(t_render_avif), cmocka_unit_test(t_accept)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
