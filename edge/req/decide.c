/* edge/req/decide.c - see decide.h. */
#include "config.h"
#include <string.h>

#include "edge/http/cache_key.h"
#include "edge/req/decide.h"

int edge_req_step_ok(enum req_step a, enum req_step b)
{
    static const unsigned next[] = {
        [REQ_RECV] = 1u << REQ_LOOKUP | 1u << REQ_SYNTH | 1u << REQ_DONE,
        [REQ_LOOKUP] = 1u << REQ_HIT | 1u << REQ_MISS | 1u << REQ_PASS | 1u << REQ_SYNTH | 1u << REQ_DONE,
        [REQ_HIT] = 1u << REQ_DELIVER | 1u << REQ_SYNTH | 1u << REQ_DONE,
        /* a waiter that may not share the response goes to pass; stale-if-error delivers */
        [REQ_MISS] = 1u << REQ_DELIVER | 1u << REQ_PASS | 1u << REQ_SYNTH | 1u << REQ_DONE,
        [REQ_PASS] = 1u << REQ_DELIVER | 1u << REQ_SYNTH | 1u << REQ_DONE,
        [REQ_DELIVER] = 1u << REQ_DONE,
        [REQ_SYNTH] = 1u << REQ_DONE,
        [REQ_DONE] = 0,
    };
    return (unsigned)a <= REQ_DONE && (unsigned)b <= REQ_DONE && (next[a] >> b & 1u);
}

int edge_fetch_state_ok(enum fetch_state a, enum fetch_state b)
{
    if ((unsigned)a > FETCH_FAILED || (unsigned)b > FETCH_FAILED || a >= FETCH_FINISHED)
        return 0; /* nothing follows finished or failed */
    return b > a;
}

int edge_upstream_retry(enum cdn_httpc_error kind, int head_seen, int parent_status)
{
    if (head_seen)
        return 0;
    if (parent_status >= 500)
        return 1;
    return kind == CDN_HTTPC_REFUSED || kind == CDN_HTTPC_CONNECT || kind == CDN_HTTPC_CONNECT_TIMEOUT;
}

int edge_upstream_failed(enum cdn_httpc_error kind)
{
    switch (kind) {
    case CDN_HTTPC_REFUSED: case CDN_HTTPC_CONNECT: case CDN_HTTPC_CONNECT_TIMEOUT: case CDN_HTTPC_DNS:
    case CDN_HTTPC_TLS: case CDN_HTTPC_TIMEOUT: case CDN_HTTPC_RESET: case CDN_HTTPC_PROTOCOL:
        return 1;
    default:
        return 0;
    }
}

/* 1 when param (e.g. "detail=origin-error") is a parameter of member m..end ("; " before it, ";"
 * or "+" or the end after it); with prefix_only, anything may follow (fwd-status=5 + digits). */
static int member_has(const char *m, const char *end, const char *param, int prefix_only)
{
    size_t n = strlen(param);
    for (const char *p = m; p + n <= end; p++) {
        if (memcmp(p, param, n) != 0 || (p > m && p[-1] != ' ' && p[-1] != ';'))
            continue;
        if (prefix_only || p + n == end || p[n] == ';' || p[n] == '+' || p[n] == ' ')
            return 1;
    }
    return 0;
}

int edge_parent_upstream_failed(const char *v, size_t len)
{
    const char *m = v, *end = v + len;
    for (const char *p = v; p < end; p++)
        if (*p == ',')
            m = p + 1; /* the last member: the parent's own entry */
    return member_has(m, end, "detail=breaker-open", 0) || member_has(m, end, "detail=origin-error", 0) ||
           member_has(m, end, "fwd-status=5", 1);
}

int edge_upstream_error_status(enum cdn_httpc_error kind)
{
    return kind == CDN_HTTPC_TIMEOUT || kind == CDN_HTTPC_CONNECT_TIMEOUT ? 504 : 502;
}

enum edge_stale_pick edge_error_stale(int fetch_stale, int in_store, const struct edge_verdict *v, int no_stale,
                                      int64_t grace_s)
{
    if (fetch_stale)
        return EDGE_STALE_FETCH;
    if (!in_store)
        return EDGE_STALE_NONE;
    if (v->use == EDGE_USE_FRESH || v->stale_if_error)
        return EDGE_STALE_STORE; /* fresh by now (another fill stored it), or within stale-if-error */
    if (grace_s > 0 && !no_stale && -v->ttl <= grace_s)
        return EDGE_STALE_STORE;
    return EDGE_STALE_NONE;
}

int edge_waiter_shares(const char *vary, size_t vary_len, const struct edge_hdr *waiter, size_t nwaiter,
                       const struct edge_hdr *owner, size_t nowner, const char *stored_vk, size_t stored_vk_len)
{
    if (vary_len == 0)
        return 1;
    char kw[1024], ko[1024];
    int lw = edge_vary_key(vary, vary_len, waiter, nwaiter, kw, sizeof(kw));
    if (lw < 0)
        return 0;
    if (owner != NULL) {
        int lo = edge_vary_key(vary, vary_len, owner, nowner, ko, sizeof(ko));
        return lo >= 0 && lo == lw && memcmp(ko, kw, (size_t)lw) == 0;
    }
    return stored_vk != NULL && stored_vk_len == (size_t)lw && memcmp(stored_vk, kw, (size_t)lw) == 0;
}
