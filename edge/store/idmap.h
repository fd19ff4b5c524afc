/* edge/store/idmap.h - an open-addressing hash map from 64-bit ids (key hashes) to 64-bit values
 * (indexes or pointers). Linear probing with backward-shift deletion: no tombstones, so it stays
 * fast under the insert/delete churn of a cache. Not thread-safe: its owner locks. Id 0 is
 * reserved (callers map a 0 hash to 1). */
#ifndef EDGE_IDMAP_H
#define EDGE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct edge_idmap {
    uint64_t *ids, *vals;
    size_t cap, n; /* cap a power of two */
};

int edge_idmap_init(struct edge_idmap *m, size_t initial);
void edge_idmap_free(struct edge_idmap *m);
/* 1 and *val set if present. */
int edge_idmap_get(const struct edge_idmap *m, uint64_t id, uint64_t *val);
/* Inserts or replaces; -1 on allocation failure. */
int edge_idmap_put(struct edge_idmap *m, uint64_t id, uint64_t val);
/* 1 if it was there. */
int edge_idmap_del(struct edge_idmap *m, uint64_t id);
/* Halves the table if deletes have left it less than 1/8 full (slots move: not while iterating
 * over them). With growth at 1/2, amortised O(1) when called after every delete. */
void edge_idmap_shrink(struct edge_idmap *m);

#endif
