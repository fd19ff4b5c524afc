/* lib/admin.c - the admin listener: /healthz, /metrics and the program's routes (see
 * cdn/admin.h). One h2o host with one handler on "/" that dispatches on the path. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/admin.h"
#include "cdn/h1strict.h"
#include "cdn/http.h"
#include "cdn/proc.h"

struct cdn_admin {
    struct cdn_admin_opts o;
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx;
    h2o_socket_t *ls;
    char paths[512];            /* the 404 text: "admin: /healthz /metrics /backends\n" */
    cdn_series_t *refused[3];   /* missing, wrong, no-token (NULL without metrics) */
};

struct handler {
    h2o_handler_t super;
    cdn_admin_t *a;
};

void cdn_admin_send_text(h2o_req_t *req, int status, const char *reason, const char *body)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("text/plain; charset=utf-8"), 1);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("no-store"), 1);
    size_t len = strlen(body);
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

void cdn_admin_send_metrics(h2o_req_t *req, cdn_metrics_t *m, const char *cache_control)
{
    size_t len = 0;
    char *text = cdn_metrics_render(m, &len);
    if (text == NULL) {
        cdn_admin_send_text(req, 500, "Internal Server Error", "metrics unavailable\n");
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, H2O_STRLIT("text/plain; version=0.0.4"), 1);
    if (cache_control != NULL)
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, cache_control, strlen(cache_control), 1);
    req->res.content_length = len;
    h2o_send_inline(req, text, len); /* copies into the pool */
    free(text);
}

int cdn_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned d = alen != blen;
    if (blen == 0)
        return alen == 0;
    for (size_t i = 0; i < alen; i++)
        d |= (unsigned)(x[i] ^ y[i % blen]);
    return d == 0;
}

int cdn_admin_bearer_ok(const h2o_req_t *req, const char *token)
{
    if (token == NULL)
        return 0;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i < 0)
        return 0;
    const h2o_iovec_t *v = &req->headers.entries[i].value;
    if (v->len < 7 || !h2o_lcstris(v->base, 6, H2O_STRLIT("bearer")) || (v->base[6] != ' ' && v->base[6] != '\t'))
        return 0;
    size_t p = 7;
    while (p < v->len && (v->base[p] == ' ' || v->base[p] == '\t'))
        p++;
    size_t e = v->len;
    while (e > p && (v->base[e - 1] == ' ' || v->base[e - 1] == '\t'))
        e--;
    return cdn_ct_equal(v->base + p, e - p, token, strlen(token));
}

int cdn_token_read(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    char *r = fgets(line, sizeof(line), f);
    fclose(f);
    if (r == NULL) {
        snprintf(err, errlen, "%s: empty", path);
        return -1;
    }
    line[strcspn(line, "\r\n")] = '\0';
    size_t n = strlen(line);
    for (size_t i = 0; i < n; i++)
        if (line[i] <= 0x20 || line[i] >= 0x7f) {
            snprintf(err, errlen, "%s: the token must be visible ASCII characters, without spaces", path);
            return -1;
        }
    if (n < 16 || n + 1 > cap || n > 255) {
        snprintf(err, errlen, "%s: the token must be 16 to 255 characters long", path);
        return -1;
    }
    memcpy(buf, line, n + 1);
    return 0;
}

int cdn_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* The route's lock: 0 to go on, or the request was answered (401/403) and counted. */
static int locked(cdn_admin_t *a, const struct cdn_admin_route *r, h2o_req_t *req)
{
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
              h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (r->auth == CDN_ADMIN_OPEN || (r->auth == CDN_ADMIN_AUTH_UNSAFE && get))
        return 0;
    if (a->o.token == NULL) {
        if (a->refused[2])
            cdn_counter_inc(a->refused[2]);
        cdn_admin_send_text(req, 403, "Forbidden", "forbidden: this admin listener has no token (admin_token_file), "
                                                   "so state-changing endpoints are off\n");
        return 1;
    }
    if (cdn_admin_bearer_ok(req, a->o.token))
        return 0;
    int missing = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1) < 0;
    if (a->refused[missing ? 0 : 1])
        cdn_counter_inc(a->refused[missing ? 0 : 1]);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, H2O_STRLIT("Bearer realm=\"cdn-admin\""), 1);
    cdn_admin_send_text(req, 401, "Unauthorized", missing ? "unauthorized: Authorization: Bearer TOKEN needed\n"
                                                          : "unauthorized: wrong token\n");
    return 1;
}

static int route_matches(const struct cdn_admin_route *r, const char *p, size_t len)
{
    size_t rl = strlen(r->path);
    if (len < rl || memcmp(p, r->path, rl) != 0)
        return 0;
    return len == rl || (r->prefix && (p[rl] == '/' || p[rl] == '?'));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    cdn_admin_t *a = ((struct handler *)self)->a;
    const char *p = req->path_normalized.base;
    size_t len = req->path_normalized.len;
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
              h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (get && h2o_memis(p, len, H2O_STRLIT("/healthz"))) {
        const char *body = NULL;
        int status = 200;
        if (a->o.health_status != NULL)
            status = a->o.health_status(a->o.data, &body);
        else if (a->o.health != NULL)
            body = a->o.health(a->o.data);
        const char *reason = cdn_http_reason(status);
        cdn_admin_send_text(req, status, reason != NULL ? reason : "Unknown", body != NULL ? body : "ok\n");
        return 0;
    }
    if (get && a->o.metrics != NULL && h2o_memis(p, len, H2O_STRLIT("/metrics"))) {
        if (a->o.before_metrics != NULL)
            a->o.before_metrics(a->o.data);
        cdn_admin_send_metrics(req, a->o.metrics, NULL);
        return 0;
    }
    for (size_t i = 0; i < a->o.nroutes; i++)
        if (route_matches(&a->o.routes[i], p, len) &&
            (locked(a, &a->o.routes[i], req) || a->o.routes[i].on_req(req, a->o.data) == 0))
            return 0;
    cdn_admin_send_text(req, 404, "Not Found", a->paths);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    cdn_admin_t *a = listener->data;
    h2o_socket_t *sock;
    for (int i = 0; i < 16 && (sock = h2o_evloop_socket_accept(listener)) != NULL; i++)
        h2o_accept(&a->actx, sock);
}

cdn_admin_t *cdn_admin_start(h2o_evloop_t *loop, const struct cdn_admin_opts *o, char *err, size_t errlen)
{
    cdn_admin_t *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->o = *o;
    int fd = cdn_listen_tcp(o->addr, o->addr_len, 0, err, errlen);
    if (fd < 0) {
        free(a);
        return NULL;
    }
    size_t n = (size_t)snprintf(a->paths, sizeof(a->paths), "admin: /healthz%s", o->metrics ? " /metrics" : "");
    for (size_t i = 0; i < o->nroutes && n < sizeof(a->paths); i++)
        n += (size_t)snprintf(a->paths + n, sizeof(a->paths) - n, " %s", o->routes[i].path);
    if (n < sizeof(a->paths) - 1)
        snprintf(a->paths + n, sizeof(a->paths) - n, "\n");
    if (o->metrics != NULL) {
        static const char *const rl[] = {"reason", NULL};
        cdn_metric_t *f = cdn_metrics_counter(o->metrics, "cdn_admin_refused_total",
                                              "Admin requests refused: no or a wrong bearer token (401), or no token configured (403)", rl);
        static const char *const why[] = {"missing", "wrong", "no-token"};
        for (int i = 0; f != NULL && i < 3; i++)
            a->refused[i] = cdn_metric_series(f, (const char *const[]){why[i]});
    }
    h2o_config_init(&a->conf);
    if (o->server_name != NULL)
        a->conf.server_name = h2o_iovec_init(o->server_name, strlen(o->server_name));
    h2o_hostconf_t *hc = h2o_config_register_host(&a->conf, h2o_iovec_init(H2O_STRLIT("admin")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    cdn_h1strict_register(pc);
    struct handler *h = (struct handler *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h->a = a;
    h2o_context_init(&a->ctx, loop, &a->conf);
    a->actx = (h2o_accept_ctx_t){.ctx = &a->ctx, .hosts = a->conf.hosts};
    a->ls = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    a->ls->data = a;
    h2o_socket_read_start(a->ls, on_accept);
    return a;
}

void cdn_admin_free(cdn_admin_t *a)
{
    if (a == NULL)
        return;
    h2o_socket_close(a->ls);
    h2o_multithread_queue_t *q = a->ctx.queue;
    h2o_context_dispose(&a->ctx);
    h2o_config_dispose(&a->conf);
    free(q); /* h2o 2.2.5's h2o_multithread_destroy_queue does not free the queue itself */
    free(a);
}
