/* edge/store/store.h - the object store: tier walk (RAM, then RocksDB with promotion), Vary specs per
 * URL, the tag index (Surrogate-Key and the URL itself) for purges. Thread-safe.
 *
 * Tier order: lookups try RAM, then RocksDB (a disk hit is promoted to RAM); every stored object
 * goes to RAM (which keeps what its policy admits) and, if the disk admission rule takes it or an
 * older copy is already there, to RocksDB (which keeps everything it is given up to its bound). */
#ifndef EDGE_STORE_H
#define EDGE_STORE_H

#include <stdint.h>

#include "edge/store/admit.h"
#include "edge/store/obj.h"
#include "edge/store/policy.h"

enum { EDGE_TIER_NONE, EDGE_TIER_RAM, EDGE_TIER_DISK };

struct edge_store_conf {
    uint64_t ram_bytes, disk_bytes;
    enum edge_policy_kind ram_policy;
    const char *dir;                 /* RocksDB folder; NULL: RAM only */
    uint64_t purge_remember_ms;       /* how long an applied purge still refuses older fills (0: 60 s) */
    enum edge_admit_kind disk_admit; /* which stored objects are also written to RocksDB (admit.h) */
};

struct edge_purge_cmd;

struct edge_store;
struct edge_store *edge_store_open(const struct edge_store_conf *c, char *err, size_t errlen);
void edge_store_close(struct edge_store *s);
/* A reference or NULL; *tier says where it was found; *corrupt when a disk copy was dropped. */
struct edge_obj *edge_store_get(struct edge_store *s, const char *key, size_t key_len, int *tier, int *corrupt);
/* The normalised Vary list stored for a primary key, copied into buf. 1 if there is one. */
int edge_store_vary(struct edge_store *s, const char *pkey, size_t plen, char *buf, size_t cap);
/* Stores o in RAM and, by the disk admission rule, in RocksDB; records its Vary spec and tags;
 * clears a soft mark of its key. -1 (not stored, counted) when o may have been born before a
 * remembered purge that covers it. */
int edge_store_put(struct edge_store *s, struct edge_obj *o);
/* Removes every variant of a URL (primary key). Returns how many objects went. */
size_t edge_store_purge_url(struct edge_store *s, const char *pkey, size_t plen);
/* Removes every object tagged tag (Surrogate-Key). */
size_t edge_store_purge_tag(struct edge_store *s, const char *tag, size_t len);
/* Applies a purge command (edge/purge/cmd.h) at now_ms (wall clock): hard removes from both
 * tiers, soft marks stale; remembered for purge_remember_ms against fills born before it.
 * Returns how many objects were removed or marked. */
size_t edge_store_purge(struct edge_store *s, const struct edge_purge_cmd *c, int64_t now_ms);
/* 1 when the object stored under key was soft-purged (it is to be treated as stale). */
int edge_store_is_soft(struct edge_store *s, const char *key, size_t key_len);
/* Puts refused because the object was born before a purge that covers it. */
uint64_t edge_store_refused(struct edge_store *s);
/* The expiry sweep: one pass over the RocksDB tier's index that removes (from both tiers) every
 * object stale beyond its stale-while-revalidate / stale-if-error windows at now (wall seconds),
 * and keep seconds more for one with a validator (Varnish's "keep": a 304 can still renew it).
 * Returns how many went. Without a RocksDB tier, expired objects leave only by eviction or use. */
size_t edge_store_expire(struct edge_store *s, int64_t now, int64_t keep);
void edge_store_sync(struct edge_store *s);
uint64_t edge_store_bytes(struct edge_store *s, int tier);
/* The disk tier's state (tier_rdb.h edge_rdb_health); all 0 without one. */
void edge_store_disk_health(struct edge_store *s, int *full, uint64_t *write_errors, uint64_t *refused);
size_t edge_store_count(struct edge_store *s, int tier);
/* The disk tier's body log: bytes of its segment files, segments cleaned so far (0 without one). */
void edge_store_disk_log(struct edge_store *s, uint64_t *bytes, uint64_t *cleaned);

#endif
