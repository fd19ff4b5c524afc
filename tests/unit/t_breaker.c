/* Unit tests for lib/breaker.c: the circuit breaker's state machine as tables of steps, `now`
 * passed in (no sleeps). Each step: at time t, ask allow() (want its answer) and, when let
 * through, report ok or failure; then the state wanted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "cdn/breaker.h"

enum { F = 0, OK = 1, NONE = 2 }; /* report a failure, a success, or nothing (cancelled) */
struct step {
    uint64_t t;
    int allow;    /* what allow() must answer */
    int report;   /* F, OK, NONE: what the request then says (when let through) */
    enum cdn_breaker_state after;
};

static void run(const struct cdn_breaker_conf *c, const struct step *s, size_t n, const char *name)
{
    struct cdn_breaker b;
    cdn_breaker_init(&b);
    for (size_t i = 0; i < n; i++) {
        int probe;
        int a = cdn_breaker_allow(&b, c, s[i].t, &probe);
        if (a != s[i].allow)
            fail_msg("%s: step %zu (t=%llu): allow %d, want %d (state %s)", name, i, (unsigned long long)s[i].t, a,
                     s[i].allow, cdn_breaker_state_name(b.state));
        if (a && s[i].report != NONE)
            cdn_breaker_report(&b, c, s[i].report == OK, probe, s[i].t);
        else if (a)
            cdn_breaker_release(&b, probe);
        if (b.state != s[i].after)
            fail_msg("%s: step %zu (t=%llu): state %s, want %s", name, i, (unsigned long long)s[i].t,
                     cdn_breaker_state_name(b.state), cdn_breaker_state_name(s[i].after));
    }
}

#define RUN(c, s) run(&(c), s, sizeof(s) / sizeof(s[0]), #s)
#define C CDN_BREAKER_CLOSED
#define O CDN_BREAKER_OPEN
#define H CDN_BREAKER_HALF_OPEN

/* consecutive failures open it; a success in between starts the count again; open refuses until
 * open_ms, then probes; a failed probe opens again, enough good probes close it */
static void consecutive(void **state)
{
    const struct cdn_breaker_conf c = {.failures = 3, .open_ms = 1000, .probes = 2};
    static const struct step s[] = {
        {0, 1, F, C}, {10, 1, F, C}, {20, 1, OK, C},          /* a success resets the count */
        {30, 1, F, C}, {40, 1, F, C}, {50, 1, F, O},          /* three in a row: open */
        {60, 0, NONE, O}, {1049, 0, NONE, O},                 /* open: refused, nothing sent */
        {1050, 1, F, O},                                      /* open_ms later: a probe; it fails: open again */
        {1500, 0, NONE, O},
        {2050, 1, OK, H},                                     /* a probe succeeds: one more needed */
        {2060, 1, OK, C},                                     /* two good probes: closed */
        {2070, 1, F, C}, {2080, 1, F, C},                     /* counting starts afresh */
    };
    RUN(c, s);
}

/* half-open lets `probes` requests through at once; the others are refused until one reports;
 * a probe that ends without an outcome frees its slot */
static void probes_at_once(void **state)
{
    const struct cdn_breaker_conf c = {.failures = 1, .open_ms = 100, .probes = 2};
    struct cdn_breaker b;
    cdn_breaker_init(&b);
    int p1, p2, p3;
    assert_int_equal(cdn_breaker_allow(&b, &c, 0, &p1), 1);
    cdn_breaker_report(&b, &c, 0, p1, 0);
    assert_int_equal(b.state, O);
    assert_int_equal(b.opens, 1);
    assert_int_equal(cdn_breaker_retry_in(&b, &c, 40), 60);
    assert_int_equal(cdn_breaker_allow(&b, &c, 100, &p1), 1);
    assert_int_equal(p1, 1);
    assert_int_equal(b.state, H);
    assert_int_equal(cdn_breaker_retry_in(&b, &c, 100), 0);
    assert_int_equal(cdn_breaker_allow(&b, &c, 101, &p2), 1);
    assert_int_equal(cdn_breaker_allow(&b, &c, 102, &p3), 0); /* both probes out */
    cdn_breaker_release(&b, p2);                               /* one went away: its slot is free */
    assert_int_equal(cdn_breaker_allow(&b, &c, 103, &p3), 1);
    cdn_breaker_report(&b, &c, 1, p1, 104);
    assert_int_equal(b.state, H);
    cdn_breaker_report(&b, &c, 1, p3, 105);
    assert_int_equal(b.state, C);
    assert_int_equal(b.closes, 1);
    (void)state;
}

/* the error ratio over the window opens it once the window holds min_requests; failures spread
 * between successes (never three in a row) are enough; an old half-window is forgotten */
static void ratio(void **state)
{
    const struct cdn_breaker_conf c = {.failures = 0, .ratio = 0.5, .min_requests = 6, .window_ms = 1000,
                                       .open_ms = 500, .probes = 1};
    static const struct step s[] = {
        {0, 1, F, C}, {10, 1, OK, C}, {20, 1, F, C}, {30, 1, OK, C}, {40, 1, F, C},
        {50, 1, F, O},                                        /* 4 of 6 failed >= 50%: open */
        {100, 0, NONE, O},
        {550, 1, OK, C},                                      /* one good probe closes (probes 1) */
        /* after the close the window starts empty: 5 failures of 5 are not enough (min 6) */
        {560, 1, F, C}, {570, 1, F, C}, {580, 1, F, C}, {590, 1, F, C}, {600, 1, F, C},
        /* two windows later they are forgotten: 1 failure of 6 stays closed */
        {3000, 1, F, C}, {3010, 1, OK, C}, {3020, 1, OK, C}, {3030, 1, OK, C}, {3040, 1, OK, C}, {3050, 1, OK, C},
    };
    RUN(c, s);
}

/* outcomes of requests let through before it opened change nothing while open; a non-probe
 * outcome does not close a half-open breaker; off (no failures, no ratio) never refuses */
static void stragglers_and_off(void **state)
{
    const struct cdn_breaker_conf c = {.failures = 2, .open_ms = 100, .probes = 1};
    struct cdn_breaker b;
    cdn_breaker_init(&b);
    int p[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(cdn_breaker_allow(&b, &c, 0, &p[i]), 1);
    cdn_breaker_report(&b, &c, 0, p[0], 1);
    cdn_breaker_report(&b, &c, 0, p[1], 2);
    assert_int_equal(b.state, O);
    cdn_breaker_report(&b, &c, 1, p[2], 3); /* a straggler's success: still open */
    assert_int_equal(b.state, O);
    int q;
    assert_int_equal(cdn_breaker_allow(&b, &c, 200, &q), 1);
    assert_int_equal(b.state, H);
    cdn_breaker_report(&b, &c, 1, p[3], 201); /* another straggler: not a probe */
    assert_int_equal(b.state, H);
    cdn_breaker_report(&b, &c, 1, q, 202);
    assert_int_equal(b.state, C);

    const struct cdn_breaker_conf off = {0};
    cdn_breaker_init(&b);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(cdn_breaker_allow(&b, &off, (uint64_t)i, &q), 1);
        cdn_breaker_report(&b, &off, 0, q, (uint64_t)i);
    }
    assert_int_equal(b.state, C);
    (void)state;
}

/* retry budget: ratio of the first attempts plus min per window; the old half-window is forgotten */
static void retry_budget(void **state)
{
    const struct cdn_retry_budget_conf c = {.ratio = 0.2, .min = 2, .window_ms = 1000};
    struct cdn_retry_budget b = {0};
    int granted = 0;
    for (int i = 0; i < 20; i++) { /* 20 requests, each failing and asking for a retry */
        cdn_retry_budget_request(&b, &c, 10);
        granted += cdn_retry_budget_allow(&b, &c, 10);
    }
    assert_int_equal(granted, 2 + 4); /* min 2 + 20% of 20, never more */
    assert_int_equal(cdn_retry_budget_allow(&b, &c, 20), 0);
    /* a window later the old attempts and retries are forgotten: only min is left */
    assert_int_equal(cdn_retry_budget_allow(&b, &c, 2000), 1);
    assert_int_equal(cdn_retry_budget_allow(&b, &c, 2000), 1);
    assert_int_equal(cdn_retry_budget_allow(&b, &c, 2000), 0);
    /* 10 new requests with no failures earn 2 more */
    for (int i = 0; i < 10; i++)
        cdn_retry_budget_request(&b, &c, 2100);
    assert_int_equal(cdn_retry_budget_allow(&b, &c, 2100), 1);
    assert_int_equal(cdn_retry_budget_allow(&b, &c, 2100), 1);
    assert_int_equal(cdn_retry_budget_allow(&b, &c, 2100), 0);
    /* no budget (ratio 0): every retry goes */
    const struct cdn_retry_budget_conf off = {0};
    for (int i = 0; i < 100; i++)
        assert_int_equal(cdn_retry_budget_allow(&b, &off, 3000), 1);
    (void)state;
}

/* hang detection: silent() until something answers and again `ms` after the last answer; a
 * request counted as hung that answers after all (alive) closes an open or half-open breaker */
static void silence_and_alive(void **state)
{
    (void)state;
    const struct cdn_breaker_conf c = {.failures = 2, .open_ms = 60000, .probes = 1};
    struct cdn_breaker b;
    cdn_breaker_init(&b);
    assert_int_equal(cdn_breaker_silent(&b, 5, 1000), 1); /* never answered */
    cdn_breaker_answered(&b, 100, 10);
    assert_int_equal(cdn_breaker_silent(&b, 1099, 1000), 0);
    assert_int_equal(cdn_breaker_silent(&b, 1100, 1000), 1);
    cdn_breaker_answered(&b, 50, 10); /* an older time does not move it back */
    assert_int_equal(cdn_breaker_silent(&b, 1099, 1000), 0);
    /* alive on a closed breaker: nothing but the answer's time */
    assert_int_equal(cdn_breaker_alive(&b, 2000, 10), C);
    assert_int_equal(b.closes, 0);
    assert_int_equal(cdn_breaker_silent(&b, 2999, 1000), 0);
    /* two hung requests open it; one of them answers: closed at once, long before open_ms */
    int p;
    assert_int_equal(cdn_breaker_allow(&b, &c, 3000, &p), 1);
    cdn_breaker_report(&b, &c, 0, p, 4000);
    assert_int_equal(cdn_breaker_allow(&b, &c, 3100, &p), 1);
    cdn_breaker_report(&b, &c, 0, p, 4100);
    assert_int_equal(b.state, O);
    assert_int_equal(cdn_breaker_allow(&b, &c, 4200, &p), 0);
    assert_int_equal(cdn_breaker_alive(&b, 4500, 10), C);
    assert_int_equal(b.closes, 1);
    assert_int_equal(cdn_breaker_allow(&b, &c, 4501, &p), 1);
    assert_int_equal(p, 0);
    /* half-open with its probe out: alive closes it and frees the probe slot */
    cdn_breaker_report(&b, &c, 0, p, 4600);
    cdn_breaker_report(&b, &c, 0, 0, 4700); /* a request allowed earlier: second failure */
    assert_int_equal(b.state, O);
    assert_int_equal(cdn_breaker_allow(&b, &c, 4700 + 60000, &p), 1);
    assert_int_equal(b.state, H);
    assert_int_equal(p, 1);
    assert_int_equal(cdn_breaker_alive(&b, 64800, 10), C);
    assert_int_equal(b.probes_out, 0);
    assert_int_equal(b.closes, 2);
    cdn_breaker_report(&b, &c, 1, p, 64900); /* the probe's own answer, later: nothing breaks */
    assert_int_equal(b.state, C);
    assert_int_equal(b.probes_out, 0);
}

/* the hang deadline follows the upstream: twice its slowest recent first byte, at least
 * first_byte; it forgets a slow spell after one to two windows */
static void hang_deadline(void **state)
{
    (void)state;
    struct cdn_breaker b;
    cdn_breaker_init(&b);
    assert_int_equal(cdn_breaker_hang_after(&b, 1000, 2000), 2000);
    cdn_breaker_answered(&b, 1000, 40);
    assert_int_equal(cdn_breaker_hang_after(&b, 1000, 2000), 2000);  /* fast answers: first_byte */
    cdn_breaker_answered(&b, 5000, 2500);                             /* a 2.5 s answer (slow origin) */
    assert_int_equal(cdn_breaker_hang_after(&b, 5000, 2000), 5000);
    cdn_breaker_alive(&b, 6000, 3100);                                /* a hung one that answered at 3.1 s */
    assert_int_equal(cdn_breaker_hang_after(&b, 6000, 2000), 6200);
    const uint64_t half = CDN_BREAKER_TTFB_WINDOW_MS / 2;
    assert_int_equal(cdn_breaker_hang_after(&b, 1000 + half + 1, 2000), 6200); /* one half later: still known */
    assert_int_equal(cdn_breaker_hang_after(&b, 1000 + 3 * half + 2, 2000), 2000); /* two more halves: forgotten */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(consecutive),
        cmocka_unit_test(probes_at_once),
        cmocka_unit_test(ratio),
        cmocka_unit_test(stragglers_and_off),
        cmocka_unit_test(retry_budget),
        cmocka_unit_test(silence_and_alive),
        cmocka_unit_test(hang_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
