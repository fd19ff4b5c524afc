/* Unit tests for lib/loop.c: timers (0 ms, order, stop, re-arm, free inside the callback), watches
 * on a pipe (read, re-armed write, dropped interest, free inside the callback) and signals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "cdn/loop.h"

static h2o_evloop_t *loop;

/* Runs the loop until *flag becomes true or 5 s pass; returns *flag. */
static int run_until(const int *flag)
{
    uint64_t deadline = cdn_now_ms() + 5000;
    while (!*flag && cdn_now_ms() < deadline)
        h2o_evloop_run(loop, 50);
    return *flag;
}

struct tstate {
    int fired;
    int order[4];
    int n;
    int id;
    struct tstate *log;
    int free_self;
};

static void on_timer(cdn_timer_t *t, void *data)
{
    struct tstate *s = data;
    s->fired++;
    if (s->log != NULL)
        s->log->order[s->log->n++] = s->id;
    if (s->free_self)
        cdn_timer_free(t);
}

static void timer_zero_fires(void **state)
{
    struct tstate s = {0};
    cdn_timer_t *t = cdn_timer_new(loop, on_timer, &s);
    assert_non_null(t);
    cdn_timer_start(t, 0);
    assert_true(cdn_timer_active(t));
    assert_true(run_until(&s.fired));
    assert_false(cdn_timer_active(t));
    /* re-arm after firing */
    s.fired = 0;
    cdn_timer_start(t, 1);
    assert_true(run_until(&s.fired));
    assert_int_equal(s.fired, 1);
    cdn_timer_free(t);
}

static void timer_order_and_stop(void **state)
{
    struct tstate log = {0}, a = {.id = 1, .log = &log}, b = {.id = 2, .log = &log}, c = {.id = 3, .log = &log};
    cdn_timer_t *ta = cdn_timer_new(loop, on_timer, &a), *tb = cdn_timer_new(loop, on_timer, &b),
                *tc = cdn_timer_new(loop, on_timer, &c);
    cdn_timer_start(ta, 60);
    cdn_timer_start(tb, 5);
    cdn_timer_start(tc, 30);
    cdn_timer_stop(tc);
    assert_false(cdn_timer_active(tc));
    uint64_t t0 = cdn_now_ms();
    assert_true(run_until(&a.fired));
    assert_true(cdn_now_ms() - t0 >= 59); /* never early */
    assert_int_equal(log.n, 2);
    assert_int_equal(log.order[0], 2);
    assert_int_equal(log.order[1], 1);
    assert_int_equal(c.fired, 0);
    cdn_timer_free(ta);
    cdn_timer_free(tb);
    cdn_timer_free(tc);
}

static void on_timer_again(cdn_timer_t *t, void *data)
{
    struct tstate *s = data;
    if (++s->n < 5)
        cdn_timer_start(t, 0); /* 0 ms from its own callback: must not spin inside one turn */
    else
        s->fired = 1;
}

static void timer_restart_and_move(void **state)
{
    struct tstate s = {0};
    cdn_timer_t *t = cdn_timer_new(loop, on_timer_again, &s);
    cdn_timer_start(t, 0);
    assert_true(run_until(&s.fired));
    assert_int_equal(s.n, 5);
    cdn_timer_free(t);

    /* a deadline moved later is honoured (the timerfd armed for the earlier one fires early) */
    struct tstate m = {0};
    t = cdn_timer_new(loop, on_timer, &m);
    uint64_t t0 = cdn_now_ms();
    cdn_timer_start(t, 5);
    cdn_timer_start(t, 80);
    assert_true(run_until(&m.fired));
    assert_true(cdn_now_ms() - t0 >= 79);
    assert_int_equal(m.fired, 1);
    /* and moved earlier */
    m.fired = 0;
    t0 = cdn_now_ms();
    cdn_timer_start(t, 4000);
    cdn_timer_start(t, 1);
    assert_true(run_until(&m.fired));
    assert_true(cdn_now_ms() - t0 < 3000);
    /* stopped after a 0 ms start: never fires */
    m.fired = 0;
    cdn_timer_start(t, 0);
    cdn_timer_stop(t);
    h2o_evloop_run(loop, 1);
    h2o_evloop_run(loop, 1);
    assert_int_equal(m.fired, 0);
    cdn_timer_free(t);
}

static void timer_free_in_callback(void **state)
{
    struct tstate s = {.free_self = 1};
    cdn_timer_t *t = cdn_timer_new(loop, on_timer, &s);
    cdn_timer_start(t, 0);
    assert_true(run_until(&s.fired));
    /* a few more turns: nothing may touch the freed timer (ASan would say) */
    h2o_evloop_run(loop, 1);
    assert_int_equal(s.fired, 1);
}

struct wstate {
    int reads, writes;
    int last_fd;
    int stop_write_after;
    int free_on_read;
    int pipefd[2];
};

static void on_watch(cdn_watch_t *w, int fd, int events, void *data)
{
    struct wstate *s = data;
    s->last_fd = fd;
    if (events & CDN_WATCH_READ) {
        char buf[64];
        s->reads++;
        if (read(fd, buf, sizeof(buf)) < 0) {
        }
        if (s->free_on_read)
            cdn_watch_free(w);
    }
    if (events & CDN_WATCH_WRITE) {
        s->writes++;
        if (s->writes == s->stop_write_after)
            cdn_watch_set(w, 0);
    }
}

static void watch_read_write(void **state)
{
    struct wstate s = {.stop_write_after = 3};
    assert_int_equal(pipe(s.pipefd), 0);
    cdn_watch_t *r = cdn_watch_new(loop, s.pipefd[0], on_watch, &s);
    cdn_watch_t *w = cdn_watch_new(loop, s.pipefd[1], on_watch, &s);
    assert_non_null(r);
    assert_non_null(w);
    cdn_watch_set(r, CDN_WATCH_READ);
    /* write interest is level: it fires again and again until dropped (after 3) */
    cdn_watch_set(w, CDN_WATCH_WRITE);
    int three = 0;
    uint64_t deadline = cdn_now_ms() + 5000;
    while (s.writes < 3 && cdn_now_ms() < deadline)
        h2o_evloop_run(loop, 50);
    three = s.writes;
    assert_int_equal(three, 3);
    assert_int_equal(s.last_fd, s.pipefd[1]); /* the owner's fd, not the dup */
    for (int i = 0; i < 3; i++)
        h2o_evloop_run(loop, 5);
    assert_int_equal(s.writes, 3);
    assert_int_equal(s.reads, 0);

    assert_int_equal(write(s.pipefd[1], "x", 1), 1);
    assert_true(run_until(&s.reads));
    assert_int_equal(s.last_fd, s.pipefd[0]);
    /* read interest dropped: data waiting does not call back */
    cdn_watch_set(r, 0);
    assert_int_equal(write(s.pipefd[1], "y", 1), 1);
    for (int i = 0; i < 3; i++)
        h2o_evloop_run(loop, 5);
    assert_int_equal(s.reads, 1);
    cdn_watch_free(r);
    cdn_watch_free(w);
    /* the owner's descriptors are still open and usable */
    char c;
    assert_int_equal(read(s.pipefd[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    close(s.pipefd[0]);
    close(s.pipefd[1]);
}

static void watch_free_in_callback(void **state)
{
    struct wstate s = {.free_on_read = 1};
    assert_int_equal(pipe(s.pipefd), 0);
    cdn_watch_t *r = cdn_watch_new(loop, s.pipefd[0], on_watch, &s);
    cdn_watch_set(r, CDN_WATCH_READ | CDN_WATCH_WRITE);
    assert_int_equal(write(s.pipefd[1], "xx", 2), 2);
    assert_true(run_until(&s.reads));
    h2o_evloop_run(loop, 1);
    assert_int_equal(s.reads, 1);
    close(s.pipefd[0]);
    close(s.pipefd[1]);
}

struct sstate {
    int got;
    int signo;
};

static void on_sig(int signo, void *data)
{
    struct sstate *s = data;
    s->got++;
    s->signo = signo;
}

static void signals_as_events(void **state)
{
    struct sstate s = {0};
    assert_int_equal(cdn_signals_block(), 0);
    cdn_signals_t *sg = cdn_signals_watch(loop, on_sig, &s);
    assert_non_null(sg);
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    assert_true(run_until(&s.got));
    assert_int_equal(s.signo, SIGUSR1);
    assert_int_equal(raise(SIGPIPE), 0); /* ignored: we are still here */
    cdn_signals_free(sg);
}

static void clocks(void **state)
{
    uint64_t a = cdn_now_ms();
    assert_true(cdn_now_ms() >= a);
    assert_true(cdn_wall_now() > 1.6e9);
}

int main(void)
{
    loop = h2o_evloop_create();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timer_zero_fires),      cmocka_unit_test(timer_order_and_stop),
        cmocka_unit_test(timer_free_in_callback), cmocka_unit_test(timer_restart_and_move),
        cmocka_unit_test(watch_read_write),
        cmocka_unit_test(watch_free_in_callback), cmocka_unit_test(signals_as_events),
        cmocka_unit_test(clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
