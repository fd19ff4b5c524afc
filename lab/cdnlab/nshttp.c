/* lab/cdnlab/nshttp.c - a tiny HTTP/1.0 client for readiness checks, /metrics scrapes and admin switches,
 * run from inside a node's namespace (local addresses, 2 s timeouts, bodies up to 64 MiB), and
 * where each kind of node shows its health. */
#include "config.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"

/* --- tiny HTTP/1.0 GET for readiness and scrapes (local addresses, short timeouts); other
 * methods (no body) for admin switches such as an edge's POST /drain --- */
struct http_get {
    const char *method; /* NULL: GET */
    const char *token;  /* an admin bearer token, or NULL */
    const char *addr, *target;
    int port;
    int status;
    char *body; /* malloc'd, or NULL */
    size_t len;
};

static int do_http_get(void *arg)
{
    struct http_get *g = arg;
    g->status = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g->port)};
    inet_pton(AF_INET, g->addr, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    char req[1024], auth[320] = "";
    if (g->token) snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", g->token);
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: cdn-lab\r\n%s%s\r\n",
                     g->method ? g->method : "GET", g->target, g->addr, g->method ? "Content-Length: 0\r\n" : "", auth);
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) { /* a target too long, or I/O */
        close(fd);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return -1;
    }
    for (;;) {
        if (len + 4096 > cap) {
            if (cap >= (64u << 20)) break;
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) { /* out of memory: no answer rather than a cut one */
                free(buf);
                close(fd);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7)) {
        free(buf);
        return -1;
    }
    g->status = atoi(buf + 9);
    char *b = strstr(buf, "\r\n\r\n");
    if (b) {
        g->len = len - (size_t)(b + 4 - buf);
        memmove(buf, b + 4, g->len + 1);
    } else {
        g->len = 0;
    }
    g->body = buf;
    return 0;
}

int lab_http_get(const char *ns, const char *addr, int port, const char *target, char **body, size_t *len)
{
    struct http_get g = {.addr = addr, .port = port, .target = target};
    int rc = lab_in_ns(ns, do_http_get, &g);
    if (rc < 0) return -1;
    if (body) *body = g.body;
    else free(g.body);
    if (len) *len = g.len;
    return g.status;
}

/* The lab's admin token (STATE/admin.key, written by `up`): the edges' purge and drain, shop-lb's
 * POST /backends and the purge bus's Redis need it. NULL when there is none. */
const char *lab_admin_token(void)
{
    static char tok[256];
    char p[PATH_MAX];
    lab_path(p, sizeof(p), "admin.key");
    FILE *f = fopen(p, "r");
    if (f == NULL) return NULL;
    char *r = fgets(tok, sizeof(tok), f);
    fclose(f);
    if (r == NULL) return NULL;
    tok[strcspn(tok, "\r\n")] = 0;
    return tok;
}

/* METHOD TARGET without a body, with the lab's admin token; the status, or -1 */
int lab_http_call(const char *ns, const char *addr, int port, const char *method, const char *target)
{
    struct http_get g = {.method = method, .addr = addr, .port = port, .target = target, .token = lab_admin_token()};
    if (lab_in_ns(ns, do_http_get, &g) < 0) return -1;
    free(g.body);
    return g.status;
}

static int do_socket(void *arg)
{
    *(int *)arg = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return *(int *)arg < 0 ? -1 : 0;
}

/* A socket belongs to the namespace it was made in, wherever it is used later. */
int lab_ns_socket(const char *ns)
{
    int fd = -1;
    return lab_in_ns(ns, do_socket, &fd) < 0 ? -1 : fd;
}

/* Where a node's health shows: (port, path). */
static int health_of(const struct lab_node *n, int *port, const char **target)
{
    switch (n->kind) {
    case LAB_EDGE: *port = LAB_PORT_EDGE_ADMIN; *target = "/healthz"; return 0;
    case LAB_APP: *port = LAB_PORT_APP; *target = "/healthz"; return 0;
    case LAB_LB: *port = LAB_PORT_LB; *target = "/healthz"; return 0; /* proxied to an app: the pool works */
    case LAB_DNS: *port = LAB_PORT_DNS_ADMIN; *target = "/healthz"; return 0;
    default: return -1;
    }
}

int lab_node_healthy(const struct lab_node *n)
{
    int port;
    const char *target;
    if (health_of(n, &port, &target) < 0) return 1;
    int admin = port == LAB_PORT_EDGE_ADMIN || port == LAB_PORT_DNS_ADMIN || port == LAB_PORT_LB_ADMIN;
    return lab_http_get(n->ns, admin ? n->mgmt : n->addr, port, target, NULL, NULL) == 200;
}
