/* Unit tests for edge/vhost/vhost.c: host normalisation, vhost matching (exact, *.suffix, default) and
 * rendezvous parent selection (stable, spreads keys, losing a parent moves only its keys). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "edge/vhost/vhost.h"

static const char *norm(const char *a)
{
    static char out[EDGE_HOST_MAX];
    return edge_host_normalize(a, strlen(a), out, sizeof(out)) < 0 ? "ERR" : out;
}

static void normalize(void **state)
{
    assert_string_equal(norm("Img.Shop.TEST:8080"), "img.shop.test");
    assert_string_equal(norm("img.shop.test."), "img.shop.test");
    assert_string_equal(norm("h"), "h");
    assert_string_equal(norm("[::1]:80"), "[::1]");
    assert_string_equal(norm(""), "ERR");
    assert_string_equal(norm(":80"), "ERR");
    assert_string_equal(norm("a b"), "ERR");
    assert_string_equal(norm("a:8x"), "ERR");
    assert_string_equal(norm("[::1"), "ERR");
    assert_string_equal(norm("[::1]x"), "ERR");
    assert_int_equal(edge_vhost_pattern_ok("*"), 0);
    assert_int_equal(edge_vhost_pattern_ok("*.shop.test"), 0);
    assert_int_equal(edge_vhost_pattern_ok("img.shop.test"), 0);
    assert_int_equal(edge_vhost_pattern_ok("*shop.test"), -1);
    assert_int_equal(edge_vhost_pattern_ok("*."), -1);
    assert_int_equal(edge_vhost_pattern_ok("a.*.test"), -1);
    assert_int_equal(edge_vhost_pattern_ok("a.test:80"), -1);
}

static const char *auth(const char *a, unsigned dport)
{
    static char out[EDGE_HOST_MAX];
    return edge_authority_normalize(a, strlen(a), dport, out, sizeof(out)) < 0 ? "ERR" : out;
}

/* Host / :authority validation (RFC 3986 3.2.2-3.2.3): what keys a cache entry */
static void authority(void **state)
{
    static const struct { const char *in; unsigned dport; const char *out; } t[] = {
        {"WWW.Shop.Test", 80, "www.shop.test"},
        {"www.shop.test.", 80, "www.shop.test"},
        {"www.shop.test:80", 80, "www.shop.test"},
        {"www.shop.test:", 80, "www.shop.test"},
        {"www.shop.test:080", 80, "www.shop.test"},
        {"www.shop.test:443", 80, "www.shop.test:443"},
        {"www.shop.test:443", 443, "www.shop.test"},
        {"www.shop.test.:8080", 80, "www.shop.test:8080"},
        {"%77ww.shop.test", 80, "www.shop.test"},       /* an unreserved byte, decoded */
        {"a%2cb", 80, "a%2Cb"},                           /* others: hex uppercased */
        {"127.0.0.1:18080", 80, "127.0.0.1:18080"},
        {"[::1]:18080", 80, "[::1]:18080"},
        {"[::FFFF:127.0.0.1]", 80, "[::ffff:127.0.0.1]"},
        {"[v1.x:y]", 80, "[v1.x:y]"},
        {"a!$&'()*+,;=b", 80, "a!$&'()*+,;=b"},          /* sub-delims are reg-name */
        {"127.0.0.1:18080/p", 80, "ERR"},                 /* the poisoning case: a path in Host */
        {"a/b", 80, "ERR"}, {"a?b", 80, "ERR"}, {"a#b", 80, "ERR"}, {"a\\b", 80, "ERR"},
        {"user@host", 80, "ERR"}, {"a b", 80, "ERR"}, {"a\tb", 80, "ERR"}, {"a\"b", 80, "ERR"},
        {"", 80, "ERR"}, {":80", 80, "ERR"}, {".", 80, "ERR"}, {"a..b", 80, "ERR"}, {".a", 80, "ERR"}, {"T..", 80, "ERR"}, /* fuzz: "t." then "t" */
        {"a:8x", 80, "ERR"}, {"a:65536", 80, "ERR"}, {"a:0", 80, "ERR"}, {"a:123456", 80, "ERR"},
        {"a:1:2", 80, "ERR"}, {"a%2", 80, "ERR"}, {"a%zz", 80, "ERR"},
        {"[::1", 80, "ERR"}, {"[::1]x", 80, "ERR"}, {"[::g]", 80, "ERR"}, {"[1.2.3.4]", 80, "ERR"},
        {"[v.x]", 80, "ERR"}, {"[]", 80, "ERR"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        const char *got = auth(t[i].in, t[i].dport);
        if (strcmp(got, t[i].out) != 0)
            fail_msg("'%s' (port %u): got '%s', expected '%s'", t[i].in, t[i].dport, got, t[i].out);
    }
    /* a NUL inside the value is not a host byte, in a name or an IP literal (fuzz) */
    char out[EDGE_HOST_MAX];
    assert_int_equal(edge_authority_normalize("a\0b", 3, 80, out, sizeof(out)), -1);
    assert_int_equal(edge_authority_normalize("[v1.x:y\0\205]", 12, 80, out, sizeof(out)), -1);
    assert_int_equal(edge_authority_normalize("[::1\0zz]", 8, 80, out, sizeof(out)), -1);
    /* too long for the buffer: refused, never truncated */
    assert_int_equal(edge_authority_normalize("abcdef", 6, 80, out, 6), -1);
    assert_int_equal(edge_authority_normalize("abcdef", 6, 80, out, 7), 6);
}

static void match(void **state)
{
    struct edge_vhost img = {.pattern = "img"}, wild = {.pattern = "wild"}, deeper = {.pattern = "deeper"},
                      dflt = {.pattern = "*"};
    const struct edge_vhost *v[] = {&img, &wild, &deeper};
    const char *names[] = {"img.shop.test", "*.shop.test", "*.cdn.shop.test"};
    struct edge_vhosts vs = {v, names, 3, NULL};
#define M(h) edge_vhost_match(&vs, h, strlen(h))
    assert_ptr_equal(M("img.shop.test"), &img);
    assert_ptr_equal(M("IMG.shop.test:443"), &img);
    assert_ptr_equal(M("www.shop.test"), &wild);
    assert_ptr_equal(M("a.b.shop.test"), &wild);
    assert_ptr_equal(M("x.cdn.shop.test"), &deeper); /* the longest suffix wins */
    assert_ptr_equal(M("shop.test"), NULL);          /* not the bare suffix */
    assert_ptr_equal(M("evilshop.test"), NULL);
    assert_ptr_equal(M(""), NULL);
    vs.dflt = &dflt;
    assert_ptr_equal(M("other.test"), &dflt);
    assert_ptr_equal(M("bad host"), &dflt);
}

static void parents(void **state)
{
    struct edge_parent p[4];
    const char *urls[] = {"http://127.0.0.1:9001", "http://127.0.0.1:9002", "http://127.0.0.1:9003",
                          "http://127.0.0.1:9004"};
    for (int i = 0; i < 4; i++)
        edge_parent_init(&p[i], urls[i]);
    int share[4] = {0}, moved_wrongly = 0;
    for (uint64_t k = 1; k <= 4000; k++) {
        uint64_t id = k * 0x9e3779b97f4a7c15ULL;
        int a = edge_parent_pick(p, 4, id, 1000, 0);
        assert_true(a >= 0 && a < 4);
        assert_int_equal(edge_parent_pick(p, 4, id, 1000, 0), a); /* stable */
        share[a]++;
        /* without parent 3 (down), keys of parents 0..2 stay where they were */
        edge_parent_mark_down(&p[3], 1000, 500);
        int b = edge_parent_pick(p, 4, id, 1200, 0);
        if (a != 3 && b != a)
            moved_wrongly++;
        assert_int_not_equal(b, 3);
        /* up again after the retry time */
        assert_int_equal(edge_parent_pick(p, 4, id, 1500, 0), a);
        p[3].down_until_ms = 0;
        /* tried parents are skipped; all tried: -1 */
        assert_int_not_equal(edge_parent_pick(p, 4, id, 1000, 1u << a), a);
        assert_int_equal(edge_parent_pick(p, 4, id, 1000, 0xf), -1);
    }
    assert_int_equal(moved_wrongly, 0);
    for (int i = 0; i < 4; i++)
        assert_true(share[i] > 800 && share[i] < 1200); /* roughly even */
    assert_int_equal(edge_parent_pick(p, 0, 1, 0, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normalize),
        cmocka_unit_test(authority),
        cmocka_unit_test(match),
        cmocka_unit_test(parents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
