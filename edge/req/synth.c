/* edge/req/synth.c - synth: the responses the edge makes itself. */
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
