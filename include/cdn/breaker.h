/* cdn/breaker.h - a circuit breaker for one upstream (an origin, a parent edge, a pool backend):
 * a pure state machine, `now` passed in, no locks, no clock, no I/O (callers lock and count).
 *
 *   closed --(failures in a row >= failures, or errors/requests >= ratio over the last window
 *             with at least min_requests)--> open
 *   open --(open_ms passed: the next allow())--> half-open
 *   half-open: at most `probes` requests at once are let through (the others are refused);
 *             `probes` successes --> closed; one failure --> open again (for open_ms more)
 *
 * What is a failure is the caller's: no answer in time, a refused or broken connection, a 5xx
 * (Envoy's outlier detection counts 5xx and gateway failures; HAProxy's `observe layer7`). A
 * request that was let through must be reported exactly once (cdn_breaker_report), or let go
 * (cdn_breaker_release: it ended without telling anything, e.g. the client left). */
#ifndef CDN_BREAKER_H
#define CDN_BREAKER_H

#include <stdint.h>

struct cdn_breaker_conf {
    unsigned failures;     /* consecutive failures that open it; 0: not by count */
    double ratio;          /* failed share of the window's requests that opens it; 0: not by ratio */
    unsigned min_requests; /* ... once the window holds at least this many */
    uint64_t window_ms;    /* the ratio's window (two halves, the older one dropped as time goes) */
    uint64_t open_ms;      /* open this long before the first probe */
    unsigned probes;       /* half-open: at once, and successes needed to close */
};
/* Off when neither failures nor ratio is set. */
static inline int cdn_breaker_on(const struct cdn_breaker_conf *c) { return c->failures > 0 || c->ratio > 0; }

enum cdn_breaker_state { CDN_BREAKER_CLOSED, CDN_BREAKER_OPEN, CDN_BREAKER_HALF_OPEN };

struct cdn_breaker {
    enum cdn_breaker_state state;
    unsigned consecutive;      /* failures in a row (closed) */
    uint64_t win_start;        /* start of the current half-window */
    unsigned win_req[2], win_fail[2]; /* [0] current half-window, [1] the one before */
    uint64_t opened_at;        /* when it last opened */
    unsigned probes_out, probes_ok; /* half-open */
    uint64_t opens, closes;    /* transitions so far (for metrics) */
    uint64_t last_answer;      /* when a response head last came from it (any status); 0: never */
    uint64_t ttfb_start;       /* the slowest first byte of recent answers: two half-windows of */
    uint64_t ttfb_max[2];      /* CDN_BREAKER_TTFB_WINDOW_MS, [0] current */
};
#define CDN_BREAKER_TTFB_WINDOW_MS 30000

/* Fresh and closed. */
void cdn_breaker_init(struct cdn_breaker *b);

/* May a request go now? 1: yes (*probe set when it is a half-open probe, to be reported or
 * released as such); 0: refused (open, or half-open with all probes out). Moves open ->
 * half-open when open_ms has passed. */
int cdn_breaker_allow(struct cdn_breaker *b, const struct cdn_breaker_conf *c, uint64_t now, int *probe);

/* The outcome of a request that allow() let through (ok: 1 success, 0 failure). Returns the
 * state after it; a transition is seen by comparing with the state before. */
enum cdn_breaker_state cdn_breaker_report(struct cdn_breaker *b, const struct cdn_breaker_conf *c, int ok, int probe,
                                          uint64_t now);

/* A request allow() let through ended without an outcome (cancelled): frees its probe slot. */
void cdn_breaker_release(struct cdn_breaker *b, int probe);

/* Hang detection (the caller's first-byte deadline): a request without a head past the deadline
 * is a sign of a hung upstream only when nothing at all came from the upstream for that long; an
 * upstream that answers other requests meanwhile is slow for this one, not hung. The deadline
 * itself follows the upstream: at least twice the slowest first byte of its recent answers (the
 * last 15-30 s), so an upstream that has turned slow is not taken for a hung one again and again.
 *   answered(): a response head came (whatever its status), ttfb_ms after its request was sent;
 *   hang_after(): the deadline now: max(first_byte_ms, 2 x the recent slowest first byte);
 *   silent():   nothing came for `ms` (or ever);
 *   alive():    a request counted as hung answered after all (ttfb_ms after it was sent): the
 *               upstream is slow, not dead, so an open or half-open breaker closes at once
 *               (counted in closes). Returns the state after it. */
void cdn_breaker_answered(struct cdn_breaker *b, uint64_t now, uint64_t ttfb_ms);
uint64_t cdn_breaker_hang_after(struct cdn_breaker *b, uint64_t now, uint64_t first_byte_ms);
int cdn_breaker_silent(const struct cdn_breaker *b, uint64_t now, uint64_t ms);
enum cdn_breaker_state cdn_breaker_alive(struct cdn_breaker *b, uint64_t now, uint64_t ttfb_ms);

/* Milliseconds until a probe may go (0 unless open): for Retry-After. */
uint64_t cdn_breaker_retry_in(const struct cdn_breaker *b, const struct cdn_breaker_conf *c, uint64_t now);

const char *cdn_breaker_state_name(enum cdn_breaker_state s);

/* A retry budget (Finagle's, Envoy's retry_budget): retries to another upstream may be at most
 * `ratio` of the first attempts over the last window, plus `min` (so that a quiet service can
 * still retry). A failing upstream then cannot multiply the load on the next one: with ratio
 * 0.2, at most 1.2x the requests reach upstreams, whatever fails. Pure, `now` passed in. */
struct cdn_retry_budget_conf {
    double ratio;          /* 0: no budget (every retry allowed) */
    unsigned min;          /* retries allowed per window on top of ratio */
    uint64_t window_ms;
};
struct cdn_retry_budget {
    uint64_t win_start;
    unsigned req[2], retries[2]; /* [0] the current half-window, [1] the one before */
};
/* A first attempt was sent. */
void cdn_retry_budget_request(struct cdn_retry_budget *b, const struct cdn_retry_budget_conf *c, uint64_t now);
/* May a retry go now? 1: yes, and it is counted; 0: the budget is spent. */
int cdn_retry_budget_allow(struct cdn_retry_budget *b, const struct cdn_retry_budget_conf *c, uint64_t now);

#endif
