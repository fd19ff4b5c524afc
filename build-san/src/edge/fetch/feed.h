/* edge/fetch/feed.h - one origin fetch shared across worker threads (cross-thread request collapsing).
 *
 * The worker that starts a cacheable fetch (the owner) publishes it in a process-wide table keyed
 * by cache key: a sharded hash map, one mutex per shard. A worker with a miss for the same key on
 * another thread subscribes instead of fetching: it gets a "mirror" fetch on its own loop, fed
 * from the owner's response.
 *
 * Rules:
 * - The owner alone writes a feed (head, body chunks, done), always under feed->mu, and then
 *   wakes each subscriber's worker with h2o_multithread_send_message (one message per
 *   subscription, re-sent only after the receiver took it: `queued`). Subscribers read under
 *   feed->mu and never touch the owner's objects; the owner never touches theirs.
 * - Body chunks (64 KiB) never move and are freed with the feed; bytes below `total` never change,
 *   so a subscriber keeps using chunk pointers outside the lock.
 * - refs (under mu): the owner's fetch holds one, each live subscription one. A subscription is
 *   freed by its subscriber's thread only, and only when it is not queued (a queued one is freed
 *   when its message arrives).
 * - The table lists a feed while new subscribers may join (before the head, or while storable). */
#ifndef EDGE_FEED_H
#define EDGE_FEED_H

#include <pthread.h>
#include <stdint.h>
#include <h2o.h>
#include <h2o/multithread.h>

#include "cdn/httpc.h"

#define EDGE_FEED_MAX_INFOS 4 /* interim responses passed on per fetch (more are dropped) */

struct edge_feed {
    pthread_mutex_t mu;
    int refs;
    uint64_t id;
    char *key;            /* the key it was listed under (immutable) */
    size_t key_len;
    int listed;           /* under the shard lock */
    int conditional;      /* a revalidation: only a subscriber holding a stale copy may join */
    /* published by the owner */
    int head_done, status, store;
    struct cdn_httpc_header *hdrs;
    size_t nhdrs;
    char *harena;
    char *final_key;      /* the key the response is stored under (a Vary variant) */
    size_t final_key_len;
    char **chunks;
    size_t nchunks, cap;
    uint64_t total;
    int done, failed, no_response;
    enum cdn_httpc_error err_kind; /* what ended it (failed) */
    char err[160];
    h2o_linklist_t subs;
    /* interim (1xx) responses before the head, in order; never change once published */
    struct edge_feed_info {
        int status;
        struct cdn_httpc_header *hdrs;
        size_t nhdrs;
        char *arena;
    } infos[EDGE_FEED_MAX_INFOS];
    int ninfos;
};

struct edge_feed_sub {
    h2o_multithread_message_t super;
    struct edge_feed *feed;
    h2o_multithread_receiver_t *recv;
    void *mirror;         /* the subscriber's fetch (its thread only) */
    h2o_linklist_t link;  /* in feed->subs */
    int queued, dead;
};

/* A feed for the owner (refs 1), or NULL. */
struct edge_feed *edge_feed_new(uint64_t id, const char *key, size_t key_len, int conditional);
void edge_feed_release(struct edge_feed *fd);
/* One more reference (a holder that is not a subscription). */
void edge_feed_ref(struct edge_feed *fd);
/* The interim responses published so far, copied into out (EDGE_FEED_MAX_INFOS); their headers
 * stay valid while the caller holds a reference. Returns how many. */
int edge_feed_infos(struct edge_feed *fd, struct edge_feed_info *out);

/* What a subscriber reads of a feed, copied under its lock by edge_feed_snapshot. */
struct edge_feed_view {
    int head;                      /* the head is published (and was asked for) */
    int status, store;
    const struct cdn_httpc_header *hdrs; /* valid until the snapshot's reference is released */
    size_t nhdrs;
    char *final_key;               /* malloc'd copy (the caller frees it), or NULL */
    size_t final_key_len;
    size_t nchunks;                /* chunk pointers copied into the caller's array */
    uint64_t total;
    int done, failed;
    enum cdn_httpc_error err_kind;
    char err[160];
    struct edge_feed_info infos[EDGE_FEED_MAX_INFOS];
    int ninfos;
};
/* Copies the feed's state into v and every chunk pointer into *chunks (grown with realloc; *cap
 * its size), and takes a reference that keeps the head and infos valid: release it with
 * edge_feed_release. -1 (chunks not copied, v->nchunks 0) when the array cannot grow. */
int edge_feed_snapshot(struct edge_feed *fd, int want_head, char ***chunks, size_t *cap, struct edge_feed_view *v);
/* Lists it for others to join: 0, or -1 if another feed holds the id. */
int edge_feed_list(struct edge_feed *fd);
void edge_feed_unlist(struct edge_feed *fd);
/* 1 if a feed is listed for this id. */
int edge_feed_busy(uint64_t id);
/* 1 if another worker follows fd (a live subscription); 0 for NULL. */
int edge_feed_followed(struct edge_feed *fd);

/* Owner side. Each publishes and wakes the subscribers. */
int edge_feed_head(struct edge_feed *fd, int status, const struct cdn_httpc_header *h, size_t n, int store,
                   const char *final_key, size_t final_key_len);
/* An interim response (103...) before the head, for the subscribers to pass on. */
void edge_feed_info(struct edge_feed *fd, int status, const struct cdn_httpc_header *h, size_t n);
/* The owner's chunks so far (pointers are taken over: the feed frees the chunks). */
void edge_feed_body(struct edge_feed *fd, char *const *chunks, size_t nchunks, uint64_t total);
void edge_feed_done(struct edge_feed *fd, enum cdn_httpc_error kind, const char *errstr, int no_response);

/* Subscriber side: joins the listed feed for key (if any and joinable); NULL otherwise. */
struct edge_feed_sub *edge_feed_join(uint64_t id, const char *key, size_t key_len, int have_stale,
                                     h2o_multithread_receiver_t *recv, void *mirror);
/* Ends a subscription (subscriber's thread). */
void edge_feed_leave(struct edge_feed_sub *sub);
/* The receiver callback's part: takes one message; returns the sub to sync, or NULL if it was
 * left already (then it is freed here). */
struct edge_feed_sub *edge_feed_take(h2o_multithread_message_t *m);

#endif
