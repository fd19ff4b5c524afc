/* edge/http/range.c - Range header parsing with a bounds-checked cursor; see range.h for the policy. */
#include "config.h"
#include <strings.h>

#include "edge/http/range.h"

static int ows(char c) { return c == ' ' || c == '\t'; }

/* 1*DIGIT, saturating far above any object size. -1 if no digit. */
static int digits(const char **pp, const char *end, uint64_t *v)
{
    const char *p = *pp;
    uint64_t x = 0;
    if (p == end || *p < '0' || *p > '9')
        return -1;
    while (p < end && *p >= '0' && *p <= '9') {
        if (x < (UINT64_C(1) << 60))
            x = x * 10 + (uint64_t)(*p - '0');
        p++;
    }
    *v = x;
    *pp = p;
    return 0;
}

int edge_range_parse(const char *s, size_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
    const char *p = s, *end = s + len;
    while (p < end && ows(*p))
        p++;
    if (end - p < 6 || strncasecmp(p, "bytes", 5) != 0)
        return EDGE_RANGE_NONE;
    p += 5;
    while (p < end && ows(*p))
        p++;
    if (p == end || *p != '=')
        return EDGE_RANGE_NONE;
    p++;
    int nranges = 0, nsat = 0;
    uint64_t f0 = 0, l0 = 0;
    for (;;) {
        while (p < end && (ows(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        uint64_t a, b;
        int sat;
        if (*p == '-') { /* suffix-range */
            p++;
            if (digits(&p, end, &b) < 0)
                return EDGE_RANGE_NONE;
            sat = b > 0 && size > 0;
            a = b >= size ? 0 : size - b;
            b = size - 1;
        } else {
            if (digits(&p, end, &a) < 0 || p == end || *p != '-')
                return EDGE_RANGE_NONE;
            p++;
            if (p < end && *p >= '0' && *p <= '9') {
                if (digits(&p, end, &b) < 0 || b < a)
                    return EDGE_RANGE_NONE;
            } else {
                b = UINT64_MAX;
            }
            sat = a < size;
            if (b >= size)
                b = size - 1;
        }
        while (p < end && ows(*p))
            p++;
        if (p < end && *p != ',')
            return EDGE_RANGE_NONE;
        nranges++;
        if (sat && nsat++ == 0) {
            f0 = a;
            l0 = b;
        }
    }
    if (nranges == 0)
        return EDGE_RANGE_NONE;
    if (nsat == 0)
        return EDGE_RANGE_UNSAT;
    if (nranges > 1)
        return EDGE_RANGE_NONE;
    *first = f0;
    *last = l0;
    return EDGE_RANGE_OK;
}

int edge_content_range_parse(const char *s, size_t len, uint64_t *first, uint64_t *last, uint64_t *total)
{
    const char *p = s, *end = s + len;
    while (p < end && ows(*p))
        p++;
    if (end - p < 6 || strncasecmp(p, "bytes", 5) != 0 || !ows(p[5]))
        return -1;
    p += 6;
    while (p < end && ows(*p))
        p++;
    uint64_t f = UINT64_MAX, l = UINT64_MAX, t;
    if (p < end && *p == '*') {
        p++;
    } else if (digits(&p, end, &f) < 0 || p == end || *p++ != '-' || digits(&p, end, &l) < 0 || f > l) {
        return -1;
    }
    if (p == end || *p++ != '/' || digits(&p, end, &t) < 0)
        return -1;
    while (p < end && ows(*p))
        p++;
    if (p != end || (l != UINT64_MAX && l >= t))
        return -1;
    *first = f;
    *last = l;
    *total = t;
    return 0;
}
