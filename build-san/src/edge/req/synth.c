/* edge/req/synth.c - synth: the responses the edge makes itself: errors (with a reason in the
 * body and Cache-Status), the PURGE answer and the /healthz answer to a child edge. */
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
    h2o_send_inline(req, b, bl + 1);
}

void req_synth_bad_gateway(struct creq *c, int status, const char *reason, const char *body)
{
    req_synth_error(c, status, reason, "fwd=miss; detail=origin-error", body);
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
    h2o_send_inline(req, b, (size_t)l);
}
