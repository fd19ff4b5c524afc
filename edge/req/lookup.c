/* edge/req/lookup.c - lookup: the store, the verdict on what it holds (hit, stale, must
 * validate, miss, pass), joining a fetch in flight; the size hints of range_fetch_above. */
#include "config.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edge/purge/bus.h"
#include "edge/req/req.h"

/* --- sizes of objects seen upstream (range_fetch_above) ---
 * A process-wide map from the primary key's id to the full length learnt from a response
 * (Content-Length of a 200, the total of a 206's Content-Range). Bounded: cleared when full,
 * which only means a few more whole fetches. */
#define SIZE_HINTS_MAX 65536
static pthread_mutex_t hints_mu = PTHREAD_MUTEX_INITIALIZER;
static struct edge_idmap hints;

void req_size_hint_put(uint64_t id, uint64_t size)
{
    pthread_mutex_lock(&hints_mu);
    if (hints.cap == 0 || hints.n >= SIZE_HINTS_MAX) {
        edge_idmap_free(&hints);
        if (edge_idmap_init(&hints, 1024) < 0)
            memset(&hints, 0, sizeof(hints));
    }
    if (hints.cap > 0)
        edge_idmap_put(&hints, id, size);
    pthread_mutex_unlock(&hints_mu);
}

uint64_t req_size_hint_get(uint64_t id)
{
    uint64_t v = 0;
    pthread_mutex_lock(&hints_mu);
    if (hints.cap == 0 || !edge_idmap_get(&hints, id, &v))
        v = 0;
    pthread_mutex_unlock(&hints_mu);
    return v;
}

void edge_handler_global_free(void)
{
    pthread_mutex_lock(&hints_mu);
    edge_idmap_free(&hints);
    memset(&hints, 0, sizeof(hints));
    pthread_mutex_unlock(&hints_mu);
}

/* pass: a fetch of the request's own, never shared, never stored. fwd says why (RFC 9211:
 * method, bypass, vary-miss, miss). */
void req_pass(struct creq *c, const char *fwd)
{
    c->fwd = fwd;
    req_set_step(c, REQ_PASS);
    fetch_start(c, M_PASS, 0, NULL, 0);
}

/* miss: wait on the fetch in flight for the key, or on another worker's through a mirror, or
 * start one (conditional when a stale copy is there). */
static void miss(struct creq *c, struct edge_obj *stale, int stale_if_error, const char *fwd)
{
    c->fwd = fwd;
    req_set_step(c, REQ_MISS);
    if (stale != NULL && stale_if_error && fetch_slow_stale(c)) {
        /* the validation in flight is past stale_first_byte_timeout: the stale copy now */
        struct edge_server *s = c->w->srv;
        cdn_counter_inc(s->m_stale_slow);
        req_count(s, M_STALE, T_NONE);
        c->from_cache = 1;
        req_deliver_obj(c, stale, "fwd=stale; detail=slow-origin",
                        edge_current_age(stale->fresh.initial_age, stale->fresh.response_time, now_s()));
        return;
    }
    if (fetch_join(c, stale != NULL) || fetch_mirror_join(c, stale, stale_if_error))
        return;
    fetch_start(c, M_MISS, 1, stale, stale_if_error);
}

/* hit: a stored response that may be used now (fresh, stale within the request's max-stale, or
 * stale-while-revalidate, which also starts a background refresh unless one is in flight). */
static void hit(struct creq *c, struct edge_obj *o, int tier, const struct edge_verdict *v)
{
    struct edge_server *s = c->w->srv;
    int disk = tier == EDGE_TIER_DISK;
    req_set_step(c, REQ_HIT);
    cdn_counter_inc(s->m_tier_hit[tier]);
    req_count(s, v->use == EDGE_USE_FRESH ? M_HIT : M_STALE, disk ? T_ROCKSDB : T_RAM);
    /* RFC 9211: one detail parameter (sf-token) */
    static const char *const details[2][3] = {
        {"hit", "hit; fwd=stale; detail=swr", "hit; detail=max-stale"},
        {"hit; detail=disk", "hit; fwd=stale; detail=disk-swr", "hit; detail=disk-max-stale"}};
    const char *d = details[disk][v->use == EDGE_USE_FRESH ? 0 : v->use == EDGE_USE_SWR ? 1 : 2];
    if (s->bus != NULL && !edge_bus_ready(s->bus)) {
        /* purge_bus start: serve, before the backlog was applied: say so (an RFC 9211 extension
         * parameter), and count it */
        size_t dl = strlen(d);
        char *d2 = h2o_mem_alloc_pool(&c->req->pool, dl + 16);
        memcpy(d2, d, dl);
        memcpy(d2 + dl, "; purge-backlog", 16);
        d = d2;
        cdn_counter_inc(s->m_backlog_hits);
    }
    uint64_t id = c->key_id, fv;
    if (v->use == EDGE_USE_SWR && !edge_idmap_get(&c->w->fetches, id, &fv) && !edge_feed_busy(id)) {
        /* a fetch with no client: the owner leaves at once */
        fetch_start(c, -1, 1, o, 1);
        if (c->f != NULL)
            c->f->background = 1;
        fetch_leave(c);
    }
    c->from_cache = 1;
    req_deliver_obj(c, o, d, v->age);
}

/* lookup: what the store holds for the key decides the next step. */
void req_lookup(struct creq *c)
{
    struct edge_server *s = c->w->srv;
    req_set_step(c, REQ_LOOKUP);
    if (c->method != EDGE_M_GET && c->method != EDGE_M_HEAD) {
        req_pass(c, "method");
        return;
    }
    int tier, corrupt;
    struct edge_obj *o = edge_store_get(s->store, c->key, c->key_len, &tier, &corrupt);
    if (corrupt)
        cdn_counter_inc(s->m_corrupt);
    if (o != NULL && c->rq.has_authorization && !(o->fresh.flags & EDGE_F_AUTH_OK)) {
        edge_obj_release(o);
        req_pass(c, "bypass"); /* RFC 9111 3.5: this response may not answer an authorized request */
        return;
    }
    if (o != NULL) {
        struct edge_verdict v;
        struct edge_fresh soft;
        const struct edge_fresh *fr = &o->fresh;
        if (edge_store_is_soft(s->store, c->key, c->key_len)) {
            /* soft-purged: stale from now on (served under stale-while-revalidate / stale-if-error
             * while it is refetched, else revalidated first) */
            soft = o->fresh;
            soft.lifetime = 0;
            fr = &soft;
        }
        edge_decide(fr, &c->rq, now_s(), &v);
        if (v.use == EDGE_USE_FRESH || v.use == EDGE_USE_STALE || v.use == EDGE_USE_SWR) {
            hit(c, o, tier, &v);
        } else {
            /* must validate: because the request asked (no-cache, max-age=0... on a fresh object),
             * or because it is stale (or the response said no-cache) */
            int asked = v.ttl > 0 && !(o->fresh.flags & EDGE_F_NO_CACHE);
            miss(c, o, v.stale_if_error, asked ? "request" : "stale");
        }
        edge_obj_release(o);
        return;
    }
    if (c->rq.cc.flags & EDGE_CC_ONLY_IF_CACHED) {
        req_synth_error(c, 504, "Gateway Timeout", "detail=only-if-cached", "not in cache (only-if-cached)");
        return;
    }
    /* a Range miss on an object known to be larger than range_fetch_above: ask upstream for the
     * range only (not collapsed, not stored) instead of fetching the whole object */
    if (s->conf.range_fetch_above > 0 && c->method == EDGE_M_GET &&
        edge_hdr_find(c->hdrs, c->nhdrs, "range", 0) >= 0 &&
        req_size_hint_get(edge_key_id(c->pkey, c->pkey_len)) > s->conf.range_fetch_above) {
        c->range_pass = 1;
        req_pass(c, "miss");
        return;
    }
    /* a request with Authorization fills only if the response allows it (checked at head) */
    miss(c, NULL, 0, "miss");
}
