/* edge/http/accept.c - Accept normalised on image routes: the rules are in accept.h. The field is
 * read in one pass with an index that only moves forward; nothing is refused, a member with a
 * malformed weight is skipped (fuzzed: tests/fuzz/fuzz_edge_accept.c). */
#include "config.h"

#include <string.h>
#include <strings.h>
#include "edge/http/accept.h"

const char *const edge_imgfmt_name[EDGE_IMGFMT_N] = {"avif", "webp", "png"};
const char *const edge_imgfmt_mime[EDGE_IMGFMT_N] = {"image/avif", "image/webp", "image/png"};

static size_t ows(const char *v, size_t len, size_t i)
{
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    return i;
}

/* From the opening quote: the index after the closing one (or len). */
static size_t quoted(const char *v, size_t len, size_t i)
{
    for (i++; i < len && v[i] != '"'; i++)
        if (v[i] == '\\' && i + 1 < len)
            i++;
    return i < len ? i + 1 : len;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ): 0..1000, or -1. */
static int qvalue(const char *v, size_t s, size_t e)
{
    if (s >= e || (v[s] != '0' && v[s] != '1'))
        return -1;
    int q = (v[s] - '0') * 1000, scale = 100;
    size_t i = s + 1;
    if (i < e) {
        if (v[i++] != '.' || e - i > 3)
            return -1;
        for (; i < e; i++, scale /= 10) {
            if (v[i] < '0' || v[i] > '9')
                return -1;
            q += (v[i] - '0') * scale;
        }
    }
    return q <= 1000 ? q : -1;
}

int edge_accept_q(const char *v, size_t len, const char *type, size_t tlen)
{
    size_t i = 0;
    if (v == NULL)
        return -1;
    while (i < len) {
        i = ows(v, len, i);
        size_t s = i;
        while (i < len && v[i] != ',' && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
            i++;
        size_t e = i;
        int q = 1000;
        while (i < len && v[i] != ',') { /* parameters up to the next member */
            if (v[i] == '"') {
                i = quoted(v, len, i);
                continue;
            }
            if (v[i] != ';') {
                i++;
                continue;
            }
            i = ows(v, len, i + 1);
            size_t ns = i;
            while (i < len && v[i] != '=' && v[i] != ';' && v[i] != ',')
                i++;
            int is_q = i - ns == 1 && (v[ns] == 'q' || v[ns] == 'Q');
            if (i >= len || v[i] != '=')
                continue;
            size_t vs = ++i;
            if (i < len && v[i] == '"')
                i = quoted(v, len, i);
            else
                while (i < len && v[i] != ';' && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
                    i++;
            if (is_q)
                q = qvalue(v, vs, i);
        }
        if (i < len)
            i++; /* the comma */
        if (q >= 0 && e - s == tlen && strncasecmp(v + s, type, tlen) == 0)
            return q;
    }
    return -1;
}

enum edge_imgfmt edge_imgfmt_fallback(unsigned offered)
{
    for (int f = EDGE_IMGFMT_N - 1; f > 0; f--)
        if (offered & (1u << f))
            return (enum edge_imgfmt)f;
    return (enum edge_imgfmt)0;
}

enum edge_imgfmt edge_accept_image(const struct edge_hdr *h, size_t n, unsigned offered, int *present)
{
    *present = 0;
    enum edge_imgfmt fb = edge_imgfmt_fallback(offered);
    for (int f = 0; f < (int)fb; f++) {
        if (!(offered & (1u << f)))
            continue;
        const char *mt = edge_imgfmt_mime[f];
        for (int i = edge_hdr_find(h, n, "accept", 0); i >= 0; i = edge_hdr_find(h, n, "accept", (size_t)i + 1)) {
            *present = 1;
            if (edge_accept_q(h[i].value, h[i].value_len, mt, strlen(mt)) > 0)
                return (enum edge_imgfmt)f;
        }
    }
    if (!*present)
        *present = edge_hdr_find(h, n, "accept", 0) >= 0;
    return fb;
}

int edge_image_path(const char *const *prefixes, const char *path, size_t len)
{
    for (; prefixes != NULL && *prefixes != NULL; prefixes++) {
        size_t pl = strlen(*prefixes);
        if (pl <= len && memcmp(path, *prefixes, pl) == 0)
            return 1;
    }
    return 0;
}

int edge_imgfmt_parse(const char *s)
{
    for (int f = 0; f < EDGE_IMGFMT_N; f++)
        if (strcasecmp(s, edge_imgfmt_name[f]) == 0)
            return f;
    return -1;
}
