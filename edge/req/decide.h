/* edge/req/decide.h - the request path's decisions that need no server: each a pure function of
 * its inputs, with table tests (tests/unit/t_edge_decide.c), as edge_decide() in freshness.h is
 * for freshness. The stage files (req.h) apply them. */
#ifndef EDGE_REQ_DECIDE_H
#define EDGE_REQ_DECIDE_H

#include <stddef.h>

#include "cdn/httpc.h"
#include "edge/http/freshness.h"

/* A client request's step (Varnish's request states, without a forced step loop: h2o's
 * callbacks drive it). req_set_step() is the one place it changes; at debug level each change is
 * logged with the request id, and the access log names the step a request ended in.
 *   recv -> lookup -> hit  -> deliver -> done
 *                  -> miss -> deliver (waits on a fetch, then streams it)
 *                  -> pass -> deliver (a fetch of its own, never stored)
 *   any step -> synth (a response the edge makes) -> done; any step -> done (the client left) */
enum req_step { REQ_RECV, REQ_LOOKUP, REQ_HIT, REQ_MISS, REQ_PASS, REQ_DELIVER, REQ_SYNTH, REQ_DONE };

/* The busy object's state (Varnish's boc_state): requested (sent upstream, or queued for an
 * origin slot) -> headers (the final head came) -> streaming (body bytes came) -> finished, or
 * failed from any of those. Forward only; finished and failed are final (asserted). */
enum fetch_state { FETCH_REQUESTED, FETCH_HEADERS, FETCH_STREAMING, FETCH_FINISHED, FETCH_FAILED };

/* The rule of the two machines above: 1 when a request may go from step a to step b, or a fetch
 * from state a to state b. req_set_step() and fetch_set_state() assert it. */
int edge_req_step_ok(enum req_step a, enum req_step b);
int edge_fetch_state_ok(enum fetch_state a, enum fetch_state b);

/* After an upstream failed: 1 when the fetch may be sent to the next upstream (another parent,
 * or the origin). Only while no response head came (a client may already have part of it), and
 * only when the upstream surely did not act on the request: it refused or never accepted the
 * connection, or it is a parent that answered 5xx (parent_status: that status, else 0). */
int edge_upstream_retry(enum cdn_httpc_error kind, int head_seen, int parent_status);

/* 1 when an upstream failure counts against its circuit breaker: it could not be reached, did not
 * answer in time, broke the connection or sent something that is not HTTP. Not: our own
 * cancellation, our limits, our errors. */
int edge_upstream_failed(enum cdn_httpc_error kind);

/* 1 when a parent's 5xx is its upstream's failure, not its own, by the parent's entry in
 * Cache-Status (the last member of the value, len bytes): `detail=breaker-open` (its breaker for
 * the origin is open), `detail=origin-error` (it could not reach the origin, or no answer in time)
 * or `fwd-status=5xx` (the origin's own 5xx, passed on). The parent is up and did its job, so
 * the child's breaker for it hears a success (found by `cdn-lab drill`: a child that counted
 * them opened its breaker for the parent while the origin was down and passed over the parent's
 * cache for every key). An overloaded parent (`detail=shed`, `origin-busy`) still counts. */
int edge_parent_upstream_failed(const char *cache_status, size_t len);

/* The status a client gets when its fetch failed before any response head came: 504 for the
 * timeouts (the upstream was too slow), 502 for everything else (it was unreachable or broken). */
int edge_upstream_error_status(enum cdn_httpc_error kind);

/* Which stored copy a client whose upstream failed (no response, a timeout, a 5xx) gets instead of
 * the error. fetch_stale: the fetch was validating a stale copy that stale-if-error allows. Else
 * the store is asked again for the client's key: it may hold a copy the client's lookup did not
 * see (a put the disk tier still had queued, another worker's fill) or the client joined a fetch
 * that had none (a plain fill started by a request that missed); in_store says it holds one, v is
 * its verdict now and no_stale its must-revalidate / no-cache (EDGE_F_REVALIDATE|NO_CACHE flags).
 * grace_s: seconds past freshness a copy may serve while the upstream is known bad (the breaker is
 * open; 0 = none), beyond stale-if-error, like Varnish's grace. */
enum edge_stale_pick { EDGE_STALE_NONE, EDGE_STALE_FETCH, EDGE_STALE_STORE };
enum edge_stale_pick edge_error_stale(int fetch_stale, int in_store, const struct edge_verdict *v, int no_stale,
                                      int64_t grace_s);

/* May a client that joined a fetch share its response (RFC 9111 4.1)? The response's normalised
 * Vary list (vary, vary_len; 0: no Vary, every waiter shares) decides, by comparing the waiter's
 * secondary key with the one the response is stored under: the owner's request headers while
 * the owner is there (owner non-NULL), else the variant part of the fetch's key (stored_vk).
 * 1 to share, 0 to send the waiter upstream on its own. */
int edge_waiter_shares(const char *vary, size_t vary_len, const struct edge_hdr *waiter, size_t nwaiter,
                       const struct edge_hdr *owner, size_t nowner, const char *stored_vk, size_t stored_vk_len);

#endif
