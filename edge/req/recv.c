/* edge/req/recv.c - recv and done: a request comes in (checks, request id, vhost, key, PURGE)
 * and goes away (dispose: the h2 reset bound, the access log); the worker's setup. */
#include "config.h"
#include <assert.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdn/h1strict.h"
#include "cdn/http.h"
#include "cdn/admin.h"
#include "edge/http/accept.h"
#include "edge/req/req.h"
#include <sys/random.h>

#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/time.h>

__thread struct edge_worker *edge_tls_worker;

const char *req_step_name(enum req_step s)
{
    static const char *const names[] = {"recv", "lookup", "hit", "miss", "pass", "deliver", "synth", "done"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* The one place a request changes step. Done is final; the trail is logged at debug level (a
 * varnishlog-like view: grep the request id). */
void req_set_step(struct creq *c, enum req_step s)
{
    assert(c->magic == CREQ_MAGIC);
    assert(edge_req_step_ok(c->step, s));
    if (cdn_log_get_level() <= CDN_LOG_DEBUG)
        cdn_debug("req %s: %s -> %s", c->request_id ? c->request_id : "-", req_step_name(c->step), req_step_name(s));
    c->step = s;
}

/* X-Request-Id: a client's value is kept when it is 1..128 visible ASCII characters; else (or
 * when absent) we make one: 32 hex digits from a per-thread xorshift seeded by getrandom. */
static int request_id_ok(const char *v, size_t n)
{
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= 0x20 || v[i] >= 0x7f)
            return 0;
    return 1;
}

static uint64_t rid_next(void)
{
    static __thread uint64_t st;
    while (st == 0 && getrandom(&st, sizeof(st), 0) != sizeof(st))
        st = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&st; /* no entropy: still unique enough */
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return st;
}

static void set_request_id(struct creq *c)
{
    int i = edge_hdr_find(c->hdrs, c->nhdrs, "x-request-id", 0);
    if (i >= 0 && request_id_ok(c->hdrs[i].value, c->hdrs[i].value_len)) {
        char *v = h2o_mem_alloc_pool(&c->req->pool, c->hdrs[i].value_len + 1);
        memcpy(v, c->hdrs[i].value, c->hdrs[i].value_len);
        v[c->hdrs[i].value_len] = '\0';
        c->request_id = v;
        return;
    }
    char *v = h2o_mem_alloc_pool(&c->req->pool, 33);
    cdn_hex64(v, rid_next()); /* "%016llx%016llx" without printf's cost, on every request */
    cdn_hex64(v + 16, rid_next());
    v[32] = '\0';
    c->request_id = v;
    c->own_request_id = 1;
}

/* The authority (Host, or :authority on h2) is validated before anything uses it (RFC 9110 7.2,
 * RFC 3986 3.2.2): an invalid one is refused, a valid one replaced by its normal form, so that the
 * vhost, the cache key, the purge key and the Host sent upstream all see the same name and no
 * spelling of a host can reach another's key ("Host: a/p" once stored GET /1 under a/p/1).
 * h2o puts its host entry's name in when the client sent none: refused on HTTP/1.1 (RFC 9112 3.2)
 * and h2, kept on HTTP/1.0. -1: answer 400. */
static int check_authority(struct creq *c)
{
    h2o_req_t *req = c->req;
    if (req->authority.base == req->hostconf->authority.hostport.base)
        return req->version < 0x101 ? 0 : -1;
    char buf[EDGE_HOST_MAX];
    int l = edge_authority_normalize(req->authority.base, req->authority.len, req->scheme->default_port, buf,
                                     sizeof(buf));
    if (l < 0)
        return -1;
    if ((size_t)l != req->authority.len || memcmp(buf, req->authority.base, (size_t)l) != 0)
        req->authority = h2o_strdup(&req->pool, buf, (size_t)l);
    return 0;
}

/* 1 when the request carries the edges' shared key (CDN-Edge-Key, compared in constant time):
 * a CDN-Loop entry alone is the client's word, and anyone can write it. */
static int edge_key_ok(const struct creq *c)
{
    const char *k = c->w->srv->conf.edge_key;
    if (k == NULL)
        return 0;
    size_t kl = strlen(k);
    int i = edge_hdr_find(c->hdrs, c->nhdrs, "cdn-edge-key", 0);
    return i >= 0 && c->hdrs[i].value_len == kl && CRYPTO_memcmp(c->hdrs[i].value, k, kl) == 0;
}

/* RFC 8586: -1 if CDN-Loop names this edge already; sets c->internal when it names another of
 * ours (a child edge: it gets the CDN-targeted fields too, and /healthz) and carries the edges'
 * key. Names must differ along a chain. */
static int check_loop(struct creq *c)
{
    const char *me = c->w->srv->cache_name;
    size_t ml = strlen(me);
    for (size_t i = 0; i < c->nhdrs; i++) {
        if (!name_is(&c->hdrs[i], "cdn-loop"))
            continue;
        const char *p = c->hdrs[i].value, *end = p + c->hdrs[i].value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *b = p;
            while (p < end && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
                p++;
            size_t tl = (size_t)(p - b);
            if (tl == ml && memcmp(b, me, ml) == 0)
                return -1;
            if (tl > 9 && memcmp(b, "cdn-edge-", 9) == 0 && edge_key_ok(c))
                c->internal = 1;
            while (p < end && *p != ',')
                p++; /* parameters */
        }
    }
    return 0;
}

/* rate_limit (docs/EDGE.md "Rate limiting"): one GCRA bucket per vhost, policy and client key in
 * the process-wide table (cdn/ratelimit.h). The client key is the configured header's value (its
 * hash), else the peer's address: an IPv4 address, or the /64 of an IPv6 one (one host usually
 * has a whole /64). 0: go on; -1: refused (the 429 is sent). */
static int check_rate(struct creq *c)
{
    const struct edge_rl_conf *rl = &c->vh->rl;
    h2o_req_t *req = c->req;
    size_t pl = strlen(rl->path_prefix);
    if (req->path_normalized.len < pl || memcmp(req->path_normalized.base, rl->path_prefix, pl) != 0)
        return 0;
    /* the key: vhost pattern, policy name, then 'h' + the header value's hash or 'a' + address */
    char key[EDGE_HOST_MAX + 64 + 3 + 16];
    size_t vl = strlen(c->vh->pattern), nl = strlen(rl->name), kl = vl + 1 + nl + 1;
    if (kl + 1 + 16 > sizeof(key))
        return 0; /* cannot happen: both are bounded by the config checks */
    memcpy(key, c->vh->pattern, vl + 1);
    memcpy(key + vl + 1, rl->name, nl + 1);
    int i = rl->header ? edge_hdr_find(c->hdrs, c->nhdrs, rl->header, 0) : -1;
    if (i >= 0) {
        uint64_t h = cdn_hash(c->hdrs[i].value, c->hdrs[i].value_len);
        key[kl++] = 'h';
        memcpy(key + kl, &h, sizeof(h));
        kl += sizeof(h);
    } else {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
        key[kl++] = 'a';
        if (ss.ss_family == AF_INET) {
            memcpy(key + kl, &((struct sockaddr_in *)&ss)->sin_addr, 4);
            kl += 4;
        } else if (ss.ss_family == AF_INET6) {
            const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
            if (IN6_IS_ADDR_V4MAPPED(a)) {
                memcpy(key + kl, a->s6_addr + 12, 4);
                kl += 4;
            } else {
                memcpy(key + kl, a->s6_addr, 8); /* the /64 */
                kl += 8;
            }
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    struct cdn_rl_result res;
    if (cdn_rl_check(c->w->srv->rl, key, kl, &rl->rate, now, &res))
        return 0;
    cdn_counter_inc(c->w->srv->m_rl_limited);
    req_synth_limited(c, rl, &res);
    return -1;
}

/* On image_paths, Accept becomes the one media type the client will get (http/accept.h), in the
 * headers the key and the upstream request are built from; one is added when none came. */
static void normalise_accept(struct creq *c)
{
    struct edge_server *s = c->w->srv;
    int present;
    enum edge_imgfmt f = edge_accept_image(c->hdrs, c->nhdrs, s->conf.image_formats, &present);
    const char *mt = edge_imgfmt_mime[f];
    for (int i = edge_hdr_find(c->hdrs, c->nhdrs, "accept", 0); i >= 0; i = edge_hdr_find(c->hdrs, c->nhdrs, "accept", (size_t)i + 1))
        c->hdrs[i].value = mt, c->hdrs[i].value_len = strlen(mt);
    if (!present) {
        struct edge_hdr *h = h2o_mem_alloc_pool(&c->req->pool, (c->nhdrs + 1) * sizeof(*h));
        if (c->nhdrs)
            memcpy(h, c->hdrs, c->nhdrs * sizeof(*h));
        h[c->nhdrs++] = (struct edge_hdr){"accept", 6, mt, strlen(mt)};
        c->hdrs = h;
    }
    c->imgfmt = 1 + (int)f;
    cdn_counter_inc(s->m_imgfmt[f]);
}

static int build_key(struct creq *c)
{
    h2o_req_t *req = c->req;
    struct edge_server *s = c->w->srv;
    char pk[EDGE_KEY_MAX];
    const char *scheme = req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http";
    int pl = edge_key_primary(&s->conf.key, scheme, req->authority.base, req->authority.len, req->path.base,
                              req->path.len, pk, sizeof(pk));
    if (pl < 0)
        return -1;
    c->pkey = h2o_mem_alloc_pool(&req->pool, (size_t)pl + 1);
    memcpy(c->pkey, pk, (size_t)pl + 1);
    c->pkey_len = (size_t)pl;
    char vary[512], vk[2048];
    c->key = c->pkey;
    c->key_len = c->pkey_len;
    if (edge_store_vary(s->store, c->pkey, c->pkey_len, vary, sizeof(vary))) {
        int vl = edge_vary_key(vary, strlen(vary), c->hdrs, c->nhdrs, vk, sizeof(vk));
        if (vl < 0)
            return -1;
        c->key = h2o_mem_alloc_pool(&req->pool, c->pkey_len + 1 + (size_t)vl + 1);
        memcpy(c->key, c->pkey, c->pkey_len);
        c->key[c->pkey_len] = '\n';
        memcpy(c->key + c->pkey_len + 1, vk, (size_t)vl);
        c->key_len = c->pkey_len + 1 + (size_t)vl;
        c->key[c->key_len] = '\0';
    }
    c->key_id = edge_key_id(c->key, c->key_len);
    return 0;
}

/* Purges the URL of this request and, for a Location / Content-Location on the same host, that
 * URL too (RFC 9111 4.4). */
size_t req_invalidate(struct creq *c, const char *target, size_t tlen)
{
    struct edge_server *s = c->w->srv;
    char pk[EDGE_KEY_MAX];
    const char *scheme = c->req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http";
    int pl = edge_key_primary(&s->conf.key, scheme, c->req->authority.base, c->req->authority.len, target, tlen, pk,
                              sizeof(pk));
    return pl < 0 ? 0 : edge_store_purge_url(s->store, pk, (size_t)pl);
}

static void on_creq_dispose(void *p)
{
    struct creq *c = p;
    if (c->magic != CREQ_MAGIC)
        return;
    if (edge_h2guard_was_reset(c->req)) {
        cdn_counter_inc(c->w->srv->m_h2_resets);
        if (edge_h2guard_reset(&c->w->h2guard, c->req, cdn_now_ms())) {
            cdn_counter_inc(c->w->srv->m_h2_goaway);
            cdn_warn("GOAWAY to an HTTP/2 client that reset more than %u streams in a second",
                     c->w->h2guard.limit);
        }
    }
    if (h2o_linklist_is_linked(&c->slink))
        h2o_linklist_unlink(&c->slink);
    fetch_leave(c);
    edge_obj_release(c->obj);
    c->obj = NULL;
    double dur = mono() - c->t0;
    cdn_histogram_observe(c->w->srv->m_latency, dur);
    if (c->w->srv->alog != NULL) {
        char peer[CDN_PEER_TEXT_MAX];
        struct cdn_alog_entry e;
        cdn_alog_entry_from_req(c->req, &e, peer); /* the peer's address, IPv4 or IPv6 */
        e.cache_status = c->cache_status;
        e.upstream = c->upstream ? c->upstream : "";
        e.request_id = c->request_id;
        e.step = req_step_name(c->step);
        cdn_alog_write(c->w->srv->alog, &e);
    }
    req_set_step(c, REQ_DONE);
    c->magic = 0;
}

/* PURGE on a public listener: off unless the vhost's `purge:` allows it, and then only from its
 * networks (403) with its bearer token (401). 1 when refused (answered and counted). */
static int purge_refused(struct creq *c)
{
    struct edge_server *s = c->w->srv;
    const struct edge_purge_acl *a = &c->vh->purge;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (!a->on) {
        cdn_counter_inc(s->m_purge_refused);
        h2o_set_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_ALLOW, H2O_STRLIT("GET, HEAD, POST, PUT, DELETE, OPTIONS"), 1);
        req_synth_error(c, 405, "Method Not Allowed", "detail=purge-off", "PURGE is not enabled on this vhost");
        return 1;
    }
    c->req->conn->callbacks->get_peername(c->req->conn, (struct sockaddr *)&ss);
    if (!edge_net_match(a->nets, a->nnets, (struct sockaddr *)&ss)) {
        cdn_counter_inc(s->m_purge_refused);
        req_synth_error(c, 403, "Forbidden", "detail=purge-acl", "PURGE is not allowed from this address");
        return 1;
    }
    if (!cdn_admin_bearer_ok(c->req, a->token)) {
        cdn_counter_inc(s->m_purge_refused);
        h2o_set_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, H2O_STRLIT("Bearer realm=\"cdn-purge\""), 1);
        req_synth_error(c, 401, "Unauthorized", "detail=purge-token", "PURGE needs Authorization: Bearer TOKEN");
        return 1;
    }
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct edge_worker *w = edge_tls_worker;
    struct edge_server *s = w->srv;
    struct creq *c = h2o_mem_alloc_shared(&req->pool, sizeof(*c), on_creq_dispose);
    memset(c, 0, sizeof(*c));
    c->magic = CREQ_MAGIC;
    c->super.proceed = req_on_proceed;
    c->super.stop = req_on_stop;
    c->req = req;
    c->w = w;
    c->end = UINT64_MAX;
    c->t0 = mono();
    gettimeofday(&c->start, NULL);
    c->nhdrs = req->headers.size;
    c->hdrs = h2o_mem_alloc_pool(&req->pool, (c->nhdrs ? c->nhdrs : 1) * sizeof(*c->hdrs));
    for (size_t i = 0; i < c->nhdrs; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        c->hdrs[i] = (struct edge_hdr){h->name->base, h->name->len, h->value.base, h->value.len};
    }
    c->method = edge_method_parse(req->method.base, req->method.len);
    c->is_head = c->method == EDGE_M_HEAD;
    edge_req_analyze(c->method, c->hdrs, c->nhdrs, &c->rq);
    set_request_id(c);
    const char *bad = cdn_h1strict_verdict(req);
    if (bad != NULL) { /* refused by the strict HTTP/1 check before h2o read any body (cdn/h1strict.h) */
        cdn_counter_inc(s->m_bad_request);
        req->http1_is_persistent = 0;
        req_synth_error(c, 400, "Bad Request", "detail=bad-request", bad);
        return 0;
    }
    if (check_authority(c) < 0) {
        cdn_counter_inc(s->m_bad_host);
        req_synth_error(c, 400, "Bad Request", "detail=bad-host",
                          "invalid or missing Host: it must be host[:port] (RFC 9110 7.2, RFC 3986 3.2.2)");
        return 0;
    }
    if (check_loop(c) < 0) {
        cdn_counter_inc(s->m_loop);
        req_synth_error(c, 508, "Loop Detected", "detail=loop",
                          "loop detected: this request already passed through this edge (CDN-Loop)");
        return 0;
    }
    /* a child edge's health check of us (health.h): answered here, whatever the Host; a draining
     * edge says 503 so that its children move to another parent */
    if (c->internal && (c->method == EDGE_M_GET || c->method == EDGE_M_HEAD) &&
        h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/healthz"))) {
        req_synth_healthz(c, __atomic_load_n(&s->draining, __ATOMIC_RELAXED));
        return 0;
    }
    const struct edge_vhosts *vs = __atomic_load_n(&s->conf.vhosts, __ATOMIC_ACQUIRE);
    if ((c->vh = edge_vhost_match(vs, req->authority.base, req->authority.len)) == NULL) {
        char body[EDGE_HOST_MAX + 64];
        snprintf(body, sizeof(body), "no virtual host for '%.*s' on this edge",
                 (int)(req->authority.len < EDGE_HOST_MAX ? req->authority.len : EDGE_HOST_MAX), req->authority.base);
        req_synth_error(c, 421, "Misdirected Request", "detail=no-vhost", body);
        return 0;
    }
    if (c->vh->rl.on == 1 && !c->internal && check_rate(c) < 0)
        return 0;
    if (s->conf.image_paths != NULL && (c->method == EDGE_M_GET || c->method == EDGE_M_HEAD) &&
        edge_image_path(s->conf.image_paths, req->path_normalized.base, req->path_normalized.len))
        normalise_accept(c);
    if (build_key(c) < 0) {
        req_synth_error(c, 400, "Bad Request", "detail=bad-target", "request target not cacheable");
        return 0;
    }
    if (req->method.len == 5 && memcmp(req->method.base, "PURGE", 5) == 0) {
        if (purge_refused(c))
            return 0;
        size_t n = edge_store_purge_url(s->store, c->pkey, c->pkey_len);
        cdn_counter_add(s->m_purged, n);
        req_count(s, M_PURGE, T_NONE);
        req_synth_purged(c, n);
        return 0;
    }
    req_lookup(c);
    return 0;
}

void edge_handler_register(h2o_hostconf_t *hc, struct edge_server *srv)
{
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    h->on_req = on_req;
}

int edge_worker_init(struct edge_worker *w, struct edge_server *srv, char *err, size_t errlen)
{
    w->srv = srv;
    edge_tls_worker = w;
    w->h2guard.limit = srv->conf.h2_reset_limit;
    w->h2guard.empty_limit = srv->conf.h2_empty_limit;
    edge_h2frames_bind(&w->h2guard, srv->m_h2_empty_goaway);
    h2o_linklist_init_anchor(&w->fetch_queue);
    h2o_linklist_init_anchor(&w->sending);
    if ((w->send_timer = cdn_timer_new(w->ctx->loop, req_on_send_timer, w)) == NULL) {
        snprintf(err, errlen, "cannot create a timer");
        return -1;
    }
    h2o_linklist_init_anchor(&w->retry_wait);
    if ((w->queue_timer = cdn_timer_new(w->ctx->loop, fetch_on_queue_timer, w)) == NULL) {
        snprintf(err, errlen, "cannot create a timer");
        return -1;
    }
    h2o_multithread_register_receiver(w->ctx->queue, &w->recv, fetch_on_feed_message);
    if (srv->conf.resil.stale_first_byte_ms > 0) { /* resil.h: one period for every fetch */
        h2o_timeout_init(w->ctx->loop, &w->fb_timeout, srv->conf.resil.stale_first_byte_ms);
        w->fb_on = 1;
    }
    if (srv->conf.resil.brk_first_byte_ms > 0) {
        h2o_timeout_init(w->ctx->loop, &w->brk_fb_timeout, srv->conf.resil.brk_first_byte_ms);
        w->brk_fb_on = 1;
    }
    if (edge_idmap_init(&w->fetches, 256) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct cdn_httpc_opts o = {
        .connect_timeout_ms = srv->conf.connect_timeout_ms,
        .timeout_ms = srv->conf.timeout_ms,
        .max_body = 1ULL << 30,
        .h1_engine = !srv->conf.upstream_curl, /* plain GET/HEAD: about half the CPU of libcurl's */
    };
    w->httpc = cdn_httpc_new(w->ctx->loop, &o, err, errlen);
    return w->httpc ? 0 : -1;
}

void edge_worker_dispose(struct edge_worker *w)
{
    if (w->queue_timer != NULL)
        cdn_timer_free(w->queue_timer);
    w->queue_timer = NULL;
    if (w->send_timer != NULL)
        cdn_timer_free(w->send_timer);
    w->send_timer = NULL;
    if (w->fb_on) { /* fetches still linked (freed later) are let go first */
        while (!h2o_linklist_is_empty(&w->fb_timeout._entries))
            h2o_timeout_unlink(H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, w->fb_timeout._entries.next));
        h2o_timeout_dispose(w->ctx->loop, &w->fb_timeout);
        w->fb_on = 0;
    }
    if (w->brk_fb_on) {
        while (!h2o_linklist_is_empty(&w->brk_fb_timeout._entries))
            h2o_timeout_unlink(H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, w->brk_fb_timeout._entries.next));
        h2o_timeout_dispose(w->ctx->loop, &w->brk_fb_timeout);
        w->brk_fb_on = 0;
    }
    edge_date_slot_dispose(&w->date);
}

/* --- small helpers --- */
void req_count(struct edge_server *s, int result, int tier)
{
    if (s->m_req[result][tier] != NULL)
        cdn_counter_inc(s->m_req[result][tier]);
}
