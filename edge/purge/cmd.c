/* edge/purge/cmd.c - purge commands: parse, format, match (see cmd.h).
 *
 * The parser reads with a cursor over (text, len) and never past it; every argument is
 * normalised into out->buf, whose size bounds what the text can produce (a normal form is never
 * longer than its source plus the '/' a prefix may gain). Untrusted input: it arrives from the bus
 * (anyone who can write to the stream) and from the admin listener; tests/fuzz/fuzz_edge_purge.c. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edge/purge/cmd.h"
#include "edge/vhost/vhost.h"

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* The next field of [*p, end): its start and length; 0 at the end. */
static int next_field(const char **p, const char *end, const char **f, size_t *n)
{
    while (*p < end && is_space(**p))
        (*p)++;
    if (*p >= end)
        return 0;
    *f = *p;
    while (*p < end && !is_space(**p))
        (*p)++;
    *n = (size_t)(*p - *f);
    return 1;
}

/* Where "://" ends a scheme of 1 to 8 letters at the start of s, or NULL. */
static const char *scheme_end(const char *s, size_t n)
{
    for (size_t i = 0; i < n && i <= 8; i++) {
        char c = s[i];
        if (c == ':')
            return i > 0 && i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/' ? s + i : NULL;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return NULL;
    }
    return NULL;
}

static int word_is(const char *f, size_t n, const char *w) { return n == strlen(w) && strncasecmp(f, w, n) == 0; }

/* The host of an authority without its port ("[::1]:80" -> "[::1]", "a.b:8080" -> "a.b"). */
static size_t host_len_of(const char *a, size_t n)
{
    if (n > 0 && a[0] == '[') {
        const char *e = memchr(a, ']', n);
        return e ? (size_t)(e - a) + 1 : n;
    }
    const char *c = memchr(a, ':', n);
    return c ? (size_t)(c - a) : n;
}

/* "scheme://host:port/target", "host/target" or "host" (then target "/") into "host/target" at
 * out (normalised; the port dropped; with dirs_only, the query is dropped and the path ends in
 * '/'). Its length or -1. */
static int norm_url(const char *s, size_t n, const struct edge_key_conf *kc, int dirs_only, char *out, size_t cap)
{
    static const struct edge_key_conf none = {0};
    const char *p = s, *end = s + n;
    const char *sep = scheme_end(s, n);
    if (sep != NULL) {
        size_t sl = (size_t)(sep - s);
        if (!((sl == 4 && strncasecmp(s, "http", 4) == 0) || (sl == 5 && strncasecmp(s, "https", 5) == 0)))
            return -1;
        p = sep + 3;
    }
    const char *t = p;
    while (t < end && *t != '/' && *t != '?' && *t != '#')
        t++;
    if (t == p)
        return -1;
    char auth[EDGE_HOST_MAX];
    int al = edge_authority_normalize(p, (size_t)(t - p), 0, auth, sizeof(auth));
    if (al < 0)
        return -1;
    size_t hl = host_len_of(auth, (size_t)al);
    if (hl == 0)
        return -1;
    /* the target: "/" when absent; a query without a path gets one */
    char tgt[EDGE_PURGE_TEXT_MAX + 2];
    size_t tl = 0;
    if (t == end || *t != '/')
        tgt[tl++] = '/';
    size_t rest = (size_t)(end - t);
    if (tl + rest + 2 > sizeof(tgt))
        return -1;
    memcpy(tgt + tl, t, rest);
    tl += rest;
    if (dirs_only) { /* a prefix: the path only, ending in '/' */
        char *q = memchr(tgt, '?', tl);
        char *h = memchr(tgt, '#', tl);
        if (q != NULL)
            tl = (size_t)(q - tgt);
        if (h != NULL && (size_t)(h - tgt) < tl)
            tl = (size_t)(h - tgt);
        if (tgt[tl - 1] != '/')
            tgt[tl++] = '/';
    }
    /* the cache key's normalisation, then "http://" and the host taken off again */
    char key[2 * EDGE_PURGE_TEXT_MAX];
    int kl = edge_key_primary(kc ? kc : &none, "http", auth, hl, tgt, tl, key, sizeof(key));
    if (kl < 0)
        return -1;
    const char *form = key + 7; /* after "http://" */
    size_t fl = (size_t)kl - 7;
    if (dirs_only && (fl == 0 || form[fl - 1] != '/')) /* dot segments may have eaten the slash */
        return -1;
    if (fl + 1 > cap)
        return -1;
    memcpy(out, form, fl);
    out[fl] = '\0';
    return (int)fl;
}

static int tag_ok(const char *f, size_t n)
{
    if (n == 0 || n > EDGE_PURGE_TAG_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)f[i] <= 0x20 || (unsigned char)f[i] >= 0x7f)
            return 0;
    return 1;
}

int edge_purge_parse(const char *text, size_t len, const struct edge_key_conf *kc, struct edge_purge_cmd *out,
                     char *err, size_t errlen)
{
    const char *p = text, *end = text + len, *f;
    size_t n;
    out->kind = EDGE_PURGE_URL;
    out->soft = 0;
    out->nargs = 0;
    if (len > EDGE_PURGE_TEXT_MAX) {
        snprintf(err, errlen, "command longer than %d bytes", EDGE_PURGE_TEXT_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 && text[i] != '\t') {
            snprintf(err, errlen, "control character in the command");
            return -1;
        }
    if (!next_field(&p, end, &f, &n)) {
        snprintf(err, errlen, "empty command");
        return -1;
    }
    if (word_is(f, n, "soft") || word_is(f, n, "hard")) {
        out->soft = word_is(f, n, "soft");
        if (!next_field(&p, end, &f, &n)) {
            snprintf(err, errlen, "no kind after the mode (url, prefix, tag or all)");
            return -1;
        }
    }
    if (word_is(f, n, "url"))
        out->kind = EDGE_PURGE_URL;
    else if (word_is(f, n, "prefix"))
        out->kind = EDGE_PURGE_PREFIX;
    else if (word_is(f, n, "tag"))
        out->kind = EDGE_PURGE_TAG;
    else if (word_is(f, n, "all"))
        out->kind = EDGE_PURGE_ALL;
    else {
        snprintf(err, errlen, "unknown kind '%.*s' (url, prefix, tag or all)", (int)(n > 32 ? 32 : n), f);
        return -1;
    }
    size_t used = 0;
    while (next_field(&p, end, &f, &n)) {
        if (out->nargs == EDGE_PURGE_ARGS_MAX) {
            snprintf(err, errlen, "more than %d arguments", EDGE_PURGE_ARGS_MAX);
            return -1;
        }
        char *dst = out->buf + used;
        size_t room = sizeof(out->buf) - used;
        int l;
        switch (out->kind) {
        case EDGE_PURGE_TAG:
            if (!tag_ok(f, n) || n + 1 > room) {
                snprintf(err, errlen, "bad tag '%.*s' (1 to %d visible characters)", (int)(n > 64 ? 64 : n), f,
                         EDGE_PURGE_TAG_MAX);
                return -1;
            }
            memcpy(dst, f, n);
            dst[n] = '\0';
            l = (int)n;
            break;
        case EDGE_PURGE_ALL: {
            /* a host: "img.shop.test" (a URL's host works too) */
            const char *h = f, *he = f + n, *sep = scheme_end(f, n);
            if (sep)
                h = sep + 3;
            const char *sl = memchr(h, '/', (size_t)(he - h));
            l = sl && sl + 1 != he ? -1 : norm_url(h, (size_t)((sl ? sl : he) - h), kc, 1, dst, room);
            if (l < 0) {
                snprintf(err, errlen, "bad host '%.*s'", (int)(n > 64 ? 64 : n), f);
                return -1;
            }
            break;
        }
        default:
            l = norm_url(f, n, kc, out->kind == EDGE_PURGE_PREFIX, dst, room);
            if (l < 0) {
                snprintf(err, errlen, "bad %s '%.*s'", out->kind == EDGE_PURGE_URL ? "URL" : "prefix",
                         (int)(n > 64 ? 64 : n), f);
                return -1;
            }
            break;
        }
        out->args[out->nargs] = dst;
        out->lens[out->nargs++] = (size_t)l;
        used += (size_t)l + 1;
    }
    if (out->nargs == 0) {
        snprintf(err, errlen, "no %s to purge", out->kind == EDGE_PURGE_URL ? "URL" : out->kind == EDGE_PURGE_TAG ? "tag" : out->kind == EDGE_PURGE_ALL ? "host" : "prefix");
        return -1;
    }
    return 0;
}

size_t edge_purge_format(const struct edge_purge_cmd *c, char *out, size_t cap)
{
    static const char *const kinds[] = {"url", "prefix", "tag", "all"};
    if (cap == 0)
        return 0;
    size_t o = 0;
    int w = snprintf(out, cap, "%s %s", c->soft ? "soft" : "hard", kinds[c->kind]);
    o = w > 0 && (size_t)w < cap ? (size_t)w : cap - 1;
    for (size_t i = 0; i < c->nargs && o + 1 < cap; i++) {
        size_t l = c->lens[i];
        if (c->kind == EDGE_PURGE_ALL && l > 0)
            l--; /* "host/" -> "host" */
        w = snprintf(out + o, cap - o, " %.*s", (int)l, c->args[i]);
        o += w > 0 && (size_t)w < cap - o ? (size_t)w : cap - o - 1;
    }
    return o;
}

int edge_purge_url_form(const char *pkey, size_t plen, char *out, size_t cap)
{
    const char *end = pkey + plen, *p = scheme_end(pkey, plen);
    if (p == NULL)
        return -1;
    p += 3;
    const char *t = memchr(p, '/', (size_t)(end - p));
    if (t == NULL || t == p)
        return -1;
    size_t hl = host_len_of(p, (size_t)(t - p)), tl = (size_t)(end - t);
    if (hl + tl + 1 > cap)
        return -1;
    memcpy(out, p, hl);
    memcpy(out + hl, t, tl);
    out[hl + tl] = '\0';
    return (int)(hl + tl);
}

void edge_purge_dirs(const char *form, size_t len, void (*fn)(const char *dir, size_t n, void *data), void *data)
{
    const char *q = memchr(form, '?', len);
    size_t pl = q ? (size_t)(q - form) : len;
    for (size_t i = 0; i < pl; i++)
        if (form[i] == '/')
            fn(form, i + 1, data);
}

/* 1 when tag is one of the space-separated tags. */
static int has_tag(const char *tags, size_t tl, const char *tag, size_t n)
{
    const char *p = tags, *end = tags + tl;
    while (p < end) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *e = sp ? sp : end;
        if ((size_t)(e - p) == n && memcmp(p, tag, n) == 0)
            return 1;
        p = sp ? sp + 1 : end;
    }
    return 0;
}

int edge_purge_matches(const struct edge_purge_view *c, const char *pkey, size_t plen, const char *tags,
                       size_t tags_len)
{
    if (c->kind == EDGE_PURGE_TAG) {
        for (size_t i = 0; i < c->nargs; i++)
            if (has_tag(tags, tags_len, c->args[i], c->lens[i]))
                return 1;
        return 0;
    }
    char form[2 * EDGE_PURGE_TEXT_MAX];
    int fl = edge_purge_url_form(pkey, plen, form, sizeof(form));
    if (fl < 0)
        return 0;
    const char *q = memchr(form, '?', (size_t)fl);
    size_t pathl = q ? (size_t)(q - form) : (size_t)fl;
    for (size_t i = 0; i < c->nargs; i++) {
        size_t l = c->lens[i];
        if (c->kind == EDGE_PURGE_URL ? (l == (size_t)fl && memcmp(form, c->args[i], l) == 0)
                                      : (l <= pathl && memcmp(form, c->args[i], l) == 0))
            return 1;
    }
    return 0;
}

int edge_purge_redis_url(const char *url, char *host, size_t cap, int *port)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    const char *at = strchr(p, '@'); /* no credentials here: refuse rather than log them */
    if (at != NULL)
        return -1;
    const char *end = p + strcspn(p, "/");
    const char *colon = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return -1;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
        if ((size_t)(rb - p - 1) + 1 > cap)
            return -1;
        memcpy(host, p + 1, (size_t)(rb - p - 1));
        host[rb - p - 1] = '\0';
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        const char *he = colon ? colon : end;
        if (he == p || (size_t)(he - p) + 1 > cap)
            return -1;
        memcpy(host, p, (size_t)(he - p));
        host[he - p] = '\0';
    }
    *port = 6379;
    if (colon != NULL) {
        int v = 0;
        const char *q = colon + 1;
        if (q == end)
            return -1;
        for (; q < end; q++) {
            if (*q < '0' || *q > '9' || v > 65535)
                return -1;
            v = v * 10 + (*q - '0');
        }
        if (v < 1 || v > 65535)
            return -1;
        *port = v;
    }
    return host[0] ? 0 : -1;
}
