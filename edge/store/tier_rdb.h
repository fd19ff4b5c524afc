/* edge/store/tier_rdb.h - the disk tier: every stored object, metadata and body, byte-bounded.
 *
 * Owns: the RocksDB database (column family "meta", keyed by the 8-byte id of the cache key: the
 * location of the object's record in the body log, then its meta), the body log (blog.h: the
 * records [meta | body] in segment files under DIR/bodies), an in-RAM index of every stored id with
 * its size and its record's location (so a miss costs no disk read and a hit one pread), an LRU
 * over that index for eviction, the time each object stops being useful (for the expiry sweep),
 * and a writer thread. Thread-safe.
 *
 * Threads and blocking: puts and deletes are queued to the writer thread and never block the
 * caller's loop. Gets run on the caller's thread: they happen only when the index says the
 * object exists, and are one pread of the record, from the page cache in the common case; moving
 * them to a worker would add a thread hop per disk hit. A cold read from a slow disk does stall
 * that one loop.
 *
 * Integrity: the meta carries its own CRC-32 and the body's XXH3-64 and length, the record's
 * header its id and lengths; a mismatch, a key that is not the one asked for, or a record that
 * cannot be read make the object "corrupt": it is deleted and never returned. */
#ifndef EDGE_TIER_RDB_H
#define EDGE_TIER_RDB_H

#include <stdint.h>

#include "edge/store/obj.h"

struct edge_rdb;

/* Called once per valid object found at open (body not loaded), to rebuild other indexes. */
typedef void (*edge_rdb_scan_cb)(const struct edge_obj *meta, void *data);

struct edge_rdb *edge_rdb_open(const char *dir, uint64_t capacity, edge_rdb_scan_cb scan, void *data,
                               char *err, size_t errlen);
/* Waits for queued writes, then closes. */
void edge_rdb_close(struct edge_rdb *d);
int edge_rdb_has(struct edge_rdb *d, const char *key, size_t key_len);
int edge_rdb_has_id(struct edge_rdb *d, uint64_t id);
/* A reference with its body, or NULL. *corrupt set when a stored value failed its checks (it is
 * deleted then). */
struct edge_obj *edge_rdb_get(struct edge_rdb *d, const char *key, size_t key_len, int *corrupt);
/* Queues the object (takes its own reference). -1 if larger than the capacity. */
int edge_rdb_put(struct edge_rdb *d, struct edge_obj *o);
void edge_rdb_del_id(struct edge_rdb *d, uint64_t id);
/* Tests: on, the writer leaves queued writes alone (a slow disk, made deterministic); off, it goes
 * on. Gets still find queued puts. edge_rdb_sync and close wait for a held writer: release first. */
void edge_rdb_hold(struct edge_rdb *d, int on);
/* Blocks until every queued write is in the database (tests, shutdown). */
void edge_rdb_sync(struct edge_rdb *d);
/* One step of the expiry sweep: looks at up to `slots` index entries from where the last step
 * stopped and deletes the objects that are stale beyond their stale-while-revalidate and
 * stale-if-error windows at `now` (wall seconds), plus `keep` seconds for an object with a
 * validator (ETag or Last-Modified: it can still be revalidated); their ids go to ids (at most
 * max). *wrapped is set when the pass reached the end of the index (the next step starts over). */
size_t edge_rdb_expire(struct edge_rdb *d, int64_t now, int64_t keep, size_t slots, uint64_t *ids, size_t max,
                       int *wrapped);
uint64_t edge_rdb_bytes(struct edge_rdb *d);
/* full: a write failed and the tier is read-only until there is room (see tier_rdb.c);
 * write_errors: failed writes so far; refused: puts refused while full. */
void edge_rdb_health(struct edge_rdb *d, int *full, uint64_t *write_errors, uint64_t *refused);
/* Segments of the body log cleaned so far (their live records moved, the file removed: see
 * tier_rdb.c clean), and the bytes of the log's files now. */
uint64_t edge_rdb_cleaned(struct edge_rdb *d);
uint64_t edge_rdb_log_bytes(struct edge_rdb *d);
/* Soft purges outlive a restart: edge_rdb_soft writes the mark of a stored object (id, when, in
 * seconds) through the WAL; edge_rdb_soft_scan, at start, calls cb for every stored object whose
 * mark is not older than the copy it holds (a copy stored after the mark is fresh). Marks go with
 * their objects. */
void edge_rdb_soft(struct edge_rdb *d, uint64_t id, int64_t at);
size_t edge_rdb_soft_scan(struct edge_rdb *d, void (*cb)(uint64_t id, void *data), void *data);
size_t edge_rdb_count(struct edge_rdb *d);

#endif
