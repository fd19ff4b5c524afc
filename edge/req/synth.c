/* edge/req/synth.c - synth: the responses the edge makes itself: errors (with a reason in the
 * body and Cache-Status), the 429 of a rate_limit, the PURGE answer and the /healthz answer to a
 * child edge. */
#include "config.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edge/req/req.h"

void req_synth_error(struct creq *c, int status, const char *reason, const char *detail, const char *body)
{
    h2o_req_t *req = c->req;
    req_set_step(c, REQ_SYNTH);
    c->finished = 1;
    req_count(c->w->srv, M_ERROR, T_NONE);
    req_add_common(c, detail, -1, NULL, 0);
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
    size_t bl = strlen(body);
    char *b = h2o_mem_alloc_pool(&req->pool, bl + 1);
    memcpy(b, body, bl);
    b[bl] = '\n';
    /* h2o_send_inline sets no length: without one HTTP/1.1 would close the connection after
     * every error (a client limited with 429 would reconnect for each request) */
    req->res.content_length = bl + 1;
    req_send_track(c);
    h2o_send_inline(req, b, bl + 1);
}

/* 503 without asking upstream (resil.h): its circuit breaker is open (Retry-After: when it lets a
 * probe through, rounded up to seconds; detail=breaker-open) or the edge sheds misses under
 * overload (detail=shed), and no stale copy may serve. */
void req_synth_unavailable(struct creq *c, uint64_t retry_ms, const char *detail, const char *body)
{
    h2o_req_t *req = c->req;
    char v[24];
    int l = snprintf(v, sizeof(v), "%llu", (unsigned long long)(retry_ms ? (retry_ms + 999) / 1000 : 1));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, "Retry-After",
                   h2o_strdup(&req->pool, v, (size_t)l).base, (size_t)l);
    req_synth_error(c, 503, "Service Unavailable", detail, body);
}

void req_synth_bad_gateway(struct creq *c, int status, const char *reason, const char *body)
{
    req_synth_error(c, status, reason, "fwd=miss; detail=origin-error", body);
}

/* 429 of a rate_limit (RFC 6585 4): Retry-After in seconds, rounded up, and the fields of
 * draft-ietf-httpapi-ratelimit-headers in their Structured Fields form. The policy says the
 * bucket: q is its size (burst), w the seconds it takes to fill again from empty (burst / rate,
 * rounded up); RateLimit says what is left of it (r=0 here) and in how many seconds it is full
 * again (t). */
void req_synth_limited(struct creq *c, const struct edge_rl_conf *rl, const struct cdn_rl_result *res)
{
    h2o_req_t *req = c->req;
    char ra[CDN_RL_FIELD_MAX], pol[CDN_RL_FIELD_MAX], rl_[CDN_RL_FIELD_MAX];
    cdn_rl_fields(rl->name, &rl->rate, res, ra, pol, rl_);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, "Retry-After", h2o_strdup(&req->pool, ra, SIZE_MAX).base,
                   strlen(ra));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit-policy"), 0, "RateLimit-Policy",
                          h2o_strdup(&req->pool, pol, SIZE_MAX).base, strlen(pol));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit"), 0, "RateLimit",
                          h2o_strdup(&req->pool, rl_, SIZE_MAX).base, strlen(rl_));
    char body[128];
    snprintf(body, sizeof(body), "too many requests: retry in %s s", ra);
    req_synth_error(c, 429, "Too Many Requests", "detail=rate-limited", body);
}

/* A child edge's health check of us (health.h): a draining edge says 503 so that its children
 * move to another parent. */
void req_synth_healthz(struct creq *c, int draining)
{
    h2o_req_t *req = c->req;
    req_set_step(c, REQ_SYNTH);
    c->finished = 1;
    req->res.status = draining ? 503 : 200;
    req->res.reason = draining ? "Service Unavailable" : "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
    req->res.content_length = draining ? sizeof("draining\n") - 1 : sizeof("ok\n") - 1;
    if (draining)
        h2o_send_inline(req, H2O_STRLIT("draining\n"));
    else
        h2o_send_inline(req, H2O_STRLIT("ok\n"));
}

/* PURGE of a URL: "purged N", 404 when nothing was stored under it. */
void req_synth_purged(struct creq *c, size_t n)
{
    h2o_req_t *req = c->req;
    req_set_step(c, REQ_SYNTH);
    c->finished = 1;
    char body[64];
    int l = snprintf(body, sizeof(body), "purged %zu\n", n);
    req->res.status = n ? 200 : 404;
    req->res.reason = n ? "OK" : "Not Found";
    char *b = h2o_mem_alloc_pool(&req->pool, (size_t)l);
    memcpy(b, body, (size_t)l);
    req->res.content_length = (size_t)l;
    h2o_send_inline(req, b, (size_t)l);
}
