/* edge/store/admit.h - admission to the disk (RocksDB) tier: which missed objects are worth a
 * disk write. Every write costs SSD wear and miss-path CPU; an object requested once is written
 * for nothing.
 *
 * Rules:
 * - all: every stored object is written (the tier's behaviour before this rule existed).
 * - second-hit: an object is written while the tier has free room for it (filling an empty
 *   slot evicts nothing), and once the tier is full, on its second miss within a recent window,
 *   i.e. if its id was already missed once while the filter remembered it. The filter is a "doorkeeper" (as in
 *   TinyLFU): two generations of a Bloom filter of 8 bits per remembered id and 3 hashes; the
 *   current generation takes each miss, and when it has taken `window` ids it becomes the previous
 *   one and a cleared one starts. An id counts as seen if either generation has it, so the window
 *   is between one and two windows of misses. A false positive (about 3%) admits on a first miss.
 * An object already on disk is always rewritten when it changes (the caller checks that).
 *
 * Owns: its filters. Not thread-safe: the owner locks. */
#ifndef EDGE_ADMIT_H
#define EDGE_ADMIT_H

#include <stddef.h>
#include <stdint.h>

enum edge_admit_kind { EDGE_ADMIT_ALL, EDGE_ADMIT_SECOND_HIT };

struct edge_admit;

/* seed keys the filter's hashes (the edge: a random one; replays: 0). NULL out of memory. */
struct edge_admit *edge_admit_new(enum edge_admit_kind kind, uint64_t seed);
void edge_admit_free(struct edge_admit *a);
/* "all" / "second-hit" -> kind, -1 if unknown. */
int edge_admit_kind_parse(const char *s);
const char *edge_admit_kind_name(enum edge_admit_kind k);
/* A miss of id, about to be stored: 1 if it should go to disk too. window is how many missed ids
 * the filter should remember (the edge passes the disk tier's object count; at least 4096 is
 * used); a new value takes effect at the next generation. room: the tier has free space for the
 * object. Records the miss either way. */
int edge_admit_miss(struct edge_admit *a, uint64_t id, size_t window, int room);
/* Bytes the filters use. */
size_t edge_admit_bytes(const struct edge_admit *a);

#endif
