/* Unit tests for lib/http.c: SipHash-2-4 against the paper's test vectors, the two keyed hashes,
 * reason phrases, HTTP-date parse and format, entity-tag comparison, percent-decoding and the
 * header class table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cdn/http.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Appendix A of the SipHash paper (key 00 01 .. 0f, message 00 01 .. len-1) and the reference
 * implementation's vectors.h, read as little-endian 64-bit words. */
static void siphash_vectors(void **state)
{
    (void)state;
    static const struct { size_t len; uint64_t h; } v[] = {
        {0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL},  {2, 0x0d6c8009d9a94f5aULL},
        {3, 0x85676696d7fb7e2dULL},  {7, 0xab0200f58b01d137ULL},  {8, 0x93f5f5799a932462ULL},
        {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL}, {63, 0x958a324ceb064572ULL},
    };
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < N(v); i++) {
        uint64_t h = cdn_siphash24(key, msg, v[i].len);
        if (h != v[i].h)
            fail_msg("siphash of %zu bytes: %016llx, want %016llx", v[i].len, (unsigned long long)h,
                     (unsigned long long)v[i].h);
    }
}

static void *hash_in_thread(void *p)
{
    *(uint64_t *)p = cdn_hash("abc", 3);
    return NULL;
}

static void keyed_hashes(void **state)
{
    (void)state;
    /* the fixed hash is SipHash under the documented key: the same in every process and run */
    assert_true(cdn_hash_fixed("abc", 3) == cdn_siphash24((const uint8_t *)CDN_HASH_FIXED_KEY, "abc", 3));
    assert_int_equal(strlen(CDN_HASH_FIXED_KEY), 16);
    /* the random one: stable within the process (every thread sees one key), not the fixed one */
    uint64_t a = cdn_hash("abc", 3), b = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hash_in_thread, &b), 0);
    pthread_join(t, NULL);
    assert_true(a == b);
    assert_true(a != cdn_hash_fixed("abc", 3));
    assert_true(cdn_hash("abd", 3) != a);
    uint8_t le[8] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    assert_true(cdn_hash_u64(0x0102030405060708ULL) == cdn_hash(le, 8));
    cdn_hash_init(); /* idempotent: the key does not change */
    assert_true(cdn_hash("abc", 3) == a);
}

static void reasons(void **state)
{
    (void)state;
    static const struct { int st; const char *r; } t[] = {
        {100, "Continue"},   {103, "Early Hints"},          {200, "OK"},
        {204, "No Content"}, {206, "Partial Content"},      {303, "See Other"},
        {304, "Not Modified"}, {308, "Permanent Redirect"}, {404, "Not Found"},
        {410, "Gone"},       {416, "Range Not Satisfiable"}, {429, "Too Many Requests"},
        {502, "Bad Gateway"}, {504, "Gateway Timeout"},     {508, "Loop Detected"},
        {0, NULL},           {99, NULL},                     {299, NULL},
        {418, NULL},         {600, NULL},                    {-1, NULL},
    };
    for (size_t i = 0; i < N(t); i++) {
        const char *r = cdn_http_reason(t[i].st);
        if (t[i].r == NULL)
            assert_null(r);
        else
            assert_string_equal(r, t[i].r);
    }
}

static void dates(void **state)
{
    (void)state;
    static const struct { const char *s; int ok; int64_t t; } t[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 1, 784111777},
        {" \tSun, 06 Nov 1994 08:49:37 GMT \t", 1, 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", 1, 784111777},
        {"Sun Nov  6 08:49:37 1994", 1, 784111777},
        {"Sun Nov 06 08:49:37 1994", 1, 784111777},
        {"Thu, 01 Jan 1970 00:00:00 GMT", 1, 0},
        {"Wed, 31 Dec 1969 23:59:59 GMT", 1, -1},
        {"Thursday, 01-Jan-70 00:00:00 GMT", 1, 0},
        {"Tuesday, 31-Dec-69 00:00:00 GMT", 1, 3155673600}, /* 69: 2069 */
        {"Sat, 01 Jan 2000 00:00:60 GMT", 1, 946684860},   /* a leap second */
        {"Tue, 29 Feb 2000 12:00:00 GMT", 1, 951825600},
        {"Sun, 06 Nov 1994 08:49:37 UTC", 0, 0},
        {"Sun, 06 Nov 1994 08:49:37", 0, 0},
        {"Sun, 6 Nov 1994 08:49:37 GMT", 0, 0},
        {"Sun, 06 Nov 1994 24:00:00 GMT", 0, 0},
        {"Sun, 06 Nov 1994 08:60:00 GMT", 0, 0},
        {"Sun, 00 Nov 1994 08:49:37 GMT", 0, 0},
        {"Sun, 32 Nov 1994 08:49:37 GMT", 0, 0},
        {"Sun, 06 Now 1994 08:49:37 GMT", 0, 0},
        {"Sun, 06 nov 1994 08:49:37 GMT", 0, 0},
        {"Sun Nov  6 08:49:37 94", 0, 0},
        {"Sunday, 06-Nov-1994 08:49:37 GMT", 0, 0},
        {"1994-11-06T08:49:37Z", 0, 0},
        {"", 0, 0},
        {"0", 0, 0},
    };
    for (size_t i = 0; i < N(t); i++) {
        int64_t v = 42;
        int r = cdn_http_date_parse(t[i].s, strlen(t[i].s), &v);
        if (r != (t[i].ok ? 0 : -1) || (t[i].ok && v != t[i].t))
            fail_msg("\"%s\": %d %lld", t[i].s, r, (long long)v);
    }
    /* only the given length is read */
    int64_t v;
    assert_int_equal(cdn_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMTXX", 29, &v), 0);
    assert_int_equal(cdn_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 28, &v), -1);
    /* an embedded NUL is not the end of the value */
    assert_int_equal(cdn_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT\0", 30, &v), -1);

    static const struct { int64_t t; const char *s; } f[] = {
        {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"}, {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
        {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},        {951825600, "Tue, 29 Feb 2000 12:00:00 GMT"},
        {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"}, {-62167219200, "Sat, 01 Jan 0000 00:00:00 GMT"},
    };
    char buf[CDN_HTTP_DATE_LEN + 1];
    for (size_t i = 0; i < N(f); i++) {
        assert_string_equal(cdn_http_date_fmt(f[i].t, buf), f[i].s);
        assert_int_equal(cdn_http_date_parse(buf, strlen(buf), &v), 0);
        assert_true(v == f[i].t);
    }
    /* out of range: clamped year, still 29 bytes */
    assert_int_equal(strlen(cdn_http_date_fmt(INT64_MAX / 2, buf)), CDN_HTTP_DATE_LEN);
    assert_int_equal(strlen(cdn_http_date_fmt(INT64_MIN / 2, buf)), CDN_HTTP_DATE_LEN);
}

static void lists_and_ows(void **state)
{
    (void)state;
    const char *v = " \t a b \t";
    size_t l = strlen(v);
    cdn_http_trim_ows(&v, &l);
    assert_int_equal(l, 3);
    assert_memory_equal(v, "a b", 3);
    static const struct { const char *list, *tok; int has; } t[] = {
        {"close", "close", 1},          {"Keep-Alive, Close", "close", 1}, {" ,, x ,close\t", "close", 1},
        {"closed", "close", 0},         {"clo se", "close", 0},           {"", "close", 0},
        {"a,b", "a,b", 0},
    };
    for (size_t i = 0; i < N(t); i++)
        assert_int_equal(cdn_http_list_has(t[i].list, strlen(t[i].list), t[i].tok, strlen(t[i].tok)), t[i].has);
}

static void etags(void **state)
{
    (void)state;
    static const struct { const char *list, *etag; int weak; } t[] = {
        {"\"a\"", "\"a\"", 1},          {"W/\"a\"", "\"a\"", 1},        {"\"a\"", "W/\"a\"", 1},
        {"\"x\", \"a\"", "\"a\"", 1},   {"\"x\",W/\"a\"", " \"a\" ", 1}, {"*", "\"a\"", 1},
        {"\"a,b\"", "\"a,b\"", 1},      {"\"b\"", "\"a\"", 0},          {"\"A\"", "\"a\"", 0},
        {"", "\"a\"", 0},               {"\"ab\"", "\"a\"", 0},         {"\"a", "\"a\"", 0},
    };
    for (size_t i = 0; i < N(t); i++)
        if (cdn_etag_match_weak(t[i].list, strlen(t[i].list), t[i].etag, strlen(t[i].etag)) != t[i].weak)
            fail_msg("%s vs %s", t[i].list, t[i].etag);
    static const struct { const char *a, *b; int eq; } s[] = {
        {"\"a\"", "\"a\"", 1},  {" \"a\"", "\"a\" ", 1}, {"W/\"a\"", "W/\"a\"", 0},
        {"W/\"a\"", "\"a\"", 0}, {"\"a\"", "\"b\"", 0},  {"a", "a", 0}, {"\"", "\"", 0},
    };
    for (size_t i = 0; i < N(s); i++)
        assert_int_equal(cdn_etag_eq_strong(s[i].a, strlen(s[i].a), s[i].b, strlen(s[i].b)), s[i].eq);
}

static void percent(void **state)
{
    (void)state;
    static const struct { const char *in; unsigned fl; const char *out; } t[] = {
        {"a%20b", 0, "a b"},     {"a+b", 0, "a+b"},      {"a+b", CDN_PCT_PLUS, "a b"},
        {"%41%6a", 0, "Aj"},     {"%zz%4", 0, "%zz%4"},  {"%", 0, "%"},
        {"100%", 0, "100%"},     {"%2B+", CDN_PCT_PLUS, "+ "},
    };
    char out[32];
    for (size_t i = 0; i < N(t); i++) {
        long n = cdn_pct_decode(t[i].in, strlen(t[i].in), out, sizeof(out), t[i].fl);
        assert_int_equal(n, (long)strlen(t[i].out));
        assert_string_equal(out, t[i].out);
    }
    assert_int_equal(cdn_pct_decode("%00x", 4, out, sizeof(out), 0), 2);
    assert_memory_equal(out, "\0x", 3);
    assert_int_equal(cdn_pct_decode("abc", 3, out, 3, 0), -1); /* no room for the NUL */
    assert_int_equal(cdn_pct_decode("abc", 3, out, 4, 0), 3);
    assert_int_equal(cdn_pct_decode("", 0, out, 0, 0), -1);

    static const struct { const char *in, *out; } nz[] = {
        {"/%7euser/%2f%2F%41", "/~user/%2F%2FA"}, {"%zz", "%zz"}, {"a%2", "a%2"}, {"%e2%82%ac", "%E2%82%AC"},
        {"", ""},
    };
    for (size_t i = 0; i < N(nz); i++) {
        size_t n = cdn_pct_normalize(nz[i].in, strlen(nz[i].in), out);
        assert_int_equal(n, strlen(nz[i].out));
        assert_memory_equal(out, nz[i].out, n);
    }
    assert_int_equal(cdn_hexval('f'), 15);
    assert_int_equal(cdn_hexval('G'), -1);
    assert_true(cdn_url_unreserved('~') && !cdn_url_unreserved('/') && !cdn_url_unreserved('%'));
}

static void header_classes(void **state)
{
    (void)state;
    static const struct { const char *name; unsigned cls; } t[] = {
        {"Connection", CDN_HDR_HOP},         {"keep-alive", CDN_HDR_HOP},        {"TE", CDN_HDR_HOP},
        {"Trailer", CDN_HDR_HOP},            {"Transfer-Encoding", CDN_HDR_HOP}, {"Upgrade", CDN_HDR_HOP},
        {"Proxy-Connection", CDN_HDR_HOP},   {"Proxy-Authenticate", CDN_HDR_HOP},
        {"proxy-authorization", CDN_HDR_HOP}, {"Content-Length", CDN_HDR_NO_FORWARD},
        {"Expect", CDN_HDR_NO_FORWARD},      {"Set-Cookie", CDN_HDR_NO_STORE},  {"surrogate-key", CDN_HDR_NO_STORE},
        {"Trailers", 0},                     {"T", 0},                          {"content-type", 0},
        {"Authorization", 0},                {"", 0},
    };
    for (size_t i = 0; i < N(t); i++)
        if (cdn_http_hdr_class(t[i].name, strlen(t[i].name)) != t[i].cls)
            fail_msg("%s", t[i].name);
    assert_int_equal(cdn_http_hdr_class("tex", 2), CDN_HDR_HOP); /* only len bytes are read */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(siphash_vectors), cmocka_unit_test(keyed_hashes), cmocka_unit_test(reasons),
        cmocka_unit_test(dates),           cmocka_unit_test(lists_and_ows), cmocka_unit_test(etags),
        cmocka_unit_test(percent),         cmocka_unit_test(header_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
