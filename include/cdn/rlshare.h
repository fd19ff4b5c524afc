/* cdn/rlshare.h - GCRA limits shared through Redis by several processes (shop-lb instances that
 * serve one API), on an h2o loop, with the local table of cdn/ratelimit.h as the fallback.
 *
 * A key's state is one Redis string, its theoretical arrival time in microseconds of Redis's own
 * clock, expiring when the key's bucket is full again. One Lua script per request (EVALSHA; the
 * script is loaded on every new connection before any request is sent on it) reads Redis's TIME,
 * applies GCRA exactly as lib/ratelimit.c does and writes the new TAT: atomic on the server, so
 * every instance sees one sequence, and no clock of ours has to agree with another's. Keys are
 * "PREFIX" + the SHA-256 (hex, 32 chars) of the caller's key: tokens never reach Redis in clear.
 *
 * Fallback: while the connection is down (or not yet up) a request is decided at once by the local
 * table; while it is up but a reply takes longer than timeout_ms, by the local table when the
 * timeout fires (the late reply is dropped; it was counted in Redis all the same). Every decision
 * says which it was (enum cdn_rlshare_by). A lost connection is retried every
 * second.
 *
 * Owns: the hiredis async context (hiredis 0.14.1; its events go through cdn_watch on the loop),
 * one check in flight per request (freed by hiredis's reply callback, which hiredis calls exactly
 * once, with NULL when the connection goes). Threads: one per loop (worker); every call on the
 * loop's thread. The local table may be shared by all workers (it is thread-safe). */
#ifndef CDN_RLSHARE_H
#define CDN_RLSHARE_H

#include <stdint.h>

#include <h2o.h>

#include "cdn/ratelimit.h"

typedef struct cdn_rlshare cdn_rlshare_t;
typedef struct cdn_rlshare_check cdn_rlshare_check_t;

/* Who decided: Redis, or the local table because there was no connection, no answer in time, or
 * an error for an answer. */
enum cdn_rlshare_by { CDN_RLSHARE_REDIS, CDN_RLSHARE_LOCAL_DOWN, CDN_RLSHARE_LOCAL_TIMEOUT, CDN_RLSHARE_LOCAL_ERROR };
extern const char *const cdn_rlshare_by_names[]; /* "redis", "local-down", "local-timeout", "local-error" */

/* The decision: res as cdn_rl_check fills it. */
typedef void (*cdn_rlshare_cb)(void *data, const struct cdn_rl_result *res, enum cdn_rlshare_by by);

/* url: redis://HOST:PORT (HOST an IPv4 address or a name; PORT default 6379). prefix: the start of
 * every key (e.g. "shop-lb:rl:"). local: the fallback table (not owned). NULL with a reason in err
 * on a bad URL or no memory; an unreachable server is not an error (the fallback decides until it
 * answers). */
cdn_rlshare_t *cdn_rlshare_new(h2o_evloop_t *loop, const char *url, const char *prefix, uint64_t timeout_ms,
                               cdn_rl_t *local, char *err, size_t errlen);
/* Pending checks are decided by the local table first (their callbacks run). */
void cdn_rlshare_free(cdn_rlshare_t *s);

/* Decides one request of key[0..len) under r. The callback runs exactly once: inside this call
 * (not connected: returns NULL), or later from the loop (returns a handle). */
cdn_rlshare_check_t *cdn_rlshare_check(cdn_rlshare_t *s, const void *key, size_t len, const struct cdn_rl_rate *r,
                                       cdn_rlshare_cb cb, void *data);
/* The caller no longer wants the decision (its request went away): its callback will not run. */
void cdn_rlshare_cancel(cdn_rlshare_check_t *q);

/* 1 while connected to Redis (any thread may ask). */
int cdn_rlshare_up(const cdn_rlshare_t *s);

#endif
