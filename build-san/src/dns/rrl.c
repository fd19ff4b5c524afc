/* dns/rrl.c - token buckets per client subnet; see rrl.h for the rules. */
#include "config.h"

#include "dns/rrl.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"

struct slot {
    uint64_t key;          /* 0 = empty */
    uint64_t last_ms;      /* last refill */
    uint64_t milli;        /* tokens x 1000 */
    uint32_t limited;      /* answers over the limit so far (for slip) */
};

struct cdns_rrl { size_t n; struct slot s[]; };

struct cdns_rrl *cdns_rrl_new(size_t slots)
{
    size_t n = 1;
    while (n < slots) n <<= 1;
    struct cdns_rrl *r = calloc(1, sizeof(struct cdns_rrl) + n * sizeof(struct slot));
    if (r) r->n = n;
    return r;
}

void cdns_rrl_free(struct cdns_rrl *r) { free(r); }

static uint64_t subnet_key(const struct cdns_settings *s, int family, const uint8_t *addr)
{
    unsigned bits = family == 1 ? s->rrl_v4_prefix : s->rrl_v6_prefix, len = family == 1 ? 4 : 16;
    if (bits > len * 8) bits = len * 8;
    uint8_t k[17];
    k[0] = (uint8_t)family;
    for (unsigned i = 0; i < len; i++) {
        uint8_t b = addr[i];
        if (i * 8 >= bits) b = 0;
        else if (i * 8 + 8 > bits) b &= (uint8_t)(0xFF << (8 - (bits - i * 8)));
        k[1 + i] = b;
    }
    /* the process's random key: a client cannot pick addresses that share a slot with a victim */
    return cdn_hash(k, 1 + len) | 1;  /* never 0 */
}

static struct slot *find(struct cdns_rrl *r, const struct cdns_settings *s, int family,
                         const uint8_t *addr, uint64_t now, int create)
{
    uint64_t k = subnet_key(s, family, addr);
    struct slot *sl = &r->s[k & (r->n - 1)];
    if (sl->key == k) return sl;
    if (!create) return NULL;
    *sl = (struct slot){.key = k, .last_ms = now, .milli = (uint64_t)(s->rrl_burst ? s->rrl_burst : s->rrl_rate) * 1000};
    return sl;
}

enum cdns_rrl_verdict cdns_rrl_check(struct cdns_rrl *r, const struct cdns_settings *s, int family,
                                     const uint8_t *addr, uint64_t now_ms)
{
    if (!r || s->rrl_rate == 0 || (family != 1 && family != 2)) return CDNS_RRL_PASS;
    struct slot *sl = find(r, s, family, addr, now_ms, 1);
    uint64_t cap = (uint64_t)(s->rrl_burst ? s->rrl_burst : s->rrl_rate) * 1000;
    if (now_ms > sl->last_ms) {
        uint64_t add = (now_ms - sl->last_ms) * s->rrl_rate;  /* rate/s = rate milli-tokens per ms */
        sl->milli = sl->milli + add > cap ? cap : sl->milli + add;
        sl->last_ms = now_ms;
    }
    if (sl->milli >= 1000) { sl->milli -= 1000; return CDNS_RRL_PASS; }
    sl->limited++;
    if (s->rrl_slip && sl->limited % s->rrl_slip == 0) return CDNS_RRL_SLIP;
    return CDNS_RRL_DROP;
}

struct cdns_known { size_t n; _Atomic uint64_t w[]; };

struct cdns_known *cdns_known_new(size_t slots)
{
    size_t n = 1;
    while (n < slots) n <<= 1;
    struct cdns_known *k = calloc(1, sizeof(struct cdns_known) + n * sizeof(uint64_t));
    if (k) k->n = n;
    return k;
}

void cdns_known_free(struct cdns_known *k) { free(k); }

void cdns_known_mark(struct cdns_known *k, const struct cdns_settings *s, int family, const uint8_t *addr,
                     uint64_t now_ms)
{
    if (!k || (family != 1 && family != 2)) return;
    uint64_t h = subnet_key(s, family, addr);
    uint64_t until = (now_ms + CDNS_KNOWN_MS) / 1000 + 1;  /* seconds, rounded up: never 0 */
    atomic_store_explicit(&k->w[h & (k->n - 1)], (h & ~0xFFFFFFFFULL) | (until & 0xFFFFFFFFULL),
                          memory_order_relaxed);
}

int cdns_known_check(const struct cdns_known *k, const struct cdns_settings *s, int family,
                     const uint8_t *addr, uint64_t now_ms)
{
    if (!k || (family != 1 && family != 2)) return 0;
    uint64_t h = subnet_key(s, family, addr);
    uint64_t w = atomic_load_explicit(&((struct cdns_known *)k)->w[h & (k->n - 1)], memory_order_relaxed);
    return (w >> 32) == (h >> 32) && (w & 0xFFFFFFFFULL) > now_ms / 1000;
}
