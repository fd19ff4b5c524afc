/* Unit tests for lib/h1strict.c: the strict HTTP/1.1 head check (a table of heads and the reason
 * each gets, RFC 9112 sections in the names) and the chunked decoder (whole, byte by byte, the
 * bytes left over, and what it refuses). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cdn/h1strict.h"

static void heads(void **state)
{
    (void)state;
    static const struct {
        const char *head, *want; /* want: NULL (accepted) or a part of the reason */
    } t[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL},
        {"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL},                     /* 2.2: leading empty line */
        {"GET / HTTP/1.1\nHost: a\n\n", NULL},                               /* 2.2: bare LF ends a line */
        {"GET / HTTP/1.0\r\n\r\n", NULL},                                    /* 3.2: 1.0 needs no Host */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\n", NULL},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: \x80\xff\t ok\r\n\r\n", NULL},     /* obs-text */
        {"GET / HTTP/1.1\r\n\r\n", "without Host"},                          /* 3.2 */
        {"GET / HTTP/1.1\r\nHost: a\r\nHOST: a\r\n\r\n", "more than one Host"},
        {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "conflicting"}, /* 6.3 */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", "invalid Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", "invalid Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both"}, /* 6.1 */
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "single chunked"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "single chunked"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", "obs-fold"},     /* 5.2 */
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "and its colon"},         /* 5.1 */
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", "control character"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", "bare CR"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n", "malformed field name"},
        {"GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n", "malformed field name"},
        {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "request target"},           /* 3 */
        {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "method"},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP version"},
        {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "HTTP version"},
        {"GET / HTTP/1.1\r\nHost: a\r\n", "unterminated"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t len = strlen(t[i].head);
        if (i == 20) /* the one with a NUL: its length by hand */
            len = sizeof("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n") - 1;
        const char *got = cdn_h1_check_head(t[i].head, len);
        if (t[i].want == NULL && got != NULL)
            fail_msg("head %zu refused (%s), want accepted", i, got);
        if (t[i].want != NULL && (got == NULL || strstr(got, t[i].want) == NULL))
            fail_msg("head %zu: got '%s', want '%s'", i, got ? got : "(accepted)", t[i].want);
    }
}

/* decode s whole (split == 0) or one byte a call; returns the verdict, out gets the bytes */
static long decode(const char *s, int bytewise, char *out, size_t *outlen)
{
    struct cdn_h1_chunked d = {0, 1, 0, 0};
    size_t n = strlen(s), pos = 0;
    char buf[256];
    *outlen = 0;
    if (!bytewise) {
        memcpy(buf, s, n);
        long r = (long)cdn_h1_decode_chunked(&d, buf, &n);
        memcpy(out, buf, n);
        *outlen = n;
        return r;
    }
    long r = -2;
    for (; pos < n && r == -2; pos++) {
        size_t one = 1;
        buf[0] = s[pos];
        r = (long)cdn_h1_decode_chunked(&d, buf, &one);
        memcpy(out + *outlen, buf, one);
        *outlen += one;
    }
    if (r >= 0)
        r += (long)(n - pos); /* bytes never handed in are left over too */
    return r;
}

static void chunked(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
        long ret; /* -1 error, -2 incomplete, else bytes left over */
    } t[] = {
        {"5\r\nhello\r\n0\r\n\r\n", "hello", 0},
        {"5\r\nhello\r\n0\r\n\r\nGET", "hello", 3},
        {"3;a=b;c=\"x\\\"y\"\r\nabc\r\n2 ; q\r\nde\r\n0\r\nT: 1\r\nU: 2\r\n\r\n", "abcde", 0},
        {"A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 0},
        {"5\r\nhel", "hel", -2},
        {"1g\r\nx\r\n0\r\n\r\n", NULL, -1},              /* 7.1: chunk-size = 1*HEXDIG */
        {"\r\nx\r\n0\r\n\r\n", NULL, -1},
        {"5\r\nhelloX\r\n0\r\n\r\n", NULL, -1},          /* chunk-data CRLF */
        {"5\nhello\r\n0\r\n\r\n", NULL, -1},             /* CRLF, not a bare LF */
        {"5 x\r\nhello\r\n0\r\n\r\n", NULL, -1},
        {"10000000000000000\r\n", NULL, -1},              /* 17 hex digits */
        {"5;a\x01\r\nhello\r\n0\r\n\r\n", NULL, -1},
        {"0\r\n folded\r\n\r\n", NULL, -1},               /* a trailer line with obs-fold */
        {"0\r\nT: 1\n\r\n", NULL, -1},
    };
    char out[256];
    size_t n;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        for (int bw = 0; bw < 2; bw++) {
            long r = decode(t[i].in, bw, out, &n);
            if (r != t[i].ret)
                fail_msg("chunked %zu (%s): returned %ld, want %ld", i, bw ? "byte by byte" : "whole", r, t[i].ret);
            if (t[i].out != NULL && (n != strlen(t[i].out) || memcmp(out, t[i].out, n) != 0))
                fail_msg("chunked %zu (%s): decoded '%.*s', want '%s'", i, bw ? "byte by byte" : "whole", (int)n, out,
                         t[i].out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heads),
        cmocka_unit_test(chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
