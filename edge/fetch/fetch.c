/* edge/fetch/fetch.c - the busy object: a fetch is started by its first client (the owner),
 * joined by later ones (waiters), left by each; the upstream request (parents in rendezvous
 * order, then the origin), its callbacks, and the store write at its end. */
#include "config.h"
#include <stdarg.h>
#include <assert.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdn/http.h"
#include "cdn/loop.h"
#include "edge/req/decide.h"
#include "edge/req/req.h"
#include "edge/http/range.h"
#include "edge/store/tier_ram.h"

#define HUNG_DETAIL "fwd=stale; detail=origin-hung" /* a stored copy given at a hang */

static const struct cdn_httpc_cbs fetch_cbs;

const char *fetch_state_name(enum fetch_state s)
{
    static const char *const names[] = {"requested", "headers", "streaming", "finished", "failed"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* The one place a fetch changes state: forward only, nothing after finished or failed. */
void fetch_set_state(struct fetch *f, enum fetch_state s)
{
    assert(f->magic == FETCH_MAGIC);
    if (f->state == s)
        return;
    assert(edge_fetch_state_ok(f->state, s));
    if (cdn_log_get_level() <= CDN_LOG_DEBUG)
        cdn_debug("fetch %016llx%s: %s -> %s", (unsigned long long)f->id, f->mirror ? " (mirror)" : "",
                  fetch_state_name(f->state), fetch_state_name(s));
    f->state = s;
}
static int on_fetch_head(cdn_httpc_req_t *hr, int status, int version, const struct cdn_httpc_header *h, size_t n,
                         void *data);
static int on_fetch_body(cdn_httpc_req_t *hr, const void *buf, size_t len, void *data);
static const char **upstream_headers(struct creq *c, int fill, struct edge_obj *stale, int *nparent);

/* The headers of h a shared cache may store: without the fields that a qualified private="..."
 * or no-cache="..." names (RFC 9111 5.2.2.7: not stored; 5.2.2.4: reused only without them), and
 * without X-Request-Id, which belongs to one request (an origin that echoes it would otherwise
 * show one client's id to every later client). Returns h itself when nothing is dropped, else a
 * pool copy with *n reduced. */
const struct edge_hdr *fetch_storable_fields(h2o_mem_pool_t *pool, const struct edge_cc *cc,
                                              const struct edge_hdr *h, size_t *n)
{
    int listed = (cc->flags & (EDGE_CC_PRIVATE_FIELDS | EDGE_CC_NO_CACHE_FIELDS)) && cc->fields[0] != '\0', rid = 0;
    for (size_t i = 0; i < *n && !rid; i++)
        rid = name_is(&h[i], "x-request-id");
    if (!listed && !rid)
        return h;
    struct edge_hdr *out = h2o_mem_alloc_pool(pool, (*n ? *n : 1) * sizeof(*out));
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!(listed && edge_cc_lists_field(cc, h[i].name, h[i].name_len)) && !name_is(&h[i], "x-request-id"))
            out[k++] = h[i];
    *n = k;
    return out;
}

void fetch_release(struct fetch *f)
{
    assert(f->magic == FETCH_MAGIC && f->refs > 0); /* released more often than taken */
    if (--f->refs > 0)
        return;
    fetch_fb_disarm(f);
    if (f->brk_sent)
        edge_brk_release(f->brk, f->brk_probe);
    if (h2o_linklist_is_linked(&f->rlink))
        h2o_linklist_unlink(&f->rlink);
    if (f->in_table)
        edge_idmap_del(&f->w->fetches, f->id);
    fetch_queue_unlink(f);
    fetch_slot_put(f);
    /* chunks handed to a feed are the feed's */
    size_t own_from = 0;
    if (f->mirror)
        own_from = f->nchunks;
    else if (f->feed != NULL) {
        pthread_mutex_lock(&f->feed->mu);
        own_from = f->feed->nchunks;
        pthread_mutex_unlock(&f->feed->mu);
    }
    for (size_t i = own_from; i < f->nchunks; i++)
        free(f->chunks[i]);
    if (f->fill_counted)
        edge_fill_add(-(int64_t)f->fill_counted);
    if (f->feed != NULL && !f->mirror) {
        edge_feed_done(f->feed, CDN_HTTPC_ABORTED, "aborted", !fetch_has_head(f)); /* no-op when published already */
        edge_feed_unlist(f->feed);
        edge_feed_release(f->feed);
    }
    edge_feed_release(f->held);
    free(f->chunks);
    free(f->hdrs);
    free(f->harena);
    free(f->key);
    free(f->path);
    free(f->method);
    free(f->uphdrs);
    edge_obj_release(f->stale);
    f->magic = 0;
    free(f);
}

void fetch_unlist(struct fetch *f)
{
    if (f->in_table) {
        edge_idmap_del(&f->w->fetches, f->id);
        f->in_table = 0;
    }
    if (f->feed != NULL && !f->mirror)
        edge_feed_unlist(f->feed);
}

void fetch_leave(struct creq *c)
{
    if (c->f == NULL)
        return;
    struct fetch *f = c->f;
    if (h2o_linklist_is_linked(&c->link))
        h2o_linklist_unlink(&c->link);
    c->f = NULL;
    if (f->owner == c)
        f->owner = NULL;
    /* an uncollapsible fetch nobody listens to is cancelled; a cache fill runs to the end */
    if (!fetch_is_over(f) && f->hr && !f->in_cb && (!f->collapsible || (fetch_has_head(f) && !f->store)) &&
        h2o_linklist_is_empty(&f->waiters)) {
        cdn_httpc_cancel(f->hr);
        f->hr = NULL;
        fetch_slot_put(f);
        fetch_set_state(f, FETCH_FAILED);
        if (f->feed != NULL)
            edge_feed_done(f->feed, CDN_HTTPC_ABORTED, "cancelled", !fetch_has_head(f));
        fetch_release(f); /* the transfer's reference */
    }
    /* a fetch still queued for an origin slot that nobody waits for any more (here or on
     * another worker) has sent nothing yet: it is dropped rather than started later (a client
     * that resets its streams must not leave a queue of origin requests behind) */
    if (!fetch_is_over(f) && f->queued && !f->in_cb && !f->background && h2o_linklist_is_empty(&f->waiters) &&
        !edge_feed_followed(f->feed)) {
        fetch_queue_unlink(f);
        cdn_counter_inc(f->w->srv->m_orphan_drop);
        fetch_end(f, CDN_HTTPC_ABORTED, "cancelled: no client waits for it"); /* the transfer's reference */
    }
    /* a mirror nobody listens to has nothing to fill: leave the feed */
    if (!fetch_is_over(f) && f->sub && !f->in_cb && h2o_linklist_is_empty(&f->waiters)) {
        fetch_mirror_leave(f);
        fetch_set_state(f, FETCH_FAILED);
        fetch_unlist(f);
        fetch_release(f); /* the subscription's reference */
    }
    fetch_release(f);
}

/* Lets every waiter of f send what has arrived (or finish). */
void fetch_pump_waiters(struct fetch *f)
{
    h2o_linklist_t *node = f->waiters.next;
    while (node != &f->waiters) {
        struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, node);
        node = node->next;
        req_deliver_pump(c);
    }
}

/* The body of f grew: past max_object it is no longer stored (nor offered to other requests);
 * the waiters get the new bytes either way. */
void fetch_grew(struct fetch *f)
{
    if (f->state == FETCH_HEADERS)
        fetch_set_state(f, FETCH_STREAMING);
    if (f->total > f->w->srv->conf.max_object && f->store) {
        f->store = 0;
        fetch_unlist(f);
    }
    fetch_pump_waiters(f);
}

int fetch_body(cdn_httpc_req_t *hr, const void *buf, size_t len, void *data)
{
    struct fetch *f = data;
    const char *p = buf;
    while (len > 0) {
        if (f->nchunks == 0 || f->last_len == CHUNK) {
            if (f->nchunks == f->cap_chunks) {
                size_t nc = f->cap_chunks ? f->cap_chunks * 2 : 8;
                char **n = realloc(f->chunks, nc * sizeof(*n));
                if (n == NULL)
                    return 1;
                f->chunks = n;
                f->cap_chunks = nc;
            }
            if ((f->chunks[f->nchunks] = malloc(CHUNK)) == NULL) {
                if (f->feed != NULL)
                    edge_feed_body(f->feed, f->chunks, f->nchunks, f->total);
                return 1;
            }
            f->nchunks++;
            f->last_len = 0;
        }
        size_t k = CHUNK - f->last_len < len ? CHUNK - f->last_len : len;
        memcpy(f->chunks[f->nchunks - 1] + f->last_len, p, k);
        f->last_len += k;
        f->total += k;
        p += k;
        len -= k;
    }
    if (f->feed != NULL)
        edge_feed_body(f->feed, f->chunks, f->nchunks, f->total);
    if (!f->mirror) { /* the body bytes this fetch holds (a mirror's are its owner's) */
        uint64_t held = f->total - f->fill_counted;
        f->fill_counted = f->total;
        edge_fill_add((int64_t)held);
    }
    fetch_grew(f);
    fetch_flow(f);
    return 0;
}

/* Flow control of a response that is not stored (a pass, or a miss whose response may not be
 * stored). Its body is there only for its clients, so it is read from the upstream no further
 * than one chunk ahead of the quickest of them: a client that takes nothing (an HTTP/2 stream
 * whose window stays shut) holds at most two chunks, not the whole body, and send_timeout then
 * ends it. A fill that is stored reads on at full speed whatever its clients do, and so does a
 * response other workers' clients follow (their progress is not visible here). */
void fetch_flow(struct fetch *f)
{
    if (f->hr == NULL || f->mirror || f->store || !fetch_has_head(f) || fetch_is_over(f))
        return;
    uint64_t lag = UINT64_MAX; /* bytes the quickest unfinished waiter has still to send */
    for (h2o_linklist_t *n = f->waiters.next; n != &f->waiters; n = n->next) {
        const struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, n);
        if (!c->finished && f->total - c->sent < lag)
            lag = f->total - c->sent;
    }
    int pause = lag >= CHUNK && !edge_feed_followed(f->feed);
    if (pause != f->paused) {
        f->paused = pause;
        cdn_httpc_pause(f->hr, pause); /* resuming may deliver buffered body right here */
    }
}

/* The callbacks hold a reference and mark the fetch busy, so that a waiter leaving during them
 * neither cancels the transfer under curl nor frees the fetch; an fetch_unwanted transfer is aborted by
 * the return value instead. */
int fetch_unwanted(struct fetch *f)
{
    return (!f->collapsible || (fetch_has_head(f) && !f->store)) && h2o_linklist_is_empty(&f->waiters);
}

/* 1 when the fetch could go to another upstream after this one: another parent that is up and
 * not tried, or the origin (unless parent_only); and the request may be sent again (a cache fill,
 * or a safe method whose client is still there). */
static int has_next_upstream(struct fetch *f)
{
    const struct edge_vhost *vh = f->vh;
    int safe = f->rq.method == EDGE_M_GET || f->rq.method == EDGE_M_HEAD || f->rq.method == EDGE_M_OPTIONS;
    if (!f->collapsible && (!safe || f->owner == NULL))
        return 0;
    return edge_parent_pick(vh->parents, vh->nparents, f->id, cdn_now_ms(), f->tried) >= 0 || !vh->parent_only;
}

/* The retry budget (resil.h) for this fetch's next upstream, asked once per retry. */
static int retry_ok(struct fetch *f)
{
    if (!f->retry_granted)
        f->retry_granted = edge_retry_allow();
    return f->retry_granted;
}

/* The wait before this fetch's next retry: full jitter over an exponential backoff, 0 when
 * retry_budget.backoff is not set. */
static uint64_t retry_backoff(struct fetch *f)
{
    const struct edge_resil_conf *rc = &f->w->srv->conf.resil;
    if (rc->backoff_ms == 0)
        return 0;
    unsigned n = f->nretries++ < 16 ? f->nretries : 16;
    uint64_t cap = rc->backoff_ms << (n - 1);
    if (rc->backoff_max_ms > 0 && cap > rc->backoff_max_ms)
        cap = rc->backoff_max_ms;
    return cdn_hash_u64(f->id ^ cdn_now_ms() ^ ((uint64_t)n << 56)) % (cap + 1);
}

/* Sends the fetches whose retry backoff is over (the worker's queue timer); one that cannot go
 * any more (its client left, nowhere to go) ends with the failure that made it retry. */
void fetch_retry_pump(struct edge_worker *w)
{
    uint64_t now = cdn_now_ms();
    h2o_linklist_t *node = w->retry_wait.next;
    while (node != &w->retry_wait) {
        struct fetch *f = H2O_STRUCT_FROM_MEMBER(struct fetch, rlink, node);
        node = node->next;
        if (f->retry_at > now && (f->collapsible || f->owner != NULL))
            continue;
        h2o_linklist_unlink(&f->rlink);
        node = w->retry_wait.next; /* the send may change the list: start over */
        f->retrying = 1;
        if ((f->collapsible || f->owner != NULL) &&
            fetch_send(f, f->collapsible ? NULL : f->owner->req->entity.base,
                       f->collapsible ? 0 : f->owner->req->entity.len) == 0) {
            f->retrying = 0;
            continue;
        }
        char why[sizeof(f->err)];
        snprintf(why, sizeof(why), "%s", f->vh->parent_only ? "no parent is up (parent_only)" : f->err);
        fetch_end(f, f->retry_kind, why);
    }
    if (!h2o_linklist_is_empty(&w->retry_wait) && !cdn_timer_active(w->queue_timer))
        cdn_timer_start(w->queue_timer, QUEUE_POLL_MS);
}

/* RFC 9112 6.1: a response whose Transfer-Encoding ends in anything but chunked is delimited by
 * the connection's close; libcurl cannot take it (it fails after the head), so such a head is
 * refused before it reaches a client: 502 with the reason, as Squid and Varnish answer. */
static int unsupported_coding(const struct cdn_httpc_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len != 17 || strncasecmp(h[i].name, "transfer-encoding", 17) != 0)
            continue;
        const char *v = h[i].value;
        size_t l = h[i].value_len;
        edge_trim_ows(&v, &l);
        if (l != 7 || strncasecmp(v, "chunked", 7) != 0)
            return 1;
    }
    return 0;
}

static int on_fetch_head(cdn_httpc_req_t *hr, int status, int version, const struct cdn_httpc_header *h,
                         size_t n, void *data)
{
    struct fetch *f = data;
    fetch_fb_disarm(f);
    /* the breaker counts 5xx as failures (and answers as success), but not a parent's 5xx that is
     * its origin's failure: the parent is up (decide.h, edge_parent_upstream_failed) */
    int parent_up = 0;
    for (size_t i = 0; f->parent >= 0 && status >= 500 && i < n; i++)
        if (h[i].name_len == 12 && strncasecmp(h[i].name, "cache-status", 12) == 0 &&
            edge_parent_upstream_failed(h[i].value, h[i].value_len))
            parent_up = 1;
    if (f->brk != NULL && f->brk_hung && !f->brk_sent) {
        f->brk_hung = 0; /* reported hung, and here it is: slow, not dead (an open breaker closes) */
        edge_brk_late(f->brk, status < 500 || parent_up, f->brk_sent_at);
    }
    fetch_brk_outcome(f, status < 500 || parent_up, 1);
    if (!fetch_has_head(f) && unsupported_coding(h, n)) {
        f->bad_head = "upstream response has a transfer coding other than chunked";
        return 1;
    }
    /* a parent that answers 5xx (or 508: it sees a loop) is passed over while there is another
     * upstream to ask: abort this response, fetch_on_done sends the fetch on. Not when the parent
     * is up and says its origin fails (parent_up): going round the shield would only add load to
     * the failing origin (as Fastly's shielding does: a shield that answers is not bypassed); the
     * parent's answer stands, and a stored copy may serve under grace (fetch_error_stale) */
    if (parent_up)
        f->parent_origin_bad = 1;
    if (f->parent >= 0 && status >= 500 && !parent_up && !fetch_has_head(f) && has_next_upstream(f) && retry_ok(f)) {
        f->parent_status = status;
        return 1;
    }
    f->refs++;
    f->in_cb = 1;
    int r = fetch_resp_head(hr, status, version, h, n, f) || fetch_unwanted(f);
    if (f->feed != NULL && !f->mirror && fetch_has_head(f) &&
        edge_feed_head(f->feed, status, h, n, f->store, f->key, f->key_len) < 0)
        edge_feed_unlist(f->feed); /* cannot share it: later requests fetch on their own */
    f->in_cb = 0;
    fetch_release(f);
    return r;
}

void fetch_on_info(cdn_httpc_req_t *hr, int status, const struct cdn_httpc_header *h, size_t n, void *data)
{
    struct fetch *f = data;
    for (h2o_linklist_t *node = f->waiters.next; node != &f->waiters; node = node->next)
        req_deliver_info(H2O_STRUCT_FROM_MEMBER(struct creq, link, node), status, h, n);
    /* and to the clients waiting on other workers (fetch_mirror_sync passes it on there) */
    if (f->feed != NULL && !f->mirror)
        edge_feed_info(f->feed, status, h, n);
    (void)hr;
}

static int on_fetch_body(cdn_httpc_req_t *hr, const void *buf, size_t len, void *data)
{
    struct fetch *f = data;
    f->refs++;
    f->in_cb = 1;
    int r = fetch_body(hr, buf, len, f) || fetch_unwanted(f);
    f->in_cb = 0;
    fetch_release(f);
    return r;
}

static void fetch_store(struct fetch *f)
{
    struct edge_server *s = f->w->srv;
    int64_t now = now_s();
    struct edge_resp_meta rs;
    struct edge_fresh fr;
    edge_resp_analyze(f->hdrs, f->nhdrs, f->status, &s->conf.fresh, &rs);
    edge_fresh_from_resp(&fr, &rs, f->req_time, now, &s->conf.fresh);
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    size_t nh = f->nhdrs;
    const struct edge_hdr *hs = fetch_storable_fields(&pool, &rs.cc, f->hdrs, &nh);
    struct edge_obj *o = edge_obj_new(f->key, f->key_len, f->pkey_len, f->status, hs, nh, f->vary,
                                      f->vary_len > 0 ? (size_t)f->vary_len : 0, &fr, f->req_time);
    h2o_mem_clear_pool(&pool);
    uint8_t *body = malloc(f->total ? f->total : 1);
    if (o == NULL || body == NULL) {
        free(body);
        edge_obj_release(o);
        return;
    }
    for (size_t i = 0; i < f->nchunks; i++)
        memcpy(body + i * CHUNK, f->chunks[i], i == f->nchunks - 1 ? f->last_len : CHUNK);
    edge_obj_set_body(o, body, f->total);
    if (edge_store_put(s->store, o) == 0) /* -1: born before a purge that covers it (store.h) */
        cdn_counter_inc(s->m_stored);
    edge_obj_release(o);
}

/* The end of the upstream transfer (httpc's on_done): kind says what went wrong, if anything. */
void fetch_on_done(cdn_httpc_req_t *hr, const char *errstr, void *data)
{
    fetch_end(data, errstr == NULL ? CDN_HTTPC_OK : hr != NULL ? cdn_httpc_info(hr)->error : CDN_HTTPC_INTERNAL, errstr);
}

/* The stored copy waiter c gets instead of its upstream's error (edge_error_stale in decide.c): the
 * stale copy the fetch was validating, else what the store holds for c's key now (c's lookup may
 * have missed a copy the disk tier still had queued, or c joined a plain fill), if stale-if-error
 * (or freshness) allows it. A reference with its current age, or NULL. Passes never get one. */
struct edge_obj *fetch_error_stale(struct fetch *f, struct creq *c, int64_t now, int64_t *age)
{
    if (f->stale != NULL && f->stale_if_error) {
        *age = edge_current_age(f->stale->fresh.initial_age, f->stale->fresh.response_time, now);
        return edge_obj_ref(f->stale);
    }
    if (!f->collapsible || (c->method != EDGE_M_GET && c->method != EDGE_M_HEAD))
        return NULL;
    int tier, corrupt;
    struct edge_obj *o = edge_store_get(f->w->srv->store, c->key, c->key_len, &tier, &corrupt);
    if (o == NULL)
        return NULL;
    struct edge_verdict v;
    edge_decide(&o->fresh, &c->rq, now, &v);
    /* the upstream is known bad (its breaker refused us, is open, the request hung, or a parent
     * says its origin fails): grace beyond stale-if-error */
    int64_t grace = (f->parent_origin_bad || (f->brk != NULL && (f->brk_refused || f->brk_hung || edge_brk_is_bad(f->brk))))
                        ? (int64_t)(f->w->srv->conf.resil.grace_ms / 1000) : 0;
    if ((c->rq.has_authorization && !(o->fresh.flags & EDGE_F_AUTH_OK)) ||
        edge_error_stale(0, 1, &v, (o->fresh.flags & (EDGE_F_REVALIDATE | EDGE_F_NO_CACHE)) != 0, grace) ==
            EDGE_STALE_NONE) {
        edge_obj_release(o);
        return NULL;
    }
    *age = v.age;
    return o;
}

/* The one end of a fetch: the upstream transfer is over (errstr NULL: complete), or it never
 * started or was dropped (kind and errstr say why). Either the next upstream is asked, or the
 * fetch finishes or fails and its waiters get what there is. */
void fetch_end(struct fetch *f, enum cdn_httpc_error kind, const char *errstr)
{
    assert(f->magic == FETCH_MAGIC);
    struct edge_server *s = f->w->srv;
    f->hr = NULL;
    fetch_fb_disarm(f);
    fetch_slot_put(f);
    if (f->bad_head != NULL) {
        errstr = f->bad_head;
        kind = CDN_HTTPC_PROTOCOL;
    }
    /* the breaker's outcome of a request without a head (one with a head was told at the head) */
    if (f->brk_sent && (errstr == NULL || edge_upstream_failed(kind)))
        fetch_brk_outcome(f, errstr == NULL, errstr == NULL);
    else if (f->brk_sent) {
        edge_brk_release(f->brk, f->brk_probe); /* cancelled, or our own error: says nothing */
        f->brk_sent = 0;
    }
    /* a parent that cannot be reached: mark it down and ask the next one (or the origin). A
     * request with a body can be resent only while its client request (the body) is there. */
    if (errstr != NULL && f->parent >= 0 && !f->retrying &&
        edge_upstream_retry(kind, fetch_has_head(f), f->parent_status)) {
        struct edge_parent *p = &f->vh->parents[f->parent];
        if (f->parent_status) {
            /* it is up (it answered): not marked down, only passed over for this request */
            cdn_counter_inc(s->m_parent_5xx);
            cdn_info("parent %s answered %d; asking the next upstream", p->url, f->parent_status);
            f->parent_status = 0;
        } else {
            edge_parent_mark_down(p, cdn_now_ms(), s->conf.parent_retry_ms);
            cdn_counter_inc(s->m_parent_down);
            cdn_warn("parent %s: %s; skipped for %llu ms", p->url, errstr, (unsigned long long)s->conf.parent_retry_ms);
        }
        /* the retry budget: past it, the failure is answered (stale, or the error) */
        int go = retry_ok(f);
        f->retry_granted = 0;
        uint64_t wait = go ? retry_backoff(f) : 0;
        if (go && wait > 0 && (f->collapsible || f->owner != NULL)) {
            /* back off first (full jitter); fetch_retry_pump sends it (the transfer's reference
             * goes with it) */
            snprintf(f->err, sizeof(f->err), "%s", errstr);
            f->retry_kind = kind;
            f->retry_at = cdn_now_ms() + wait;
            h2o_linklist_insert(&f->w->retry_wait, &f->rlink);
            if (!cdn_timer_active(f->w->queue_timer))
                cdn_timer_start(f->w->queue_timer, QUEUE_POLL_MS);
            return;
        }
        if (go && (f->collapsible || f->owner != NULL) &&
            fetch_send(f, f->collapsible ? NULL : f->owner->req->entity.base,
                       f->collapsible ? 0 : f->owner->req->entity.len) == 0)
            return; /* the transfer's reference goes on with the new request */
        if (f->vh->parent_only)
            errstr = "no parent is up (parent_only)";
    }
    fetch_set_state(f, errstr != NULL ? FETCH_FAILED : FETCH_FINISHED);
    f->in_cb = 1; /* over: nothing left to cancel */
    /* store before unlisting: a miss that comes in between would find neither the fetch nor the
     * object and go upstream a second time */
    if (errstr == NULL && f->store && !f->mirror)
        fetch_store(f);
    fetch_unlist(f);
    if (f->feed != NULL && !f->mirror)
        edge_feed_done(f->feed, kind, errstr, errstr != NULL && !fetch_has_head(f));
    fetch_mirror_leave(f);
    if (errstr != NULL && !fetch_has_head(f)) {
        /* no response at all: stale-if-error, else 502/504 (503 when no origin slot came free)
         * with the reason */
        if (f->shed != NULL)
            edge_shed_count(f->shed);
        if (!f->mirror && !f->busy && !f->brk_refused && f->shed == NULL)
            cdn_counter_inc(s->m_origin_err);
        int timeout = edge_upstream_error_status(kind) == 504;
        char body[256];
        if (f->shed != NULL)
            snprintf(body, sizeof(body), "overloaded: %s", strcmp(f->shed, "memory") == 0
                     ? "the memory for bodies in flight (fill_memory) is spent" : "the fetch queue (fetch_queue_max) is full");
        else if (f->brk_refused)
            snprintf(body, sizeof(body), "origin unavailable: the circuit breaker for %s is open; retry in %llu s",
                     edge_brk_url(f->brk), (unsigned long long)((f->brk_retry_ms + 999) / 1000));
        else if (f->busy)
            snprintf(body, sizeof(body), "%s", errstr);
        else
            snprintf(body, sizeof(body), "%s: %s",
                     f->bad_head ? "bad origin response" : timeout ? "origin timeout" : "origin unreachable", errstr);
        while (!h2o_linklist_is_empty(&f->waiters)) {
            struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, f->waiters.next);
            int64_t age;
            struct edge_obj *so = fetch_error_stale(f, c, now_s(), &age);
            fetch_leave(c);
            if (so != NULL) {
                req_count(s, M_STALE, T_NONE);
                if (f->brk_refused)
                    cdn_counter_inc(s->m_brk_stale);
                c->from_cache = 1;
                req_deliver_obj(c, so, f->brk_refused ? "fwd=stale; detail=breaker-open" : "fwd=stale; detail=stale-if-error",
                                age);
                edge_obj_release(so);
            } else if (f->shed != NULL) {
                req_synth_unavailable(c, 1000, "fwd=miss; detail=shed", body); /* Retry-After: 1 */
            } else if (f->brk_refused) {
                cdn_counter_inc(s->m_brk_503);
                req_synth_unavailable(c, f->brk_retry_ms, "fwd=miss; detail=breaker-open", body);
            } else if (f->busy) {
                req_synth_error(c, 503, "Service Unavailable", "fwd=miss; detail=origin-busy", body);
            } else {
                req_synth_bad_gateway(c, timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway", body);
            }
        }
        fetch_release(f);
        return;
    }
    if (errstr != NULL) {
        snprintf(f->err, sizeof(f->err), "%s", errstr);
    }
    fetch_pump_waiters(f);
    fetch_release(f); /* the transfer's reference */
}

/* The request sent upstream: every end-to-end header of the client, Host kept, plus
 * X-Forwarded-For and Via. A cache fill drops the client's validators and Range (we want the whole
 * object); a revalidation adds ours. */
/* A client's value of a reflected field (CDN_HDR_REFLECTED: origins reflect or act on them, and
 * they are not in the cache key) goes upstream only when the vhost's forward_headers lists it;
 * the edge sets X-Forwarded-Host / -Proto and Forwarded itself. */
static int forward_allowed(const struct edge_vhost *vh, const struct edge_hdr *h)
{
    for (size_t i = 0; i < vh->nforward; i++)
        if (name_is(h, vh->forward[i]))
            return 1;
    return 0;
}

/* Concatenates n pieces, each a (pointer, length) pair given with P, L or Z, into a NUL-terminated
 * line from the pool. vsnprintf for these lines was 5% of a pass request's CPU. */
#define P(p, l) (const char *)(p), (size_t)(l)
#define L(lit) P(lit, sizeof(lit) - 1)
#define Z(str) P(str, strlen(str))
static char *pool_cat(h2o_mem_pool_t *pool, int n, ...)
{
    va_list ap;
    size_t total = 1;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        (void)va_arg(ap, const char *);
        total += va_arg(ap, size_t);
    }
    va_end(ap);
    char *line = h2o_mem_alloc_pool(pool, total), *p = line;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *x = va_arg(ap, const char *);
        size_t l = va_arg(ap, size_t);
        memcpy(p, x, l);
        p += l;
    }
    va_end(ap);
    *p = '\0';
    return line;
}

/* The fields the edge adds from what it knows: who asked (for), for which host, over which
 * scheme (RFC 7239 Forwarded and the X-Forwarded-* spellings origins read); a client's own
 * value of each passes only where the vhost allows it (then ours is not added). */
static size_t add_forwarded(struct creq *c, const char *peer, int v6, const int have[3], const char *fwd_client,
                            const char **out, size_t n)
{
    h2o_req_t *req = c->req;
    const char *scheme = req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http";
    if (!have[0])
        out[n++] = pool_cat(&req->pool, 2, L("X-Forwarded-Host: "), P(req->authority.base, req->authority.len));
    if (!have[1])
        out[n++] = pool_cat(&req->pool, 2, L("X-Forwarded-Proto: "), Z(scheme));
    if (peer[0])
        out[n++] = pool_cat(&req->pool, 10, L("Forwarded: "), Z(fwd_client ? fwd_client : ""), Z(fwd_client ? ", " : ""),
                            L("for="), Z(v6 ? "\"[" : ""), Z(peer), Z(v6 ? "]\"" : ""), L(";host=\""),
                            P(req->authority.base, req->authority.len), Z(scheme[4] ? "\";proto=https" : "\";proto=http"));
    return n;
}

static const char **upstream_headers(struct creq *c, int fill, struct edge_obj *stale, int *nparent)
{
    h2o_req_t *req = c->req;
    size_t max = c->nhdrs + 17; /* Host, CDN-Edge-Key, CDN-Loop, XFF, Via, X-Request-Id, Accept, Expect, 2 validators,
                                   X-Forwarded-Host, X-Forwarded-Proto, Forwarded, NULL */
    const char **out = h2o_mem_alloc_pool(&req->pool, max * sizeof(*out));
    size_t n = 0;
    char peer[64] = "";
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl > 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof(peer));
    else if (sl > 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof(peer));
    int have_xff = 0, have_accept = 0, have_via = 0, have_loop = 0, have_fwd[3] = {0, 0, 0};
    const char *fwd_client = NULL;
    /* parents only (an origin gets the list from [nparent] on): [0] the Host a parent needs to
     * pick the same vhost and key (an origin gets its URL's), [1] the edges' key if there is one */
    char *line = pool_cat(&req->pool, 2, L("Host: "), P(req->authority.base, req->authority.len));
    out[n++] = line;
    const char *ek = c->w->srv->conf.edge_key;
    if (ek != NULL)
        out[n++] = pool_cat(&req->pool, 2, L("CDN-Edge-Key: "), Z(ek));
    *nparent = n;
    for (size_t i = 0; i < c->nhdrs; i++) {
        const struct edge_hdr *h = &c->hdrs[i];
        unsigned cls = cdn_http_hdr_class(h->name, h->name_len);
        if (edge_hdr_is_hop(c->hdrs, c->nhdrs, h->name, h->name_len) || (cls & CDN_HDR_NO_FORWARD) ||
            ((cls & CDN_HDR_REFLECTED) && !forward_allowed(c->vh, h)))
            continue;
        if ((name_is(h, "x-request-id") && c->own_request_id) || name_is(h, "cdn-edge-key"))
            continue; /* the client's id was unusable: ours replaces it; a key is never passed on */
        if (fill && (name_is(h, "if-none-match") || name_is(h, "if-modified-since") || name_is(h, "range") ||
                     name_is(h, "if-range") || name_is(h, "if-match") || name_is(h, "if-unmodified-since")))
            continue;
        if (name_is(h, "forwarded")) { /* allowed: ours is appended to it */
            fwd_client = pool_cat(&req->pool, 1, P(h->value, h->value_len));
            continue;
        }
        have_fwd[0] |= name_is(h, "x-forwarded-host");
        have_fwd[1] |= name_is(h, "x-forwarded-proto");
        const char *extra = "";
        if (name_is(h, "x-forwarded-for")) {
            have_xff = 1;
            extra = peer;
        } else if (name_is(h, "via")) {
            have_via = 1;
            extra = c->w->srv->via;
        } else if (name_is(h, "cdn-loop")) {
            have_loop = 1;
            extra = c->w->srv->cache_name;
        }
        if (name_is(h, "accept"))
            have_accept = 1;
        if (*extra)
            line = pool_cat(&req->pool, 5, P(h->name, h->name_len), L(": "), P(h->value, h->value_len), L(", "), Z(extra));
        else if (h->value_len == 0)
            line = pool_cat(&req->pool, 2, P(h->name, h->name_len), L(";")); /* curl: "Name;" sends it empty */
        else
            line = pool_cat(&req->pool, 3, P(h->name, h->name_len), L(": "), P(h->value, h->value_len));
        out[n++] = line;
    }
    n = add_forwarded(c, peer, sl > 0 && ss.ss_family == AF_INET6, have_fwd, fwd_client, out, n);
    if (!have_loop) {
        out[n++] = pool_cat(&req->pool, 2, L("CDN-Loop: "), Z(c->w->srv->cache_name));
    }
    if (!have_xff && peer[0]) {
        out[n++] = pool_cat(&req->pool, 2, L("X-Forwarded-For: "), Z(peer));
    }
    if (!have_via) {
        out[n++] = pool_cat(&req->pool, 2, L("Via: "), Z(c->w->srv->via));
    }
    if (c->own_request_id) {
        out[n++] = pool_cat(&req->pool, 2, L("X-Request-Id: "), Z(c->request_id));
    }
    if (!have_accept)
        out[n++] = "Accept:"; /* no curl default */
    out[n++] = "Expect:";
    if (stale != NULL) {
        const struct edge_hdr *et = edge_obj_hdr(stale, "etag"), *lm = edge_obj_hdr(stale, "last-modified");
        if (et)
            out[n++] = pool_cat(&req->pool, 2, L("If-None-Match: "), P(et->value, et->value_len));
        if (lm)
            out[n++] = pool_cat(&req->pool, 2, L("If-Modified-Since: "), P(lm->value, lm->value_len));
    }
    out[n] = NULL;
    /* one malloc'd block (pointers, then strings) owned by the fetch */
    size_t total = (n + 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        total += strlen(out[i]) + 1;
    char **blk = malloc(total);
    if (blk == NULL)
        return NULL;
    char *p = (char *)(blk + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(out[i]) + 1;
        memcpy(p, out[i], l);
        blk[i] = p;
        p += l;
    }
    blk[n] = NULL;
    return (const char **)blk;
}

static void on_brk_fb_deadline(h2o_timeout_entry_t *entry);

/* Sends the fetch to its next upstream: the key's first parent that is up and not yet tried,
 * else the origin (unless parent_only). 0 when started, -1 when there is nowhere to go. */
int fetch_send(struct fetch *f, const void *body, size_t body_len)
{
    struct edge_server *s = f->w->srv;
    const struct edge_vhost *vh = f->vh;
    int pi = vh->nparents ? edge_parent_pick(vh->parents, vh->nparents, f->id, cdn_now_ms(), f->tried) : -1;
    if (pi < 0 && vh->nparents > 0 && vh->parent_only)
        return -1;
    /* the upstream's circuit breaker (resil.h), asked once per upstream: while it is open a parent
     * is passed over for the next upstream, and an origin is not asked at all (fetch_end then
     * serves stale, with grace, or a 503 with Retry-After) */
    struct edge_brk *e = f->brk_sent ? NULL : edge_brk_of(pi >= 0 ? vh->parents[pi].url : vh->origin);
    if (e != NULL) {
        int probe;
        uint64_t retry;
        if (!edge_brk_allow(e, &probe, &retry)) {
            if (pi >= 0) {
                f->tried |= 1u << pi;
                return fetch_send(f, body, body_len);
            }
            f->brk = e;
            f->brk_hung = 0;
            f->brk_refused = 1;
            f->brk_retry_ms = retry;
            return -1;
        }
        f->brk = e;
        f->brk_hung = 0;
        f->brk_sent = 1;
        f->brk_sent_at = cdn_now_ms();
        f->brk_probe = probe;
    }
    /* shedding misses before hits (resil.h): under overload a new upstream request is not made
     * (hits and joins of fetches in flight are not affected); fetch_end answers its clients */
    const struct edge_resil_conf *rc = &s->conf.resil;
    if (!f->slot && rc->fill_memory > 0 && edge_fill_bytes() >= rc->fill_memory) {
        f->shed = "memory";
        return -1;
    }
    if (pi < 0 && !f->slot && vh->max_fetches > 0 && rc->fetch_queue_max > 0 &&
        f->w->queue_len >= rc->fetch_queue_max && fetch_slot_get(f) < 0) {
        f->shed = "queue";
        return -1;
    }
    if (pi < 0 && !f->slot && vh->max_fetches > 0 && fetch_slot_get(f) < 0) {
        /* every slot of this origin is taken: wait in the worker's FIFO (the transfer's
         * reference goes with the fetch); fetch_queue_pump sends it or fails it with 503 */
        f->queued = 1;
        f->q_since = cdn_now_ms();
        f->q_deadline = f->q_since + s->conf.connect_timeout_ms;
        h2o_linklist_insert(&f->w->fetch_queue, &f->qlink);
        f->w->queue_len++;
        cdn_counter_inc(s->m_queued);
        if (!cdn_timer_active(f->w->queue_timer))
            cdn_timer_start(f->w->queue_timer, QUEUE_POLL_MS);
        return 0;
    }
    const char *base = pi >= 0 ? vh->parents[pi].url : vh->origin;
    f->parent = pi;
    if (pi >= 0)
        f->tried |= 1u << pi;
    if (f->owner != NULL)
        f->owner->upstream = base;
    if (f->result >= 0) {
        req_count(s, f->result, pi >= 0 ? T_PARENT : T_ORIGIN);
        f->result = -1;
    }
    size_t bl = strlen(base), pl = strlen(f->path);
    char *url = malloc(bl + pl + 1);
    if (url == NULL)
        return -1;
    memcpy(url, base, bl);
    memcpy(url + bl, f->path, pl + 1);
    struct cdn_httpc_request hreq = {
        .method = f->method,
        .url = url,
        .headers = (const char *const *)(pi >= 0 ? f->uphdrs : f->uphdrs + f->nparent_hdrs),
        .body = body,
        .body_len = body_len,
    };
    cdn_counter_inc(s->m_fetch[pi >= 0 ? 0 : 1]);
    if (pi < 0)
        cdn_counter_inc(s->m_origin);
    f->refs++; /* held across the start: callbacks may run inside it */
    cdn_httpc_req_t *hr = cdn_httpc_start(f->w->httpc, &hreq, &fetch_cbs, f);
    free(url); /* httpc copies what it keeps */
    int r = 0;
    if (!fetch_is_over(f))
        f->hr = hr;
    if (hr != NULL && f->brk_sent && f->w->brk_fb_on && !fetch_is_over(f) && !fetch_has_head(f) &&
        !h2o_timeout_is_linked(&f->brk_fb_entry)) {
        f->brk_fb_entry.cb = on_brk_fb_deadline;
        h2o_timeout_link(f->w->ctx->loop, &f->w->brk_fb_timeout, &f->brk_fb_entry);
    }
    if (hr == NULL && !fetch_is_over(f)) {
        fetch_slot_put(f);
        if (f->brk_sent)
            edge_brk_release(f->brk, f->brk_probe);
        f->brk_sent = 0;
        r = -1;
    }
    fetch_release(f);
    return r;
}

/* Joins the fetch in flight on this worker (its own or a mirror) for c's key: before its head,
 * or after it while the response is being stored (the client gets the body from what came so
 * far). A validation joins only before the head. 1 if joined. */
int fetch_join(struct creq *c, int validating)
{
    uint64_t fv;
    if (!edge_idmap_get(&c->w->fetches, c->key_id, &fv))
        return 0;
    struct fetch *f = (struct fetch *)(uintptr_t)fv;
    assert(f->magic == FETCH_MAGIC); /* the table holds live fetches only */
    if (f->key_len != c->key_len || memcmp(f->key, c->key, c->key_len) != 0 ||
        (fetch_has_head(f) && (validating || !f->store)))
        return 0;
    fetch_add_waiter(f, c);
    if (f->brk_hung && !fetch_has_head(f)) {
        /* its upstream looks hung: the stored copy stale-if-error or grace allows, at once */
        fetch_serve_error_stale(f, HUNG_DETAIL, c->w->srv->m_brk_stale, 1);
        if (c->f == NULL)
            return 1;
    }
    cdn_counter_inc(c->w->srv->m_collapsed);
    if (fetch_has_head(f))
        req_deliver_fetch(c, f, "fwd=miss; detail=collapsed");
    else
        fetch_replay_infos(c, f);
    return 1;
}

/* Starts a fetch with c as its first waiter (and owner); result (M_MISS / M_PASS) is counted
 * under the tier that gets asked. */
/* The one initialiser of a fetch, an owner's or a mirror's: c's key, request facts and vhost.
 * No references yet (the caller adds the transfer's or the subscription's). NULL: out of memory. */
struct fetch *fetch_new(struct creq *c, struct edge_obj *stale, int stale_if_error)
{
    struct fetch *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->key = malloc(c->key_len + 1)) == NULL) {
        free(f);
        return NULL;
    }
    f->magic = FETCH_MAGIC;
    f->w = c->w;
    memcpy(f->key, c->key, c->key_len);
    f->key[c->key_len] = '\0';
    f->key_len = c->key_len;
    f->pkey_len = c->pkey_len;
    f->id = c->key_id;
    h2o_linklist_init_anchor(&f->waiters);
    f->stale = stale ? edge_obj_ref(stale) : NULL;
    f->stale_if_error = stale_if_error;
    f->req_time = now_s();
    f->rq = c->rq;
    f->t0 = mono();
    f->vh = c->vh;
    f->parent = -1;
    f->result = -1;
    return f;
}

/* c waits on f from now on (one reference, released by fetch_leave). */
void fetch_add_waiter(struct fetch *f, struct creq *c)
{
    assert(f->magic == FETCH_MAGIC && c->f == NULL);
    f->refs++;
    c->f = f;
    h2o_linklist_insert(&f->waiters, &c->link);
    /* answered in a later loop turn: keep the HTTP/1.1 client socket polled meanwhile, or h2o
     * stops and restarts reading it, two epoll_ctl per miss or pass (cdn/loop.h) */
    if (!c->read_held) {
        c->read_held = 1;
        cdn_req_hold_read(c->req);
    }
}

/* --- resilience (resil.h): the first-byte deadline of a fetch with a stale copy, the breaker --- */

/* The deadline passed and no head came: every client gets the stale copy now (Cache-Status
 * detail=slow-origin) and the fetch goes on with nobody waiting (a background refresh: its
 * answer is stored, or merged if it is a 304). Later requests for the key get the stale copy at
 * once while it runs (fetch_slow_stale). */
static void on_fb_deadline(h2o_timeout_entry_t *entry)
{
    struct fetch *f = H2O_STRUCT_FROM_MEMBER(struct fetch, fb_entry, entry);
    assert(f->magic == FETCH_MAGIC);
    if (fetch_has_head(f) || fetch_is_over(f) || f->in_cb || f->stale == NULL || !f->stale_if_error)
        return;
    struct edge_server *s = f->w->srv;
    int64_t now = now_s();
    f->slow = 1;
    f->background = 1; /* not dropped from the queue, not cancelled: it refreshes the object */
    f->refs++;
    while (!h2o_linklist_is_empty(&f->waiters)) {
        struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, f->waiters.next);
        fetch_leave(c);
        cdn_counter_inc(s->m_stale_slow);
        req_count(s, M_STALE, T_NONE);
        c->from_cache = 1;
        req_deliver_obj(c, f->stale, "fwd=stale; detail=slow-origin",
                        edge_current_age(f->stale->fresh.initial_age, f->stale->fresh.response_time, now));
    }
    fetch_release(f);
}

void fetch_fb_arm(struct fetch *f)
{
    if (!f->w->fb_on || f->stale == NULL || !f->stale_if_error || f->background || fetch_has_head(f) ||
        fetch_is_over(f) || h2o_timeout_is_linked(&f->fb_entry))
        return;
    f->fb_entry.cb = on_fb_deadline;
    h2o_timeout_link(f->w->ctx->loop, &f->w->fb_timeout, &f->fb_entry);
}

void fetch_fb_disarm(struct fetch *f)
{
    if (h2o_timeout_is_linked(&f->fb_entry))
        h2o_timeout_unlink(&f->fb_entry);
    if (h2o_timeout_is_linked(&f->brk_fb_entry))
        h2o_timeout_unlink(&f->brk_fb_entry);
}

/* Each waiter of f for which fetch_error_stale finds a stored copy leaves f and gets that copy now
 * (Cache-Status d; counted as stale, and in `also` unless NULL); the others stay. With keep, a
 * collapsible fetch left without waiters goes on in the background and refreshes the object.
 * How many were served. */
unsigned fetch_serve_error_stale(struct fetch *f, const char *d, cdn_series_t *also, int keep)
{
    struct edge_server *s = f->w->srv;
    int64_t now = now_s();
    unsigned n = 0;
    f->refs++; /* the last waiter's leave must not end f under the loop */
    h2o_linklist_t *l = f->waiters.next;
    while (l != &f->waiters) {
        struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, l);
        l = l->next;
        int64_t age;
        struct edge_obj *so = fetch_error_stale(f, c, now, &age);
        if (so == NULL)
            continue;
        if (keep && f->collapsible)
            f->background = 1; /* not dropped from the queue, not cancelled: it refreshes the object */
        fetch_leave(c);
        if (also != NULL)
            cdn_counter_inc(also);
        req_count(s, M_STALE, T_NONE);
        c->from_cache = 1;
        req_deliver_obj(c, so, d, age);
        edge_obj_release(so);
        n++;
    }
    fetch_release(f);
    return n;
}

/* breaker.first_byte passed and the upstream sent no head. If its hang deadline (first_byte, or
 * twice its recent slowest first byte) has passed and nothing at all came from the upstream for
 * that long, it looks hung: its breaker hears a failure now (it opens without waiting
 * for `timeout`), the clients that have a stale copy get it, and the request goes on (what it
 * brings is not counted again: brk_sent is cleared; a success closes the breaker, edge_brk_late).
 * If the upstream answers other requests meanwhile, this one is just slow: look again a period
 * later (a slow origin is not taken for a dead one). */
static void on_brk_fb_deadline(h2o_timeout_entry_t *entry)
{
    struct fetch *f = H2O_STRUCT_FROM_MEMBER(struct fetch, brk_fb_entry, entry);
    assert(f->magic == FETCH_MAGIC);
    if (fetch_has_head(f) || fetch_is_over(f) || !f->brk_sent)
        return;
    if (!edge_brk_hung_now(f->brk, f->brk_sent_at)) {
        h2o_timeout_link(f->w->ctx->loop, &f->w->brk_fb_timeout, &f->brk_fb_entry);
        return;
    }
    f->brk_sent = 0;
    f->brk_hung = 1;
    edge_brk_hung(f->brk, f->brk_probe);
    if (!f->in_cb) /* the waiters with a stored copy get it; the request goes on */
        fetch_serve_error_stale(f, HUNG_DETAIL, f->w->srv->m_brk_stale, 1);
}

/* 1 when a fetch for c's key on this worker is past its first-byte deadline (its clients got the
 * stale copy): c, which holds a stale copy too, gets it at once instead of waiting. */
int fetch_slow_stale(struct creq *c)
{
    uint64_t fv;
    if (!edge_idmap_get(&c->w->fetches, c->key_id, &fv))
        return 0;
    struct fetch *f = (struct fetch *)(uintptr_t)fv;
    return f->slow && !fetch_has_head(f) && !fetch_is_over(f) && f->key_len == c->key_len &&
           memcmp(f->key, c->key, c->key_len) == 0;
}

/* The breaker hears how the request it let through went (once). */
void fetch_brk_outcome(struct fetch *f, int ok, int answered)
{
    if (!f->brk_sent)
        return;
    f->brk_sent = 0;
    edge_brk_report(f->brk, ok, f->brk_probe, answered, f->brk_sent_at);
}

/* Starts a fetch with c as its first waiter (and owner); result (M_MISS / M_PASS) is counted
 * under the tier that gets asked. A collapsible fetch (a cache fill) is listed in the worker's
 * table and, through its feed, for the other workers. */
void fetch_start(struct creq *c, int result, int collapsible, struct edge_obj *stale, int stale_if_error)
{
    /* list the feed first: if another worker listed this key since lookup looked, follow its
     * fetch instead of making a second one */
    struct edge_feed *feed = NULL;
    if (collapsible && (feed = edge_feed_new(c->key_id, c->key, c->key_len,
                                             stale != NULL)) != NULL && edge_feed_list(feed) < 0) {
        edge_feed_release(feed);
        feed = NULL;
        if (fetch_mirror_join(c, stale, stale_if_error))
            return;
    }
    struct fetch *f = fetch_new(c, stale, stale_if_error);
    if (f == NULL) {
        if (feed != NULL) {
            edge_feed_unlist(feed);
            edge_feed_release(feed);
        }
        req_synth_error(c, 503, "Service Unavailable", "detail=out-of-memory", "out of memory");
        return;
    }
    f->refs = 1; /* the transfer */
    f->collapsible = collapsible;
    f->owner = c;
    f->result = result;
    if (collapsible) {
        /* a cache fill asks upstream for exactly what its key names (the normalised path and
         * query, RFC 3986 6.2.2): an origin that does not decode %2e or dot segments itself
         * would otherwise serve one URL's body under another's key; and it is a GET whatever
         * the client asked (a HEAD miss fills the cache too) */
        const char *kp = strchr(strstr(c->pkey, "://") + 3, '/');
        f->path = strdup(kp);
        f->rq.method = EDGE_M_GET;
    } else {
        f->path = strndup(c->req->path.base, c->req->path.len);
    }
    f->method = collapsible ? strdup("GET") : strndup(c->req->method.base, c->req->method.len);
    f->uphdrs = (char **)upstream_headers(c, collapsible, stale, &f->nparent_hdrs);
    /* join before starting: httpc may call back synchronously */
    fetch_add_waiter(f, c);
    if (collapsible && edge_idmap_put(&c->w->fetches, f->id, (uint64_t)(uintptr_t)f) == 0)
        f->in_table = 1;
    f->feed = feed; /* other workers may join through it (only one owner per key: first come) */
    f->refs++;
    edge_retry_note_request(); /* a first attempt: it earns the retry budget its share */
    if (f->path == NULL || f->method == NULL || f->uphdrs == NULL)
        fetch_end(f, CDN_HTTPC_INTERNAL, "out of memory");
    else if (fetch_send(f, collapsible ? NULL : c->req->entity.base, collapsible ? 0 : c->req->entity.len) < 0 &&
             !fetch_is_over(f))
        fetch_end(f, f->vh->parent_only || f->brk_refused ? CDN_HTTPC_CONNECT : CDN_HTTPC_INTERNAL,
                  f->shed != NULL ? "overloaded" : f->brk_refused ? "circuit breaker open"
                  : f->vh->parent_only ? "no parent is up (parent_only)" : "cannot start the upstream request");
    fetch_fb_arm(f); /* a validation of a stale copy: its first-byte deadline */
    fetch_release(f);
}

static const struct cdn_httpc_cbs fetch_cbs = {on_fetch_head, on_fetch_body, fetch_on_done, fetch_on_info};
