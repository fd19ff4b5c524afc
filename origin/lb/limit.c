/* origin/lb/limit.c - shop-lb's rate limit (`rate_limit:`): GCRA per API client, on the gateway
 * before a backend is chosen, local to the process (cdn/ratelimit.h) or shared with the other
 * shop-lb instances through Redis (cdn/rlshare.h, each worker its own connection).
 *
 * The key is the bearer token (`key: token`, the default: an API client is its token; a request
 * without one is keyed by its address), the client's address (`key: client`: IPv4, or the /64 of
 * IPv6 as text) or a request field (`key: header:NAME`). A refused request gets 429 with
 * Retry-After, RateLimit-Policy and RateLimit (cdn_rl_fields, as cdn-edge sends them). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cdn/log.h"
#include "cdn/ratelimit.h"
#include "cdn/rlshare.h"
#include "origin/lb/lbd.h"

enum { KEY_TOKEN, KEY_CLIENT, KEY_HEADER };

/* A request waiting for Redis's decision: in its pool, so the request's end cancels the wait. */
struct rlwait {
    h2o_req_t *req;
    cdn_rlshare_check_t *q;
    struct cdn_rl_rate rate;
    char name[LB_RL_NAME_MAX + 1];
};

int lb_limit_conf_check(const struct conf_ratelimit *r, const char **bad_field, char *why, size_t whylen)
{
    uint32_t count;
    uint64_t period;
    if (r->rate == NULL) {
        *bad_field = NULL;
        snprintf(why, whylen, "rate_limit needs rate: N/s, N/m or N/h");
        return -1;
    }
    if (cdn_rl_rate_parse(r->rate, &count, &period) < 0) {
        *bad_field = "rate";
        snprintf(why, whylen, "rate '%s': expected N/s, N/m or N/h (N from 1 to 1e9)", r->rate);
        return -1;
    }
    if (r->key != NULL && strcmp(r->key, "token") != 0 && strcmp(r->key, "client") != 0 &&
        (strncmp(r->key, "header:", 7) != 0 || r->key[7] == '\0' || strlen(r->key + 7) > LB_RL_NAME_MAX ||
         strspn(r->key + 7, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != strlen(r->key + 7))) {
        *bad_field = "key";
        snprintf(why, whylen, "key '%s': expected token, client or header:NAME", r->key);
        return -1;
    }
    if (r->path_prefix != NULL && (r->path_prefix[0] != '/' || strlen(r->path_prefix) >= LB_RL_PREFIX_MAX)) {
        *bad_field = "path_prefix";
        snprintf(why, whylen, "path_prefix '%s' must start with / (at most %d bytes)", r->path_prefix,
                 LB_RL_PREFIX_MAX - 1);
        return -1;
    }
    if (r->name != NULL && (r->name[0] == '\0' || strlen(r->name) > LB_RL_NAME_MAX ||
                            strspn(r->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
                                strlen(r->name))) {
        *bad_field = "name";
        snprintf(why, whylen, "name '%s': 1 to %d letters, digits, '-', '_' or '.'", r->name, LB_RL_NAME_MAX);
        return -1;
    }
    if (r->redis != NULL && strncmp(r->redis, "redis://", 8) != 0) {
        *bad_field = "redis";
        snprintf(why, whylen, "redis '%s': expected redis://HOST[:PORT]", r->redis);
        return -1;
    }
    return 0;
}

void lb_limit_sync(const struct lb_conf *c)
{
    const struct conf_ratelimit *r = &c->rate_limit;
    uint32_t count;
    uint64_t period;
    struct lb_limit *l = &lb.limit;
    memset(l, 0, sizeof(*l));
    if (r->rate == NULL || cdn_rl_rate_parse(r->rate, &count, &period) < 0)
        return;
    l->on = 1;
    cdn_rl_rate_make(&l->rate, count, period, r->burst > 0 ? (uint32_t)r->burst : count);
    snprintf(l->name, sizeof(l->name), "%s", r->name ? r->name : "default");
    snprintf(l->prefix, sizeof(l->prefix), "%s", r->path_prefix ? r->path_prefix : "/");
    l->key = KEY_TOKEN;
    if (r->key != NULL && strcmp(r->key, "client") == 0)
        l->key = KEY_CLIENT;
    else if (r->key != NULL && strncmp(r->key, "header:", 7) == 0) {
        l->key = KEY_HEADER;
        snprintf(l->header, sizeof(l->header), "%s", r->key + 7);
        for (char *p = l->header; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
}

/* key = name NUL kind value */
static size_t make_key(const struct lb_limit *l, h2o_req_t *req, char *key, size_t cap)
{
    size_t n = strlen(l->name) + 1;
    memcpy(key, l->name, n);
    h2o_iovec_t v = {NULL, 0};
    if (l->key == KEY_TOKEN) {
        ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
        if (i >= 0 && req->headers.entries[i].value.len > 7 &&
            strncasecmp(req->headers.entries[i].value.base, "Bearer ", 7) == 0)
            v = h2o_iovec_init(req->headers.entries[i].value.base + 7, req->headers.entries[i].value.len - 7);
    } else if (l->key == KEY_HEADER) {
        ssize_t i = h2o_find_header_by_str(&req->headers, l->header, strlen(l->header), -1);
        if (i >= 0)
            v = req->headers.entries[i].value;
    }
    char addr[CDN_PEER_TEXT_MAX];
    char kind = l->key == KEY_TOKEN ? 't' : 'h';
    if (v.base == NULL) { /* no token / field, or key: client */
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
        if (sl > 0 && ss.ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr))
            memset(((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr + 8, 0, 8); /* the /64 */
        cdn_peer_text(sl > 0 ? (struct sockaddr *)&ss : NULL, addr);
        v = h2o_iovec_init(addr, strlen(addr));
        kind = 'a';
    }
    if (v.len > cap - n - 1)
        v.len = cap - n - 1; /* a token longer than that: its first bytes are its key */
    key[n++] = kind;
    memcpy(key + n, v.base, v.len);
    return n + v.len;
}

static void send_limited(h2o_req_t *req, const char *name, const struct cdn_rl_rate *r, const struct cdn_rl_result *res)
{
    char ra[CDN_RL_FIELD_MAX], pol[CDN_RL_FIELD_MAX], rl[CDN_RL_FIELD_MAX], body[CDN_RL_FIELD_MAX + 48];
    cdn_rl_fields(name, r, res, ra, pol, rl);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, h2o_strdup(&req->pool, ra, SIZE_MAX).base,
                   strlen(ra));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit-policy"), 0, "RateLimit-Policy",
                          h2o_strdup(&req->pool, pol, SIZE_MAX).base, strlen(pol));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit"), 0, "RateLimit",
                          h2o_strdup(&req->pool, rl, SIZE_MAX).base, strlen(rl));
    snprintf(body, sizeof(body), "too many requests: retry in %s s\n", ra);
    lb_send_plain(req, 429, "Too Many Requests", h2o_strdup(&req->pool, body, SIZE_MAX).base);
}

/* by: who decided (enum cdn_rlshare_by), or LB_RL_BY_LOCAL without Redis in the config */
static void count(const struct cdn_rl_result *res, int by)
{
    cdn_counter_inc(res->allowed ? lb.s_rl_allowed : lb.s_rl_limited);
    cdn_counter_inc(lb.s_rl_by[by]);
}

static void on_decided(void *data, const struct cdn_rl_result *res, enum cdn_rlshare_by by)
{
    struct rlwait *wt = data;
    wt->q = NULL; /* decided: nothing to cancel any more */
    count(res, (int)by);
    if (res->allowed)
        lb_proxy_route(wt->req);
    else
        send_limited(wt->req, wt->name, &wt->rate, res);
}

static void on_wait_dispose(void *p)
{
    struct rlwait *wt = p;
    cdn_rlshare_cancel(wt->q);
}

int lb_limit_req(h2o_req_t *req, struct lb_worker *w)
{
    char key[LB_RL_NAME_MAX + 1 + 1 + 512];
    struct cdn_rl_rate rate;
    char name[LB_RL_NAME_MAX + 1];
    size_t kl;
    lb_lock();
    const struct lb_limit *l = &lb.limit;
    size_t pl = strlen(l->prefix);
    if (!l->on || req->path_normalized.len < pl || memcmp(req->path_normalized.base, l->prefix, pl) != 0) {
        lb_unlock();
        return lb_proxy_route(req);
    }
    kl = make_key(l, req, key, sizeof(key));
    rate = l->rate;
    memcpy(name, l->name, sizeof(name));
    lb_unlock();
    if (w->rls == NULL) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        struct cdn_rl_result res;
        cdn_rl_check(lb.rl_local, key, kl, &rate, (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec, &res);
        count(&res, LB_RL_BY_LOCAL);
        if (res.allowed)
            return lb_proxy_route(req);
        send_limited(req, name, &rate, &res);
        return 0;
    }
    struct rlwait *wt = h2o_mem_alloc_shared(&req->pool, sizeof(*wt), on_wait_dispose);
    *wt = (struct rlwait){.req = req, .rate = rate};
    memcpy(wt->name, name, sizeof(name));
    cdn_rlshare_check_t *q = cdn_rlshare_check(w->rls, key, kl, &rate, on_decided, wt);
    if (q != NULL)
        wt->q = q;
    return 0;
}
