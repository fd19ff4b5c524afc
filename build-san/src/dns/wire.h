/* dns/wire.h - DNS wire format: a bounds-checked cursor with a sticky error, names, compression.
 *
 * Rules: every read or write goes through cdns_wire_t. Running off the end sets w->err and makes
 * every later call a no-op returning zeros, so a parser checks the error once at the end (Knot's
 * wire_ctx idea). Names are kept uncompressed in wire form (length-prefixed labels ending with the
 * root label, at most 255 bytes). Compression on write: a table of offsets where names (and their
 * suffixes) were written; a new name reuses the longest suffix already present, compared without
 * regard to ASCII case, so the question's original case is what the client sees again. */
#ifndef CDNS_WIRE_H
#define CDNS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CDNS_NAME_MAX 255
#define CDNS_LABEL_MAX 63

typedef struct cdns_wire {
    uint8_t *base;  /* for a read-only cursor the bytes are never written */
    size_t len;     /* capacity (writes) or data length (reads) */
    size_t pos;
    int err;        /* sticky: set on the first overrun or malformed input */
} cdns_wire_t;

static inline void cdns_wire_init(cdns_wire_t *w, const void *base, size_t len)
{
    w->base = (uint8_t *)base; w->len = len; w->pos = 0; w->err = 0;
}
static inline size_t cdns_wire_avail(const cdns_wire_t *w) { return w->err ? 0 : w->len - w->pos; }
static inline int cdns_wire_need(cdns_wire_t *w, size_t n)
{
    if (w->err || w->len - w->pos < n) { w->err = 1; return 0; }
    return 1;
}
static inline uint8_t cdns_wire_u8(cdns_wire_t *w)
{
    if (!cdns_wire_need(w, 1)) return 0;
    return w->base[w->pos++];
}
static inline uint16_t cdns_wire_u16(cdns_wire_t *w)
{
    if (!cdns_wire_need(w, 2)) return 0;
    uint16_t v = (uint16_t)(w->base[w->pos] << 8 | w->base[w->pos + 1]);
    w->pos += 2;
    return v;
}
static inline uint32_t cdns_wire_u32(cdns_wire_t *w)
{
    if (!cdns_wire_need(w, 4)) return 0;
    const uint8_t *p = w->base + w->pos;
    w->pos += 4;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void cdns_wire_read(cdns_wire_t *w, void *dst, size_t n)
{
    if (!cdns_wire_need(w, n)) { memset(dst, 0, n); return; }
    memcpy(dst, w->base + w->pos, n);
    w->pos += n;
}
static inline void cdns_wire_skip(cdns_wire_t *w, size_t n)
{
    if (cdns_wire_need(w, n)) w->pos += n;
}
static inline void cdns_wire_put_u8(cdns_wire_t *w, uint8_t v)
{
    if (cdns_wire_need(w, 1)) w->base[w->pos++] = v;
}
static inline void cdns_wire_put_u16(cdns_wire_t *w, uint16_t v)
{
    if (!cdns_wire_need(w, 2)) return;
    w->base[w->pos] = (uint8_t)(v >> 8); w->base[w->pos + 1] = (uint8_t)v;
    w->pos += 2;
}
static inline void cdns_wire_put_u32(cdns_wire_t *w, uint32_t v)
{
    if (!cdns_wire_need(w, 4)) return;
    uint8_t *p = w->base + w->pos;
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
    w->pos += 4;
}
static inline void cdns_wire_put(cdns_wire_t *w, const void *src, size_t n)
{
    if (cdns_wire_need(w, n)) { memcpy(w->base + w->pos, src, n); w->pos += n; }
}
/* Overwrites a u16 written earlier (counts, RDLENGTH). */
static inline void cdns_wire_patch_u16(cdns_wire_t *w, size_t at, uint16_t v)
{
    if (at + 2 <= w->len) { w->base[at] = (uint8_t)(v >> 8); w->base[at + 1] = (uint8_t)v; }
}

/* Reads a name at the cursor into out (uncompressed wire form, at most 255 bytes, case kept).
 * Compression pointers are followed only if allow_ptr, only backwards, at most 32 hops. Returns
 * the name's length, or 0 with w->err set (bad label type, too long, loop, overrun). */
size_t cdns_name_read(cdns_wire_t *w, uint8_t out[CDNS_NAME_MAX], int allow_ptr);
/* Length of an uncompressed wire name (including the root label); 0 if malformed within max. */
size_t cdns_name_len(const uint8_t *name, size_t max);
void cdns_name_lower(uint8_t *dst, const uint8_t *src);
int cdns_name_eq(const uint8_t *a, const uint8_t *b);  /* case-insensitive */
/* Is name equal to or below apex (case-insensitive)? */
int cdns_name_is_sub(const uint8_t *name, const uint8_t *apex);
/* Text "www.shop.test" / "www.shop.test." / "@" relative to origin (NULL = absolute) -> wire.
 * Escapes are not supported. Returns the length or 0 if invalid. */
size_t cdns_name_from_text(uint8_t out[CDNS_NAME_MAX], const char *text, const uint8_t *origin);
/* Wire -> "www.shop.test." (buf of at least 256 + escapes: give 1024). */
const char *cdns_name_to_text(const uint8_t *name, char *buf, size_t len);

#define CDNS_COMPR_MAX 64
struct cdns_compr {
    uint16_t off[CDNS_COMPR_MAX];  /* offsets in the message of names written so far (and suffixes) */
    int n;
};
/* Writes name, compressed against the names recorded in c (c may be NULL: no compression). */
void cdns_name_write(cdns_wire_t *w, struct cdns_compr *c, const uint8_t *name);
/* Records a name already present in the message at offset off (the question). */
void cdns_compr_add(struct cdns_compr *c, const cdns_wire_t *w, size_t off);

#endif
