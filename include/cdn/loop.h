/* cdn/loop.h - what h2o 2.2.5's evloop lacks: one-shot timers of any length, watching a foreign
 * file descriptor, and signals delivered as loop events.
 *
 * Owns: cdn_timer (a timerfd watched by the loop) and cdn_watch (a dup of a foreign fd wrapped in
 * an h2o_socket_t with H2O_SOCKET_FLAG_DONT_READ; closing the watch closes only the dup, the
 * owner of the original fd closes it). All of it runs on the loop's thread; nothing blocks.
 * Why: h2o 2.2.5's timeouts are fixed-period queues (no "fire in N ms"), and its sockets close
 * their fd with no public way to let go of one that another library (curl, c-ares) owns. */
#ifndef CDN_LOOP_H
#define CDN_LOOP_H

#include <stdint.h>
#include <h2o.h>

typedef struct cdn_timer cdn_timer_t;
typedef void (*cdn_timer_cb)(cdn_timer_t *t, void *data);

cdn_timer_t *cdn_timer_new(h2o_evloop_t *loop, cdn_timer_cb cb, void *data);
/* (Re)arms the timer to fire once after ms milliseconds (0 = on the next loop turn). */
void cdn_timer_start(cdn_timer_t *t, uint64_t ms);
void cdn_timer_stop(cdn_timer_t *t);
int cdn_timer_active(const cdn_timer_t *t);
/* Safe inside the timer's own callback. */
void cdn_timer_free(cdn_timer_t *t);

/* Watching a descriptor someone else owns (curl's and c-ares' sockets). */
enum { CDN_WATCH_READ = 1, CDN_WATCH_WRITE = 2 };
typedef struct cdn_watch cdn_watch_t;
typedef void (*cdn_watch_cb)(cdn_watch_t *w, int fd, int events, void *data);

cdn_watch_t *cdn_watch_new(h2o_evloop_t *loop, int fd, cdn_watch_cb cb, void *data);
/* Which events are wanted: CDN_WATCH_READ | CDN_WATCH_WRITE, or 0. Write interest stays armed
 * until changed (the one-shot re-arming h2o needs is done here). */
void cdn_watch_set(cdn_watch_t *w, int events);
/* Stops watching and closes the dup; safe inside the watch's own callback. */
void cdn_watch_free(cdn_watch_t *w);

/* Signals as loop events (signalfd). cdn_signals_block() must run in main() before any thread is
 * created so that every thread inherits the mask; then cdn_signals_watch() on the main loop. */
int cdn_signals_block(void);
typedef struct cdn_signals cdn_signals_t;
typedef void (*cdn_signal_cb)(int signo, void *data);
/* Watches SIGTERM, SIGINT, SIGHUP, SIGUSR1 (and ignores SIGPIPE). NULL on error. */
cdn_signals_t *cdn_signals_watch(h2o_evloop_t *loop, cdn_signal_cb cb, void *data);
void cdn_signals_free(cdn_signals_t *s);

/* For an HTTP/1.1 request that is answered in a later loop turn (a proxied one): keeps the client
 * socket polled for reading until the request is disposed. h2o 2.2.5 stops reading a connection
 * while its request is served and starts again after the response, and when the two fall in
 * different loop turns each is an epoll_ctl: two a proxied request. Here bytes that arrive
 * meanwhile (a pipelined request, EOF) go to a buffer of their own (the request's strings point
 * into the socket's input, which a read could move), reading stops at the first of them, and on
 * dispose they are appended to the input where h2o parses them next: what h2o sees is unchanged.
 * A no-op for h2 requests, TLS connections and a socket that is already reading. */
void cdn_req_hold_read(h2o_req_t *req);

/* Before h2o_evloop_destroy(): releases what this module keeps per loop (the zero-delay queue that
 * "0 ms" timers use). Free the loop's timers first. Daemons that never destroy the loop can skip it. */
void cdn_loop_dispose(h2o_evloop_t *loop);

/* Milliseconds on CLOCK_MONOTONIC, and wall-clock seconds with fraction. */
uint64_t cdn_now_ms(void);
double cdn_wall_now(void);

#endif
