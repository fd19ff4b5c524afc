/* Unit tests for lab/wanrelay/wanq.c: the WAN relay's delay line (release times, FIFO order across ring
 * wrap-around, tail drop, rate serialisation, loss and its change at run time, batch peek) and its delay/rate parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lab/wanrelay/wanq.h"

#define MS 1000000ull

static void test_delay_release(void **state)
{
    struct lab_wanq q;
    struct lab_wanq_cfg c = {.delay_ns = 25 * MS};
    assert_int_equal(lab_wanq_init(&q, &c), 0);
    const void *m, *f;
    size_t ml, fl;
    uint64_t next;
    assert_int_equal(lab_wanq_peek(&q, 0, &m, &ml, &f, &fl, &next), 0);
    assert_true(next == UINT64_MAX);
    assert_int_equal(lab_wanq_push(&q, 1000, "M", 1, "frame-1", 7), 1);
    assert_int_equal(lab_wanq_push(&q, 2000, NULL, 0, "frame-22", 8), 1);
    /* Not due a nanosecond early: the delay is a lower bound. */
    assert_int_equal(lab_wanq_peek(&q, 1000 + 25 * MS - 1, &m, &ml, &f, &fl, &next), 0);
    assert_true(next == 1000 + 25 * MS);
    assert_int_equal(lab_wanq_peek(&q, 1000 + 25 * MS, &m, &ml, &f, &fl, &next), 1);
    assert_int_equal(ml, 1);
    assert_memory_equal(m, "M", 1);
    assert_int_equal(fl, 7);
    assert_memory_equal(f, "frame-1", 7);
    lab_wanq_pop(&q);
    assert_true(lab_wanq_next(&q) == 2000 + 25 * MS);
    assert_int_equal(lab_wanq_peek(&q, UINT64_MAX - 1, &m, &ml, &f, &fl, &next), 1);
    assert_int_equal(fl, 8);
    lab_wanq_pop(&q);
    assert_true(lab_wanq_next(&q) == UINT64_MAX);
    assert_int_equal(q.st.out_frames, 2);
    lab_wanq_free(&q);
}

/* Many frames of varying sizes through a small ring: order and contents survive wrap-around. */
static void test_wrap_fifo(void **state)
{
    struct lab_wanq q;
    struct lab_wanq_cfg c = {.delay_ns = 0, .max_bytes = 4096, .max_frames = 1000};
    assert_int_equal(lab_wanq_init(&q, &c), 0);
    unsigned char buf[700];
    uint32_t in = 0, out = 0;
    for (int round = 0; round < 2000; round++) {
        size_t len = 20 + (size_t)(round * 37) % 600;
        memset(buf, 0, sizeof(buf));
        memcpy(buf, &in, 4);
        if (lab_wanq_push(&q, (uint64_t)round, NULL, 0, buf, len) == 1) in++;
        /* Drain every third round, partly, so head and tail chase each other. */
        if (round % 3 == 0) {
            struct lab_wanq_item it[4];
            size_t n = lab_wanq_peek_batch(&q, UINT64_MAX, it, 2);
            for (size_t i = 0; i < n; i++) {
                uint32_t seq;
                memcpy(&seq, it[i].frame, 4);
                assert_int_equal(seq, out + i);
            }
            lab_wanq_pop_n(&q, n);
            out += (uint32_t)n;
        }
        assert_true(q.used <= q.cap);
    }
    assert_true(q.st.drop_full > 0); /* the ring did fill up */
    const void *m, *f;
    size_t ml, fl;
    uint64_t next;
    while (lab_wanq_peek(&q, UINT64_MAX - 1, &m, &ml, &f, &fl, &next)) {
        uint32_t seq;
        memcpy(&seq, f, 4);
        assert_int_equal(seq, out);
        out++;
        lab_wanq_pop(&q);
    }
    assert_int_equal(out, in);
    assert_int_equal(q.frames, 0);
    lab_wanq_free(&q);
}

static void test_tail_drop_frames(void **state)
{
    struct lab_wanq q;
    struct lab_wanq_cfg c = {.delay_ns = MS, .max_frames = 3};
    assert_int_equal(lab_wanq_init(&q, &c), 0);
    for (int i = 0; i < 5; i++) lab_wanq_push(&q, 0, NULL, 0, "abcdefghijklmn", 14);
    assert_int_equal(q.frames, 3);
    assert_int_equal(q.st.drop_full, 2);
    /* Too big for the ring: dropped as such, not as full. */
    struct lab_wanq q2;
    struct lab_wanq_cfg c2 = {.max_bytes = 1024};
    assert_int_equal(lab_wanq_init(&q2, &c2), 0);
    static unsigned char big[1000];
    assert_int_equal(lab_wanq_push(&q2, 0, NULL, 0, big, sizeof(big)), 0);
    assert_int_equal(q2.st.drop_big, 1);
    lab_wanq_free(&q);
    lab_wanq_free(&q2);
}

/* 1 Mbit/s: a 1250-byte frame takes 10 ms on the wire; back-to-back frames queue behind it. */
static void test_rate(void **state)
{
    struct lab_wanq q;
    struct lab_wanq_cfg c = {.delay_ns = 5 * MS, .rate_bps = 1000000};
    assert_int_equal(lab_wanq_init(&q, &c), 0);
    static unsigned char fr[1250];
    lab_wanq_push(&q, 0, NULL, 0, fr, sizeof(fr));
    lab_wanq_push(&q, 0, NULL, 0, fr, sizeof(fr));
    lab_wanq_push(&q, 100 * MS, NULL, 0, fr, sizeof(fr)); /* link idle again by then */
    assert_true(lab_wanq_next(&q) == 15 * MS);
    lab_wanq_pop(&q);
    assert_true(lab_wanq_next(&q) == 25 * MS);
    lab_wanq_pop(&q);
    assert_true(lab_wanq_next(&q) == 115 * MS);
    lab_wanq_free(&q);
}

/* The loss changed at run time (cdn-wanrelay's SIGHUP): 1 drops every new frame, 0 none; what was
 * queued before stays queued with its release time, and the other counters are untouched. */
static void test_set_loss(void **state)
{
    struct lab_wanq q;
    struct lab_wanq_cfg c = {.delay_ns = 10 * MS};
    assert_int_equal(lab_wanq_init(&q, &c), 0);
    assert_int_equal(lab_wanq_push(&q, 1000, NULL, 0, "before-1", 8), 1);
    assert_int_equal(lab_wanq_push(&q, 2000, NULL, 0, "before-2", 8), 1);
    lab_wanq_set_loss(&q, 1.0);
    for (int i = 0; i < 100; i++) assert_int_equal(lab_wanq_push(&q, 3000, NULL, 0, "lost", 4), 0);
    assert_int_equal(q.st.drop_loss, 100);
    assert_int_equal(q.frames, 2);
    assert_true(lab_wanq_next(&q) == 1000 + 10 * MS);
    lab_wanq_set_loss(&q, 0);
    for (int i = 0; i < 100; i++) assert_int_equal(lab_wanq_push(&q, 4000, NULL, 0, "kept", 4), 1);
    assert_int_equal(q.st.drop_loss, 100);
    assert_int_equal(q.frames, 102);
    assert_int_equal(q.st.in_frames, 202);
    /* out of range is clamped, not refused */
    lab_wanq_set_loss(&q, 7);
    assert_true(q.cfg.loss == 1.0);
    lab_wanq_set_loss(&q, -1);
    assert_true(q.cfg.loss == 0);
    const void *m, *f;
    size_t ml, fl;
    uint64_t next;
    assert_int_equal(lab_wanq_peek(&q, 1000 + 10 * MS, &m, &ml, &f, &fl, &next), 1);
    assert_memory_equal(f, "before-1", 8);
    lab_wanq_free(&q);
}

static void test_loss(void **state)
{
    struct lab_wanq q;
    struct lab_wanq_cfg c = {.loss = 0.25, .max_frames = 100000, .seed = 7};
    assert_int_equal(lab_wanq_init(&q, &c), 0);
    for (int i = 0; i < 10000; i++) lab_wanq_push(&q, 0, NULL, 0, "0123456789abcdef", 16);
    assert_in_range(q.st.drop_loss, 2200, 2800);
    assert_int_equal(q.frames + q.st.drop_loss, 10000);
    lab_wanq_free(&q);
    /* Same seed, same drops. */
    struct lab_wanq a, b;
    assert_int_equal(lab_wanq_init(&a, &c), 0);
    assert_int_equal(lab_wanq_init(&b, &c), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(lab_wanq_push(&a, 0, NULL, 0, "x..............", 15),
                         lab_wanq_push(&b, 0, NULL, 0, "x..............", 15));
    lab_wanq_free(&a);
    lab_wanq_free(&b);
}

static void test_parsers(void **state)
{
    uint64_t v;
    assert_int_equal(lab_parse_delay_ns("25ms", &v), 0);
    assert_true(v == 25 * MS);
    assert_int_equal(lab_parse_delay_ns("40", &v), 0);
    assert_true(v == 40 * MS);
    assert_int_equal(lab_parse_delay_ns("1.5ms", &v), 0);
    assert_true(v == 1500000);
    assert_int_equal(lab_parse_delay_ns("300us", &v), 0);
    assert_true(v == 300000);
    assert_int_equal(lab_parse_delay_ns("0.2s", &v), 0);
    assert_true(v == 200 * MS);
    assert_int_equal(lab_parse_delay_ns("0", &v), 0);
    assert_true(v == 0);
    assert_int_equal(lab_parse_delay_ns("-1ms", &v), -1);
    assert_int_equal(lab_parse_delay_ns("5 ms", &v), -1);
    assert_int_equal(lab_parse_delay_ns("5min", &v), -1);
    assert_int_equal(lab_parse_delay_ns("", &v), -1);
    assert_int_equal(lab_parse_delay_ns("nan", &v), -1);
    assert_int_equal(lab_parse_rate_bps("100mbit", &v), 0);
    assert_true(v == 100000000);
    assert_int_equal(lab_parse_rate_bps("1gbit", &v), 0);
    assert_true(v == 1000000000);
    assert_int_equal(lab_parse_rate_bps("64000", &v), 0);
    assert_true(v == 64000);
    assert_int_equal(lab_parse_rate_bps("10MB", &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_release), cmocka_unit_test(test_wrap_fifo),
        cmocka_unit_test(test_tail_drop_frames), cmocka_unit_test(test_rate),
        cmocka_unit_test(test_loss), cmocka_unit_test(test_set_loss), cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
