/* tests/unit/t_shop_lb.c - shop-lb's backend choice: weighted round robin, least connections,
 * consistent hashing (remapping when a backend joins or leaves), and the caching header rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "origin/lb/lb.h"
#include "origin/shop/shop.h"

static void members(struct lb_member *m, size_t n)
{
    static char names[16][32];
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "127.0.0.1:%zu", 8081 + i);
        m[i] = (struct lb_member){.name = names[i], .weight = 1, .eff_weight = 1, .available = 1};
    }
}

static void t_rr(void **state)
{
    struct lb_member m[3];
    members(m, 3);
    m[0].weight = 1, m[1].weight = 2, m[2].weight = 3;
    m[0].eff_weight = 1, m[1].eff_weight = 2, m[2].eff_weight = 3;
    int count[3] = {0};
    for (int i = 0; i < 600; i++)
        count[lb_pick_rr(m, 3, 0)]++;
    assert_int_equal(count[0], 100);
    assert_int_equal(count[1], 200);
    assert_int_equal(count[2], 300);
    /* smooth: the heaviest never gets more than its share in a row */
    int prev = -1, run = 0, maxrun = 0;
    for (int i = 0; i < 60; i++) {
        int k = lb_pick_rr(m, 3, 0);
        run = k == prev ? run + 1 : 1;
        prev = k;
        maxrun = run > maxrun ? run : maxrun;
    }
    assert_true(maxrun <= 2);
    /* a dead backend gets nothing; excluded ones are skipped; none eligible -> -1 */
    m[2].available = 0;
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(lb_pick_rr(m, 3, 0), 2);
    for (int i = 0; i < 10; i++)
        assert_int_equal(lb_pick_rr(m, 3, 1u << 1), 0);
    assert_int_equal(lb_pick_rr(m, 3, 3), -1);
    /* slow start: a member at 10% weight gets about 10% of an equal peer's share */
    members(m, 2);
    m[1].eff_weight = 0.1;
    int c1 = 0;
    for (int i = 0; i < 1100; i++)
        c1 += lb_pick_rr(m, 2, 0) == 1;
    assert_in_range(c1, 90, 110);
}

static void t_leastconn(void **state)
{
    struct lb_member m[3];
    unsigned rotor = 0;
    members(m, 3);
    m[0].active = 5, m[1].active = 1, m[2].active = 3;
    assert_int_equal(lb_pick_leastconn(m, 3, 0, &rotor), 1);
    assert_int_equal(lb_pick_leastconn(m, 3, 1u << 1, &rotor), 2);
    m[1].available = 0;
    assert_int_equal(lb_pick_leastconn(m, 3, 0, &rotor), 2);
    /* equal load: ties rotate */
    members(m, 3);
    int count[3] = {0};
    for (int i = 0; i < 30; i++)
        count[lb_pick_leastconn(m, 3, 0, &rotor)]++;
    assert_int_equal(count[0], 10);
    assert_int_equal(count[1], 10);
    assert_int_equal(count[2], 10);
    /* weight counts: twice the weight carries twice the connections at the same load */
    m[0].eff_weight = 2, m[0].active = 3, m[1].active = 2, m[2].active = 2;
    assert_int_equal(lb_pick_leastconn(m, 3, 0, &rotor), 0);
}

#define KEYS 20000

static void pick_all(const struct lb_ring *r, const struct lb_member *m, size_t n, int *out)
{
    for (int k = 0; k < KEYS; k++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "/p/%d", k);
        out[k] = lb_ring_pick(r, m, n, shop_hash64(key, (size_t)len), 0);
    }
}

static void t_ring(void **state)
{
    static int before[KEYS], after[KEYS];
    struct lb_member m[5];
    struct lb_ring r;
    members(m, 5);
    /* 4 members, then a 5th joins: only ~1/5 of keys move, all of them to the new one */
    assert_int_equal(lb_ring_build(&r, m, 4, 160), 0);
    pick_all(&r, m, 4, before);
    int count[5] = {0};
    for (int k = 0; k < KEYS; k++)
        count[before[k]]++;
    for (int i = 0; i < 4; i++)
        assert_in_range(count[i], KEYS / 4 * 7 / 10, KEYS / 4 * 13 / 10); /* balanced within 30% */
    lb_ring_free(&r);
    assert_int_equal(lb_ring_build(&r, m, 5, 160), 0);
    pick_all(&r, m, 5, after);
    int moved = 0;
    for (int k = 0; k < KEYS; k++)
        if (before[k] != after[k]) {
            moved++;
            assert_int_equal(after[k], 4);
        }
    assert_in_range(moved, KEYS / 5 * 7 / 10, KEYS / 5 * 13 / 10);
    /* member 2 goes down: only its keys move; when it returns they come back */
    m[2].available = 0;
    pick_all(&r, m, 5, before);
    int moved2 = 0;
    for (int k = 0; k < KEYS; k++) {
        assert_int_not_equal(before[k], 2);
        if (before[k] != after[k]) {
            moved2++;
            assert_int_equal(after[k], 2);
        }
    }
    assert_in_range(moved2, KEYS / 5 * 7 / 10, KEYS / 5 * 13 / 10);
    m[2].available = 1;
    pick_all(&r, m, 5, before);
    assert_memory_equal(before, after, sizeof(before));
    /* exclude (a retry) gives another member; nothing available gives -1 */
    uint64_t h = shop_hash64_str("/p/1");
    int first = lb_ring_pick(&r, m, 5, h, 0);
    int second = lb_ring_pick(&r, m, 5, h, 1ull << first);
    assert_true(second >= 0 && second != first);
    for (int i = 0; i < 5; i++)
        m[i].available = 0;
    assert_int_equal(lb_ring_pick(&r, m, 5, h, 0), -1);
    lb_ring_free(&r);
    assert_int_equal(lb_algo_parse("hash-url"), LB_HASH_URL);
    assert_int_equal(lb_algo_parse("random"), -1);
}

static void t_rules(void **state)
{
    const struct shop_rules *r = shop_rules_default();
    const struct shop_rule *x;
    x = shop_rules_match(r, "/img/42/thumb.png", 17);
    assert_string_equal(x->cache_control, "public, max-age=86400, immutable");
    x = shop_rules_match(r, "/p/42", 5);
    assert_string_equal(x->cache_control, "public, max-age=60, s-maxage=300, stale-while-revalidate=30, stale-if-error=600");
    x = shop_rules_match(r, "/c/kitchen", 10);
    assert_string_equal(x->vary, "Accept-Encoding");
    x = shop_rules_match(r, "/cart", 5);
    assert_string_equal(x->cache_control, "private, no-store");
    x = shop_rules_match(r, "/api/cart", 9);
    assert_string_equal(x->cache_control, "private, no-store");
    x = shop_rules_match(r, "/", 1);
    assert_string_equal(x->prefix, "/");
    x = shop_rules_match(r, "/unknown", 8);
    assert_string_equal(x->prefix, "/");
    assert_non_null(r->error_cache_control);
    /* a configured set: the longest prefix wins whatever the order */
    struct shop_rule rs[] = {{"/", "a", NULL, NULL, 0, 0, 1}, {"/img/", "b", NULL, NULL, 0, 0, 1},
                             {"/img/big/", "c", NULL, NULL, 0, 0, 1}};
    struct shop_rules set = {rs, 3, NULL, NULL};
    assert_string_equal(shop_rules_match(&set, "/img/big/1", 10)->cache_control, "c");
    shop_rules_sort(&set);
    assert_string_equal(set.rules[0].prefix, "/img/big/");
    assert_string_equal(shop_rules_match(&set, "/img/x", 6)->cache_control, "b");
    struct shop_rules none = {rs + 1, 1, NULL, NULL};
    assert_null(shop_rules_match(&none, "/p/1", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(t_rr), cmocka_unit_test(t_leastconn), cmocka_unit_test(t_ring),
                                       cmocka_unit_test(t_rules)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
