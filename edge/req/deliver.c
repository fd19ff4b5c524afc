/* edge/req/deliver.c - deliver: a stored object (with 304, Range, HEAD) or a fetch's response as
 * it streams in, to the client; the headers every response of ours carries (Cache-Status, Via). */
#include "config.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdn/http.h"
#include "edge/http/accept.h"
#include "edge/req/req.h"
#include "cdn/loop.h"
#include "edge/h2o/abort.h"
#include "edge/h2o/interim.h"
#include "edge/http/range.h"

/* Every send of a stored or forwarded response goes here: the first one writes the head, with
 * the response's own Date (c->date) rather than h2o's clock (date_send.h). */
/* Every send is timed until h2o takes it (proceed, or the request's end): w->sending is in send
 * order, so the timer looks at its head only. */
void req_send_track(struct creq *c)
{
    struct edge_worker *w = c->w;
    if (h2o_linklist_is_linked(&c->slink))
        h2o_linklist_unlink(&c->slink);
    uint64_t to = w->srv->conf.send_timeout_ms;
    if (to != 0) {
        c->send_at = h2o_now(w->ctx->loop);
        h2o_linklist_insert(&w->sending, &c->slink);
        if (!cdn_timer_active(w->send_timer))
            cdn_timer_start(w->send_timer, to);
    }
}

static void req_send(struct creq *c, h2o_iovec_t *b, size_t n, h2o_send_state_t st)
{
    const char *d = c->date;
    c->date = NULL;
    if (st != H2O_SEND_STATE_ERROR)
        req_send_track(c);
    else if (h2o_linklist_is_linked(&c->slink))
        h2o_linklist_unlink(&c->slink);
    edge_date_send(&c->w->date, c->req, d, b, n, st);
}

/* send_timeout: a response h2o has held for that long without taking more (the client's HTTP/2
 * window stays shut, or it does not read its socket) is ended (h2o/abort.h). Its request is
 * disposed at once (h2) or when h2o sees the socket fail (HTTP/1); either way its fetch loses a
 * waiter, and a fetch nobody wants is cancelled. */
void req_on_send_timer(cdn_timer_t *t, void *data)
{
    struct edge_worker *w = data;
    uint64_t now = h2o_now(w->ctx->loop), to = w->srv->conf.send_timeout_ms;
    while (!h2o_linklist_is_empty(&w->sending)) {
        struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, slink, w->sending.next);
        if (now - c->send_at < to) {
            cdn_timer_start(t, c->send_at + to - now);
            return;
        }
        h2o_linklist_unlink(&c->slink);
        cdn_counter_inc(w->srv->m_send_timeout);
        cdn_debug("req %s: nothing taken by the client for %llu ms: ended", c->request_id ? c->request_id : "-",
                  (unsigned long long)to);
        edge_h2o_abort_response(c->req);
    }
}

/* Headers never sent to clients: hop-by-hop, our targeted fields, tags, lengths h2o sets.
 * Date: h2o writes the Date of every response head itself; req_send makes that the response's own
 * (date_send.h), so it is not passed as a header too. */
static int skip_to_client(const struct creq *c, const struct edge_hdr *all, size_t n, const struct edge_hdr *h)
{
    const struct edge_server *s = c->w->srv;
    /* the classes a stored object's fields get (obj.h): Cache-Status and Via are merged with ours
     * (req_add_common), X-Served-By names only us; X-Request-Id is this request's own */
    uint8_t f = edge_obj_hdr_flags(all, n, h);
    if ((f & EDGE_HF_NOT_TO_CLIENT) || name_is(h, "x-request-id"))
        return 1;
    /* targeted fields and tags are for CDN caches: a child edge of ours gets them */
    if (c->internal)
        return 0;
    if (f & EDGE_HF_CDN_ONLY)
        return 1;
    return s->conf.fresh.edge_cc_name != NULL && name_is(h, s->conf.fresh.edge_cc_name);
}

size_t req_join(char *buf, size_t cap, const char *const *parts, size_t n)
{
    size_t o = 0;
    for (size_t k = 0; k < n && o + 1 < cap; k++) {
        size_t l = strlen(parts[k]);
        l = l < cap - 1 - o ? l : cap - 1 - o;
        memcpy(buf + o, parts[k], l);
        o += l;
    }
    if (cap > 0)
        buf[o] = '\0';
    return o;
}

void req_add_hdr(h2o_req_t *req, const char *name, size_t nl, const char *v, size_t vl)
{
    char *nn = h2o_mem_alloc_pool(&req->pool, nl);
    for (size_t i = 0; i < nl; i++)
        nn[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
    char *vv = h2o_mem_alloc_pool(&req->pool, vl + 1);
    memcpy(vv, v, vl);
    h2o_add_header_by_str(&req->pool, &req->res.headers, nn, nl, 1, name, vv, vl);
}

/* "upstream values, ours": RFC 9211 and RFC 9110 7.6.3 lists grow toward the client. */
static int join_upstream(const struct edge_hdr *up, size_t nup, const char *name, const char *ours, char *buf,
                         size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < nup; i++) {
        if (!name_is(&up[i], name) || up[i].value_len == 0 || o + up[i].value_len + 2 >= cap)
            continue;
        memcpy(buf + o, up[i].value, up[i].value_len);
        o += up[i].value_len;
        buf[o++] = ',';
        buf[o++] = ' ';
    }
    return (int)(o + req_join(buf + o, cap - o, &ours, 1)); /* cut to fit, as snprintf did */
}

/* Every response carries its own request's id (the client's, or the one we made and sent
 * upstream), never one stored with an object. */
static void add_request_id(struct creq *c)
{
    if (c->request_id != NULL)
        h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, H2O_STRLIT("x-request-id"), 0, "X-Request-Id",
                              c->request_id, strlen(c->request_id));
}

/* Cache-Status detail on image_paths: "detail=accept-webp", joined to a detail already there with
 * "+" (a token: "hit; detail=disk+accept-webp"). */
static const char *with_accept_detail(struct creq *c, const char *d)
{
    const char *fmt = edge_imgfmt_name[c->imgfmt - 1];
    size_t n = strlen(d) + strlen(fmt) + 24;
    char *o = h2o_mem_alloc_pool(&c->req->pool, n);
    if (strstr(d, "detail=") != NULL)
        snprintf(o, n, "%s+accept-%s", d, fmt);
    else
        snprintf(o, n, "%s%saccept-%s", d, *d ? "; detail=" : "detail=", fmt);
    return o;
}

void req_add_common(struct creq *c, const char *status_detail, int64_t age, const struct edge_hdr *up, size_t nup)
{
    struct edge_server *s = c->w->srv;
    h2o_req_t *req = c->req;
    char buf[1024], ours[256];
    if (c->imgfmt > 0)
        status_detail = with_accept_detail(c, status_detail);
    if (age >= 0) {
        char *a = h2o_mem_alloc_pool(&req->pool, 20);
        size_t al = cdn_fmt_u64(a, (uint64_t)age);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_AGE, "Age", a, al);
    }
    if (nup == 0) {
        /* the hit path: nothing upstream to join, no formatting */
        size_t nl = strlen(s->cache_name), dl = strlen(status_detail);
        char *cs = h2o_mem_alloc_pool(&req->pool, nl + 2 + dl + 1);
        memcpy(cs, s->cache_name, nl);
        memcpy(cs + nl, "; ", 2);
        memcpy(cs + nl + 2, status_detail, dl + 1);
        c->cache_status = cs;
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("cache-status"), 0, "Cache-Status", cs,
                              nl + 2 + dl);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VIA, "Via", s->via, strlen(s->via));
        if (s->conf.served_by != NULL)
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-served-by"), 0, "X-Served-By",
                                  s->conf.served_by, strlen(s->conf.served_by));
        add_request_id(c);
        return;
    }
    const char *parts[] = {s->cache_name, "; ", status_detail};
    req_join(ours, sizeof(ours), parts, 3);
    int l = join_upstream(up, nup, "cache-status", ours, buf, sizeof(buf));
    ADD_LIT(c->req, "Cache-Status", buf, (size_t)l);
    c->cache_status = h2o_mem_alloc_pool(&c->req->pool, (size_t)l + 1);
    memcpy((char *)c->cache_status, buf, (size_t)l + 1);
    l = join_upstream(up, nup, "via", s->via, buf, sizeof(buf));
    ADD_LIT(c->req, "Via", buf, (size_t)l);
    if (s->conf.served_by != NULL)
        ADD_LIT(c->req, "X-Served-By", s->conf.served_by, strlen(s->conf.served_by));
    add_request_id(c);
}

const char *req_reason(int st)
{
    const char *r = cdn_http_reason(st);
    return r != NULL ? r : "Status";
}

/* RFC 9110 13.1: If-None-Match wins over If-Modified-Since. 1 if the client's copy is current. */
static int not_modified(struct creq *c, const struct edge_obj *o)
{
    int i = edge_hdr_find(c->hdrs, c->nhdrs, "if-none-match", 0);
    if (i >= 0)
        return edge_etag_match(c->hdrs[i].value, c->hdrs[i].value_len, edge_obj_hdr(o, "etag"));
    i = edge_hdr_find(c->hdrs, c->nhdrs, "if-modified-since", 0);
    const struct edge_hdr *lm = edge_obj_hdr(o, "last-modified");
    int64_t ims, lmt;
    if (i < 0 || lm == NULL || edge_http_date_parse(c->hdrs[i].value, c->hdrs[i].value_len, &ims) < 0 ||
        edge_http_date_parse(lm->value, lm->value_len, &lmt) < 0)
        return 0;
    return lmt <= ims;
}

/* If-Range: the range applies only if the validator matches exactly (strong ETag or date). */
static int if_range_ok(struct creq *c, const struct edge_obj *o)
{
    int i = edge_hdr_find(c->hdrs, c->nhdrs, "if-range", 0);
    if (i < 0)
        return 1;
    const struct edge_hdr *h = &c->hdrs[i];
    if (h->value_len > 0 && (h->value[0] == '"')) {
        const struct edge_hdr *et = edge_obj_hdr(o, "etag");
        return et && et->value_len == h->value_len && memcmp(et->value, h->value, h->value_len) == 0;
    }
    const struct edge_hdr *lm = edge_obj_hdr(o, "last-modified");
    return lm && lm->value_len == h->value_len && memcmp(lm->value, h->value, h->value_len) == 0;
}

void req_deliver_obj(struct creq *c, struct edge_obj *o, const char *detail, int64_t age)
{
    req_set_step(c, REQ_DELIVER);
    h2o_req_t *req = c->req;
    struct edge_server *s = c->w->srv;
    c->obj = edge_obj_ref(o);
    c->finished = 1;
    int is304 = (o->status == 200) && not_modified(c, o);
    uint64_t first = 0, last = o->body_len ? o->body_len - 1 : 0;
    int rr = EDGE_RANGE_NONE;
    int ri = edge_hdr_find(c->hdrs, c->nhdrs, "range", 0);
    if (!is304 && ri >= 0 && c->method == EDGE_M_GET && o->status == 200 && if_range_ok(c, o))
        rr = edge_range_parse(c->hdrs[ri].value, c->hdrs[ri].value_len, o->body_len, &first, &last);
    /* The same rules as skip_to_client, from the classes computed when the object was built; c->obj
     * keeps the object alive until the request is disposed, so names and values are not copied. */
    uint8_t skip = EDGE_HF_NOT_TO_CLIENT | (c->internal ? 0 : EDGE_HF_CDN_ONLY);
    const char *ecc = c->internal ? NULL : s->conf.fresh.edge_cc_name;
    size_t ecc_len = ecc ? strlen(ecc) : 0;
    for (size_t i = 0; i < o->nhdrs; i++) {
        const struct edge_hdr *h = &o->hdrs[i];
        if ((o->hflags[i] & skip) || (is304 && !(o->hflags[i] & EDGE_HF_IN_304)) ||
            (ecc_len == h->name_len && ecc_len > 0 && strncasecmp(h->name, ecc, ecc_len) == 0))
            continue;
        h2o_add_header_by_str(&req->pool, &req->res.headers, o->lnames[i], h->name_len, 1, h->name, h->value,
                              h->value_len);
    }
    /* a child edge gets the tags back as Surrogate-Key (the store keeps them as tags, not as a
     * field): without them its copy of a parent's hit could not be purged by tag */
    if (c->internal && o->tags_len > 0)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("surrogate-key"), 0, "Surrogate-Key", o->tags,
                              o->tags_len);
    /* upstream Cache-Status / Via entries are joined with ours only if the object has any */
    int up = (o->hf_all & (EDGE_HF_CACHE_STATUS | EDGE_HF_VIA)) != 0;
    req_add_common(c, detail, age, up ? o->hdrs : NULL, up ? o->nhdrs : 0);
    req->res.status = o->status;
    req->res.reason = req_reason(o->status);
    h2o_iovec_t body = h2o_iovec_init(o->body, o->body_len);
    char cr[96];
    if (is304) {
        req->res.status = 304;
        req->res.reason = "Not Modified";
        body.len = 0;
        req->res.content_length = SIZE_MAX;
    } else if (rr == EDGE_RANGE_UNSAT) {
        req->res.status = 416;
        req->res.reason = "Range Not Satisfiable";
        int l = snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)o->body_len);
        ADD_LIT(req, "Content-Range", cr, (size_t)l);
        body.len = 0;
        req->res.content_length = 0;
    } else if (rr == EDGE_RANGE_OK) {
        req->res.status = 206;
        req->res.reason = "Partial Content";
        int l = snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first,
                         (unsigned long long)last, (unsigned long long)o->body_len);
        ADD_LIT(req, "Content-Range", cr, (size_t)l);
        body.base += first;
        body.len = last - first + 1;
        req->res.content_length = body.len;
    } else {
        req->res.content_length = body.len;
    }
    if (c->is_head)
        body.len = 0;
    cdn_counter_add(s->m_bytes, body.len);
    if (c->from_cache)
        cdn_counter_add(s->m_hit_bytes, body.len);
    c->date = o->date;
    h2o_start_response(req, &c->super);
    req_send(c, &body, body.len ? 1 : 0, H2O_SEND_STATE_FINAL);
}

/* Sends what the waiter has not sent yet, one chunk at a time. The buffers point into the fetch's
 * chunks, and h2o may hold them until the request is done, so a waiter stays attached (holding
 * its fetch reference) until the request is disposed, even after its final send. */
void req_deliver_pump(struct creq *c)
{
    struct fetch *f = c->f;
    if (f == NULL || c->sending || !c->started || c->finished)
        return;
    if (c->is_head) {
        c->finished = 1;
        req_send(c, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    uint64_t limit = f->total < c->end ? f->total : c->end;
    if (c->sent < limit) {
        size_t ci = (size_t)(c->sent / CHUNK), off = (size_t)(c->sent % CHUNK);
        size_t clen = ci == f->nchunks - 1 ? f->last_len : CHUNK;
        h2o_iovec_t b = h2o_iovec_init(f->chunks[ci] + off, clen - off);
        if (b.len > limit - c->sent)
            b.len = (size_t)(limit - c->sent);
        c->sent += b.len;
        cdn_counter_add(c->w->srv->m_bytes, b.len);
        int final = c->sent == c->end || (f->state == FETCH_FINISHED && c->sent == f->total);
        c->sending = !final;
        c->finished = final;
        req_send(c, &b, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
        return;
    }
    if (fetch_is_over(f)) {
        c->finished = 1;
        req_send(c, NULL, 0, f->state == FETCH_FAILED ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL);
    }
}

void req_on_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct creq *c = (struct creq *)g;
    if (c->magic != CREQ_MAGIC)
        return;
    if (h2o_linklist_is_linked(&c->slink))
        h2o_linklist_unlink(&c->slink);
    c->sending = 0;
    /* the pump's final send may end the request (and free c) before it returns: what comes
     * after it holds only the fetch, kept alive by a reference of its own */
    struct fetch *f = c->f;
    if (f != NULL)
        f->refs++;
    req_deliver_pump(c);
    if (f != NULL) {
        if (f->paused)
            fetch_flow(f);
        fetch_release(f);
    }
}

void req_on_stop(h2o_generator_t *g, h2o_req_t *req)
{
    struct creq *c = (struct creq *)g;
    if (c->magic == CREQ_MAGIC)
        c->finished = 1; /* the dispose callback detaches */
}

void req_deliver_fetch(struct creq *c, struct fetch *f, const char *detail)
{
    req_set_step(c, REQ_DELIVER);
    h2o_req_t *req = c->req;
    for (size_t i = 0; i < f->nhdrs; i++)
        if (!skip_to_client(c, f->hdrs, f->nhdrs, &f->hdrs[i]))
            req_add_hdr(req, f->hdrs[i].name, f->hdrs[i].name_len, f->hdrs[i].value, f->hdrs[i].value_len);
    /* the upstream Age passes on (we add no residence time for a response in flight) */
    int ai = edge_hdr_find(f->hdrs, f->nhdrs, "age", 0);
    if (ai >= 0)
        req_add_hdr(req, "Age", 3, f->hdrs[ai].value, f->hdrs[ai].value_len);
    req_add_common(c, detail, -1, f->hdrs, f->nhdrs);
    req->res.status = f->status;
    req->res.reason = req_reason(f->status);
    req->res.content_length = f->clen != UINT64_MAX && !(f->status == 304 || f->status == 204) ? f->clen : SIZE_MAX;
    /* a Range on a fill of known length: only that part, as the stored object would answer it
     * (If-Range or an unsatisfiable range: the whole response, which RFC 9110 allows) */
    int ri = edge_hdr_find(c->hdrs, c->nhdrs, "range", 0);
    uint64_t first, last;
    if (ri >= 0 && f->collapsible && f->status == 200 && c->method == EDGE_M_GET && f->clen != UINT64_MAX &&
        edge_hdr_find(c->hdrs, c->nhdrs, "if-range", 0) < 0 &&
        edge_range_parse(c->hdrs[ri].value, c->hdrs[ri].value_len, f->clen, &first, &last) == EDGE_RANGE_OK) {
        char cr[96];
        int l = snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)first, (unsigned long long)last,
                         (unsigned long long)f->clen);
        ADD_LIT(req, "Content-Range", cr, (size_t)l);
        req->res.status = 206;
        req->res.reason = "Partial Content";
        req->res.content_length = last - first + 1;
        c->sent = first;
        c->end = last + 1;
    }
    /* the origin's Date passes on unchanged (RFC 9110 6.6.1); without one, h2o's clock adds it */
    char *d = h2o_mem_alloc_pool(&req->pool, 30);
    c->date = edge_date_pick(f->hdrs, f->nhdrs, -1, d) ? d : NULL;
    c->started = 1;
    h2o_start_response(req, &c->super);
    req_deliver_pump(c);
}

/* An interim response (103 Early Hints...) from upstream: forwarded to each client of this fetch
 * whose response has not started (RFC 9110 15.2); never stored, never merged into the final one.
 * A mirror gets it from the feed (hr NULL). */
void req_deliver_info(struct creq *c, int status, const struct cdn_httpc_header *h, size_t n)
{
    struct edge_hdr eh[64];
    size_t en = n < 64 ? n : 64;
    for (size_t i = 0; i < en; i++)
        eh[i] = (struct edge_hdr){h[i].name, h[i].name_len, h[i].value, h[i].value_len};
    if (!c->started && !c->finished &&
        edge_interim_send(c->req, status, eh, en, c->w->srv->via, &c->w->date, &c->interim_gate))
        cdn_counter_inc(c->w->srv->m_interim);
}
