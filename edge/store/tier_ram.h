/* edge/store/tier_ram.h - the RAM tier: hot objects with their bodies, byte-bounded, evicted by a
 * policy (edge/store/policy.h). Thread-safe (one mutex; every call is short and never blocks on I/O).
 * Returned objects carry a reference the caller releases. */
#ifndef EDGE_TIER_RAM_H
#define EDGE_TIER_RAM_H

#include <stdint.h>

#include "edge/store/obj.h"
#include "edge/store/policy.h"

struct edge_ram;

struct edge_ram *edge_ram_new(uint64_t capacity, enum edge_policy_kind kind);
void edge_ram_free(struct edge_ram *r);
/* A reference or NULL; counts as an access. */
struct edge_obj *edge_ram_get(struct edge_ram *r, const char *key, size_t key_len);
/* Stores o (takes its own reference; replaces an object of the same key). -1 if it cannot fit. */
int edge_ram_put(struct edge_ram *r, struct edge_obj *o);
int edge_ram_del_id(struct edge_ram *r, uint64_t id);
/* 1 when an object with that id is held (purge: soft marks). */
int edge_ram_has_id(struct edge_ram *r, uint64_t id);
uint64_t edge_ram_bytes(struct edge_ram *r);
size_t edge_ram_count(struct edge_ram *r);
/* What an object is charged: body, headers and bookkeeping. */
uint64_t edge_obj_charge(const struct edge_obj *o);

#endif
