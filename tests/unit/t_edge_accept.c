/* tests/unit/t_edge_accept.c - Accept normalised on image routes (edge/http/accept.c): the
 * Accept strings real clients send, weights, odd fields, several fields, the offered set. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "edge/http/accept.h"

#define CHROME "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
#define FIREFOX "image/avif,image/webp,*/*"
#define SAFARI_OLD "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"

static enum edge_imgfmt pick(const char *accept, unsigned offered, int *present)
{
    struct edge_hdr h = {"accept", 6, accept, accept ? strlen(accept) : 0};
    return edge_accept_image(&h, accept ? 1 : 0, offered, present);
}

static void t_q(void **state)
{
    (void)state;
#define Q(s, t) edge_accept_q(s, strlen(s), t, strlen(t))
    assert_int_equal(Q(CHROME, "image/webp"), 1000);
    assert_int_equal(Q(CHROME, "image/png"), -1); /* a wildcard does not name it */
    assert_int_equal(Q("image/png;q=0.5", "image/png"), 500);
    assert_int_equal(Q("image/png;q=0.05", "image/png"), 50);
    assert_int_equal(Q("image/png; Q=1.000", "image/png"), 1000);
    assert_int_equal(Q("image/png;q=1.001", "image/png"), -1);
    assert_int_equal(Q("image/png;q=2", "image/png"), -1);
    assert_int_equal(Q("image/png;q=0.0001", "image/png"), -1);
    assert_int_equal(Q("image/png;q=", "image/png"), -1);
    assert_int_equal(Q("IMAGE/PNG", "image/png"), 1000);
    assert_int_equal(Q("  image/png  ;  q=0.3 , x/y", "image/png"), 300);
    assert_int_equal(Q("text/plain;f=\"a, image/png\"", "image/png"), -1); /* inside a quoted value */
    assert_int_equal(Q("text/plain;f=\"a\\\", image/png\", image/png;q=0.2", "image/png"), 200);
    assert_int_equal(Q("image/pngx, image/pn", "image/png"), -1);
    assert_int_equal(Q("", "image/png"), -1);
    assert_int_equal(Q(",,, ;;; ,", "image/png"), -1);
    assert_int_equal(edge_accept_q(NULL, 0, "image/png", 9), -1);
#undef Q
}

static void t_pick(void **state)
{
    (void)state;
    int present;
    unsigned d = EDGE_IMGFMT_DEFAULT, all = 7;
    assert_int_equal(pick(CHROME, d, &present), EDGE_IMGFMT_WEBP);
    assert_true(present);
    assert_int_equal(pick(FIREFOX, d, &present), EDGE_IMGFMT_WEBP);
    assert_int_equal(pick(SAFARI_OLD, d, &present), EDGE_IMGFMT_PNG);
    assert_int_equal(pick("*/*", d, &present), EDGE_IMGFMT_PNG);
    assert_int_equal(pick("image/webp;q=0, */*", d, &present), EDGE_IMGFMT_PNG); /* refused by name */
    assert_int_equal(pick("image/webp;q=0.001", d, &present), EDGE_IMGFMT_WEBP);
    assert_int_equal(pick(CHROME, all, &present), EDGE_IMGFMT_AVIF);
    assert_int_equal(pick("image/avif;q=0, image/webp", all, &present), EDGE_IMGFMT_WEBP);
    assert_int_equal(pick(CHROME, 1u << EDGE_IMGFMT_PNG, &present), EDGE_IMGFMT_PNG); /* PNG only */
    assert_int_equal(pick(NULL, d, &present), EDGE_IMGFMT_PNG);
    assert_false(present);
    /* several Accept fields are one list */
    struct edge_hdr h[3] = {{"accept", 6, "image/png", 9}, {"x-a", 3, "image/webp", 10}, {"accept", 6, "image/webp", 10}};
    assert_int_equal(edge_accept_image(h, 3, d, &present), EDGE_IMGFMT_WEBP);
    assert_int_equal(edge_imgfmt_fallback(d), EDGE_IMGFMT_PNG);
    assert_int_equal(edge_imgfmt_fallback((1u << EDGE_IMGFMT_AVIF) | (1u << EDGE_IMGFMT_WEBP)), EDGE_IMGFMT_WEBP);
}

/* Every browser Accept string maps to one of two values: two stored variants, not one per string. */
static void t_variants(void **state)
{
    (void)state;
    static const char *const seen[] = {CHROME, FIREFOX, SAFARI_OLD, "*/*", "image/webp,image/*,*/*;q=0.8",
                                       "image/avif,image/webp,image/apng,*/*;q=0.8", "image/*", "text/html"};
    int n[EDGE_IMGFMT_N] = {0}, present;
    for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
        n[pick(seen[i], EDGE_IMGFMT_DEFAULT, &present)]++;
    assert_int_equal(n[EDGE_IMGFMT_AVIF], 0);
    assert_int_equal(n[EDGE_IMGFMT_WEBP], 4);
    assert_int_equal(n[EDGE_IMGFMT_PNG], 4);
}

static void t_paths(void **state)
{
    (void)state;
    static const char *const p[] = {"/img/", "/media/i/", NULL};
    assert_true(edge_image_path(p, "/img/42/320", 11));
    assert_true(edge_image_path(p, "/media/i/x", 10));
    assert_false(edge_image_path(p, "/im", 3));
    assert_false(edge_image_path(p, "/p/42", 5));
    assert_false(edge_image_path(NULL, "/img/1", 6));
    assert_int_equal(edge_imgfmt_parse("WebP"), EDGE_IMGFMT_WEBP);
    assert_int_equal(edge_imgfmt_parse("gif"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(t_q), cmocka_unit_test(t_pick), cmocka_unit_test(t_variants),
                                       cmocka_unit_test(t_paths)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
