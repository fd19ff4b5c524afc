/* lab/wanrelay/wanq.c - the WAN relay's delay line (see wanq.h for the model).
 *
 * Ring layout: records [struct rec][meta][frame] padded to 8 bytes, written at tail, read at head.
 * A record never wraps: when it does not fit before the end, the rest of the buffer is skipped
 * (a WRAP marker when a header fits there, else implicitly) and counted in `used` until the reader
 * passes it. Invariant: used = bytes between head and tail including skipped ends. */
#include "config.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lab/wanrelay/wanq.h"

#define WRAP UINT32_MAX

struct rec {
    uint64_t release;
    uint32_t meta_len, len; /* len == WRAP: skip to the start */
};

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static uint64_t rng_next(uint64_t *s)
{   /* splitmix64: small, good enough for drop decisions */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int lab_wanq_init(struct lab_wanq *q, const struct lab_wanq_cfg *cfg)
{
    memset(q, 0, sizeof(*q));
    q->cfg = *cfg;
    if (!q->cfg.max_frames) q->cfg.max_frames = 4096;
    if (!q->cfg.max_bytes) q->cfg.max_bytes = 16u << 20;
    q->cap = pad8(q->cfg.max_bytes);
    q->buf = malloc(q->cap);
    q->rng = cfg->seed ? cfg->seed : 1;
    return q->buf ? 0 : -1;
}

void lab_wanq_free(struct lab_wanq *q)
{
    free(q->buf);
    q->buf = NULL;
}

void lab_wanq_set_loss(struct lab_wanq *q, double loss)
{
    q->cfg.loss = loss < 0 ? 0 : loss > 1 ? 1 : loss;
}

/* Position of the oldest record, after any skipped end. */
static size_t head_pos(const struct lab_wanq *q)
{
    size_t h = q->head;
    if (q->cap - h < sizeof(struct rec)) return 0;
    const struct rec *r = (const struct rec *)(q->buf + h);
    return r->len == WRAP ? 0 : h;
}

int lab_wanq_push(struct lab_wanq *q, uint64_t now, const void *meta, size_t meta_len,
                  const void *frame, size_t len)
{
    q->st.in_frames++;
    q->st.in_bytes += len;
    size_t need = sizeof(struct rec) + pad8(meta_len + len);
    if (need > q->cap / 2 || len >= WRAP) {
        q->st.drop_big++;
        return 0;
    }
    if (q->cfg.loss > 0 && (double)(rng_next(&q->rng) >> 11) * 0x1.0p-53 < q->cfg.loss) {
        q->st.drop_loss++;
        return 0;
    }
    if (q->frames == 0) q->head = q->tail = q->used = 0;
    size_t at;
    if (q->frames >= q->cfg.max_frames) goto full;
    if (q->frames > 0 && q->tail == q->head) goto full; /* exactly full */
    if (q->frames == 0 || q->tail > q->head) {
        if (q->cap - q->tail >= need) {
            at = q->tail;
        } else if (q->head >= need) {
            size_t waste = q->cap - q->tail;
            if (waste >= sizeof(struct rec)) ((struct rec *)(q->buf + q->tail))->len = WRAP;
            q->used += waste;
            at = 0;
        } else {
            goto full;
        }
    } else {
        if (q->head - q->tail < need) goto full;
        at = q->tail;
    }
    /* Bottleneck: frames leave one after another at rate_bps, then travel delay_ns. */
    uint64_t depart = now > q->busy_until ? now : q->busy_until;
    if (q->cfg.rate_bps) depart += (uint64_t)((double)len * 8.0 * 1e9 / (double)q->cfg.rate_bps);
    q->busy_until = depart;
    struct rec *r = (struct rec *)(q->buf + at);
    r->release = depart + q->cfg.delay_ns;
    r->meta_len = (uint32_t)meta_len;
    r->len = (uint32_t)len;
    if (meta_len) memcpy(r + 1, meta, meta_len);
    memcpy((unsigned char *)(r + 1) + meta_len, frame, len);
    q->tail = at + need;
    q->used += need;
    q->frames++;
    return 1;
full:
    q->st.drop_full++;
    return 0;
}

uint64_t lab_wanq_next(const struct lab_wanq *q)
{
    if (!q->frames) return UINT64_MAX;
    return ((const struct rec *)(q->buf + head_pos(q)))->release;
}

int lab_wanq_peek(const struct lab_wanq *q, uint64_t now, const void **meta, size_t *meta_len,
                  const void **frame, size_t *len, uint64_t *next_release)
{
    *next_release = lab_wanq_next(q);
    if (!q->frames || *next_release > now) return 0;
    const struct rec *r = (const struct rec *)(q->buf + head_pos(q));
    *meta = r + 1;
    *meta_len = r->meta_len;
    *frame = (const unsigned char *)(r + 1) + r->meta_len;
    *len = r->len;
    return 1;
}

void lab_wanq_pop(struct lab_wanq *q)
{
    if (!q->frames) return;
    size_t h = head_pos(q);
    if (h != q->head) { /* passing the skipped end */
        q->used -= q->cap - q->head;
        q->head = 0;
    }
    const struct rec *r = (const struct rec *)(q->buf + h);
    size_t need = sizeof(struct rec) + pad8(r->meta_len + r->len);
    q->st.out_frames++;
    q->st.out_bytes += r->len;
    q->head = h + need;
    q->used -= need;
    q->frames--;
    if (!q->frames) q->head = q->tail = q->used = 0;
}

size_t lab_wanq_peek_batch(const struct lab_wanq *q, uint64_t now, struct lab_wanq_item *items, size_t max)
{
    size_t n = 0, p = q->head;
    while (n < max && n < q->frames) {
        if (q->cap - p < sizeof(struct rec) || ((const struct rec *)(q->buf + p))->len == WRAP) p = 0;
        const struct rec *r = (const struct rec *)(q->buf + p);
        if (r->release > now) break;
        items[n].meta = r + 1;
        items[n].meta_len = r->meta_len;
        items[n].frame = (const unsigned char *)(r + 1) + r->meta_len;
        items[n].len = r->len;
        n++;
        p += sizeof(struct rec) + pad8(r->meta_len + r->len);
    }
    return n;
}

void lab_wanq_pop_n(struct lab_wanq *q, size_t n)
{
    while (n-- > 0) lab_wanq_pop(q);
}

int lab_parse_delay_ns(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || isspace((unsigned char)*s) || *s == '-') return -1;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0) return -1;
    double mul;
    if (!*end || !strcmp(end, "ms")) mul = 1e6;
    else if (!strcmp(end, "us")) mul = 1e3;
    else if (!strcmp(end, "ns")) mul = 1;
    else if (!strcmp(end, "s")) mul = 1e9;
    else return -1;
    v *= mul;
    if (v > 3600e9) return -1; /* an hour: surely a typo */
    *out = (uint64_t)(v + 0.5);
    return 0;
}

int lab_parse_rate_bps(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || isspace((unsigned char)*s) || *s == '-') return -1;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0) return -1;
    double mul;
    if (!*end || !strcmp(end, "bit")) mul = 1;
    else if (!strcmp(end, "kbit")) mul = 1e3;
    else if (!strcmp(end, "mbit")) mul = 1e6;
    else if (!strcmp(end, "gbit")) mul = 1e9;
    else return -1;
    v *= mul;
    if (v > 1e12) return -1;
    *out = (uint64_t)(v + 0.5);
    return 0;
}
