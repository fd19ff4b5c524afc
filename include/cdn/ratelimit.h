/* cdn/ratelimit.h - a rate limiter shared by threads: GCRA (the generic cell rate algorithm) over a
 * fixed table of keys, for cdn-edge's rate_limit (and later shop-lb's).
 *
 * GCRA keeps one number per key, its theoretical arrival time (TAT): the time at which the key's
 * bucket would be full again. A request at `now` is admitted when
 *     max(TAT, now) + T - now <= burst * T        (T = the emission interval, 1 / rate)
 * and then TAT becomes max(TAT, now) + T; a refused request leaves TAT as it was. A fresh key
 * admits `burst` requests at once, then one every T: over a flood lasting t, burst + t / T.
 *
 * Owns: the table (cdn_rl_new .. cdn_rl_free), a fixed array of slots allocated once. Keys are
 * kept as their 64-bit keyed hash (cdn_hash of include/cdn/http.h), never as text: a flood of
 * spoofed sources cannot make the table grow, nor aim at one shard.
 *
 * Rules:
 * - The table has a fixed number of slots (max_keys rounded up to a power of two, at least one
 *   shard): memory never grows. A key maps to one shard of CDN_RL_WAYS slots. A new key takes a
 *   free slot of its shard, else the slot of a key whose bucket is full again (TAT <= now: it
 *   holds nothing a fresh key would not), else the least recently seen key's slot (which then
 *   starts again with a full burst: the price of a bounded table). cdn_rl_keys counts the
 *   occupied slots.
 * - Two keys whose 64-bit hashes are equal share a bucket (at 2^-64 a pair, ignored).
 * - Times are nanoseconds of a monotonic clock that the caller passes in (`now`): no call reads a
 *   clock, so tests need no sleeps. `now` must not go backwards for a key by more than the burst
 *   tolerance for the arithmetic to stay meaningful (it never wraps: 2^64 ns is 584 years).
 * Threads: every function but cdn_rl_new / cdn_rl_free may be called from any thread at once.
 * Each shard has its own spin lock held for a few dozen instructions; there is no global lock.
 * The key counter is an atomic. */
#ifndef CDN_RATELIMIT_H
#define CDN_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define CDN_RL_WAYS 8                /* slots per shard */
#define CDN_RL_KEYS_DEFAULT 65536    /* a table of about 1.5 MiB */

typedef struct cdn_rl cdn_rl_t;

/* A limit: `count` requests per `period_ns`, with bursts of up to `burst` requests. Built with
 * cdn_rl_rate_make; plain data, shared read-only by any number of threads. */
struct cdn_rl_rate {
    uint64_t interval_ns;            /* T = period / count (at least 1) */
    uint64_t tolerance_ns;           /* burst * T */
    uint32_t count, burst;
    uint64_t period_ns;
};

/* What one check decided. */
struct cdn_rl_result {
    int allowed;
    uint32_t remaining;              /* requests the key may still make at once (0 when refused) */
    uint64_t retry_after_ns;         /* refused: time until one request would be admitted; else 0 */
    uint64_t reset_ns;               /* time until the key's bucket is full again */
};

/* count >= 1, period_ns >= 1, burst >= 1. -1 on a zero argument. */
int cdn_rl_rate_make(struct cdn_rl_rate *r, uint32_t count, uint64_t period_ns, uint32_t burst);

/* A table of about max_keys keys (rounded up to a power of two, at least CDN_RL_WAYS). NULL when
 * out of memory. The memory is zeroed pages from calloc: untouched until keys arrive. */
cdn_rl_t *cdn_rl_new(size_t max_keys);
void cdn_rl_free(cdn_rl_t *t);
/* Slots in the table (the most keys it ever holds). */
size_t cdn_rl_capacity(const cdn_rl_t *t);
/* Keys held now (occupied slots). */
size_t cdn_rl_keys(const cdn_rl_t *t);

/* One request of key[0..len) at `now` under rate r: admits it or not (GCRA above), fills *res
 * when res is not NULL. Returns res->allowed (1 or 0). The same key used with two different rates
 * shares one TAT: make the policy part of the key. */
int cdn_rl_check(cdn_rl_t *t, const void *key, size_t len, const struct cdn_rl_rate *r, uint64_t now,
                 struct cdn_rl_result *res);
/* "100/s", "6000/m", "10/h" (N from 1 to 10^9): the count and the period. 0, or -1 otherwise. */
int cdn_rl_rate_parse(const char *s, uint32_t *count, uint64_t *period_ns);

/* The fields of a refused request's 429 (RFC 6585 4, draft-ietf-httpapi-ratelimit-headers in
 * their Structured Fields form), each a C string: Retry-After in seconds (rounded up, at least 1);
 * RateLimit-Policy, the bucket: q its size (burst), w the seconds it takes to fill again from
 * empty; RateLimit, what is left of it (r) and in how many seconds it is full again (t). */
#define CDN_RL_FIELD_MAX 160
void cdn_rl_fields(const char *policy_name, const struct cdn_rl_rate *r, const struct cdn_rl_result *res,
                   char retry_after[CDN_RL_FIELD_MAX], char policy[CDN_RL_FIELD_MAX],
                   char ratelimit[CDN_RL_FIELD_MAX]);

/* The same with the key's hash already computed (cdn_hash of the key). */
int cdn_rl_check_hash(cdn_rl_t *t, uint64_t h, const struct cdn_rl_rate *r, uint64_t now,
                      struct cdn_rl_result *res);

#endif
