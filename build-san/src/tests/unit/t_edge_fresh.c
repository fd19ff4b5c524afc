/* Unit tests for edge/http/cc.c and edge/http/freshness.c: RFC 9111 storability, freshness, Age and reuse
 * decisions, table-driven with `now` passed in. Each detail that even mature proxies get wrong
 * (Age from the response's own Date and the time it took, stale-while-revalidate and
 * stale-if-error, no-cache with field names, s-maxage and private, heuristic freshness from
 * Last-Modified...) has a test here or in t_edge_obj.c / the integration tests (named there). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "edge/http/freshness.h"

#define T0 1700000000LL /* a fixed "now" */

/* "Name: value" lines separated by '\n' -> edge_hdr array (pointing into a static copy). */
static size_t hdrs(const char *text, struct edge_hdr *h, size_t max)
{
    static char buf[8][4096];
    static int which;
    char *b = buf[which++ % 8];
    snprintf(b, 4096, "%s", text);
    size_t n = 0;
    for (char *line = b; *line && n < max;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            h[n++] = (struct edge_hdr){line, (size_t)(colon - line), v, strlen(v)};
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    return n;
}

static struct edge_cc cc_of(const char *s, int strict, int *rc)
{
    struct edge_cc cc;
    edge_cc_init(&cc);
    int r = edge_cc_parse(&cc, s, strlen(s), strict);
    if (rc)
        *rc = r;
    return cc;
}

static void cc_qualified(void **state)
{
    int rc;
    struct edge_cc cc = cc_of("private=\"X-Secret\", max-age=60", 0, &rc);
    assert_int_equal(rc, 0);
    assert_false(cc.flags & EDGE_CC_PRIVATE);
    assert_true(cc.flags & EDGE_CC_PRIVATE_FIELDS);
    assert_true(edge_cc_lists_field(&cc, "x-secret", 8));
    /* the unqualified form beside it wins */
    cc = cc_of("no-cache=\"A\", no-cache", 0, &rc);
    assert_true(cc.flags & EDGE_CC_NO_CACHE);
    /* a list that is not field names, or too long to hold, means the unqualified directive */
    cc = cc_of("private=\"a b\"", 0, &rc);
    assert_true(cc.flags & EDGE_CC_PRIVATE);
    char big[1024] = "no-cache=\"";
    for (int i = 0; i < 40; i++)
        strcat(big, "X-Field-Name, ");
    strcat(big, "\"");
    cc = cc_of(big, 0, &rc);
    assert_true(cc.flags & EDGE_CC_NO_CACHE);
    assert_false(cc.flags & EDGE_CC_NO_CACHE_FIELDS);
    /* private="" names nothing: the whole response may be stored */
    cc = cc_of("private=\"\", max-age=5", 0, &rc);
    assert_false(cc.flags & EDGE_CC_PRIVATE);
    assert_string_equal(cc.fields, "");
}

static void cc_parser(void **state)
{
    int rc;
    struct edge_cc cc = cc_of("public, max-age=60, s-maxage=\"120\", no-cache=\"Set-Cookie, X\"", 0, &rc);
    assert_int_equal(rc, 0);
    assert_true(cc.flags & EDGE_CC_PUBLIC);
    /* qualified no-cache: those fields are not reused, the rest is (RFC 9111 5.2.2.4) */
    assert_false(cc.flags & EDGE_CC_NO_CACHE);
    assert_true(cc.flags & EDGE_CC_NO_CACHE_FIELDS);
    assert_true(edge_cc_lists_field(&cc, "set-cookie", 10));
    assert_true(edge_cc_lists_field(&cc, "X", 1));
    assert_false(edge_cc_lists_field(&cc, "X-A", 3));
    assert_false(edge_cc_lists_field(&cc, "Set", 3));
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 120);       /* quoted form accepted */
    cc = cc_of("MAX-AGE=10,,  , PRIVATE", 0, &rc);
    assert_int_equal(cc.max_age, 10);
    assert_true(cc.flags & EDGE_CC_PRIVATE);
    /* conflicting values and invalid values mean stale (0) */
    cc = cc_of("max-age=10, max-age=20", 0, NULL);
    assert_int_equal(cc.max_age, 0);
    cc = cc_of("max-age=abc", 0, NULL);
    assert_int_equal(cc.max_age, 0);
    cc = cc_of("max-age=99999999999999999999", 0, NULL);
    assert_int_equal(cc.max_age, EDGE_DELTA_MAX);
    /* a malformed element is skipped, the rest still applies; unterminated quote eats the rest */
    cc = cc_of("max-age=5 junk, no-store", 0, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(cc.max_age, -1);
    assert_true(cc.flags & EDGE_CC_NO_STORE);
    cc = cc_of("a=\"x, no-store", 0, &rc);
    assert_int_equal(rc, -1);
    assert_false(cc.flags & EDGE_CC_NO_STORE);
    cc = cc_of("max-stale", 0, NULL);
    assert_true(cc.flags & EDGE_CC_MAX_STALE_ANY);
    cc = cc_of("stale-while-revalidate=30, stale-if-error=600, min-fresh=5, only-if-cached", 0, NULL);
    assert_int_equal(cc.swr, 30);
    assert_int_equal(cc.sie, 600);
    assert_int_equal(cc.min_fresh, 5);
    assert_true(cc.flags & EDGE_CC_ONLY_IF_CACHED);
}

static void cc_strict(void **state)
{
    int rc;
    struct edge_cc cc = cc_of("max-age=60, private;foo=1, x=\"q\"", 1, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(cc.max_age, 60);
    assert_true(cc.flags & EDGE_CC_PRIVATE);
    /* Structured Fields: uppercase keys, trailing comma, bad strings are errors */
    cc_of("Max-Age=60", 1, &rc);
    assert_int_equal(rc, -1);
    cc_of("max-age=60,", 1, &rc);
    assert_int_equal(rc, -1);
    cc_of("x=\"unterminated", 1, &rc);
    assert_int_equal(rc, -1);
    cc = cc_of("no-store=?0, public=?1", 1, &rc);
    assert_int_equal(rc, 0);
    assert_false(cc.flags & EDGE_CC_NO_STORE);
    assert_true(cc.flags & EDGE_CC_PUBLIC);
}

static void http_dates(void **state)
{
    int64_t t;
    assert_int_equal(edge_http_date_parse(" Sun, 06 Nov 1994 08:49:37 GMT ", 31, &t), 0);
    assert_int_equal(t, 784111777);
    const char *rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT", *asc = "Sun Nov  6 08:49:37 1994";
    assert_int_equal(edge_http_date_parse(rfc850, strlen(rfc850), &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(edge_http_date_parse(asc, strlen(asc), &t), 0);
    assert_int_equal(t, 784111777);
    const char *bad[] = {"0", "-1", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 32 Nov 1994 08:49:37 GMT",
                         "tomorrow", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(edge_http_date_parse(bad[i], strlen(bad[i]), &t), -1);
    char buf[30];
    assert_string_equal(edge_http_date_fmt(784111777, buf), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_string_equal(edge_http_date_fmt(T0, buf), "Tue, 14 Nov 2023 22:13:20 GMT");
}

/* the Date a client sees: the stored one verbatim, an obsolete form as the same instant, else
 * the fallback (time of receipt), else none */
static void date_pick(void **state)
{
    char out[30];
#define H1(v) ((struct edge_hdr[]){{"ETag", 4, "\"x\"", 3}, {"DATE", 4, v, sizeof(v) - 1}})
    assert_int_equal(edge_date_pick(H1(" Sun, 06 Nov 1994 08:49:37 GMT"), 2, T0, out), 1);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(edge_date_pick(H1("Sunday, 06-Nov-94 08:49:37 GMT"), 2, T0, out), 1);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(edge_date_pick(H1("Sun Nov  6 08:49:37 1994"), 2, -1, out), 1);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(edge_date_pick(H1("yesterday"), 2, T0, out), 1); /* invalid: as if absent */
    assert_string_equal(out, "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_int_equal(edge_date_pick(H1("yesterday"), 2, -1, out), 0);
    assert_int_equal(edge_date_pick(H1(""), 1, -1, out), 0); /* no Date at all */
    assert_int_equal(edge_date_pick(H1(""), 1, T0, out), 1);
    assert_string_equal(out, "Tue, 14 Nov 2023 22:13:20 GMT");
#undef H1
}

/* --- storability: a table --- */
struct store_case {
    const char *method, *req, *resp;
    int status;
    int want;
};

static void storability(void **state)
{
    static const struct store_case cases[] = {
        {"GET", "", "Cache-Control: max-age=60", 200, EDGE_STORE_OK},
        {"HEAD", "", "Cache-Control: max-age=60", 200, EDGE_NS_METHOD},
        {"POST", "", "Cache-Control: max-age=60", 200, EDGE_NS_METHOD},
        {"GET", "", "", 200, EDGE_STORE_OK},                     /* heuristically cacheable */
        {"GET", "", "", 404, EDGE_STORE_OK},
        {"GET", "", "", 302, EDGE_NS_NO_FRESHNESS},              /* not heuristic, no freshness */
        {"GET", "", "", 500, EDGE_NS_NO_FRESHNESS},
        /* any status code with explicit freshness is cacheable */
        {"GET", "", "Cache-Control: max-age=60", 302, EDGE_STORE_OK},
        {"GET", "", "Cache-Control: s-maxage=5", 500, EDGE_STORE_OK},
        {"GET", "", "Expires: Tue, 14 Nov 2023 22:14:20 GMT", 307, EDGE_STORE_OK},
        {"GET", "", "Cache-Control: public", 418, EDGE_STORE_OK},
        /* interim and partial responses never */
        {"GET", "", "Cache-Control: max-age=60", 100, EDGE_NS_STATUS},
        {"GET", "", "Cache-Control: max-age=60", 103, EDGE_NS_STATUS},
        {"GET", "", "Cache-Control: max-age=60", 206, EDGE_NS_STATUS},
        {"GET", "", "Cache-Control: max-age=60", 304, EDGE_NS_STATUS},
        {"GET", "", "Cache-Control: no-store, max-age=60", 200, EDGE_NS_NO_STORE},
        {"GET", "Cache-Control: no-store", "Cache-Control: max-age=60", 200, EDGE_NS_NO_STORE},
        {"GET", "", "Cache-Control: must-understand, no-store, max-age=60", 200, EDGE_STORE_OK},
        {"GET", "", "Cache-Control: must-understand, no-store", 299, EDGE_NS_STATUS},
        {"GET", "", "Cache-Control: private, max-age=60", 200, EDGE_NS_PRIVATE},
        {"GET", "", "Cache-Control: private=\"X\", max-age=60", 200, EDGE_STORE_OK}, /* without X */
        /* Authorization: only with public, must-revalidate or s-maxage */
        {"GET", "Authorization: Basic x", "Cache-Control: max-age=60", 200, EDGE_NS_AUTH},
        {"GET", "Authorization: Basic x", "Cache-Control: public, max-age=60", 200, EDGE_STORE_OK},
        {"GET", "Authorization: Basic x", "Cache-Control: s-maxage=60", 200, EDGE_STORE_OK},
        {"GET", "Authorization: Basic x", "Cache-Control: must-revalidate, max-age=9", 200, EDGE_STORE_OK},
        /* Set-Cookie: not stored unless public / s-maxage */
        {"GET", "", "Set-Cookie: a=b\nCache-Control: max-age=60", 200, EDGE_NS_SET_COOKIE},
        {"GET", "", "Set-Cookie: a=b\nCache-Control: public, max-age=60", 200, EDGE_STORE_OK},
        /* Vary: * anywhere in the list */
        {"GET", "", "Vary: Accept-Encoding, *\nCache-Control: max-age=60", 200, EDGE_NS_VARY_STAR},
        {"GET", "", "Vary: Accept\nVary: *\nCache-Control: max-age=60", 200, EDGE_NS_VARY_STAR},
        /* no-cache on a response: store, revalidate on use */
        {"GET", "", "Cache-Control: no-cache", 200, EDGE_STORE_OK},
        /* a targeted field replaces Cache-Control for this cache */
        {"GET", "", "Cache-Control: no-store\nCDN-Cache-Control: max-age=60", 200, EDGE_STORE_OK},
        {"GET", "", "Cache-Control: max-age=60\nCDN-Cache-Control: no-store", 200, EDGE_NS_NO_STORE},
        {"GET", "", "Cache-Control: max-age=60\nCDN-Cache-Control: private", 200, EDGE_NS_PRIVATE},
        /* an invalid targeted field is ignored: Cache-Control governs again */
        {"GET", "", "Cache-Control: no-store\nCDN-Cache-Control: Max-Age=60", 200, EDGE_NS_NO_STORE},
        {"GET", "", "Cache-Control: max-age=60\nEdge-Cache-Control: no-store\nCDN-Cache-Control: max-age=9", 200,
         EDGE_NS_NO_STORE},
    };
    struct edge_fresh_conf conf;
    edge_fresh_conf_default(&conf);
    conf.edge_cc_name = "edge-cache-control";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct edge_hdr rh[16], sh[16];
        size_t rn = hdrs(cases[i].req, rh, 16), sn = hdrs(cases[i].resp, sh, 16);
        struct edge_req_meta rq;
        struct edge_resp_meta rs;
        edge_req_analyze(edge_method_parse(cases[i].method, strlen(cases[i].method)), rh, rn, &rq);
        edge_resp_analyze(sh, sn, cases[i].status, &conf, &rs);
        int got = edge_storable(&rq, &rs, &conf);
        if (got != cases[i].want)
            fail_msg("case %zu (%s %d %s): got %s want %s", i, cases[i].method, cases[i].status,
                     cases[i].resp, edge_ns_reason(got), edge_ns_reason(cases[i].want));
    }
    /* the knob: Set-Cookie responses may be stored when the operator says so */
    conf.store_set_cookie = 1;
    struct edge_hdr sh[4];
    size_t sn = hdrs("Set-Cookie: a=b\nCache-Control: max-age=60", sh, 4);
    struct edge_req_meta rq;
    struct edge_resp_meta rs;
    edge_req_analyze(EDGE_M_GET, NULL, 0, &rq);
    edge_resp_analyze(sh, sn, 200, &conf, &rs);
    assert_int_equal(edge_storable(&rq, &rs, &conf), EDGE_STORE_OK);
}

/* --- freshness lifetime: a table --- */
struct life_case {
    const char *resp;
    int status;
    int64_t want;
    int heuristic;
};

static void lifetime(void **state)
{
    static const struct life_case cases[] = {
        {"Cache-Control: max-age=60, s-maxage=120", 200, 120, 0},           /* s-maxage wins */
        {"Cache-Control: max-age=60\nExpires: Tue, 14 Nov 2023 23:13:20 GMT\nDate: Tue, 14 Nov 2023 22:13:20 GMT", 200, 60, 0},
        {"Expires: Tue, 14 Nov 2023 23:13:20 GMT\nDate: Tue, 14 Nov 2023 22:13:20 GMT", 200, 3600, 0},
        /* Expires relative to Date, not to our clock */
        {"Expires: Tue, 14 Nov 2023 23:13:20 GMT\nDate: Tue, 14 Nov 2023 22:43:20 GMT", 200, 1800, 0},
        /* an invalid Expires means already expired, and beats heuristics */
        {"Expires: 0\nLast-Modified: Mon, 13 Nov 2023 22:13:20 GMT", 200, 0, 0},
        {"Expires: soon", 200, 0, 0},
        {"Expires: Mon, 13 Nov 2023 22:13:20 GMT\nDate: Tue, 14 Nov 2023 22:13:20 GMT", 200, 0, 0},
        /* heuristic: 10% of Date - Last-Modified, capped at a day */
        {"Date: Tue, 14 Nov 2023 22:13:20 GMT\nLast-Modified: Tue, 14 Nov 2023 21:13:20 GMT", 200, 360, 1},
        {"Date: Tue, 14 Nov 2023 22:13:20 GMT\nLast-Modified: Tue, 14 Nov 2000 21:13:20 GMT", 200, 86400, 1},
        /* no date: the response time stands in */
        {"Last-Modified: Tue, 14 Nov 2023 21:13:20 GMT", 200, 360, 1},
        /* heuristics only for heuristically cacheable codes (or public) */
        {"Date: Tue, 14 Nov 2023 22:13:20 GMT\nLast-Modified: Tue, 14 Nov 2023 21:13:20 GMT", 302, 0, 0},
        {"Cache-Control: public\nDate: Tue, 14 Nov 2023 22:13:20 GMT\nLast-Modified: Tue, 14 Nov 2023 21:13:20 GMT", 302, 360, 1},
        {"", 200, 0, 0},
        /* targeted fields: CDN-Cache-Control over Cache-Control, Expires ignored with it */
        {"Cache-Control: max-age=60\nCDN-Cache-Control: max-age=600", 200, 600, 0},
        {"Cache-Control: max-age=60\nEdge-Cache-Control: max-age=7\nCDN-Cache-Control: max-age=600", 200, 7, 0},
        {"Expires: Tue, 14 Nov 2023 23:13:20 GMT\nDate: Tue, 14 Nov 2023 22:13:20 GMT\nCDN-Cache-Control: public", 200, 0, 0},
        {"Cache-Control: max-age=60\nCDN-Cache-Control: max-age=\"600\"", 200, 0, 0},
    };
    struct edge_fresh_conf conf;
    edge_fresh_conf_default(&conf);
    conf.edge_cc_name = "Edge-Cache-Control";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct edge_hdr sh[16];
        size_t sn = hdrs(cases[i].resp, sh, 16);
        struct edge_resp_meta rs;
        edge_resp_analyze(sh, sn, cases[i].status, &conf, &rs);
        int heur;
        int64_t got = edge_freshness_lifetime(&rs, T0, &conf, &heur);
        if (got != cases[i].want || heur != cases[i].heuristic)
            fail_msg("case %zu (%s): got %lld/%d want %lld/%d", i, cases[i].resp, (long long)got, heur,
                     (long long)cases[i].want, cases[i].heuristic);
    }
}

/* --- Age, RFC 9111 4.2.3 --- */
static void age(void **state)
{
    struct edge_fresh_conf conf;
    edge_fresh_conf_default(&conf);
    struct { const char *resp; int64_t req_t, resp_t, want_initial; } cases[] = {
        /* upstream Age counts (plus the response delay) */
        {"Age: 100\nDate: Tue, 14 Nov 2023 22:13:20 GMT", T0 - 2, T0, 102},
        /* apparent age from Date wins when larger */
        {"Age: 5\nDate: Tue, 14 Nov 2023 22:12:20 GMT", T0, T0, 60},
        /* Date in the future: apparent age 0 */
        {"Date: Tue, 14 Nov 2023 22:23:20 GMT", T0, T0, 0},
        /* malformed Age is ignored */
        {"Age: -5", T0 - 1, T0, 1},
        {"Age: 1e3", T0, T0, 0},
        {"Age: 7200.0", T0, T0, 0},
        {"Age: abc", T0, T0, 0},
        /* a list counts by its first member (RFC 9111 5.1), one field or several */
        {"Age: 10, 20", T0, T0, 10},
        {"Age: 0,7200", T0, T0, 0},
        {"Age: 10\nAge: 20", T0, T0, 10},
        {"Age: x, 20", T0, T0, 0},
        {"Age:  7 ", T0, T0, 7},
        {"Age: 99999999999999", T0, T0, EDGE_DELTA_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct edge_hdr sh[8];
        size_t sn = hdrs(cases[i].resp, sh, 8);
        struct edge_resp_meta rs;
        edge_resp_analyze(sh, sn, 200, &conf, &rs);
        int64_t got = edge_initial_age(rs.age, rs.date, cases[i].req_t, cases[i].resp_t);
        if (got != cases[i].want_initial)
            fail_msg("case %zu (%s): got %lld want %lld", i, cases[i].resp, (long long)got,
                     (long long)cases[i].want_initial);
    }
    /* Age grows with residence, so a hit always gets a fresh Age */
    assert_int_equal(edge_current_age(102, T0, T0 + 10), 112);
    assert_int_equal(edge_current_age(102, T0, T0 - 10), 102);

    /* upstream Age eats into freshness: max-age=60 with Age: 50 is fresh for 10 s more */
    struct edge_hdr sh[4];
    size_t sn = hdrs("Cache-Control: max-age=60\nAge: 50", sh, 4);
    struct edge_resp_meta rs;
    struct edge_fresh f;
    struct edge_req_meta rq;
    struct edge_verdict v;
    edge_resp_analyze(sh, sn, 200, &conf, &rs);
    edge_fresh_from_resp(&f, &rs, T0, T0, &conf);
    edge_req_analyze(EDGE_M_GET, NULL, 0, &rq);
    edge_decide(&f, &rq, T0 + 9, &v);
    assert_int_equal(v.use, EDGE_USE_FRESH);
    assert_int_equal(v.age, 59);
    edge_decide(&f, &rq, T0 + 10, &v);
    assert_int_equal(v.use, EDGE_USE_VALIDATE);
}

/* --- reuse decisions: a table over (response, request, seconds after storing) --- */
struct use_case {
    const char *resp, *req;
    int64_t after;
    enum edge_use want;
    int sie;
};

static void decisions(void **state)
{
    static const struct use_case cases[] = {
        {"Cache-Control: max-age=60", "", 0, EDGE_USE_FRESH, 0},
        {"Cache-Control: max-age=60", "", 59, EDGE_USE_FRESH, 0},
        {"Cache-Control: max-age=60", "", 60, EDGE_USE_VALIDATE, 0},
        /* request directives */
        {"Cache-Control: max-age=60", "Cache-Control: no-cache", 0, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60", "Pragma: no-cache", 0, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60", "Pragma: no-cache\nCache-Control: max-stale", 0, EDGE_USE_FRESH, 0},
        {"Cache-Control: max-age=60", "Cache-Control: max-age=10", 10, EDGE_USE_FRESH, 0},
        {"Cache-Control: max-age=60", "Cache-Control: max-age=10", 11, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60", "Cache-Control: max-age=0", 1, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60", "Cache-Control: min-fresh=20", 40, EDGE_USE_FRESH, 0},
        {"Cache-Control: max-age=60", "Cache-Control: min-fresh=20", 41, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60", "Cache-Control: max-stale=30", 90, EDGE_USE_STALE, 0},
        {"Cache-Control: max-age=60", "Cache-Control: max-stale=30", 91, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60", "Cache-Control: max-stale", 100000, EDGE_USE_STALE, 0},
        /* must-revalidate, proxy-revalidate and s-maxage forbid serving stale */
        {"Cache-Control: max-age=60, must-revalidate", "Cache-Control: max-stale", 61, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60, proxy-revalidate", "Cache-Control: max-stale", 61, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: s-maxage=60", "Cache-Control: max-stale", 61, EDGE_USE_VALIDATE, 0},
        /* no-cache on the response: stored, but validated on every use */
        {"Cache-Control: no-cache, max-age=60", "", 0, EDGE_USE_VALIDATE, 0},
        /* stale-while-revalidate / stale-if-error */
        {"Cache-Control: max-age=60, stale-while-revalidate=30", "", 75, EDGE_USE_SWR, 0},
        {"Cache-Control: max-age=60, stale-while-revalidate=30", "", 91, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60, stale-while-revalidate=30, must-revalidate", "", 75, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60, stale-if-error=100", "", 150, EDGE_USE_VALIDATE, 1},
        {"Cache-Control: max-age=60, stale-if-error=100", "", 161, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60", "Cache-Control: stale-if-error=100", 150, EDGE_USE_VALIDATE, 1},
        {"Cache-Control: max-age=60, stale-if-error=100, must-revalidate", "", 70, EDGE_USE_VALIDATE, 0},
        {"Cache-Control: max-age=60", "", 70, EDGE_USE_VALIDATE, 0},
        /* an invalid Expires is stale immediately */
        {"Expires: 0", "", 0, EDGE_USE_VALIDATE, 0},
    };
    struct edge_fresh_conf conf;
    edge_fresh_conf_default(&conf);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct edge_hdr rh[8], sh[8];
        size_t rn = hdrs(cases[i].req, rh, 8), sn = hdrs(cases[i].resp, sh, 8);
        struct edge_req_meta rq;
        struct edge_resp_meta rs;
        struct edge_fresh f;
        struct edge_verdict v;
        edge_req_analyze(EDGE_M_GET, rh, rn, &rq);
        edge_resp_analyze(sh, sn, 200, &conf, &rs);
        edge_fresh_from_resp(&f, &rs, T0, T0, &conf);
        edge_decide(&f, &rq, T0 + cases[i].after, &v);
        if (v.use != cases[i].want || v.stale_if_error != cases[i].sie)
            fail_msg("case %zu (%s | %s | +%lld): got use %d sie %d, want %d %d", i, cases[i].resp,
                     cases[i].req, (long long)cases[i].after, v.use, v.stale_if_error, cases[i].want,
                     cases[i].sie);
    }
}

static void auth_and_methods(void **state)
{
    struct edge_fresh_conf conf;
    edge_fresh_conf_default(&conf);
    struct edge_hdr sh[4];
    struct edge_resp_meta rs;
    struct edge_fresh f;
    size_t sn = hdrs("Cache-Control: max-age=60", sh, 4);
    edge_resp_analyze(sh, sn, 200, &conf, &rs);
    edge_fresh_from_resp(&f, &rs, T0, T0, &conf);
    assert_false(f.flags & EDGE_F_AUTH_OK); /* stored for others, not for Authorization requests */
    sn = hdrs("Cache-Control: public, max-age=60", sh, 4);
    edge_resp_analyze(sh, sn, 200, &conf, &rs);
    edge_fresh_from_resp(&f, &rs, T0, T0, &conf);
    assert_true(f.flags & EDGE_F_AUTH_OK);

    /* what invalidates: unsafe and unknown methods */
    const char *unsafe[] = {"POST", "PUT", "DELETE", "PATCH", "FOO", "get"};
    for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++)
        assert_true(edge_method_unsafe(edge_method_parse(unsafe[i], strlen(unsafe[i]))));
    const char *safe[] = {"GET", "HEAD", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
        assert_false(edge_method_unsafe(edge_method_parse(safe[i], strlen(safe[i]))));
}

static void hop_by_hop(void **state)
{
    struct edge_hdr h[4];
    size_t n = hdrs("Connection: close, X-Secret\nX-Secret: 1\nKeep-Alive: 5", h, 4);
    assert_true(edge_hdr_is_hop(h, n, "x-secret", 8));
    assert_true(edge_hdr_is_hop(h, n, "Keep-Alive", 10));
    assert_true(edge_hdr_is_hop(h, n, "transfer-encoding", 17));
    assert_false(edge_hdr_is_hop(h, n, "x-other", 7));
    assert_false(edge_hdr_is_hop(h, n, "x-secre", 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cc_parser),   cmocka_unit_test(cc_qualified),   cmocka_unit_test(cc_strict),
        cmocka_unit_test(http_dates),  cmocka_unit_test(date_pick),  cmocka_unit_test(storability),
        cmocka_unit_test(lifetime),    cmocka_unit_test(age),
        cmocka_unit_test(decisions),   cmocka_unit_test(auth_and_methods),
        cmocka_unit_test(hop_by_hop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
