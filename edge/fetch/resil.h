/* edge/fetch/resil.h - the edge's defences against a bad upstream (issue 19; docs/EDGE.md
 * "Resilience"):
 *   fast stale   a fetch that validates a stale copy stale-if-error allows gets
 *                stale_first_byte_timeout to answer; then its clients get the stale copy and the
 *                fetch goes on in the background to refresh the object (fetch_fb_*).
 *   breaker      a circuit breaker per upstream URL (an origin, each parent; cdn/breaker.h):
 *                while open, a parent is skipped and an origin is not asked: its clients get a
 *                stale copy (stale-if-error, or `grace` beyond it) or a fast 503 with Retry-After.
 *
 * Owns: the process-wide table of breakers (one per upstream URL ever used; kept across reloads,
 * freed at exit), their metrics. Threads: the table and each breaker have a mutex; workers call
 * in from their loops, nothing blocks. The first-byte deadline is one h2o_timeout per worker
 * (every entry has the same period), linked from the fetch (its thread only). */
#ifndef EDGE_FETCH_RESIL_H
#define EDGE_FETCH_RESIL_H

#include <stdint.h>

#include "cdn/breaker.h"
#include "cdn/metrics.h"

struct edge_resil_conf {
    uint64_t stale_first_byte_ms;    /* stale_first_byte_timeout; 0: off (wait for the upstream) */
    struct cdn_breaker_conf breaker; /* breaker: {...}; off unless failures or error_ratio is set */
    uint64_t grace_ms;               /* breaker.grace: stale beyond stale-if-error while open */
    uint64_t brk_first_byte_ms;      /* breaker.first_byte: a request without a head this long,
                                        while nothing came from its upstream this long, is hung:
                                        a failure now (it goes on); 0: only at timeout */
    struct cdn_retry_budget_conf retry_budget; /* retry_budget: {...}; ratio 0: no budget */
    uint64_t backoff_ms, backoff_max_ms; /* retry_budget.backoff: the wait before a retry to the
                                     next upstream, at random in [0, min(max, backoff x 2^(n-1))]
                                     for the fetch's n-th retry ("full jitter"); 0: at once */
    unsigned fetch_queue_max;        /* fetches a worker may queue for an origin slot; 0: no bound */
    uint64_t fill_memory;            /* body bytes held by fetches in flight; 0: no bound */
};

struct edge_brk;

/* At start (after the metrics exist): the configuration (kept by pointer), the breakers' metrics,
 * and the counters of stale answers for a slow upstream, of stale answers and 503s because a
 * breaker was open (set into the three pointers). */
void edge_resil_init(const struct edge_resil_conf *c, cdn_metrics_t *m, cdn_series_t **stale_slow,
                     cdn_series_t **brk_stale, cdn_series_t **brk_503);
/* At exit. */
void edge_resil_free(void);

/* The breaker of an upstream (its base URL), created on first use; NULL when breakers are off or
 * out of memory (then nothing is refused). */
struct edge_brk *edge_brk_of(const char *url);
/* May a request go to it now? 1: yes (*probe: a half-open probe); 0: refused (*retry_ms: until
 * the next probe may go). Counted and logged. */
int edge_brk_allow(struct edge_brk *e, int *probe, uint64_t *retry_ms);
/* The outcome of a request it let through (exactly once), or its release (cancelled). Transitions
 * are logged and counted. answered: a response head came (the upstream is not silent), for the
 * request sent at sent_at (cdn_now_ms). */
void edge_brk_report(struct edge_brk *e, int ok, int probe, int answered, uint64_t sent_at);
/* Hang detection (cdn/breaker.h): a request sent at sent_at without a head is hung when the
 * upstream's hang deadline (breaker.first_byte, or twice its recent slowest first byte) has passed
 * since it was sent and nothing came from the upstream for that long either. A hung request is
 * reported (a failure, counted in edge_breaker_hung_total); when it answers after all,
 * edge_brk_late: if ok, an open breaker closes. */
int edge_brk_hung_now(struct edge_brk *e, uint64_t sent_at);
void edge_brk_hung(struct edge_brk *e, int probe);
void edge_brk_late(struct edge_brk *e, int ok, uint64_t sent_at);
void edge_brk_release(struct edge_brk *e, int probe);
/* 1 while open or half-open (the upstream is known bad: grace applies). */
int edge_brk_is_bad(struct edge_brk *e);
const char *edge_brk_url(const struct edge_brk *e);

/* The retry budget (process-wide, every upstream): a first attempt went out; may a retry to
 * the next upstream go (counted: edge_retries_total, or edge_retry_budget_exhausted_total)? */
void edge_retry_note_request(void);
int edge_retry_allow(void);

/* Shedding misses before hits: the body bytes fetches hold now (all workers), and their change. */
uint64_t edge_fill_bytes(void);
void edge_fill_add(int64_t delta);
/* A miss (a new upstream request) refused under overload, by why ("queue", "memory"). */
void edge_shed_count(const char *why);

#endif
