/* edge/req/req.h - the edge's request path, internal to edge/req/ and edge/fetch/: the client
 * request (struct creq) and the busy object it reads from while a response comes from upstream
 * (struct fetch), and the functions each stage offers the others.
 *
 * Stages (docs/EDGE.md "How a request is served"):
 *   edge/req/recv.c     recv: checks (authority, loop), request id, vhost, rate_limit, key; PURGE; done
 *                       (dispose, access log)
 *   edge/req/lookup.c   lookup: the store, the verdict (hit / stale / must validate / miss /
 *                       pass), joining a fetch in flight
 *   edge/req/deliver.c  deliver: a stored object or a fetch's response to the client
 *   edge/req/synth.c    synth: every response the edge makes itself (errors, 429, PURGE, /healthz)
 *   edge/fetch/fetch.c  the busy object: start, join, leave, release; the upstream request and
 *                       its callbacks; the store write
 *   edge/fetch/resp.c   the upstream head: 304 merge, stale-if-error, invalidation,
 *                       storability, fan-out to the waiters, the Vary key
 *   edge/fetch/mirror.c a fetch another worker owns, followed through its feed (feed.h)
 *   edge/fetch/queue.c  max_fetches: origin slots and the worker's queue
 *
 * Rules:
 * - A client request is a `struct creq` in the h2o request pool (its dispose runs when the
 *   request goes away, also on client abort); it holds one reference on the object or fetch it
 *   reads from.
 * - One fetch per key: a cacheable miss creates a `struct fetch` in the worker's table and lists
 *   its feed (feed.h) process-wide; later requests on the same worker join the fetch as waiters,
 *   requests on other workers join a "mirror" fetch on their own loop that the feed fills (no
 *   upstream request). Waiters get the body streamed as it arrives, from chunks that never move.
 *   A waiter whose response turns out not to be shareable (uncacheable, another Vary variant) is
 *   sent upstream on its own. A mirror never writes the store (its owner does).
 * - The fetch is freed when the transfer is over and no waiter holds it (refs).
 * - Pure decisions come from freshness.c; these files only apply them.
 * Threads: everything here runs on one worker's loop; a fetch and its waiters belong to one
 * worker. Only feeds (feed.h), the store and the metrics are shared. */
#ifndef EDGE_REQ_REQ_H
#define EDGE_REQ_REQ_H

#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "cdn/httpc.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "edge/edge.h"
#include "edge/fetch/feed.h"
#include "edge/req/decide.h"
#include "edge/store/obj.h"
#include "edge/store/tier_ram.h"

#define FETCH_MAGIC 0x46455443u
#define CREQ_MAGIC 0x43524551u
#define CHUNK 65536     /* body chunks of a fetch: they never move once written */
#define QUEUE_POLL_MS 10

/* the result and the tier a request is counted under (edge_requests_total) */
enum { M_HIT, M_MISS, M_STALE, M_REVALIDATED, M_PASS, M_ERROR, M_PURGE };
enum { T_RAM, T_ROCKSDB, T_PARENT, T_ORIGIN, T_NONE };

extern __thread struct edge_worker *edge_tls_worker;

/* enum req_step and enum fetch_state, with the rule of their transitions: edge/req/decide.h */

struct creq;

struct fetch {
    uint32_t magic;
    int refs;
    struct edge_worker *w;
    uint64_t id;
    char *key;
    size_t key_len, pkey_len;
    int in_table, collapsible;
    h2o_linklist_t waiters;
    cdn_httpc_req_t *hr;
    enum fetch_state state;   /* fetch_set_state() is the one place it changes */
    char err[160];
    const char *bad_head;     /* why the upstream head was refused (becomes the 502's reason) */
    int status;               /* of the final head; 0 until it came (fetch_has_head) */
    struct edge_hdr *hdrs;
    size_t nhdrs;
    char *harena;
    uint64_t clen; /* announced Content-Length or UINT64_MAX */
    char **chunks;
    size_t nchunks, cap_chunks, last_len; /* last_len: bytes in the last chunk */
    uint64_t total;
    int store;
    int paused;               /* reading from the upstream is stopped (fetch_flow) */
    int in_cb;                /* inside an httpc callback: no cancel, no free */
    char vary[512];
    int vary_len;
    struct edge_obj *stale;   /* being revalidated */
    int stale_if_error;
    int64_t req_time;
    struct edge_req_meta rq;
    struct creq *owner;       /* the request that started it (may leave) */
    double t0;
    /* upstream: parents in rendezvous order, then the origin (see fetch_send) */
    const struct edge_vhost *vh;
    int parent;               /* index of the parent asked now, or -1 for the origin */
    uint32_t tried;           /* parents already asked for this fetch */
    int result;               /* M_MISS or M_PASS: counted once the upstream is known */
    char *path, *method;      /* owned copies: a retry may outlive the client request */
    struct edge_feed *feed;   /* owner: what other workers read (NULL for a mirror) */
    struct edge_feed_sub *sub;/* mirror: its subscription while it lasts */
    int mirror, feed_store;   /* mirror: the owner's store verdict */
    int infos_seen;           /* mirror: interim responses of the feed passed on so far */
    struct edge_feed *held;   /* mirror: keeps the chunks alive until the fetch is freed (h2o may
                                 still be writing them after the subscription ended) */
    char **uphdrs;            /* owned "Name: value" lines; the first nparent_hdrs are for parents
                                 only (Host, CDN-Edge-Key) */
    int nparent_hdrs;
    /* max_fetches: a slot of vh's origin while the origin request runs, or a place in the
     * worker's queue (deadline: the connect timeout) */
    int slot, queued, busy;
    int background;           /* a stale-while-revalidate refresh: nobody waits for it, by design */
    int parent_status;        /* a parent's 5xx/508 that sends the fetch to the next upstream */
    h2o_linklist_t qlink;
    uint64_t q_deadline, q_since;
    /* resilience (resil.h): the first-byte deadline of a fetch with a stale copy; slow: it passed
     * and the clients got the stale copy (the fetch goes on in the background); the breaker of
     * the upstream asked now (brk_sent: a request it let through awaits its outcome) */
    h2o_timeout_entry_t fb_entry;
    h2o_timeout_entry_t brk_fb_entry; /* breaker.first_byte: no head by then is a failure */
    int slow;
    struct edge_brk *brk;
    int brk_sent, brk_probe, brk_refused;
    int brk_hung;             /* breaker.first_byte passed in a silence of its upstream: reported hung */
    int parent_origin_bad;    /* a parent answered 5xx saying its own upstream failed (decide.h) */
    uint64_t brk_sent_at;     /* cdn_now_ms() when the request the breaker let through was sent */
    int retry_granted;        /* the retry budget let this fetch go to its next upstream */
    const char *shed;         /* overload refused its upstream request: "queue" or "memory" */
    h2o_linklist_t rlink;     /* in w->retry_wait while its retry backs off (until retry_at) */
    uint64_t retry_at;
    unsigned nretries;
    enum cdn_httpc_error retry_kind; /* the failure that made it retry (f->err holds its text) */
    int retrying;             /* the retry after the backoff: fetch_end does not retry again */
    uint64_t fill_counted;    /* body bytes it added to the fill memory (edge_fill_add) */
    uint64_t brk_retry_ms;
};

struct creq {
    h2o_generator_t super;
    uint32_t magic;
    h2o_req_t *req;
    struct edge_worker *w;
    const struct edge_vhost *vh;
    int internal;             /* the client is another of our edges (CDN-Loop names one) */
    struct edge_hdr *hdrs;
    size_t nhdrs;
    int method;
    struct edge_req_meta rq;
    char *pkey;
    size_t pkey_len;
    char *key;
    size_t key_len;
    uint64_t key_id;     /* edge_key_id(key), once the key is final (req_recv) */
    int read_held;       /* cdn_req_hold_read done (once per request: it swaps the socket's input) */
    int is_head;
    /* reading from an object */
    struct edge_obj *obj;
    /* reading from a fetch */
    struct fetch *f;
    h2o_linklist_t link;
    uint64_t sent, end;       /* from a fetch: next offset to send, and where to stop (a Range) */
    enum req_step step;       /* req_set_step() is the one place it changes */
    const char *fwd;          /* why it went forward (RFC 9211 fwd=): miss, stale, request, method,
                                 bypass, vary-miss; NULL on a hit */
    int sending, started, finished;
    h2o_linklist_t slink;     /* in w->sending while h2o holds a send of ours (send_timeout) */
    uint64_t send_at;         /* loop time of that send */
    double t0;
    struct timeval start;
    const char *cache_status;
    const char *upstream;     /* for the access log */
    const char *request_id;   /* X-Request-Id: the client's, or one we made (sent upstream, logged) */
    int own_request_id;       /* we made it: upstream_headers adds it */
    int from_cache;           /* answered from this edge's store (hit, stale): edge_hit_body_bytes_sent_total */
    int range_pass;           /* its Range went upstream (range_fetch_above) */
    int imgfmt;               /* on image_paths: 1 + the format its Accept was normalised to
                                 (http/accept.h; Cache-Status says detail=accept-<format>), else 0 */
    const char *date;         /* Date of the response head, for its first send (then NULL) */
    void *interim_gate;       /* holds the first send while a 1xx is written over TLS (interim.h) */
};

static inline int64_t now_s(void) { return (int64_t)time(NULL); }

static inline double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int name_is(const struct edge_hdr *h, const char *n)
{
    size_t l = strlen(n);
    return h->name_len == l && strncasecmp(h->name, n, l) == 0;
}

static inline int fetch_has_head(const struct fetch *f) { return f->status != 0; }
static inline int fetch_is_over(const struct fetch *f) { return f->state >= FETCH_FINISHED; }

#define ADD_LIT(req, n, v, vl) req_add_hdr(req, n, sizeof(n) - 1, v, vl)

/* recv.c */
const char *req_step_name(enum req_step s);
void req_set_step(struct creq *c, enum req_step s);
size_t req_invalidate(struct creq *c, const char *target, size_t tlen);
void req_count(struct edge_server *s, int result, int tier);
void req_size_hint_put(uint64_t id, uint64_t size);
uint64_t req_size_hint_get(uint64_t id);
void req_lookup(struct creq *c);
void req_pass(struct creq *c, const char *fwd);
void req_add_hdr(h2o_req_t *req, const char *name, size_t nl, const char *v, size_t vl);
/* The n strings one after the other into buf, cut to fit cap with its NUL; returns the length. */
size_t req_join(char *buf, size_t cap, const char *const *parts, size_t n);
void req_add_common(struct creq *c, const char *status_detail, int64_t age, const struct edge_hdr *up, size_t nup);
const char *req_reason(int st);
void req_deliver_obj(struct creq *c, struct edge_obj *o, const char *detail, int64_t age);
void req_deliver_pump(struct creq *c);
void req_on_proceed(h2o_generator_t *g, h2o_req_t *req);
void req_on_send_timer(cdn_timer_t *t, void *data); /* send_timeout (deliver.c) */
void req_send_track(struct creq *c); /* times the send about to be made (send_timeout) */
void req_on_stop(h2o_generator_t *g, h2o_req_t *req);
void req_deliver_fetch(struct creq *c, struct fetch *f, const char *detail);
void req_deliver_info(struct creq *c, int status, const struct cdn_httpc_header *h, size_t n);
void req_synth_error(struct creq *c, int status, const char *reason, const char *detail, const char *body);
void req_synth_bad_gateway(struct creq *c, int status, const char *reason, const char *body);
void req_synth_healthz(struct creq *c, int draining);
void req_synth_purged(struct creq *c, size_t n);
void req_synth_limited(struct creq *c, const struct edge_rl_conf *rl, const struct cdn_rl_result *res);
const struct edge_hdr *fetch_storable_fields(h2o_mem_pool_t *pool, const struct edge_cc *cc,
                                              const struct edge_hdr *h, size_t *n);
const char *fetch_state_name(enum fetch_state s);
void fetch_set_state(struct fetch *f, enum fetch_state s);
void fetch_release(struct fetch *f);
void fetch_unlist(struct fetch *f);
void fetch_leave(struct creq *c);
void fetch_pump_waiters(struct fetch *f);
void fetch_grew(struct fetch *f);
int fetch_body(cdn_httpc_req_t *hr, const void *buf, size_t len, void *data);
void fetch_flow(struct fetch *f); /* reads the upstream no faster than the clients take it (unstored) */
int fetch_unwanted(struct fetch *f);
void fetch_on_info(cdn_httpc_req_t *hr, int status, const struct cdn_httpc_header *h, size_t n, void *data);
void fetch_on_done(cdn_httpc_req_t *hr, const char *errstr, void *data);
void fetch_end(struct fetch *f, enum cdn_httpc_error kind, const char *errstr);
struct edge_obj *fetch_error_stale(struct fetch *f, struct creq *c, int64_t now, int64_t *age);
unsigned fetch_serve_error_stale(struct fetch *f, const char *d, cdn_series_t *also, int keep);
int fetch_send(struct fetch *f, const void *body, size_t body_len);
void fetch_start(struct creq *c, int result, int collapsible, struct edge_obj *stale, int stale_if_error);
int fetch_join(struct creq *c, int validating);
struct fetch *fetch_new(struct creq *c, struct edge_obj *stale, int stale_if_error);
void fetch_add_waiter(struct fetch *f, struct creq *c);
int fetch_resp_head(cdn_httpc_req_t *hr, int status, int version, const struct cdn_httpc_header *h,
                      size_t n, void *data);
void fetch_mirror_leave(struct fetch *f);
void fetch_mirror_sync(struct fetch *f);
void fetch_on_feed_message(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages);
int fetch_mirror_join(struct creq *c, struct edge_obj *stale, int stale_if_error);
void fetch_replay_infos(struct creq *c, struct fetch *f);
int fetch_slot_get(struct fetch *f);
void fetch_queue_unlink(struct fetch *f);
void fetch_slot_put(struct fetch *f);
void fetch_queue_pump(struct edge_worker *w);
void fetch_on_queue_timer(cdn_timer_t *t, void *data);
void fetch_retry_pump(struct edge_worker *w);
void fetch_fb_arm(struct fetch *f);
void fetch_fb_disarm(struct fetch *f);
int fetch_slow_stale(struct creq *c);
void fetch_brk_outcome(struct fetch *f, int ok, int answered);
void req_synth_unavailable(struct creq *c, uint64_t retry_ms, const char *detail, const char *body);

#endif
