/* edge/handler.c - the request path: key -> RAM -> RocksDB -> origin, with one fetch per key.
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
 * - Pure decisions come from freshness.c; this file only applies them. */
#include "config.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>

#include "cdn/log.h"
#include "cdn/loop.h"
#include "edge/edge.h"
#include "edge/feed.h"
#include "edge/interim.h"
#include "edge/obj.h"
#include "edge/range.h"
#include "edge/tier_ram.h"

#define FETCH_MAGIC 0x46455443u
#define CREQ_MAGIC 0x43524551u
#define CHUNK 65536
#define QUEUE_POLL_MS 10

enum { M_HIT, M_MISS, M_STALE, M_REVALIDATED, M_PASS, M_ERROR, M_PURGE };
enum { T_RAM, T_ROCKSDB, T_PARENT, T_ORIGIN, T_NONE };
extern __thread struct edge_worker *edge_tls_worker;
__thread struct edge_worker *edge_tls_worker;

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
    int head_done, done, failed;
    char err[160];
    const char *bad_head;     /* why the upstream head was refused (becomes the 502's reason) */
    int status;
    struct edge_hdr *hdrs;
    size_t nhdrs;
    char *harena;
    uint64_t clen; /* announced Content-Length or UINT64_MAX */
    char **chunks;
    size_t nchunks, cap_chunks, last_len; /* last_len: bytes in the last chunk */
    uint64_t total;
    int store;
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
    char **uphdrs;            /* owned "Name: value" lines; [0] is the Host line for parents */
    /* max_fetches: a slot of vh's origin while the origin request runs, or a place in the
     * worker's queue (deadline: the connect timeout) */
    int slot, queued, busy;
    int background;           /* a stale-while-revalidate refresh: nobody waits for it, by design */
    int parent_status;        /* a parent's 5xx/508 that sends the fetch to the next upstream */
    h2o_linklist_t qlink;
    uint64_t q_deadline, q_since;
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
    int is_head;
    /* reading from an object */
    struct edge_obj *obj;
    /* reading from a fetch */
    struct fetch *f;
    h2o_linklist_t link;
    uint64_t sent, end;       /* from a fetch: next offset to send, and where to stop (a Range) */
    int sending, started, finished;
    double t0;
    struct timeval start;
    const char *cache_status;
    const char *upstream;     /* for the access log */
    const char *request_id;   /* X-Request-Id: the client's, or one we made (sent upstream, logged) */
    int own_request_id;       /* we made it: upstream_headers adds it */
    int range_pass;           /* its Range went upstream (range_fetch_above) */
    const char *date;         /* Date of the response head, for its first send (then NULL) */
    void *interim_gate;       /* holds the first send while a 1xx is written over TLS (interim.h) */
};

/* --- small helpers --- */
static void count_req(struct edge_server *s, int result, int tier)
{
    if (s->m_req[result][tier] != NULL)
        cdn_counter_inc(s->m_req[result][tier]);
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

/* Every send of a stored or forwarded response goes here: the first one writes the head, with
 * the response's own Date (c->date) rather than h2o's clock (date_send.h). */
static void csend(struct creq *c, h2o_iovec_t *b, size_t n, h2o_send_state_t st)
{
    const char *d = c->date;
    c->date = NULL;
    edge_date_send(&c->w->date, c->req, d, b, n, st);
}
static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int name_is(const struct edge_hdr *h, const char *n)
{
    size_t l = strlen(n);
    return h->name_len == l && strncasecmp(h->name, n, l) == 0;
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
    snprintf(v, 33, "%016llx%016llx", (unsigned long long)rid_next(), (unsigned long long)rid_next());
    c->request_id = v;
    c->own_request_id = 1;
}

/* Headers never sent to clients: hop-by-hop, our targeted fields, tags, lengths h2o sets.
 * Date: h2o writes the Date of every response head itself; csend makes that the response's own
 * (date_send.h), so it is not passed as a header too. */
static int skip_to_client(const struct creq *c, const struct edge_hdr *all, size_t n, const struct edge_hdr *h)
{
    const struct edge_server *s = c->w->srv;
    /* Cache-Status and Via are merged with ours (add_common); X-Served-By names only us */
    if (edge_hdr_is_hop(all, n, h->name, h->name_len) || name_is(h, "content-length") || name_is(h, "date") ||
        name_is(h, "age") || name_is(h, "cache-status") || name_is(h, "via") || name_is(h, "x-served-by"))
        return 1;
    /* targeted fields and tags are for CDN caches: a child edge of ours gets them */
    if (c->internal)
        return 0;
    if (name_is(h, "cdn-cache-control") || name_is(h, "surrogate-key"))
        return 1;
    return s->conf.fresh.edge_cc_name != NULL && name_is(h, s->conf.fresh.edge_cc_name);
}

static void add_hdr(h2o_req_t *req, const char *name, size_t nl, const char *v, size_t vl)
{
    char *nn = h2o_mem_alloc_pool(&req->pool, nl);
    for (size_t i = 0; i < nl; i++)
        nn[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
    char *vv = h2o_mem_alloc_pool(&req->pool, vl + 1);
    memcpy(vv, v, vl);
    h2o_add_header_by_str(&req->pool, &req->res.headers, nn, nl, 1, name, vv, vl);
}
#define ADD_LIT(req, n, v, vl) add_hdr(req, n, sizeof(n) - 1, v, vl)

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
    int l = snprintf(buf + o, cap - o, "%s", ours);
    return l < 0 || (size_t)l >= cap - o ? (int)(cap - 1) : (int)(o + (size_t)l);
}

static void add_common(struct creq *c, const char *status_detail, int64_t age, const struct edge_hdr *up, size_t nup)
{
    struct edge_server *s = c->w->srv;
    h2o_req_t *req = c->req;
    char buf[1024], ours[256];
    if (age >= 0) {
        char *a = h2o_mem_alloc_pool(&req->pool, 20), *e = a + 20, *p = e;
        uint64_t v = (uint64_t)age;
        do
            *--p = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_AGE, "Age", p, (size_t)(e - p));
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
        return;
    }
    snprintf(ours, sizeof(ours), "%s; %s", s->cache_name, status_detail);
    int l = join_upstream(up, nup, "cache-status", ours, buf, sizeof(buf));
    ADD_LIT(c->req, "Cache-Status", buf, (size_t)l);
    c->cache_status = h2o_mem_alloc_pool(&c->req->pool, (size_t)l + 1);
    memcpy((char *)c->cache_status, buf, (size_t)l + 1);
    l = join_upstream(up, nup, "via", s->via, buf, sizeof(buf));
    ADD_LIT(c->req, "Via", buf, (size_t)l);
    if (s->conf.served_by != NULL)
        ADD_LIT(c->req, "X-Served-By", s->conf.served_by, strlen(s->conf.served_by));
}

static const char *reason_of(int st)
{
    switch (st) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 410: return "Gone";
    case 416: return "Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    }
    return "Status";
}

static void on_generator_proceed(h2o_generator_t *g, h2o_req_t *req);
static void on_generator_stop(h2o_generator_t *g, h2o_req_t *req);

static void send_error_detail(struct creq *c, int status, const char *reason, const char *detail, const char *body)
{
    h2o_req_t *req = c->req;
    c->finished = 1;
    count_req(c->w->srv, M_ERROR, T_NONE);
    add_common(c, detail, -1, NULL, 0);
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
    size_t bl = strlen(body);
    char *b = h2o_mem_alloc_pool(&req->pool, bl + 1);
    memcpy(b, body, bl);
    b[bl] = '\n';
    h2o_send_inline(req, b, bl + 1);
}

static void send_error(struct creq *c, int status, const char *reason, const char *body)
{
    send_error_detail(c, status, reason, "fwd=miss; detail=origin-error", body);
}

/* --- sizes of objects seen upstream (range_fetch_above) ---
 * A process-wide map from the primary key's id to the full length learnt from a response
 * (Content-Length of a 200, the total of a 206's Content-Range). Bounded: cleared when full,
 * which only means a few more whole fetches. */
#define SIZE_HINTS_MAX 65536
static pthread_mutex_t hints_mu = PTHREAD_MUTEX_INITIALIZER;
static struct edge_idmap hints;

static void hint_put(uint64_t id, uint64_t size)
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

static uint64_t hint_get(uint64_t id)
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

/* --- serving a stored object --- */

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

static void serve_obj(struct creq *c, struct edge_obj *o, const char *detail, int64_t age)
{
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
    /* upstream Cache-Status / Via entries are joined with ours only if the object has any */
    int up = (o->hf_all & (EDGE_HF_CACHE_STATUS | EDGE_HF_VIA)) != 0;
    add_common(c, detail, age, up ? o->hdrs : NULL, up ? o->nhdrs : 0);
    req->res.status = o->status;
    req->res.reason = reason_of(o->status);
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
    c->date = o->date;
    h2o_start_response(req, &c->super);
    csend(c, &body, body.len ? 1 : 0, H2O_SEND_STATE_FINAL);
}

/* --- fetches --- */
static void slot_put(struct fetch *f);
static void queue_unlink(struct fetch *f);
static void on_fetch_done(cdn_httpc_req_t *hr, const char *errstr, void *data);

/* The headers of h a shared cache may store: without the fields that a qualified private="..."
 * or no-cache="..." names (RFC 9111 5.2.2.7: not stored; 5.2.2.4: reused only without them).
 * Returns h itself when nothing is listed, else a pool copy with *n reduced. */
static const struct edge_hdr *storable_fields(h2o_mem_pool_t *pool, const struct edge_cc *cc,
                                              const struct edge_hdr *h, size_t *n)
{
    if (!(cc->flags & (EDGE_CC_PRIVATE_FIELDS | EDGE_CC_NO_CACHE_FIELDS)) || cc->fields[0] == '\0')
        return h;
    struct edge_hdr *out = h2o_mem_alloc_pool(pool, (*n ? *n : 1) * sizeof(*out));
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!edge_cc_lists_field(cc, h[i].name, h[i].name_len))
            out[k++] = h[i];
    *n = k;
    return out;
}

static void fetch_release(struct fetch *f)
{
    if (--f->refs > 0)
        return;
    if (f->in_table)
        edge_idmap_del(&f->w->fetches, f->id);
    queue_unlink(f);
    slot_put(f);
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
    if (f->feed != NULL && !f->mirror) {
        edge_feed_done(f->feed, "aborted", !f->head_done); /* no-op when published already */
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

static void fetch_unlist(struct fetch *f)
{
    if (f->in_table) {
        edge_idmap_del(&f->w->fetches, f->id);
        f->in_table = 0;
    }
    if (f->feed != NULL && !f->mirror)
        edge_feed_unlist(f->feed);
}

/* A mirror stops reading its feed (its thread). */
static void mirror_leave(struct fetch *f)
{
    if (f->sub != NULL) {
        edge_feed_leave(f->sub);
        f->sub = NULL;
    }
}

static void waiter_detach(struct creq *c)
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
    if (!f->done && f->hr && !f->in_cb && (!f->collapsible || (f->head_done && !f->store)) &&
        h2o_linklist_is_empty(&f->waiters)) {
        cdn_httpc_cancel(f->hr);
        f->hr = NULL;
        slot_put(f);
        f->done = f->failed = 1;
        if (f->feed != NULL)
            edge_feed_done(f->feed, "cancelled", !f->head_done);
        fetch_release(f); /* the transfer's reference */
    }
    /* a fetch still queued for an origin slot that nobody waits for any more (here or on
     * another worker) has sent nothing yet: it is dropped rather than started later (a client
     * that resets its streams must not leave a queue of origin requests behind) */
    if (!f->done && f->queued && !f->in_cb && !f->background && h2o_linklist_is_empty(&f->waiters) &&
        !edge_feed_followed(f->feed)) {
        queue_unlink(f);
        cdn_counter_inc(f->w->srv->m_orphan_drop);
        on_fetch_done(NULL, "cancelled: no client waits for it", f); /* the transfer's reference */
    }
    /* a mirror nobody listens to has nothing to fill: leave the feed */
    if (!f->done && f->sub && !f->in_cb && h2o_linklist_is_empty(&f->waiters)) {
        mirror_leave(f);
        f->done = f->failed = 1;
        fetch_unlist(f);
        fetch_release(f); /* the subscription's reference */
    }
    fetch_release(f);
}

/* Sends what the waiter has not sent yet, one chunk at a time. The buffers point into the fetch's
 * chunks, and h2o may hold them until the request is done, so a waiter stays attached (holding
 * its fetch reference) until the request is disposed, even after its final send. */
static void waiter_pump(struct creq *c)
{
    struct fetch *f = c->f;
    if (f == NULL || c->sending || !c->started || c->finished)
        return;
    if (c->is_head) {
        c->finished = 1;
        csend(c, NULL, 0, H2O_SEND_STATE_FINAL);
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
        int final = c->sent == c->end || (f->done && !f->failed && c->sent == f->total);
        c->sending = !final;
        c->finished = final;
        csend(c, &b, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
        return;
    }
    if (f->done) {
        c->finished = 1;
        csend(c, NULL, 0, f->failed ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL);
    }
}

/* Lets every waiter of f send what has arrived (or finish). */
static void waiters_pump(struct fetch *f)
{
    h2o_linklist_t *node = f->waiters.next;
    while (node != &f->waiters) {
        struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, node);
        node = node->next;
        waiter_pump(c);
    }
}

/* The body of f grew: past max_object it is no longer stored (nor offered to other requests);
 * the waiters get the new bytes either way. */
static void fetch_grew(struct fetch *f)
{
    if (f->total > f->w->srv->conf.max_object && f->store) {
        f->store = 0;
        fetch_unlist(f);
    }
    waiters_pump(f);
}

static void on_generator_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct creq *c = (struct creq *)g;
    if (c->magic != CREQ_MAGIC)
        return;
    c->sending = 0;
    waiter_pump(c);
}

static void on_generator_stop(h2o_generator_t *g, h2o_req_t *req)
{
    struct creq *c = (struct creq *)g;
    if (c->magic == CREQ_MAGIC)
        c->finished = 1; /* the dispose callback detaches */
}

static void start_fetch_response(struct creq *c, struct fetch *f, const char *detail)
{
    h2o_req_t *req = c->req;
    for (size_t i = 0; i < f->nhdrs; i++)
        if (!skip_to_client(c, f->hdrs, f->nhdrs, &f->hdrs[i]))
            add_hdr(req, f->hdrs[i].name, f->hdrs[i].name_len, f->hdrs[i].value, f->hdrs[i].value_len);
    /* the upstream Age passes on (we add no residence time for a response in flight) */
    int ai = edge_hdr_find(f->hdrs, f->nhdrs, "age", 0);
    if (ai >= 0)
        add_hdr(req, "Age", 3, f->hdrs[ai].value, f->hdrs[ai].value_len);
    add_common(c, detail, -1, f->hdrs, f->nhdrs);
    req->res.status = f->status;
    req->res.reason = reason_of(f->status);
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
    waiter_pump(c);
}

static void dispatch(struct creq *c, int no_collapse);
static size_t invalidate(struct creq *c, const char *target, size_t tlen);
static void fetch_start(struct creq *c, int result, int collapsible, struct edge_obj *stale, int stale_if_error);
static int fetch_send(struct fetch *f, const void *body, size_t body_len);
static int slot_get(struct fetch *f);
static int mirror_join(struct creq *c, struct edge_obj *stale, int stale_if_error);
static int connect_failed(cdn_httpc_req_t *hr, const char *errstr);

static int fetch_head(cdn_httpc_req_t *hr, int status, int version, const struct cdn_httpc_header *h,
                      size_t n, void *data)
{
    struct fetch *f = data;
    struct edge_server *s = f->w->srv;
    /* copy the head: it outlives the callback */
    size_t sz = 0;
    for (size_t i = 0; i < n; i++)
        sz += h[i].name_len + h[i].value_len;
    f->hdrs = calloc(n ? n : 1, sizeof(*f->hdrs));
    f->harena = malloc(sz ? sz : 1);
    if (f->hdrs == NULL || f->harena == NULL)
        return 1;
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
    f->head_done = 1;
    int cl = edge_hdr_find(f->hdrs, n, "content-length", 0);
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
        full = full_length(status, f->hdrs, n, f->clen);
        if (full > 0)
            hint_put(edge_key_id(f->key, f->pkey_len), full);
    }
    int64_t now = now_s();
    struct edge_resp_meta rs;
    edge_resp_analyze(f->hdrs, n, status, &s->conf.fresh, &rs);

    /* revalidation answered 304: refresh the stored headers, serve the stored body */
    if (f->stale != NULL && status == 304) {
        /* a 304 about another representation (its ETag is not the stored one) updates nothing:
         * the stored response is served as it is (RFC 9111 4.3.4) */
        h2o_mem_pool_t pool;
        h2o_mem_init_pool(&pool);
        size_t nh = n;
        const struct edge_hdr *hs = storable_fields(&pool, &rs.cc, f->hdrs, &nh);
        struct edge_obj *tmp = edge_obj_304_selects(f->stale, f->hdrs, n)
                                   ? edge_obj_merge_304(f->stale, hs, nh, &f->stale->fresh, f->req_time)
                                   : NULL;
        h2o_mem_clear_pool(&pool);
        struct edge_obj *no = NULL;
        if (tmp != NULL) {
            struct edge_resp_meta mrs;
            struct edge_fresh fr;
            edge_resp_analyze(tmp->hdrs, tmp->nhdrs, tmp->status, &s->conf.fresh, &mrs);
            edge_fresh_from_resp(&fr, &mrs, f->req_time, now, &s->conf.fresh);
            tmp->fresh = fr;
            no = tmp;
            if (!f->mirror) {
                edge_store_put(s->store, no);
                cdn_counter_inc(s->m_stored);
            }
        }
        f->store = 0;
        fetch_unlist(f);
        count_req(s, M_REVALIDATED, f->parent >= 0 ? T_PARENT : T_ORIGIN);
        while (!h2o_linklist_is_empty(&f->waiters)) {
            struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, f->waiters.next);
            waiter_detach(c);
            struct edge_obj *o = no ? no : f->stale;
            serve_obj(c, o, "fwd=stale; fwd-status=304", edge_current_age(o->fresh.initial_age, o->fresh.response_time, now));
        }
        edge_obj_release(no);
        return 1; /* nothing more to read */
    }
    /* a failing origin while we hold a stale copy that stale-if-error allows */
    if (f->stale != NULL && status >= 500 && f->stale_if_error) {
        f->store = 0;
        fetch_unlist(f);
        while (!h2o_linklist_is_empty(&f->waiters)) {
            struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, f->waiters.next);
            waiter_detach(c);
            char d[96];
            snprintf(d, sizeof(d), "fwd=stale; fwd-status=%d; detail=stale-if-error", status);
            count_req(s, M_STALE, T_NONE);
            serve_obj(c, f->stale, d, edge_current_age(f->stale->fresh.initial_age, f->stale->fresh.response_time, now));
        }
        return 1;
    }
    /* RFC 9111 4.4: an unsafe method answered with a non-error status invalidates the target URI,
     * and Location / Content-Location on this host (an error answer changed nothing: the stored
     * responses stay) */
    if (!f->collapsible && edge_method_unsafe(f->rq.method) && status < 400 && f->owner != NULL) {
        h2o_req_t *treq = f->owner->req;
        cdn_counter_add(s->m_purged, invalidate(f->owner, treq->path.base, treq->path.len));
        const char *names[] = {"location", "content-location"};
        for (int k = 0; k < 2; k++) {
            int li = edge_hdr_find(f->hdrs, n, names[k], 0);
            if (li < 0)
                continue;
            const char *v = f->hdrs[li].value;
            size_t vl = f->hdrs[li].value_len;
            h2o_req_t *oreq = f->owner->req;
            /* absolute URL on our authority: reduce it to its path */
            const char *pfx[] = {"http://", "https://"};
            for (int q = 0; q < 2; q++) {
                size_t pl = strlen(pfx[q]);
                if (vl > pl + oreq->authority.len && strncasecmp(v, pfx[q], pl) == 0 &&
                    strncasecmp(v + pl, oreq->authority.base, oreq->authority.len) == 0 &&
                    v[pl + oreq->authority.len] == '/') {
                    v += pl + oreq->authority.len;
                    vl -= pl + oreq->authority.len;
                }
            }
            if (vl > 0 && v[0] == '/')
                cdn_counter_add(s->m_purged, invalidate(f->owner, v, vl));
        }
    }
    f->vary_len = edge_vary_normalize(f->hdrs, n, f->vary, sizeof(f->vary));
    f->store = f->collapsible && f->vary_len >= 0 && edge_storable(&f->rq, &rs, &s->conf.fresh) == EDGE_STORE_OK &&
               (f->clen == UINT64_MAX || f->clen <= s->conf.max_object) && (!f->mirror || f->feed_store);
    if (!f->store)
        fetch_unlist(f);
    char detail[96];
    const char *fwd = f->stale ? "fwd=stale" : "fwd=miss";
    snprintf(detail, sizeof(detail), "%s; fwd-status=%d%s%s", fwd, status, f->store ? "; stored" : "",
             f->owner && f->owner->range_pass ? "; detail=range-pass" : "");
    /* a whole fill that turns out larger than range_fetch_above and will not be stored: its Range
     * requests go again as ranges (dispatch knows the size now) instead of waiting for the body up
     * to their offset; with no one else listening the fill is dropped */
    int range_again = full > s->conf.range_fetch_above && s->conf.range_fetch_above > 0 && status == 200 && !f->store;
    /* waiters that may not share this response go to the origin on their own */
    h2o_linklist_t *node = f->waiters.next;
    while (node != &f->waiters) {
        struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, node);
        node = node->next;
        if (range_again && c->method == EDGE_M_GET && !c->range_pass &&
            edge_hdr_find(c->hdrs, c->nhdrs, "range", 0) >= 0) {
            waiter_detach(c);
            c->range_pass = 1;
            fetch_start(c, M_PASS, 0, NULL, 0); /* as dispatch does for a known-large object */
            continue;
        }
        int share = c == f->owner;
        if (!share && f->store) {
            char k1[1024];
            int l1 = f->vary_len > 0 ? edge_vary_key(f->vary, (size_t)f->vary_len, c->hdrs, c->nhdrs, k1, sizeof(k1)) : 0;
            char k0[1024];
            int l0 = f->vary_len > 0 && f->owner ? edge_vary_key(f->vary, (size_t)f->vary_len, f->owner->hdrs, f->owner->nhdrs, k0, sizeof(k0)) : 0;
            share = f->vary_len == 0 || (f->owner && l1 >= 0 && l1 == l0 && memcmp(k0, k1, (size_t)l0) == 0);
            /* the owner left: compare with the key the fetch is stored under */
            if (f->vary_len > 0 && f->owner == NULL && l1 >= 0)
                share = f->key_len == f->pkey_len + 1 + (size_t)l1 && memcmp(f->key + f->pkey_len + 1, k1, (size_t)l1) == 0;
        }
        if (!share) {
            waiter_detach(c);
            dispatch(c, 1);
            continue;
        }
        start_fetch_response(c, f, detail);
    }
    /* the object is stored under its variant key: fix the key if Vary appeared now */
    if (f->store && f->vary_len > 0 && f->key_len == f->pkey_len && f->owner) {
        char vk[1024];
        int vl = edge_vary_key(f->vary, (size_t)f->vary_len, f->owner->hdrs, f->owner->nhdrs, vk, sizeof(vk));
        char *nk = vl >= 0 ? malloc(f->pkey_len + 1 + (size_t)vl + 1) : NULL;
        if (nk == NULL) {
            f->store = 0;
        } else {
            memcpy(nk, f->key, f->pkey_len);
            nk[f->pkey_len] = '\n';
            memcpy(nk + f->pkey_len + 1, vk, (size_t)vl);
            fetch_unlist(f); /* listed under the primary key; the variant is known now */
            free(f->key);
            f->key = nk;
            f->key_len = f->pkey_len + 1 + (size_t)vl;
        }
    } else if (f->store && f->vary_len > 0 && f->key_len == f->pkey_len) {
        f->store = 0;
    }
    return 0;
}

static int fetch_body(cdn_httpc_req_t *hr, const void *buf, size_t len, void *data)
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
    fetch_grew(f);
    return 0;
}

/* The callbacks hold a reference and mark the fetch busy, so that a waiter leaving during them
 * neither cancels the transfer under curl nor frees the fetch; an unwanted transfer is aborted by
 * the return value instead. */
static int unwanted(struct fetch *f)
{
    return (!f->collapsible || (f->head_done && !f->store)) && h2o_linklist_is_empty(&f->waiters);
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
    if (!f->head_done && unsupported_coding(h, n)) {
        f->bad_head = "upstream response has a transfer coding other than chunked";
        return 1;
    }
    /* a parent that answers 5xx (or 508: it sees a loop) is passed over while there is another
     * upstream to ask: abort this response, on_fetch_done sends the fetch on */
    if (f->parent >= 0 && status >= 500 && !f->head_done && has_next_upstream(f)) {
        f->parent_status = status;
        return 1;
    }
    f->refs++;
    f->in_cb = 1;
    int r = fetch_head(hr, status, version, h, n, f) || unwanted(f);
    if (f->feed != NULL && !f->mirror && f->head_done &&
        edge_feed_head(f->feed, status, h, n, f->store, f->key, f->key_len) < 0)
        edge_feed_unlist(f->feed); /* cannot share it: later requests fetch on their own */
    f->in_cb = 0;
    fetch_release(f);
    return r;
}

/* An interim response (103 Early Hints...) from upstream: forwarded to each client of this fetch
 * whose response has not started (RFC 9110 15.2); never stored, never merged into the final one.
 * A mirror gets it from the feed (hr NULL). */
static void info_to(struct creq *c, int status, const struct cdn_httpc_header *h, size_t n)
{
    struct edge_hdr eh[64];
    size_t en = n < 64 ? n : 64;
    for (size_t i = 0; i < en; i++)
        eh[i] = (struct edge_hdr){h[i].name, h[i].name_len, h[i].value, h[i].value_len};
    if (!c->started && !c->finished &&
        edge_interim_send(c->req, status, eh, en, c->w->srv->via, &c->w->date, &c->interim_gate))
        cdn_counter_inc(c->w->srv->m_interim);
}

static void on_fetch_info(cdn_httpc_req_t *hr, int status, const struct cdn_httpc_header *h, size_t n, void *data)
{
    struct fetch *f = data;
    for (h2o_linklist_t *node = f->waiters.next; node != &f->waiters; node = node->next)
        info_to(H2O_STRUCT_FROM_MEMBER(struct creq, link, node), status, h, n);
    /* and to the clients waiting on other workers (mirror_sync passes it on there) */
    if (f->feed != NULL && !f->mirror)
        edge_feed_info(f->feed, status, h, n);
    (void)hr;
}

static int on_fetch_body(cdn_httpc_req_t *hr, const void *buf, size_t len, void *data)
{
    struct fetch *f = data;
    f->refs++;
    f->in_cb = 1;
    int r = fetch_body(hr, buf, len, f) || unwanted(f);
    f->in_cb = 0;
    fetch_release(f);
    return r;
}

static void store_fetch(struct fetch *f)
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
    const struct edge_hdr *hs = storable_fields(&pool, &rs.cc, f->hdrs, &nh);
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
    edge_store_put(s->store, o);
    cdn_counter_inc(s->m_stored);
    edge_obj_release(o);
}

static void on_fetch_done(cdn_httpc_req_t *hr, const char *errstr, void *data)
{
    struct fetch *f = data;
    struct edge_server *s = f->w->srv;
    f->hr = NULL;
    slot_put(f);
    if (f->bad_head != NULL)
        errstr = f->bad_head;
    /* a parent that cannot be reached: mark it down and ask the next one (or the origin). A
     * request with a body can be resent only while its client request (the body) is there. */
    if (errstr != NULL && !f->head_done && f->parent >= 0 && (f->parent_status || connect_failed(hr, errstr))) {
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
        if ((f->collapsible || f->owner != NULL) &&
            fetch_send(f, f->collapsible ? NULL : f->owner->req->entity.base,
                       f->collapsible ? 0 : f->owner->req->entity.len) == 0)
            return; /* the transfer's reference goes on with the new request */
        if (f->vh->parent_only)
            errstr = "no parent is up (parent_only)";
    }
    f->done = 1;
    f->in_cb = 1; /* done: nothing left to cancel */
    /* store before unlisting: a miss that comes in between would find neither the fetch nor the
     * object and go upstream a second time */
    if (errstr == NULL && f->store && !f->mirror)
        store_fetch(f);
    fetch_unlist(f);
    if (f->feed != NULL && !f->mirror)
        edge_feed_done(f->feed, errstr, errstr != NULL && !f->head_done);
    mirror_leave(f);
    if (errstr != NULL && !f->head_done) {
        /* no response at all: stale-if-error, else 502/504 (503 when no origin slot came free)
         * with the reason */
        if (!f->mirror && !f->busy)
            cdn_counter_inc(s->m_origin_err);
        int timeout = strstr(errstr, "imeout") != NULL || strstr(errstr, "timed out") != NULL;
        char body[256];
        if (f->busy)
            snprintf(body, sizeof(body), "%s", errstr);
        else
            snprintf(body, sizeof(body), "%s: %s",
                     f->bad_head ? "bad origin response" : timeout ? "origin timeout" : "origin unreachable", errstr);
        while (!h2o_linklist_is_empty(&f->waiters)) {
            struct creq *c = H2O_STRUCT_FROM_MEMBER(struct creq, link, f->waiters.next);
            waiter_detach(c);
            if (f->stale && f->stale_if_error) {
                count_req(s, M_STALE, T_NONE);
                serve_obj(c, f->stale, "fwd=stale; detail=stale-if-error",
                          edge_current_age(f->stale->fresh.initial_age, f->stale->fresh.response_time, now_s()));
            } else if (f->busy) {
                send_error_detail(c, 503, "Service Unavailable", "fwd=miss; detail=origin-busy", body);
            } else {
                send_error(c, timeout ? 504 : 502, timeout ? "Gateway Timeout" : "Bad Gateway", body);
            }
        }
        fetch_release(f);
        return;
    }
    if (errstr != NULL) {
        f->failed = 1;
        snprintf(f->err, sizeof(f->err), "%s", errstr);
    }
    waiters_pump(f);
    fetch_release(f); /* the transfer's reference */
}

/* The request sent upstream: every end-to-end header of the client, Host kept, plus
 * X-Forwarded-For and Via. A cache fill drops the client's validators and Range (we want the whole
 * object); a revalidation adds ours. */
static const char **upstream_headers(struct creq *c, int fill, struct edge_obj *stale)
{
    h2o_req_t *req = c->req;
    size_t max = c->nhdrs + 12; /* Host, CDN-Loop, XFF, Via, X-Request-Id, Accept, Expect, 2 validators, NULL */
    const char **out = h2o_mem_alloc_pool(&req->pool, max * sizeof(*out));
    size_t n = 0;
    char peer[64] = "";
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl > 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof(peer));
    else if (sl > 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof(peer));
    int have_xff = 0, have_accept = 0, have_via = 0, have_loop = 0;
    /* [0]: the Host a parent needs to pick the same vhost and key (an origin gets its URL's) */
    char *line = h2o_mem_alloc_pool(&req->pool, req->authority.len + 8);
    snprintf(line, req->authority.len + 8, "Host: %.*s", (int)req->authority.len, req->authority.base);
    out[n++] = line;
    for (size_t i = 0; i < c->nhdrs; i++) {
        const struct edge_hdr *h = &c->hdrs[i];
        if (edge_hdr_is_hop(c->hdrs, c->nhdrs, h->name, h->name_len) || name_is(h, "content-length") ||
            name_is(h, "expect"))
            continue;
        if (name_is(h, "x-request-id") && c->own_request_id)
            continue; /* the client's was unusable: ours replaces it */
        if (fill && (name_is(h, "if-none-match") || name_is(h, "if-modified-since") || name_is(h, "range") ||
                     name_is(h, "if-range") || name_is(h, "if-match") || name_is(h, "if-unmodified-since")))
            continue;
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
        out[n++] = h2o_mem_alloc_pool(&req->pool, 1);
        size_t l = h->name_len + h->value_len + strlen(extra) + 8;
        char *line = h2o_mem_alloc_pool(&req->pool, l);
        if (*extra)
            snprintf(line, l, "%.*s: %.*s, %s", (int)h->name_len, h->name, (int)h->value_len, h->value, extra);
        else if (h->value_len == 0)
            snprintf(line, l, "%.*s;", (int)h->name_len, h->name); /* curl: "Name;" sends it empty */
        else
            snprintf(line, l, "%.*s: %.*s", (int)h->name_len, h->name, (int)h->value_len, h->value);
        out[n - 1] = line;
    }
    if (!have_loop) {
        line = h2o_mem_alloc_pool(&req->pool, 128);
        snprintf(line, 128, "CDN-Loop: %s", c->w->srv->cache_name);
        out[n++] = line;
    }
    if (!have_xff && peer[0]) {
        line = h2o_mem_alloc_pool(&req->pool, 96);
        snprintf(line, 96, "X-Forwarded-For: %s", peer);
        out[n++] = line;
    }
    if (!have_via) {
        line = h2o_mem_alloc_pool(&req->pool, 160);
        snprintf(line, 160, "Via: %s", c->w->srv->via);
        out[n++] = line;
    }
    if (c->own_request_id) {
        line = h2o_mem_alloc_pool(&req->pool, 64);
        snprintf(line, 64, "X-Request-Id: %s", c->request_id);
        out[n++] = line;
    }
    if (!have_accept)
        out[n++] = "Accept:"; /* no curl default */
    out[n++] = "Expect:";
    if (stale != NULL) {
        const struct edge_hdr *et = edge_obj_hdr(stale, "etag"), *lm = edge_obj_hdr(stale, "last-modified");
        if (et) {
            size_t l = et->value_len + 32;
            line = h2o_mem_alloc_pool(&req->pool, l);
            snprintf(line, l, "If-None-Match: %.*s", (int)et->value_len, et->value);
            out[n++] = line;
        }
        if (lm) {
            size_t l = lm->value_len + 32;
            line = h2o_mem_alloc_pool(&req->pool, l);
            snprintf(line, l, "If-Modified-Since: %.*s", (int)lm->value_len, lm->value);
            out[n++] = line;
        }
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

/* A failure that says the upstream never got the request: safe to ask the next one. */
static int connect_failed(cdn_httpc_req_t *hr, const char *errstr)
{
    if (strcmp(errstr, "connection refused") == 0 || strcmp(errstr, "could not connect") == 0)
        return 1;
    const struct cdn_httpc_info *in = hr ? cdn_httpc_info(hr) : NULL;
    return strcmp(errstr, "timed out") == 0 && in != NULL && in->connect_s == 0 && in->ttfb_s == 0;
}

static const struct cdn_httpc_cbs fetch_cbs;

/* Sends the fetch to its next upstream: the key's first parent that is up and not yet tried,
 * else the origin (unless parent_only). 0 when started, -1 when there is nowhere to go. */
static int fetch_send(struct fetch *f, const void *body, size_t body_len)
{
    struct edge_server *s = f->w->srv;
    const struct edge_vhost *vh = f->vh;
    int pi = vh->nparents ? edge_parent_pick(vh->parents, vh->nparents, f->id, cdn_now_ms(), f->tried) : -1;
    if (pi < 0 && vh->nparents > 0 && vh->parent_only)
        return -1;
    if (pi < 0 && !f->slot && vh->max_fetches > 0 && slot_get(f) < 0) {
        /* every slot of this origin is taken: wait in the worker's FIFO (the transfer's
         * reference goes with the fetch); queue_pump sends it or fails it with 503 */
        f->queued = 1;
        f->q_since = cdn_now_ms();
        f->q_deadline = f->q_since + s->conf.connect_timeout_ms;
        h2o_linklist_insert(&f->w->fetch_queue, &f->qlink);
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
        count_req(s, f->result, pi >= 0 ? T_PARENT : T_ORIGIN);
        f->result = -1;
    }
    size_t ul = strlen(base) + strlen(f->path) + 1;
    char *url = malloc(ul);
    if (url == NULL)
        return -1;
    snprintf(url, ul, "%s%s", base, f->path);
    struct cdn_httpc_request hreq = {
        .method = f->method,
        .url = url,
        .headers = (const char *const *)(pi >= 0 ? f->uphdrs : f->uphdrs + 1),
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
    if (!f->done)
        f->hr = hr;
    if (hr == NULL && !f->done) {
        slot_put(f);
        r = -1;
    }
    fetch_release(f);
    return r;
}

/* --- max_fetches: origin slots (process-wide per vhost) and the worker's FIFO of fetches that
 * wait for one. A slot is held from the origin request's start to its end (done or cancelled);
 * a queued fetch waits at most the connect timeout, then fails with 503. Slots freed by this
 * worker are handed on at once; the poll timer notices slots freed by other workers. */
static int slot_get(struct fetch *f)
{
    struct edge_vhost *vh = (struct edge_vhost *)f->vh;
    int n = __atomic_add_fetch(&vh->origin_inflight, 1, __ATOMIC_ACQ_REL);
    if ((unsigned)n > vh->max_fetches) {
        __atomic_sub_fetch(&vh->origin_inflight, 1, __ATOMIC_ACQ_REL);
        return -1;
    }
    f->slot = 1;
    return 0;
}

static void queue_unlink(struct fetch *f)
{
    if (f->queued) {
        h2o_linklist_unlink(&f->qlink);
        f->queued = 0;
    }
}

static void queue_pump(struct edge_worker *w);

static void slot_put(struct fetch *f)
{
    if (!f->slot)
        return;
    f->slot = 0;
    __atomic_sub_fetch(&((struct edge_vhost *)f->vh)->origin_inflight, 1, __ATOMIC_ACQ_REL);
    queue_pump(f->w);
}

/* Sends queued fetches in order while slots are free; fails those past their deadline and drops
 * those nobody waits for any more. */
static void queue_pump(struct edge_worker *w)
{
    if (w->pumping++)
        return; /* a send below may finish a fetch and come back here: the outer loop goes on */
    uint64_t now = cdn_now_ms();
    h2o_linklist_t *node = w->fetch_queue.next;
    while (node != &w->fetch_queue) {
        struct fetch *f = H2O_STRUCT_FROM_MEMBER(struct fetch, qlink, node);
        node = node->next;
        struct edge_server *s = w->srv;
        if (!f->collapsible && f->owner == NULL) {
            queue_unlink(f); /* the client left: nothing to send */
            on_fetch_done(NULL, "cancelled", f);
            continue;
        }
        if (now >= f->q_deadline) {
            queue_unlink(f);
            f->busy = 1;
            cdn_counter_inc(s->m_busy);
            char why[160];
            snprintf(why, sizeof(why), "origin busy: all %u fetch slots (max_fetches) in use for %llu ms",
                     f->vh->max_fetches, (unsigned long long)(now - f->q_since));
            on_fetch_done(NULL, why, f);
            continue;
        }
        if (slot_get(f) < 0)
            continue; /* another vhost's fetch further on may still have a slot */
        queue_unlink(f);
        node = w->fetch_queue.next; /* the send may change the queue: start over */
        if (fetch_send(f, f->collapsible ? NULL : f->owner->req->entity.base,
                       f->collapsible ? 0 : f->owner->req->entity.len) < 0 && !f->done)
            on_fetch_done(NULL, "cannot start the upstream request", f);
    }
    w->pumping = 0;
    if (!h2o_linklist_is_empty(&w->fetch_queue) && !cdn_timer_active(w->queue_timer))
        cdn_timer_start(w->queue_timer, QUEUE_POLL_MS);
}

static void on_queue_timer(cdn_timer_t *t, void *data)
{
    queue_pump(data);
}

static const struct cdn_httpc_cbs fetch_cbs = {on_fetch_head, on_fetch_body, on_fetch_done, on_fetch_info};

/* Starts a fetch with c as its first waiter (and owner); result (M_MISS / M_PASS) is counted
 * under the tier that gets asked. */
static void fetch_start(struct creq *c, int result, int collapsible, struct edge_obj *stale, int stale_if_error)
{
    struct edge_worker *w = c->w;
    struct edge_server *s = w->srv;
    /* list the feed first: if another worker listed this key since dispatch looked, follow its
     * fetch instead of making a second one */
    struct edge_feed *feed = NULL;
    if (collapsible && (feed = edge_feed_new(edge_key_id(c->key, c->key_len), c->key, c->key_len,
                                             stale != NULL)) != NULL && edge_feed_list(feed) < 0) {
        edge_feed_release(feed);
        feed = NULL;
        if (mirror_join(c, stale, stale_if_error))
            return;
    }
    struct fetch *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        if (feed != NULL) {
            edge_feed_unlist(feed);
            edge_feed_release(feed);
        }
        send_error(c, 503, "Service Unavailable", "out of memory");
        return;
    }
    f->magic = FETCH_MAGIC;
    f->w = w;
    f->refs = 1; /* the transfer */
    f->collapsible = collapsible;
    f->key = malloc(c->key_len + 1);
    memcpy(f->key, c->key, c->key_len);
    f->key[c->key_len] = '\0';
    f->key_len = c->key_len;
    f->pkey_len = c->pkey_len;
    f->id = edge_key_id(c->key, c->key_len);
    h2o_linklist_init_anchor(&f->waiters);
    f->stale = stale ? edge_obj_ref(stale) : NULL;
    f->stale_if_error = stale_if_error;
    f->req_time = now_s();
    f->rq = c->rq;
    f->owner = c;
    f->t0 = mono();
    f->vh = c->vh;
    f->parent = -1;
    f->result = result;
    f->path = strndup(c->req->path.base, c->req->path.len);
    f->method = collapsible ? strdup("GET") : strndup(c->req->method.base, c->req->method.len);
    f->uphdrs = (char **)upstream_headers(c, collapsible, stale);
    (void)s;
    /* join before starting: httpc may call back synchronously */
    f->refs++;
    c->f = f;
    h2o_linklist_insert(&f->waiters, &c->link);
    if (collapsible && edge_idmap_put(&w->fetches, f->id, (uint64_t)(uintptr_t)f) == 0)
        f->in_table = 1;
    f->feed = feed; /* other workers may join through it (only one owner per key: first come) */
    f->refs++;
    if (f->path == NULL || f->method == NULL || f->uphdrs == NULL)
        on_fetch_done(NULL, "out of memory", f);
    else if (fetch_send(f, collapsible ? NULL : c->req->entity.base, collapsible ? 0 : c->req->entity.len) < 0 &&
             !f->done)
        on_fetch_done(NULL, f->vh->parent_only ? "no parent is up (parent_only)" : "cannot start the upstream request", f);
    fetch_release(f);
}

/* --- mirrors: this worker's view of a fetch another worker owns (feed.h) --- */
static void mirror_sync(struct fetch *f)
{
    if (f->sub == NULL || f->done)
        return;
    struct edge_feed *fd = f->sub->feed;
    char err[sizeof(fd->err)], *fk = NULL;
    size_t fkl = 0;
    int ok = 1;
    f->refs++;
    pthread_mutex_lock(&fd->mu);
    fd->refs++; /* the headers stay valid while we use them */
    int head = fd->head_done && !f->head_done, status = fd->status;
    const struct cdn_httpc_header *hh = fd->hdrs;
    size_t nh = fd->nhdrs;
    f->feed_store = fd->store;
    if (head && fd->final_key != NULL && (fk = malloc(fd->final_key_len + 1)) != NULL) {
        memcpy(fk, fd->final_key, fd->final_key_len + 1);
        fkl = fd->final_key_len;
    }
    if (fd->nchunks > f->cap_chunks) {
        char **a = realloc(f->chunks, fd->nchunks * sizeof(*a));
        if (a != NULL) {
            f->chunks = a;
            f->cap_chunks = fd->nchunks;
        } else {
            ok = 0;
        }
    }
    size_t nch = f->nchunks;
    uint64_t total = f->total;
    if (ok) {
        for (size_t i = f->nchunks; i < fd->nchunks; i++)
            f->chunks[i] = fd->chunks[i];
        nch = fd->nchunks;
        total = fd->total;
    }
    int done = fd->done, failed = fd->failed;
    memcpy(err, fd->err, sizeof(err));
    /* interim responses published so far: they never change, and our fd reference keeps them */
    struct edge_feed_info infos[EDGE_FEED_MAX_INFOS];
    int ninfos = fd->ninfos;
    memcpy(infos, fd->infos, sizeof(infos));
    pthread_mutex_unlock(&fd->mu);

    for (; f->infos_seen < ninfos; f->infos_seen++)
        if (!f->head_done)
            on_fetch_info(NULL, infos[f->infos_seen].status, infos[f->infos_seen].hdrs, infos[f->infos_seen].nhdrs, f);
    int r = !ok;
    f->in_cb = 1;
    if (!r && head) {
        if (fk != NULL) {
            free(f->key);
            f->key = fk;
            f->key_len = fkl;
            fk = NULL;
        }
        r = fetch_head(NULL, status, 11, hh, nh, f) || unwanted(f);
    }
    free(fk);
    if (!r && total > f->total) {
        f->nchunks = nch;
        f->total = total;
        f->last_len = (size_t)(total - (uint64_t)(nch - 1) * CHUNK);
        fetch_grew(f);
        r = unwanted(f);
    }
    f->in_cb = 0;
    if (r)
        on_fetch_done(NULL, ok ? "aborted" : "out of memory", f);
    else if (done)
        on_fetch_done(NULL, failed ? err : NULL, f);
    fetch_release(f);
    edge_feed_release(fd);
}

static void on_feed_message(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        struct edge_feed_sub *sub = edge_feed_take(m);
        if (sub != NULL)
            mirror_sync(sub->mirror);
    }
}

/* Joins another worker's fetch for c's key through a mirror fetch on this worker; 1 if joined. */
static int mirror_join(struct creq *c, struct edge_obj *stale, int stale_if_error)
{
    struct edge_worker *w = c->w;
    uint64_t id = edge_key_id(c->key, c->key_len);
    struct fetch *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->key = malloc(c->key_len + 1)) == NULL) {
        free(f);
        return 0;
    }
    if ((f->sub = edge_feed_join(id, c->key, c->key_len, stale != NULL, &w->recv, f)) == NULL) {
        free(f->key);
        free(f);
        return 0;
    }
    f->held = f->sub->feed;
    pthread_mutex_lock(&f->held->mu);
    f->held->refs++;
    pthread_mutex_unlock(&f->held->mu);
    f->magic = FETCH_MAGIC;
    f->w = w;
    f->refs = 1; /* the subscription */
    f->collapsible = 1;
    f->mirror = 1;
    memcpy(f->key, c->key, c->key_len);
    f->key[c->key_len] = '\0';
    f->key_len = c->key_len;
    f->pkey_len = c->pkey_len;
    f->id = id;
    h2o_linklist_init_anchor(&f->waiters);
    f->stale = stale ? edge_obj_ref(stale) : NULL;
    f->stale_if_error = stale_if_error;
    f->req_time = now_s();
    f->rq = c->rq;
    f->t0 = mono();
    f->vh = c->vh;
    f->parent = -1;
    f->result = -1;
    if (edge_idmap_put(&w->fetches, f->id, (uint64_t)(uintptr_t)f) == 0)
        f->in_table = 1;
    f->refs++;
    c->f = f;
    h2o_linklist_insert(&f->waiters, &c->link);
    cdn_counter_inc(w->srv->m_collapsed);
    cdn_counter_inc(w->srv->m_mirror);
    mirror_sync(f); /* what is there already */
    return 1;
}

/* --- the tier walk --- */
/* A client that joins a fetch before its head gets the interim responses that came already (the
 * feed keeps them: the owner's, or the one a mirror follows). */
static void replay_infos(struct creq *c, struct fetch *f)
{
    struct edge_feed *fd = f->feed != NULL ? f->feed : f->sub != NULL ? f->sub->feed : NULL;
    if (fd == NULL || f->head_done)
        return;
    pthread_mutex_lock(&fd->mu);
    fd->refs++;
    struct edge_feed_info infos[EDGE_FEED_MAX_INFOS];
    int n = fd->ninfos;
    memcpy(infos, fd->infos, sizeof(infos));
    pthread_mutex_unlock(&fd->mu);
    for (int i = 0; i < n && (!f->mirror || i < f->infos_seen); i++)
        info_to(c, infos[i].status, infos[i].hdrs, infos[i].nhdrs);
    edge_feed_release(fd);
}

static void dispatch(struct creq *c, int no_collapse)
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
            count_req(s, v.use == EDGE_USE_FRESH ? M_HIT : M_STALE, tier == EDGE_TIER_DISK ? T_ROCKSDB : T_RAM);
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
                    waiter_detach(c);
                }
            }
            serve_obj(c, o, d, v.age);
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
                replay_infos(c, f);
                edge_obj_release(o);
                return;
            }
        }
        if (!mirror_join(c, o, v.stale_if_error))
            fetch_start(c, M_MISS, 1, o, v.stale_if_error);
        edge_obj_release(o);
        return;
    }
    if (c->rq.cc.flags & EDGE_CC_ONLY_IF_CACHED) {
        send_error(c, 504, "Gateway Timeout", "not in cache (only-if-cached)");
        return;
    }
    /* a Range miss on an object known to be larger than range_fetch_above: ask upstream for the
     * range only (not collapsed, not stored) instead of fetching the whole object */
    if (s->conf.range_fetch_above > 0 && c->method == EDGE_M_GET &&
        edge_hdr_find(c->hdrs, c->nhdrs, "range", 0) >= 0 &&
        hint_get(edge_key_id(c->pkey, c->pkey_len)) > s->conf.range_fetch_above) {
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
                start_fetch_response(c, f, "fwd=miss; detail=collapsed");
            else
                replay_infos(c, f);
            return;
        }
    }
    if (mirror_join(c, NULL, 0))
        return;
    /* a request with Authorization fills only if the response allows it (checked at head) */
    fetch_start(c, M_MISS, 1, NULL, 0);
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
    waiter_detach(c);
    edge_obj_release(c->obj);
    c->obj = NULL;
    double dur = mono() - c->t0;
    cdn_histogram_observe(c->w->srv->m_latency, dur);
    if (c->w->srv->alog != NULL) {
        h2o_req_t *req = c->req;
        char peer[64] = "", *m = NULL, *t = NULL, *host = NULL;
        struct sockaddr_storage ss;
        socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
        if (sl > 0 && ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof(peer));
        m = h2o_mem_alloc_pool(&req->pool, req->method.len + 1);
        memcpy(m, req->method.base, req->method.len);
        m[req->method.len] = '\0';
        t = h2o_mem_alloc_pool(&req->pool, req->path.len + 1);
        memcpy(t, req->path.base, req->path.len);
        t[req->path.len] = '\0';
        host = h2o_mem_alloc_pool(&req->pool, req->authority.len + 1);
        memcpy(host, req->authority.base, req->authority.len);
        host[req->authority.len] = '\0';
        struct cdn_alog_entry e = {
            .start = c->start, .remote_addr = peer, .host = host, .method = m, .target = t,
            .protocol = req->version >= 0x200 ? "HTTP/2" : req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1",
            .status = req->res.status, .bytes_sent = req->bytes_sent, .duration_us = (uint64_t)(dur * 1e6),
            .cache_status = c->cache_status, .upstream = c->upstream ? c->upstream : "",
            .request_id = c->request_id,
        };
        cdn_alog_write(c->w->srv->alog, &e);
    }
    c->magic = 0;
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
    return 0;
}

/* Purges the URL of this request and, for a Location / Content-Location on the same host, that
 * URL too (RFC 9111 4.4). */
static size_t invalidate(struct creq *c, const char *target, size_t tlen)
{
    struct edge_server *s = c->w->srv;
    char pk[EDGE_KEY_MAX];
    const char *scheme = c->req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http";
    int pl = edge_key_primary(&s->conf.key, scheme, c->req->authority.base, c->req->authority.len, target, tlen, pk,
                              sizeof(pk));
    return pl < 0 ? 0 : edge_store_purge_url(s->store, pk, (size_t)pl);
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

/* RFC 8586: -1 if CDN-Loop names this edge already; sets c->internal when it names another of
 * ours (a child edge: it gets the CDN-targeted fields too). Names must differ along a chain. */
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
            if (tl > 9 && memcmp(b, "cdn-edge-", 9) == 0)
                c->internal = 1;
            while (p < end && *p != ',')
                p++; /* parameters */
        }
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
    c->super.proceed = on_generator_proceed;
    c->super.stop = on_generator_stop;
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
    if (check_authority(c) < 0) {
        cdn_counter_inc(s->m_bad_host);
        send_error_detail(c, 400, "Bad Request", "detail=bad-host",
                          "invalid or missing Host: it must be host[:port] (RFC 9110 7.2, RFC 3986 3.2.2)");
        return 0;
    }
    if (check_loop(c) < 0) {
        cdn_counter_inc(s->m_loop);
        send_error_detail(c, 508, "Loop Detected", "detail=loop",
                          "loop detected: this request already passed through this edge (CDN-Loop)");
        return 0;
    }
    /* a child edge's health check of us (health.h): answered here, whatever the Host; a draining
     * edge says 503 so that its children move to another parent */
    if (c->internal && (c->method == EDGE_M_GET || c->method == EDGE_M_HEAD) &&
        h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/healthz"))) {
        int drain = __atomic_load_n(&s->draining, __ATOMIC_RELAXED);
        c->finished = 1;
        req->res.status = drain ? 503 : 200;
        req->res.reason = drain ? "Service Unavailable" : "OK";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
        if (drain)
            h2o_send_inline(req, H2O_STRLIT("draining\n"));
        else
            h2o_send_inline(req, H2O_STRLIT("ok\n"));
        return 0;
    }
    const struct edge_vhosts *vs = __atomic_load_n(&s->conf.vhosts, __ATOMIC_ACQUIRE);
    if ((c->vh = edge_vhost_match(vs, req->authority.base, req->authority.len)) == NULL) {
        char body[EDGE_HOST_MAX + 64];
        snprintf(body, sizeof(body), "no virtual host for '%.*s' on this edge",
                 (int)(req->authority.len < EDGE_HOST_MAX ? req->authority.len : EDGE_HOST_MAX), req->authority.base);
        send_error_detail(c, 421, "Misdirected Request", "detail=no-vhost", body);
        return 0;
    }
    if (build_key(c) < 0) {
        send_error(c, 400, "Bad Request", "request target not cacheable");
        return 0;
    }
    if (req->method.len == 5 && memcmp(req->method.base, "PURGE", 5) == 0) {
        size_t n = edge_store_purge_url(s->store, c->pkey, c->pkey_len);
        cdn_counter_add(s->m_purged, n);
        count_req(s, M_PURGE, T_NONE);
        char body[64];
        int l = snprintf(body, sizeof(body), "purged %zu\n", n);
        req->res.status = n ? 200 : 404;
        req->res.reason = n ? "OK" : "Not Found";
        char *b = h2o_mem_alloc_pool(&req->pool, (size_t)l);
        memcpy(b, body, (size_t)l);
        h2o_send_inline(req, b, (size_t)l);
        return 0;
    }
    dispatch(c, 0);
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
    h2o_linklist_init_anchor(&w->fetch_queue);
    if ((w->queue_timer = cdn_timer_new(w->ctx.loop, on_queue_timer, w)) == NULL) {
        snprintf(err, errlen, "cannot create a timer");
        return -1;
    }
    h2o_multithread_register_receiver(w->ctx.queue, &w->recv, on_feed_message);
    if (edge_idmap_init(&w->fetches, 256) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct cdn_httpc_opts o = {
        .connect_timeout_ms = srv->conf.connect_timeout_ms,
        .timeout_ms = srv->conf.timeout_ms,
        .max_body = 1ULL << 30,
    };
    w->httpc = cdn_httpc_new(w->ctx.loop, &o, err, errlen);
    return w->httpc ? 0 : -1;
}

void edge_worker_dispose(struct edge_worker *w)
{
    if (w->queue_timer != NULL)
        cdn_timer_free(w->queue_timer);
    w->queue_timer = NULL;
    edge_date_slot_dispose(&w->date);
}
