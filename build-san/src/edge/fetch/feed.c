/* edge/fetch/feed.c - a fetch shared across worker threads; the rules are in feed.h. */
#include "config.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "edge/fetch/feed.h"
#include "edge/store/idmap.h"

#define SHARDS 64

static struct shard {
    pthread_mutex_t mu;
    struct edge_idmap map;
    int init;
} shards[SHARDS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_shards(void)
{
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&shards[i].mu, NULL);
        shards[i].init = edge_idmap_init(&shards[i].map, 64) == 0;
    }
}

static struct shard *shard_of(uint64_t id)
{
    pthread_once(&once, init_shards);
    return &shards[(id ^ (id >> 29)) % SHARDS];
}

struct edge_feed *edge_feed_new(uint64_t id, const char *key, size_t key_len, int conditional)
{
    struct edge_feed *fd = calloc(1, sizeof(*fd));
    if (fd == NULL || (fd->key = malloc(key_len + 1)) == NULL) {
        free(fd);
        return NULL;
    }
    pthread_mutex_init(&fd->mu, NULL);
    fd->refs = 1;
    fd->id = id;
    memcpy(fd->key, key, key_len);
    fd->key[key_len] = '\0';
    fd->key_len = key_len;
    fd->conditional = conditional;
    h2o_linklist_init_anchor(&fd->subs);
    return fd;
}

void edge_feed_ref(struct edge_feed *fd)
{
    pthread_mutex_lock(&fd->mu);
    assert(fd->refs > 0); /* a feed nobody holds is gone */
    fd->refs++;
    pthread_mutex_unlock(&fd->mu);
}

int edge_feed_infos(struct edge_feed *fd, struct edge_feed_info *out)
{
    pthread_mutex_lock(&fd->mu);
    assert(fd->refs > 0);
    int n = fd->ninfos;
    memcpy(out, fd->infos, sizeof(fd->infos));
    pthread_mutex_unlock(&fd->mu);
    return n;
}

int edge_feed_snapshot(struct edge_feed *fd, int want_head, char ***chunks, size_t *cap, struct edge_feed_view *v)
{
    int ok = 0;
    memset(v, 0, sizeof(*v));
    pthread_mutex_lock(&fd->mu);
    assert(fd->refs > 0);
    fd->refs++; /* the head and the infos stay valid until edge_feed_release */
    v->head = want_head && fd->head_done;
    v->status = fd->status;
    v->store = fd->store;
    v->hdrs = fd->hdrs;
    v->nhdrs = fd->nhdrs;
    if (v->head && fd->final_key != NULL && (v->final_key = malloc(fd->final_key_len + 1)) != NULL) {
        memcpy(v->final_key, fd->final_key, fd->final_key_len + 1);
        v->final_key_len = fd->final_key_len;
    }
    if (fd->nchunks > *cap) {
        char **a = realloc(*chunks, fd->nchunks * sizeof(*a));
        if (a != NULL) {
            *chunks = a;
            *cap = fd->nchunks;
        } else {
            ok = -1;
        }
    }
    if (ok == 0) {
        for (size_t i = 0; i < fd->nchunks; i++)
            (*chunks)[i] = fd->chunks[i]; /* chunks never move: the pointers stay good */
        v->nchunks = fd->nchunks;
        v->total = fd->total;
    }
    v->done = fd->done;
    v->failed = fd->failed;
    v->err_kind = fd->err_kind;
    memcpy(v->err, fd->err, sizeof(v->err));
    v->ninfos = fd->ninfos;
    memcpy(v->infos, fd->infos, sizeof(v->infos));
    pthread_mutex_unlock(&fd->mu);
    return ok;
}

void edge_feed_release(struct edge_feed *fd)
{
    if (fd == NULL)
        return;
    pthread_mutex_lock(&fd->mu);
    assert(fd->refs > 0); /* released more often than taken */
    int left = --fd->refs;
    pthread_mutex_unlock(&fd->mu);
    if (left > 0)
        return;
    for (size_t i = 0; i < fd->nchunks; i++)
        free(fd->chunks[i]);
    free(fd->chunks);
    free(fd->hdrs);
    free(fd->harena);
    for (int i = 0; i < fd->ninfos; i++) {
        free(fd->infos[i].hdrs);
        free(fd->infos[i].arena);
    }
    free(fd->final_key);
    free(fd->key);
    pthread_mutex_destroy(&fd->mu);
    free(fd);
}

int edge_feed_list(struct edge_feed *fd)
{
    struct shard *s = shard_of(fd->id);
    uint64_t v;
    int r = -1;
    pthread_mutex_lock(&s->mu);
    if (s->init && !edge_idmap_get(&s->map, fd->id, &v) && edge_idmap_put(&s->map, fd->id, (uint64_t)(uintptr_t)fd) == 0) {
        fd->listed = 1;
        r = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void edge_feed_unlist(struct edge_feed *fd)
{
    if (fd == NULL)
        return;
    struct shard *s = shard_of(fd->id);
    pthread_mutex_lock(&s->mu);
    if (fd->listed) {
        edge_idmap_del(&s->map, fd->id);
        fd->listed = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

int edge_feed_busy(uint64_t id)
{
    struct shard *s = shard_of(id);
    uint64_t v;
    pthread_mutex_lock(&s->mu);
    int r = s->init && edge_idmap_get(&s->map, id, &v);
    pthread_mutex_unlock(&s->mu);
    return r;
}

int edge_feed_followed(struct edge_feed *fd)
{
    if (fd == NULL)
        return 0;
    int r = 0;
    pthread_mutex_lock(&fd->mu);
    for (h2o_linklist_t *n = fd->subs.next; n != &fd->subs && !r; n = n->next)
        r = !H2O_STRUCT_FROM_MEMBER(struct edge_feed_sub, link, n)->dead;
    pthread_mutex_unlock(&fd->mu);
    return r;
}

/* under fd->mu */
static void wake(struct edge_feed *fd)
{
    for (h2o_linklist_t *n = fd->subs.next; n != &fd->subs; n = n->next) {
        struct edge_feed_sub *sub = H2O_STRUCT_FROM_MEMBER(struct edge_feed_sub, link, n);
        if (!sub->queued && !sub->dead) {
            sub->queued = 1;
            h2o_multithread_send_message(sub->recv, &sub->super);
        }
    }
}

/* A copy of headers h in one arena (*arena) and one array (returned); NULL if out of memory. */
static struct cdn_httpc_header *copy_headers(const struct cdn_httpc_header *h, size_t n, char **arena)
{
    size_t sz = 1;
    for (size_t i = 0; i < n; i++)
        sz += h[i].name_len + h[i].value_len;
    struct cdn_httpc_header *hd = calloc(n ? n : 1, sizeof(*hd));
    char *a = malloc(sz);
    if (hd == NULL || a == NULL) {
        free(hd);
        free(a);
        return NULL;
    }
    char *p = a;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, h[i].name, h[i].name_len);
        hd[i].name = p;
        hd[i].name_len = h[i].name_len;
        p += h[i].name_len;
        memcpy(p, h[i].value, h[i].value_len);
        hd[i].value = p;
        hd[i].value_len = h[i].value_len;
        p += h[i].value_len;
    }
    *arena = a;
    return hd;
}

void edge_feed_info(struct edge_feed *fd, int status, const struct cdn_httpc_header *h, size_t n)
{
    char *arena;
    struct cdn_httpc_header *hd = copy_headers(h, n, &arena);
    if (hd == NULL)
        return; /* a hint lost, nothing more */
    pthread_mutex_lock(&fd->mu);
    if (fd->ninfos < EDGE_FEED_MAX_INFOS && !fd->head_done) {
        fd->infos[fd->ninfos++] = (struct edge_feed_info){status, hd, n, arena};
        hd = NULL;
        wake(fd);
    }
    pthread_mutex_unlock(&fd->mu);
    if (hd != NULL) {
        free(hd);
        free(arena);
    }
}

int edge_feed_head(struct edge_feed *fd, int status, const struct cdn_httpc_header *h, size_t n, int store,
                   const char *final_key, size_t final_key_len)
{
    char *arena;
    struct cdn_httpc_header *hd = copy_headers(h, n, &arena);
    if (hd == NULL)
        return -1;
    char *fk = malloc(final_key_len + 1);
    if (fk == NULL) {
        free(hd);
        free(arena);
        return -1;
    }
    memcpy(fk, final_key, final_key_len);
    fk[final_key_len] = '\0';
    pthread_mutex_lock(&fd->mu);
    fd->hdrs = hd;
    fd->harena = arena;
    fd->nhdrs = n;
    fd->status = status;
    fd->store = store;
    fd->final_key = fk;
    fd->final_key_len = final_key_len;
    fd->head_done = 1;
    wake(fd);
    pthread_mutex_unlock(&fd->mu);
    return 0;
}

void edge_feed_body(struct edge_feed *fd, char *const *chunks, size_t nchunks, uint64_t total)
{
    pthread_mutex_lock(&fd->mu);
    if (nchunks > fd->cap) {
        size_t nc = fd->cap ? fd->cap : 8;
        while (nc < nchunks)
            nc *= 2;
        char **a = realloc(fd->chunks, nc * sizeof(*a));
        if (a == NULL) {
            /* cannot take them: the subscribers see a failed transfer */
            fd->done = fd->failed = 1;
            snprintf(fd->err, sizeof(fd->err), "out of memory");
            wake(fd);
            pthread_mutex_unlock(&fd->mu);
            return;
        }
        fd->chunks = a;
        fd->cap = nc;
    }
    for (size_t i = fd->nchunks; i < nchunks; i++)
        fd->chunks[i] = chunks[i];
    fd->nchunks = nchunks;
    fd->total = total;
    wake(fd);
    pthread_mutex_unlock(&fd->mu);
}

void edge_feed_done(struct edge_feed *fd, enum cdn_httpc_error kind, const char *errstr, int no_response)
{
    pthread_mutex_lock(&fd->mu);
    if (!fd->done) {
        fd->done = 1;
        fd->failed = errstr != NULL;
        fd->err_kind = errstr != NULL ? kind : CDN_HTTPC_OK;
        fd->no_response = no_response;
        snprintf(fd->err, sizeof(fd->err), "%s", errstr ? errstr : "");
        wake(fd);
    }
    pthread_mutex_unlock(&fd->mu);
}

struct edge_feed_sub *edge_feed_join(uint64_t id, const char *key, size_t key_len, int have_stale,
                                     h2o_multithread_receiver_t *recv, void *mirror)
{
    struct shard *s = shard_of(id);
    struct edge_feed_sub *sub = calloc(1, sizeof(*sub));
    if (sub == NULL)
        return NULL;
    uint64_t v;
    int ok = 0;
    pthread_mutex_lock(&s->mu);
    if (s->init && edge_idmap_get(&s->map, id, &v)) {
        struct edge_feed *fd = (struct edge_feed *)(uintptr_t)v;
        pthread_mutex_lock(&fd->mu);
        if (fd->key_len == key_len && memcmp(fd->key, key, key_len) == 0 && !fd->done &&
            (!fd->head_done || fd->store) && (!fd->conditional || have_stale)) {
            fd->refs++;
            sub->feed = fd;
            sub->recv = recv;
            sub->mirror = mirror;
            h2o_linklist_insert(&fd->subs, &sub->link);
            ok = 1;
        }
        pthread_mutex_unlock(&fd->mu);
    }
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        free(sub);
        return NULL;
    }
    return sub;
}

void edge_feed_leave(struct edge_feed_sub *sub)
{
    struct edge_feed *fd = sub->feed;
    pthread_mutex_lock(&fd->mu);
    sub->dead = 1;
    int free_now = !sub->queued;
    if (free_now)
        h2o_linklist_unlink(&sub->link);
    pthread_mutex_unlock(&fd->mu);
    if (free_now) {
        free(sub);
        edge_feed_release(fd);
    }
}

struct edge_feed_sub *edge_feed_take(h2o_multithread_message_t *m)
{
    struct edge_feed_sub *sub = (struct edge_feed_sub *)m;
    struct edge_feed *fd = sub->feed;
    pthread_mutex_lock(&fd->mu);
    h2o_linklist_unlink(&m->link);
    sub->queued = 0;
    int dead = sub->dead;
    if (dead)
        h2o_linklist_unlink(&sub->link);
    pthread_mutex_unlock(&fd->mu);
    if (dead) {
        free(sub);
        edge_feed_release(fd);
        return NULL;
    }
    return sub;
}
