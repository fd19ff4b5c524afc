/* Unit tests for lib/httpc.c against a real HTTP server: a small h2o origin running in this
 * process on the same loop as the client (127.0.0.1, a kernel-chosen port; HTTP/1.1 and h2c).
 *
 *   /small     200 "hello", x-test: yes            /404     404
 *   /echo      the request body back, x-method     /hdrs    what arrived: host, peer, x-custom
 *   /slow      200 after 3 s                       /stream?N  N bytes chunked, in 16 KiB sends
 *   /big?N     N bytes with Content-Length
 * and a raw origin (rawo) that closes each connection right after its response, without saying so;
 * rawo's /keep2 keeps the connection after one answer and closes it, unanswered, at the next
 * request; /early sends 100 and 103 heads before the final one. Its last request head is kept.
 *
 * Every test runs twice: group "curl" with libcurl only, group "h1" with opts.h1_engine (plain
 * GET/HEAD over http:// on lib/httpc_h1.c; get() checks that the engine took them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cdn/httpc.h"
#include "cdn/loop.h"
#include "cdn/proc.h"
#include "cdn/resolver.h"
#include "../../lib/httpc_h1.h" /* h1c_is_req: which engine took a request */

static h2o_evloop_t *loop;
static int use_h1; /* the group: client() sets opts.h1_engine */

/* ---- the origin ---- */

static struct {
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx;
    h2o_socket_t *listener;
    int port;
    char base[64];
    int requests, slow_started, slow_disposed, stream_stopped;
} origin;

static char chunk[16384];

struct stream_gen {
    h2o_generator_t super;
    size_t left;
};

static void stream_send(struct stream_gen *g, h2o_req_t *req)
{
    size_t n = g->left < sizeof(chunk) ? g->left : sizeof(chunk);
    h2o_iovec_t buf = h2o_iovec_init(chunk, n);
    g->left -= n;
    h2o_send(req, &buf, 1, g->left ? H2O_SEND_STATE_IN_PROGRESS : H2O_SEND_STATE_FINAL);
}

static void on_stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    stream_send((struct stream_gen *)g, req);
}

static void on_stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
    origin.stream_stopped++;
}

struct slow {
    h2o_req_t *req;
    cdn_timer_t *timer;
};

static void on_slow_due(cdn_timer_t *t, void *data)
{
    struct slow *s = data;
    s->req->res.status = 200;
    s->req->res.reason = "OK";
    h2o_send_inline(s->req, H2O_STRLIT("finally"));
}

static void on_slow_dispose(void *p)
{
    struct slow *s = p;
    origin.slow_disposed++;
    cdn_timer_free(s->timer);
}

static int path_is(h2o_req_t *req, const char *p)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, p, strlen(p));
}

static size_t query_num(h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    char buf[32];
    size_t l = req->path.len - req->query_at - 1;
    if (l >= sizeof(buf))
        l = sizeof(buf) - 1;
    memcpy(buf, req->path.base + req->query_at + 1, l);
    buf[l] = '\0';
    return strtoul(buf, NULL, 10);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    origin.requests++;
    req->res.status = 200;
    req->res.reason = "OK";
    if (path_is(req, "/small")) {
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-test"), 0, NULL, H2O_STRLIT("yes"));
        h2o_send_inline(req, H2O_STRLIT("hello"));
    } else if (path_is(req, "/echo")) {
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-method"), 0, NULL, req->method.base,
                              req->method.len);
        h2o_send_inline(req, req->entity.base != NULL ? req->entity.base : "", req->entity.len);
    } else if (path_is(req, "/hdrs")) {
        struct sockaddr_storage ss;
        char ip[64] = "?", *out = h2o_mem_alloc_pool(&req->pool, 1024);
        socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
        if (sl > 0 && ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
        ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-custom"), -1);
        int n = snprintf(out, 1024, "host=%.*s\npeer=%s\nx-custom=%.*s\n", (int)req->authority.len, req->authority.base,
                         ip, i >= 0 ? (int)req->headers.entries[i].value.len : 0,
                         i >= 0 ? req->headers.entries[i].value.base : "");
        h2o_send_inline(req, out, (size_t)n);
    } else if (path_is(req, "/slow")) {
        struct slow *s = h2o_mem_alloc_shared(&req->pool, sizeof(*s), on_slow_dispose);
        s->req = req;
        s->timer = cdn_timer_new(loop, on_slow_due, s);
        cdn_timer_start(s->timer, 3000);
        origin.slow_started++;
    } else if (path_is(req, "/stream") || path_is(req, "/big")) {
        struct stream_gen *g = h2o_mem_alloc_pool(&req->pool, sizeof(*g));
        g->super = (h2o_generator_t){on_stream_proceed, on_stream_stop};
        g->left = query_num(req);
        if (path_is(req, "/big"))
            req->res.content_length = g->left;
        h2o_start_response(req, &g->super);
        stream_send(g, req);
    } else {
        req->res.status = 404;
        req->res.reason = "Not Found";
        h2o_send_inline(req, H2O_STRLIT("nope"));
    }
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err == NULL && (sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(&origin.actx, sock);
}

static int origin_setup(void **state)
{
    memset(chunk, 'x', sizeof(chunk));
    h2o_config_init(&origin.config);
    h2o_hostconf_t *hc = h2o_config_register_host(&origin.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = on_req;
    h2o_context_init(&origin.ctx, loop, &origin.config);
    origin.actx.ctx = &origin.ctx;
    origin.actx.hosts = origin.config.hosts;

    char err[256];
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int fd = cdn_listen_tcp((struct sockaddr *)&sin, sizeof(sin), 0, err, sizeof(err));
    if (fd < 0)
        return -1;
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    origin.port = ntohs(sin.sin_port);
    snprintf(origin.base, sizeof(origin.base), "http://127.0.0.1:%d", origin.port);
    origin.listener = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(origin.listener, on_accept);
    return 0;
}

/* ---- the raw origin: "200 ok" with Content-Length, then close (no "Connection: close") ---- */

static struct {
    h2o_socket_t *listener;
    int port, accepted, answered, dropped;
    char last[2048]; /* the last request head */
} rawo;

static void on_raw_read(h2o_socket_t *sock, const char *err);

static void on_raw_written(h2o_socket_t *sock, const char *err)
{
    h2o_socket_close(sock);
}

static void on_raw_written_keep(h2o_socket_t *sock, const char *err)
{
    if (err != NULL)
        h2o_socket_close(sock);
    else
        h2o_socket_read_start(sock, on_raw_read);
}

static void on_raw_read(h2o_socket_t *sock, const char *err)
{
    if (err != NULL) {
        h2o_socket_close(sock);
        return;
    }
    const char *b = sock->input->bytes;
    size_t n = sock->input->size, i;
    for (i = 0; i + 4 <= n && memcmp(b + i, "\r\n\r\n", 4) != 0; i++)
        ;
    if (i + 4 > n)
        return; /* the head is not complete yet */
    size_t hl = i + 4 < sizeof(rawo.last) - 1 ? i + 4 : sizeof(rawo.last) - 1;
    memcpy(rawo.last, b, hl);
    rawo.last[hl] = '\0';
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    static const char early[] = "HTTP/1.1 100 Continue\r\n\r\n"
                                "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    int keep2 = strncmp(b, "GET /keep2", 10) == 0, is_early = strncmp(b, "GET /early", 10) == 0;
    h2o_iovec_t out = is_early ? h2o_iovec_init(early, sizeof(early) - 1) : h2o_iovec_init(resp, sizeof(resp) - 1);
    h2o_buffer_consume(&sock->input, n);
    h2o_socket_read_stop(sock);
    if (keep2 && sock->data != NULL) { /* the second request on this connection: closed unanswered */
        rawo.dropped++;
        h2o_socket_close(sock);
        return;
    }
    rawo.answered++;
    if (keep2) {
        sock->data = sock; /* answered once */
        h2o_socket_write(sock, &out, 1, on_raw_written_keep);
        return;
    }
    h2o_socket_write(sock, &out, 1, on_raw_written);
}

static void on_raw_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err == NULL && (sock = h2o_evloop_socket_accept(listener)) != NULL) {
        rawo.accepted++;
        sock->data = NULL;
        h2o_socket_read_start(sock, on_raw_read);
    }
}

static int rawo_start(void)
{
    char err[256];
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int fd = cdn_listen_tcp((struct sockaddr *)&sin, sizeof(sin), 0, err, sizeof(err));
    if (fd < 0)
        return -1;
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    rawo.port = ntohs(sin.sin_port);
    rawo.listener = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(rawo.listener, on_raw_accept);
    return 0;
}

/* ---- the client side ---- */

struct res {
    cdn_httpc_t *c;
    cdn_httpc_req_t *r;
    int done, heads, bodies, status, version;
    char err[128];
    char body[65536];
    size_t len;        /* bytes kept in body[] */
    uint64_t total;    /* every body byte */
    char x_test[64], x_method[32];
    struct cdn_httpc_info info;
    /* what to do from inside the callbacks */
    int abort_in_head, cancel_in_body, pause_in_body, free_in_head, start_in_done, start_in_body;
    int cancel_in_head, cancel_in_info, cancel_in_done, infos, info_status;
    char link[128];
    struct res *next_res; /* start_in_done: the request to start */
    const char *next_url;
};

static int run_until(const int *flag)
{
    uint64_t deadline = cdn_now_ms() + 8000;
    while (!*flag && cdn_now_ms() < deadline)
        h2o_evloop_run(loop, 50);
    return *flag;
}

static void turns(int n)
{
    for (int i = 0; i < n; i++)
        h2o_evloop_run(loop, 10);
}

static void hcopy(char *dst, size_t cap, const struct cdn_httpc_header *h)
{
    size_t l = h->value_len < cap - 1 ? h->value_len : cap - 1;
    memcpy(dst, h->value, l);
    dst[l] = '\0';
}

static const struct cdn_httpc_cbs cbs;

static int on_head(cdn_httpc_req_t *r, int status, int version, const struct cdn_httpc_header *h, size_t n, void *data)
{
    struct res *s = data;
    s->heads++;
    s->status = status;
    s->version = version;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == 6 && strncasecmp(h[i].name, "x-test", 6) == 0)
            hcopy(s->x_test, sizeof(s->x_test), &h[i]);
        if (h[i].name_len == 8 && strncasecmp(h[i].name, "x-method", 8) == 0)
            hcopy(s->x_method, sizeof(s->x_method), &h[i]);
    }
    if (s->free_in_head) {
        cdn_httpc_free(s->c);
        return 0;
    }
    if (s->cancel_in_head)
        cdn_httpc_cancel(r);
    return s->abort_in_head;
}

static int on_body(cdn_httpc_req_t *r, const void *buf, size_t len, void *data)
{
    struct res *s = data;
    s->bodies++;
    s->total += len;
    size_t keep = len < sizeof(s->body) - 1 - s->len ? len : sizeof(s->body) - 1 - s->len;
    memcpy(s->body + s->len, buf, keep);
    s->len += keep;
    s->body[s->len] = '\0';
    if (s->cancel_in_body)
        cdn_httpc_cancel(r);
    if (s->pause_in_body && s->bodies == 1)
        cdn_httpc_pause(r, 1);
    if (s->start_in_body && s->bodies == 1) { /* curl is on the stack: queued, added afterwards */
        struct cdn_httpc_request rq = {.url = s->next_url};
        s->next_res->c = s->c;
        s->next_res->r = cdn_httpc_start(s->c, &rq, &cbs, s->next_res);
    }
    return 0;
}

static void on_done(cdn_httpc_req_t *r, const char *err, void *data)
{
    struct res *s = data;
    s->done++;
    snprintf(s->err, sizeof(s->err), "%s", err != NULL ? err : "");
    s->info = *cdn_httpc_info(r);
    if (s->cancel_in_done)
        cdn_httpc_cancel(r); /* a no-op: the request is finished */
    if (s->start_in_done) {
        struct cdn_httpc_request rq = {.url = s->next_url};
        s->next_res->c = s->c;
        s->next_res->r = cdn_httpc_start(s->c, &rq, &cbs, s->next_res);
    }
}

static void on_info(cdn_httpc_req_t *r, int status, const struct cdn_httpc_header *h, size_t n, void *data)
{
    struct res *s = data;
    s->infos++;
    s->info_status = status;
    for (size_t i = 0; i < n; i++)
        if (h[i].name_len == 4 && strncasecmp(h[i].name, "link", 4) == 0)
            hcopy(s->link, sizeof(s->link), &h[i]);
    if (s->cancel_in_info)
        cdn_httpc_cancel(r);
}

static const struct cdn_httpc_cbs cbs = {on_head, on_body, on_done, on_info};

static cdn_httpc_t *client(const struct cdn_httpc_opts *o)
{
    char err[256] = "";
    struct cdn_httpc_opts opts = o != NULL ? *o : (struct cdn_httpc_opts){0};
    opts.h1_engine = use_h1;
    cdn_httpc_t *c = cdn_httpc_new(loop, &opts, err, sizeof(err));
    if (c == NULL)
        print_error("cdn_httpc_new: %s\n", err);
    return c;
}

static cdn_httpc_req_t *get(cdn_httpc_t *c, const char *path, struct res *s)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", origin.base, path);
    struct cdn_httpc_request rq = {.url = url};
    s->c = c;
    s->r = cdn_httpc_start(c, &rq, &cbs, s);
    if (s->r != NULL && h1c_is_req(s->r) != use_h1)
        fail_msg("engine: h1 %d, wanted %d", h1c_is_req(s->r), use_h1);
    return s->r;
}

/* ---- tests ---- */

static void get_200_and_404(void **state)
{
    cdn_httpc_t *c = client(NULL);
    struct res a = {0}, b = {0};
    assert_non_null(get(c, "/small", &a));
    assert_non_null(get(c, "/nothing-here", &b));
    assert_int_equal(cdn_httpc_inflight(c), 2);
    assert_int_equal(a.done + a.heads, 0); /* nothing before start returns */
    assert_true(run_until(&a.done));
    assert_true(run_until(&b.done));
    assert_string_equal(a.err, "");
    assert_int_equal(a.heads, 1);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.version, 11);
    assert_string_equal(a.body, "hello");
    assert_string_equal(a.x_test, "yes");
    assert_int_equal(a.info.status, 200);
    assert_int_equal(a.info.body_bytes, 5);
    assert_string_equal(a.info.primary_ip, "127.0.0.1");
    assert_string_equal(b.err, ""); /* a 404 is a completed response */
    assert_int_equal(b.info.error, CDN_HTTPC_OK);
    assert_string_equal(cdn_httpc_error_name(CDN_HTTPC_RESET), "reset");
    assert_int_equal(b.status, 404);
    assert_string_equal(b.body, "nope");
    assert_int_equal(cdn_httpc_inflight(c), 0);
    cdn_httpc_free(c);
}

static void post_echo_and_head(void **state)
{
    cdn_httpc_t *c = client(NULL);
    struct res a = {0}, h = {0}, e = {0};
    char url[128];
    snprintf(url, sizeof(url), "%s/echo", origin.base);
    const char *hdrs[] = {"Content-Type: text/plain", NULL};
    struct cdn_httpc_request rq = {.method = "POST", .url = url, .body = "ping-pong", .body_len = 9, .headers = hdrs};
    a.c = c;
    assert_non_null(cdn_httpc_start(c, &rq, &cbs, &a));
    /* Expect: 100-continue: the 1xx head is skipped, on_head runs once with the final one */
    const char *hdrs2[] = {"Expect: 100-continue", NULL};
    struct cdn_httpc_request rq2 = {.method = "PUT", .url = url, .body = "abc", .body_len = 3, .headers = hdrs2};
    assert_non_null(cdn_httpc_start(c, &rq2, &cbs, &e));
    struct cdn_httpc_request hq = {.method = "HEAD", .url = url};
    assert_non_null(cdn_httpc_start(c, &hq, &cbs, &h));
    assert_true(run_until(&a.done));
    assert_true(run_until(&e.done));
    assert_true(run_until(&h.done));
    assert_string_equal(a.err, "");
    assert_string_equal(a.body, "ping-pong");
    assert_string_equal(a.x_method, "POST");
    assert_string_equal(e.err, "");
    assert_int_equal(e.heads, 1);
    assert_int_equal(e.status, 200);
    assert_string_equal(e.body, "abc");
    assert_string_equal(e.x_method, "PUT");
    assert_string_equal(h.err, "");
    assert_int_equal(h.heads, 1);
    assert_int_equal(h.bodies, 0);
    assert_string_equal(h.x_method, "HEAD");
    cdn_httpc_free(c);
}

static void refused_and_bad_args(void **state)
{
    /* a port nobody listens on: bound, then closed */
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sin.sin_port));

    cdn_httpc_t *c = client(NULL);
    struct res a = {0};
    struct cdn_httpc_request rq = {.url = url};
    assert_non_null(cdn_httpc_start(c, &rq, &cbs, &a));
    assert_true(run_until(&a.done));
    assert_string_equal(a.err, "connection refused");
    assert_int_equal(a.info.error, CDN_HTTPC_REFUSED); /* typed: a caller retries elsewhere on it */
    assert_int_equal(a.heads, 0);

    struct cdn_httpc_request bad = {.url = "ftp://127.0.0.1/"}, worse = {.url = "not a url"};
    assert_null(cdn_httpc_start(c, &bad, &cbs, &a));
    assert_null(cdn_httpc_start(c, &worse, &cbs, &a));
    /* a name without a resolver: fails through on_done, after start returned */
    struct res n = {0};
    struct cdn_httpc_request name = {.url = "http://origin.shop.test/"};
    assert_non_null(cdn_httpc_start(c, &name, &cbs, &n));
    assert_int_equal(n.done, 0);
    assert_true(run_until(&n.done));
    assert_string_equal(n.err, "could not resolve host: no resolver");
    assert_int_equal(n.info.error, CDN_HTTPC_DNS);
    cdn_httpc_free(c);
}

static void timeout_against_slow(void **state)
{
    cdn_httpc_t *c = client(&(struct cdn_httpc_opts){.timeout_ms = 5000});
    struct res a = {0};
    char url[128];
    snprintf(url, sizeof(url), "%s/slow", origin.base);
    struct cdn_httpc_request rq = {.url = url, .timeout_ms = 200}; /* per request beats the default */
    uint64_t t0 = cdn_now_ms();
    assert_non_null(cdn_httpc_start(c, &rq, &cbs, &a));
    assert_true(run_until(&a.done));
    assert_string_equal(a.err, "timed out");
    assert_int_equal(a.info.error, CDN_HTTPC_TIMEOUT); /* connected, then no answer in time */
    assert_true(cdn_now_ms() - t0 < 3000); /* ended by the timeout, not by the answer */
    assert_int_equal(a.heads, 0);
    cdn_httpc_free(c);
}

static void cancel_mid_transfer(void **state)
{
    cdn_httpc_t *c = client(NULL);
    /* from inside on_body: no more callbacks, no on_done */
    struct res a = {.cancel_in_body = 1};
    get(c, "/stream?4000000", &a);
    assert_true(run_until(&a.bodies));
    turns(5);
    assert_int_equal(a.bodies, 1);
    assert_int_equal(a.done, 0);
    assert_int_equal(cdn_httpc_inflight(c), 0);

    /* from outside, while the origin holds the request */
    struct res b = {0}, after = {0};
    int started = origin.slow_started, disposed = origin.slow_disposed;
    get(c, "/slow", &b);
    uint64_t deadline = cdn_now_ms() + 5000;
    while (origin.slow_started == started && cdn_now_ms() < deadline)
        h2o_evloop_run(loop, 50);
    assert_int_equal(origin.slow_started, started + 1);
    cdn_httpc_cancel(b.r);
    assert_int_equal(cdn_httpc_inflight(c), 0);
    /* the origin sees the connection go away */
    deadline = cdn_now_ms() + 5000;
    while (origin.slow_disposed == disposed && cdn_now_ms() < deadline)
        h2o_evloop_run(loop, 50);
    assert_int_equal(origin.slow_disposed, disposed + 1);
    assert_int_equal(b.done + b.heads, 0);
    /* and the client still works */
    get(c, "/small", &after);
    assert_true(run_until(&after.done));
    assert_string_equal(after.body, "hello");
    cdn_httpc_free(c);
}

static void max_body(void **state)
{
    cdn_httpc_t *c = client(&(struct cdn_httpc_opts){.max_body = 100000});
    struct res chunked = {0}, announced = {0}, fits = {0};
    get(c, "/stream?300000", &chunked);
    get(c, "/big?300000", &announced);
    get(c, "/big?100000", &fits);
    assert_true(run_until(&chunked.done));
    assert_true(run_until(&announced.done));
    assert_true(run_until(&fits.done));
    assert_string_equal(chunked.err, "response too large");
    assert_int_equal(chunked.info.error, CDN_HTTPC_TOO_LARGE);
    assert_true(chunked.total <= 100000);
    assert_string_equal(announced.err, "response too large");
    assert_int_equal(announced.total, 0); /* refused on its Content-Length */
    assert_string_equal(fits.err, "");
    assert_int_equal(fits.total, 100000);

    /* HEAD: a large Content-Length without a body is not "too large" */
    struct res head = {0};
    char url[128];
    snprintf(url, sizeof(url), "%s/big?300000", origin.base);
    cdn_httpc_start(c, &(struct cdn_httpc_request){.method = "HEAD", .url = url}, &cbs, &head);
    assert_true(run_until(&head.done));
    assert_string_equal(head.err, "");
    assert_int_equal(head.status, 200);

    /* the buffered fetch has the same cap */
    cdn_httpc_free(c);
}

static void streaming_chunks(void **state)
{
    cdn_httpc_t *c = client(NULL);
    struct res a = {0};
    get(c, "/stream?1048576", &a);
    assert_true(run_until(&a.done));
    assert_string_equal(a.err, "");
    assert_int_equal(a.total, 1048576);
    assert_true(a.bodies > 1);
    assert_int_equal(a.info.body_bytes, 1048576);
    cdn_httpc_free(c);
}

static void pause_resume(void **state)
{
    cdn_httpc_t *c = client(NULL);
    struct res a = {.pause_in_body = 1};
    get(c, "/big?2000000", &a);
    assert_true(run_until(&a.bodies));
    uint64_t at_pause = a.total;
    turns(10);
    assert_int_equal(a.bodies, 1); /* paused: nothing delivered */
    assert_int_equal(a.total, at_pause);
    assert_int_equal(a.done, 0);
    cdn_httpc_pause(a.r, 0);
    assert_true(run_until(&a.done));
    assert_string_equal(a.err, "");
    assert_int_equal(a.total, 2000000);
    cdn_httpc_free(c);
}

static void keepalive_reuse(void **state)
{
    cdn_httpc_t *c = client(NULL);
    struct res a = {0}, b = {0};
    get(c, "/small", &a);
    assert_true(run_until(&a.done));
    assert_int_equal(a.info.new_connections, 1);
    get(c, "/small", &b);
    assert_true(run_until(&b.done));
    assert_string_equal(b.body, "hello");
    assert_int_equal(b.info.new_connections, 0);
    cdn_httpc_free(c);
}

static void concurrent_64(void **state)
{
    cdn_httpc_t *c = client(NULL);
    static struct res rs[64];
    memset(rs, 0, sizeof(rs));
    int before = origin.requests;
    for (int i = 0; i < 64; i++)
        assert_non_null(get(c, i % 2 ? "/small" : "/big?20000", &rs[i]));
    assert_int_equal(cdn_httpc_inflight(c), 64);
    int done = 0;
    uint64_t deadline = cdn_now_ms() + 8000;
    while (cdn_now_ms() < deadline) {
        done = 0;
        for (int i = 0; i < 64; i++)
            done += rs[i].done;
        if (done == 64)
            break;
        h2o_evloop_run(loop, 50);
    }
    assert_int_equal(done, 64);
    for (int i = 0; i < 64; i++) {
        assert_string_equal(rs[i].err, "");
        assert_int_equal(rs[i].status, 200);
        assert_int_equal(rs[i].total, i % 2 ? 5 : 20000);
    }
    assert_int_equal(origin.requests - before, 64);
    cdn_httpc_free(c);
}

static void names_through_resolver(void **state)
{
    /* a DNS server that never answers: only /etc/hosts can help */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t len = sizeof(sin);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    getsockname(fd, (struct sockaddr *)&sin, &len);
    char servers[64], err[256], url[128];
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", ntohs(sin.sin_port));
    cdn_resolver_t *rs = cdn_resolver_new(
        loop, &(struct cdn_resolver_opts){.servers = servers, .timeout_ms = 100, .tries = 1, .family = AF_INET}, err,
        sizeof(err));
    assert_non_null(rs);
    cdn_httpc_t *c = client(&(struct cdn_httpc_opts){.resolver = rs});
    struct res a = {0}, b = {0};
    snprintf(url, sizeof(url), "http://localhost:%d/hdrs", origin.port);
    struct cdn_httpc_request rq = {.url = url};
    assert_non_null(cdn_httpc_start(c, &rq, &cbs, &a));
    struct cdn_httpc_request nx = {.url = "http://nowhere.shop.test/"};
    assert_non_null(cdn_httpc_start(c, &nx, &cbs, &b));
    assert_true(run_until(&a.done));
    assert_true(run_until(&b.done));
    assert_string_equal(a.err, "");
    assert_string_equal(a.info.primary_ip, "127.0.0.1");
    char want[64];
    snprintf(want, sizeof(want), "host=localhost:%d\n", origin.port);
    assert_non_null(strstr(a.body, want));
    assert_string_equal(b.err, "could not resolve host: timed out");
    assert_int_equal(b.info.error, CDN_HTTPC_DNS);
    cdn_httpc_free(c);
    cdn_resolver_free(rs);
    close(fd);
}

static void connect_to_and_local_ip(void **state)
{
    cdn_httpc_t *c = client(&(struct cdn_httpc_opts){.local_ip = "127.0.0.42"});
    struct res a = {0};
    char to[64];
    snprintf(to, sizeof(to), "127.0.0.1:%d", origin.port);
    const char *hdrs[] = {"X-Custom: sent-upstream", NULL};
    struct cdn_httpc_request rq = {.url = "http://www.shop.test/hdrs", .connect_to = to, .headers = hdrs};
    assert_non_null(cdn_httpc_start(c, &rq, &cbs, &a));
    assert_true(run_until(&a.done));
    assert_string_equal(a.err, "");
    /* what went upstream: the URL's Host, our header, from our source address */
    assert_non_null(strstr(a.body, "host=www.shop.test\n"));
    assert_non_null(strstr(a.body, "x-custom=sent-upstream\n"));
    assert_non_null(strstr(a.body, "peer=127.0.0.42\n"));
    cdn_httpc_free(c);

    char err[256];
    assert_null(cdn_httpc_new(loop, &(struct cdn_httpc_opts){.local_ip = "eth0"}, err, sizeof(err)));
    assert_non_null(strstr(err, "eth0"));
}

static void h2c_multiplexed(void **state)
{
    cdn_httpc_t *c = client(&(struct cdn_httpc_opts){.http2 = 1});
    int saved = use_h1;
    use_h1 = 0; /* http2 keeps every request on libcurl, h1_engine or not (get() checks) */
    struct res rs[10];
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < 10; i++)
        get(c, "/big?30000", &rs[i]);
    long conns = 0;
    for (int i = 0; i < 10; i++)
        assert_true(run_until(&rs[i].done));
    for (int i = 0; i < 10; i++) {
        if (rs[i].err[0])
            print_message("# request %d: %s (heads %d, %d bytes)\n", i, rs[i].err, rs[i].heads, (int)rs[i].total);
    }
    for (int i = 0; i < 10; i++) {
        assert_string_equal(rs[i].err, "");
        assert_int_equal(rs[i].version, 20);
        assert_int_equal(rs[i].total, 30000);
        conns += rs[i].info.new_connections;
    }
    assert_true(conns >= 1 && conns < 10); /* multiplexed */
    use_h1 = saved;
    cdn_httpc_free(c);
}

static void reentrancy(void **state)
{
    /* abort from on_head */
    cdn_httpc_t *c = client(NULL);
    struct res a = {.abort_in_head = 1};
    get(c, "/big?100000", &a);
    assert_true(run_until(&a.done));
    assert_string_equal(a.err, "aborted");
    assert_int_equal(a.bodies, 0);

    /* start the next request from inside on_done */
    struct res first = {.start_in_done = 1}, second = {0};
    char url[128];
    snprintf(url, sizeof(url), "%s/small", origin.base);
    first.next_res = &second;
    first.next_url = url;
    get(c, "/small", &first);
    assert_true(run_until(&second.done));
    assert_string_equal(second.body, "hello");
    assert_int_equal(second.info.new_connections, 0); /* it reused the connection just released */

    /* start one from inside on_body */
    struct res outer = {.start_in_body = 1}, inner = {0};
    outer.next_res = &inner;
    outer.next_url = url;
    get(c, "/big?200000", &outer);
    assert_true(run_until(&outer.done));
    assert_true(run_until(&inner.done));
    assert_string_equal(outer.err, "");
    assert_int_equal(outer.total, 200000);
    assert_string_equal(inner.err, "");
    assert_string_equal(inner.body, "hello");

    /* free the whole client from inside on_head while others run */
    struct res x = {.free_in_head = 1}, y = {0}, z = {0};
    get(c, "/small", &x);
    get(c, "/stream?64000000", &y); /* long enough to be in flight whatever the load */
    get(c, "/slow", &z);
    assert_true(run_until(&x.heads));
    turns(5);
    if (x.done + y.done + z.done != 0)
        print_message("# done x %d (%s) y %d (%s) z %d (%s)\n", x.done, x.err, y.done, y.err, z.done, z.err);
    assert_int_equal(x.done + y.done + z.done, 0);
}

/* Pooled easy handles keep options between requests: nothing of one request may leak into the
 * next on the same handle (the pool is LIFO, so back-to-back requests share one). */
static void pooled_handle_reuse(void **state)
{
    cdn_httpc_t *c = client(NULL);
    char echo[128], hdrs[128], small[128], to[64];
    snprintf(echo, sizeof(echo), "%s/echo", origin.base);
    snprintf(hdrs, sizeof(hdrs), "%s/hdrs", origin.base);
    snprintf(small, sizeof(small), "%s/small", origin.base);
    snprintf(to, sizeof(to), "127.0.0.1:%d", origin.port);
    const char *custom[] = {"X-Custom: first", "X-Other: 1", NULL};

    /* POST with a body, then a GET: no method or body left over */
    struct res p = {0}, g = {0};
    p.c = g.c = c;
    cdn_httpc_start(c, &(struct cdn_httpc_request){.method = "POST", .url = echo, .body = "abc", .body_len = 3}, &cbs, &p);
    assert_true(run_until(&p.done));
    assert_string_equal(p.x_method, "POST");
    assert_string_equal(p.body, "abc");
    cdn_httpc_start(c, &(struct cdn_httpc_request){.url = echo}, &cbs, &g);
    assert_true(run_until(&g.done));
    assert_string_equal(g.err, "");
    assert_string_equal(g.x_method, "GET");
    assert_string_equal(g.body, "");

    /* HEAD, then GET: the GET has its body */
    struct res h = {0}, g2 = {0};
    cdn_httpc_start(c, &(struct cdn_httpc_request){.method = "HEAD", .url = small}, &cbs, &h);
    assert_true(run_until(&h.done));
    assert_int_equal(h.bodies, 0);
    cdn_httpc_start(c, &(struct cdn_httpc_request){.url = small}, &cbs, &g2);
    assert_true(run_until(&g2.done));
    assert_string_equal(g2.body, "hello");

    /* GETs: headers and connect-to of one are not sent with the next */
    for (int round = 0; round < 2; round++) {
        struct res a = {0}, b = {0}, d = {0};
        cdn_httpc_start(c, &(struct cdn_httpc_request){.url = hdrs, .headers = custom}, &cbs, &a);
        assert_true(run_until(&a.done));
        assert_non_null(strstr(a.body, "x-custom=first\n"));
        cdn_httpc_start(c, &(struct cdn_httpc_request){.url = hdrs}, &cbs, &b);
        assert_true(run_until(&b.done));
        assert_non_null(strstr(b.body, "x-custom=\n"));
        cdn_httpc_start(c, &(struct cdn_httpc_request){.url = "http://www.shop.test/hdrs", .connect_to = to}, &cbs, &d);
        assert_true(run_until(&d.done));
        assert_string_equal(d.err, "");
        assert_non_null(strstr(d.body, "host=www.shop.test\n"));
    }
    struct res n = {0}; /* connect-to gone: a name without a resolver fails again */
    cdn_httpc_start(c, &(struct cdn_httpc_request){.url = "http://www.shop.test/hdrs"}, &cbs, &n);
    assert_true(run_until(&n.done));
    assert_string_equal(n.err, "could not resolve host: no resolver");

    /* URLs the quick parser leaves to curl_url() still work, or are still refused */
    char odd[128];
    struct res u = {0}, v = {0};
    snprintf(odd, sizeof(odd), "HTTP://127.1:%d/small", origin.port); /* curl: http, 127.0.0.1 */
    assert_non_null(cdn_httpc_start(c, &(struct cdn_httpc_request){.url = odd}, &cbs, &u));
    assert_true(run_until(&u.done));
    assert_string_equal(u.err, "");
    assert_string_equal(u.body, "hello");
    snprintf(odd, sizeof(odd), "http://[::1]:%d/small?x#y", origin.port); /* quick path; nobody on ::1 */
    assert_non_null(cdn_httpc_start(c, &(struct cdn_httpc_request){.url = odd}, &cbs, &v));
    assert_true(run_until(&v.done));
    assert_true(strcmp(v.err, "connection refused") == 0 || strcmp(v.err, "could not connect") == 0);
    static const char *const bad[] = {"http://127.0.0.1:80/a b", "http://127.0.0.1:99999/", "http://[1:2]/",
                                      "http://h\x01/", "https://:80/", NULL};
    for (int i = 0; bad[i] != NULL; i++)
        assert_null(cdn_httpc_start(c, &(struct cdn_httpc_request){.url = bad[i]}, &cbs, &u));
    cdn_httpc_free(c);
}

/* A kept-alive connection the server has closed: the next request still succeeds, on a new
 * connection (curl finds it dead before use, or retries when the first write/read fails). */
static void dead_keepalive(void **state)
{
    cdn_httpc_t *c = client(NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", rawo.port);
    int accepted = rawo.accepted;
    for (int i = 0; i < 3; i++) { /* the server's FIN has arrived before the next request */
        struct res a = {0};
        assert_non_null(cdn_httpc_start(c, &(struct cdn_httpc_request){.url = url}, &cbs, &a));
        assert_true(run_until(&a.done));
        assert_string_equal(a.err, "");
        assert_int_equal(a.status, 200);
        assert_string_equal(a.body, "ok");
        assert_int_equal(a.info.new_connections, 1);
        turns(3);
    }
    /* back to back: the next request starts inside on_done, racing the server's close */
    static struct res chain[8];
    memset(chain, 0, sizeof(chain));
    for (int i = 0; i < 7; i++) {
        chain[i].start_in_done = 1;
        chain[i].next_res = &chain[i + 1];
        chain[i].next_url = url;
    }
    chain[0].c = c;
    assert_non_null(chain[0].r = cdn_httpc_start(c, &(struct cdn_httpc_request){.url = url}, &cbs, &chain[0]));
    assert_true(run_until(&chain[7].done));
    for (int i = 0; i < 8; i++) {
        assert_string_equal(chain[i].err, "");
        assert_string_equal(chain[i].body, "ok");
    }
    assert_int_equal(rawo.accepted - accepted, 11);
    cdn_httpc_free(c);
}

static void buffered_fetch_cb(const char *err, int status, const void *body, size_t len,
                              const struct cdn_httpc_info *info, void *data)
{
    struct res *s = data;
    s->done++;
    s->status = status;
    snprintf(s->err, sizeof(s->err), "%s", err != NULL ? err : "");
    s->len = len < sizeof(s->body) - 1 ? len : sizeof(s->body) - 1;
    memcpy(s->body, body != NULL ? body : "", s->len);
    s->body[s->len] = '\0';
    s->total = len;
    s->info = *info;
}

static void buffered_fetch(void **state)
{
    cdn_httpc_t *c = client(&(struct cdn_httpc_opts){.max_body = 50000});
    struct res a = {0}, b = {0};
    char url[128], url2[128];
    snprintf(url, sizeof(url), "%s/small", origin.base);
    snprintf(url2, sizeof(url2), "%s/stream?60000", origin.base);
    assert_non_null(cdn_httpc_fetch(c, &(struct cdn_httpc_request){.url = url}, buffered_fetch_cb, &a));
    assert_non_null(cdn_httpc_fetch(c, &(struct cdn_httpc_request){.url = url2}, buffered_fetch_cb, &b));
    assert_true(run_until(&a.done));
    assert_true(run_until(&b.done));
    assert_string_equal(a.err, "");
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "hello");
    assert_int_equal(a.info.body_bytes, 5);
    assert_string_equal(b.err, "response too large");
    cdn_httpc_free(c);
}

/* A kept-alive connection that the server closes, unanswered, when the next request arrives
 * (the close races the request; nothing came back): that GET is sent again, once, on a new
 * connection, and succeeds. */
static void dead_keepalive_retry(void **state)
{
    cdn_httpc_t *c = client(NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/keep2", rawo.port);
    int accepted = rawo.accepted, dropped = rawo.dropped;
    for (int round = 0; round < 2; round++) {
        struct res a = {0}, b = {0};
        assert_non_null(cdn_httpc_start(c, &(struct cdn_httpc_request){.url = url}, &cbs, &a));
        assert_true(run_until(&a.done));
        assert_string_equal(a.err, "");
        assert_string_equal(a.body, "ok");
        turns(3); /* the connection stays open and idle */
        assert_non_null(cdn_httpc_start(c, &(struct cdn_httpc_request){.url = url}, &cbs, &b));
        assert_true(run_until(&b.done));
        assert_string_equal(b.err, "");
        assert_int_equal(b.status, 200);
        assert_string_equal(b.body, "ok");
        assert_int_equal(b.heads, 1);
        assert_true(b.info.new_connections >= 1); /* the answer came on a new connection */
        turns(3);
    }
    /* round 2's first request met the fate of round 1's second (its connection had one answer) */
    assert_int_equal(rawo.dropped - dropped, 3);
    assert_int_equal(rawo.accepted - accepted, 4);
    cdn_httpc_free(c);
}

/* 100 and 103 before the final head: 103 goes to on_info (with its fields), 100 nowhere, the
 * final head to on_head once. */
static void early_hints(void **state)
{
    cdn_httpc_t *c = client(NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/early", rawo.port);
    struct res a = {0};
    a.c = c;
    assert_non_null(a.r = cdn_httpc_start(c, &(struct cdn_httpc_request){.url = url}, &cbs, &a));
    assert_int_equal(h1c_is_req(a.r), use_h1);
    assert_true(run_until(&a.done));
    assert_string_equal(a.err, "");
    assert_int_equal(a.infos, 1);
    assert_int_equal(a.info_status, 103);
    assert_string_equal(a.link, "</a.css>; rel=preload");
    assert_int_equal(a.heads, 1);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "ok");
    cdn_httpc_free(c);
}

/* cancel from inside on_info and on_head: no callback after it; inside on_done: a no-op */
static void cancel_in_callbacks(void **state)
{
    cdn_httpc_t *c = client(NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/early", rawo.port);
    struct res i = {.cancel_in_info = 1}, h = {.cancel_in_head = 1}, d = {.cancel_in_done = 1}, after = {0};
    i.c = c;
    assert_non_null(i.r = cdn_httpc_start(c, &(struct cdn_httpc_request){.url = url}, &cbs, &i));
    get(c, "/big?100000", &h);
    get(c, "/small", &d);
    assert_true(run_until(&i.infos));
    assert_true(run_until(&h.heads));
    assert_true(run_until(&d.done));
    turns(5);
    assert_int_equal(i.heads + i.bodies + i.done, 0);
    assert_int_equal(h.heads, 1);
    assert_int_equal(h.bodies + h.done, 0);
    assert_int_equal(d.done, 1);
    assert_string_equal(d.body, "hello");
    assert_int_equal(cdn_httpc_inflight(c), 0);
    get(c, "/small", &after);
    assert_true(run_until(&after.done));
    assert_string_equal(after.body, "hello");
    cdn_httpc_free(c);
}

/* pause in the middle of a chunked body: nothing comes while paused, all of it after */
static void pause_resume_chunked(void **state)
{
    cdn_httpc_t *c = client(NULL);
    struct res a = {.pause_in_body = 1};
    get(c, "/stream?1000000", &a);
    assert_true(run_until(&a.bodies));
    uint64_t at_pause = a.total;
    turns(10);
    assert_int_equal(a.bodies, 1);
    assert_int_equal(a.total, at_pause);
    cdn_httpc_pause(a.r, 1); /* again: a no-op */
    cdn_httpc_pause(a.r, 0);
    assert_true(run_until(&a.done));
    assert_string_equal(a.err, "");
    assert_int_equal(a.total, 1000000);
    assert_int_equal(a.info.body_bytes, 1000000);
    cdn_httpc_free(c);
}

/* What goes upstream is the same bytes from both engines: the request line, Host, curl's
 * "Accept: * / *" unless given, "Name:" removes, "Name;" sends an empty field, the rest as given. */
static void same_request_head(void **state)
{
    char url[128], heads[2][3][2048];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x/y?a=1&b=2#frag", rawo.port);
    const char *h1[] = {"X-A: 1", "Accept:", "Expect:", "Empty;", "X-B:  two words ", NULL};
    const char *h2[] = {"Host: www.shop.test", "Accept: text/html", NULL};
    const char *const *sets[3] = {NULL, h1, h2};
    for (int e = 0; e < 2; e++) {
        cdn_httpc_t *c = cdn_httpc_new(loop, &(struct cdn_httpc_opts){.h1_engine = e}, NULL, 0);
        assert_non_null(c);
        for (int k = 0; k < 3; k++) {
            struct res a = {0};
            cdn_httpc_req_t *r = cdn_httpc_start(c, &(struct cdn_httpc_request){.url = url, .headers = sets[k]}, &cbs, &a);
            assert_non_null(r);
            assert_int_equal(h1c_is_req(r), e);
            assert_true(run_until(&a.done));
            assert_string_equal(a.err, "");
            snprintf(heads[e][k], sizeof(heads[e][k]), "%s", rawo.last);
        }
        cdn_httpc_free(c);
    }
    for (int k = 0; k < 3; k++)
        assert_string_equal(heads[1][k], heads[0][k]);
    char want[256];
    snprintf(want, sizeof(want), "GET /x/y?a=1&b=2 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-A: 1\r\nEmpty:\r\n", rawo.port);
    assert_non_null(strstr(heads[1][1], want));
}

static int eng_curl(void **state)
{
    use_h1 = 0;
    return 0;
}

static int eng_h1(void **state)
{
    use_h1 = 1;
    return 0;
}

/* each test with libcurl only, then with the HTTP/1.1 engine on */
#define BOTH(f) {"curl:" #f, f, eng_curl, NULL, NULL}, {"h1:" #f, f, eng_h1, NULL, NULL}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the origin writes to clients that went away */
    loop = h2o_evloop_create();
    if (rawo_start() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        BOTH(get_200_and_404),     BOTH(post_echo_and_head),     BOTH(refused_and_bad_args),
        BOTH(timeout_against_slow), BOTH(cancel_mid_transfer),   BOTH(max_body),
        BOTH(streaming_chunks),    BOTH(pause_resume),           BOTH(keepalive_reuse),
        BOTH(concurrent_64),       BOTH(names_through_resolver), BOTH(connect_to_and_local_ip),
        BOTH(h2c_multiplexed),     BOTH(reentrancy),             BOTH(buffered_fetch),
        BOTH(pooled_handle_reuse), BOTH(dead_keepalive),         BOTH(dead_keepalive_retry),
        BOTH(early_hints),         BOTH(cancel_in_callbacks),    BOTH(pause_resume_chunked),
        cmocka_unit_test(same_request_head),
    };
    return cmocka_run_group_tests(tests, origin_setup, NULL);
}
