/* edge/fetch/mirror.c - mirrors: this worker's view of a fetch another worker owns (feed.h). */
#include "config.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edge/req/req.h"
#include "edge/tier_ram.h"

/* A mirror stops reading its feed (its thread). */
void fetch_mirror_leave(struct fetch *f)
{
    if (f->sub != NULL) {
        edge_feed_leave(f->sub);
        f->sub = NULL;
    }
}

/* --- mirrors: this worker's view of a fetch another worker owns (feed.h) --- */
void fetch_mirror_sync(struct fetch *f)
{
    if (f->sub == NULL || fetch_is_over(f))
        return;
    struct edge_feed *fd = f->sub->feed;
    char err[sizeof(fd->err)], *fk = NULL;
    size_t fkl = 0;
    int ok = 1;
    f->refs++;
    pthread_mutex_lock(&fd->mu);
    fd->refs++; /* the headers stay valid while we use them */
    int head = fd->head_done && !fetch_has_head(f), status = fd->status;
    const struct cdn_httpc_header *hh = fd->hdrs;
    size_t nh = fd->nhdrs;
    f->feed_store = fd->store;
    if (head && fd->final_key != NULL && (fk = malloc(fd->final_key_len + 1)) != NULL) {
        memcpy(fk, fd->final_key, fd->final_key_len + 1);
        fkl = fd->final_key_len;
    }
    if (fd->nchunks > f->cap_chunks) {
        char **a = realloc(f->chunks, fd->nchunks * sizeof(*a));
        if (a != NULL) {
            f->chunks = a;
            f->cap_chunks = fd->nchunks;
        } else {
            ok = 0;
        }
    }
    size_t nch = f->nchunks;
    uint64_t total = f->total;
    if (ok) {
        for (size_t i = f->nchunks; i < fd->nchunks; i++)
            f->chunks[i] = fd->chunks[i];
        nch = fd->nchunks;
        total = fd->total;
    }
    int done = fd->done, failed = fd->failed;
    memcpy(err, fd->err, sizeof(err));
    /* interim responses published so far: they never change, and our fd reference keeps them */
    struct edge_feed_info infos[EDGE_FEED_MAX_INFOS];
    int ninfos = fd->ninfos;
    memcpy(infos, fd->infos, sizeof(infos));
    pthread_mutex_unlock(&fd->mu);

    for (; f->infos_seen < ninfos; f->infos_seen++)
        if (!fetch_has_head(f))
            fetch_on_info(NULL, infos[f->infos_seen].status, infos[f->infos_seen].hdrs, infos[f->infos_seen].nhdrs, f);
    int r = !ok;
    f->in_cb = 1;
    if (!r && head) {
        if (fk != NULL) {
            free(f->key);
            f->key = fk;
            f->key_len = fkl;
            fk = NULL;
        }
        r = fetch_resp_head(NULL, status, 11, hh, nh, f) || fetch_unwanted(f);
    }
    free(fk);
    if (!r && total > f->total) {
        f->nchunks = nch;
        f->total = total;
        f->last_len = (size_t)(total - (uint64_t)(nch - 1) * CHUNK);
        fetch_grew(f);
        r = fetch_unwanted(f);
    }
    f->in_cb = 0;
    if (r)
        fetch_on_done(NULL, ok ? "aborted" : "out of memory", f);
    else if (done)
        fetch_on_done(NULL, failed ? err : NULL, f);
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
    uint64_t id = edge_key_id(c->key, c->key_len);
    struct fetch *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->key = malloc(c->key_len + 1)) == NULL) {
        free(f);
        return 0;
    }
    if ((f->sub = edge_feed_join(id, c->key, c->key_len, stale != NULL, &w->recv, f)) == NULL) {
        free(f->key);
        free(f);
        return 0;
    }
    f->held = f->sub->feed;
    pthread_mutex_lock(&f->held->mu);
    f->held->refs++;
    pthread_mutex_unlock(&f->held->mu);
    f->magic = FETCH_MAGIC;
    f->w = w;
    f->refs = 1; /* the subscription */
    f->collapsible = 1;
    f->mirror = 1;
    memcpy(f->key, c->key, c->key_len);
    f->key[c->key_len] = '\0';
    f->key_len = c->key_len;
    f->pkey_len = c->pkey_len;
    f->id = id;
    h2o_linklist_init_anchor(&f->waiters);
    f->stale = stale ? edge_obj_ref(stale) : NULL;
    f->stale_if_error = stale_if_error;
    f->req_time = now_s();
    f->rq = c->rq;
    f->t0 = mono();
    f->vh = c->vh;
    f->parent = -1;
    f->result = -1;
    if (edge_idmap_put(&w->fetches, f->id, (uint64_t)(uintptr_t)f) == 0)
        f->in_table = 1;
    f->refs++;
    c->f = f;
    h2o_linklist_insert(&f->waiters, &c->link);
    cdn_counter_inc(w->srv->m_collapsed);
    cdn_counter_inc(w->srv->m_mirror);
    fetch_mirror_sync(f); /* what is there already */
    return 1;
}

/* --- the tier walk --- */
/* A client that joins a fetch before its head gets the interim responses that came already (the
 * feed keeps them: the owner's, or the one a mirror follows). */
void fetch_replay_infos(struct creq *c, struct fetch *f)
{
    struct edge_feed *fd = f->feed != NULL ? f->feed : f->sub != NULL ? f->sub->feed : NULL;
    if (fd == NULL || fetch_has_head(f))
        return;
    pthread_mutex_lock(&fd->mu);
    fd->refs++;
    struct edge_feed_info infos[EDGE_FEED_MAX_INFOS];
    int n = fd->ninfos;
    memcpy(infos, fd->infos, sizeof(infos));
    pthread_mutex_unlock(&fd->mu);
    for (int i = 0; i < n && (!f->mirror || i < f->infos_seen); i++)
        req_deliver_info(c, infos[i].status, infos[i].hdrs, infos[i].nhdrs);
    edge_feed_release(fd);
}
