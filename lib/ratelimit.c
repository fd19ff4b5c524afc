/* lib/ratelimit.c - GCRA over a fixed, sharded table of keys (rules in include/cdn/ratelimit.h).
 *
 * Layout: 2^k shards of CDN_RL_WAYS slots, each shard on its own cache lines with its own spin
 * lock; a key's shard is its hash's low bits, its slot found by comparing whole hashes (0 marks a
 * free slot, so a hash of 0 is stored as 1). The lock covers one shard's slots only. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "cdn/http.h"
#include "cdn/ratelimit.h"

struct slot {
    uint64_t h;      /* the key's hash; 0: free */
    uint64_t tat;    /* theoretical arrival time, ns */
    uint64_t seen;   /* last request of this key, ns (for least-recently-seen eviction) */
};

struct shard {
    uint32_t lock;
    struct slot s[CDN_RL_WAYS];
} __attribute__((aligned(64)));

struct cdn_rl {
    struct shard *shards;
    size_t nshards;  /* a power of two */
    size_t keys;     /* atomic: occupied slots */
};

int cdn_rl_rate_make(struct cdn_rl_rate *r, uint32_t count, uint64_t period_ns, uint32_t burst)
{
    if (count == 0 || period_ns == 0 || burst == 0)
        return -1;
    r->count = count;
    r->period_ns = period_ns;
    r->burst = burst;
    r->interval_ns = period_ns / count ? period_ns / count : 1;
    r->tolerance_ns = r->interval_ns * burst;
    return 0;
}

cdn_rl_t *cdn_rl_new(size_t max_keys)
{
    size_t n = 1;
    while (n * CDN_RL_WAYS < max_keys && n < ((size_t)1 << 40))
        n <<= 1;
    cdn_rl_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->shards = aligned_alloc(64, n * sizeof(struct shard));
    if (t->shards == NULL) {
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        t->shards[i] = (struct shard){0};
    t->nshards = n;
    return t;
}

void cdn_rl_free(cdn_rl_t *t)
{
    if (t == NULL)
        return;
    free(t->shards);
    free(t);
}

size_t cdn_rl_capacity(const cdn_rl_t *t) { return t->nshards * CDN_RL_WAYS; }

size_t cdn_rl_keys(const cdn_rl_t *t) { return __atomic_load_n(&t->keys, __ATOMIC_RELAXED); }

static void lock(uint32_t *l)
{
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) != 0)
        while (__atomic_load_n(l, __ATOMIC_RELAXED) != 0) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
}

static void unlock(uint32_t *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

/* The key's slot in its shard (lock held): its own, else a free one, else one whose bucket is
 * full again, else the least recently seen. */
static struct slot *find(cdn_rl_t *t, struct shard *sh, uint64_t h, uint64_t now)
{
    struct slot *free_s = NULL, *full = NULL, *old = NULL;
    for (int i = 0; i < CDN_RL_WAYS; i++) {
        struct slot *s = &sh->s[i];
        if (s->h == h)
            return s;
        if (s->h == 0) {
            if (free_s == NULL)
                free_s = s;
        } else if (s->tat <= now) {
            if (full == NULL)
                full = s;
        } else if (old == NULL || s->seen < old->seen) {
            old = s;
        }
    }
    struct slot *s = free_s ? free_s : full ? full : old;
    if (s == free_s)
        __atomic_add_fetch(&t->keys, 1, __ATOMIC_RELAXED);
    s->h = h;
    s->tat = 0;
    return s;
}

int cdn_rl_check_hash(cdn_rl_t *t, uint64_t h, const struct cdn_rl_rate *r, uint64_t now,
                      struct cdn_rl_result *res)
{
    h = h ? h : 1;
    struct shard *sh = &t->shards[h & (t->nshards - 1)];
    lock(&sh->lock);
    struct slot *s = find(t, sh, h, now);
    s->seen = now;
    uint64_t tat = s->tat > now ? s->tat : now;
    uint64_t d = tat + r->interval_ns - now; /* how far ahead the key would be after this one */
    int ok = d <= r->tolerance_ns;
    if (ok)
        s->tat = tat + r->interval_ns;
    uint64_t held = s->tat > now ? s->tat - now : 0;
    unlock(&sh->lock);
    if (res != NULL) {
        res->allowed = ok;
        res->remaining = ok ? (uint32_t)((r->tolerance_ns - d) / r->interval_ns) : 0;
        res->retry_after_ns = ok ? 0 : d - r->tolerance_ns;
        res->reset_ns = held;
    }
    return ok;
}

int cdn_rl_check(cdn_rl_t *t, const void *key, size_t len, const struct cdn_rl_rate *r, uint64_t now,
                 struct cdn_rl_result *res)
{
    return cdn_rl_check_hash(t, cdn_hash(key, len), r, now, res);
}

int cdn_rl_rate_parse(const char *s, uint32_t *count, uint64_t *period_ns)
{
    uint64_t n = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9' && n <= 1000000000; p++)
        n = n * 10 + (uint64_t)(*p - '0');
    if (p == s || n == 0 || n > 1000000000 || p[0] != '/' || p[1] == '\0' || p[2] != '\0')
        return -1;
    switch (p[1]) {
    case 's': *period_ns = 1000000000ULL; break;
    case 'm': *period_ns = 60 * 1000000000ULL; break;
    case 'h': *period_ns = 3600 * 1000000000ULL; break;
    default: return -1;
    }
    *count = (uint32_t)n;
    return 0;
}

static unsigned long long ceil_s(uint64_t ns) { return (ns + 999999999ULL) / 1000000000ULL; }

void cdn_rl_fields(const char *name, const struct cdn_rl_rate *r, const struct cdn_rl_result *res,
                   char retry_after[CDN_RL_FIELD_MAX], char policy[CDN_RL_FIELD_MAX], char ratelimit[CDN_RL_FIELD_MAX])
{
    unsigned long long retry = ceil_s(res->retry_after_ns), w = ceil_s(r->tolerance_ns);
    snprintf(retry_after, CDN_RL_FIELD_MAX, "%llu", retry ? retry : 1);
    snprintf(policy, CDN_RL_FIELD_MAX, "\"%s\";q=%u;w=%llu", name, r->burst, w ? w : 1);
    snprintf(ratelimit, CDN_RL_FIELD_MAX, "\"%s\";r=%u;t=%llu", name, res->remaining, ceil_s(res->reset_ns));
}
