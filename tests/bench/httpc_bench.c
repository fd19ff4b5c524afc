/* tests/bench/httpc_bench.c - the httpc benchmark: cdn_httpc beside h2o's own upstream
 * client on the same origin, one thread, N small objects with C in flight.
 *
 *   httpc_bench origin PORT                 a tiny h2o origin: /obj/<n> -> 200 bytes, keep-alive
 *   httpc_bench httpc HOST:PORT N C         cdn_httpc (libcurl multi-socket on the h2o loop)
 *   httpc_bench h2o HOST:PORT N C           h2o_http1client with a socket pool (what the proxy uses)
 *   httpc_bench gateway PORT HOST:PORT      h2o server: /proxy/ = h2o_proxy_register_reverse_proxy,
 *                                           /httpc/ = a handler fetching through cdn_httpc
 *
 * Client modes print one line: "<mode> n=.. c=.. ok=.. fail=.. ms=.. rps=.. conns=.. hb_max_gap_ms=..".
 * A 10 ms heartbeat timer runs on the same loop: its largest gap shows whether anything blocked it. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdn/httpc.h"
#include "cdn/loop.h"
#include "cdn/proc.h"

static h2o_evloop_t *loop;
static char host[64];
static int port;
static int total, conc, started, finished, failed;
static long conns;

/* ---- heartbeat ---- */

static cdn_timer_t *hb;
static uint64_t hb_last, hb_max_gap;

static void on_heartbeat(cdn_timer_t *t, void *data)
{
    uint64_t now = cdn_now_ms();
    if (hb_last != 0 && now - hb_last > hb_max_gap)
        hb_max_gap = now - hb_last;
    hb_last = now;
    cdn_timer_start(t, 10);
}

static void heartbeat_start(void)
{
    hb = cdn_timer_new(loop, on_heartbeat, NULL);
    hb_last = 0;
    hb_max_gap = 0;
    cdn_timer_start(hb, 10);
}

static void report(const char *mode, uint64_t t0)
{
    uint64_t ms = cdn_now_ms() - t0;
    printf("%s n=%d c=%d ok=%d fail=%d ms=%llu rps=%.0f conns=%ld hb_max_gap_ms=%llu\n", mode, total, conc,
           finished - failed, failed, (unsigned long long)ms, ms ? total * 1000.0 / ms : 0.0, conns,
           (unsigned long long)hb_max_gap);
}

/* ---- origin ---- */

static char body[200];

static int on_origin_req(h2o_handler_t *self, h2o_req_t *req)
{
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
    h2o_send_inline(req, body, sizeof(body));
    return 0;
}

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t actx;

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err == NULL && (sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(&actx, sock);
}

static int serve(int listen_port)
{
    char err[256];
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(listen_port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int fd = cdn_listen_tcp((struct sockaddr *)&sin, sizeof(sin), 0, err, sizeof(err));
    if (fd < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    h2o_context_init(&ctx, loop, &config);
    actx.ctx = &ctx;
    actx.hosts = config.hosts;
    h2o_socket_t *ls = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(ls, on_accept);
    while (h2o_evloop_run(loop, INT32_MAX) == 0)
        ;
    return 0;
}

/* ---- cdn_httpc client ---- */

static cdn_httpc_t *hc;

static void httpc_next(void);

static void on_fetched(const char *err, int status, const void *b, size_t len, const struct cdn_httpc_info *info,
                       void *data)
{
    finished++;
    if (err != NULL || status != 200 || len != sizeof(body))
        failed++;
    conns += info->new_connections;
    httpc_next();
}

static void httpc_next(void)
{
    while (started < total && started - finished < conc) {
        char url[128];
        snprintf(url, sizeof(url), "http://%s:%d/obj/%d", host, port, started++);
        if (cdn_httpc_fetch(hc, &(struct cdn_httpc_request){.url = url}, on_fetched, NULL) == NULL) {
            finished++;
            failed++;
        }
    }
}

static int run_httpc(int h1)
{
    char err[256];
    if ((hc = cdn_httpc_new(loop, &(struct cdn_httpc_opts){.h1_engine = h1}, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    heartbeat_start();
    uint64_t t0 = cdn_now_ms();
    httpc_next();
    while (finished < total)
        h2o_evloop_run(loop, 100);
    report(h1 ? "httpc-h1" : "httpc", t0);
    return failed != 0;
}

/* ---- h2o_http1client with a socket pool ---- */

static h2o_socketpool_t sockpool;
static h2o_http1client_ctx_t h1ctx;
static h2o_timeout_t io_timeout;
struct h1req {
    h2o_http1client_t *client;
    char reqbuf[256];
    h2o_iovec_t iov;
    size_t got;
    int status;
};

static void h1_next(void);

static void h1_finish(struct h1req *r, int ok, const char *why)
{
    if (!ok && failed == 0)
        fprintf(stderr, "h2o client: first failure: %s (status %d, %zu bytes)\n", why ? why : "?", r->status, r->got);
    finished++;
    if (!ok)
        failed++;
    free(r);
    h1_next();
}

static int on_h1_body(h2o_http1client_t *client, const char *errstr)
{
    struct h1req *r = client->data;
    /* at the end of stream the last bytes are still in the input buffer (as proxy.c knows) */
    r->got += client->sock->input->size;
    h2o_buffer_consume(&client->sock->input, client->sock->input->size);
    if (errstr != NULL) {
        h1_finish(r, errstr == h2o_http1client_error_is_eos && r->status == 200 && r->got == sizeof(body), errstr);
        return -1;
    }
    return 0;
}

static h2o_http1client_body_cb on_h1_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                          h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    struct h1req *r = client->data;
    if (errstr != NULL) {
        h1_finish(r, 0, errstr);
        return NULL;
    }
    r->status = status;
    if (errstr == h2o_http1client_error_is_eos) {
        h1_finish(r, 0, errstr);
        return NULL;
    }
    return on_h1_body;
}

static h2o_http1client_head_cb on_h1_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs,
                                             size_t *reqbufcnt, int *method_is_head)
{
    struct h1req *r = client->data;
    if (errstr != NULL) {
        h1_finish(r, 0, errstr);
        return NULL;
    }
    *reqbufs = &r->iov;
    *reqbufcnt = 1;
    *method_is_head = 0;
    return on_h1_head;
}

static void h1_next(void)
{
    while (started < total && started - finished < conc) {
        struct h1req *r = calloc(1, sizeof(*r));
        int n = snprintf(r->reqbuf, sizeof(r->reqbuf), "GET /obj/%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n", started++, host,
                         port);
        r->iov = h2o_iovec_init(r->reqbuf, (size_t)n);
        h2o_http1client_connect_with_pool(&r->client, r, &h1ctx, &sockpool, on_h1_connect);
    }
}

static int run_h2o_client(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &sin.sin_addr);
    h2o_socketpool_init_by_address(&sockpool, (struct sockaddr *)&sin, sizeof(sin), 0, (size_t)conc);
    h2o_socketpool_set_timeout(&sockpool, loop, 2000);
    h2o_timeout_init(loop, &io_timeout, 5000);
    h1ctx.loop = loop;
    h1ctx.io_timeout = &io_timeout;
    heartbeat_start();
    uint64_t t0 = cdn_now_ms();
    h1_next();
    while (finished < total)
        h2o_evloop_run(loop, 100);
    conns = -1; /* not known from the public API */
    report("h2o", t0);
    return failed != 0;
}

/* ---- gateway: h2o's proxy and a cdn_httpc handler side by side ---- */

struct gw_fetch {
    h2o_req_t *req;
    cdn_httpc_req_t *r;
    h2o_generator_t gen;
};

static void on_gw_dispose(void *p)
{
    struct gw_fetch *f = p;
    if (f->r != NULL)
        cdn_httpc_cancel(f->r); /* the client went away first */
}

static void on_gw_fetched(const char *err, int status, const void *b, size_t len, const struct cdn_httpc_info *info,
                          void *data)
{
    struct gw_fetch *f = data;
    f->r = NULL;
    if (err != NULL) {
        h2o_send_error_502(f->req, "Bad Gateway", err, 0);
        return;
    }
    f->req->res.status = status;
    f->req->res.reason = "OK";
    char *copy = h2o_mem_alloc_pool(&f->req->pool, len + 1);
    memcpy(copy, b, len);
    h2o_send_inline(f->req, copy, len);
}

static cdn_httpc_t *hc_h1; /* the gateway's /h1/: the HTTP/1.1 engine */

static int on_gw_httpc(h2o_handler_t *self, h2o_req_t *req)
{
    struct gw_fetch *f = h2o_mem_alloc_shared(&req->pool, sizeof(*f), on_gw_dispose);
    char url[512];
    /* /httpc/obj/1 or /h1/obj/1 -> origin /obj/1 */
    int h1 = req->path.len > 4 && memcmp(req->path.base, "/h1/", 4) == 0, skip = h1 ? 3 : 6;
    snprintf(url, sizeof(url), "http://%s:%d%.*s", host, port, (int)req->path.len - skip, req->path.base + skip);
    f->req = req;
    f->r = cdn_httpc_fetch(h1 ? hc_h1 : hc, &(struct cdn_httpc_request){.url = url}, on_gw_fetched, f);
    if (f->r == NULL)
        h2o_send_error_502(req, "Bad Gateway", "bad url", 0);
    return 0;
}

static int run_gateway(int listen_port)
{
    char err[256], up[128];
    if ((hc = cdn_httpc_new(loop, NULL, err, sizeof(err))) == NULL ||
        (hc_h1 = cdn_httpc_new(loop, &(struct cdn_httpc_opts){.h1_engine = 1}, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    h2o_hostconf_t *hconf = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_url_t upstream;
    snprintf(up, sizeof(up), "http://%s:%d/", host, port);
    h2o_url_parse(up, SIZE_MAX, &upstream);
    h2o_proxy_register_reverse_proxy(h2o_config_register_path(hconf, "/proxy/", 0), &upstream,
                                     &(h2o_proxy_config_vars_t){.io_timeout = 5000, .keepalive_timeout = 2000});
    h2o_create_handler(h2o_config_register_path(hconf, "/httpc/", 0), sizeof(h2o_handler_t))->on_req = on_gw_httpc;
    h2o_create_handler(h2o_config_register_path(hconf, "/h1/", 0), sizeof(h2o_handler_t))->on_req = on_gw_httpc;
    heartbeat_start();
    return serve(listen_port);
}

static int parse_hostport(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = atoi(colon + 1);
    return port > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    memset(body, 'x', sizeof(body));
    loop = h2o_evloop_create();
    h2o_config_init(&config);
    if (argc == 3 && strcmp(argv[1], "origin") == 0) {
        h2o_hostconf_t *hconf = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
        h2o_create_handler(h2o_config_register_path(hconf, "/", 0), sizeof(h2o_handler_t))->on_req = on_origin_req;
        return serve(atoi(argv[2]));
    }
    if (argc == 4 && strcmp(argv[1], "gateway") == 0 && parse_hostport(argv[3]) == 0)
        return run_gateway(atoi(argv[2]));
    if (argc == 5 && parse_hostport(argv[2]) == 0) {
        total = atoi(argv[3]);
        conc = atoi(argv[4]);
        if (strcmp(argv[1], "httpc") == 0 || strcmp(argv[1], "httpc-h1") == 0)
            return run_httpc(strcmp(argv[1], "httpc-h1") == 0);
        if (strcmp(argv[1], "h2o") == 0)
            return run_h2o_client();
    }
    fprintf(stderr, "usage: %s origin PORT | httpc|httpc-h1|h2o HOST:PORT N C | gateway PORT HOST:PORT\n", argv[0]);
    return 2;
}
