/* origin/shop/idem.c - Idempotency-Key on shop-app's POSTs (IETF httpapi draft "The
 * Idempotency-Key HTTP Header Field"): a client that retries a POST with the key of the first
 * attempt gets the first attempt's answer, and the first attempt is applied once.
 *
 * Rules:
 * - A key is scoped to its client: the bearer token (Authorization: Bearer, the API's) and the
 *   sid cookie, whichever the request has. A POST with a key but neither is served as if it had
 *   no key: there is no client to keep its answer for, and handing it to whoever sends the same
 *   key would leak it (a first visit's answer sets the new sid cookie).
 * - An entry is named by SHA-256(scope, key) and remembers SHA-256(method, path with query,
 *   body) of its first request: the same key with another fingerprint is 422, never a replay.
 *   Neither the key nor the scope (a session id, a token) is kept in memory in clear.
 * - On arrival the first request with a key claims it (an entry in progress, held by the
 *   request's claim in its pool, listed on its worker). Another request with the key while it is
 *   in progress (a parked one: service delay) is 409. The answer, when it goes out through
 *   app_send, completes the entry: status, Content-Type, Cache-Control, Set-Cookie, Allow and the
 *   body. A 5xx or a body over IDEM_MAX_BODY is not remembered, and a request that ends without
 *   an answer (the client went away) releases its claim: a retry is then served again.
 * - Bounds: at most max_entries entries and max_bytes bytes (LRU; a replay counts as a use),
 *   each kept ttl_ms after it was made. Entries in progress are never evicted; when nothing can
 *   be evicted the request is 503 (Retry-After: 1).
 * - The store is shared by every worker under its mutex; holds are a lookup, an insert or a copy.
 *   A claim belongs to one request on one worker (its loop's thread only). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "origin/shop/app.h"

#define IDEM_BUCKETS 16384   /* a power of two */
#define IDEM_MAX_KEY 255     /* characters of a key */
#define IDEM_MAX_HDRS 8      /* headers remembered with an answer */
#define IDEM_MAX_BODY (64u << 10)

struct idem_entry {
    uint8_t id[32];          /* SHA-256 of scope and key */
    uint8_t fp[32];          /* SHA-256 of method, path and body of the first request */
    int done;                /* 0: in progress (claimed), 1: answered */
    uint64_t created;
    int status;
    const char *reason;      /* a string literal (every reason the app sends is one) */
    unsigned nh;
    struct {
        const h2o_token_t *tok;
        size_t off, len;
    } h[IDEM_MAX_HDRS];
    char *data;              /* the header values, then the body */
    size_t body_off, body_len, bytes;
    struct idem_entry *prev, *next; /* LRU: head the most recent */
    struct idem_entry *hnext;
};

struct app_idem {
    pthread_mutex_t mu;
    size_t max_entries, max_bytes, n, bytes;
    uint64_t ttl_ms;
    struct idem_entry *head, *tail;
    struct idem_entry *buckets[IDEM_BUCKETS];
};

/* A claim: in the claiming request's pool, listed on its worker until answered. */
struct idem_claim {
    h2o_linklist_t link;
    h2o_req_t *req;
    struct idem_entry *e;    /* NULL once answered or released */
};

static const h2o_token_t *const kept_headers[] = {H2O_TOKEN_CONTENT_TYPE, H2O_TOKEN_CACHE_CONTROL, H2O_TOKEN_SET_COOKIE,
                                                  H2O_TOKEN_ALLOW, H2O_TOKEN_LOCATION};

static cdn_series_t *s_result[6];
enum { R_FIRST, R_REPLAYED, R_CONFLICT, R_MISMATCH, R_INVALID, R_UNSCOPED };
static const char *const result_names[] = {"first", "replayed", "conflict", "mismatch", "invalid", "unscoped"};

struct app_idem *app_idem_new(size_t max_entries, uint64_t ttl_ms, size_t max_bytes)
{
    struct app_idem *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->max_entries = max_entries;
    s->max_bytes = max_bytes;
    s->ttl_ms = ttl_ms;
    if (app.metrics != NULL) {
        cdn_metric_t *m = cdn_metrics_counter(app.metrics, "shop_idempotency_total",
                                              "POSTs with an Idempotency-Key, by what became of them",
                                              (const char *[]){"result", NULL});
        for (size_t i = 0; m != NULL && i < sizeof(s_result) / sizeof(s_result[0]); i++)
            s_result[i] = cdn_metric_series(m, (const char *[]){result_names[i], NULL});
    }
    return s;
}

static void count(int result)
{
    if (s_result[result] != NULL)
        cdn_counter_inc(s_result[result]);
}

/* ---------------- the store (under mu) ---------------- */

static struct idem_entry **bucket(struct app_idem *s, const uint8_t id[32])
{
    uint32_t h;
    memcpy(&h, id, sizeof(h));
    return &s->buckets[h & (IDEM_BUCKETS - 1)];
}

static void lru_unlink(struct app_idem *s, struct idem_entry *e)
{
    *(e->prev ? &e->prev->next : &s->head) = e->next;
    *(e->next ? &e->next->prev : &s->tail) = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct app_idem *s, struct idem_entry *e)
{
    e->prev = NULL;
    e->next = s->head;
    *(s->head ? &s->head->prev : &s->tail) = e;
    s->head = e;
}

static void entry_drop(struct app_idem *s, struct idem_entry *e)
{
    struct idem_entry **pp = bucket(s, e->id);
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(s, e);
    s->n--;
    s->bytes -= e->bytes;
    free(e->data);
    free(e);
}

static struct idem_entry *entry_find(struct app_idem *s, const uint8_t id[32], uint64_t now)
{
    struct idem_entry *e = *bucket(s, id);
    while (e != NULL && memcmp(e->id, id, sizeof(e->id)) != 0)
        e = e->hnext;
    if (e != NULL && e->done && now - e->created >= s->ttl_ms) {
        entry_drop(s, e);
        return NULL;
    }
    return e;
}

/* Room for `entries` more entries and `more` bytes: expired and then least recently used answered entries
 * go. 0, or -1 when only entries in progress are left. */
static int make_room(struct app_idem *s, size_t entries, size_t more)
{
    struct idem_entry *e = s->tail, *prev;
    while (e != NULL && (s->n + entries > s->max_entries || s->bytes + more > s->max_bytes)) {
        prev = e->prev;
        if (e->done)
            entry_drop(s, e);
        e = prev;
    }
    return s->n + entries > s->max_entries || s->bytes + more > s->max_bytes ? -1 : 0;
}

/* ---------------- the request's side ---------------- */

/* An sf-string ("...", with \" and \\) or, leniently, a bare token of visible characters, into
 * out (NUL-terminated). Its length, or -1 when malformed, empty or longer than IDEM_MAX_KEY. */
static int parse_key(const char *v, size_t len, char out[IDEM_MAX_KEY + 1])
{
    size_t n = 0;
    if (len > 0 && v[0] == '"') {
        size_t i;
        for (i = 1; i < len && v[i] != '"'; i++) {
            char c = v[i];
            if (c == '\\') {
                if (++i == len || (v[i] != '"' && v[i] != '\\'))
                    return -1;
                c = v[i];
            } else if (c < 0x20 || c > 0x7e) {
                return -1;
            }
            if (n == IDEM_MAX_KEY)
                return -1;
            out[n++] = c;
        }
        if (i != len - 1)
            return -1; /* no closing quote, or something after it */
    } else {
        for (size_t i = 0; i < len; i++) {
            if (v[i] <= 0x20 || v[i] > 0x7e || strchr("\"\\,;", v[i]) != NULL || n == IDEM_MAX_KEY)
                return -1;
            out[n++] = v[i];
        }
    }
    out[n] = '\0';
    return n > 0 ? (int)n : -1;
}

/* The client's scope: "b=<token>\ns=<sid>" with the parts it has; 0 when it has neither. */
static size_t client_scope(h2o_req_t *req, char *out, size_t cap)
{
    char sid[256];
    size_t n = 0;
    h2o_iovec_t auth = app_req_header(req, H2O_TOKEN_AUTHORIZATION);
    if (auth.len > 7 && h2o_lcstris(auth.base, 7, H2O_STRLIT("bearer ")) && auth.len - 7 < cap / 2)
        n += (size_t)snprintf(out, cap, "b=%.*s\n", (int)(auth.len - 7), auth.base + 7);
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        h2o_iovec_t c = req->headers.entries[i].value;
        if (shop_cookie_get(c.base, c.len, "sid", sid, sizeof(sid)) > 0) {
            n += (size_t)snprintf(out + n, cap - n, "s=%s\n", sid);
            break;
        }
    }
    return n < cap ? n : 0;
}

static void sha256(uint8_t out[32], const h2o_iovec_t *parts, size_t nparts)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 32;
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        abort(); /* out of memory in a 200-byte allocation: nothing sensible to do */
    for (size_t i = 0; i < nparts; i++) {
        EVP_DigestUpdate(ctx, &parts[i].len, sizeof(parts[i].len)); /* lengths first: no ambiguity */
        EVP_DigestUpdate(ctx, parts[i].base, parts[i].len);
    }
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
}

static void send_problem(h2o_req_t *req, int status, const char *reason, const char *detail)
{
    char *body = h2o_mem_alloc_pool(&req->pool, 512);
    int len = snprintf(body, 512, "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d,\"detail\":\"%s\"}\n", reason,
                       status, detail);
    app_common_headers(req);
    app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "application/problem+json");
    app_set_hdr(req, H2O_TOKEN_CACHE_CONTROL, "no-store");
    if (status == 409 || status == 503)
        app_set_hdr(req, H2O_TOKEN_RETRY_AFTER, "1");
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    app_send(req, status, reason, body, (size_t)len);
}

/* The remembered answer copied into the request's pool (under the lock: e may go as soon as it
 * is released), to be sent by replay_send once it is. */
static struct idem_entry *replay_copy(h2o_req_t *req, const struct idem_entry *e)
{
    struct idem_entry *r = h2o_mem_alloc_pool(&req->pool, sizeof(*r));
    size_t dlen = e->body_off + e->body_len;
    *r = *e;
    r->data = h2o_mem_alloc_pool(&req->pool, dlen ? dlen : 1);
    memcpy(r->data, e->data, dlen);
    return r;
}

static void replay_send(h2o_req_t *req, const struct idem_entry *r)
{
    app_common_headers(req);
    for (unsigned i = 0; i < r->nh; i++)
        h2o_add_header(&req->pool, &req->res.headers, r->h[i].tok, NULL, r->data + r->h[i].off, r->h[i].len);
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    app_send(req, r->status, r->reason, r->data + r->body_off, r->body_len);
}

static void on_claim_dispose(void *p)
{
    struct idem_claim *c = p;
    if (h2o_linklist_is_linked(&c->link))
        h2o_linklist_unlink(&c->link);
    if (c->e != NULL) { /* no answer went out: a retry is served again */
        pthread_mutex_lock(&app.idem->mu);
        entry_drop(app.idem, c->e);
        pthread_mutex_unlock(&app.idem->mu);
    }
}

/* The first request with its key: an entry in progress, claimed. -1 when the store is full of
 * entries in progress. */
static int claim(h2o_req_t *req, const uint8_t id[32], const uint8_t fp[32], uint64_t now)
{
    struct app_idem *s = app.idem;
    struct idem_entry *e = calloc(1, sizeof(*e));
    if (e == NULL || make_room(s, 1, sizeof(*e)) != 0) {
        free(e);
        return -1;
    }
    memcpy(e->id, id, sizeof(e->id));
    memcpy(e->fp, fp, sizeof(e->fp));
    e->created = now;
    e->bytes = sizeof(*e);
    struct idem_entry **b = bucket(s, id);
    e->hnext = *b;
    *b = e;
    lru_push(s, e);
    s->n++;
    s->bytes += e->bytes;
    struct idem_claim *c = h2o_mem_alloc_shared(&req->pool, sizeof(*c), on_claim_dispose);
    memset(c, 0, sizeof(*c));
    c->req = req;
    c->e = e;
    h2o_linklist_insert(&app_worker_of(req)->idem_claims, &c->link);
    return 0;
}

enum app_idem_claim app_idem_claim(h2o_req_t *req)
{
    char key[IDEM_MAX_KEY + 1], scope[1024];
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), -1);
    if (at < 0 || app.idem == NULL || !app_is_method(req, "POST"))
        return APP_IDEM_NONE;
    h2o_iovec_t v = req->headers.entries[at].value;
    int klen = parse_key(v.base, v.len, key);
    if (klen < 0 || h2o_find_header_by_str(&req->headers, H2O_STRLIT("idempotency-key"), at) >= 0) {
        count(R_INVALID);
        send_problem(req, 400, "Bad Request", "Idempotency-Key must be one string of 1 to 255 visible characters");
        return APP_IDEM_ANSWERED;
    }
    size_t slen = client_scope(req, scope, sizeof(scope));
    if (slen == 0) {
        count(R_UNSCOPED);
        return APP_IDEM_NONE;
    }
    uint8_t id[32], fp[32];
    sha256(id, (h2o_iovec_t[]){h2o_iovec_init(scope, slen), h2o_iovec_init(key, (size_t)klen)}, 2);
    sha256(fp, (h2o_iovec_t[]){req->method, req->path, req->entity}, 3);
    uint64_t now = cdn_now_ms();
    struct app_idem *s = app.idem;
    pthread_mutex_lock(&s->mu);
    struct idem_entry *e = entry_find(s, id, now);
    if (e == NULL) {
        int rc = claim(req, id, fp, now);
        pthread_mutex_unlock(&s->mu);
        if (rc == 0) {
            count(R_FIRST);
            return APP_IDEM_CLAIMED;
        }
        send_problem(req, 503, "Service Unavailable", "too many requests with an Idempotency-Key in progress");
        return APP_IDEM_ANSWERED;
    }
    if (!e->done) {
        pthread_mutex_unlock(&s->mu);
        count(R_CONFLICT);
        send_problem(req, 409, "Conflict", "a request with this Idempotency-Key is still being processed");
    } else if (memcmp(e->fp, fp, sizeof(fp)) != 0) {
        pthread_mutex_unlock(&s->mu);
        count(R_MISMATCH);
        send_problem(req, 422, "Unprocessable Content",
                     "this Idempotency-Key was used for another request (method, path or body differ)");
    } else {
        lru_unlink(s, e);
        lru_push(s, e);
        struct idem_entry *r = replay_copy(req, e);
        pthread_mutex_unlock(&s->mu);
        count(R_REPLAYED);
        replay_send(req, r);
    }
    return APP_IDEM_ANSWERED;
}

/* ---------------- remembering the answer ---------------- */

static int kept(const h2o_iovec_t *name, const h2o_token_t **tok)
{
    for (size_t i = 0; i < sizeof(kept_headers) / sizeof(kept_headers[0]); i++)
        if (name == &kept_headers[i]->buf) {
            *tok = kept_headers[i];
            return 1;
        }
    return 0;
}

/* The answer's status, kept headers and body into e (in progress, ours). -1 when not kept. */
static int fill(struct idem_entry *e, h2o_req_t *req, const char *body, size_t len)
{
    size_t need = len;
    const h2o_token_t *tok;
    if (req->res.status >= 500 || len > IDEM_MAX_BODY)
        return -1;
    for (size_t i = 0; i < req->res.headers.size; i++)
        if (kept(req->res.headers.entries[i].name, &tok))
            need += req->res.headers.entries[i].value.len;
    if ((e->data = malloc(need ? need : 1)) == NULL)
        return -1;
    size_t off = 0;
    for (size_t i = 0; i < req->res.headers.size; i++) {
        h2o_header_t *h = &req->res.headers.entries[i];
        if (!kept(h->name, &tok) || e->nh == IDEM_MAX_HDRS)
            continue;
        memcpy(e->data + off, h->value.base, h->value.len);
        e->h[e->nh].tok = tok;
        e->h[e->nh].off = off;
        e->h[e->nh++].len = h->value.len;
        off += h->value.len;
    }
    memcpy(e->data + off, body, len);
    e->body_off = off;
    e->body_len = len;
    e->status = req->res.status;
    e->reason = req->res.reason;
    return 0;
}

void app_idem_answer(h2o_req_t *req, const char *body, size_t len)
{
    struct app_worker *w = app_worker_of(req);
    struct idem_claim *c = NULL;
    for (h2o_linklist_t *l = w->idem_claims.next; l != &w->idem_claims; l = l->next)
        if (H2O_STRUCT_FROM_MEMBER(struct idem_claim, link, l)->req == req) {
            c = H2O_STRUCT_FROM_MEMBER(struct idem_claim, link, l);
            break;
        }
    if (c == NULL)
        return;
    h2o_linklist_unlink(&c->link);
    struct idem_entry *e = c->e;
    struct app_idem *s = app.idem;
    c->e = NULL;
    int rc = fill(e, req, body, len); /* e is in progress: no other thread touches it */
    pthread_mutex_lock(&s->mu);
    size_t more = e->body_off + e->body_len;
    if (rc == 0) {
        /* room for the answer: other entries may go, not this one (still in progress) */
        rc = make_room(s, 0, more);
    }
    if (rc == 0) {
        e->done = 1;
        e->bytes += more;
        s->bytes += more;
    } else {
        entry_drop(s, e); /* not remembered: a retry is served again */
    }
    pthread_mutex_unlock(&s->mu);
}
