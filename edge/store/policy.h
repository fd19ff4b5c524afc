/* edge/store/policy.h - eviction (and admission) policies behind one interface, byte-bounded.
 *
 * Owns: which ids are resident and in which order they leave. It knows ids and sizes only, never
 * the objects: the RAM tier, the RocksDB index and lab's cdn-cachesim all drive the same code.
 * Not thread-safe: the owner locks.
 *
 * Policies: LRU (the baseline) and S3-FIFO (Yang et al., SOSP'23, as libCacheSim's S3FIFO.c: a
 * small FIFO of 10% of the bytes that filters one-hit wonders (an id hit twice there moves to
 * main when it reaches the tail, the others leave for the ghost), a main FIFO with a 2-bit
 * frequency and reinsertion, a ghost FIFO of ids evicted from small, bounded at 90% of the bytes,
 * that sends a returning id straight to main; before the first eviction, new ids that do not fit
 * in small go to main; ids of 10% of the capacity or more are not admitted), and SIEVE (Zhang et al.,
 * NSDI'24: one FIFO with a visited bit; a hand walks from the oldest end, clears visited bits and
 * evicts the first unvisited id; hits only set the bit, so nothing moves on the hit path), and
 * lfu-size (a count-min sketch of lookups, 4-bit counters, halved periodically as in TinyLFU, plus
 * each resident's hits; the victim is the resident of lowest frequency / size^(1/4) among 16 drawn
 * at random, and a missed id is admitted only if it scores above the victim), and adaptive (the
 * edge's default): S3-FIFO's queues run as S3-FIFO, as LRU or as lfu-size; a sampled 1/R of the ids
 * is also replayed through two miniature caches of cap/R running the other two, and one takes over
 * when it beats the running policy in object AND byte hit ratio (see policy.c). It admits any size
 * in LRU and lfu-size mode and below 10% of the capacity in S3-FIFO mode. adaptive2 is the previous
 * default: S3-FIFO or LRU only, one mini, the better score of the two (kept for comparison). */
#ifndef EDGE_POLICY_H
#define EDGE_POLICY_H

#include <stddef.h>
#include <stdint.h>

enum edge_policy_kind {
    EDGE_POLICY_LRU,
    EDGE_POLICY_S3FIFO,
    EDGE_POLICY_SIEVE,
    EDGE_POLICY_ADAPTIVE,  /* the default: S3-FIFO, LRU or LFU-size, by miniature simulation */
    EDGE_POLICY_LFU_SIZE,  /* "lfu-size": sampled eviction of the lowest frequency / sqrt(size) */
    EDGE_POLICY_ADAPTIVE2, /* "adaptive2": the previous default, S3-FIFO or LRU only */
};

struct edge_policy;
typedef void (*edge_evict_cb)(uint64_t id, void *data);

struct edge_policy *edge_policy_new(enum edge_policy_kind kind, uint64_t capacity_bytes);
void edge_policy_free(struct edge_policy *p);
/* Keys the adaptive policy's sampling of ids (default 0, for reproducible replays); the edge passes a
 * random seed so that nobody can choose keys that all land in (or out of) the sample. */
void edge_policy_seed(struct edge_policy *p, uint64_t seed);
/* "lru" / "s3fifo" / "sieve" / "adaptive" / "lfu-size" / "adaptive2" -> kind, -1 if unknown. */
int edge_policy_kind_parse(const char *s);
const char *edge_policy_kind_name(enum edge_policy_kind k);
/* What runs now: the kind's name, or for adaptive the policy it currently follows ("s3fifo", "lru",
 * "lfu-size"). */
const char *edge_policy_running(const struct edge_policy *p);

/* Makes id resident with this size, evicting others (evict is called for each victim, never for
 * id itself, while the victim is still resident: edge_policy_get gives its value; evict must not
 * change the policy). An id already resident is updated and counts as a hit. -1 if size exceeds
 * edge_policy_max_size (nothing resident changes then; adaptive's sample still sees the miss) or
 * memory runs out. 1 if the policy declined it (lfu-size, and adaptive in that mode: the id is
 * requested less often, per square root of its size, than a resident it would evict); some
 * victims may have left before that decision, leaving free room. id must not be 0. */
int edge_policy_insert(struct edge_policy *p, uint64_t id, uint64_t size, edge_evict_cb evict, void *data);
/* Records an access. 1 if id is resident. Call it for every lookup, misses included: adaptive
 * scores policies on the lookups it samples. */
int edge_policy_hit(struct edge_policy *p, uint64_t id);
int edge_policy_contains(const struct edge_policy *p, uint64_t id);
/* The owner's value of a resident id (0 until set), without counting an access: 1 and *val, or 0.
 * The RAM tier keeps its object pointers here instead of in a map of its own. */
int edge_policy_get(const struct edge_policy *p, uint64_t id, uint64_t *val);
/* Sets it; -1 if id is not resident or memory runs out. The first call allocates 8 bytes per node. */
int edge_policy_set_val(struct edge_policy *p, uint64_t id, uint64_t val);
/* Calls fn for every resident id with its value (fn must not change the policy). */
void edge_policy_each(const struct edge_policy *p, void (*fn)(uint64_t id, uint64_t val, void *data), void *data);
/* Forgets id (purge, expiry). 1 if it was resident. */
int edge_policy_remove(struct edge_policy *p, uint64_t id);
uint64_t edge_policy_bytes(const struct edge_policy *p);
uint64_t edge_policy_capacity(const struct edge_policy *p);
/* The largest size insert admits: the capacity (LRU, SIEVE, lfu-size, adaptive in those modes);
 * below 10% of it (S3-FIFO, adaptive in S3-FIFO mode). Adaptive's can change between two calls. */
uint64_t edge_policy_max_size(const struct edge_policy *p);
size_t edge_policy_count(const struct edge_policy *p);
/* Bytes the policy allocated: its nodes (resident and ghost), id maps and miniature caches. */
size_t edge_policy_meta_bytes(const struct edge_policy *p);

#endif
