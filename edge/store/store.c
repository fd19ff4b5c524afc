/* edge/store/store.c - the tier walk, Vary specs and tag index (see store.h).
 *
 * Rules: `mu` guards the Vary map, the tag index and the disk admission filter only; the tiers
 * lock themselves (mu is never held while calling into a tier). A tag maps to
 * a list of object ids (the URL's primary key is an implicit tag, so purging a URL removes all
 * its variants). Lists may hold ids already evicted; deleting those is a no-op. */
#include "config.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"
#include "edge/store/idmap.h"
#include "edge/store/store.h"
#include "edge/store/tier_ram.h"
#include "edge/store/tier_rdb.h"

struct idlist {
    uint64_t *ids;
    size_t n, cap;
};

struct edge_store {
    struct edge_ram *ram;
    struct edge_rdb *rdb;
    pthread_mutex_t mu;
    struct edge_admit *admit; /* disk admission (under mu) */
    uint64_t disk_bytes;      /* the disk tier's capacity */
    struct edge_idmap vary; /* hash(pkey) -> char * (normalised Vary list) */
    struct edge_idmap tags; /* hash("t:" tag) or hash("u:" pkey) -> struct idlist * */
};

/* The process's random hash: the tag index lives in RAM only (rebuilt from the tiers at start). */
static uint64_t tag_id(char kind, const char *s, size_t n)
{
    uint64_t h = cdn_hash(s, n) ^ ((uint64_t)(unsigned char)kind * 0x9E3779B97F4A7C15ULL);
    return h ? h : 1;
}

static void tag_add(struct edge_store *s, uint64_t tid, uint64_t id)
{
    uint64_t v;
    struct idlist *l;
    if (edge_idmap_get(&s->tags, tid, &v)) {
        l = (struct idlist *)(uintptr_t)v;
    } else {
        if ((l = calloc(1, sizeof(*l))) == NULL || edge_idmap_put(&s->tags, tid, (uint64_t)(uintptr_t)l) < 0) {
            free(l);
            return;
        }
    }
    for (size_t i = l->n > 16 ? l->n - 16 : 0; i < l->n; i++)
        if (l->ids[i] == id)
            return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        uint64_t *ni = realloc(l->ids, nc * sizeof(*ni));
        if (ni == NULL)
            return;
        l->ids = ni;
        l->cap = nc;
    }
    l->ids[l->n++] = id;
}

/* Records the Vary spec and tags of an object; called on put and for each object at start. */
static void index_obj(struct edge_store *s, const struct edge_obj *o)
{
    uint64_t id = edge_key_id(o->key, o->key_len);
    pthread_mutex_lock(&s->mu);
    uint64_t pid = edge_key_id(o->key, o->pkey_len), v;
    if (o->vary_len > 0) {
        char *old = NULL;
        if (edge_idmap_get(&s->vary, pid, &v))
            old = (char *)(uintptr_t)v;
        if (old == NULL || strcmp(old, o->vary) != 0) {
            char *nv = strdup(o->vary);
            if (nv && edge_idmap_put(&s->vary, pid, (uint64_t)(uintptr_t)nv) == 0)
                free(old);
            else
                free(nv);
        }
    } else if (edge_idmap_get(&s->vary, pid, &v)) {
        edge_idmap_del(&s->vary, pid);
        free((char *)(uintptr_t)v);
    }
    tag_add(s, tag_id('u', o->key, o->pkey_len), id);
    const char *p = o->tags, *end = o->tags + o->tags_len;
    while (p < end) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *e = sp ? sp : end;
        if (e > p)
            tag_add(s, tag_id('t', p, (size_t)(e - p)), id);
        p = sp ? sp + 1 : end;
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_scan(const struct edge_obj *meta, void *data) { index_obj(data, meta); }

struct edge_store *edge_store_open(const struct edge_store_conf *c, char *err, size_t errlen)
{
    struct edge_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    if (edge_idmap_init(&s->vary, 64) < 0 || edge_idmap_init(&s->tags, 1024) < 0 ||
        (s->ram = edge_ram_new(c->ram_bytes, c->ram_policy)) == NULL ||
        (s->admit = edge_admit_new(c->disk_admit, cdn_hash_u64(0xad317))) == NULL) {
        snprintf(err, errlen, "out of memory");
        edge_store_close(s);
        return NULL;
    }
    s->disk_bytes = c->disk_bytes;
    if (c->dir != NULL && (s->rdb = edge_rdb_open(c->dir, c->disk_bytes, on_scan, s, err, errlen)) == NULL) {
        edge_store_close(s);
        return NULL;
    }
    return s;
}

void edge_store_close(struct edge_store *s)
{
    if (s == NULL)
        return;
    edge_rdb_close(s->rdb);
    edge_ram_free(s->ram);
    edge_admit_free(s->admit);
    for (size_t i = 0; i < s->vary.cap; i++)
        if (s->vary.ids[i])
            free((char *)(uintptr_t)s->vary.vals[i]);
    for (size_t i = 0; i < s->tags.cap; i++)
        if (s->tags.ids[i]) {
            struct idlist *l = (struct idlist *)(uintptr_t)s->tags.vals[i];
            free(l->ids);
            free(l);
        }
    edge_idmap_free(&s->vary);
    edge_idmap_free(&s->tags);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

struct edge_obj *edge_store_get(struct edge_store *s, const char *key, size_t key_len, int *tier, int *corrupt)
{
    *corrupt = 0;
    struct edge_obj *o = edge_ram_get(s->ram, key, key_len);
    if (o != NULL) {
        *tier = EDGE_TIER_RAM;
        return o;
    }
    if (s->rdb != NULL && (o = edge_rdb_get(s->rdb, key, key_len, corrupt)) != NULL) {
        *tier = EDGE_TIER_DISK;
        edge_ram_put(s->ram, o); /* promote; the RAM policy may refuse */
        return o;
    }
    *tier = EDGE_TIER_NONE;
    return NULL;
}

int edge_store_vary(struct edge_store *s, const char *pkey, size_t plen, char *buf, size_t cap)
{
    uint64_t v;
    int r = 0;
    pthread_mutex_lock(&s->mu);
    if (edge_idmap_get(&s->vary, edge_key_id(pkey, plen), &v)) {
        const char *vs = (const char *)(uintptr_t)v;
        size_t l = strlen(vs);
        if (l < cap) {
            memcpy(buf, vs, l + 1);
            r = 1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void edge_store_put(struct edge_store *s, struct edge_obj *o)
{
    index_obj(s, o);
    edge_ram_put(s->ram, o);
    if (s->rdb == NULL)
        return;
    /* a copy already on disk is always replaced (an old one must not outlive the new); a new
     * object goes to disk if the admission rule takes it */
    if (!edge_rdb_has(s->rdb, o->key, o->key_len)) {
        size_t window = edge_rdb_count(s->rdb);
        int room = edge_rdb_bytes(s->rdb) + edge_obj_charge(o) <= s->disk_bytes;
        pthread_mutex_lock(&s->mu);
        int admit = edge_admit_miss(s->admit, edge_key_id(o->key, o->key_len), window, room);
        pthread_mutex_unlock(&s->mu);
        if (!admit)
            return;
    }
    edge_rdb_put(s->rdb, o);
}

static size_t purge_list(struct edge_store *s, uint64_t tid)
{
    uint64_t v;
    struct idlist *l = NULL;
    pthread_mutex_lock(&s->mu);
    if (edge_idmap_get(&s->tags, tid, &v)) {
        l = (struct idlist *)(uintptr_t)v;
        edge_idmap_del(&s->tags, tid);
    }
    pthread_mutex_unlock(&s->mu);
    if (l == NULL)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        int had = edge_ram_del_id(s->ram, l->ids[i]);
        if (s->rdb) {
            /* the RocksDB index is the full set: count from it */
            size_t before = edge_rdb_count(s->rdb);
            edge_rdb_del_id(s->rdb, l->ids[i]);
            had = had || edge_rdb_count(s->rdb) < before;
        }
        n += had;
    }
    free(l->ids);
    free(l);
    return n;
}

size_t edge_store_purge_url(struct edge_store *s, const char *pkey, size_t plen)
{
    return purge_list(s, tag_id('u', pkey, plen));
}

size_t edge_store_purge_tag(struct edge_store *s, const char *tag, size_t len)
{
    return purge_list(s, tag_id('t', tag, len));
}

size_t edge_store_expire(struct edge_store *s, int64_t now, int64_t keep)
{
    if (s->rdb == NULL)
        return 0;
    uint64_t ids[256];
    size_t total = 0;
    int wrapped = 0;
    /* small steps (the tier's lock is taken per step), one whole pass over the index */
    while (!wrapped) {
        size_t n = edge_rdb_expire(s->rdb, now, keep, 4096, ids, sizeof(ids) / sizeof(ids[0]), &wrapped);
        for (size_t i = 0; i < n; i++)
            edge_ram_del_id(s->ram, ids[i]);
        total += n;
    }
    return total;
}

void edge_store_sync(struct edge_store *s)
{
    if (s->rdb)
        edge_rdb_sync(s->rdb);
}

void edge_store_disk_health(struct edge_store *s, int *full, uint64_t *write_errors, uint64_t *refused)
{
    *full = 0;
    *write_errors = *refused = 0;
    if (s->rdb != NULL)
        edge_rdb_health(s->rdb, full, write_errors, refused);
}

uint64_t edge_store_bytes(struct edge_store *s, int tier)
{
    if (tier == EDGE_TIER_RAM)
        return edge_ram_bytes(s->ram);
    return s->rdb ? edge_rdb_bytes(s->rdb) : 0;
}

size_t edge_store_count(struct edge_store *s, int tier)
{
    if (tier == EDGE_TIER_RAM)
        return edge_ram_count(s->ram);
    return s->rdb ? edge_rdb_count(s->rdb) : 0;
}
