/* edge/store/obj.c - stored objects and their meta format (see obj.h).
 *
 * Meta v2, little-endian (v1 had a u32 CRC-32 of the body; a v1 object fails to decode and is
 * dropped when the tier opens: a cache, not an archive):
 *   "EOBJ" u8 version=1 u8 reserved u16 status
 *   i64 request_time, response_time, initial_age, lifetime, swr, sie; u32 fresh_flags
 *   u64 body_len, u64 body_hash (XXH3-64)
 *   u32 key_len key, u32 pkey_len, u16 vary_len vary, u16 tags_len tags
 *   u16 nhdrs { u16 name_len name, u32 value_len value }*
 *   u32 crc32 of all of the above
 * Decoding uses a bounds-checked cursor with a sticky error and rejects trailing bytes. */
#include "config.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#define XXH_INLINE_ALL /* header only: no library to link */
#include <xxhash.h>

#include "cdn/http.h"
#include "edge/store/obj.h"

#define META_VERSION 2
#define MAX_HDRS 512

uint32_t edge_crc32(const void *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    const Bytef *b = p;
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
}

uint64_t edge_body_hash(const void *p, size_t n)
{
    return (uint64_t)XXH3_64bits(p, n);
}

/* The fixed-key hash, never the process's random one: ids are the RocksDB tier's keys on disk
 * (a restart must find its objects again: edge_rdb_open drops any whose id does not match), and
 * edge_parent_pick ranks parents by the id, so every edge must compute the same one to send a key
 * to the same parent. Tables of ids stay safe from crafted keys because edge/store/idmap.c places an
 * id by cdn_hash_u64 of it (random key); two keys with one id are a miss, never a wrong object. */
uint64_t edge_key_id(const char *key, size_t key_len)
{
    uint64_t id = cdn_hash_fixed(key, key_len);
    return id ? id : 1;
}

uint8_t edge_obj_hdr_flags(const struct edge_hdr *all, size_t n, const struct edge_hdr *h)
{
#define C(lit, fl) {lit, sizeof(lit) - 1, fl}
    static const struct { const char *name; size_t len; uint8_t f; } cls[] = {
        C("content-length", EDGE_HF_NOT_TO_CLIENT), C("date", EDGE_HF_NOT_TO_CLIENT | EDGE_HF_IN_304),
        C("age", EDGE_HF_NOT_TO_CLIENT), C("cache-status", EDGE_HF_NOT_TO_CLIENT | EDGE_HF_CACHE_STATUS),
        C("via", EDGE_HF_NOT_TO_CLIENT | EDGE_HF_VIA), C("x-served-by", EDGE_HF_NOT_TO_CLIENT),
        C("cdn-cache-control", EDGE_HF_CDN_ONLY), C("surrogate-key", EDGE_HF_CDN_ONLY),
        C("etag", EDGE_HF_IN_304), C("cache-control", EDGE_HF_IN_304), C("expires", EDGE_HF_IN_304),
        C("vary", EDGE_HF_IN_304), C("last-modified", EDGE_HF_IN_304), C("content-location", EDGE_HF_IN_304),
    };
#undef C
    uint8_t f = edge_hdr_is_hop(all, n, h->name, h->name_len) ? EDGE_HF_NOT_TO_CLIENT : 0;
    for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) /* lengths first: no strlen per name */
        if (cls[i].len == h->name_len && strncasecmp(h->name, cls[i].name, cls[i].len) == 0)
            f |= cls[i].f;
    return f;
}

/* One allocation: the header array, the lower-case name pointers, the header flags, then every
 * string NUL-terminated (each header's name, value and lower-case name). */
static struct edge_obj *build(const char *key, size_t klen, size_t pkey_len, int status,
                              const struct edge_hdr *h, size_t n, const char *vary, size_t vlen,
                              const char *tags, size_t tlen, const struct edge_fresh *fresh,
                              int64_t request_time)
{
    size_t strs = klen + 1 + vlen + 1 + tlen + 1;
    for (size_t i = 0; i < n; i++)
        strs += 2 * (h[i].name_len + 1) + h[i].value_len + 1;
    struct edge_obj *o = calloc(1, sizeof(*o));
    char *a = malloc(n * (sizeof(struct edge_hdr) + sizeof(char *) + 1) + strs);
    if (o == NULL || a == NULL) {
        free(o);
        free(a);
        return NULL;
    }
    o->magic = EDGE_OBJ_MAGIC;
    o->refs = 1;
    o->status = status;
    o->request_time = request_time;
    o->fresh = *fresh;
    o->arena = a;
    o->hdrs = (struct edge_hdr *)a;
    o->nhdrs = n;
    o->lnames = (const char **)(a + n * sizeof(struct edge_hdr));
    o->hflags = (uint8_t *)(a + n * (sizeof(struct edge_hdr) + sizeof(char *)));
    char *p = (char *)o->hflags + n;
#define COPY(dst, src, len) do { memcpy(p, (src), (len)); p[len] = '\0'; dst = p; p += (len) + 1; } while (0)
    COPY(o->key, key, klen);
    o->key_len = klen;
    o->pkey_len = pkey_len <= klen ? pkey_len : klen;
    o->id = edge_key_id(key, klen);
    COPY(o->vary, vary ? vary : "", vlen);
    o->vary_len = vlen;
    COPY(o->tags, tags ? tags : "", tlen);
    o->tags_len = tlen;
    for (size_t i = 0; i < n; i++) {
        char *nm, *v;
        COPY(nm, h[i].name, h[i].name_len);
        COPY(v, h[i].value, h[i].value_len);
        o->hdrs[i] = (struct edge_hdr){nm, h[i].name_len, v, h[i].value_len};
        for (size_t k = 0; k < h[i].name_len; k++)
            p[k] = (char)tolower((unsigned char)nm[k]);
        p[h[i].name_len] = '\0';
        o->lnames[i] = p;
        p += h[i].name_len + 1;
        o->hflags[i] = edge_obj_hdr_flags(h, n, &h[i]);
        o->hf_all |= o->hflags[i];
    }
#undef COPY
    edge_date_pick(o->hdrs, n, fresh->response_time, o->date);
    return o;
}

static int is_excluded(const struct edge_hdr *all, size_t n, const struct edge_hdr *h)
{
    return edge_hdr_is_hop(all, n, h->name, h->name_len) ||
           (cdn_http_hdr_class(h->name, h->name_len) & CDN_HDR_NO_STORE);
}

struct edge_obj *edge_obj_new(const char *key, size_t key_len, size_t pkey_len, int status,
                              const struct edge_hdr *h, size_t n, const char *vary, size_t vary_len,
                              const struct edge_fresh *fresh, int64_t request_time)
{
    if (n > MAX_HDRS)
        return NULL;
    struct edge_hdr *keep = malloc((n ? n : 1) * sizeof(*keep));
    char tags[1024];
    size_t tl = 0, nk = 0;
    if (keep == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == 13 && strncasecmp(h[i].name, "surrogate-key", 13) == 0) {
            /* tags, space-separated; several lines join */
            for (size_t k = 0; k < h[i].value_len && tl + 2 < sizeof(tags); k++) {
                char c = h[i].value[k] == '\t' ? ' ' : h[i].value[k];
                if (c == ' ' && (tl == 0 || tags[tl - 1] == ' '))
                    continue;
                tags[tl++] = c;
            }
            if (tl > 0 && tags[tl - 1] != ' ')
                tags[tl++] = ' ';
            continue;
        }
        if (!is_excluded(h, n, &h[i]))
            keep[nk++] = h[i];
    }
    while (tl > 0 && tags[tl - 1] == ' ')
        tl--;
    struct edge_obj *o = build(key, key_len, pkey_len, status, keep, nk, vary, vary_len, tags, tl,
                               fresh, request_time);
    free(keep);
    return o;
}

static void free_body(struct edge_obj *o)
{
    free(o->body_block ? o->body_block : o->body);
    o->body_block = NULL;
    o->body = NULL;
}

void edge_obj_set_body(struct edge_obj *o, uint8_t *body, size_t len)
{
    free_body(o);
    o->body = body;
    o->body_len = len;
    o->body_hash = edge_body_hash(body, len);
}

int edge_obj_attach_body(struct edge_obj *o, const void *body, size_t len)
{
    if (len != o->body_len || edge_body_hash(body, len) != o->body_hash)
        return -1;
    uint8_t *b = malloc(len ? len : 1);
    if (b == NULL)
        return -1;
    memcpy(b, body, len);
    free_body(o);
    o->body = b;
    return 0;
}

int edge_obj_adopt_body(struct edge_obj *o, void *block, const void *body, size_t len)
{
    if (len != o->body_len || edge_body_hash(body, len) != o->body_hash) {
        free(block);
        return -1;
    }
    free_body(o);
    o->body_block = block;
    o->body = (uint8_t *)body;
    return 0;
}

int edge_obj_304_selects(const struct edge_obj *o, const struct edge_hdr *h, size_t n)
{
    int i = edge_hdr_find(h, n, "etag", 0);
    const struct edge_hdr *stored = edge_obj_hdr(o, "etag");
    return i < 0 || stored == NULL || edge_etag_match(h[i].value, h[i].value_len, stored);
}

/* Fields that describe the stored body's bytes: a 304 does not replace them (RFC 9111 3.2 lets a
 * cache keep what assures the integrity of the stored response; a new Content-Encoding or digest
 * on an old body would be a lie). */
static int describes_body(const struct edge_hdr *h)
{
    static const char *const names[] = {"content-length", "content-encoding", "content-range", "content-md5",
                                        "content-digest", "repr-digest", "digest"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == h->name_len && strncasecmp(h->name, names[i], h->name_len) == 0)
            return 1;
    return 0;
}

struct edge_obj *edge_obj_merge_304(const struct edge_obj *o, const struct edge_hdr *h, size_t n,
                                    const struct edge_fresh *fresh, int64_t request_time)
{
    if (o->nhdrs + n > MAX_HDRS)
        return NULL;
    struct edge_hdr *m = malloc((o->nhdrs + n + 1) * sizeof(*m));
    if (m == NULL)
        return NULL;
    size_t nm = 0;
    /* keep stored fields the 304 does not mention (or that it may not replace) */
    for (size_t i = 0; i < o->nhdrs; i++) {
        const struct edge_hdr *s = &o->hdrs[i];
        int replaced = 0;
        for (size_t k = 0; k < n && !replaced; k++)
            replaced = h[k].name_len == s->name_len && strncasecmp(h[k].name, s->name, s->name_len) == 0 &&
                       !describes_body(s) && !is_excluded(h, n, &h[k]);
        if (!replaced)
            m[nm++] = *s;
    }
    for (size_t k = 0; k < n; k++) {
        if (is_excluded(h, n, &h[k]) || describes_body(&h[k]))
            continue;
        m[nm++] = h[k];
    }
    struct edge_obj *r = build(o->key, o->key_len, o->pkey_len, o->status, m, nm, o->vary,
                               o->vary_len, o->tags, o->tags_len, fresh, request_time);
    free(m);
    if (r != NULL && o->body != NULL) {
        uint8_t *b = malloc(o->body_len ? o->body_len : 1);
        if (b == NULL) {
            edge_obj_release(r);
            return NULL;
        }
        memcpy(b, o->body, o->body_len);
        r->body = b;
    }
    if (r != NULL) {
        r->body_len = o->body_len;
        r->body_hash = o->body_hash;
    }
    return r;
}

struct edge_obj *edge_obj_ref(struct edge_obj *o)
{
    __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
    return o;
}

void edge_obj_release(struct edge_obj *o)
{
    if (o == NULL)
        return;
    if (__atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    o->magic = 0;
    free_body(o);
    free(o->arena);
    free(o);
}

const struct edge_hdr *edge_obj_hdr(const struct edge_obj *o, const char *name)
{
    int i = edge_hdr_find(o->hdrs, o->nhdrs, name, 0);
    return i < 0 ? NULL : &o->hdrs[i];
}

/* --- encoding --- */
struct wbuf { uint8_t *p; size_t len, cap; int err; };

static void wput(struct wbuf *w, const void *s, size_t n)
{
    if (w->err)
        return;
    if (w->len + n > w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 512;
        while (nc < w->len + n)
            nc *= 2;
        uint8_t *np = realloc(w->p, nc);
        if (np == NULL) {
            w->err = 1;
            return;
        }
        w->p = np;
        w->cap = nc;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}
static void w16(struct wbuf *w, uint16_t v) { uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; wput(w, b, 2); }
static void w32(struct wbuf *w, uint32_t v) { w16(w, (uint16_t)v); w16(w, (uint16_t)(v >> 16)); }
static void w64(struct wbuf *w, uint64_t v) { w32(w, (uint32_t)v); w32(w, (uint32_t)(v >> 32)); }

uint8_t *edge_obj_encode(const struct edge_obj *o, size_t *len)
{
    struct wbuf w = {0};
    if (o->vary_len > 0xffff || o->tags_len > 0xffff || o->nhdrs > MAX_HDRS || o->key_len > 0xffffffffu)
        return NULL;
    wput(&w, "EOBJ", 4);
    uint8_t v[2] = {META_VERSION, 0};
    wput(&w, v, 2);
    w16(&w, (uint16_t)o->status);
    w64(&w, (uint64_t)o->request_time);
    w64(&w, (uint64_t)o->fresh.response_time);
    w64(&w, (uint64_t)o->fresh.initial_age);
    w64(&w, (uint64_t)o->fresh.lifetime);
    w64(&w, (uint64_t)o->fresh.swr);
    w64(&w, (uint64_t)o->fresh.sie);
    w32(&w, o->fresh.flags);
    w64(&w, o->body_len);
    w64(&w, o->body_hash);
    w32(&w, (uint32_t)o->key_len);
    wput(&w, o->key, o->key_len);
    w32(&w, (uint32_t)o->pkey_len);
    w16(&w, (uint16_t)o->vary_len);
    wput(&w, o->vary, o->vary_len);
    w16(&w, (uint16_t)o->tags_len);
    wput(&w, o->tags, o->tags_len);
    w16(&w, (uint16_t)o->nhdrs);
    for (size_t i = 0; i < o->nhdrs; i++) {
        if (o->hdrs[i].name_len > 0xffff || o->hdrs[i].value_len > 0xffffffffu)
            w.err = 1;
        w16(&w, (uint16_t)o->hdrs[i].name_len);
        wput(&w, o->hdrs[i].name, o->hdrs[i].name_len);
        w32(&w, (uint32_t)o->hdrs[i].value_len);
        wput(&w, o->hdrs[i].value, o->hdrs[i].value_len);
    }
    w32(&w, w.err ? 0 : edge_crc32(w.p, w.len));
    if (w.err) {
        free(w.p);
        return NULL;
    }
    *len = w.len;
    return w.p;
}

struct rcur { const uint8_t *p, *end; int err; };

static const uint8_t *take(struct rcur *c, size_t n)
{
    if (c->err || (size_t)(c->end - c->p) < n) {
        c->err = 1;
        return NULL;
    }
    const uint8_t *r = c->p;
    c->p += n;
    return r;
}
static uint64_t rn(struct rcur *c, int bytes)
{
    const uint8_t *b = take(c, (size_t)bytes);
    uint64_t v = 0;
    for (int i = bytes - 1; b && i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

struct edge_obj *edge_obj_decode(const uint8_t *buf, size_t len, const char **errstr)
{
    struct rcur c = {buf, buf + len, 0};
    *errstr = "truncated";
    if (len < 8 || memcmp(buf, "EOBJ", 4) != 0) {
        *errstr = "bad magic";
        return NULL;
    }
    if (edge_crc32(buf, len - 4) != (uint32_t)(buf[len - 4] | buf[len - 3] << 8 | buf[len - 2] << 16 |
                                               (uint32_t)buf[len - 1] << 24)) {
        *errstr = "meta checksum mismatch";
        return NULL;
    }
    c.end = buf + len - 4;
    take(&c, 4);
    const uint8_t *v = take(&c, 2);
    if (v == NULL || v[0] != META_VERSION || v[1] != 0) { /* v[1] is reserved: one encoding only */
        *errstr = "unknown version";
        return NULL;
    }
    int status = (int)rn(&c, 2);
    struct edge_fresh f;
    int64_t request_time = (int64_t)rn(&c, 8);
    f.response_time = (int64_t)rn(&c, 8);
    f.initial_age = (int64_t)rn(&c, 8);
    f.lifetime = (int64_t)rn(&c, 8);
    f.swr = (int64_t)rn(&c, 8);
    f.sie = (int64_t)rn(&c, 8);
    f.flags = (unsigned)rn(&c, 4);
    uint64_t body_len = rn(&c, 8);
    uint64_t body_hash = rn(&c, 8);
    size_t klen = (size_t)rn(&c, 4);
    const char *key = (const char *)take(&c, klen);
    size_t pkey_len = (size_t)rn(&c, 4);
    size_t vlen = (size_t)rn(&c, 2);
    const char *vary = (const char *)take(&c, vlen);
    size_t tlen = (size_t)rn(&c, 2);
    const char *tags = (const char *)take(&c, tlen);
    size_t n = (size_t)rn(&c, 2);
    if (c.err || n > MAX_HDRS || pkey_len > klen || status < 100 || status > 999) {
        *errstr = c.err ? "truncated" : "bad field";
        return NULL;
    }
    struct edge_hdr *h = malloc((n ? n : 1) * sizeof(*h));
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        h[i].name_len = (size_t)rn(&c, 2);
        h[i].name = (const char *)take(&c, h[i].name_len);
        h[i].value_len = (size_t)rn(&c, 4);
        h[i].value = (const char *)take(&c, h[i].value_len);
    }
    if (c.err || c.p != c.end) {
        free(h);
        *errstr = c.err ? "truncated" : "trailing bytes";
        return NULL;
    }
    struct edge_obj *o = build(key, klen, pkey_len, status, h, n, vary, vlen, tags, tlen, &f, request_time);
    free(h);
    if (o == NULL) {
        *errstr = "out of memory";
        return NULL;
    }
    o->body_len = (size_t)body_len;
    o->body_hash = body_hash;
    *errstr = NULL;
    return o;
}
