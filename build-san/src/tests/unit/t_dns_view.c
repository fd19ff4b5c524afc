/* Unit tests for dns/view.c and dns/rrl.c: the coverage-zone trie (longest prefix and the scope it
 * reports), edge selection as a pure function of region, health and now (tables, no sleeps),
 * rise/fall health accounting, zone building errors, and the RRL token bucket with slips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns/rrl.h"
#include "dns/view.h"

static void geo_longest_prefix_and_scope(void **s)
{
    char err[256];
    struct cdns_view *v = cdns_view_new();
    int eu = cdns_view_add_region(v, "eu", err, sizeof(err));
    int us = cdns_view_add_region(v, "us", err, sizeof(err));
    int ap = cdns_view_add_region(v, "ap", err, sizeof(err));
    assert_int_equal(cdns_view_add_subnet(v, eu, "10.0.0.0/8", err, sizeof(err)), 0);
    assert_int_equal(cdns_view_add_subnet(v, us, "10.2.0.0/16", err, sizeof(err)), 0);
    assert_int_equal(cdns_view_add_subnet(v, ap, "10.2.3.0/24", err, sizeof(err)), 0);
    assert_int_equal(cdns_view_add_subnet(v, us, "2001:db8::/32", err, sizeof(err)), 0);
    assert_int_equal(cdns_view_add_subnet(v, eu, "2001:db8:1::/48", err, sizeof(err)), 0);
    /* errors */
    assert_int_equal(cdns_view_add_subnet(v, eu, "10.2.3.1/24", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "host bits"));
    assert_int_equal(cdns_view_add_subnet(v, eu, "10.0.0.0/33", err, sizeof(err)), -1);
    assert_int_equal(cdns_view_add_subnet(v, eu, "10.2.3.0/24", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already in region 'ap'"));
    assert_int_equal(cdns_view_add_subnet(v, eu, "nonsense", err, sizeof(err)), -1);

    struct { const char *addr; unsigned bits; int region; unsigned scope; } t[] = {
        {"10.2.3.4", 32, ap, 24},      /* deepest match, nothing below it */
        {"10.2.4.4", 32, us, 22},      /* /16 match; bit 21 (0-based) differs from 10.2.3.0 */
        {"10.9.0.1", 32, eu, 13},      /* /8 match, left the /16 branch at bit 12 */
        {"11.0.0.1", 32, -1, 8},       /* no match, 11/8 differs from 10/8 in bit 7 */
        {"10.2.3.0", 16, us, 16},      /* ECS /16: only 16 bits may be looked at */
        {"0.0.0.0", 0, -1, 0},         /* ECS /0: nothing known, scope 0 */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint8_t a[4];
        unsigned scope = 99;
        inet_pton(AF_INET, t[i].addr, a);
        int r = cdns_geo_lookup(v, 1, a, t[i].bits, &scope);
        if (r != t[i].region || scope != t[i].scope)
            fail_msg("%s/%u: region %d scope %u, expected %d %u", t[i].addr, t[i].bits, r, scope, t[i].region, t[i].scope);
    }
    uint8_t a6[16];
    unsigned scope;
    inet_pton(AF_INET6, "2001:db8:1::5", a6);
    assert_int_equal(cdns_geo_lookup(v, 2, a6, 128, &scope), eu);
    assert_int_equal(scope, 48);
    inet_pton(AF_INET6, "2001:db8:2::5", a6);
    assert_int_equal(cdns_geo_lookup(v, 2, a6, 56, &scope), us);
    assert_int_equal(scope, 47);
    cdns_view_free(v);
}

/* three regions in a line: eu -10- us -10- ap (eu-ap 20); one edge each, eu has two */
static struct cdns_view *topo(void)
{
    char err[256];
    struct cdns_view *v = cdns_view_new();
    int eu = cdns_view_add_region(v, "eu", err, sizeof(err));
    int us = cdns_view_add_region(v, "us", err, sizeof(err));
    int ap = cdns_view_add_region(v, "ap", err, sizeof(err));
    cdns_view_set_distance(v, eu, us, 10);
    cdns_view_set_distance(v, us, ap, 10);
    cdns_view_set_distance(v, eu, ap, 20);
    const char *a0[] = {"127.0.20.1"}, *a1[] = {"127.0.20.2", "::2"}, *a2[] = {"127.0.20.3"}, *a3[] = {"127.0.20.4"};
    assert_int_equal(cdns_view_add_edge(v, "ap1", ap, a2, 1, "http://x/", err, sizeof(err)), 0);
    assert_int_equal(cdns_view_add_edge(v, "us1", us, a1, 2, "http://x/", err, sizeof(err)), 1);
    assert_int_equal(cdns_view_add_edge(v, "eu1", eu, a0, 1, "http://x/", err, sizeof(err)), 2);
    assert_int_equal(cdns_view_add_edge(v, "eu2", eu, a3, 1, "http://x/", err, sizeof(err)), 3);
    assert_int_equal(cdns_view_add_edge(v, "eu2", eu, a3, 1, NULL, err, sizeof(err)), -1);
    v->set.doubt_ms = 1000;
    assert_int_equal(cdns_view_finish(v, err, sizeof(err)), 0);
    return v;
}

#define UP {.rf.up = 1}
#define DOWN {.rf.up = 0}
#define DOUBT {.rf.up = 1, .doubt = 1}

static void select_table(void **s)
{
    struct cdns_view *v = topo();
    struct cdns_cdn c1 = {.ttl = 30, .doubt_ttl = 5, .count = 1}, c2 = {.ttl = 30, .doubt_ttl = 5, .count = 2};
    struct {
        const char *what;
        const struct cdns_cdn *cdn;
        int region, family;
        struct cdns_health h[4];  /* ap1 us1 eu1 eu2 */
        uint64_t now;
        int n, e0, e1;
        uint32_t ttl;
        int fallback;
    } t[] = {
        {"eu, all up", &c1, 0, 1, {UP, UP, UP, UP}, 5000, 1, 2, -1, 30, 0},
        {"eu, two answers: both eu edges", &c2, 0, 1, {UP, UP, UP, UP}, 5000, 2, 2, 3, 30, 0},
        {"eu1 down -> eu2", &c1, 0, 1, {UP, UP, DOWN, UP}, 5000, 1, 3, -1, 30, 0},
        {"eu down -> us (nearest)", &c1, 0, 1, {UP, UP, DOWN, DOWN}, 5000, 1, 1, -1, 30, 0},
        {"ap: us before eu", &c2, 2, 1, {DOWN, UP, UP, UP}, 5000, 2, 1, 2, 30, 0},
        {"in doubt lowers the TTL", &c1, 0, 1, {UP, UP, DOUBT, UP}, 5000, 1, 2, -1, 5, 0},
        {"a skipped edge in doubt lowers it too", &c1, 0, 1, {UP, UP, {.rf.up = 0, .doubt = 1}, UP}, 5000, 1, 3, -1, 5, 0},
        {"recent change lowers it", &c1, 1, 1, {UP, {.rf.up = 1, .changed_ms = 4500}, UP, UP}, 5000, 1, 1, -1, 5, 0},
        {"old change does not", &c1, 1, 1, {UP, {.rf.up = 1, .changed_ms = 3000}, UP, UP}, 5000, 1, 1, -1, 30, 0},
        {"all down: fall back to all, nearest first", &c1, 1, 1, {DOWN, DOWN, DOWN, DOWN}, 5000, 4, 1, 0, 5, 1},
        {"AAAA: only us1 has IPv6", &c1, 0, 2, {UP, UP, UP, UP}, 5000, 1, 1, -1, 30, 0},
        {"unknown region -> default (eu)", &c1, -1, 1, {UP, UP, UP, UP}, 5000, 1, 2, -1, 30, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct cdns_pick p;
        v->default_region = 0;
        cdns_select(v, t[i].cdn, t[i].region, t[i].family, t[i].h, t[i].now, &p);
        int e0 = p.n > 0 ? p.edge[0] : -1, e1 = p.n > 1 ? p.edge[1] : -1;
        if (p.n != t[i].n || e0 != t[i].e0 || (t[i].e1 >= 0 && e1 != t[i].e1) || p.ttl != t[i].ttl ||
            p.fallback != t[i].fallback)
            fail_msg("%s: n=%d e0=%d e1=%d ttl=%u fb=%d", t[i].what, p.n, e0, e1, p.ttl, p.fallback);
    }
    cdns_view_free(v);
}

static void health_rise_fall(void **s)
{
    struct cdns_health h = {.rf.up = 1, .doubt = 1};
    /* first success clears the doubt */
    assert_int_equal(cdns_health_step(&h, 1, 100, 2, 3), 0);
    assert_true(h.rf.up);
    assert_false(h.doubt);
    /* two failures: still up but in doubt; the third takes it down */
    assert_int_equal(cdns_health_step(&h, 0, 200, 2, 3), 0);
    assert_true(h.doubt);
    assert_int_equal(cdns_health_step(&h, 0, 300, 2, 3), 0);
    assert_int_equal(cdns_health_step(&h, 0, 400, 2, 3), 1);
    assert_false(h.rf.up);
    assert_int_equal(h.changed_ms, 400);
    assert_false(h.doubt);
    /* one success: down, in doubt; a failure resets; two in a row bring it up */
    cdns_health_step(&h, 1, 500, 2, 3);
    assert_true(h.doubt);
    cdns_health_step(&h, 0, 600, 2, 3);
    assert_false(h.rf.up);
    cdns_health_step(&h, 1, 700, 2, 3);
    assert_int_equal(cdns_health_step(&h, 1, 800, 2, 3), 1);
    assert_true(h.rf.up);
    assert_int_equal(h.changed_ms, 800);
    /* pack/unpack round trip */
    struct cdns_health u;
    cdns_health_unpack(cdns_health_pack(&h), &u);
    assert_int_equal(u.rf.up, h.rf.up);
    assert_int_equal(u.doubt, h.doubt);
    assert_int_equal(u.changed_ms, h.changed_ms);
    assert_int_equal(u.rf.ok_run, h.rf.ok_run);
    /* runs stop at 255 (8 bits in the word); a down edge read back from its word still needs
     * `rise` passes (the word has no "never checked" state: every edge starts up) */
    for (int i = 0; i < 300; i++) cdns_health_step(&h, 0, 900 + (uint64_t)i, 2, 3);
    assert_int_equal(h.rf.fail_run, 255);
    memset(&u, 0, sizeof(u));  /* unpack sets every field */
    cdns_health_unpack(cdns_health_pack(&h), &u);
    assert_int_equal(u.rf.fail_run, 255);
    assert_false(u.rf.up);
    assert_int_equal(cdns_health_step(&u, 1, 2000, 2, 3), 0);
    assert_false(u.rf.up);
    assert_int_equal(cdns_health_step(&u, 1, 2100, 2, 3), 1);
    assert_true(u.rf.up);
}

static void zone_errors(void **s)
{
    char err[256];
    struct cdns_view *v = cdns_view_new();
    struct cdns_zone *z = cdns_view_add_zone(v, "shop.test", err, sizeof(err));
    assert_null(cdns_view_add_zone(v, "SHOP.test.", err, sizeof(err)));
    struct { const char *rec; const char *msg; } bad[] = {
        {"www A 300.1.1.1", "IPv4"},
        {"www AAAA 1.2.3.4", "IPv6"},
        {"www SRV 1 2 3 x", "unsupported"},
        {"www.example.org. A 1.2.3.4", "outside"},
        {"www 99999999999 A 1.2.3.4", "TTL"},
        {"sub SOA a b 1 2 3 4 5", "apex"},
        {"www", "expected"},
        {"t TXT \"unterminated", "expected"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        if (cdns_zone_add_text(v, z, bad[i].rec, 60, err, sizeof(err)) != -1 || !strstr(err, bad[i].msg))
            fail_msg("'%s' gave '%s'", bad[i].rec, err);
    }
    /* no SOA */
    assert_int_equal(cdns_view_finish(v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no SOA"));
    cdns_view_free(v);

    v = cdns_view_new();
    z = cdns_view_add_zone(v, "shop.test", err, sizeof(err));
    assert_int_equal(cdns_zone_add_text(v, z, "@ SOA ns1 hm 1 2 3 4 5", 60, err, sizeof(err)), 0);
    assert_int_equal(cdns_zone_add_text(v, z, "x CNAME www", 60, err, sizeof(err)), 0);
    assert_int_equal(cdns_zone_add_text(v, z, "x A 1.2.3.4", 60, err, sizeof(err)), 0);
    assert_int_equal(cdns_view_finish(v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "CNAME"));
    cdns_view_free(v);
}

static void rrl_bucket_and_slip(void **s)
{
    struct cdns_settings set;
    cdns_view_default_settings(&set);
    set.rrl_rate = 5;
    set.rrl_burst = 5;
    set.rrl_slip = 2;
    struct cdns_rrl *r = cdns_rrl_new(1024);
    uint8_t a[4] = {127, 0, 1, 5}, same24[4] = {127, 0, 1, 77}, other[4] = {127, 0, 2, 5};
    for (int i = 0; i < 5; i++) assert_int_equal(cdns_rrl_check(r, &set, 1, a, 1000), CDNS_RRL_PASS);
    /* the same /24 shares the bucket: over the limit, every 2nd is a slip */
    assert_int_equal(cdns_rrl_check(r, &set, 1, same24, 1000), CDNS_RRL_DROP);
    assert_int_equal(cdns_rrl_check(r, &set, 1, a, 1000), CDNS_RRL_SLIP);
    assert_int_equal(cdns_rrl_check(r, &set, 1, a, 1000), CDNS_RRL_DROP);
    assert_int_equal(cdns_rrl_check(r, &set, 1, a, 1000), CDNS_RRL_SLIP);
    /* another subnet is untouched */
    assert_int_equal(cdns_rrl_check(r, &set, 1, other, 1000), CDNS_RRL_PASS);
    /* 200 ms later one token (5/s) is back */
    assert_int_equal(cdns_rrl_check(r, &set, 1, a, 1200), CDNS_RRL_PASS);
    assert_int_equal(cdns_rrl_check(r, &set, 1, a, 1200), CDNS_RRL_DROP);
    /* known clients */
    struct cdns_known *k = cdns_known_new(1024);
    assert_false(cdns_known_check(k, &set, 1, other, 1000));
    cdns_known_mark(k, &set, 1, other, 1000);
    assert_true(cdns_known_check(k, &set, 1, other, 2000));
    assert_true(cdns_known_check(k, &set, 1, (uint8_t[]){127, 0, 2, 200}, 2000));  /* same /24 */
    assert_false(cdns_known_check(k, &set, 1, a, 2000));
    assert_false(cdns_known_check(k, &set, 1, other, 1000 + CDNS_KNOWN_MS + 1000));
    cdns_known_free(k);
    /* off */
    set.rrl_rate = 0;
    for (int i = 0; i < 100; i++) assert_int_equal(cdns_rrl_check(r, &set, 1, a, 1200), CDNS_RRL_PASS);
    cdns_rrl_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(geo_longest_prefix_and_scope),
        cmocka_unit_test(select_table),
        cmocka_unit_test(health_rise_fall),
        cmocka_unit_test(zone_errors),
        cmocka_unit_test(rrl_bucket_and_slip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
