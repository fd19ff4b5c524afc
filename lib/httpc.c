/* lib/httpc.c - the asynchronous HTTP client: libcurl's multi-socket API on an h2o evloop.
 *
 * Rules:
 * - One curl multi per client (per loop). curl's sockets are watched with cdn_watch, its timer is
 *   one cdn_timer. Easy handles are pooled; connections stay in the multi's cache, so keep-alive
 *   and HTTP/2 multiplexing work across requests. A pooled handle keeps the client's constant
 *   options; a plain GET that completed leaves nothing else behind, so the next plain GET only sets
 *   the per-request options (every one of them, always). Anything else (other methods, bodies,
 *   errors, cancels, pauses) is curl_easy_reset before the handle's next use.
 * - Names never reach curl's (threaded) resolver: cdn_resolver answers, CURLOPT_RESOLVE hands the
 *   addresses to curl ("localhost" without a resolver is pinned to 127.0.0.1 the same way).
 * - curl refuses add/remove/socket_action from inside its callbacks (CURLM_RECURSIVE_API_CALL),
 *   and user callbacks run inside curl's. So: while in_curl > 0, starts are queued (to_add) and
 *   cancels only mark the request (zombie); the outermost leave() drains finished transfers, then
 *   removes zombies and adds queued requests. A cdn_httpc_free() inside a callback is finished there too.
 * - A request's life: RESOLVING -> (QUEUED) -> RUNNING -> done (on_done once, then freed). Errors
 *   found while cdn_httpc_start() runs are delivered from a 0 ms timer, never before it returns.
 * - Every req crossing curl (CURLOPT_PRIVATE) carries a magic number, checked on entry.
 * Why one file of 1.2k lines: the re-entrancy rules above (in_curl, zombies, the queues) hold for
 * every function here at once; split across files they would have to be restated and kept in
 * step in each. The parts that need no such rule (URL split, header packing) are small. */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cdn/httpc.h"
#include "cdn/loop.h"
#include "httpc_h1.h"

#define HTTPC_MAGIC 0x48545043u /* "HTPC" */
#define REQ_MAGIC 0x48545251u   /* "HTRQ" */
#define POOL_MAX 256            /* idle easy handles kept */
#define HEAD_MAX (64 * 1024)    /* bytes of one response head */
#define HEADERS_MAX 128
#define RECV_BUF (128 * 1024)    /* CURLOPT_BUFFERSIZE (curl's default 16 KiB): fewer reads and on_body calls */

enum req_state { ST_RESOLVING, ST_QUEUED, ST_RUNNING, ST_FAILED, ST_DONE };

/* One watch per socket curl has open. curl REMOVEs an idle keep-alive socket and re-ADDs it on
 * reuse; re-creating the watch each time cost a dup, two epoll_ctl and a close per reuse (STACK.md
 * section 2), so a REMOVEd socket keeps its watch with no events ("kept") until curl closes the fd
 * through on_curl_close (CURLOPT_CLOSESOCKETFUNCTION), found again by fd in c->byfd. */
struct sockctx {
    struct sockctx *prev, *next;
    cdn_watch_t *w;
    cdn_httpc_t *c;
    int kept;
};

struct hdr_off {
    uint32_t name, name_len, value, value_len;
};

struct cdn_httpc_req {
    uint32_t magic;
    cdn_httpc_t *c;
    cdn_httpc_req_t *prev, *next; /* in c->reqs (every live request) */
    cdn_httpc_req_t *qnext;       /* in c->to_add / c->failed */
    enum req_state state;
    CURL *easy;
    struct cdn_httpc_cbs cbs;
    void *data;
    cdn_resolve_t *rq;
    char *host;             /* for CURLOPT_RESOLVE */
    long port;
    struct curl_slist *headers, *resolve, *connect_to; /* headers: headers_pack(), one block */
    const char *errstr;     /* set when a failure is known before curl's result */
    unsigned cancelled : 1, head_sent : 1, aborted : 1, too_large : 1, head_too_large : 1, in_cb : 1,
        paused : 1, is_head : 1, plain : 1, clean : 1;
    /* the current response head */
    char *hbuf;
    size_t hlen, hcap;
    struct hdr_off hoff[HEADERS_MAX];
    size_t nh;
    int status, version;
    uint64_t body_bytes, max_body;
    /* cdn_httpc_fetch */
    cdn_httpc_fetch_cb fetch_cb;
    char *fbuf;
    size_t flen, fcap;
    struct cdn_httpc_info info;
    char errbuf[CURL_ERROR_SIZE];
    /* the body of a request that is not idempotent, handed to curl by read_body: with no seek
     * callback curl cannot rewind it, so it never sends the request a second time */
    char *once;
    size_t once_len, once_off;
};

struct cdn_httpc {
    uint32_t magic;
    h2o_evloop_t *loop;
    CURLM *multi;
    cdn_timer_t *timer; /* curl's timeout */
    cdn_timer_t *kick;  /* delivers failures found inside cdn_httpc_start() */
    cdn_resolver_t *resolver;
    char *interface;    /* "host!IP" */
    uint64_t connect_timeout_ms, timeout_ms, max_body;
    int http2, insecure_tls;
    int verbose; /* CDN_HTTPC_VERBOSE set: curl's trace on stderr */
    struct pooled {
        CURL *e;
        int plain; /* client options set, last used by a plain GET that completed */
    } pool[POOL_MAX];
    size_t npool;
    cdn_httpc_req_t *reqs;
    size_t nreqs;
    cdn_httpc_req_t *to_add, **to_add_tail;
    cdn_httpc_req_t *failed, **failed_tail;
    struct sockctx *socks;
    struct sockctx **byfd; /* the watch of each fd curl has open; nbyfd entries */
    size_t nbyfd;
    int in_curl; /* inside a curl call (its callbacks, hence user callbacks, may run) */
    int depth;   /* inside our own dispatch */
    int closing;
    h1c_t *h1; /* the HTTP/1.1 engine (opts.h1_engine), or NULL */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void leave(cdn_httpc_t *c);

static void enter(cdn_httpc_t *c)
{
    c->depth++;
}

/* ---- request bookkeeping ---- */

static void req_unlink(cdn_httpc_t *c, cdn_httpc_req_t *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    c->nreqs--;
}

static void queue_remove(cdn_httpc_req_t **head, cdn_httpc_req_t ***tail, cdn_httpc_req_t *r)
{
    for (cdn_httpc_req_t **p = head; *p != NULL; p = &(*p)->qnext) {
        if (*p == r) {
            *p = r->qnext;
            if (*tail == &r->qnext)
                *tail = p;
            r->qnext = NULL;
            return;
        }
    }
}

static void queue_push(cdn_httpc_req_t ***tail, cdn_httpc_req_t *r)
{
    r->qnext = NULL;
    **tail = r;
    *tail = &r->qnext;
}

static void easy_release(cdn_httpc_t *c, CURL *e, int plain)
{
    if (c->npool < POOL_MAX)
        c->pool[c->npool++] = (struct pooled){e, plain};
    else
        curl_easy_cleanup(e);
}

/* Frees the request; its easy handle must already be out of the multi. */
static void req_free(cdn_httpc_req_t *r)
{
    cdn_httpc_t *c = r->c;
    req_unlink(c, r);
    if (r->rq != NULL)
        cdn_resolve_cancel(r->rq);
    if (r->easy != NULL)
        easy_release(c, r->easy, r->plain && r->clean);
    free(r->headers); /* headers_pack: one block */
    curl_slist_free_all(r->resolve);
    curl_slist_free_all(r->connect_to);
    free(r->host);
    free(r->hbuf);
    free(r->fbuf);
    free(r->once);
    r->magic = 0;
    free(r);
}

/* ---- response head ---- */

static int hbuf_append(cdn_httpc_req_t *r, const char *p, size_t n)
{
    if (r->hlen + n > HEAD_MAX)
        return -1;
    if (r->hlen + n > r->hcap) {
        size_t cap = r->hcap == 0 ? 1024 : r->hcap;
        while (cap < r->hlen + n)
            cap *= 2;
        char *nb = realloc(r->hbuf, cap);
        if (nb == NULL)
            return -1;
        r->hbuf = nb;
        r->hcap = cap;
    }
    memcpy(r->hbuf + r->hlen, p, n);
    r->hlen += n;
    return 0;
}

static size_t trim_len(const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return n;
}

/* "HTTP/1.1 200 OK" / "HTTP/2 204": 0, or -1 when it is not a status line. */
static int parse_status_line(const char *p, size_t n, int *status, int *version)
{
    if (n < 8 || memcmp(p, "HTTP/", 5) != 0)
        return -1;
    size_t i = 5;
    int major = 0, minor = 0;
    if (p[i] < '0' || p[i] > '9')
        return -1;
    major = p[i++] - '0';
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || p[i] < '0' || p[i] > '9')
            return -1;
        minor = p[i++] - '0';
    }
    if (i >= n || p[i] != ' ')
        return -1;
    while (i < n && p[i] == ' ')
        i++;
    if (i + 3 > n)
        return -1;
    int st = 0;
    for (int k = 0; k < 3; k++) {
        if (p[i + k] < '0' || p[i + k] > '9')
            return -1;
        st = st * 10 + (p[i + k] - '0');
    }
    *status = st;
    *version = major * 10 + minor;
    return 0;
}

/* Delivers the collected head; returns the on_head verdict (non-zero aborts). */
static int deliver_head(cdn_httpc_req_t *r)
{
    struct cdn_httpc_header h[HEADERS_MAX];
    r->head_sent = 1;
    r->info.status = r->status;
    for (size_t i = 0; i < r->nh; i++) {
        h[i].name = r->hbuf + r->hoff[i].name;
        h[i].name_len = r->hoff[i].name_len;
        h[i].value = r->hbuf + r->hoff[i].value;
        h[i].value_len = r->hoff[i].value_len;
        /* an announced length above the cap fails now, before any body (HEAD and 304 have none) */
        if (!r->is_head && r->status != 304 && r->status != 204 && h[i].name_len == 14 && strncasecmp(h[i].name, "content-length", 14) == 0) {
            char num[32];
            size_t l = h[i].value_len < sizeof(num) - 1 ? h[i].value_len : sizeof(num) - 1;
            memcpy(num, h[i].value, l);
            num[l] = '\0';
            if (strtoull(num, NULL, 10) > r->max_body) {
                r->too_large = 1;
                return 1;
            }
        }
    }
    if (r->cbs.on_head == NULL)
        return 0;
    r->in_cb = 1;
    int rv = r->cbs.on_head(r, r->status, r->version, h, r->nh, r->data);
    r->in_cb = 0;
    return rv;
}

static size_t on_curl_header(char *p, size_t size, size_t nitems, void *arg)
{
    cdn_httpc_req_t *r = arg;
    assert(r->magic == REQ_MAGIC);
    size_t n = size * nitems;
    if (r->cancelled || r->aborted)
        return 0;
    if (r->head_sent)
        return n; /* trailers: not delivered */
    size_t tl = trim_len(p, n);
    int st, ver;
    if (parse_status_line(p, tl, &st, &ver) == 0) { /* a new block: 1xx before, or the first */
        r->status = st;
        r->version = ver;
        r->hlen = 0;
        r->nh = 0;
        return n;
    }
    if (tl == 0) { /* end of a block */
        if (r->status >= 100 && r->status < 200) {
            /* interim: the real head follows; a proxy forwards all but the 100 it asked for */
            if (r->cbs.on_info != NULL && r->status != 100 && r->status != 101) {
                struct cdn_httpc_header h[HEADERS_MAX];
                for (size_t i = 0; i < r->nh; i++)
                    h[i] = (struct cdn_httpc_header){r->hbuf + r->hoff[i].name, r->hoff[i].name_len,
                                                     r->hbuf + r->hoff[i].value, r->hoff[i].value_len};
                r->in_cb = 1;
                r->cbs.on_info(r, r->status, h, r->nh, r->data);
                r->in_cb = 0;
                if (r->cancelled)
                    return 0;
            }
            return n;
        }
        if (deliver_head(r) != 0) {
            if (!r->too_large)
                r->aborted = 1;
            return 0;
        }
        return r->cancelled ? 0 : n;
    }
    if ((p[0] == ' ' || p[0] == '\t') && r->nh > 0) { /* obs-fold: continue the last value */
        size_t s = 0;
        while (s < tl && (p[s] == ' ' || p[s] == '\t'))
            s++;
        struct hdr_off *o = &r->hoff[r->nh - 1];
        if (o->value + o->value_len != r->hlen || hbuf_append(r, " ", 1) != 0 || hbuf_append(r, p + s, tl - s) != 0)
            goto TooLarge;
        o->value_len += 1 + (uint32_t)(tl - s);
        return n;
    }
    const char *colon = memchr(p, ':', tl);
    if (colon == NULL || colon == p)
        return n; /* not a header line; curl passes only valid ones, so ignore */
    if (r->nh == HEADERS_MAX)
        goto TooLarge;
    size_t nl = (size_t)(colon - p), vs = nl + 1;
    while (vs < tl && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    struct hdr_off *o = &r->hoff[r->nh];
    o->name = (uint32_t)r->hlen;
    o->name_len = (uint32_t)nl;
    if (hbuf_append(r, p, nl) != 0)
        goto TooLarge;
    o->value = (uint32_t)r->hlen;
    o->value_len = (uint32_t)(tl - vs);
    if (hbuf_append(r, p + vs, tl - vs) != 0)
        goto TooLarge;
    r->nh++;
    return n;
TooLarge:
    r->head_too_large = 1;
    return 0;
}

static size_t on_curl_write(char *p, size_t size, size_t nmemb, void *arg)
{
    cdn_httpc_req_t *r = arg;
    assert(r->magic == REQ_MAGIC);
    size_t n = size * nmemb;
    if (r->cancelled || r->aborted)
        return 0;
    /* paused inside on_body: curl 7.88.1 still hands out the rest of its buffer in 16 KiB calls;
     * CURL_WRITEFUNC_PAUSE makes it keep them for the resume */
    if (r->paused)
        return CURL_WRITEFUNC_PAUSE;
    if (!r->head_sent && deliver_head(r) != 0) {
        if (!r->too_large)
            r->aborted = 1;
        return 0;
    }
    if (r->body_bytes + n > r->max_body) {
        r->too_large = 1;
        return 0;
    }
    r->body_bytes += n;
    if (r->cbs.on_body != NULL) {
        r->in_cb = 1;
        int rv = r->cbs.on_body(r, p, n, r->data);
        r->in_cb = 0;
        if (rv != 0) {
            r->aborted = 1;
            return 0;
        }
    }
    return r->cancelled ? 0 : n;
}

/* ---- curl on the loop ---- */

static void on_curl_sock_event(cdn_watch_t *w, int fd, int events, void *data)
{
    struct sockctx *sc = data;
    cdn_httpc_t *c = sc->c; /* sc may be freed by the REMOVE inside socket_action */
    int running;
    assert(c->magic == HTTPC_MAGIC);
    enter(c);
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd,
                             ((events & CDN_WATCH_READ) ? CURL_CSELECT_IN : 0) |
                                 ((events & CDN_WATCH_WRITE) ? CURL_CSELECT_OUT : 0),
                             &running);
    c->in_curl--;
    leave(c);
}

/* Unlinks a socket's context and frees it with its watch. */
static void sock_free(cdn_httpc_t *c, struct sockctx *sc)
{
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        c->socks = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    cdn_watch_free(sc->w);
    free(sc);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    cdn_httpc_t *c = userp;
    struct sockctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc != NULL && s >= 0 && (size_t)s < c->nbyfd && c->byfd[s] == sc) {
            cdn_watch_set(sc->w, 0); /* curl may reuse it: freed when curl closes it */
            sc->kept = 1;
            curl_multi_assign(c->multi, s, NULL);
            return 0;
        }
        if (sc != NULL) {
            sock_free(c, sc);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    if (sc == NULL && s >= 0 && (size_t)s < c->nbyfd && c->byfd[s] != NULL) {
        sc = c->byfd[s];
        sc->kept = 0;
        curl_multi_assign(c->multi, s, sc);
    }
    if (sc == NULL) {
        if (s >= 0 && (size_t)s >= c->nbyfd) {
            size_t n = c->nbyfd ? c->nbyfd : 64;
            while (n <= (size_t)s) n *= 2;
            struct sockctx **b = realloc(c->byfd, n * sizeof(*b));
            if (b == NULL)
                return -1;
            memset(b + c->nbyfd, 0, (n - c->nbyfd) * sizeof(*b));
            c->byfd = b;
            c->nbyfd = n;
        }
        if ((sc = calloc(1, sizeof(*sc))) == NULL)
            return -1;
        sc->c = c;
        if ((sc->w = cdn_watch_new(c->loop, s, on_curl_sock_event, sc)) == NULL) {
            free(sc);
            return -1;
        }
        if (s >= 0)
            c->byfd[s] = sc;
        sc->next = c->socks;
        if (sc->next != NULL)
            sc->next->prev = sc;
        c->socks = sc;
        curl_multi_assign(c->multi, s, sc);
    }
    cdn_watch_set(sc->w, (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? CDN_WATCH_READ : 0) |
                             (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? CDN_WATCH_WRITE : 0));
    return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    cdn_httpc_t *c = userp;
    if (timeout_ms < 0)
        cdn_timer_stop(c->timer);
    else
        cdn_timer_start(c->timer, (uint64_t)timeout_ms);
    return 0;
}

static void on_timer(cdn_timer_t *t, void *data)
{
    cdn_httpc_t *c = data;
    int running;
    assert(c->magic == HTTPC_MAGIC);
    enter(c);
    c->in_curl++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_curl--;
    leave(c);
}

/* ---- finishing ---- */

const char *cdn_httpc_error_name(enum cdn_httpc_error e)
{
    static const char *const names[] = {"ok", "refused", "connect", "connect-timeout", "dns", "tls", "timeout", "reset",
                                        "protocol", "too-large", "aborted", "internal"};
    return (unsigned)e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
}

/* curl's result as one of ours: what a caller can act on */
static enum cdn_httpc_error curl_error_kind(cdn_httpc_req_t *r, CURLcode rc)
{
    if (r->aborted)
        return CDN_HTTPC_ABORTED;
    if (r->too_large || r->head_too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return CDN_HTTPC_TOO_LARGE;
    switch (rc) {
    case CURLE_OK:
        return CDN_HTTPC_OK;
    case CURLE_OPERATION_TIMEDOUT: {
        /* no connection yet: the connect timeout (the upstream never got the request) */
        double ct = 0;
        curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME, &ct);
        return ct == 0 && !r->head_sent ? CDN_HTTPC_CONNECT_TIMEOUT : CDN_HTTPC_TIMEOUT;
    }
    case CURLE_COULDNT_CONNECT: {
        long os = 0;
        curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os);
        return os == ECONNREFUSED ? CDN_HTTPC_REFUSED : CDN_HTTPC_CONNECT;
    }
    case CURLE_COULDNT_RESOLVE_HOST:
        return CDN_HTTPC_DNS;
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE: case CURLE_USE_SSL_FAILED:
        return CDN_HTTPC_TLS;
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2_STREAM: case CURLE_HTTP2:
        return CDN_HTTPC_RESET;
    case CURLE_WEIRD_SERVER_REPLY: case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_BAD_CONTENT_ENCODING:
        return CDN_HTTPC_PROTOCOL;
    default:
        return CDN_HTTPC_INTERNAL;
    }
}

static const char *curl_errstr(cdn_httpc_req_t *r, CURLcode rc)
{
    if (r->aborted)
        return "aborted";
    if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return "response too large";
    if (r->head_too_large)
        return "response head too large";
    switch (rc) {
    case CURLE_OK:
        return NULL;
    case CURLE_OPERATION_TIMEDOUT:
        return "timed out";
    case CURLE_COULDNT_CONNECT: {
        long os = 0;
        curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os);
        return os == ECONNREFUSED ? "connection refused" : "could not connect";
    }
    default:
        return r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);
    }
}

static void fill_info(cdn_httpc_req_t *r)
{
    long code = 0, conns = 0;
    char *ip = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &r->info.total_s);
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME, &r->info.connect_s);
    curl_easy_getinfo(r->easy, CURLINFO_STARTTRANSFER_TIME, &r->info.ttfb_s);
    curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_IP, &ip);
    r->info.status = r->head_sent ? r->status : (int)code;
    r->info.body_bytes = r->body_bytes;
    r->info.new_connections = conns;
    snprintf(r->info.primary_ip, sizeof(r->info.primary_ip), "%s", ip != NULL ? ip : "");
}

static void call_done(cdn_httpc_req_t *r, const char *errstr)
{
    r->state = ST_DONE;
    r->in_cb = 1;
    if (r->fetch_cb != NULL)
        r->fetch_cb(errstr, r->info.status, r->fbuf, r->flen, &r->info, r->data);
    else if (r->cbs.on_done != NULL)
        r->cbs.on_done(r, errstr, r->data);
    r->in_cb = 0;
}

static void finish_running(cdn_httpc_t *c, cdn_httpc_req_t *r, CURLcode rc)
{
    if (r->cancelled) {
        curl_multi_remove_handle(c->multi, r->easy);
        req_free(r);
        return;
    }
    /* a response without a blank line after its head (or a HEAD request) still gets on_head */
    if (rc == CURLE_OK && !r->head_sent && !r->aborted && deliver_head(r) != 0 && !r->too_large)
        r->aborted = 1;
    fill_info(r);
    r->info.error = curl_error_kind(r, rc);
    const char *err = curl_errstr(r, rc);
    char errcopy[CURL_ERROR_SIZE];
    if (err == r->errbuf) {
        snprintf(errcopy, sizeof(errcopy), "%s", r->errbuf);
        err = errcopy;
    }
    /* out of the multi first: on_done may start a request that reuses this connection */
    curl_multi_remove_handle(c->multi, r->easy);
    r->clean = rc == CURLE_OK && !r->paused && !r->aborted && !r->too_large && !r->head_too_large;
    if (!r->cancelled)
        call_done(r, err);
    req_free(r);
}

static int add_to_multi(cdn_httpc_t *c, cdn_httpc_req_t *r);

static void flush_queues(cdn_httpc_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        cdn_httpc_req_t *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        assert(r != NULL && r->magic == REQ_MAGIC);
        finish_running(c, r, m->data.result);
    }
    /* cancelled while curl was running: out of the multi now */
    for (cdn_httpc_req_t *r = c->reqs, *next; r != NULL; r = next) {
        next = r->next;
        if (r->cancelled && r->state == ST_RUNNING) {
            curl_multi_remove_handle(c->multi, r->easy);
            req_free(r);
        }
    }
    while (c->to_add != NULL) {
        cdn_httpc_req_t *r = c->to_add;
        c->to_add = r->qnext;
        if (c->to_add == NULL)
            c->to_add_tail = &c->to_add;
        r->qnext = NULL;
        if (r->cancelled)
            req_free(r); /* cdn_httpc_free() ran meanwhile */
        else
            add_to_multi(c, r);
    }
}

static void httpc_destroy(cdn_httpc_t *c);

static void leave(cdn_httpc_t *c)
{
    if (c->depth == 1 && c->in_curl == 0) {
        /* still at depth 1 while flushing: nested enter/leave from user callbacks do not flush */
        flush_queues(c);
        if (c->closing) {
            c->depth = 0;
            httpc_destroy(c);
            return;
        }
    }
    c->depth--;
}

static void on_kick(cdn_timer_t *t, void *data)
{
    cdn_httpc_t *c = data;
    assert(c->magic == HTTPC_MAGIC);
    enter(c);
    while (c->failed != NULL) {
        cdn_httpc_req_t *r = c->failed;
        c->failed = r->qnext;
        if (c->failed == NULL)
            c->failed_tail = &c->failed;
        r->qnext = NULL;
        if (!r->cancelled)
            call_done(r, r->errstr);
        req_free(r);
    }
    leave(c);
}

static void fail_later(cdn_httpc_t *c, cdn_httpc_req_t *r, enum cdn_httpc_error kind, const char *errstr)
{
    r->state = ST_FAILED;
    r->errstr = errstr;
    r->info.error = kind;
    queue_push(&c->failed_tail, r);
    cdn_timer_start(c->kick, 0);
}

/* Adds r to the multi now, or queues it when curl is on the stack. */
static int add_to_multi(cdn_httpc_t *c, cdn_httpc_req_t *r)
{
    curl_easy_setopt(r->easy, CURLOPT_RESOLVE, r->resolve); /* NULL too: the handle may hold an old list */
    if (c->in_curl > 0) {
        r->state = ST_QUEUED;
        queue_push(&c->to_add_tail, r);
        return 0;
    }
    CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
    if (mc != CURLM_OK) {
        fail_later(c, r, CDN_HTTPC_INTERNAL, curl_multi_strerror(mc));
        return -1;
    }
    r->state = ST_RUNNING;
    return 0;
}

static void on_resolved(const char *errstr, const struct cdn_addrs *a, void *data)
{
    cdn_httpc_req_t *r = data;
    assert(r->magic == REQ_MAGIC);
    cdn_httpc_t *c = r->c;
    r->rq = NULL;
    if (errstr != NULL) {
        fail_later(c, r, CDN_HTTPC_DNS, strcmp(errstr, "name not found") == 0 ? "could not resolve host: name not found"
                         : strcmp(errstr, "timed out") == 0    ? "could not resolve host: timed out"
                                                               : "could not resolve host");
        return;
    }
    /* "host:port:addr[,addr...]" */
    char line[1024];
    int off = snprintf(line, sizeof(line), "%s:%ld:", r->host, r->port);
    for (int i = 0; i < a->n && off < (int)sizeof(line) - 64; i++) {
        char ip[INET6_ADDRSTRLEN];
        const struct sockaddr_storage *ss = &a->addr[i];
        if (ss->ss_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
            off += snprintf(line + off, sizeof(line) - off, "%s%s", i ? "," : "", ip);
        } else {
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
            off += snprintf(line + off, sizeof(line) - off, "%s[%s]", i ? "," : "", ip);
        }
    }
    if ((r->resolve = curl_slist_append(NULL, line)) == NULL) {
        fail_later(c, r, CDN_HTTPC_INTERNAL, "out of memory");
        return;
    }
    enter(c);
    add_to_multi(c, r);
    leave(c);
}

/* ---- the API ---- */

static int setup_const(cdn_httpc_t *c, CURL *e);

/* A handle with the client's options set. For a plain GET, a handle whose last request was a
 * completed plain GET is taken as it is: setup_easy sets every option such a request changes. */
static CURL *easy_get(cdn_httpc_t *c, int plain_get)
{
    CURL *e;
    if (c->npool > 0) {
        struct pooled *p = &c->pool[--c->npool];
        e = p->e;
        if (plain_get && p->plain)
            return e;
        curl_easy_reset(e);
    } else if ((e = curl_easy_init()) == NULL) {
        return NULL;
    }
    if (setup_const(c, e) != 0) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

/* curl closes a socket (after REMOVEing it from the multi): drop its watch, then close. */
static int on_curl_close(void *clientp, curl_socket_t s)
{
    cdn_httpc_t *c = clientp;
    if (s >= 0 && (size_t)s < c->nbyfd && c->byfd[s] != NULL) {
        struct sockctx *sc = c->byfd[s];
        c->byfd[s] = NULL;
        if (!sc->kept)
            curl_multi_assign(c->multi, s, NULL);
        sock_free(c, sc);
    }
    return close(s);
}

static int is_ip_literal(const char *h)
{
    unsigned char buf[16];
    char tmp[64];
    size_t l = strlen(h);
    if (l >= 2 && h[0] == '[' && h[l - 1] == ']' && l - 2 < sizeof(tmp)) {
        memcpy(tmp, h + 1, l - 2);
        tmp[l - 2] = '\0';
        return inet_pton(AF_INET6, tmp, buf) == 1;
    }
    return inet_pton(AF_INET, h, buf) == 1;
}

#define SET(opt, val) ok &= curl_easy_setopt(e, opt, val) == CURLE_OK

/* The header lines as a curl_slist in one allocation (the nodes, then the strings), freed with
 * free(): curl_slist_append costs two mallocs a line, and curl only reads the list. */
static struct curl_slist *headers_pack(const char *const *lines)
{
    size_t n = 0, bytes = 0;
    for (; lines[n] != NULL; n++)
        bytes += strlen(lines[n]) + 1;
    struct curl_slist *l = malloc(n * sizeof(*l) + bytes);
    if (l == NULL)
        return NULL;
    char *p = (char *)(l + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(lines[i]) + 1;
        memcpy(p, lines[i], len);
        l[i].data = p;
        l[i].next = i + 1 < n ? &l[i + 1] : NULL;
        p += len;
    }
    return l;
}

/* The options every request of this client has. */
static int setup_const(cdn_httpc_t *c, CURL *e)
{
    int ok = 1;
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HEADERFUNCTION, on_curl_header);
    SET(CURLOPT_WRITEFUNCTION, on_curl_write);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    SET(CURLOPT_BUFFERSIZE, (long)RECV_BUF);
    /* no CURLOPT_MAXFILESIZE: it would also judge the Content-Length of HEAD and 304 answers */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_CLOSESOCKETFUNCTION, on_curl_close);
    SET(CURLOPT_CLOSESOCKETDATA, c);
    if (c->verbose)
        SET(CURLOPT_VERBOSE, 1L);
    if (c->http2)
        SET(CURLOPT_PIPEWAIT, 1L); /* wait for a multiplexable connection rather than open another */
    if (c->insecure_tls) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->interface != NULL)
        SET(CURLOPT_INTERFACE, c->interface);
    return ok ? 0 : -1;
}

/* RFC 9110 9.2.2: methods a client may repeat (safe ones, PUT, DELETE). */
static int idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 || strcmp(m, "TRACE") == 0 ||
           strcmp(m, "PUT") == 0 || strcmp(m, "DELETE") == 0;
}

static size_t read_body(char *buf, size_t size, size_t n, void *data)
{
    cdn_httpc_req_t *r = data;
    size_t k = r->once_len - r->once_off < size * n ? r->once_len - r->once_off : size * n;
    memcpy(buf, r->once + r->once_off, k);
    r->once_off += k;
    return k;
}

/* Per-request options. Each is set for every request, NULL included: a pooled handle still holds
 * the previous request's (freed) header and connect-to lists. Methods other than a plain GET and
 * bodies are set only on a reset handle (r->plain == 0). */
static int setup_easy(cdn_httpc_t *c, cdn_httpc_req_t *r, const struct cdn_httpc_request *req, int https)
{
    CURL *e = r->easy;
    const char *method = req->method != NULL ? req->method : "GET";
    int ok = 1;
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PRIVATE, (char *)r);
    SET(CURLOPT_HEADERDATA, r);
    SET(CURLOPT_WRITEDATA, r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms));
    if (c->http2) {
        /* http:// asks for h2c with "Upgrade: h2c", not prior knowledge: libcurl 7.88.1 fails every
         * request that reuses a prior-knowledge connection with "Error in the HTTP2 framing layer"
         * (curl issue 10634, fixed in 8.0.0). Once upgraded, the connection is multiplexed. */
        SET(CURLOPT_HTTP_VERSION, https ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_2_0);
    } else {
        SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    if (strcmp(method, "HEAD") == 0) {
        r->is_head = 1;
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 || req->body != NULL) {
        if (strcmp(method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, method);
        if (!idempotent(method)) {
            /* libcurl resends a request silently when a reused connection dies before any answer:
             * fine for GET, a second order for POST. A body it cannot rewind (a read callback, no
             * seek callback) makes that a "rewind not possible" error instead: the caller answers
             * 502, the request reached the upstream at most once. */
            if (req->body_len > 0 && (r->once = malloc(req->body_len)) == NULL)
                return -1;
            if (req->body_len > 0)
                memcpy(r->once, req->body, req->body_len);
            r->once_len = req->body_len;
            SET(CURLOPT_POST, 1L);
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            SET(CURLOPT_READFUNCTION, read_body);
            SET(CURLOPT_READDATA, r);
        } else if (req->body != NULL || strcmp(method, "PUT") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
            SET(CURLOPT_COPYPOSTFIELDS, req->body != NULL ? (const char *)req->body : "");
        }
    }
    if (req->headers != NULL && req->headers[0] != NULL && (r->headers = headers_pack(req->headers)) == NULL)
        return -1;
    SET(CURLOPT_HTTPHEADER, r->headers);
    SET(CURLOPT_CONNECT_TO, r->connect_to);
    return ok ? 0 : -1;
}

#undef SET

/* Scheme, host and port of a plain "http[s]://host[:port][/...]" URL without a CURLU handle
 * (curl_url() and its three gets cost about ten mallocs a request). The host is letters, digits,
 * '.', '-', '_' or a bracketed IPv6 literal; the rest of the URL has no byte curl_url() would
 * refuse (controls, space). Anything else (user info, %-escapes, upper-case scheme, odd ports)
 * returns -1 and the caller asks curl_url(), so both accept and split the same URLs.
 * The host goes into host[cap] (NUL-terminated). */
static int parse_url_fast(const char *url, int *https, char *host, size_t cap, long *port)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) {
        *https = 0;
        p = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        *https = 1;
        p = url + 8;
    } else {
        return -1;
    }
    const char *h = p;
    if (*p == '[') {
        for (p++; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'; p++)
            ;
        if (*p++ != ']')
            return -1;
    } else {
        for (; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'; p++)
            ;
    }
    size_t hl = (size_t)(p - h);
    if (hl == 0 || hl >= cap)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    /* curl rewrites numeric hosts ("127.1", "0x7f000001", octal) and checks IPv6 literals: only a
     * plain dotted quad or a valid [IPv6] stays on this path */
    if ((host[0] >= '0' && host[0] <= '9') || host[0] == '[') {
        if (!is_ip_literal(host))
            return -1;
    }
    long pt = *https ? 443 : 80;
    if (*p == ':') {
        pt = 0;
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
            pt = pt * 10 + (*p - '0');
        if (digits == 0 || pt < 1 || pt > 65535)
            return -1;
    }
    if (*p != '/' && *p != '?' && *p != '#' && *p != '\0')
        return -1;
    for (; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return -1;
    *port = pt;
    return 0;
}

/* The same through curl_url(): -1 when curl refuses the URL or it is not http(s). */
static int parse_url_curl(const char *url, int *https, char *host, size_t cap, long *port)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *h = NULL, *pt = NULL;
    int rv = -1;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &pt, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) && strlen(h) < cap) {
        *https = strcmp(scheme, "https") == 0;
        strcpy(host, h);
        *port = strtol(pt, NULL, 10);
        rv = 0;
    }
    curl_free(scheme);
    curl_free(h);
    curl_free(pt);
    curl_url_cleanup(u);
    return rv;
}

static cdn_httpc_req_t *start(cdn_httpc_t *c, const struct cdn_httpc_request *req, const struct cdn_httpc_cbs *cbs,
                              cdn_httpc_fetch_cb fetch_cb, void *data)
{
    assert(c->magic == HTTPC_MAGIC);
    if (c->closing || req == NULL || req->url == NULL || cbs == NULL)
        return NULL;
    /* scheme, host and port of the URL */
    char host[256];
    long port;
    int https;
    if (parse_url_fast(req->url, &https, host, sizeof(host), &port) == 0) {
        /* the HTTP/1.1 engine takes plain http:// GET/HEAD without a body (lib/httpc_h1.h) */
        if (c->h1 != NULL && !https && !c->http2 && h1c_accepts(req))
            return h1c_start(c->h1, req, host, port, cbs, fetch_cb, data);
    } else if (parse_url_curl(req->url, &https, host, sizeof(host), &port) != 0) {
        return NULL;
    }
    int plain_get = (req->method == NULL || strcmp(req->method, "GET") == 0) && req->body == NULL;
    cdn_httpc_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->host = strdup(host)) == NULL || (r->easy = easy_get(c, plain_get)) == NULL) {
        if (r != NULL)
            free(r->host);
        free(r);
        return NULL;
    }
    r->magic = REQ_MAGIC;
    r->c = c;
    r->plain = plain_get;
    r->cbs = *cbs;
    r->data = data;
    r->port = port;
    r->max_body = c->max_body;
    r->next = c->reqs;
    if (r->next != NULL)
        r->next->prev = r;
    c->reqs = r;
    c->nreqs++;
    if (req->connect_to != NULL) {
        char line[512];
        snprintf(line, sizeof(line), "::%s", req->connect_to); /* any host, any port -> there */
        r->connect_to = curl_slist_append(NULL, line);
    }
    if (setup_easy(c, r, req, https) != 0) {
        req_free(r);
        return NULL;
    }
    enter(c);
    if (req->connect_to != NULL || is_ip_literal(host)) {
        add_to_multi(c, r);
    } else if (c->resolver != NULL) {
        r->state = ST_RESOLVING;
        r->rq = cdn_resolver_lookup(c->resolver, host, on_resolved, r);
    } else if (strcasecmp(host, "localhost") == 0) {
        struct cdn_addrs a = {.n = 1};
        struct sockaddr_in *sin = (struct sockaddr_in *)&a.addr[0];
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        on_resolved(NULL, &a, r);
    } else {
        fail_later(c, r, CDN_HTTPC_DNS, "could not resolve host: no resolver");
    }
    r->fetch_cb = fetch_cb; /* on_done cannot run before start returns */
    leave(c);
    return r;
}

cdn_httpc_req_t *cdn_httpc_start(cdn_httpc_t *c, const struct cdn_httpc_request *req, const struct cdn_httpc_cbs *cbs,
                                 void *data)
{
    return start(c, req, cbs, NULL, data);
}

void cdn_httpc_cancel(cdn_httpc_req_t *r)
{
    if (r == NULL)
        return;
    if (h1c_is_req(r)) {
        h1c_cancel(r);
        return;
    }
    assert(r->magic == REQ_MAGIC);
    cdn_httpc_t *c = r->c;
    if (r->cancelled || r->state == ST_DONE)
        return; /* inside its own on_done: it is freed on return */
    r->cancelled = 1;
    switch (r->state) {
    case ST_RESOLVING:
        req_free(r); /* cancels the lookup */
        break;
    case ST_QUEUED:
        queue_remove(&c->to_add, &c->to_add_tail, r);
        req_free(r);
        break;
    case ST_FAILED:
        queue_remove(&c->failed, &c->failed_tail, r);
        req_free(r);
        break;
    case ST_RUNNING:
        if (c->in_curl == 0) {
            curl_multi_remove_handle(c->multi, r->easy);
            req_free(r);
        } /* else flush_queues() removes it once curl is off the stack */
        break;
    case ST_DONE:
        break;
    }
}

void cdn_httpc_pause(cdn_httpc_req_t *r, int paused)
{
    if (h1c_is_req(r)) {
        h1c_pause(r, paused);
        return;
    }
    assert(r->magic == REQ_MAGIC);
    cdn_httpc_t *c = r->c;
    if (r->state != ST_RUNNING || r->cancelled || (int)r->paused == !!paused)
        return;
    r->paused = !!paused;
    /* Resuming may deliver buffered body before curl_easy_pause() returns. */
    enter(c);
    c->in_curl++;
    curl_easy_pause(r->easy, paused ? CURLPAUSE_RECV : CURLPAUSE_CONT);
    c->in_curl--;
    leave(c);
}

const struct cdn_httpc_info *cdn_httpc_info(const cdn_httpc_req_t *r)
{
    if (h1c_is_req(r))
        return h1c_info(r);
    return &r->info;
}

size_t cdn_httpc_inflight(const cdn_httpc_t *c)
{
    return c->nreqs + (c->h1 != NULL ? h1c_inflight(c->h1) : 0);
}

/* ---- buffered fetch ---- */

static int on_fetch_body(cdn_httpc_req_t *r, const void *buf, size_t len, void *data)
{
    if (r->flen + len > r->fcap) {
        size_t cap = r->fcap == 0 ? 4096 : r->fcap;
        while (cap < r->flen + len)
            cap *= 2;
        char *nb = realloc(r->fbuf, cap);
        if (nb == NULL)
            return -1;
        r->fbuf = nb;
        r->fcap = cap;
    }
    memcpy(r->fbuf + r->flen, buf, len);
    r->flen += len;
    return 0;
}

cdn_httpc_req_t *cdn_httpc_fetch(cdn_httpc_t *c, const struct cdn_httpc_request *req, cdn_httpc_fetch_cb cb, void *data)
{
    static const struct cdn_httpc_cbs fetch_cbs = {.on_body = on_fetch_body};
    return start(c, req, &fetch_cbs, cb, data);
}

/* ---- lifetime ---- */

cdn_httpc_t *cdn_httpc_new(h2o_evloop_t *loop, const struct cdn_httpc_opts *opts, char *err, size_t errlen)
{
    static const struct cdn_httpc_opts defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    pthread_once(&curl_once, curl_init_once);
    cdn_httpc_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->magic = HTTPC_MAGIC;
    c->loop = loop;
    c->resolver = opts->resolver;
    c->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 3000;
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 30000;
    c->max_body = opts->max_body ? opts->max_body : 64 * 1024 * 1024;
    c->http2 = opts->http2;
    c->insecure_tls = opts->insecure_tls;
    c->verbose = getenv("CDN_HTTPC_VERBOSE") != NULL;
    c->to_add_tail = &c->to_add;
    c->failed_tail = &c->failed;
    if (opts->local_ip != NULL) {
        unsigned char buf[16];
        if (inet_pton(AF_INET, opts->local_ip, buf) != 1 && inet_pton(AF_INET6, opts->local_ip, buf) != 1) {
            snprintf(err, errlen, "httpc: bad local address \"%s\"", opts->local_ip);
    free(c);
            return NULL;
        }
        size_t l = strlen(opts->local_ip) + 6;
        if ((c->interface = malloc(l)) == NULL) {
            free(c);
            return NULL;
        }
        snprintf(c->interface, l, "host!%s", opts->local_ip);
    }
    if ((c->multi = curl_multi_init()) == NULL || (c->timer = cdn_timer_new(loop, on_timer, c)) == NULL ||
        (c->kick = cdn_timer_new(loop, on_kick, c)) == NULL) {
        snprintf(err, errlen, "httpc: cannot create the curl multi or its timers");
        if (c->multi != NULL)
            curl_multi_cleanup(c->multi);
        cdn_timer_free(c->timer);
        free(c->interface);
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* libcurl's default keeps 4 idle connections per transfer in progress: when the transfers of
     * a burst end, the pool shrinks with them and closes most of its connections, and the next
     * burst opens new ones (a pass at 4k req/s through 50 clients left 2,800 sockets a second in
     * TIME_WAIT). Keep what a burst needs. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, opts->max_idle_conns > 0 ? opts->max_idle_conns : 256L);
    if (opts->max_host_conns > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, opts->max_host_conns);
    if (opts->h1_engine) {
        struct h1c_opts ho = {.resolver = c->resolver, .local_ip = opts->local_ip,
                              .connect_timeout_ms = c->connect_timeout_ms, .timeout_ms = c->timeout_ms,
                              .max_body = c->max_body, .max_host_conns = opts->max_host_conns,
                              .max_idle_conns = opts->max_idle_conns};
        if ((c->h1 = h1c_new(loop, &ho)) == NULL) {
            snprintf(err, errlen, "httpc: cannot create the HTTP/1.1 engine");
            cdn_httpc_free(c);
            return NULL;
        }
    }
    return c;
}

static void httpc_destroy(cdn_httpc_t *c)
{
    h1c_free(c->h1); /* inside one of its callbacks: it finishes when that returns */
    c->h1 = NULL;
    c->in_curl++; /* nothing below may call back into user code or re-enter */
    while (c->reqs != NULL) {
        cdn_httpc_req_t *r = c->reqs;
        if (r->state == ST_RUNNING)
            curl_multi_remove_handle(c->multi, r->easy);
        req_free(r);
    }
    while (c->npool > 0)
        curl_easy_cleanup(c->pool[--c->npool].e);
    curl_multi_cleanup(c->multi); /* closes the cached connections (REMOVE callbacks may run) */
    while (c->socks != NULL) {
        struct sockctx *sc = c->socks;
        c->socks = sc->next;
        cdn_watch_free(sc->w);
        free(sc);
    }
    cdn_timer_free(c->timer);
    cdn_timer_free(c->kick);
    free(c->interface);
    free(c->byfd);
    c->magic = 0;
    free(c);
}

void cdn_httpc_free(cdn_httpc_t *c)
{
    if (c == NULL)
        return;
    assert(c->magic == HTTPC_MAGIC);
    if (c->closing)
        return;
    c->closing = 1;
    for (cdn_httpc_req_t *r = c->reqs; r != NULL; r = r->next)
        r->cancelled = 1; /* no callbacks from here on */
    if (c->depth == 0)
        httpc_destroy(c);
    /* else: the outermost leave() destroys it */
}
