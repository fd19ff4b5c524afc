/* Unit tests for edge/req/decide.c: the request path's pure decisions (retry the next upstream,
 * the status of a failed fetch, may a waiter share a response). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "edge/http/cache_key.h"
#include "edge/req/decide.h"

static void upstream_retry(void **state)
{
    static const struct { enum cdn_httpc_error kind; int head, parent_status, want; } t[] = {
        {CDN_HTTPC_REFUSED, 0, 0, 1},          /* nothing listened: the request was not sent */
        {CDN_HTTPC_CONNECT, 0, 0, 1},
        {CDN_HTTPC_CONNECT_TIMEOUT, 0, 0, 1},
        {CDN_HTTPC_REFUSED, 1, 0, 0},          /* a head came: a client may have part of it */
        {CDN_HTTPC_TIMEOUT, 0, 0, 0},          /* it may have acted on the request */
        {CDN_HTTPC_RESET, 0, 0, 0},
        {CDN_HTTPC_DNS, 0, 0, 0},
        {CDN_HTTPC_TLS, 0, 0, 0},
        {CDN_HTTPC_PROTOCOL, 0, 0, 0},
        {CDN_HTTPC_ABORTED, 0, 503, 1},        /* a parent's 5xx: passed over */
        {CDN_HTTPC_ABORTED, 0, 508, 1},
        {CDN_HTTPC_ABORTED, 0, 0, 0},
        {CDN_HTTPC_ABORTED, 1, 503, 0},
        {CDN_HTTPC_OK, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (edge_upstream_retry(t[i].kind, t[i].head, t[i].parent_status) != t[i].want)
            fail_msg("row %zu (%s, head %d, parent %d): want %d", i, cdn_httpc_error_name(t[i].kind), t[i].head,
                     t[i].parent_status, t[i].want);
}

static void error_status(void **state)
{
    assert_int_equal(edge_upstream_error_status(CDN_HTTPC_TIMEOUT), 504);
    assert_int_equal(edge_upstream_error_status(CDN_HTTPC_CONNECT_TIMEOUT), 504);
    assert_int_equal(edge_upstream_error_status(CDN_HTTPC_REFUSED), 502);
    assert_int_equal(edge_upstream_error_status(CDN_HTTPC_RESET), 502);
    assert_int_equal(edge_upstream_error_status(CDN_HTTPC_DNS), 502);
    assert_int_equal(edge_upstream_error_status(CDN_HTTPC_PROTOCOL), 502);
}

#define H(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static void waiter_shares(void **state)
{
    const char vary[] = "accept-language";
    struct edge_hdr en[] = {H("Accept-Language", "en")}, en2[] = {H("accept-language", " en ")},
                    fr[] = {H("Accept-Language", "fr")}, none[] = {H("X-Other", "1")};
    /* no Vary: everyone shares */
    assert_int_equal(edge_waiter_shares("", 0, fr, 1, en, 1, NULL, 0), 1);
    /* with the owner there: the same variant shares, another does not; an absent header is its
     * own variant */
    assert_int_equal(edge_waiter_shares(vary, strlen(vary), en2, 1, en, 1, NULL, 0), 1);
    assert_int_equal(edge_waiter_shares(vary, strlen(vary), fr, 1, en, 1, NULL, 0), 0);
    assert_int_equal(edge_waiter_shares(vary, strlen(vary), none, 1, en, 1, NULL, 0), 0);
    assert_int_equal(edge_waiter_shares(vary, strlen(vary), none, 1, none, 1, NULL, 0), 1);
    /* the owner left: the variant part of the fetch's key decides; none known: no sharing */
    char vk[256];
    int l = edge_vary_key(vary, strlen(vary), en, 1, vk, sizeof(vk));
    assert_true(l > 0);
    assert_int_equal(edge_waiter_shares(vary, strlen(vary), en2, 1, NULL, 0, vk, (size_t)l), 1);
    assert_int_equal(edge_waiter_shares(vary, strlen(vary), fr, 1, NULL, 0, vk, (size_t)l), 0);
    assert_int_equal(edge_waiter_shares(vary, strlen(vary), en, 1, NULL, 0, NULL, 0), 0);
}

/* issue 19: the copy a client gets when its upstream failed */
static void error_stale(void **state)
{
    static const struct { int fetch_stale, in_store; enum edge_use use; int64_t ttl; int sie, no_stale;
                          int64_t grace; enum edge_stale_pick want; } t[] = {
        {1, 0, EDGE_USE_VALIDATE, -5, 0, 0, 0, EDGE_STALE_FETCH},   /* the copy it validated */
        {1, 1, EDGE_USE_VALIDATE, -5, 1, 0, 0, EDGE_STALE_FETCH},   /* ... first */
        {0, 0, EDGE_USE_VALIDATE, -5, 1, 0, 0, EDGE_STALE_NONE},    /* nothing anywhere: the error */
        /* the race of issue 19: the client's lookup missed (the disk tier had the put queued) or it
         * joined a plain fill; the store holds a stale copy within stale-if-error now */
        {0, 1, EDGE_USE_VALIDATE, -2, 1, 0, 0, EDGE_STALE_STORE},
        {0, 1, EDGE_USE_FRESH, 30, 0, 0, 0, EDGE_STALE_STORE},      /* another fill stored a fresh one */
        {0, 1, EDGE_USE_VALIDATE, -700, 0, 0, 0, EDGE_STALE_NONE},  /* beyond stale-if-error */
        {0, 1, EDGE_USE_VALIDATE, -700, 0, 0, 3600, EDGE_STALE_STORE}, /* ... within the breaker's grace */
        {0, 1, EDGE_USE_VALIDATE, -7200, 0, 0, 3600, EDGE_STALE_NONE}, /* ... beyond it */
        {0, 1, EDGE_USE_VALIDATE, -10, 0, 1, 3600, EDGE_STALE_NONE},   /* must-revalidate: never stale */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct edge_verdict v = {.use = t[i].use, .age = 0, .ttl = t[i].ttl, .stale_if_error = t[i].sie};
        if (edge_error_stale(t[i].fetch_stale, t[i].in_store, &v, t[i].no_stale, t[i].grace) != t[i].want)
            fail_msg("row %zu: want %d", i, (int)t[i].want);
    }
}

/* what counts against an upstream's circuit breaker: its failures, not our own */
static void upstream_failed(void **state)
{
    static const struct { enum cdn_httpc_error kind; int want; } t[] = {
        {CDN_HTTPC_OK, 0}, {CDN_HTTPC_REFUSED, 1}, {CDN_HTTPC_CONNECT, 1}, {CDN_HTTPC_CONNECT_TIMEOUT, 1},
        {CDN_HTTPC_DNS, 1}, {CDN_HTTPC_TLS, 1}, {CDN_HTTPC_TIMEOUT, 1}, {CDN_HTTPC_RESET, 1},
        {CDN_HTTPC_PROTOCOL, 1},
        {CDN_HTTPC_TOO_LARGE, 0},  /* our limit */
        {CDN_HTTPC_ABORTED, 0},    /* we stopped it (a client left, a parent's 5xx passed over) */
        {CDN_HTTPC_INTERNAL, 0},   /* our error */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (edge_upstream_failed(t[i].kind) != t[i].want)
            fail_msg("%s: want %d", cdn_httpc_error_name(t[i].kind), t[i].want);
    (void)state;
}

static void parent_upstream_failed(void **state)
{
    static const struct { const char *v; int want; } t[] = {
        {"cdn-edge-shield; fwd=miss; detail=breaker-open", 1},
        {"cdn-edge-shield; fwd=miss; detail=breaker-open+accept-webp", 1},
        {"cdn-edge-shield; fwd=miss; detail=origin-error", 1},  /* refused, timed out */
        {"cdn-edge-shield; fwd=miss; fwd-status=502", 1},        /* the origin's own 5xx */
        {"cdn-edge-shield; fwd=miss; fwd-status=200", 0},
        {"cdn-edge-shield; fwd=miss; detail=shed", 0},           /* overloaded: counts */
        {"cdn-edge-shield; fwd=miss; detail=origin-busy", 0},
        {"cdn-edge-o; fwd=miss; detail=breaker-open, cdn-edge-shield; fwd=miss; detail=shed", 0}, /* not its own */
        {"cdn-edge-shield; fwd=miss; detail=breaker-opened", 0},
        {"cdn-edge-shield; fwd=miss; xdetail=origin-error", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (edge_parent_upstream_failed(t[i].v, strlen(t[i].v)) != t[i].want)
            fail_msg("'%s': want %d", t[i].v, t[i].want);
    (void)state;
}

static void transitions(void **state)
{
    /* the trail of an ordinary hit, miss, pass and error */
    assert_true(edge_req_step_ok(REQ_RECV, REQ_LOOKUP) && edge_req_step_ok(REQ_LOOKUP, REQ_HIT) &&
                edge_req_step_ok(REQ_HIT, REQ_DELIVER) && edge_req_step_ok(REQ_DELIVER, REQ_DONE));
    assert_true(edge_req_step_ok(REQ_LOOKUP, REQ_MISS) && edge_req_step_ok(REQ_MISS, REQ_DELIVER));
    assert_true(edge_req_step_ok(REQ_MISS, REQ_PASS)); /* another Vary variant: on its own */
    assert_true(edge_req_step_ok(REQ_LOOKUP, REQ_PASS) && edge_req_step_ok(REQ_PASS, REQ_SYNTH));
    assert_true(edge_req_step_ok(REQ_RECV, REQ_SYNTH) && edge_req_step_ok(REQ_RECV, REQ_DONE));
    /* what never happens */
    assert_false(edge_req_step_ok(REQ_DONE, REQ_RECV));
    assert_false(edge_req_step_ok(REQ_DONE, REQ_DONE));
    assert_false(edge_req_step_ok(REQ_DELIVER, REQ_SYNTH)); /* a response already started */
    assert_false(edge_req_step_ok(REQ_HIT, REQ_MISS));
    assert_false(edge_req_step_ok(REQ_PASS, REQ_MISS));
    assert_false(edge_req_step_ok(REQ_RECV, REQ_DELIVER));
    assert_false(edge_req_step_ok(REQ_SYNTH, REQ_DELIVER));
    assert_false(edge_req_step_ok((enum req_step)99, REQ_DONE));
    /* a fetch: forward only, nothing after the end */
    assert_true(edge_fetch_state_ok(FETCH_REQUESTED, FETCH_HEADERS));
    assert_true(edge_fetch_state_ok(FETCH_HEADERS, FETCH_STREAMING));
    assert_true(edge_fetch_state_ok(FETCH_STREAMING, FETCH_FINISHED));
    assert_true(edge_fetch_state_ok(FETCH_HEADERS, FETCH_FINISHED)); /* no body (304, HEAD, empty) */
    assert_true(edge_fetch_state_ok(FETCH_REQUESTED, FETCH_FAILED));
    assert_true(edge_fetch_state_ok(FETCH_STREAMING, FETCH_FAILED));
    assert_false(edge_fetch_state_ok(FETCH_STREAMING, FETCH_HEADERS));
    assert_false(edge_fetch_state_ok(FETCH_FINISHED, FETCH_FAILED));
    assert_false(edge_fetch_state_ok(FETCH_FAILED, FETCH_FINISHED));
    assert_false(edge_fetch_state_ok(FETCH_HEADERS, FETCH_HEADERS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upstream_retry),
        cmocka_unit_test(error_status),
        cmocka_unit_test(waiter_shares),
        cmocka_unit_test(transitions),
        cmocka_unit_test(error_stale),
        cmocka_unit_test(upstream_failed),
        cmocka_unit_test(parent_upstream_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
