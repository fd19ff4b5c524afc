/* edge/req/lookup.c - lookup: the store, the verdict on what it holds (hit, stale, must
 * validate, miss, pass), joining a fetch in flight; the size hints of range_fetch_above. */
#include "config.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

void req_lookup(struct creq *c, int no_collapse)
{
    struct edge_worker *w = c->w;
    struct edge_server *s = w->srv;
    int64_t now = now_s();
    int cacheable_method = c->method == EDGE_M_GET || c->method == EDGE_M_HEAD;
    if (!cacheable_method || no_collapse) {
        fetch_start(c, M_PASS, 0, NULL, 0);
        return;
    }
    int tier, corrupt;
    struct edge_obj *o = edge_store_get(s->store, c->key, c->key_len, &tier, &corrupt);
    if (corrupt)
        cdn_counter_inc(s->m_corrupt);
    if (o != NULL && c->rq.has_authorization && !(o->fresh.flags & EDGE_F_AUTH_OK)) {
        edge_obj_release(o);
        fetch_start(c, M_PASS, 0, NULL, 0);
        return;
    }
    if (o != NULL) {
        struct edge_verdict v;
        edge_decide(&o->fresh, &c->rq, now, &v);
        if (v.use == EDGE_USE_FRESH || v.use == EDGE_USE_STALE || v.use == EDGE_USE_SWR) {
            cdn_counter_inc(s->m_tier_hit[tier]);
            req_count(s, v.use == EDGE_USE_FRESH ? M_HIT : M_STALE, tier == EDGE_TIER_DISK ? T_ROCKSDB : T_RAM);
            static const char *const details[2][3] = {
                {"hit", "hit; fwd=stale; detail=swr", "hit; detail=max-stale"},
                {"hit; detail=disk", "hit; detail=disk; fwd=stale; detail=swr", "hit; detail=disk; detail=max-stale"}};
            const char *d = details[tier == EDGE_TIER_DISK][v.use == EDGE_USE_FRESH ? 0 : v.use == EDGE_USE_SWR ? 1 : 2];
            if (v.use == EDGE_USE_SWR) {
                /* refresh in the background unless a refresh is already in flight */
                uint64_t fv;
                if (!edge_idmap_get(&w->fetches, edge_key_id(c->key, c->key_len), &fv) &&
                    !edge_feed_busy(edge_key_id(c->key, c->key_len))) {
                    /* a fetch with no client: the owner detaches at once */
                    fetch_start(c, -1, 1, o, 1);
                    if (c->f != NULL)
                        c->f->background = 1;
                    fetch_leave(c);
                }
            }
            req_deliver_obj(c, o, d, v.age);
            edge_obj_release(o);
            return;
        }
        /* must validate: join a fetch in flight for this key, or start a conditional one */
        uint64_t fv;
        if (edge_idmap_get(&w->fetches, edge_key_id(c->key, c->key_len), &fv)) {
            struct fetch *f = (struct fetch *)(uintptr_t)fv;
            if (f->magic == FETCH_MAGIC && !f->head_done && f->key_len == c->key_len &&
                memcmp(f->key, c->key, c->key_len) == 0) {
                cdn_counter_inc(s->m_collapsed);
                f->refs++;
                c->f = f;
                h2o_linklist_insert(&f->waiters, &c->link);
                fetch_replay_infos(c, f);
                edge_obj_release(o);
                return;
            }
        }
        if (!fetch_mirror_join(c, o, v.stale_if_error))
            fetch_start(c, M_MISS, 1, o, v.stale_if_error);
        edge_obj_release(o);
        return;
    }
    if (c->rq.cc.flags & EDGE_CC_ONLY_IF_CACHED) {
        req_synth_bad_gateway(c, 504, "Gateway Timeout", "not in cache (only-if-cached)");
        return;
    }
    /* a Range miss on an object known to be larger than range_fetch_above: ask upstream for the
     * range only (not collapsed, not stored) instead of fetching the whole object */
    if (s->conf.range_fetch_above > 0 && c->method == EDGE_M_GET &&
        edge_hdr_find(c->hdrs, c->nhdrs, "range", 0) >= 0 &&
        req_size_hint_get(edge_key_id(c->pkey, c->pkey_len)) > s->conf.range_fetch_above) {
        c->range_pass = 1;
        fetch_start(c, M_PASS, 0, NULL, 0);
        return;
    }
    uint64_t fv;
    if (edge_idmap_get(&w->fetches, edge_key_id(c->key, c->key_len), &fv)) {
        struct fetch *f = (struct fetch *)(uintptr_t)fv;
        if (f->magic == FETCH_MAGIC && f->key_len == c->key_len && memcmp(f->key, c->key, c->key_len) == 0 &&
            (!f->head_done || f->store)) {
            cdn_counter_inc(s->m_collapsed);
            f->refs++;
            c->f = f;
            h2o_linklist_insert(&f->waiters, &c->link);
            if (f->head_done)
                req_deliver_fetch(c, f, "fwd=miss; detail=collapsed");
            else
                fetch_replay_infos(c, f);
            return;
        }
    }
    if (fetch_mirror_join(c, NULL, 0))
        return;
    /* a request with Authorization fills only if the response allows it (checked at head) */
    fetch_start(c, M_MISS, 1, NULL, 0);
}
