/* edge/http/cache_key.c - primary and Vary keys (see cache_key.h).
 *
 * Normalisation follows RFC 3986 6.2.2 only where it keeps equivalence: host lowercased and the
 * default port dropped, percent-encoded unreserved characters decoded, other escapes uppercased,
 * dot segments removed. The configured query policy (drop, sort) is the operator's choice. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdn/http.h"
#include "edge/http/cache_key.h"

struct out {
    char *p;
    size_t len, cap;
    int err;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->err || o->len + n + 1 > o->cap) {
        o->err = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}
static void putc1(struct out *o, char c) { put(o, &c, 1); }

/* Copies s with percent-encodings normalised. The result is never longer than s: it is written
 * in place when s fits, else through a copy so that a result that fits is still accepted. */
static void put_pct(struct out *o, const char *s, size_t n)
{
    if (o->err)
        return;
    if (o->len + n + 1 <= o->cap) {
        o->len += cdn_pct_normalize(s, n, o->p + o->len);
        o->p[o->len] = '\0';
        return;
    }
    char *t = malloc(n ? n : 1);
    if (t == NULL) {
        o->err = 1;
        return;
    }
    put(o, t, cdn_pct_normalize(s, n, t));
    free(t);
}

/* RFC 3986 5.2.4 on an already-normalised path held in buf[0..len); result in place. */
static size_t remove_dots(char *buf, size_t len)
{
    size_t w = 0, r = 0;
    while (r < len) {
        /* read one segment "/seg" */
        size_t s = r + 1;
        size_t e = s;
        while (e < len && buf[e] != '/')
            e++;
        size_t sl = e - s;
        if (sl == 1 && buf[s] == '.') {
            if (e == len) { buf[w++] = '/'; }
        } else if (sl == 2 && buf[s] == '.' && buf[s + 1] == '.') {
            while (w > 0 && buf[--w] != '/')
                ;
            if (e == len) { buf[w++] = '/'; }
        } else {
            memmove(buf + w, buf + r, e - r);
            w += e - r;
        }
        r = e;
    }
    if (w == 0)
        buf[w++] = '/';
    return w;
}

static int param_dropped(const struct edge_key_conf *c, const char *p, size_t n)
{
    if (c->drop_params == NULL)
        return 0;
    const char *eq = memchr(p, '=', n);
    size_t nl = eq ? (size_t)(eq - p) : n;
    for (const char *const *d = c->drop_params; *d != NULL; d++) {
        size_t dl = strlen(*d);
        if (dl > 0 && (*d)[dl - 1] == '*') {
            if (nl >= dl - 1 && memcmp(p, *d, dl - 1) == 0)
                return 1;
        } else if (dl == nl && memcmp(p, *d, nl) == 0) {
            return 1;
        }
    }
    return 0;
}

struct param { const char *p; size_t n; size_t idx; };

static int param_cmp(const void *a, const void *b)
{
    const struct param *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    if (c != 0)
        return c;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

int edge_key_primary(const struct edge_key_conf *c, const char *scheme, const char *host,
                     size_t host_len, const char *target, size_t target_len, char *out, size_t cap)
{
    struct out o = {out, 0, cap, cap == 0};
    if (target_len == 0 || target[0] != '/')
        return -1;
    put(&o, scheme, strlen(scheme));
    put(&o, "://", 3);
    /* host: lowercase, no trailing dot, no default port */
    size_t hl = host_len;
    const char *colon = host_len ? memrchr(host, ':', host_len) : NULL;
    if (colon && !memchr(colon, ']', host_len - (size_t)(colon - host))) {
        const char *port = colon + 1;
        size_t pl = host_len - (size_t)(port - host);
        if ((strcmp(scheme, "http") == 0 && pl == 2 && memcmp(port, "80", 2) == 0) ||
            (strcmp(scheme, "https") == 0 && pl == 3 && memcmp(port, "443", 3) == 0) || pl == 0)
            hl = (size_t)(colon - host);
    }
    if (hl > 0 && host[hl - 1] == '.')
        hl--;
    for (size_t i = 0; i < hl; i++) {
        char ch = host[i];
        putc1(&o, ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch);
    }
    const char *q = memchr(target, '?', target_len);
    const char *hash = memchr(target, '#', target_len);
    size_t tl = hash ? (size_t)(hash - target) : target_len;
    if (q && q >= target + tl)
        q = NULL;
    size_t pl = q ? (size_t)(q - target) : tl;
    size_t path_at = o.len;
    put_pct(&o, target, pl);
    if (o.err)
        return -1;
    o.len = path_at + remove_dots(out + path_at, o.len - path_at);
    out[o.len] = '\0';
    if (q && !c->ignore_query) {
        /* each parameter's escapes are normalised first, so that dropping and sorting see the
         * form the key keeps ("%75tm_x" is utm_x; "%6E" sorts as "n"): the key of a key's own
         * target is the same key */
        const char *qs = q + 1, *qe = target + tl;
        char *norm = malloc((size_t)(qe - qs) + 1);
        if (norm == NULL)
            return -1;
        struct param ps[256];
        size_t np = 0, nl = 0;
        while (qs < qe) {
            const char *a = memchr(qs, '&', (size_t)(qe - qs));
            const char *e = a ? a : qe;
            size_t l = e > qs ? cdn_pct_normalize(qs, (size_t)(e - qs), norm + nl) : 0;
            if (l > 0 && !param_dropped(c, norm + nl, l)) {
                if (np == sizeof(ps) / sizeof(ps[0])) {
                    free(norm);
                    return -1;
                }
                ps[np] = (struct param){norm + nl, l, np};
                np++;
                nl += l;
            }
            qs = a ? a + 1 : qe;
        }
        if (c->sort_params)
            qsort(ps, np, sizeof(ps[0]), param_cmp);
        for (size_t i = 0; i < np; i++) {
            putc1(&o, i == 0 ? '?' : '&');
            put(&o, ps[i].p, ps[i].n);
        }
        free(norm);
    }
    return o.err ? -1 : (int)o.len;
}

/* --- Vary --- */
struct tok { const char *p; size_t n; };

static int tok_cmp(const void *a, const void *b)
{
    const struct tok *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = strncasecmp(x->p, y->p, m);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Splits a comma list into trimmed non-empty elements. Returns count, or -1 if more than max. */
static int split(const char *s, size_t len, struct tok *t, int nt, int max)
{
    const char *p = s, *m;
    size_t ml;
    while (cdn_http_list_next(&p, s + len, &m, &ml)) {
        if (nt == max)
            return -1;
        t[nt++] = (struct tok){m, ml};
    }
    return nt;
}

int edge_vary_normalize(const struct edge_hdr *h, size_t n, char *out, size_t cap)
{
    struct tok t[64];
    int nt = 0;
    for (int i = edge_hdr_find(h, n, "vary", 0); i >= 0; i = edge_hdr_find(h, n, "vary", (size_t)i + 1))
        if ((nt = split(h[i].value, h[i].value_len, t, nt, 64)) < 0)
            return -1;
    for (int i = 0; i < nt; i++)
        if (t[i].n == 1 && t[i].p[0] == '*')
            return -1;
    qsort(t, (size_t)nt, sizeof(t[0]), tok_cmp);
    struct out o = {out, 0, cap, cap == 0};
    if (cap > 0)
        out[0] = '\0';
    for (int i = 0; i < nt; i++) {
        if (i > 0 && tok_cmp(&t[i], &t[i - 1]) == 0)
            continue;
        if (o.len > 0)
            putc1(&o, ',');
        for (size_t k = 0; k < t[i].n; k++) {
            char ch = t[i].p[k];
            putc1(&o, ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch);
        }
    }
    return o.err ? -1 : (int)o.len;
}

/* Value of one field for the secondary key. */
static void put_value(struct out *o, const char *name, size_t nl, const struct edge_hdr *req, size_t n)
{
    /* codings and language tags are case-insensitive; codings also unordered (q-values are explicit
     * or all 1). Language order stays: an origin may break ties by it. */
    int ae = nl == 15 && strncasecmp(name, "accept-encoding", 15) == 0;
    int lower = ae || (nl == 15 && strncasecmp(name, "accept-language", 15) == 0);
    struct tok t[64];
    int nt = 0, seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (req[i].name_len != nl || strncasecmp(req[i].name, name, nl) != 0)
            continue;
        seen = 1;
        int r = split(req[i].value, req[i].value_len, t, nt, 64);
        if (r < 0) {
            o->err = 1;
            return;
        }
        nt = r;
    }
    if (!seen) {
        putc1(o, '!');
        return;
    }
    putc1(o, '=');
    if (ae)
        qsort(t, (size_t)nt, sizeof(t[0]), tok_cmp);
    for (int i = 0; i < nt; i++) {
        if (i > 0)
            put(o, ", ", 2);
        int sp = 0;
        for (size_t k = 0; k < t[i].n; k++) {
            char ch = t[i].p[k];
            if (ch == ' ' || ch == '\t') { sp = 1; continue; }
            if (sp) {
                /* collapse inner whitespace; around ';' it is insignificant */
                if (ch != ';' && (o->len == 0 || o->p[o->len - 1] != ';'))
                    putc1(o, ' ');
                sp = 0;
            }
            if (lower && ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            putc1(o, ch);
        }
    }
}

int edge_vary_key(const char *vary, size_t vary_len, const struct edge_hdr *req, size_t n,
                  char *out, size_t cap)
{
    struct out o = {out, 0, cap, cap == 0};
    if (cap > 0)
        out[0] = '\0';
    const char *p = vary, *end = vary + vary_len;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        put(&o, p, (size_t)(e - p));
        put_value(&o, p, (size_t)(e - p), req, n);
        putc1(&o, '\n');
        p = c ? c + 1 : end;
    }
    return o.err ? -1 : (int)o.len;
}
