/* edge/purge/bus.h - the purge bus: one Redis stream of purge commands (edge/purge/cmd.h), one
 * consumer group per edge, so that every edge gets every command (fan-out), resumes from its
 * group's position after a restart and misses nothing.
 *
 * Owns: two threads per edge, each with a blocking hiredis context (hiredis 0.14 has no h2o
 * adapter; threads keep the workers' loops free of Redis, and a purge of 100k objects runs here,
 * not on a worker): the reader, whose only wait is XREADGROUP, and the keeper (lag, retries). They
 * apply commands to the store themselves (the store is thread-safe).
 *
 * Protocol (docs/EDGE.md "Purge bus"):
 *   stream STREAM           entries {cmd: TEXT, t: publish time (unix ms), by: WHO}
 *   group  NAME on STREAM   created with `$` (a new edge has nothing older to purge); a BUSYGROUP
 *                           error means it exists: the edge resumes from its position
 *   ack    STREAM:acks      {id, edge, t_apply (ms), n (objects), lat_ms (publish -> applied)}
 *   dead   STREAM:dead      {id, edge, cmd, reason, deliveries}
 * At start the thread reads its pending entries (delivered, not acked: it died mid-apply), then
 * every new one (">") without blocking until none is left: then the edge is caught up. Then it
 * blocks on XREADGROUP. An entry that fails to apply is left pending; XAUTOCLAIM takes it again
 * once it has been idle retry_after ms, and after max_deliveries deliveries it goes to the dead
 * stream (with the reason) and is acked.
 *
 * Threads: edge_bus_start / edge_bus_wait_ready / edge_bus_stop on the main thread; the rest on
 * the bus thread. State the workers read (ready) is atomic. */
#ifndef EDGE_PURGE_BUS_H
#define EDGE_PURGE_BUS_H

#include <stdint.h>

#include "cdn/metrics.h"
#include "edge/http/cache_key.h"
#include "edge/store/store.h"

struct edge_bus_conf {
    const char *redis;           /* redis://HOST:PORT; NULL: no bus */
    const char *stream;          /* default "cdn:purge" */
    const char *name;            /* the group and consumer name; default the edge's name */
    int serve_early;             /* start: serve (1), or wait until caught up (0, the default) */
    uint64_t retry_after_ms;     /* a pending entry is claimed again after this idle time (5000) */
    unsigned max_deliveries;     /* then dead-lettered (5) */
    uint64_t block_ms;           /* XREADGROUP BLOCK (30000) */
    const char *auth_file;       /* Redis password (AUTH), first line of the file; NULL: none */
};

struct edge_bus;

/* Starts the thread (it connects, creates the group and catches up on its own). NULL with err. */
struct edge_bus *edge_bus_start(const struct edge_bus_conf *c, struct edge_store *store,
                                const struct edge_key_conf *kc, cdn_metrics_t *m, char *err, size_t errlen);
/* 1 once the backlog was applied (caught up once since start). */
int edge_bus_ready(const struct edge_bus *b);
/* Waits until caught up, or until SIGTERM/SIGINT arrives (they are blocked: taken with
 * sigtimedwait). 0 when caught up, -1 when a signal asked to stop. Logs while it waits. */
int edge_bus_wait_ready(struct edge_bus *b);
/* Stops and joins the thread. NULL is fine. */
void edge_bus_stop(struct edge_bus *b);

#endif
