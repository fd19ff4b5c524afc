/* edge/fetch/resp.c - the upstream head of a fetch, in the order it is looked at:
 *   copy        the head outlives httpc's callback (and a mirror's feed lock)
 *   length      Content-Length, and the full size for range_fetch_above's hints
 *   cond-fetch  a revalidation answered 304: the stored copy refreshed and served
 *   error       a 5xx while a stale copy may be served (stale-if-error)
 *   invalidate  an unsafe method that succeeded: its URL and Location / Content-Location purged
 *   store       may the response be stored (and shared)?
 *   fan-out     each waiter: share the response, or go upstream on its own (pass)
 *   vary key    the key of a response whose Vary appeared only now gets its variant part
 * fetch_resp_head() runs them; it returns 1 when nothing more is to be read upstream. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdn/http.h"
#include "edge/http/range.h"
#include "edge/req/decide.h"
#include "edge/req/req.h"

static int copy_head(struct fetch *f, int status, const struct cdn_httpc_header *h, size_t n)
{
    size_t sz = 0;
    for (size_t i = 0; i < n; i++)
        sz += h[i].name_len + h[i].value_len;
    f->hdrs = calloc(n ? n : 1, sizeof(*f->hdrs));
    f->harena = malloc(sz ? sz : 1);
    if (f->hdrs == NULL || f->harena == NULL)
        return -1;
    char *p = f->harena;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, h[i].name, h[i].name_len);
        f->hdrs[i].name = p;
        f->hdrs[i].name_len = h[i].name_len;
        p += h[i].name_len;
        memcpy(p, h[i].value, h[i].value_len);
        f->hdrs[i].value = p;
        f->hdrs[i].value_len = h[i].value_len;
        p += h[i].value_len;
    }
    f->nhdrs = n;
    f->status = status;
    fetch_set_state(f, FETCH_HEADERS);
    return 0;
}

/* The full length a response tells: 200 Content-Length, or "bytes a-b/TOTAL" of a 206. */
static uint64_t full_length(int status, const struct edge_hdr *h, size_t n, uint64_t clen)
{
    if (status == 200)
        return clen != UINT64_MAX ? clen : 0;
    int i = status == 206 ? edge_hdr_find(h, n, "content-range", 0) : -1;
    uint64_t first, last, total;
    if (i < 0 || edge_content_range_parse(h[i].value, h[i].value_len, &first, &last, &total) < 0)
        return 0;
    return total;
}

/* Sets f->clen; returns the full size when range_fetch_above wants it (0: unknown / not asked). */
static uint64_t note_length(struct fetch *f)
{
    const struct edge_server *s = f->w->srv;
    int cl = edge_hdr_find(f->hdrs, f->nhdrs, "content-length", 0);
    f->clen = UINT64_MAX;
    if (cl >= 0) {
        char num[24];
        size_t l = f->hdrs[cl].value_len < 23 ? f->hdrs[cl].value_len : 23;
        memcpy(num, f->hdrs[cl].value, l);
        num[l] = '\0';
        char *e;
        unsigned long long v = strtoull(num, &e, 10);
        if (e != num && *e == '\0')
            f->clen = v;
    }
    uint64_t full = 0;
    if (s->conf.range_fetch_above > 0 && (f->rq.method == EDGE_M_GET || f->rq.method == EDGE_M_HEAD)) {
        full = full_length(f->status, f->hdrs, f->nhdrs, f->clen);
        if (full > 0)
            req_size_hint_put(edge_key_id(f->key, f->pkey_len), full);
    }
    return full;
}

/* cond-fetch: the stored headers refreshed by the 304 (unless it is about another representation:
 * its ETag is not the stored one, RFC 9111 4.3.4), stored, and served to every waiter. */
static void cond_fetch_304(struct fetch *f, const struct edge_resp_meta *rs, int64_t now)
{
    struct edge_server *s = f->w->srv;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    size_t nh = f->nhdrs;
    const struct edge_hdr *hs = fetch_storable_fields(&pool, &rs->cc, f->hdrs, &nh);
    struct edge_obj *no = edge_obj_304_selects(f->stale, f->hdrs, f->nhdrs)
                              ? edge_obj_merge_304(f->stale, hs, nh, &f->stale->fresh, f->req_time)
                              : NULL;
    h2o_mem_clear_pool(&pool);
    if (no != NULL) {
        struct edge_resp_meta mrs;
        edge_resp_analyze(no->hdrs, no->nhdrs, no->status, &s->conf.fresh, &mrs);
        edge_fresh_from_resp(&no->fresh, &mrs, f->req_time, now, &s->conf.fresh);
        if (!f->mirror && edge_store_put(s->store, no) == 0)
            cdn_counter_inc(s->m_stored);
    }
    f->store = 0;
    fetch_unlist(f);
    req_count(s, M_REVALIDATED, f->parent >= 0 ? T_PARENT : T_ORIGIN);
    while (!h2o_linklist_is_empty(&f->waiters)) {
        struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, f->waiters.next);
        fetch_leave(c);
        struct edge_obj *o = no ? no : f->stale;
        char d[64];
        snprintf(d, sizeof(d), "fwd=%s; fwd-status=304", c->fwd ? c->fwd : "stale");
        req_deliver_obj(c, o, d, edge_current_age(o->fresh.initial_age, o->fresh.response_time, now));
    }
    edge_obj_release(no);
}

/* error: a failing upstream (5xx) while a stale copy that stale-if-error allows is at hand: the
 * one the fetch validates (then every waiter gets it and nothing more is read: 1), or, for a
 * waiter of a plain fill, one the store holds now (fetch_error_stale); the others get the 5xx. */
static int serve_stale_on_error(struct fetch *f)
{
    int all = f->stale != NULL && f->stale_if_error;
    if (all) {
        f->store = 0;
        fetch_unlist(f);
    }
    char d[96];
    snprintf(d, sizeof(d), "fwd=stale; fwd-status=%d; detail=stale-if-error", f->status);
    fetch_serve_error_stale(f, d, NULL, 0);
    return all;
}

/* invalidate (RFC 9111 4.4): an unsafe method answered with a non-error status invalidates the
 * target URI, and Location / Content-Location on this host (an error answer changed nothing) */
static void invalidate_targets(struct fetch *f)
{
    struct edge_server *s = f->w->srv;
    h2o_req_t *oreq = f->owner->req;
    cdn_counter_add(s->m_purged, req_invalidate(f->owner, oreq->path.base, oreq->path.len));
    static const char *const names[] = {"location", "content-location"};
    for (int k = 0; k < 2; k++) {
        int li = edge_hdr_find(f->hdrs, f->nhdrs, names[k], 0);
        if (li < 0)
            continue;
        const char *v = f->hdrs[li].value;
        size_t vl = f->hdrs[li].value_len;
        /* absolute URL on our authority: reduce it to its path */
        static const char *const pfx[] = {"http://", "https://"};
        for (int q = 0; q < 2; q++) {
            size_t pl = strlen(pfx[q]);
            if (vl > pl + oreq->authority.len && strncasecmp(v, pfx[q], pl) == 0 &&
                strncasecmp(v + pl, oreq->authority.base, oreq->authority.len) == 0 && v[pl + oreq->authority.len] == '/') {
                v += pl + oreq->authority.len;
                vl -= pl + oreq->authority.len;
            }
        }
        if (vl > 0 && v[0] == '/')
            cdn_counter_add(s->m_purged, req_invalidate(f->owner, v, vl));
    }
}

/* fan-out: each waiter shares the response, or goes upstream on its own; with range_again, a
 * Range request goes upstream as a range (the whole object is too large to wait for) */
/* "fwd=W; fwd-status=S" + a + b into buf (cut to fit): without snprintf, as this runs for every
 * response from upstream and its format parsing was a visible share of a pass. */
static void fwd_detail(char *buf, size_t cap, const char *fwd, int status, const char *a, const char *b)
{
    char st[24];
    if (status >= 0)
        st[cdn_fmt_u64(st, (uint64_t)status)] = '\0';
    else
        snprintf(st, sizeof(st), "%d", status);
    const char *parts[] = {"fwd=", fwd, "; fwd-status=", st, a, b};
    req_join(buf, cap, parts, sizeof(parts) / sizeof(parts[0]));
}

static void fan_out(struct fetch *f, int range_again)
{
    const char *vk = f->key_len > f->pkey_len ? f->key + f->pkey_len + 1 : NULL;
    size_t vkl = vk ? f->key_len - f->pkey_len - 1 : 0;
    h2o_linklist_t *node = f->waiters.next;
    while (node != &f->waiters) {
        struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, node);
        node = node->next;
        if (range_again && c->method == EDGE_M_GET && !c->range_pass && edge_hdr_find(c->hdrs, c->nhdrs, "range", 0) >= 0) {
            fetch_leave(c);
            c->range_pass = 1;
            req_pass(c, "miss"); /* as req_lookup does for a known-large object */
            continue;
        }
        int share = c == f->owner ||
                    (f->store && edge_waiter_shares(f->vary, (size_t)f->vary_len, c->hdrs, c->nhdrs,
                                                    f->owner ? f->owner->hdrs : NULL, f->owner ? f->owner->nhdrs : 0,
                                                    vk, vkl));
        if (!share) {
            fetch_leave(c);
            req_pass(c, f->store ? "vary-miss" : "miss");
            continue;
        }
        char detail[96];
        fwd_detail(detail, sizeof(detail), c->fwd ? c->fwd : f->stale ? "stale" : "miss", f->status,
                   f->store ? "; stored" : "", c->range_pass ? "; detail=range-pass" : "");
        req_deliver_fetch(c, f, detail);
    }
}

/* vary key: the object is stored under its variant key; a fetch listed under the primary key
 * (Vary was not known before) gets the owner's variant part, or is not stored */
static void fix_vary_key(struct fetch *f)
{
    if (!f->store || f->vary_len <= 0 || f->key_len != f->pkey_len)
        return;
    if (f->owner == NULL) {
        f->store = 0;
        return;
    }
    char vk[1024];
    int vl = edge_vary_key(f->vary, (size_t)f->vary_len, f->owner->hdrs, f->owner->nhdrs, vk, sizeof(vk));
    char *nk = vl >= 0 ? malloc(f->pkey_len + 1 + (size_t)vl + 1) : NULL;
    if (nk == NULL) {
        f->store = 0;
        return;
    }
    memcpy(nk, f->key, f->pkey_len);
    nk[f->pkey_len] = '\n';
    memcpy(nk + f->pkey_len + 1, vk, (size_t)vl);
    fetch_unlist(f); /* listed under the primary key; the variant is known now */
    free(f->key);
    f->key = nk;
    f->key_len = f->pkey_len + 1 + (size_t)vl;
}

int fetch_resp_head(cdn_httpc_req_t *hr, int status, int version, const struct cdn_httpc_header *h, size_t n,
                    void *data)
{
    struct fetch *f = data;
    struct edge_server *s = f->w->srv;
    (void)hr;
    (void)version;
    if (copy_head(f, status, h, n) < 0)
        return 1;
    uint64_t full = note_length(f);
    int64_t now = now_s();
    struct edge_resp_meta rs;
    edge_resp_analyze(f->hdrs, n, status, &s->conf.fresh, &rs);
    if (f->stale != NULL && status == 304) {
        cond_fetch_304(f, &rs, now);
        return 1; /* nothing more to read */
    }
    if (status >= 500 && serve_stale_on_error(f))
        return 1;
    if (!f->collapsible && edge_method_unsafe(f->rq.method) && status < 400 && f->owner != NULL)
        invalidate_targets(f);
    f->vary_len = edge_vary_normalize(f->hdrs, n, f->vary, sizeof(f->vary));
    f->store = f->collapsible && f->vary_len >= 0 && edge_storable(&f->rq, &rs, &s->conf.fresh) == EDGE_STORE_OK &&
               (f->clen == UINT64_MAX || f->clen <= s->conf.max_object) && (!f->mirror || f->feed_store);
    if (!f->store)
        fetch_unlist(f);
    /* a whole fill that turns out larger than range_fetch_above and will not be stored: its Range
     * requests go again as ranges (lookup knows the size now) instead of waiting for the body up
     * to their offset; with no one else listening the fill is dropped */
    fan_out(f, full > s->conf.range_fetch_above && s->conf.range_fetch_above > 0 && status == 200 && !f->store);
    fix_vary_key(f);
    return 0;
}
