/* dns/wire.c - names on the wire: reading (with bounded pointer chasing), text conversion, and
 * compression on write. See wire.h for the cursor's rules. */
#include "config.h"

#include "dns/wire.h"

#include <stdio.h>

static inline uint8_t lc(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

size_t cdns_name_read(cdns_wire_t *w, uint8_t out[CDNS_NAME_MAX], int allow_ptr)
{
    if (w->err) return 0;
    size_t p = w->pos, n = 0, end = 0;
    int hops = 0, jumped = 0;
    for (;;) {
        if (p >= w->len) goto bad;
        uint8_t l = w->base[p];
        if ((l & 0xC0) == 0xC0) {
            if (!allow_ptr || p + 1 >= w->len || ++hops > 32) goto bad;
            size_t to = (size_t)(l & 0x3F) << 8 | w->base[p + 1];
            if (to >= p) goto bad;  /* only backwards: no loops */
            if (!jumped) { end = p + 2; jumped = 1; }
            p = to;
            continue;
        }
        if (l & 0xC0) goto bad;  /* 0x40 / 0x80: extended / reserved label types */
        if (p + 1 + l > w->len || n + 1 + l > CDNS_NAME_MAX) goto bad;
        memcpy(out + n, w->base + p, 1 + (size_t)l);
        n += 1 + (size_t)l;
        p += 1 + (size_t)l;
        if (l == 0) break;
    }
    w->pos = jumped ? end : p;
    return n;
bad:
    w->err = 1;
    return 0;
}

size_t cdns_name_len(const uint8_t *name, size_t max)
{
    size_t n = 0;
    while (n < max && n < CDNS_NAME_MAX) {
        uint8_t l = name[n];
        if (l > CDNS_LABEL_MAX) return 0;
        n += 1 + (size_t)l;
        if (l == 0) return n <= CDNS_NAME_MAX ? n : 0;
    }
    return 0;
}

void cdns_name_lower(uint8_t *dst, const uint8_t *src)
{
    size_t i = 0;
    for (;;) {
        uint8_t l = src[i];
        dst[i] = l;
        if (l == 0) return;
        for (size_t j = 1; j <= l; j++) dst[i + j] = lc(src[i + j]);
        i += 1 + (size_t)l;
    }
}

int cdns_name_eq(const uint8_t *a, const uint8_t *b)
{
    size_t i = 0;
    for (;;) {
        if (a[i] != b[i]) return 0;
        uint8_t l = a[i];
        if (l == 0) return 1;
        for (size_t j = 1; j <= l; j++)
            if (lc(a[i + j]) != lc(b[i + j])) return 0;
        i += 1 + (size_t)l;
    }
}

static int label_count(const uint8_t *n)
{
    int c = 0;
    while (*n) { c++; n += 1 + *n; }
    return c;
}

int cdns_name_is_sub(const uint8_t *name, const uint8_t *apex)
{
    int ln = label_count(name), la = label_count(apex);
    if (ln < la) return 0;
    for (int i = 0; i < ln - la; i++) name += 1 + *name;
    return cdns_name_eq(name, apex);
}

size_t cdns_name_from_text(uint8_t out[CDNS_NAME_MAX], const char *text, const uint8_t *origin)
{
    size_t n = 0;
    if (!text || !*text) return 0;
    if (strcmp(text, "@") == 0) {
        if (!origin) return 0;
        size_t ol = cdns_name_len(origin, CDNS_NAME_MAX);
        memcpy(out, origin, ol);
        return ol;
    }
    if (strcmp(text, ".") == 0) { out[0] = 0; return 1; }
    const char *p = text;
    int absolute = 0;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > CDNS_LABEL_MAX || n + 1 + l + 1 > CDNS_NAME_MAX) return 0;
        for (size_t i = 0; i < l; i++)
            if (p[i] == '\\' || (unsigned char)p[i] <= ' ') return 0;
        out[n++] = (uint8_t)l;
        memcpy(out + n, p, l);
        n += l;
        if (!dot) break;
        if (dot[1] == '\0') { absolute = 1; break; }
        p = dot + 1;
    }
    if (absolute || !origin) { out[n++] = 0; return n; }
    size_t ol = cdns_name_len(origin, CDNS_NAME_MAX);
    if (!ol || n + ol > CDNS_NAME_MAX) return 0;
    memcpy(out + n, origin, ol);
    return n + ol;
}

const char *cdns_name_to_text(const uint8_t *name, char *buf, size_t len)
{
    size_t o = 0;
    if (len < 2) return "";
    if (name[0] == 0) { buf[0] = '.'; buf[1] = 0; return buf; }
    for (size_t i = 0; name[i] && i < CDNS_NAME_MAX;) {
        uint8_t l = name[i];
        for (size_t j = 1; j <= l; j++) {
            uint8_t c = name[i + j];
            int need = (c == '.' || c == '\\') ? 2 : (c <= ' ' || c >= 0x7f) ? 4 : 1;
            if (o + (size_t)need + 2 > len) goto out;
            if (need == 2) { buf[o++] = '\\'; buf[o++] = (char)c; }
            else if (need == 4) o += (size_t)snprintf(buf + o, len - o, "\\%03u", c);
            else buf[o++] = (char)c;
        }
        buf[o++] = '.';
        i += 1 + (size_t)l;
    }
out:
    buf[o] = 0;
    return buf;
}

/* Does the (possibly compressed) name at message offset off equal the uncompressed name n?
 * Only our own output is compared, so pointers are trusted but still bounded. */
static int match_at(const cdns_wire_t *w, size_t off, const uint8_t *n)
{
    int hops = 0;
    for (;;) {
        if (off >= w->pos) return 0;
        uint8_t l = w->base[off];
        if ((l & 0xC0) == 0xC0) {
            if (++hops > 32 || off + 1 >= w->pos) return 0;
            off = (size_t)(l & 0x3F) << 8 | w->base[off + 1];
            continue;
        }
        if (l != *n) return 0;
        if (l == 0) return 1;
        for (size_t j = 1; j <= l; j++)
            if (lc(w->base[off + j]) != lc(n[j])) return 0;
        off += 1 + (size_t)l;
        n += 1 + (size_t)l;
    }
}

void cdns_compr_add(struct cdns_compr *c, const cdns_wire_t *w, size_t off)
{
    /* the name and each of its suffixes, as long as they are addressable by a pointer */
    size_t p = off;
    while (p < w->pos && c->n < CDNS_COMPR_MAX && p < 0x4000) {
        uint8_t l = w->base[p];
        if (l == 0 || (l & 0xC0)) break;
        c->off[c->n++] = (uint16_t)p;
        p += 1 + (size_t)l;
    }
}

void cdns_name_write(cdns_wire_t *w, struct cdns_compr *c, const uint8_t *name)
{
    const uint8_t *s = name;
    size_t start = w->pos;
    while (*s) {
        if (c) {
            for (int i = 0; i < c->n; i++) {
                if (match_at(w, c->off[i], s)) {
                    cdns_wire_put(w, name, (size_t)(s - name));
                    cdns_wire_put_u16(w, (uint16_t)(0xC000 | c->off[i]));
                    if (!w->err && s != name) cdns_compr_add(c, w, start);
                    return;
                }
            }
        }
        s += 1 + *s;
    }
    cdns_wire_put(w, name, (size_t)(s - name) + 1);
    if (c && !w->err && *name) cdns_compr_add(c, w, start);
}
