/* cdn/epoch.h - reclaiming what a reload replaced, once no reader can still see it.
 *
 * Owns: the readers' epoch counters and the list of retired objects (pointer + free function).
 * Rules: each reader (a worker thread) has one counter, odd while it may hold a pointer to shared
 * configuration (cdn_epoch_enter .. cdn_epoch_leave: one loop turn of a worker, one batch of a
 * UDP thread). A retired object records every counter; it is freed once each reader that was
 * inside then has moved on (its counter changed) - the scheme of cdn-dns's view swap. Readers
 * must not keep such pointers across a leave (copy what must live longer).
 * Threads: enter/leave from each reader's own thread (lock-free); retire, reclaim and free from
 * one writer thread only. */
#ifndef CDN_EPOCH_H
#define CDN_EPOCH_H

#include <stddef.h>

typedef struct cdn_epoch cdn_epoch_t;

/* nreaders counters, all outside. NULL when out of memory. */
cdn_epoch_t *cdn_epoch_new(unsigned nreaders);
/* Frees every object still retired (the readers must have stopped), then the registry. */
void cdn_epoch_free(cdn_epoch_t *e);

void cdn_epoch_enter(cdn_epoch_t *e, unsigned reader);
void cdn_epoch_leave(cdn_epoch_t *e, unsigned reader);

/* Hands p to the registry: free_fn(p) runs in a later cdn_epoch_reclaim, once it is safe.
 * 0, or -1 when out of memory (then nothing was taken: the caller still owns p). */
int cdn_epoch_retire(cdn_epoch_t *e, void *p, void (*free_fn)(void *p));
/* Frees what is safe now; returns how many objects still wait. */
size_t cdn_epoch_reclaim(cdn_epoch_t *e);

#endif
