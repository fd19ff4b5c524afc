/* edge/fetch/mirror.c - mirrors: this worker's view of a fetch another worker owns (feed.h). */
#include "config.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edge/req/req.h"
#include "edge/store/tier_ram.h"

/* A mirror stops reading its feed (its thread). */
void fetch_mirror_leave(struct fetch *f)
{
    if (f->sub != NULL) {
        edge_feed_leave(f->sub);
        f->sub = NULL;
    }
}

/* Brings the mirror up to date with its feed: the interim responses, the head, the body so far,
 * the end. */
void fetch_mirror_sync(struct fetch *f)
{
    if (f->sub == NULL || fetch_is_over(f))
        return;
    struct edge_feed *fd = f->sub->feed;
    struct edge_feed_view v;
    f->refs++;
    int ok = edge_feed_snapshot(fd, !fetch_has_head(f), &f->chunks, &f->cap_chunks, &v) == 0;
    f->feed_store = v.store;
    for (; f->infos_seen < v.ninfos; f->infos_seen++)
        if (!fetch_has_head(f))
            fetch_on_info(NULL, v.infos[f->infos_seen].status, v.infos[f->infos_seen].hdrs,
                          v.infos[f->infos_seen].nhdrs, f);
    int r = !ok;
    f->in_cb = 1;
    if (!r && v.head) {
        if (v.final_key != NULL) {
            free(f->key);
            f->key = v.final_key;
            f->key_len = v.final_key_len;
            v.final_key = NULL;
        }
        r = fetch_resp_head(NULL, v.status, 11, v.hdrs, v.nhdrs, f) || fetch_unwanted(f);
    }
    free(v.final_key);
    if (!r && v.total > f->total) {
        f->nchunks = v.nchunks;
        f->total = v.total;
        f->last_len = (size_t)(v.total - (uint64_t)(v.nchunks - 1) * CHUNK);
        fetch_grew(f);
        r = fetch_unwanted(f);
    }
    f->in_cb = 0;
    if (r)
        fetch_end(f, ok ? CDN_HTTPC_ABORTED : CDN_HTTPC_INTERNAL, ok ? "aborted" : "out of memory");
    else if (v.done)
        fetch_end(f, v.failed ? v.err_kind : CDN_HTTPC_OK, v.failed ? v.err : NULL);
    fetch_release(f);
    edge_feed_release(fd);
}

void fetch_on_feed_message(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        struct edge_feed_sub *sub = edge_feed_take(m);
        if (sub != NULL)
            fetch_mirror_sync(sub->mirror);
    }
}

/* Joins another worker's fetch for c's key through a mirror fetch on this worker; 1 if joined. */
int fetch_mirror_join(struct creq *c, struct edge_obj *stale, int stale_if_error)
{
    struct edge_worker *w = c->w;
    struct fetch *f = fetch_new(c, stale, stale_if_error);
    if (f == NULL)
        return 0;
    if ((f->sub = edge_feed_join(f->id, c->key, c->key_len, stale != NULL, &w->recv, f)) == NULL) {
        f->magic = 0;
        edge_obj_release(f->stale);
        free(f->key);
        free(f);
        return 0;
    }
    f->held = f->sub->feed;
    edge_feed_ref(f->held);
    f->refs = 1; /* the subscription */
    f->collapsible = 1;
    f->mirror = 1;
    if (edge_idmap_put(&w->fetches, f->id, (uint64_t)(uintptr_t)f) == 0)
        f->in_table = 1;
    fetch_add_waiter(f, c);
    cdn_counter_inc(w->srv->m_collapsed);
    cdn_counter_inc(w->srv->m_mirror);
    fetch_mirror_sync(f); /* what is there already */
    fetch_fb_arm(f);      /* its clients hold a stale copy: the first-byte deadline, here too */
    return 1;
}


/* A client that joins a fetch before its head gets the interim responses that came already (the
 * feed keeps them: the owner's, or the one a mirror follows). */
void fetch_replay_infos(struct creq *c, struct fetch *f)
{
    struct edge_feed *fd = f->feed != NULL ? f->feed : f->sub != NULL ? f->sub->feed : NULL;
    if (fd == NULL || fetch_has_head(f))
        return;
    struct edge_feed_info infos[EDGE_FEED_MAX_INFOS];
    edge_feed_ref(fd); /* the infos' headers stay valid while we send them */
    int n = edge_feed_infos(fd, infos);
    for (int i = 0; i < n && (!f->mirror || i < f->infos_seen); i++)
        req_deliver_info(c, infos[i].status, infos[i].hdrs, infos[i].nhdrs);
    edge_feed_release(fd);
}
