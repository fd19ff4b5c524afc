/* origin/lb/proxy.c - shop-lb's proxying: gateway auth, routing, the choice of a backend, the
 * request to it through the worker's cdn_httpc (streamed back with h2o_send/proceed and
 * back-pressure by pausing the upstream), retries, and the access log.
 *
 * Rules:
 * - Retries: only idempotent methods, only when the backend failed before the response started,
 *   each on a backend not tried yet, at most `retries` times. A response that started is relayed
 *   as it is (an error in its body aborts the client's response).
 * - Hedging (timeouts.hedge): an idempotent request whose first attempt has no first byte within
 *   `hedge` is also sent to another backend (the hedge, `hup`); the first head wins and the other
 *   attempt is cancelled; one that fails before any head leaves the field to the other. Bodies
 *   come only from the winner, so a client never sees two responses.
 * - A proxied request's state lives in the request's pool; the pool's dispose cancels the upstream
 *   transfer, so a client that goes away frees everything. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "cdn/admin.h"
#include "cdn/http.h"
#include "cdn/loop.h"
#include "origin/lb/lbd.h"
#include "origin/shop/shop.h"

#define PEND_HIGH (256u << 10) /* pause the upstream above this much unsent body */

static uint64_t now_ms(void) { return cdn_now_ms(); }

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

#define PX_MAGIC 0x50585251u

struct pxreq {
    h2o_generator_t super;
    uint32_t magic;
    struct lb_worker *w;
    h2o_req_t *req;
    struct pool *pool;
    struct backend *be;
    cdn_httpc_req_t *up;
    const char **hdrs;
    char *url;
    uint64_t tried;
    unsigned attempts, retries;
    uint64_t start_ms, attempt_ms;
    struct buf out, pend;        /* out: handed to h2o_send until proceed; pend: arrived since */
    h2o_timeout_entry_t timer;   /* first byte, then idle */
    unsigned head_sent : 1, sending : 1, upstream_done : 1, upstream_failed : 1, paused : 1, finished : 1;
    const char *request_id;
    const char *upstream_name;
    struct backend *brk_be;      /* the backend whose breaker awaits this attempt's outcome */
    int brk_probe;
    /* the hedge: a second attempt while the first has no head yet */
    cdn_httpc_req_t *hup;
    struct backend *hbe, *hbrk_be;
    int hbrk_probe;
    const char *hname;
    h2o_timeout_entry_t htimer;
};

/* The attempt's outcome for its backend's breaker (once; none after a release). */
static void px_breaker(struct pxreq *px, int failed, int release)
{
    if (px->brk_be == NULL)
        return;
    if (release)
        lb_breaker_release(px->brk_be, px->brk_probe);
    else
        lb_breaker_result(px->brk_be, failed, px->brk_probe);
    px->brk_be = NULL;
}

static void release_be(struct backend **bp)
{
    struct backend *b = *bp;
    if (b != NULL) {
        struct pool *p = b->pool;
        size_t i = (size_t)(b - p->be);
        lb_lock();
        if (p->m[i].active > 0)
            p->m[i].active--;
        lb_unlock();
        cdn_gauge_add(b->s_active, -1); /* per-thread deltas: no lock on the gauge */
        *bp = NULL;
    }
}

static void px_release_backend(struct pxreq *px) { release_be(&px->be); }

/* The hedge is over: cancelled (its breaker released) or failed (a failure for its backend). */
static void hedge_drop(struct pxreq *px, int failed)
{
    if (px->hup != NULL && !failed)
        cdn_httpc_cancel(px->hup);
    px->hup = NULL;
    if (px->hbrk_be != NULL) {
        if (failed)
            lb_breaker_result(px->hbrk_be, 1, px->hbrk_probe);
        else
            lb_breaker_release(px->hbrk_be, px->hbrk_probe);
        px->hbrk_be = NULL;
    }
    if (failed && px->hbe != NULL)
        lb_passive_result(px->hbe, 1);
    release_be(&px->hbe);
}

/* The hedge takes the first attempt's place (it answered first, or the first one failed). */
static void hedge_promote(struct pxreq *px)
{
    px->up = px->hup;
    px->be = px->hbe;
    px->brk_be = px->hbrk_be;
    px->brk_probe = px->hbrk_probe;
    px->upstream_name = px->hname;
    px->hup = NULL;
    px->hbe = px->hbrk_be = NULL;
}

static void on_px_dispose(void *d)
{
    struct pxreq *px = d;
    if (px->up != NULL) {
        cdn_httpc_cancel(px->up);
        px->up = NULL;
    }
    if (h2o_timeout_is_linked(&px->timer))
        h2o_timeout_unlink(&px->timer);
    px_breaker(px, 0, 1);
    px_release_backend(px);
    if (h2o_timeout_is_linked(&px->htimer))
        h2o_timeout_unlink(&px->htimer);
    hedge_drop(px, 0);
    free(px->out.p);
    free(px->pend.p);
}

/* The balancer's own answers (errors, 429...): plain text, never stored; the admin listener's
 * helper does exactly that. */
void lb_send_plain(h2o_req_t *req, int status, const char *reason, const char *msg)
{
    cdn_admin_send_text(req, status, reason, msg);
}

static int try_backend(struct pxreq *px);

static void flush(struct pxreq *px)
{
    if (px->sending || px->finished)
        return;
    if (px->pend.len == 0 && !px->upstream_done)
        return;
    /* swap: what arrived is now what h2o is sending */
    struct buf t = px->out;
    px->out = px->pend;
    px->pend = t;
    px->pend.len = 0;
    h2o_iovec_t iov = h2o_iovec_init(px->out.p, px->out.len);
    h2o_send_state_t st = H2O_SEND_STATE_IN_PROGRESS;
    if (px->upstream_done)
        st = px->upstream_failed ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL;
    if (st != H2O_SEND_STATE_IN_PROGRESS)
        px->finished = 1;
    px->sending = st == H2O_SEND_STATE_IN_PROGRESS;
    h2o_send(px->req, &iov, iov.len ? 1 : 0, st);
}

static void on_px_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct pxreq *px = (struct pxreq *)g;
    px->sending = 0;
    px->out.len = 0;
    if (px->paused && px->up != NULL && px->pend.len < PEND_HIGH) {
        px->paused = 0;
        cdn_httpc_pause(px->up, 0); /* may deliver buffered body right here */
    }
    flush(px);
}

static void on_px_stop(h2o_generator_t *g, h2o_req_t *req)
{
    struct pxreq *px = (struct pxreq *)g;
    if (px->up != NULL) {
        cdn_httpc_cancel(px->up);
        px->up = NULL;
    }
}

static int hop_by_hop(const char *n, size_t l) { return (cdn_http_hdr_class(n, l) & CDN_HDR_HOP) != 0; }

/* RFC 9110 7.6.1: a field that a Connection header names is for this hop only, like the fixed
 * hop-by-hop ones. */
static int named_by_connection(const struct cdn_httpc_header *h, size_t n, const char *name, size_t nl)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 10 && strncasecmp(h[i].name, "connection", 10) == 0 &&
            cdn_http_list_has(h[i].value, h[i].value_len, name, nl))
            return 1;
    return 0;
}

/* A 503 with Retry-After is a live backend saying that something behind it is away for a while
 * (shop-app without its primary database: cart writes 503, reads go on). Every backend shares that
 * dependency, so counting it as the backend's failure would take the whole pool down and turn a
 * write outage into a full one: it is not a passive-health failure. */
static int backend_failed(int status, const struct cdn_httpc_header *h, size_t n)
{
    if (status < 500)
        return 0;
    if (status == 503)
        for (size_t i = 0; i < n; i++)
            if (h[i].name_len == 11 && strncasecmp(h[i].name, "retry-after", 11) == 0)
                return 0;
    return 1;
}

static const char *reason_of(int status)
{
    const char *r = cdn_http_reason(status);
    if (r != NULL)
        return r;
    return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
}

static int on_up_head(cdn_httpc_req_t *r, int status, int version, const struct cdn_httpc_header *h, size_t n, void *data)
{
    struct pxreq *px = data;
    h2o_req_t *req = px->req;
    if (h2o_timeout_is_linked(&px->htimer))
        h2o_timeout_unlink(&px->htimer);
    if (px->hup != NULL && r == px->hup) { /* the hedge answered first: the first attempt goes */
        if (px->up != NULL)
            cdn_httpc_cancel(px->up);
        px->up = NULL;
        px_breaker(px, 0, 1);
        px_release_backend(px);
        hedge_promote(px);
    } else if (px->hup != NULL) {          /* the first attempt answered: the hedge goes */
        hedge_drop(px, 0);
    }
    if (h2o_timeout_is_linked(&px->timer))
        h2o_timeout_unlink(&px->timer);
    h2o_timeout_link(px->w->loop, &px->w->idle_timeout, &px->timer);
    int failed = backend_failed(status, h, n);
    lb_passive_result(px->be, failed);
    px_breaker(px, failed, 0);
    req->res.status = status;
    req->res.reason = reason_of(status);
    /* A Connection header naming only fixed hop-by-hop fields ("keep-alive", every answer of a
     * kept-alive app) drops nothing more: then the per-field lookup is skipped. */
    int names_more = 0;
    for (size_t i = 0; i < n && !names_more; i++) {
        if (h[i].name_len != 10 || strncasecmp(h[i].name, "connection", 10) != 0)
            continue;
        const char *p = h[i].value, *tok;
        size_t tl;
        while (!names_more && cdn_http_list_next(&p, h[i].value + h[i].value_len, &tok, &tl))
            names_more = !hop_by_hop(tok, tl);
    }
    for (size_t i = 0; i < n; i++) {
        if (hop_by_hop(h[i].name, h[i].name_len) ||
            (names_more && named_by_connection(h, n, h[i].name, h[i].name_len)))
            continue;
        if (h[i].name_len == 14 && strncasecmp(h[i].name, "content-length", 14) == 0) {
            char tmp[24];
            size_t l = h[i].value_len < sizeof(tmp) - 1 ? h[i].value_len : sizeof(tmp) - 1;
            memcpy(tmp, h[i].value, l);
            tmp[l] = '\0';
            req->res.content_length = strtoull(tmp, NULL, 10);
            continue;
        }
        if (h[i].name_len == 4 && strncasecmp(h[i].name, "date", 4) == 0)
            continue; /* h2o adds its own */
        if (h[i].name_len == 6 && strncasecmp(h[i].name, "server", 6) == 0)
            continue;
        h2o_iovec_t name = h2o_strdup(&req->pool, h[i].name, h[i].name_len);
        h2o_strtolower(name.base, name.len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len, 1, NULL,
                              h2o_strdup(&req->pool, h[i].value, h[i].value_len).base, h[i].value_len);
    }
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VIA, NULL, H2O_STRLIT("1.1 shop-lb"));
    h2o_set_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 1, px->request_id,
                          strlen(px->request_id), 1);
    h2o_set_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-backend"), 1, px->upstream_name,
                          strlen(px->upstream_name), 1);
    /* the app already chose its encoding; do not compress again here */
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    px->head_sent = 1;
    h2o_start_response(req, &px->super);
    return 0;
}

static int on_up_body(cdn_httpc_req_t *r, const void *buf, size_t len, void *data)
{
    struct pxreq *px = data;
    if (h2o_timeout_is_linked(&px->timer))
        h2o_timeout_unlink(&px->timer);
    h2o_timeout_link(px->w->loop, &px->w->idle_timeout, &px->timer);
    if (buf_add(&px->pend, buf, len) != 0)
        return 1;
    if (px->pend.len >= PEND_HIGH && !px->paused) {
        px->paused = 1;
        cdn_httpc_pause(r, 1);
    }
    flush(px);
    return 0;
}

static int idempotent(h2o_req_t *req)
{
    static const char *const m[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", NULL};
    for (int i = 0; m[i]; i++)
        if (h2o_memis(req->method.base, req->method.len, m[i], strlen(m[i])))
            return 1;
    return 0;
}

/* The backend failed before any response byte: retry elsewhere, or answer 502/504. */
static void failed_before_head(struct pxreq *px, const char *errstr, int timeout)
{
    struct backend *be = px->be;
    cdn_info("backend %s/%s failed for %.*s: %s", be ? be->pool->name : "-", be ? be->addr : "-",
             (int)px->req->path.len, px->req->path.base, errstr);
    if (be)
        lb_passive_result(be, 1);
    px_breaker(px, 1, 0); /* refused, broken, or no first byte in time */
    px_release_backend(px);
    if (idempotent(px->req) && px->attempts <= px->retries && !lb_stopping()) {
        cdn_counter_inc(lb.s_retries);
        if (try_backend(px) == 0)
            return;
    }
    px->finished = 1;
    if (timeout)
        lb_send_plain(px->req, 504, "Gateway Timeout", "backend did not answer in time\n");
    else {
        char msg[256];
        snprintf(msg, sizeof(msg), "backend error: %s\n", errstr);
        lb_send_plain(px->req, 502, "Bad Gateway", h2o_strdup(&px->req->pool, msg, SIZE_MAX).base);
    }
}

static void on_up_done(cdn_httpc_req_t *r, const char *errstr, void *data)
{
    struct pxreq *px = data;
    if (!px->head_sent && px->hup != NULL) {
        /* two attempts, no head yet: the one that failed leaves the field to the other */
        if (r == px->hup) {
            cdn_info("hedge to %s failed for %.*s: %s", px->hname, (int)px->req->path.len, px->req->path.base,
                     errstr ? errstr : "no response");
            px->hup = NULL; /* done: nothing to cancel */
            hedge_drop(px, 1);
            return;
        }
        cdn_info("backend %s failed for %.*s: %s; its hedge goes on", px->upstream_name, (int)px->req->path.len,
                 px->req->path.base, errstr ? errstr : "no response");
        px->up = NULL;
        if (px->be != NULL)
            lb_passive_result(px->be, 1);
        px_breaker(px, 1, 0);
        px_release_backend(px);
        hedge_promote(px);
        return;
    }
    px->up = NULL;
    if (h2o_timeout_is_linked(&px->timer))
        h2o_timeout_unlink(&px->timer);
    if (px->be != NULL)
        cdn_histogram_observe(px->be->s_latency, (now_ms() - px->attempt_ms) / 1000.0);
    if (!px->head_sent) {
        failed_before_head(px, errstr ? errstr : "no response", 0);
        return;
    }
    px_release_backend(px);
    px->upstream_done = 1;
    px->upstream_failed = errstr != NULL;
    flush(px);
}

static void on_px_timeout(h2o_timeout_entry_t *e)
{
    struct pxreq *px = H2O_STRUCT_FROM_MEMBER(struct pxreq, timer, e);
    if (!px->head_sent && px->hup != NULL)
        hedge_drop(px, 1); /* no first byte from either in time */
    if (px->up != NULL) {
        cdn_httpc_cancel(px->up);
        px->up = NULL;
    }
    if (!px->head_sent) {
        failed_before_head(px, "first byte timeout", 1);
        return;
    }
    cdn_warn("backend %s: idle timeout mid-body", px->upstream_name);
    px_release_backend(px);
    px->upstream_done = 1;
    px->upstream_failed = 1;
    flush(px);
}

static const struct cdn_httpc_cbs up_cbs = {on_up_head, on_up_body, on_up_done};

static int pick(struct pxreq *px);

/* timeouts.hedge passed without a first byte: the same request to another backend, if one is
 * left (the first attempt goes on; on_up_head keeps whichever answers first). */
static void on_hedge_timer(h2o_timeout_entry_t *e)
{
    struct pxreq *px = H2O_STRUCT_FROM_MEMBER(struct pxreq, htimer, e);
    h2o_req_t *req = px->req;
    if (px->head_sent || px->finished || px->up == NULL || px->hup != NULL || lb_stopping())
        return;
    lb_lock();
    int i = pick(px);
    if (i < 0) {
        lb_unlock();
        return;
    }
    struct backend *b = &px->pool->be[i];
    lb_breaker_sent(b, &px->hbrk_probe);
    px->hbrk_be = b;
    px->pool->m[i].active++;
    b->requests++;
    size_t bl = strlen(b->base);
    char *url = h2o_mem_alloc_pool(&req->pool, bl + req->path.len + 1);
    memcpy(url, b->base, bl);
    lb_unlock();
    memcpy(url + bl, req->path.base, req->path.len);
    url[bl + req->path.len] = '\0';
    px->tried |= 1ull << i;
    px->hbe = b;
    px->hname = b->addr;
    cdn_gauge_add(b->s_active, 1);
    cdn_counter_inc(b->s_requests);
    cdn_counter_inc(lb.s_hedges);
    struct cdn_httpc_request r = {
        .method = h2o_strdup(&req->pool, req->method.base, req->method.len < 15 ? req->method.len : 15).base,
        .url = url,
        .headers = px->hdrs,
        .timeout_ms = lb.conf.timeouts.total,
    };
    cdn_info("backend %s: no first byte in %llu ms for %.*s; hedging to %s", px->upstream_name,
             (unsigned long long)lb.conf.timeouts.hedge, (int)req->path.len, req->path.base, b->addr);
    if ((px->hup = cdn_httpc_start(px->w->httpc, &r, &up_cbs, px)) == NULL)
        hedge_drop(px, 0);
}

/* Under lb.mu. */
static int pick(struct pxreq *px)
{
    struct pool *p = px->pool;
    lb_refresh_members(p);
    switch (p->algo) {
    case LB_RR:
        return lb_pick_rr(p->m, p->n, px->tried);
    case LB_LEASTCONN:
        return lb_pick_leastconn(p->m, p->n, px->tried, &p->rotor);
    case LB_HASH_CLIENT: {
        struct sockaddr_storage ss;
        socklen_t sl = px->req->conn->callbacks->get_peername(px->req->conn, (struct sockaddr *)&ss);
        uint64_t h = 0;
        if (sl > 0 && ss.ss_family == AF_INET)
            h = shop_hash64(&((struct sockaddr_in *)&ss)->sin_addr, 4);
        else if (sl > 0 && ss.ss_family == AF_INET6)
            h = shop_hash64(&((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        return lb_ring_pick(&p->ring, p->m, p->n, h, px->tried);
    }
    case LB_HASH_URL:
        return lb_ring_pick(&p->ring, p->m, p->n, shop_hash64(px->req->path.base, px->req->path.len), px->tried);
    }
    return -1;
}

/* Starts one attempt on a backend not tried yet. 0, or -1 when no backend is left. */
static int try_backend(struct pxreq *px)
{
    h2o_req_t *req = px->req;
    lb_lock();
    int i = pick(px);
    if (i < 0) {
        lb_unlock();
        return -1;
    }
    struct backend *b = &px->pool->be[i];
    lb_breaker_sent(b, &px->brk_probe);
    px->brk_be = b;
    px->pool->m[i].active++;
    b->requests++;
    /* b->base never changes once the slot exists (a re-added backend keeps its address) */
    size_t bl = strlen(b->base);
    px->url = h2o_mem_alloc_pool(&req->pool, bl + req->path.len + 1);
    memcpy(px->url, b->base, bl);
    lb_unlock();
    memcpy(px->url + bl, req->path.base, req->path.len);
    px->url[bl + req->path.len] = '\0';
    px->tried |= 1ull << i;
    px->attempts++;
    px->be = b;
    px->upstream_name = b->addr;
    cdn_gauge_add(b->s_active, 1);
    cdn_counter_inc(b->s_requests);
    struct cdn_httpc_request r = {
        .method = h2o_strdup(&req->pool, req->method.base, req->method.len < 15 ? req->method.len : 15).base,
        .url = px->url,
        .headers = px->hdrs,
        .body = req->entity.base,
        .body_len = req->entity.base ? req->entity.len : 0,
        .timeout_ms = lb.conf.timeouts.total,
    };
    px->attempt_ms = now_ms();
    px->up = cdn_httpc_start(px->w->httpc, &r, &up_cbs, px);
    if (px->up == NULL) {
        px_breaker(px, 0, 1);
        px_release_backend(px);
        return -1;
    }
    h2o_timeout_link(px->w->loop, &px->w->fb_timeout, &px->timer);
    /* the first attempt of a request that may be sent twice gets a hedge deadline (a request
     * with a body is not hedged: GET, HEAD, OPTIONS only) */
    if (px->w->hedge_on && px->attempts == 1 && req->entity.base == NULL && idempotent(req) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("DELETE"))) {
        px->htimer.cb = on_hedge_timer;
        h2o_timeout_link(px->w->loop, &px->w->hedge_timeout, &px->htimer);
    }
    return 0;
}

/* "name: value" in the request's pool. */
static const char *header_line(h2o_req_t *req, const char *name, size_t nl, const char *value, size_t vl)
{
    char *line = h2o_mem_alloc_pool(&req->pool, nl + 2 + vl + 1);
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl);
    line[nl + 2 + vl] = '\0';
    return line;
}

/* Request headers for the backend: the client's minus hop-by-hop ones, plus X-Forwarded-For,
 * X-Forwarded-Proto, Via and X-Request-Id. */
static const char **build_headers(h2o_req_t *req, const char *rid, const char *client)
{
    size_t n = req->headers.size;
    const char **h = h2o_mem_alloc_pool(&req->pool, sizeof(*h) * (n + 6));
    size_t k = 0;
    h2o_iovec_t xff = {NULL, 0};
    ssize_t ci = h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, -1);
    for (size_t i = 0; i < n; i++) {
        const h2o_header_t *e = &req->headers.entries[i];
        /* hop-by-hop fields, those a Connection header names (RFC 9110 7.6.1) and those each hop
         * sets itself (Content-Length, Expect) stay here */
        if ((cdn_http_hdr_class(e->name->base, e->name->len) & (CDN_HDR_HOP | CDN_HDR_NO_FORWARD)) ||
            h2o_memis(e->name->base, e->name->len, H2O_STRLIT("x-request-id")))
            continue;
        int named = 0;
        for (ssize_t j = ci; j >= 0 && !named; j = h2o_find_header(&req->headers, H2O_TOKEN_CONNECTION, j))
            named = cdn_http_list_has(req->headers.entries[j].value.base, req->headers.entries[j].value.len,
                                      e->name->base, e->name->len);
        if (named)
            continue;
        if (h2o_memis(e->name->base, e->name->len, H2O_STRLIT("x-forwarded-for"))) {
            xff = e->value;
            continue;
        }
        h[k++] = header_line(req, e->name->base, e->name->len, e->value.base, e->value.len);
    }
    if (xff.base != NULL) {
        char *v = h2o_mem_alloc_pool(&req->pool, xff.len + 2 + strlen(client) + 1);
        memcpy(v, xff.base, xff.len);
        memcpy(v + xff.len, ", ", 2);
        strcpy(v + xff.len + 2, client);
        h[k++] = header_line(req, H2O_STRLIT("X-Forwarded-For"), v, strlen(v));
    } else {
        h[k++] = header_line(req, H2O_STRLIT("X-Forwarded-For"), client, strlen(client));
    }
    h[k++] = "X-Forwarded-Proto: http";
    h[k++] = "Via: 1.1 shop-lb";
    h[k++] = header_line(req, H2O_STRLIT("X-Request-Id"), rid, strlen(rid));
    h[k] = NULL;
    return h;
}

static void client_addr(h2o_req_t *req, char out[CDN_PEER_TEXT_MAX])
{
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    cdn_peer_text(sl > 0 ? (struct sockaddr *)&ss : NULL, out);
}

int lb_on_proxy_req(h2o_handler_t *h, h2o_req_t *req)
{
    const char *path = req->path_normalized.base;
    size_t plen = req->path_normalized.len;

    /* gateway auth before anything touches a backend */
    lb_lock();
    for (size_t i = 0; i < lb.conf.protect.n; i++) {
        const struct conf_protect *pr = &((const struct conf_protect *)lb.conf.protect.items)[i];
        size_t pl = strlen(pr->prefix);
        if (plen < pl || memcmp(path, pr->prefix, pl) != 0)
            continue;
        ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
        int ok = 0;
        if (ai >= 0) {
            h2o_iovec_t v = req->headers.entries[ai].value;
            size_t tl = strlen(pr->token);
            ok = v.len == 7 + tl && strncasecmp(v.base, "Bearer ", 7) == 0 && memcmp(v.base + 7, pr->token, tl) == 0;
        }
        if (!ok) {
            lb_unlock();
            h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, H2O_STRLIT("Bearer realm=\"shop-lb\""), 1);
            lb_send_plain(req, 401, "Unauthorized", "this path needs a bearer token\n");
            return 0;
        }
    }
    lb_unlock();
    return lb_limit_req(req, cdn_worker_of(req)->data);
}

int lb_proxy_route(h2o_req_t *req)
{
    const char *path = req->path_normalized.base;
    size_t plen = req->path_normalized.len;
    lb_lock();
    struct pool *pool = NULL;
    size_t best = 0;
    for (size_t i = 0; i < lb.nroutes; i++) {
        size_t pl = strlen(lb.routes[i].prefix);
        if (pl <= plen && memcmp(path, lb.routes[i].prefix, pl) == 0 && (pool == NULL || pl > best)) {
            pool = lb.routes[i].pool;
            best = pl;
        }
    }
    unsigned retries = lb.conf.retries;
    lb_unlock();
    if (pool == NULL) {
        lb_send_plain(req, 404, "Not Found", "no route for this path\n");
        return 0;
    }
    struct lb_worker *w = cdn_worker_of(req)->data;
    cdn_counter_inc(w->s_requests);
    struct pxreq *px = h2o_mem_alloc_shared(&req->pool, sizeof(*px), on_px_dispose);
    memset(px, 0, sizeof(*px));
    cdn_worker_track(req);
    px->magic = PX_MAGIC;
    px->w = w;
    px->super.proceed = on_px_proceed;
    px->super.stop = on_px_stop;
    px->req = req;
    px->pool = pool;
    px->retries = retries;
    px->timer.cb = on_px_timeout;
    px->start_ms = now_ms();
    px->upstream_name = "-";

    ssize_t ri = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (ri >= 0 && req->headers.entries[ri].value.len > 0 && req->headers.entries[ri].value.len <= 128) {
        px->request_id = h2o_strdup(&req->pool, req->headers.entries[ri].value.base, req->headers.entries[ri].value.len).base;
    } else {
        char *id = h2o_mem_alloc_pool(&req->pool, 33);
        uint64_t seq = __atomic_add_fetch(&lb.rid_seq, 1, __ATOMIC_RELAXED);
        cdn_hex64(id, lb.rid_salt); /* "%016llx%016llx" without printf's cost */
        cdn_hex64(id + 16, shop_hash64(&(uint64_t){seq ^ lb.rid_salt}, 8));
        id[32] = '\0';
        px->request_id = id;
    }
    char client[CDN_PEER_TEXT_MAX];
    client_addr(req, client);
    px->hdrs = build_headers(req, px->request_id, client);

    if (try_backend(px) != 0) {
        px->finished = 1;
        char msg[200];
        snprintf(msg, sizeof(msg), "no healthy backend in pool '%s'\n", pool->name);
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, H2O_STRLIT("1"), 1);
        lb_send_plain(req, 503, "Service Unavailable", h2o_strdup(&req->pool, msg, SIZE_MAX).base);
        return 0;
    }
    cdn_req_hold_read(req); /* the answer comes in a later loop turn: spare the two epoll_ctl */
    return 0;
}

void lb_on_log_access(h2o_logger_t *logger, h2o_req_t *req)
{
    /* One series per status code, looked up once: cdn_metric_series() takes the family's lock. */
    static cdn_series_t *by_status[600]; /* shared by the workers: atomic loads and stores */
    int code = req->res.status >= 100 && req->res.status < 600 ? req->res.status : 0;
    cdn_series_t *s = __atomic_load_n(&by_status[code], __ATOMIC_ACQUIRE);
    if (s == NULL) {
        char st[16];
        snprintf(st, sizeof(st), "%d", req->res.status);
        const char *lbl[] = {st, NULL};
        s = cdn_metric_series(lb.m_requests, lbl);
        if (code != 0)
            __atomic_store_n(&by_status[code], s, __ATOMIC_RELEASE);
    }
    cdn_counter_inc(s);
    if (lb.alog == NULL)
        return;
    char peer[CDN_PEER_TEXT_MAX];
    struct cdn_alog_entry e;
    cdn_alog_entry_from_req(req, &e, peer);
    ssize_t bi = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-backend"), -1);
    if (bi >= 0)
        e.upstream = h2o_strdup(&req->pool, req->res.headers.entries[bi].value.base, req->res.headers.entries[bi].value.len).base;
    cdn_alog_write(lb.alog, &e);
}
