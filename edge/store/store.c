/* edge/store/store.c - the tier walk, Vary specs, tag index and purges (see store.h).
 *
 * Rules: `mu` guards the Vary map, the tag index, the soft marks, the remembered purges and the
 * disk admission filter; the tiers lock themselves. A tag maps to a list of object ids. Implicit
 * tags: the URL's normal form ('u', edge_purge_url_form: scheme and port dropped, so purging a URL
 * removes every variant under every listener) and each directory of it ('d', "host/", "host/a/":
 * what prefix and `all` purges find). Lists may hold ids already evicted; deleting those is a
 * no-op.
 *
 * Purges in flight: every applied purge is remembered (recent[], for purge_remember ms, at most
 * RECENT_MAX); a put whose object may have been born before a purge that covers it (the second
 * its request started in, less its Age and one second of rounding when it came through another
 * cache, earlier than the purge) is refused: a fill that
 * was on its way when the purge came, or a parent's copy the parent stored before it applied the
 * same purge, is served to the clients that waited for it but never stored. */
#include "config.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"
#include "edge/purge/cmd.h"
#include "edge/store/idmap.h"
#include "edge/store/store.h"
#include "edge/store/tier_ram.h"
#include "edge/store/tier_rdb.h"

struct idlist {
    uint64_t *ids;
    size_t n, cap;
};

/* A purge the store remembers: its time and a compact copy of what it covers. */
struct recent {
    int64_t t_ms;
    struct edge_purge_view v;
};
#define RECENT_MAX 4096

struct edge_store {
    struct edge_ram *ram;
    struct edge_rdb *rdb;
    pthread_mutex_t mu;
    struct edge_admit *admit; /* disk admission (under mu) */
    uint64_t disk_bytes;      /* the disk tier's capacity */
    struct edge_idmap vary; /* hash(pkey) -> char * (normalised Vary list) */
    struct edge_idmap tags; /* hash(kind, name) -> struct idlist *: 't' tag, 'u' URL form, 'd' dir */
    struct edge_idmap soft; /* object id -> 1: soft-purged (stale) until replaced */
    struct recent *recent;  /* ring of RECENT_MAX, oldest at r_head */
    size_t r_head, r_n;
    int64_t remember_ms;
    int64_t forgot_ms;      /* the newest time of a purge dropped while still within remember_ms */
    uint64_t refused;       /* puts refused (atomic) */
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

struct dir_add {
    struct edge_store *s;
    uint64_t id;
};
static void on_dir(const char *dir, size_t n, void *data)
{
    struct dir_add *d = data;
    tag_add(d->s, tag_id('d', dir, n), d->id);
}

/* Records the Vary spec and tags of an object; called on put and for each object at start. */
static void index_obj(struct edge_store *s, const struct edge_obj *o)
{
    uint64_t id = o->id;
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
    char form[EDGE_KEY_MAX];
    int fl = edge_purge_url_form(o->key, o->pkey_len, form, sizeof(form));
    if (fl >= 0) {
        tag_add(s, tag_id('u', form, (size_t)fl), id);
        struct dir_add da = {s, id};
        edge_purge_dirs(form, (size_t)fl, on_dir, &da);
    }
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
static void on_soft(uint64_t id, void *data) { edge_idmap_put(&((struct edge_store *)data)->soft, id, 1); }

struct edge_store *edge_store_open(const struct edge_store_conf *c, char *err, size_t errlen)
{
    struct edge_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->remember_ms = c->purge_remember_ms ? (int64_t)c->purge_remember_ms : 60000;
    if (edge_idmap_init(&s->vary, 64) < 0 || edge_idmap_init(&s->tags, 1024) < 0 ||
        edge_idmap_init(&s->soft, 64) < 0 || (s->recent = calloc(RECENT_MAX, sizeof(*s->recent))) == NULL ||
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
    if (s->rdb != NULL)
        edge_rdb_soft_scan(s->rdb, on_soft, s); /* soft purges made before the restart */
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
    edge_idmap_free(&s->soft);
    for (size_t i = 0; s->recent != NULL && i < s->r_n; i++)
        free((void *)s->recent[(s->r_head + i) % RECENT_MAX].v.args);
    free(s->recent);
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

/* 1 when o may have been born before a remembered purge that covers it (mu held). */
static int born_before_purge(struct edge_store *s, const struct edge_obj *o)
{
    /* request_time and Age are whole seconds: the request started within [request_time,
     * request_time + 1), and a copy that came through another cache (it has an Age, or an
     * upstream Cache-Status entry: a parent's copy has Age 0 in its first second) was born up to
     * Age + 1 s before that: its born time is at least request_time - Age - 1 */
    int via_cache = o->fresh.initial_age > 0 || (o->hf_all & EDGE_HF_CACHE_STATUS);
    int64_t age = via_cache ? (o->fresh.initial_age > 0 ? o->fresh.initial_age : 0) + 1 : 0;
    int64_t born_ms = (o->request_time - age) * 1000;
    if (born_ms < s->forgot_ms)
        return 1;
    for (size_t i = s->r_n; i-- > 0;) {
        const struct recent *r = &s->recent[(s->r_head + i) % RECENT_MAX];
        if (r->t_ms <= born_ms)
            break; /* older ones too */
        if (edge_purge_matches(&r->v, o->key, o->pkey_len, o->tags, o->tags_len))
            return 1;
    }
    return 0;
}

int edge_store_put(struct edge_store *s, struct edge_obj *o)
{
    pthread_mutex_lock(&s->mu);
    int refuse = s->r_n > 0 && born_before_purge(s, o);
    if (!refuse)
        edge_idmap_del(&s->soft, o->id);
    pthread_mutex_unlock(&s->mu);
    if (refuse) {
        __atomic_add_fetch(&s->refused, 1, __ATOMIC_RELAXED);
        return -1;
    }
    index_obj(s, o);
    edge_ram_put(s->ram, o);
    if (s->rdb == NULL)
        return 0;
    /* a copy already on disk is always replaced (an old one must not outlive the new); a new
     * object goes to disk if the admission rule takes it */
    if (!edge_rdb_has_id(s->rdb, o->id)) {
        size_t window = edge_rdb_count(s->rdb);
        int room = edge_rdb_bytes(s->rdb) + edge_obj_charge(o) <= s->disk_bytes;
        pthread_mutex_lock(&s->mu);
        int admit = edge_admit_miss(s->admit, o->id, window, room);
        pthread_mutex_unlock(&s->mu);
        if (!admit)
            return 0; /* stored in RAM: not a refusal */
    }
    edge_rdb_put(s->rdb, o);
    return 0;
}

static size_t purge_list(struct edge_store *s, uint64_t tid)
{
    uint64_t v;
    struct idlist *l = NULL;
    pthread_mutex_lock(&s->mu);
    if (edge_idmap_get(&s->tags, tid, &v)) {
        l = (struct idlist *)(uintptr_t)v;
        edge_idmap_del(&s->tags, tid);
        for (size_t i = 0; s->soft.n > 0 && i < l->n; i++)
            edge_idmap_del(&s->soft, l->ids[i]);
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
    char form[EDGE_KEY_MAX];
    int fl = edge_purge_url_form(pkey, plen, form, sizeof(form));
    return fl < 0 ? 0 : purge_list(s, tag_id('u', form, (size_t)fl));
}

/* Soft: every object of the list is marked stale (the list stays: the objects do); on disk too,
 * so that the mark outlives a restart. */
static size_t soft_list(struct edge_store *s, uint64_t tid, int64_t now_ms)
{
    uint64_t v, *ids = NULL;
    size_t n = 0, cnt = 0;
    pthread_mutex_lock(&s->mu); /* the ids copied, so that no tier lock is taken under mu */
    if (edge_idmap_get(&s->tags, tid, &v)) {
        const struct idlist *l = (const struct idlist *)(uintptr_t)v;
        if (l->n > 0 && (ids = malloc(l->n * sizeof(*ids))) != NULL) {
            memcpy(ids, l->ids, l->n * sizeof(*ids));
            cnt = l->n;
        }
    }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < cnt; i++) {
        int held = edge_ram_has_id(s->ram, ids[i]) || (s->rdb && edge_rdb_has_id(s->rdb, ids[i]));
        ids[n] = ids[i];
        n += held;
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++)
        edge_idmap_put(&s->soft, ids[i], 1);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; s->rdb != NULL && i < n; i++)
        edge_rdb_soft(s->rdb, ids[i], now_ms / 1000);
    free(ids);
    return n;
}

/* Remembers an applied purge (mu held): a compact copy of its arguments in one block. */
static void remember(struct edge_store *s, const struct edge_purge_cmd *c, int64_t now_ms)
{
    while (s->r_n > 0 && s->recent[s->r_head].t_ms < now_ms - s->remember_ms) {
        free((void *)s->recent[s->r_head].v.args);
        s->r_head = (s->r_head + 1) % RECENT_MAX;
        s->r_n--;
    }
    if (s->r_n == RECENT_MAX) { /* full within the window: forget the oldest, and refuse older */
        struct recent *r = &s->recent[s->r_head];
        if (r->t_ms > s->forgot_ms)
            s->forgot_ms = r->t_ms;
        free((void *)r->v.args);
        s->r_head = (s->r_head + 1) % RECENT_MAX;
        s->r_n--;
    }
    size_t bytes = c->nargs * (sizeof(char *) + sizeof(size_t));
    for (size_t i = 0; i < c->nargs; i++)
        bytes += c->lens[i] + 1;
    char *blk = malloc(bytes ? bytes : 1);
    if (blk == NULL) {
        s->forgot_ms = now_ms; /* cannot remember it: be safe, refuse everything older */
        return;
    }
    const char **args = (const char **)(void *)blk;
    size_t *lens = (size_t *)(void *)(blk + c->nargs * sizeof(char *));
    char *str = blk + c->nargs * (sizeof(char *) + sizeof(size_t));
    for (size_t i = 0; i < c->nargs; i++) {
        memcpy(str, c->args[i], c->lens[i] + 1);
        args[i] = str;
        lens[i] = c->lens[i];
        str += c->lens[i] + 1;
    }
    struct recent *r = &s->recent[(s->r_head + s->r_n++) % RECENT_MAX];
    r->t_ms = now_ms;
    r->v = (struct edge_purge_view){c->kind, c->nargs, args, lens};
}

size_t edge_store_purge(struct edge_store *s, const struct edge_purge_cmd *c, int64_t now_ms)
{
    /* remembered first: a fill that ends while the lists are being walked is refused too */
    pthread_mutex_lock(&s->mu);
    remember(s, c, now_ms);
    pthread_mutex_unlock(&s->mu);
    size_t n = 0;
    char kind = c->kind == EDGE_PURGE_URL ? 'u' : c->kind == EDGE_PURGE_TAG ? 't' : 'd';
    for (size_t i = 0; i < c->nargs; i++) {
        uint64_t tid = tag_id(kind, c->args[i], c->lens[i]);
        n += c->soft ? soft_list(s, tid, now_ms) : purge_list(s, tid);
    }
    return n;
}

int edge_store_is_soft(struct edge_store *s, const char *key, size_t key_len)
{
    uint64_t v;
    pthread_mutex_lock(&s->mu);
    int r = s->soft.n > 0 && edge_idmap_get(&s->soft, edge_key_id(key, key_len), &v);
    pthread_mutex_unlock(&s->mu);
    return r;
}

uint64_t edge_store_refused(struct edge_store *s) { return __atomic_load_n(&s->refused, __ATOMIC_RELAXED); }

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

void edge_store_disk_log(struct edge_store *s, uint64_t *bytes, uint64_t *cleaned)
{
    *bytes = s->rdb ? edge_rdb_log_bytes(s->rdb) : 0;
    *cleaned = s->rdb ? edge_rdb_cleaned(s->rdb) : 0;
}
