/* lab/cachesim/cachesim.h - the pure part of cdn-cachesim: replay a trace through edge/store/policy.c (the very
 * eviction code of the edge's RAM tier) at a byte capacity, and count misses.
 *
 * Model (the one libCacheSim uses, so numbers compare): every request is a lookup; a miss inserts
 * the object unless it is larger than the whole cache. A request for a resident id whose size
 * changed is a hit and the resident size stays (CSV block traces do this). Working-set bytes count
 * each id once, at its first size. Id 0 is replayed as id 2^64-1 (the policy reserves 0). */
#ifndef LAB_CACHESIM_H
#define LAB_CACHESIM_H

#include <stddef.h>
#include <stdint.h>

#include "lab/lib/trace.h"

struct lab_sim_ws {
    uint64_t reqs, objects, bytes, req_bytes;
};

struct lab_sim_result {
    uint64_t reqs, misses, req_bytes, miss_bytes;
    uint64_t meta_bytes, resident; /* online policies, at the end: edge_policy_meta_bytes, ids held */
};

/* A cache size: a share of the working set (pct > 0) or absolute bytes. */
struct lab_sim_size {
    double pct;
    uint64_t bytes;
    char label[24];
};

/* 0, or -1 out of memory. */
int lab_sim_working_set(const struct lab_trace *t, struct lab_sim_ws *ws);
/* kind is an enum edge_policy_kind. 0, or -1 out of memory. */
int lab_sim_run(const struct lab_trace *t, int kind, uint64_t capacity, struct lab_sim_result *r);

/* Offline references (offline.c). lab_sim_next: for each record, the index of the next record with
 * the same id, UINT32_MAX if none; *next is malloc'd. lab_sim_offline: Belady (sized = 0: the object
 * requested farthest in the future leaves) or BeladySize (sized = 1: the largest distance x size of
 * 64 sampled objects leaves); an object never requested again is not admitted. 0, or -1 out of
 * memory (or over 2^32 - 1 records). */
int lab_sim_next(const struct lab_trace *t, uint32_t **next);
int lab_sim_offline(const struct lab_trace *t, const uint32_t *next, int sized, uint64_t capacity,
                    struct lab_sim_result *r);

/* Two tiers as the edge's store (edge/store/store.c): a lookup tries RAM (ram_kind), then the disk
 * tier (an LRU index, as tier_rdb.c); a disk hit is promoted to RAM; a miss is stored in RAM and,
 * if the admission rule (enum edge_admit_kind, edge/store/admit.c) says so, written to disk. */
struct lab_sim_tiers {
    uint64_t reqs, req_bytes, ram_hits, ram_hit_bytes, disk_hits, disk_hit_bytes;
    uint64_t disk_writes, disk_write_bytes;
};
int lab_sim_two_tier(const struct lab_trace *t, int ram_kind, uint64_t ram_cap, uint64_t disk_cap, int admit,
                     struct lab_sim_tiers *r);

/* "0.1%,1%,10%,64M,1G,5000" -> up to max sizes (K/M/G/T are powers of 1024). -1 if malformed. */
int lab_sim_sizes_parse(const char *s, struct lab_sim_size *out, size_t max, size_t *n);
uint64_t lab_sim_size_bytes(const struct lab_sim_size *s, uint64_t ws_bytes);

#endif
