/* lib/resolver.c - asynchronous name resolution: one c-ares channel driven by an h2o evloop,
 * plus a per-name answer cache that honours the TTL (capped by cache_max_ttl).
 *
 * Rules:
 * - c-ares sockets are watched through cdn_watch (sock_state_cb), its timeouts through one
 *   cdn_timer re-armed from ares_timeout() after every call into c-ares.
 * - c-ares 1.18 cannot cancel one query. A cancelled lookup is unlinked from the resolver and
 *   marked; its struct lives until c-ares reports the query finished, and its callback never runs.
 * - User callbacks may do anything, including freeing the resolver: every call into c-ares is
 *   bracketed by enter()/leave(), and a free requested inside one is finished by the outermost leave().
 * - The cache holds positive answers only, at most CACHE_MAX names; when full, expired names go
 *   first, then everything (a crude bound, but a bound). */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "cdn/loop.h"
#include "cdn/resolver.h"

#define RESOLVER_MAGIC 0x52534c56u /* "RSLV" */
#define RESOLVE_MAGIC 0x52534c51u  /* "RSLQ" */
#define CACHE_BUCKETS 256
#define CACHE_MAX 4096
#define NAME_MAX_LEN 255

struct sockwatch {
    struct sockwatch *next;
    int fd;
    cdn_watch_t *w;
    cdn_resolver_t *r;
};

struct cache_entry {
    struct cache_entry *next;
    char *name;
    uint64_t stored_ms;  /* cdn_now_ms() when stored */
    uint64_t expires_ms; /* min TTL, capped by cache_max_ttl */
    struct cdn_addrs addrs;
};

struct cdn_resolve {
    uint32_t magic;
    cdn_resolver_t *r;
    struct cdn_resolve *prev, *next; /* in r->pending while it can still call back */
    cdn_resolve_cb cb;
    void *data;
    int cancelled;
    char name[];
};

struct cdn_resolver {
    uint32_t magic;
    h2o_evloop_t *loop;
    ares_channel ch;
    cdn_timer_t *timer;
    struct sockwatch *watches;
    struct cdn_resolve *pending; /* lookups whose callback is still owed */
    int family;
    uint32_t cache_max_ttl;
    struct cache_entry *cache[CACHE_BUCKETS];
    size_t cache_n;
    int depth;   /* nesting of calls into c-ares */
    int closing; /* cdn_resolver_free() ran; finish when depth drops to 0 */
    cdn_resolve_t *starting; /* the lookup inside ares_getaddrinfo() right now */
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static void ares_init_once(void)
{
    ares_library_init(ARES_LIB_INIT_ALL);
}

/* ---- cache ---- */

static unsigned name_hash(const char *s)
{
    unsigned h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h % CACHE_BUCKETS;
}

static void cache_entry_free(struct cache_entry *e)
{
    free(e->name);
    free(e);
}

void cdn_resolver_flush_cache(cdn_resolver_t *r)
{
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        while (r->cache[i] != NULL) {
            struct cache_entry *e = r->cache[i];
            r->cache[i] = e->next;
            cache_entry_free(e);
        }
    }
    r->cache_n = 0;
}

static void cache_sweep(cdn_resolver_t *r, uint64_t now)
{
    for (int i = 0; i < CACHE_BUCKETS; i++) {
        for (struct cache_entry **p = &r->cache[i]; *p != NULL;) {
            if ((*p)->expires_ms <= now) {
                struct cache_entry *e = *p;
                *p = e->next;
                cache_entry_free(e);
                r->cache_n--;
            } else {
                p = &(*p)->next;
            }
        }
    }
}

/* A live entry for name, with ttl[] rewritten to the seconds left; NULL if none. */
static struct cache_entry *cache_get(cdn_resolver_t *r, const char *name, uint64_t now)
{
    for (struct cache_entry **p = &r->cache[name_hash(name)]; *p != NULL; p = &(*p)->next) {
        struct cache_entry *e = *p;
        if (strcmp(e->name, name) != 0)
            continue;
        if (e->expires_ms <= now) {
            *p = e->next;
            cache_entry_free(e);
            r->cache_n--;
            return NULL;
        }
        return e;
    }
    return NULL;
}

static void cache_put(cdn_resolver_t *r, const char *name, const struct cdn_addrs *a, uint64_t now)
{
    if (r->cache_max_ttl == 0 || a->n == 0)
        return;
    uint32_t ttl = r->cache_max_ttl;
    for (int i = 0; i < a->n; i++)
        if (a->ttl[i] < ttl)
            ttl = a->ttl[i];
    if (ttl == 0)
        return;
    struct cache_entry *old;
    if ((old = cache_get(r, name, now)) != NULL) { /* a racing lookup answered first: replace */
        old->stored_ms = now;
        old->expires_ms = now + (uint64_t)ttl * 1000;
        old->addrs = *a;
        return;
    }
    if (r->cache_n >= CACHE_MAX) {
        cache_sweep(r, now);
        if (r->cache_n >= CACHE_MAX)
            cdn_resolver_flush_cache(r);
    }
    struct cache_entry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        return;
    }
    e->stored_ms = now;
    e->expires_ms = now + (uint64_t)ttl * 1000;
    e->addrs = *a;
    unsigned h = name_hash(name);
    e->next = r->cache[h];
    r->cache[h] = e;
    r->cache_n++;
}

/* ---- driving c-ares from the loop ---- */

static void resolver_destroy(cdn_resolver_t *r);

static void enter(cdn_resolver_t *r)
{
    r->depth++;
}

/* After every call into c-ares: re-arm the timer, or finish a free requested meanwhile. */
static void leave(cdn_resolver_t *r)
{
    if (--r->depth > 0)
        return;
    if (r->closing) {
        resolver_destroy(r);
        return;
    }
    struct timeval tv, *tvp = ares_timeout(r->ch, NULL, &tv);
    if (tvp == NULL)
        cdn_timer_stop(r->timer);
    else
        cdn_timer_start(r->timer, (uint64_t)tvp->tv_sec * 1000 + (uint64_t)(tvp->tv_usec + 999) / 1000);
}

static void on_ares_timer(cdn_timer_t *t, void *data)
{
    cdn_resolver_t *r = data;
    assert(r->magic == RESOLVER_MAGIC);
    enter(r);
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    leave(r);
}

static void on_ares_sock(cdn_watch_t *w, int fd, int events, void *data)
{
    struct sockwatch *sw = data;
    cdn_resolver_t *r = sw->r; /* sw may be freed by sock_state_cb inside ares_process_fd */
    assert(r->magic == RESOLVER_MAGIC);
    enter(r);
    ares_process_fd(r->ch, (events & CDN_WATCH_READ) ? fd : ARES_SOCKET_BAD,
                    (events & CDN_WATCH_WRITE) ? fd : ARES_SOCKET_BAD);
    leave(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    cdn_resolver_t *r = data;
    struct sockwatch **p = &r->watches;
    while (*p != NULL && (*p)->fd != fd)
        p = &(*p)->next;
    if (!readable && !writable) { /* c-ares is about to close fd */
        if (*p != NULL) {
            struct sockwatch *sw = *p;
            *p = sw->next;
            cdn_watch_free(sw->w);
            free(sw);
        }
        return;
    }
    if (*p == NULL) {
        struct sockwatch *sw = calloc(1, sizeof(*sw));
        if (sw == NULL)
            return; /* the query times out rather than hangs: the timer still runs */
        sw->fd = fd;
        sw->r = r;
        if ((sw->w = cdn_watch_new(r->loop, fd, on_ares_sock, sw)) == NULL) {
            free(sw);
            return;
        }
        sw->next = r->watches;
        r->watches = sw;
        p = &r->watches;
    }
    cdn_watch_set((*p)->w, (readable ? CDN_WATCH_READ : 0) | (writable ? CDN_WATCH_WRITE : 0));
}

/* ---- lookups ---- */

static void pending_unlink(cdn_resolver_t *r, cdn_resolve_t *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else if (r->pending == q)
        r->pending = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static const char *ares_errstr(int status)
{
    switch (status) {
    case ARES_ENOTFOUND:
        return "name not found";
    case ARES_ENODATA:
        return "no address for name";
    case ARES_ETIMEOUT:
        return "timed out";
    case ARES_ECONNREFUSED:
        return "connection refused";
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return "resolver closed";
    default:
        return ares_strerror(status);
    }
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    cdn_resolve_t *q = arg;
    assert(q->magic == RESOLVE_MAGIC);
    cdn_resolver_t *r = q->r;
    if (r->starting == q)
        r->starting = NULL;
    if (q->cancelled) { /* cancelled, or already told "resolver closed" */
        q->magic = 0;
        free(q);
        if (res != NULL)
            ares_freeaddrinfo(res);
        return;
    }
    pending_unlink(r, q);
    struct cdn_addrs a = {0};
    if (status == ARES_SUCCESS && res != NULL) {
        for (struct ares_addrinfo_node *n = res->nodes; n != NULL && a.n < CDN_RESOLVE_MAX_ADDRS; n = n->ai_next) {
            if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) || n->ai_addrlen > sizeof(a.addr[0]))
                continue;
            memcpy(&a.addr[a.n], n->ai_addr, n->ai_addrlen);
            ((struct sockaddr_in *)&a.addr[a.n])->sin_port = 0; /* same offset in sockaddr_in6 */
            a.ttl[a.n] = n->ai_ttl > 0 ? (uint32_t)n->ai_ttl : 0;
            a.n++;
        }
    }
    if (res != NULL)
        ares_freeaddrinfo(res);
    const char *err = NULL;
    if (status != ARES_SUCCESS)
        err = ares_errstr(status);
    else if (a.n == 0)
        err = "no address for name";
    else
        cache_put(r, q->name, &a, cdn_now_ms());
    q->magic = 0;
    cdn_resolve_cb cb = q->cb;
    void *data = q->data;
    free(q);
    cb(err, err == NULL ? &a : NULL, data);
}

/* An IP literal answers itself: ttl UINT32_MAX, it never changes. */
static int literal(const char *name, struct cdn_addrs *a)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->addr[0];
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->addr[0];
    char buf[NAME_MAX_LEN + 1];
    size_t len = strlen(name);
    memset(a, 0, sizeof(*a));
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']' && len - 2 < sizeof(buf)) { /* "[::1]" */
        memcpy(buf, name + 1, len - 2);
        buf[len - 2] = '\0';
        name = buf;
    }
    if (inet_pton(AF_INET, name, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, name, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
    } else {
        return 0;
    }
    a->n = 1;
    a->ttl[0] = UINT32_MAX;
    return 1;
}

cdn_resolve_t *cdn_resolver_lookup(cdn_resolver_t *r, const char *name, cdn_resolve_cb cb, void *data)
{
    assert(r->magic == RESOLVER_MAGIC);
    struct cdn_addrs a;
    size_t len = name != NULL ? strlen(name) : 0;
    if (r->closing) {
        cb("resolver closed", NULL, data);
        return NULL;
    }
    if (len == 0 || len > NAME_MAX_LEN) {
        cb("bad name", NULL, data);
        return NULL;
    }
    if (literal(name, &a)) {
        cb(NULL, &a, data);
        return NULL;
    }
    char key[NAME_MAX_LEN + 1];
    for (size_t i = 0; i <= len; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    if (len > 1 && key[len - 1] == '.')
        key[len - 1] = '\0';
    uint64_t now = cdn_now_ms();
    struct cache_entry *e = cache_get(r, key, now);
    if (e != NULL) {
        a = e->addrs;
        uint32_t elapsed = (uint32_t)((now - e->stored_ms) / 1000);
        for (int i = 0; i < a.n; i++)
            a.ttl[i] = a.ttl[i] > elapsed ? a.ttl[i] - elapsed : 0;
        cb(NULL, &a, data);
        return NULL;
    }
    cdn_resolve_t *q = calloc(1, sizeof(*q) + strlen(key) + 1);
    if (q == NULL) {
        cb("out of memory", NULL, data);
        return NULL;
    }
    q->magic = RESOLVE_MAGIC;
    q->r = r;
    q->cb = cb;
    q->data = data;
    strcpy(q->name, key);
    q->next = r->pending;
    if (q->next != NULL)
        q->next->prev = q;
    r->pending = q;
    struct ares_addrinfo_hints hints = {.ai_family = r->family};
    /* c-ares may answer (from /etc/hosts, or with an error) before returning; on_addrinfo then
     * clears r->starting and q is gone: the caller gets NULL. Nested lookups save and restore it. */
    cdn_resolve_t *prev_starting = r->starting;
    r->starting = q;
    enter(r);
    ares_getaddrinfo(r->ch, key, NULL, &hints, on_addrinfo, q);
    int answered = r->starting != q;
    r->starting = prev_starting;
    leave(r);
    return answered ? NULL : q;
}

void cdn_resolve_cancel(cdn_resolve_t *q)
{
    if (q == NULL)
        return;
    assert(q->magic == RESOLVE_MAGIC);
    if (q->cancelled)
        return;
    pending_unlink(q->r, q);
    q->cancelled = 1;
}

/* ---- lifetime ---- */

cdn_resolver_t *cdn_resolver_new(h2o_evloop_t *loop, const struct cdn_resolver_opts *opts, char *err, size_t errlen)
{
    static const struct cdn_resolver_opts defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    pthread_once(&ares_once, ares_init_once);
    cdn_resolver_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->magic = RESOLVER_MAGIC;
    r->loop = loop;
    r->family = opts->family;
    r->cache_max_ttl = opts->cache_max_ttl;
    if (r->family != AF_UNSPEC && r->family != AF_INET && r->family != AF_INET6) {
        snprintf(err, errlen, "resolver: bad address family %d", opts->family);
        free(r);
        return NULL;
    }

    struct ares_options ao = {0};
    ao.sock_state_cb = on_sock_state;
    ao.sock_state_cb_data = r;
    ao.timeout = opts->timeout_ms > 0 ? opts->timeout_ms : 1000; /* ms: ARES_OPT_TIMEOUTMS */
    ao.tries = opts->tries > 0 ? opts->tries : 2;
    ao.lookups = opts->use_hosts < 0 ? "b" : "fb";
    /* With explicit (lab) servers, names are absolute: no search-domain retries. */
    ao.flags = opts->servers != NULL ? ARES_FLAG_NOSEARCH : 0;
    int st = ares_init_options(&r->ch, &ao,
                               ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
                                   (opts->servers != NULL ? ARES_OPT_FLAGS : 0));
    if (st != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: ares_init_options: %s", ares_strerror(st));
        free(r);
        return NULL;
    }
    if (opts->servers != NULL && (st = ares_set_servers_ports_csv(r->ch, opts->servers)) != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: bad servers \"%s\": %s", opts->servers, ares_strerror(st));
        goto Fail;
    }
    if (opts->local_ip4 != NULL) {
        struct in_addr in4;
        struct in6_addr in6;
        if (inet_pton(AF_INET, opts->local_ip4, &in4) == 1) {
            ares_set_local_ip4(r->ch, ntohl(in4.s_addr)); /* c-ares wants host byte order */
        } else if (inet_pton(AF_INET6, opts->local_ip4, &in6) == 1) {
            ares_set_local_ip6(r->ch, in6.s6_addr);
        } else {
            snprintf(err, errlen, "resolver: bad local address \"%s\"", opts->local_ip4);
            goto Fail;
        }
    }
    if ((r->timer = cdn_timer_new(loop, on_ares_timer, r)) == NULL) {
        snprintf(err, errlen, "resolver: timerfd: %s", strerror(errno));
        goto Fail;
    }
    return r;
Fail:
    ares_destroy(r->ch);
    free(r);
    return NULL;
}

static void resolver_destroy(cdn_resolver_t *r)
{
    r->depth = 1; /* callbacks from ares_destroy must not re-enter destroy */
    ares_destroy(r->ch); /* every query ends with ARES_EDESTRUCTION: all are marked, so freed silently */
    while (r->watches != NULL) {
        struct sockwatch *sw = r->watches;
        r->watches = sw->next;
        cdn_watch_free(sw->w);
        free(sw);
    }
    cdn_timer_free(r->timer);
    cdn_resolver_flush_cache(r);
    r->magic = 0;
    free(r);
}

void cdn_resolver_free(cdn_resolver_t *r)
{
    if (r == NULL)
        return;
    assert(r->magic == RESOLVER_MAGIC);
    if (r->closing)
        return;
    r->closing = 1;
    /* Tell every caller first; a callback may cancel others or start lookups (refused: closing). */
    while (r->pending != NULL) {
        cdn_resolve_t *q = r->pending;
        pending_unlink(r, q);
        q->cancelled = 1;
        q->cb("resolver closed", NULL, q->data);
    }
    if (r->depth == 0)
        resolver_destroy(r);
    /* else: the outermost leave() destroys it */
}
