/* lib/httpc_h1.c - cdn_httpc's HTTP/1.1 engine: plain GET/HEAD over h2o sockets (lib/httpc_h1.h).
 *
 * Why not h2o_http1client (h2o 2.2.5): it cannot stop reading a body (no flow control for the
 * edge's fetch_flow), it reports every failed connect as "connection failure" (no refused vs
 * unreachable), its only timer is one io_timeout per context, and it resolves through h2o's
 * getaddrinfo threads. So this is a small client of its own: its own non-blocking connect (errno
 * kept), picohttpparser's phr_parse_response for heads (exported by libh2o-evloop, not the
 * phr_parse_request / phr_decode_chunked that lib/h1hook.c interposes), a streaming chunked
 * decoder of its own (never modifies the buffer, so a paused body resumes where it stopped).
 *
 * Rules:
 * - Callbacks run only from loop events (socket read/write, timers, the resolver, the kick timer
 *   for failures found inside h1c_start) and from h1c_pause(r, 0). Every entry point is wrapped
 *   in enter()/leave(): h1c_free() inside a callback only marks the client, the outermost leave()
 *   destroys it.
 * - A user callback runs with r->in_cb set. cancel inside it detaches r (socket closed, timers
 *   unlinked) and marks it; the code that made the call sees r->cancelled and frees r. Nothing
 *   touches r's connection after a callback that cancelled.
 * - Connections: per destination address (struct host), idle ones kept (LIFO) with a read watch
 *   so that a server's close is seen at once; max_idle_conns over all hosts (oldest closed first),
 *   max_host_conns per host (requests wait in the host's queue for a slot). A GET/HEAD that found
 *   its reused connection dead (EOF, reset or write error before any byte of response) is sent
 *   again once on a new connection.
 * - Timers: h2o_timeout_t queues (one per distinct period), no timerfd per request. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cdn/http.h"
#include "cdn/loop.h"
#include "httpc_h1.h"

/* picohttpparser, inside libh2o-evloop (no header installed) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);

#define HEAD_MAX (64 * 1024) /* bytes of one response head (as the curl engine) */
#define HEADERS_MAX 128
#define IDLE_MAX_MS 60000 /* an idle connection is closed after this */

enum { ST_RESOLVING, ST_WAITING, ST_CONNECTING, ST_RUNNING, ST_FAILED, ST_DONE };
enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };
enum { GONE = -1, MORE = 0 }; /* process results: r freed (or finished), or waiting for bytes */

struct tq {
    struct tq *next;
    uint64_t ms;
    h2o_timeout_t t;
};

struct host {
    struct host *next;
    struct sockaddr_storage addr;
    socklen_t len;
    char ip[64];            /* addr as text, for cdn_httpc_info's primary_ip (once, not per request) */
    size_t nconns;          /* connecting, busy or idle */
    h2o_linklist_t idle;    /* conn.hlink; most recent last */
    h2o_linklist_t waiting; /* h1req.wlink (max_host_conns) */
};

struct conn {
    h1c_t *c;
    struct host *h;
    h2o_socket_t *sock;
    struct h1req *r;           /* NULL when idle */
    h2o_linklist_t clink;      /* c->conns */
    h2o_linklist_t hlink, lru; /* h->idle, c->idle_lru (idle only) */
    h2o_timeout_entry_t tmo;   /* connect timeout, then idle timeout */
    unsigned connecting : 1, writing : 1, release_after_write : 1;
};

struct h1req {
    uint32_t magic;
    h1c_t *c;
    h2o_linklist_t link;  /* c->reqs while live */
    h2o_linklist_t wlink; /* host->waiting */
    struct h1req *qnext;  /* c->failed */
    int state;
    struct cdn_httpc_cbs cbs;
    void *data;
    cdn_httpc_fetch_cb fetch_cb;
    char *fbuf;
    size_t flen, fcap;
    char host[256];
    long port;
    char *out; /* the request head */
    size_t outlen;
    struct cdn_addrs addrs;
    int ai;
    cdn_resolve_t *rq;
    struct conn *conn;
    h2o_timeout_entry_t deadline;
    uint64_t timeout_ms;
    unsigned is_head : 1, cancelled : 1, paused : 1, in_cb : 1, reused : 1, retried : 1, rx : 1, head_done : 1,
        connected : 1, starting : 1, keep : 1, delivering : 1;
    int body_mode;
    uint64_t left;
    struct h1c_chunked ch;
    uint64_t body_bytes, max_body;
    enum cdn_httpc_error kind;
    const char *errstr;
    double t0;
    struct cdn_httpc_info info;
};

struct h1c {
    h2o_evloop_t *loop;
    cdn_resolver_t *resolver;
    struct sockaddr_storage local;
    socklen_t local_len;
    uint64_t connect_timeout_ms, timeout_ms, max_body;
    size_t max_host_conns, max_idle;
    struct tq *tqs;
    h2o_timeout_t connect_tq, idle_tq;
    cdn_timer_t *kick;
    struct host *hosts;
    h2o_linklist_t reqs, conns, idle_lru;
    size_t nreqs, nidle;
    struct h1req *failed, **failed_tail;
    int depth, closing;
    h2o_buffer_prototype_t inbuf; /* the connections' input buffers (see INBUF_SIZE) */
};

/* The input buffer of a connection starts at this size and goes back to a per-client recycle list
 * when a response has been consumed. h2o reads until the socket is dry, growing the buffer by
 * doubling: with its 8 KiB sockets a 123 KB image went 8 -> 16 -> ... -> 256 KiB, every response
 * (five mallocs and copies, and a brk up and down each time: shop-lb spent 194 us CPU per image
 * against libcurl's 131). Per client, so per loop thread: h2o's recycle lists are not locked. */
#define INBUF_SIZE (128 * 1024 + 4096)
#define INBUF_KEEP 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void destroy(h1c_t *c);

static void enter(h1c_t *c)
{
    c->depth++;
}

static void leave(h1c_t *c)
{
    if (--c->depth == 0 && c->closing)
        destroy(c);
}

/* ---- timers ---- */

static h2o_timeout_t *tq_get(h1c_t *c, uint64_t ms)
{
    for (struct tq *q = c->tqs; q != NULL; q = q->next)
        if (q->ms == ms)
            return &q->t;
    struct tq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->ms = ms;
    h2o_timeout_init(c->loop, &q->t, ms);
    q->next = c->tqs;
    c->tqs = q;
    return &q->t;
}

static void timeout_drain_dispose(h2o_evloop_t *loop, h2o_timeout_t *t)
{
    while (!h2o_linklist_is_empty(&t->_entries))
        h2o_timeout_unlink(H2O_STRUCT_FROM_MEMBER(h2o_timeout_entry_t, _link, t->_entries.next));
    h2o_timeout_dispose(loop, t);
}

/* ---- connections ---- */

static void on_idle_read(h2o_socket_t *sock, const char *err);
static void on_conn_tmo(h2o_timeout_entry_t *e);
static void send_req(struct h1req *r);
static void conn_open(struct h1req *r, struct host *h);

static struct host *host_get(h1c_t *c, const struct sockaddr_storage *a, socklen_t len)
{
    for (struct host *h = c->hosts; h != NULL; h = h->next)
        if (h->len == len && memcmp(&h->addr, a, len) == 0)
            return h;
    struct host *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    memcpy(&h->addr, a, len);
    h->len = len;
    if (a->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, h->ip, sizeof(h->ip));
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, h->ip, sizeof(h->ip));
    h2o_linklist_init_anchor(&h->idle);
    h2o_linklist_init_anchor(&h->waiting);
    h->next = c->hosts;
    c->hosts = h;
    return h;
}

static void attach(struct h1req *r, struct conn *cn)
{
    cn->r = r;
    r->conn = cn;
    _Static_assert(sizeof(cn->h->ip) == sizeof(r->info.primary_ip), "same size");
    memcpy(r->info.primary_ip, cn->h->ip, sizeof(r->info.primary_ip));
}

/* A slot of h came free: the first waiting request gets a connection. */
static void host_kick(h1c_t *c, struct host *h)
{
    while (!h2o_linklist_is_empty(&h->waiting) && (c->max_host_conns == 0 || h->nconns < c->max_host_conns)) {
        struct h1req *w = H2O_STRUCT_FROM_MEMBER(struct h1req, wlink, h->waiting.next);
        h2o_linklist_unlink(&w->wlink);
        conn_open(w, h);
    }
}

static void idle_unlink(struct conn *cn)
{
    if (h2o_linklist_is_linked(&cn->hlink)) {
        h2o_linklist_unlink(&cn->hlink);
        h2o_linklist_unlink(&cn->lru);
        cn->c->nidle--;
    }
}

static void conn_close(struct conn *cn)
{
    h1c_t *c = cn->c;
    struct host *h = cn->h;
    if (h2o_timeout_is_linked(&cn->tmo))
        h2o_timeout_unlink(&cn->tmo);
    idle_unlink(cn);
    h2o_linklist_unlink(&cn->clink);
    h->nconns--;
    if (cn->r != NULL)
        cn->r->conn = NULL;
    h2o_socket_close(cn->sock);
    free(cn);
    if (!c->closing)
        host_kick(c, h);
}

/* The response is complete and the connection clean: to the next waiting request or idle. */
static void conn_release(struct conn *cn)
{
    h1c_t *c = cn->c;
    struct host *h = cn->h;
    cn->r = NULL;
    if (c->closing) {
        conn_close(cn);
        return;
    }
    if (cn->writing) { /* the request's write is not reported done yet: wait for it */
        cn->release_after_write = 1;
        return;
    }
    h2o_socket_read_stop(cn->sock);
    if (!h2o_linklist_is_empty(&h->waiting)) {
        struct h1req *w = H2O_STRUCT_FROM_MEMBER(struct h1req, wlink, h->waiting.next);
        h2o_linklist_unlink(&w->wlink);
        attach(w, cn);
        w->reused = 1;
        w->connected = 1;
        w->info.connect_s = now_s() - w->t0;
        send_req(w);
        return;
    }
    h2o_socket_read_start(cn->sock, on_idle_read);
    h2o_linklist_insert(&h->idle, &cn->hlink);
    h2o_linklist_insert(&c->idle_lru, &cn->lru);
    c->nidle++;
    cn->tmo.cb = on_conn_tmo;
    h2o_timeout_link(c->loop, &c->idle_tq, &cn->tmo);
    if (c->nidle > c->max_idle) /* the oldest goes */
        conn_close(H2O_STRUCT_FROM_MEMBER(struct conn, lru, c->idle_lru.next));
}

/* Anything from an idle connection (its close, or bytes nobody asked for) ends it. */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    struct conn *cn = sock->data;
    h1c_t *c = cn->c;
    enter(c);
    conn_close(cn);
    leave(c);
}

/* ---- finishing ---- */

static void req_free(struct h1req *r)
{
    if (r->fbuf != NULL)
        free(r->fbuf);
    free(r->out);
    r->magic = 0;
    free(r);
}

/* Lets go of everything r holds in the client: lookup, queue, timer, connection, list. */
static void detach(struct h1req *r)
{
    h1c_t *c = r->c;
    if (r->rq != NULL) {
        cdn_resolve_cancel(r->rq);
        r->rq = NULL;
    }
    if (h2o_linklist_is_linked(&r->wlink))
        h2o_linklist_unlink(&r->wlink);
    if (h2o_timeout_is_linked(&r->deadline))
        h2o_timeout_unlink(&r->deadline);
    if (r->conn != NULL)
        conn_close(r->conn);
    if (r->state == ST_FAILED) {
        for (struct h1req **p = &c->failed; *p != NULL; p = &(*p)->qnext) {
            if (*p == r) {
                *p = r->qnext;
                if (c->failed_tail == &r->qnext)
                    c->failed_tail = p;
                break;
            }
        }
        r->qnext = NULL;
    }
    if (h2o_linklist_is_linked(&r->link)) {
        h2o_linklist_unlink(&r->link);
        c->nreqs--;
    }
}

/* on_done once, then r is freed. */
static void finish(struct h1req *r, enum cdn_httpc_error kind, const char *errstr)
{
    detach(r);
    r->state = ST_DONE;
    r->info.error = kind;
    r->info.body_bytes = r->body_bytes;
    r->info.total_s = now_s() - r->t0;
    r->in_cb = 1;
    if (r->fetch_cb != NULL)
        r->fetch_cb(errstr, r->info.status, r->fbuf, r->flen, &r->info, r->data);
    else if (r->cbs.on_done != NULL)
        r->cbs.on_done((cdn_httpc_req_t *)r, errstr, r->data);
    r->in_cb = 0;
    req_free(r);
}

static void on_kick(cdn_timer_t *t, void *data)
{
    h1c_t *c = data;
    enter(c);
    while (c->failed != NULL && !c->closing) {
        struct h1req *r = c->failed;
        c->failed = r->qnext;
        if (c->failed == NULL)
            c->failed_tail = &c->failed;
        r->qnext = NULL;
        r->state = ST_DONE; /* out of the queue */
        finish(r, r->kind, r->errstr);
    }
    leave(c);
}

/* A failure: at once from a loop event; from the kick timer while h1c_start is on the stack, or
 * when later is set (found while opening a connection, which may run inside another request's
 * completion: on_done must not run there). */
static void fail_q(struct h1req *r, enum cdn_httpc_error kind, const char *errstr, int later)
{
    if (r->starting || later) {
        h1c_t *c = r->c;
        if (r->conn != NULL)
            conn_close(r->conn);
        if (h2o_timeout_is_linked(&r->deadline))
            h2o_timeout_unlink(&r->deadline);
        r->state = ST_FAILED;
        r->kind = kind;
        r->errstr = errstr;
        r->qnext = NULL;
        *c->failed_tail = r;
        c->failed_tail = &r->qnext;
        cdn_timer_start(c->kick, 0);
        return;
    }
    finish(r, kind, errstr);
}

static void fail(struct h1req *r, enum cdn_httpc_error kind, const char *errstr)
{
    fail_q(r, kind, errstr, 0);
}

/* ---- connecting ---- */

static void go(struct h1req *r, int fresh);

static void connect_failed(struct h1req *r, int err, int later)
{
    if (r->ai + 1 < r->addrs.n) { /* the next address of the name */
        r->ai++;
        go(r, 1);
        return;
    }
    if (err == ECONNREFUSED)
        fail_q(r, CDN_HTTPC_REFUSED, "connection refused", later);
    else
        fail_q(r, CDN_HTTPC_CONNECT, "could not connect", later);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    struct conn *cn = sock->data;
    h1c_t *c = cn->c;
    struct h1req *r = cn->r;
    enter(c);
    cn->writing = 0;
    if (h2o_timeout_is_linked(&cn->tmo))
        h2o_timeout_unlink(&cn->tmo);
    cn->connecting = 0;
    int soerr = 0;
    socklen_t l = sizeof(soerr);
    if (getsockopt(h2o_socket_get_fd(sock), SOL_SOCKET, SO_ERROR, &soerr, &l) != 0)
        soerr = errno;
    if (soerr == 0 && err != NULL)
        soerr = ECONNRESET;
    if (soerr != 0) {
        conn_close(cn);
        if (r != NULL)
            connect_failed(r, soerr, 0);
    } else if (r != NULL) {
        r->connected = 1;
        r->info.connect_s = now_s() - r->t0;
        send_req(r);
    } else {
        conn_close(cn);
    }
    leave(c);
}

static void on_conn_tmo(h2o_timeout_entry_t *e)
{
    struct conn *cn = H2O_STRUCT_FROM_MEMBER(struct conn, tmo, e);
    h1c_t *c = cn->c;
    struct h1req *r = cn->r;
    enter(c);
    int connecting = cn->connecting;
    conn_close(cn);
    if (connecting && r != NULL)
        fail(r, CDN_HTTPC_CONNECT_TIMEOUT, "timed out");
    leave(c);
}

static void conn_open(struct h1req *r, struct host *h)
{
    h1c_t *c = r->c;
    int fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail_q(r, CDN_HTTPC_CONNECT, "could not connect", 1);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->local_len > 0 &&
        (c->local.ss_family != h->addr.ss_family || bind(fd, (struct sockaddr *)&c->local, c->local_len) != 0)) {
        close(fd);
        fail_q(r, CDN_HTTPC_CONNECT, "could not bind the local address", 1);
        return;
    }
    int rc = connect(fd, (struct sockaddr *)&h->addr, h->len);
    if (rc != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        r->info.new_connections++;
        connect_failed(r, e, 1);
        return;
    }
    struct conn *cn = calloc(1, sizeof(*cn));
    if (cn == NULL) {
        close(fd);
        fail_q(r, CDN_HTTPC_INTERNAL, "out of memory", 1);
        return;
    }
    cn->c = c;
    cn->h = h;
    cn->sock = h2o_evloop_socket_create(c->loop, fd, 0);
    h2o_buffer_init(&cn->sock->input, &c->inbuf); /* nothing allocated yet: it was the prototype's */
    cn->sock->data = cn;
    h2o_linklist_insert(&c->conns, &cn->clink);
    h->nconns++;
    r->info.new_connections++;
    r->reused = 0;
    attach(r, cn);
    if (rc == 0) {
        r->connected = 1;
        r->info.connect_s = now_s() - r->t0;
        send_req(r);
        return;
    }
    r->state = ST_CONNECTING;
    cn->connecting = 1;
    cn->writing = 1;
    h2o_socket_notify_write(cn->sock, on_connect);
    cn->tmo.cb = on_conn_tmo;
    h2o_timeout_link(c->loop, &c->connect_tq, &cn->tmo);
}

static void on_deadline(h2o_timeout_entry_t *e)
{
    struct h1req *r = H2O_STRUCT_FROM_MEMBER(struct h1req, deadline, e);
    h1c_t *c = r->c;
    enter(c);
    fail(r, r->connected || r->head_done ? CDN_HTTPC_TIMEOUT : CDN_HTTPC_CONNECT_TIMEOUT, "timed out");
    leave(c);
}

/* The address is known: a kept-alive connection, a new one, or a wait for a slot. */
static void go(struct h1req *r, int fresh)
{
    h1c_t *c = r->c;
    struct sockaddr_storage a = r->addrs.addr[r->ai];
    socklen_t len;
    if (a.ss_family == AF_INET) {
        ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)r->port);
        len = sizeof(struct sockaddr_in);
    } else {
        ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)r->port);
        len = sizeof(struct sockaddr_in6);
    }
    if (!h2o_timeout_is_linked(&r->deadline)) { /* as curl's: from the end of the lookup */
        h2o_timeout_t *t = tq_get(c, r->timeout_ms);
        if (t == NULL) {
            fail_q(r, CDN_HTTPC_INTERNAL, "out of memory", 1);
            return;
        }
        r->deadline.cb = on_deadline;
        h2o_timeout_link(c->loop, t, &r->deadline);
    }
    struct host *h = host_get(c, &a, len);
    if (h == NULL) {
        fail_q(r, CDN_HTTPC_INTERNAL, "out of memory", 1);
        return;
    }
    if (!fresh && !h2o_linklist_is_empty(&h->idle)) {
        struct conn *cn = H2O_STRUCT_FROM_MEMBER(struct conn, hlink, h->idle.prev); /* the most recent */
        idle_unlink(cn);
        h2o_timeout_unlink(&cn->tmo);
        h2o_socket_read_stop(cn->sock);
        attach(r, cn);
        r->reused = 1;
        r->connected = 1;
        r->info.connect_s = now_s() - r->t0;
        send_req(r);
        return;
    }
    if (c->max_host_conns > 0 && h->nconns >= c->max_host_conns) {
        if (!fresh || h2o_linklist_is_empty(&h->idle)) {
            r->state = ST_WAITING;
            h2o_linklist_insert(&h->waiting, &r->wlink);
            return;
        }
        /* a retry over the cap: an idle connection gives way */
        conn_close(H2O_STRUCT_FROM_MEMBER(struct conn, hlink, h->idle.next));
    }
    conn_open(r, h);
}

static void on_resolved(const char *errstr, const struct cdn_addrs *a, void *data)
{
    struct h1req *r = data;
    h1c_t *c = r->c;
    r->rq = NULL;
    enter(c);
    if (errstr != NULL) {
        fail(r, CDN_HTTPC_DNS, strcmp(errstr, "name not found") == 0 ? "could not resolve host: name not found"
                               : strcmp(errstr, "timed out") == 0    ? "could not resolve host: timed out"
                                                                     : "could not resolve host");
    } else {
        r->addrs = *a;
        r->ai = 0;
        go(r, 0);
    }
    leave(c);
}

/* ---- the response ---- */

static void on_read(h2o_socket_t *sock, const char *err);
static void on_written(h2o_socket_t *sock, const char *err);

static void send_req(struct h1req *r)
{
    struct conn *cn = r->conn;
    r->state = ST_RUNNING;
    h2o_iovec_t buf = h2o_iovec_init(r->out, r->outlen);
    cn->writing = 1;
    h2o_socket_write(cn->sock, &buf, 1, on_written);
    if (!r->paused)
        h2o_socket_read_start(cn->sock, on_read);
}

static int iequal(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b);
    return al == bl && strncasecmp(a, b, bl) == 0;
}

/* 1 when the comma-separated list v has token t (case-insensitive). */
static int has_token(const char *v, size_t len, const char *t)
{
    size_t tl = strlen(t), i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, t, tl) == 0)
            return 1;
    }
    return 0;
}

/* 1 when the last coding of a Transfer-Encoding list is chunked. */
static int last_is_chunked(const char *v, size_t len)
{
    size_t e = len;
    while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
        e--;
    size_t s = e;
    while (s > 0 && v[s - 1] != ',')
        s--;
    while (s < e && (v[s] == ' ' || v[s] == '\t'))
        s++;
    return e - s == 7 && strncasecmp(v + s, "chunked", 7) == 0;
}

/* phr's headers as cdn_httpc_headers, obs-fold lines joined to the previous value with a space
 * (as the curl engine does). *scratch is malloc'd when a fold needs it. */
static size_t make_headers(const struct phr_header *ph, size_t n, struct cdn_httpc_header *out, char **scratch,
                           size_t head_len)
{
    size_t k = 0;
    char *p = NULL;
    for (size_t i = 0; i < n; i++) {
        if (ph[i].name == NULL && k > 0) {
            if (*scratch == NULL) {
                if ((*scratch = p = malloc(head_len * 2 + 16)) == NULL)
                    continue;
            }
            struct cdn_httpc_header *o = &out[k - 1];
            if (o->value < *scratch || o->value >= *scratch + head_len * 2 + 16) { /* move it to scratch */
                memcpy(p, o->value, o->value_len);
                o->value = p;
                p += o->value_len;
            }
            *p++ = ' ';
            memcpy(p, ph[i].value, ph[i].value_len);
            p += ph[i].value_len;
            o->value_len += 1 + ph[i].value_len;
            continue;
        }
        if (ph[i].name == NULL)
            continue;
        out[k++] = (struct cdn_httpc_header){ph[i].name, ph[i].name_len, ph[i].value, ph[i].value_len};
    }
    return k;
}

/* Parses the heads in the input: interim ones go to on_info, the final one to on_head. MORE
 * when the final head is in (r->head_done) or more bytes are needed; GONE when r is over. */
static int parse_heads(struct h1req *r)
{
    for (;;) {
        h2o_buffer_t *in = r->conn->sock->input;
        struct phr_header ph[HEADERS_MAX + 1];
        size_t nh = HEADERS_MAX + 1, msglen;
        int minor, status;
        const char *msg;
        int n = phr_parse_response(in->bytes, in->size, &minor, &status, &msg, &msglen, ph, &nh, 0);
        if (n == -2) {
            if (in->size > HEAD_MAX) {
                fail(r, CDN_HTTPC_TOO_LARGE, "response head too large");
                return GONE;
            }
            return MORE;
        }
        if (n == -1) {
            /* too many fields, or not HTTP: count the lines of what looks like a head */
            size_t lines = 0;
            for (size_t i = 0; i < in->size && i < HEAD_MAX; i++)
                lines += in->bytes[i] == '\n';
            if (in->size >= 5 && memcmp(in->bytes, "HTTP/", 5) == 0 && lines > HEADERS_MAX)
                fail(r, CDN_HTTPC_TOO_LARGE, "response head too large");
            else
                fail(r, CDN_HTTPC_PROTOCOL, "invalid response from server");
            return GONE;
        }
        if (n > HEAD_MAX) {
            fail(r, CDN_HTTPC_TOO_LARGE, "response head too large");
            return GONE;
        }
        struct cdn_httpc_header hd[HEADERS_MAX + 1];
        char *scratch = NULL;
        size_t k = make_headers(ph, nh, hd, &scratch, (size_t)n);
        if (status < 200) { /* interim: a proxy forwards all but 100 and 101 */
            if (status != 100 && status != 101 && r->cbs.on_info != NULL) {
                r->in_cb = 1;
                r->cbs.on_info((cdn_httpc_req_t *)r, status, hd, k, r->data);
                r->in_cb = 0;
                if (r->cancelled) {
                    free(scratch);
                    req_free(r);
                    return GONE;
                }
            }
            free(scratch);
            h2o_buffer_consume(&r->conn->sock->input, (size_t)n);
            continue;
        }
        /* the final head: its framing (RFC 9112 6.3) */
        int te = 0, chunked = 0, cl_seen = 0, close = minor == 0;
        uint64_t cl = 0;
        for (size_t i = 0; i < k; i++) {
            if (iequal(hd[i].name, hd[i].name_len, "content-length")) {
                uint64_t v = 0;
                size_t j = 0;
                for (; j < hd[i].value_len && hd[i].value[j] >= '0' && hd[i].value[j] <= '9' && v < (1ULL << 60); j++)
                    v = v * 10 + (uint64_t)(hd[i].value[j] - '0');
                if (j == 0 || j != hd[i].value_len || (cl_seen && v != cl)) {
                    free(scratch);
                    fail(r, CDN_HTTPC_PROTOCOL, "invalid Content-Length from server");
                    return GONE;
                }
                cl = v;
                cl_seen = 1;
            } else if (iequal(hd[i].name, hd[i].name_len, "transfer-encoding")) {
                te = 1;
                chunked = last_is_chunked(hd[i].value, hd[i].value_len);
            } else if (iequal(hd[i].name, hd[i].name_len, "connection")) {
                if (has_token(hd[i].value, hd[i].value_len, "close"))
                    close = 1;
                else if (minor == 0 && has_token(hd[i].value, hd[i].value_len, "keep-alive"))
                    close = 0;
            }
        }
        r->info.status = status;
        r->keep = !close;
        if (r->is_head || status == 204 || status == 304) {
            r->body_mode = BODY_NONE;
        } else if (te) {
            r->body_mode = chunked ? BODY_CHUNKED : BODY_CLOSE;
            r->keep = r->keep && chunked && !cl_seen; /* both: the framing is in doubt, not reused */
        } else if (cl_seen) {
            r->body_mode = BODY_LENGTH;
            r->left = cl;
            if (cl > r->max_body) { /* refused before any body, as the curl engine: no on_head */
                free(scratch);
                fail(r, CDN_HTTPC_TOO_LARGE, "response too large");
                return GONE;
            }
        } else {
            r->body_mode = BODY_CLOSE;
        }
        if (r->body_mode == BODY_CLOSE)
            r->keep = 0;
        r->head_done = 1;
        int rv = 0;
        if (r->cbs.on_head != NULL) {
            r->in_cb = 1;
            rv = r->cbs.on_head((cdn_httpc_req_t *)r, status, minor == 0 ? 10 : 11, hd, k, r->data);
            r->in_cb = 0;
        }
        free(scratch);
        if (r->cancelled) {
            req_free(r);
            return GONE;
        }
        if (rv != 0) {
            fail(r, CDN_HTTPC_ABORTED, "aborted");
            return GONE;
        }
        h2o_buffer_consume(&r->conn->sock->input, (size_t)n);
        return MORE;
    }
}

/* The chunked framing in buf[0..len), without changing it. Returns 1 with a piece of body at
 * buf[*skip], *n bytes (consume *skip + *n after using it); 0 when more bytes are needed, 2 at
 * the end of the message (consume *skip either way); -1 on bad framing. Sizes are hex digits
 * (at most 15), extensions after ';' are skipped, lines end with CRLF or LF; trailers skipped. */
enum { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END, CH_TRAILER, CH_TRAILER_LINE, CH_DONE };
int h1c_chunk_next(struct h1c_chunked *d, const char *buf, size_t len, size_t *skip, size_t *n)
{
    size_t i = 0;
    while (i < len) {
        char ch = buf[i];
        switch (d->st) {
        case CH_SIZE: {
            int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
            if (v >= 0) {
                if (++d->digits > 15)
                    return -1;
                d->left = d->left * 16 + (uint64_t)v;
                i++;
                break;
            }
            if (d->digits == 0)
                return -1;
            if (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
                d->st = CH_EXT;
                break; /* CH_EXT looks at it */
            }
            return -1;
        }
        case CH_EXT:
            i++;
            if (ch == '\n') {
                d->digits = 0;
                d->st = d->left > 0 ? CH_DATA : CH_TRAILER;
            } else if (ch != '\r' && (unsigned char)ch < 0x20 && ch != '\t') {
                return -1;
            }
            break;
        case CH_DATA: {
            size_t take = len - i < d->left ? len - i : (size_t)d->left;
            *skip = i;
            *n = take;
            d->left -= take;
            if (d->left == 0)
                d->st = CH_DATA_END;
            return 1;
        }
        case CH_DATA_END: /* CRLF or LF after the data */
            i++;
            if (ch == '\n')
                d->st = CH_SIZE;
            else if (ch != '\r')
                return -1;
            break;
        case CH_TRAILER: /* at the start of a trailer line: an empty one ends the message */
            i++;
            if (ch == '\n') {
                d->st = CH_DONE;
                *skip = i;
                return 2;
            }
            if (ch != '\r')
                d->st = CH_TRAILER_LINE;
            break;
        case CH_TRAILER_LINE:
            i++;
            if (ch == '\n')
                d->st = CH_TRAILER;
            break;
        case CH_DONE:
            *skip = i;
            return 2;
        }
    }
    *skip = i;
    return d->st == CH_DONE ? 2 : 0;
}

/* One piece of body to the caller (or the fetch buffer). MORE, or GONE when r is over. */
static int deliver(struct h1req *r, const char *p, size_t n)
{
    if (r->body_bytes + n > r->max_body) {
        fail(r, CDN_HTTPC_TOO_LARGE, "response too large");
        return GONE;
    }
    r->body_bytes += n;
    if (r->fetch_cb != NULL) {
        if (r->flen + n > r->fcap) {
            size_t cap = r->fcap == 0 ? 4096 : r->fcap;
            while (cap < r->flen + n)
                cap *= 2;
            char *nb = realloc(r->fbuf, cap);
            if (nb == NULL) {
                fail(r, CDN_HTTPC_ABORTED, "aborted");
                return GONE;
            }
            r->fbuf = nb;
            r->fcap = cap;
        }
        memcpy(r->fbuf + r->flen, p, n);
        r->flen += n;
        return MORE;
    }
    if (r->cbs.on_body == NULL)
        return MORE;
    r->in_cb = 1;
    int rv = r->cbs.on_body((cdn_httpc_req_t *)r, p, n, r->data);
    r->in_cb = 0;
    if (r->cancelled) {
        req_free(r);
        return GONE;
    }
    if (rv != 0) {
        fail(r, CDN_HTTPC_ABORTED, "aborted");
        return GONE;
    }
    return MORE;
}

/* The response is complete: the connection goes back to the pool when it is clean. */
static void complete(struct h1req *r)
{
    struct conn *cn = r->conn;
    int keep = r->keep && cn->sock->input->size == 0;
    r->conn = NULL;
    cn->r = NULL;
    if (keep)
        conn_release(cn);
    else
        conn_close(cn);
    finish(r, CDN_HTTPC_OK, NULL);
}

/* Heads, then body from the input buffer, until it is empty, r is paused, or r is over. */
static int process(struct h1req *r)
{
    if (r->paused)
        return MORE;
    if (!r->head_done) {
        if (parse_heads(r) == GONE)
            return GONE;
        if (!r->head_done)
            return MORE;
    }
    r->delivering = 1;
    for (;;) {
        h2o_buffer_t *in;
        int done = r->body_mode == BODY_NONE || (r->body_mode == BODY_LENGTH && r->left == 0) ||
                   (r->body_mode == BODY_CHUNKED && r->ch.st == CH_DONE);
        if (done) {
            if (r->paused)
                break;
            r->delivering = 0;
            complete(r);
            return GONE;
        }
        if (r->paused || (in = r->conn->sock->input)->size == 0)
            break;
        if (r->body_mode == BODY_LENGTH || r->body_mode == BODY_CLOSE) {
            size_t n = r->body_mode == BODY_LENGTH && r->left < in->size ? (size_t)r->left : in->size;
            if (deliver(r, in->bytes, n) == GONE)
                return GONE;
            if (r->body_mode == BODY_LENGTH)
                r->left -= n;
            h2o_buffer_consume(&r->conn->sock->input, n);
        } else {
            size_t skip = 0, n = 0;
            int cr = h1c_chunk_next(&r->ch, in->bytes, in->size, &skip, &n);
            if (cr < 0) {
                r->delivering = 0;
                fail(r, CDN_HTTPC_PROTOCOL, "invalid chunked encoding from server");
                return GONE;
            }
            h2o_buffer_consume(&r->conn->sock->input, skip);
            if (cr == 1) {
                if (deliver(r, r->conn->sock->input->bytes, n) == GONE)
                    return GONE;
                h2o_buffer_consume(&r->conn->sock->input, n);
            } else if (cr == 0) {
                break;
            }
        }
    }
    r->delivering = 0;
    if (r->paused && r->conn != NULL)
        h2o_socket_read_stop(r->conn->sock);
    return MORE;
}

/* Sends r again on a new connection: its kept-alive one was dead before any byte came back. */
static void retry(struct h1req *r)
{
    conn_close(r->conn);
    r->retried = 1;
    r->reused = 0;
    r->connected = 0;
    go(r, 1);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    struct conn *cn = sock->data;
    h1c_t *c = cn->c;
    struct h1req *r = cn->r;
    enter(c);
    if (r == NULL) {
        conn_close(cn);
    } else if (err == NULL) {
        if (!r->rx && sock->input->size > 0) {
            r->rx = 1;
            r->info.ttfb_s = now_s() - r->t0;
        }
        process(r);
    } else if (!r->rx && r->reused && !r->retried) {
        retry(r);
    } else if (r->head_done && r->body_mode == BODY_CLOSE && err == h2o_socket_error_closed) {
        r->keep = 0;
        complete(r);
    } else if (!r->head_done && r->rx && (sock->input->size < 5 ? memcmp(sock->input->bytes, "HTTP/", sock->input->size)
                                                                : memcmp(sock->input->bytes, "HTTP/", 5)) != 0) {
        fail(r, CDN_HTTPC_PROTOCOL, "invalid response from server");
    } else if (!r->head_done) {
        fail(r, CDN_HTTPC_RESET, r->rx ? "connection closed in the response head"
                                 : err == h2o_socket_error_closed ? "empty reply from server"
                                                                  : "connection reset by peer");
    } else {
        fail(r, CDN_HTTPC_RESET, "connection closed before the response was complete");
    }
    leave(c);
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    struct conn *cn = sock->data;
    h1c_t *c = cn->c;
    struct h1req *r = cn->r;
    enter(c);
    cn->writing = 0;
    if (r == NULL) {
        if (cn->release_after_write) {
            cn->release_after_write = 0;
            if (err == NULL)
                conn_release(cn);
            else
                conn_close(cn);
        }
    } else if (err != NULL && !r->rx) { /* a response that came already is read to its end */
        if (r->reused && !r->retried)
            retry(r);
        else
            fail(r, CDN_HTTPC_RESET, "send failure");
    }
    leave(c);
}

/* ---- the request ---- */

/* 1 when a path has a dot segment ("/./", "/../", or at the end): curl_url() removes them, so such
 * URLs stay with curl to be sent the same way. */
static int has_dot_segment(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '/' || p[i + 1] != '.')
            continue;
        size_t j = i + 2;
        if (j < n && p[j] == '.')
            j++;
        if (j == n || p[j] == '/')
            return 1;
    }
    return 0;
}

/* The request target of a URL curl's quick split accepted: what follows the authority, without
 * the fragment; "/" when empty. */
static void url_target(const char *url, const char **t, size_t *tl)
{
    const char *p = strstr(url, "://");
    p = p != NULL ? p + 3 : url;
    p += strcspn(p, "/?#");
    *t = p;
    *tl = strcspn(p, "#");
}

int h1c_accepts(const struct cdn_httpc_request *req)
{
    if (req->body != NULL || (req->method != NULL && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0))
        return 0;
    if (req->connect_to != NULL) { /* only "ip:port" / "[ip6]:port" */
        struct sockaddr_storage ss;
        char ip[64];
        const char *colon = strrchr(req->connect_to, ':');
        size_t l = colon != NULL ? (size_t)(colon - req->connect_to) : 0;
        if (l == 0 || l >= sizeof(ip) || strtol(colon + 1, NULL, 10) <= 0)
            return 0;
        memcpy(ip, req->connect_to, l);
        ip[l] = '\0';
        if (ip[0] == '[' && l > 2 && ip[l - 1] == ']') {
            ip[l - 1] = '\0';
            if (inet_pton(AF_INET6, ip + 1, &((struct sockaddr_in6 *)&ss)->sin6_addr) != 1)
                return 0;
        } else if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) != 1) {
            return 0;
        }
    }
    const char *t;
    size_t tl;
    url_target(req->url, &t, &tl);
    size_t pl = strcspn(t, "?#");
    return !has_dot_segment(t, pl < tl ? pl : tl);
}

/* "ip:port" or "[ip6]:port" into a one-address list (h1c_accepts checked it). */
static int parse_connect_to(const char *s, struct cdn_addrs *a, long *port)
{
    char ip[64];
    const char *colon = strrchr(s, ':');
    size_t l = (size_t)(colon - s);
    memcpy(ip, s, l);
    ip[l] = '\0';
    memset(a, 0, sizeof(*a));
    a->n = 1;
    *port = strtol(colon + 1, NULL, 10);
    if (ip[0] == '[') {
        ip[l - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->addr[0];
        s6->sin6_family = AF_INET6;
        return inet_pton(AF_INET6, ip + 1, &s6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->addr[0];
    s4->sin_family = AF_INET;
    return inet_pton(AF_INET, ip, &s4->sin_addr) == 1 ? 0 : -1;
}

/* An IP literal host ("1.2.3.4" or "[::1]") into a one-address list; -1 when it is a name. */
static int literal_addr(const char *host, struct cdn_addrs *a)
{
    memset(a, 0, sizeof(*a));
    a->n = 1;
    size_t l = strlen(host);
    if (l > 2 && host[0] == '[' && host[l - 1] == ']' && l < 64) {
        char tmp[64];
        memcpy(tmp, host + 1, l - 2);
        tmp[l - 2] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->addr[0];
        s6->sin6_family = AF_INET6;
        return inet_pton(AF_INET6, tmp, &s6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->addr[0];
    s4->sin_family = AF_INET;
    return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -1;
}

/* The request head, the way libcurl 7.88.1 writes it for these requests: the request line, Host
 * (the URL's, ":port" unless the default; a given "Host: v" takes its place, "Host:" drops it),
 * "Accept: * / *" unless an Accept line is given, then the given lines in their order: "Name:" with
 * nothing after it removes a header curl would add and is not sent, "Name;" sends "Name:" empty. */
static char *build_head(const char *method, const char *url, const char *host, long port, int explicit_port,
                        const char *const *lines, size_t *outlen)
{
    const char *t;
    size_t tl;
    url_target(url, &t, &tl);
    size_t cap = strlen(method) + tl + strlen(host) + 64;
    const char *host_line = NULL;
    int host_off = 0, accept_given = 0;
    for (size_t i = 0; lines != NULL && lines[i] != NULL; i++) {
        size_t nl = strcspn(lines[i], ":;");
        cap += strlen(lines[i]) + 4;
        if (nl == 4 && strncasecmp(lines[i], "host", 4) == 0 && lines[i][4] == ':') {
            const char *v = lines[i] + 5;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v == '\0')
                host_off = 1;
            else
                host_line = lines[i];
        }
        if (nl == 6 && strncasecmp(lines[i], "accept", 6) == 0 && (lines[i][6] == ':' || lines[i][6] == ';'))
            accept_given = 1;
    }
    char *out = malloc(cap), *p = out;
    if (out == NULL)
        return NULL;
    /* memcpy, not sprintf: this runs for every request (printf's parsing was ~1.5% of shop-lb) */
    size_t ml = strlen(method);
    memcpy(p, method, ml);
    p += ml;
    *p++ = ' ';
    if (tl == 0 || t[0] == '?')
        *p++ = '/';
    memcpy(p, t, tl);
    p += tl;
    memcpy(p, " HTTP/1.1\r\n", 11);
    p += 11;
    if (host_line != NULL) {
        p = stpcpy(p, host_line);
        p = stpcpy(p, "\r\n");
    } else if (!host_off) {
        p = stpcpy(stpcpy(p, "Host: "), host);
        if (explicit_port) {
            *p++ = ':';
            p += cdn_fmt_u64(p, (unsigned long)port);
        }
        p = stpcpy(p, "\r\n");
    }
    if (!accept_given) {
        memcpy(p, "Accept: */*\r\n", 13);
        p += 13;
    }
    for (size_t i = 0; lines != NULL && lines[i] != NULL; i++) {
        const char *l = lines[i];
        size_t nl = strcspn(l, ":;");
        if (l[nl] == '\0')
            continue; /* neither: curl sends nothing */
        if (nl == 4 && strncasecmp(l, "host", 4) == 0 && l[4] == ':')
            continue; /* placed above */
        if (l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v == '\0')
                continue; /* "Name:" removes */
            size_t ll = strlen(l);
            memcpy(p, l, ll);
            p += ll;
        } else { /* "Name;" (only blanks after): sent empty */
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v != '\0')
                continue;
            memcpy(p, l, nl);
            p += nl;
            *p++ = ':';
        }
        *p++ = '\r';
        *p++ = '\n';
    }
    *p++ = '\r';
    *p++ = '\n';
    *outlen = (size_t)(p - out);
    return out;
}

cdn_httpc_req_t *h1c_start(h1c_t *c, const struct cdn_httpc_request *req, const char *host, long port,
                           const struct cdn_httpc_cbs *cbs, cdn_httpc_fetch_cb fetch_cb, void *data)
{
    if (c->closing || strlen(host) >= sizeof(((struct h1req *)0)->host))
        return NULL;
    struct h1req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    const char *method = req->method != NULL ? req->method : "GET";
    if ((r->out = build_head(method, req->url, host, port, port != 80, req->headers,
                             &r->outlen)) == NULL) {
        free(r);
        return NULL;
    }
    r->magic = H1C_REQ_MAGIC;
    r->c = c;
    r->cbs = *cbs;
    r->fetch_cb = fetch_cb;
    r->data = data;
    strcpy(r->host, host);
    r->port = port;
    r->is_head = strcmp(method, "HEAD") == 0;
    r->max_body = c->max_body;
    r->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms;
    r->t0 = now_s();
    h2o_linklist_insert(&c->reqs, &r->link);
    c->nreqs++;
    enter(c);
    r->starting = 1;
    if (req->connect_to != NULL) {
        long to_port;
        if (parse_connect_to(req->connect_to, &r->addrs, &to_port) == 0) {
            r->port = to_port;
            go(r, 0);
        } else {
            fail(r, CDN_HTTPC_CONNECT, "bad connect-to address");
        }
    } else if (literal_addr(host, &r->addrs) == 0) {
        go(r, 0);
    } else if (c->resolver != NULL) {
        r->state = ST_RESOLVING;
        cdn_resolve_t *q = cdn_resolver_lookup(c->resolver, host, on_resolved, r);
        if (r->state == ST_RESOLVING)
            r->rq = q;
    } else if (strcasecmp(host, "localhost") == 0) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&r->addrs.addr[0];
        memset(&r->addrs, 0, sizeof(r->addrs));
        r->addrs.n = 1;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        go(r, 0);
    } else {
        fail(r, CDN_HTTPC_DNS, "could not resolve host: no resolver");
    }
    r->starting = 0;
    leave(c);
    return (cdn_httpc_req_t *)r;
}

void h1c_cancel(cdn_httpc_req_t *hr)
{
    struct h1req *r = (struct h1req *)hr;
    if (r->cancelled || r->state == ST_DONE)
        return; /* inside its own on_done: freed on return */
    h1c_t *c = r->c;
    enter(c);
    r->cancelled = 1;
    detach(r);
    if (!r->in_cb)
        req_free(r);
    leave(c);
}

void h1c_pause(cdn_httpc_req_t *hr, int paused)
{
    struct h1req *r = (struct h1req *)hr;
    if (r->cancelled || r->state == ST_DONE || (int)r->paused == !!paused)
        return;
    h1c_t *c = r->c;
    r->paused = !!paused;
    if (r->conn == NULL || r->state != ST_RUNNING)
        return; /* send_req starts reading unless paused */
    if (paused) {
        h2o_socket_read_stop(r->conn->sock);
        return;
    }
    h2o_socket_read_start(r->conn->sock, on_read);
    if (r->in_cb || r->delivering)
        return; /* the delivery loop on the stack goes on */
    enter(c);
    process(r); /* what is buffered, at once */
    leave(c);
}

const struct cdn_httpc_info *h1c_info(const cdn_httpc_req_t *hr)
{
    return &((const struct h1req *)hr)->info;
}

size_t h1c_inflight(const h1c_t *c)
{
    return c->nreqs;
}

/* ---- the client ---- */

h1c_t *h1c_new(h2o_evloop_t *loop, const struct h1c_opts *o)
{
    h1c_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->resolver = o->resolver;
    c->connect_timeout_ms = o->connect_timeout_ms;
    c->timeout_ms = o->timeout_ms;
    c->max_body = o->max_body;
    c->max_host_conns = o->max_host_conns > 0 ? (size_t)o->max_host_conns : 0;
    c->max_idle = o->max_idle_conns > 0 ? (size_t)o->max_idle_conns : 256;
    if (o->local_ip != NULL) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&c->local;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->local;
        if (inet_pton(AF_INET, o->local_ip, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            c->local_len = sizeof(*s4);
        } else if (inet_pton(AF_INET6, o->local_ip, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            c->local_len = sizeof(*s6);
        }
    }
    if ((c->kick = cdn_timer_new(loop, on_kick, c)) == NULL) {
        free(c);
        return NULL;
    }
    h2o_timeout_init(loop, &c->connect_tq, c->connect_timeout_ms);
    h2o_timeout_init(loop, &c->idle_tq, IDLE_MAX_MS);
    h2o_linklist_init_anchor(&c->reqs);
    h2o_linklist_init_anchor(&c->conns);
    h2o_linklist_init_anchor(&c->idle_lru);
    c->failed_tail = &c->failed;
    c->inbuf = (h2o_buffer_prototype_t){{INBUF_KEEP}, {INBUF_SIZE}};
    return c;
}

static void destroy(h1c_t *c)
{
    c->depth = 1; /* nothing below calls back */
    while (!h2o_linklist_is_empty(&c->reqs)) {
        struct h1req *r = H2O_STRUCT_FROM_MEMBER(struct h1req, link, c->reqs.next);
        r->cancelled = 1;
        detach(r);
        req_free(r);
    }
    while (c->failed != NULL) {
        struct h1req *r = c->failed;
        c->failed = r->qnext;
        req_free(r);
    }
    while (!h2o_linklist_is_empty(&c->conns))
        conn_close(H2O_STRUCT_FROM_MEMBER(struct conn, clink, c->conns.next));
    while (c->hosts != NULL) {
        struct host *h = c->hosts;
        c->hosts = h->next;
        free(h);
    }
    while (c->tqs != NULL) {
        struct tq *q = c->tqs;
        c->tqs = q->next;
        timeout_drain_dispose(c->loop, &q->t);
        free(q);
    }
    timeout_drain_dispose(c->loop, &c->connect_tq);
    timeout_drain_dispose(c->loop, &c->idle_tq);
    cdn_timer_free(c->kick);
    /* every connection is closed (their buffers disposed): the recycled ones go */
    while (c->inbuf.allocator.cnt > 0)
        free(h2o_mem_alloc_recycle(&c->inbuf.allocator, 0));
    free(c);
}

void h1c_free(h1c_t *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    /* no callback from here on: requests in one of their own callbacks are freed by its caller */
    for (h2o_linklist_t *l = c->reqs.next, *next; l != &c->reqs; l = next) {
        next = l->next;
        struct h1req *r = H2O_STRUCT_FROM_MEMBER(struct h1req, link, l);
        r->cancelled = 1;
        detach(r);
        if (!r->in_cb)
            req_free(r);
    }
    if (c->depth == 0)
        destroy(c);
}
