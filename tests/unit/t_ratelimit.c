/* Unit tests for lib/ratelimit.c: GCRA's admitted count under a flood, the burst coming back after
 * idleness, the answer's fields, a fixed table under a million distinct keys, and two threads on
 * one key. Time is passed in: no sleeps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cdn/ratelimit.h"

#define SEC 1000000000ULL
#define MS 1000000ULL

static int check(cdn_rl_t *t, const char *key, const struct cdn_rl_rate *r, uint64_t now, struct cdn_rl_result *res)
{
    return cdn_rl_check(t, key, strlen(key), r, now, res);
}

static void rate_make(void **state)
{
    (void)state;
    struct cdn_rl_rate r;
    assert_int_equal(cdn_rl_rate_make(&r, 0, SEC, 1), -1);
    assert_int_equal(cdn_rl_rate_make(&r, 1, 0, 1), -1);
    assert_int_equal(cdn_rl_rate_make(&r, 1, SEC, 0), -1);
    assert_int_equal(cdn_rl_rate_make(&r, 100, SEC, 200), 0);
    assert_int_equal(r.interval_ns, 10 * MS);
    assert_int_equal(r.tolerance_ns, 2 * SEC);
}

/* A flood at ten times the rate for 10 s: burst + rate * 10 s admitted, within one. */
static void flood_admits_rate_plus_burst(void **state)
{
    (void)state;
    static const struct { uint32_t count; uint64_t period; uint32_t burst; } cases[] = {
        {100, SEC, 50}, {20, SEC, 10}, {1, SEC, 1}, {600, 60 * SEC, 30}, {3, SEC, 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cdn_rl_t *t = cdn_rl_new(64);
        struct cdn_rl_rate r;
        assert_int_equal(cdn_rl_rate_make(&r, cases[i].count, cases[i].period, cases[i].burst), 0);
        uint64_t step = r.interval_ns / 10, dur = 10 * SEC, admitted = 0;
        for (uint64_t now = SEC; now < SEC + dur; now += step)
            admitted += (uint64_t)check(t, "client", &r, now, NULL);
        double want = cases[i].burst + (double)cases[i].count * (double)dur / (double)cases[i].period;
        if (admitted + 1 < want || admitted > want + 1)
            fail_msg("%u per %llu ns, burst %u: %llu admitted, want %.1f +- 1", cases[i].count,
                     (unsigned long long)cases[i].period, cases[i].burst, (unsigned long long)admitted, want);
        cdn_rl_free(t);
    }
}

/* The answer's fields: remaining counts down, a refusal says when to come back, and coming back
 * then is admitted. */
static void result_fields(void **state)
{
    (void)state;
    cdn_rl_t *t = cdn_rl_new(64);
    struct cdn_rl_rate r;
    struct cdn_rl_result res;
    cdn_rl_rate_make(&r, 10, SEC, 3); /* T = 100 ms */
    uint64_t now = 5 * SEC;
    assert_true(check(t, "k", &r, now, &res));
    assert_int_equal(res.remaining, 2);
    assert_int_equal(res.reset_ns, 100 * MS);
    assert_true(check(t, "k", &r, now, &res));
    assert_int_equal(res.remaining, 1);
    assert_true(check(t, "k", &r, now, &res));
    assert_int_equal(res.remaining, 0);
    assert_int_equal(res.reset_ns, 300 * MS);
    assert_false(check(t, "k", &r, now + 10 * MS, &res));
    assert_int_equal(res.remaining, 0);
    assert_int_equal(res.retry_after_ns, 90 * MS);
    assert_int_equal(res.reset_ns, 290 * MS);
    assert_false(check(t, "k", &r, now + 99 * MS, &res));
    assert_true(check(t, "k", &r, now + 100 * MS, &res));
    assert_int_equal(res.remaining, 0);
    /* another key has its own budget */
    assert_true(check(t, "other", &r, now + 100 * MS, &res));
    assert_int_equal(res.remaining, 2);
    cdn_rl_free(t);
}

/* A key idle for burst * T gets its whole burst back, and no more than that. */
static void idle_key_gets_burst_back(void **state)
{
    (void)state;
    cdn_rl_t *t = cdn_rl_new(64);
    struct cdn_rl_rate r;
    cdn_rl_rate_make(&r, 20, SEC, 10); /* T = 50 ms, tolerance 500 ms */
    uint64_t now = SEC;
    int n = 0;
    while (check(t, "k", &r, now, NULL))
        n++;
    assert_int_equal(n, 10);
    now += 250 * MS; /* half the tolerance: half the burst */
    for (n = 0; check(t, "k", &r, now, NULL); n++)
        ;
    assert_int_equal(n, 5);
    now += 3600 * SEC; /* an hour idle: the burst, not an hour's worth */
    for (n = 0; check(t, "k", &r, now, NULL); n++)
        ;
    assert_int_equal(n, 10);
    cdn_rl_free(t);
}

/* A million distinct keys (a flood of spoofed sources) through a table of 4096 slots: the table
 * never holds more than its capacity, and a limited client seen all along stays limited (its
 * slot is never the least recently seen of its shard). */
static void flood_of_keys_stays_bounded(void **state)
{
    (void)state;
    cdn_rl_t *t = cdn_rl_new(4096);
    size_t cap = cdn_rl_capacity(t);
    assert_int_equal(cap, 4096);
    struct cdn_rl_rate r;
    cdn_rl_rate_make(&r, 1, SEC, 5);
    uint64_t now = SEC;
    while (check(t, "hot", &r, now, NULL))
        ;
    char key[32];
    int hot_admitted = 0;
    for (uint32_t i = 0; i < 1000000; i++) {
        now += 100; /* 1M keys in 0.1 s */
        snprintf(key, sizeof(key), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
        check(t, key, &r, now, NULL);
        if (i % 100 == 0)
            hot_admitted += check(t, "hot", &r, now, NULL);
        if (cdn_rl_keys(t) > cap)
            fail_msg("%zu keys in a table of %zu after %u keys", cdn_rl_keys(t), cap, i + 1);
    }
    assert_int_equal(cdn_rl_keys(t), cap);
    assert_int_equal(cdn_rl_capacity(t), cap);
    assert_int_equal(hot_admitted, 0);
    cdn_rl_free(t);
}

/* Two threads hammering one key: together they get what one client would. */
struct hammer {
    cdn_rl_t *t;
    const struct cdn_rl_rate *r;
    uint64_t *clock, step, until;
    long n, admitted;
};

static void *hammer(void *p)
{
    struct hammer *h = p;
    for (long i = 0; i < h->n; i++) {
        uint64_t now = __atomic_fetch_add(h->clock, h->step, __ATOMIC_RELAXED);
        if (now >= h->until)
            break;
        h->admitted += check(h->t, "shared", h->r, now, NULL);
    }
    return NULL;
}

static long hammer2(cdn_rl_t *t, const struct cdn_rl_rate *r, uint64_t start, uint64_t step, uint64_t until, long n)
{
    uint64_t clock = start;
    struct hammer h[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        h[i] = (struct hammer){t, r, &clock, step, until, n, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    return h[0].admitted + h[1].admitted;
}

static void two_threads_one_key(void **state)
{
    (void)state;
    cdn_rl_t *t = cdn_rl_new(64);
    struct cdn_rl_rate r;
    cdn_rl_rate_make(&r, 1000, SEC, 100); /* T = 1 ms */
    /* 2 x 200000 checks at one instant: exactly the burst */
    long got = hammer2(t, &r, 100 * SEC, 0, UINT64_MAX, 200000);
    assert_int_equal(got, 100);
    /* then a shared clock ticking 10 us a check for 2 s (a flood at 100x): the burst is spent, so
     * 2000 more; a check may meet the lock a little after a later one, hence the margin of 2 */
    got = hammer2(t, &r, 100 * SEC, 10000, 102 * SEC, 1000000);
    if (got < 1998 || got > 2002)
        fail_msg("two threads over 2 s at 1000/s: %ld admitted, want 2000 +- 2", got);
    cdn_rl_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rate_make),
        cmocka_unit_test(flood_admits_rate_plus_burst),
        cmocka_unit_test(result_fields),
        cmocka_unit_test(idle_key_gets_burst_back),
        cmocka_unit_test(flood_of_keys_stays_bounded),
        cmocka_unit_test(two_threads_one_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
