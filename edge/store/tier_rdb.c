/* edge/store/tier_rdb.c - the RocksDB tier (see tier_rdb.h for threads and integrity).
 *
 * Rules: the index (policy + sizes) changes under `mu` at call time, before the writer thread
 * applies the operation, so the index is the truth for "exists". A put waits in the queue until
 * the writer has written it; until then `pending` (under `mu`) maps its id to the queued object
 * and a get answers from there: an object the index lists is always found, also while the writer
 * lags (it once was a plain miss then, and a stale copy that stale-if-error should have served
 * was not seen: issue 19). The writer owns the database's write path; all writes go through its
 * queue in order, so a put followed by a delete of the same id ends deleted.
 *
 * A write that fails (the disk is full, an I/O error) leaves RocksDB's WAL writer in an error
 * state, and Debian's RocksDB 7.8 is built with assertions: the next write on that handle
 * aborts the process (AssertFalseAndGetStatusForPrevError). So after one failed write the tier
 * is read-only ("full"): puts are refused (the object stays in RAM only), the failed batch's
 * objects leave the index (its counts are what is really stored), deletes wait in the queue, and
 * the writer looks at the free space every few seconds; when there is room again it reopens the
 * database (readers hold `dblock` shared, the reopen takes it exclusive), writes the deletes, and
 * admits again. The failure is logged once, the recovery once. */
#include "config.h"
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "edge/store/blog.h"
#include "edge/store/idmap.h"
#include "edge/store/policy.h"
#include "edge/store/tier_ram.h"
#include "edge/store/tier_rdb.h"
#include "cdn/log.h"

#define RETRY_MS 3000           /* how often a full tier looks at the free space */
#define ROOM_MIN (64ull << 20)  /* free bytes (or 5% of the file system) before it admits again */
#define MEMTABLE (8ull << 20)   /* write buffer of each family: a flush needs about this much room */
#define QUEUE_MAX (64ull << 20) /* bodies queued for the writer before puts are refused */
#define CLEAN_MAX 64            /* segments cleaned after one batch at most (each frees a fifth of one) */

struct op {
    struct op *next;
    uint64_t id;
    struct edge_obj *obj; /* NULL: delete (or a soft mark, below) */
    int64_t soft_at;      /* > 0: not a delete, the object's soft-purge mark (seconds) */
    uint8_t *val;         /* a put, in the writer: its RocksDB value ([location] meta) */
    size_t val_len;
    struct edge_blog_loc at; /* ...and where its record went */
};

struct edge_rdb {
    rocksdb_t *db;
    rocksdb_options_t *opts, *cf_opts[3];
    rocksdb_block_based_table_options_t *bbt;
    rocksdb_cache_t *cache;
    rocksdb_column_family_handle_t *cf[3]; /* default, meta, body */
    rocksdb_readoptions_t *ro;
    rocksdb_readoptions_t *ro_body; /* bodies: checked by the object's own hash (see read_obj) */
    rocksdb_writeoptions_t *wo;       /* batches with a delete: through the WAL */
    rocksdb_writeoptions_t *wo_nowal; /* batches of puts only: the memtable, then flushed files */
    uint64_t capacity;
    struct edge_blog *blog;   /* the bodies (blog.h); RocksDB holds id -> location + meta */
    uint64_t seg_bytes;
    struct edge_idmap locs;   /* id -> struct edge_blog_loc * of its record, once written */
    uint64_t cleaned;         /* under mu: segments cleaned (their live records moved, file gone) */
    pthread_mutex_t mu;
    pthread_cond_t cv, idle;
    struct edge_policy *pol; /* index: id -> size, LRU */
    struct edge_idmap exp;   /* id -> when it may go (expiry sweep), wall seconds */
    struct edge_idmap pending; /* id -> struct edge_obj * of its latest queued put, until written
                                  (the queue's op holds the reference); gets read it first */
    int hold;                /* edge_rdb_hold: the writer leaves the queue alone (tests) */
    size_t sweep_at;         /* the sweep's position in exp */
    struct op *head, *tail;
    int busy, stop;
    int waiting;             /* the writer sleeps on cv for work: a new op must wake it */
    int napping;             /* the writer waits GROUP_COMMIT_NS for more puts: a delete wakes it */
    int urgent;              /* a delete or a soft mark is queued: written without the wait */
    pthread_t writer;
    char *dir;
    pthread_rwlock_t dblock;  /* shared: a read of db; exclusive: its reopen after a full disk */
    int full;                /* under mu: a write failed; read-only until there is room again */
    uint64_t write_errors;   /* under mu: failed writes (batches) */
    uint64_t refused;        /* under mu: puts refused while full or while the queue is long */
    uint64_t queued;         /* under mu: body bytes of the puts in the queue */
};
enum { CF_DEFAULT, CF_META, CF_BODY };

static void key8(uint64_t id, char *k)
{
    for (int i = 7; i >= 0; i--, id >>= 8)
        k[i] = (char)(id & 0xff);
}

/* When an object is of no more use: stale beyond its stale-while-revalidate and stale-if-error
 * windows (wall seconds). */
static int64_t expire_at(const struct edge_obj *o)
{
    const struct edge_fresh *f = &o->fresh;
    int64_t win = f->swr > f->sie ? f->swr : f->sie;
    return f->response_time - f->initial_age + f->lifetime + (win > 0 ? win : 0);
}

/* The top bit of an exp value: the object has a validator (ETag or Last-Modified), so the sweep
 * gives it the keep window on top (a conditional request can still bring it back cheaply). */
#define EXP_VALIDATOR (1ull << 63)

static void exp_put(struct edge_rdb *d, uint64_t id, const struct edge_obj *o)
{
    int64_t t = expire_at(o);
    uint64_t v = (uint64_t)(t > 0 ? t : 0);
    if (edge_obj_hdr(o, "etag") != NULL || edge_obj_hdr(o, "last-modified") != NULL)
        v |= EXP_VALIDATOR;
    edge_idmap_put(&d->exp, id, v); /* no room: it goes by eviction only */
}

/* The index stops pointing at id's record (mu held): its bytes are garbage in their segment. */
static void loc_forget_locked(struct edge_rdb *d, uint64_t id)
{
    uint64_t v;
    if (!edge_idmap_get(&d->locs, id, &v))
        return;
    struct edge_blog_loc *l = (struct edge_blog_loc *)(uintptr_t)v;
    edge_blog_live(d->blog, l->seg, -(int64_t)l->len);
    free(l);
    edge_idmap_del(&d->locs, id);
    edge_idmap_shrink(&d->locs);
}

/* id's record is at `at` from now on (mu held). -1 (and id not located) when out of memory. */
static int loc_set_locked(struct edge_rdb *d, uint64_t id, const struct edge_blog_loc *at)
{
    loc_forget_locked(d, id);
    struct edge_blog_loc *l = malloc(sizeof(*l));
    if (l == NULL)
        return -1;
    *l = *at;
    if (edge_idmap_put(&d->locs, id, (uint64_t)(uintptr_t)l) < 0) {
        free(l);
        return -1;
    }
    edge_blog_live(d->blog, at->seg, (int64_t)at->len);
    return 0;
}

/* The location stored in front of a meta value (blog.h); *meta set past it. 0 if there is none (a
 * value from before the body log: its body is in the "body" family). */
static int loc_parse(const uint8_t *v, size_t len, struct edge_blog_loc *at, const uint8_t **meta, size_t *mlen)
{
    if (!edge_blog_loc_get(v, len, at))
        return 0;
    *meta = v + EDGE_BLOG_LOC_LEN;
    *mlen = len - EDGE_BLOG_LOC_LEN;
    return 1;
}

/* [location] meta, the meta family's value. */
static uint8_t *loc_value(const struct edge_blog_loc *at, const uint8_t *meta, size_t ml, size_t *len)
{
    uint8_t *v = malloc(EDGE_BLOG_LOC_LEN + ml);
    if (v == NULL)
        return NULL;
    edge_blog_loc_put(v, at);
    memcpy(v + EDGE_BLOG_LOC_LEN, meta, ml);
    *len = EDGE_BLOG_LOC_LEN + ml;
    return v;
}

static void enqueue_locked(struct edge_rdb *d, uint64_t id, struct edge_obj *o)
{
    if (o == NULL) {
        edge_idmap_del(&d->exp, id); /* a delete: nothing left to sweep */
        loc_forget_locked(d, id);
    }
    struct op *op = malloc(sizeof(*op));
    if (op == NULL) {
        edge_obj_release(o);
        edge_idmap_del(&d->pending, id);
        return;
    }
    /* a put is readable from the queue until written (no room in the map: a get finds nothing,
     * as before); a delete hides an earlier queued put */
    if (o == NULL || edge_idmap_put(&d->pending, id, (uint64_t)(uintptr_t)o) < 0)
        edge_idmap_del(&d->pending, id);
    *op = (struct op){NULL, id, o, 0};
    if (d->tail) d->tail->next = op; else d->head = op;
    d->tail = op;
    if (o == NULL)
        d->urgent = 1;
    else
        d->queued += o->body_len;
    if (d->waiting || (o == NULL && d->napping)) /* else it is awake, or its nap ends soon */
        pthread_cond_signal(&d->cv);
}

static void on_evict(uint64_t id, void *data) { enqueue_locked(data, id, NULL); }

/* A soft-purge mark for the writer (mu held). The marks live in the default column family (id ->
 * when, 8 bytes each), written through the WAL like deletes, removed with their object. */
static void enqueue_soft_locked(struct edge_rdb *d, uint64_t id, int64_t at)
{
    struct op *op = malloc(sizeof(*op));
    if (op == NULL)
        return; /* the mark stays in RAM only: lost at a restart, as before */
    *op = (struct op){NULL, id, NULL, at > 0 ? at : 1};
    if (d->tail) d->tail->next = op; else d->head = op;
    d->tail = op;
    d->urgent = 1;
    if (d->waiting || d->napping)
        pthread_cond_signal(&d->cv);
}

static int reopen(struct edge_rdb *d, char *errbuf, size_t errlen);

/* A write failed: read-only from now on (see the top), the batch's objects out of the index
 * unless a later put of the same id waits in the queue. Called without mu. */
static void write_failed(struct edge_rdb *d, const struct op *batch, const char *err)
{
    pthread_mutex_lock(&d->mu);
    d->write_errors++;
    int was = d->full;
    d->full = 1;
    for (const struct op *op = batch; op; op = op->next) {
        if (op->obj == NULL)
            continue;
        int later = 0;
        for (const struct op *q = d->head; q && !later; q = q->next)
            later = q->id == op->id && q->obj != NULL;
        if (!later && edge_policy_remove(d->pol, op->id)) {
            edge_idmap_del(&d->exp, op->id);
            loc_forget_locked(d, op->id);
        }
    }
    pthread_mutex_unlock(&d->mu);
    if (!was)
        cdn_err("disk tier: a write failed (%s): read-only, new objects stay in RAM, until there is room again", err);
}

/* Room enough to write again: ROOM_MIN free, or 5% of the file system and at least two
 * memtables' worth (puts wait in the memtable: a flush that cannot fit fails again at once). */
static int have_room(const char *dir)
{
    struct statvfs v;
    if (statvfs(dir, &v) < 0)
        return 0;
    uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize, size = (uint64_t)v.f_blocks * v.f_frsize;
    return avail >= ROOM_MIN || (avail >= size / 20 && avail >= 2 * MEMTABLE);
}

/* While full (under mu): waits RETRY_MS, then reopens when there is room. Puts that came in the
 * meantime were refused; the queue holds only deletes, written once the database is back. Puts
 * that were only in the memtable (no WAL) are gone with the old handle: the reopen rebuilds the
 * index from what is on disk. */
static void wait_for_room(struct edge_rdb *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += RETRY_MS / 1000;
    pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    if (d->stop || !have_room(d->dir))
        return;
    pthread_mutex_unlock(&d->mu);
    char err[256];
    int rc = reopen(d, err, sizeof(err));
    pthread_mutex_lock(&d->mu);
    if (rc == 0) {
        d->full = 0;
        cdn_notice("disk tier: room again, reopened %s and admitting", d->dir);
    } else {
        cdn_err("disk tier: %s", err);
    }
}

/* Cleaning: when the segment files hold more than the capacity plus a quarter (and two
 * segments of slack), the segment with the lowest live share has its live records appended again
 * and its file removed. Live bytes are bounded by the capacity (the LRU index), so above that
 * limit the chosen segment is at least a fifth garbage. The new locations go through the WAL
 * before the old file goes: a crash between the two cannot leave the index pointing at a removed
 * file (and if it did, the object would be dropped at the next start, never misread). Writer
 * thread only. */
struct mv {
    struct edge_blog_loc from;
    uint64_t id;
};
struct mvlist {
    struct edge_rdb *d;
    struct mv *v;
    size_t n, cap;
    int oom;
};

static void collect_live(const struct edge_blog_loc *loc, uint64_t id, void *data)
{
    struct mvlist *m = data;
    uint64_t v;
    pthread_mutex_lock(&m->d->mu);
    const struct edge_blog_loc *l = edge_idmap_get(&m->d->locs, id, &v) ? (void *)(uintptr_t)v : NULL;
    int live = l != NULL && l->seg == loc->seg && l->off == loc->off;
    pthread_mutex_unlock(&m->d->mu);
    if (!live)
        return;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct mv *nv = realloc(m->v, cap * sizeof(*nv));
        if (nv == NULL) {
            m->oom = 1;
            return;
        }
        m->v = nv;
        m->cap = cap;
    }
    m->v[m->n++] = (struct mv){*loc, id};
}

/* Every object still located in seg leaves the index (its records could not all be moved). */
static void forget_seg(struct edge_rdb *d, uint32_t seg)
{
    pthread_mutex_lock(&d->mu);
    size_t n = 0;
    uint64_t *ids = malloc((d->locs.n ? d->locs.n : 1) * sizeof(*ids));
    for (size_t i = 0; ids != NULL && i < d->locs.cap; i++) {
        const struct edge_blog_loc *l = (void *)(uintptr_t)d->locs.vals[i];
        if (d->locs.ids[i] != 0 && l->seg == seg)
            ids[n++] = d->locs.ids[i];
    }
    for (size_t i = 0; i < n; i++) { /* deleting moves entries in locs: collected first */
        edge_policy_remove(d->pol, ids[i]);
        enqueue_locked(d, ids[i], NULL);
    }
    pthread_mutex_unlock(&d->mu);
    free(ids);
}

#define MOVE_BATCH 64

static int move_some(struct edge_rdb *d, rocksdb_writebatch_t *wb, const struct mv *v, size_t n)
{
    struct edge_blog_rec recs[MOVE_BATCH];
    void *bufs[MOVE_BATCH];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *meta, *body;
        size_t ml, bl;
        bufs[k] = malloc(v[i].from.len);
        if (bufs[k] == NULL ||
            edge_blog_read(edge_blog_fd(d->blog, v[i].from.seg), &v[i].from, v[i].id, bufs[k], &meta, &ml, &body, &bl) < 0) {
            free(bufs[k]);
            pthread_mutex_lock(&d->mu); /* unreadable: it cannot stay */
            edge_policy_remove(d->pol, v[i].id);
            enqueue_locked(d, v[i].id, NULL);
            pthread_mutex_unlock(&d->mu);
            continue;
        }
        recs[k++] = (struct edge_blog_rec){v[i].id, meta, body, ml, bl, {0, 0, 0}};
    }
    int rc = edge_blog_append(d->blog, recs, k);
    char *err = NULL;
    if (rc == 0) {
        rocksdb_writebatch_clear(wb);
        for (size_t i = 0; i < k; i++) {
            char key[8];
            size_t vl;
            uint8_t *val = loc_value(&recs[i].at, recs[i].meta, recs[i].meta_len, &vl);
            key8(recs[i].id, key);
            if (val)
                rocksdb_writebatch_put_cf(wb, d->cf[CF_META], key, 8, (const char *)val, vl);
            free(val);
        }
        rocksdb_write(d->db, d->wo, wb, &err);
    }
    if (rc == 0 && err == NULL) {
        pthread_mutex_lock(&d->mu);
        for (size_t i = 0, j = 0; i < n && j < k; i++) {
            if (v[i].id != recs[j].id)
                continue; /* dropped above */
            uint64_t x;
            const struct edge_blog_loc *l = edge_idmap_get(&d->locs, v[i].id, &x) ? (void *)(uintptr_t)x : NULL;
            if (l != NULL && l->seg == v[i].from.seg && l->off == v[i].from.off && loc_set_locked(d, v[i].id, &recs[j].at) < 0)
                edge_policy_remove(d->pol, v[i].id);
            j++;
        }
        pthread_mutex_unlock(&d->mu);
    }
    for (size_t i = 0; i < k; i++)
        free(bufs[i]);
    if (err) {
        write_failed(d, NULL, err);
        free(err);
        return -1;
    }
    if (rc < 0) {
        write_failed(d, NULL, strerror(-rc));
        return -1;
    }
    return 0;
}

static void clean(struct edge_rdb *d, rocksdb_writebatch_t *wb)
{
    uint64_t limit = d->capacity + d->capacity / 4 + 2 * d->seg_bytes;
    for (int round = 0; round < CLEAN_MAX; round++) {
        uint32_t seg = edge_blog_victim(d->blog, limit);
        if (seg == 0)
            return;
        struct mvlist m = {d, NULL, 0, 0, 0};
        int ok = edge_blog_scan(d->blog, seg, collect_live, &m) == 0 && !m.oom;
        for (size_t i = 0; ok && i < m.n; i += MOVE_BATCH)
            ok = move_some(d, wb, m.v + i, m.n - i < MOVE_BATCH ? m.n - i : MOVE_BATCH) == 0;
        free(m.v);
        if (!ok) {
            pthread_mutex_lock(&d->mu);
            int full = d->full;
            pthread_mutex_unlock(&d->mu);
            if (full)
                return; /* no room to move them: the segment stays until there is */
            forget_seg(d, seg); /* a damaged segment: what it still held is dropped */
        }
        edge_blog_drop(d->blog, seg);
        pthread_mutex_lock(&d->mu);
        d->cleaned++;
        pthread_mutex_unlock(&d->mu);
    }
}

#define GROUP_COMMIT_NS 1000000 /* the writer's wait for more puts after a wakeup (1 ms) */

static void *writer_main(void *arg)
{
    struct edge_rdb *d = arg;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (d->full && !d->stop)
            wait_for_room(d);
        while ((d->head == NULL || d->hold) && !d->stop) {
            d->waiting = 1;
            pthread_cond_wait(&d->cv, &d->mu);
            d->waiting = 0;
        }
        if (!d->stop && !d->urgent) {
            /* group commit: let the puts of the next millisecond join this batch. A wakeup per
             * put cost a futex call and two context switches each (the worker and the writer
             * share a core when pinned): 20% of a miss's CPU in `perf`. Gets read queued puts
             * (pending), so the wait is not seen by clients. A delete or a soft mark ends the
             * wait at once: a purge must reach the WAL as soon as it is made (it must outlive a
             * crash that follows it). */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += GROUP_COMMIT_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            d->napping = 1;
            while (!d->stop && !d->urgent &&
                   pthread_cond_timedwait(&d->cv, &d->mu, &ts) != ETIMEDOUT) {}
            d->napping = 0;
            if ((d->hold || d->full || d->head == NULL) && !d->stop)
                continue;
        }
        if (d->head == NULL && d->stop)
            break;
        if (d->full)
            break; /* stopping while full: nothing more is written (the deletes are lost with
                      the process; the index is rebuilt from what is on disk at the next start) */
        struct op *list = d->head;
        d->head = d->tail = NULL;
        d->urgent = 0;
        d->busy = 1;
        pthread_mutex_unlock(&d->mu);
        /* one batch per wakeup: many small writes become one write. Only a batch with a delete
         * goes through the WAL: a delete (eviction, purge, invalidation) must outlive a crash, or
         * a purged object could come back; a put lost in a crash is a miss at the next start
         * (the index is rebuilt from what was flushed, and meta and body flush together). The WAL
         * wrote every body a second time: 21% of the edge's CPU on a miss-heavy load. */
        /* the bodies first, appended to the log in one write (blog.h); then one RocksDB batch of
         * [location] meta values and deletes */
        size_t nput = 0;
        for (struct op *op = list; op; op = op->next)
            nput += op->obj != NULL;
        struct edge_blog_rec *recs = nput ? calloc(nput, sizeof(*recs)) : NULL;
        size_t k = 0;
        for (struct op *op = list; recs && op; op = op->next) {
            if (op->obj == NULL)
                continue;
            op->val = edge_obj_encode(op->obj, &op->val_len); /* the meta, for now */
            if (op->val)
                recs[k++] = (struct edge_blog_rec){op->id, op->val, op->obj->body, op->val_len, op->obj->body_len,
                                                   {0, 0, 0}};
        }
        int lrc = nput == 0 ? 0 : recs == NULL ? -ENOMEM : edge_blog_append(d->blog, recs, k);
        if (lrc < 0) {
            write_failed(d, list, strerror(-lrc)); /* the puts are out of the index; deletes go on */
        }
        k = 0;
        for (struct op *op = list; recs && op; op = op->next) {
            if (op->obj == NULL || op->val == NULL)
                continue;
            uint8_t *meta = op->val;
            op->at = recs[k].at;
            op->val = lrc < 0 ? NULL : loc_value(&op->at, meta, op->val_len, &op->val_len);
            free(meta);
            k++;
        }
        free(recs);
        int has_del = 0;
        rocksdb_writebatch_clear(wb);
        for (struct op *op = list; op; op = op->next) {
            char key[8];
            key8(op->id, key);
            if (op->obj) {
                if (op->val)
                    rocksdb_writebatch_put_cf(wb, d->cf[CF_META], key, 8, (const char *)op->val, op->val_len);
            } else if (op->soft_at > 0) {
                char v[8];
                key8((uint64_t)op->soft_at, v);
                has_del = 1; /* a soft purge, like a delete, must outlive a crash */
                rocksdb_writebatch_put_cf(wb, d->cf[CF_DEFAULT], key, 8, v, 8);
            } else {
                has_del = 1;
                rocksdb_writebatch_delete_cf(wb, d->cf[CF_META], key, 8);
                rocksdb_writebatch_delete_cf(wb, d->cf[CF_DEFAULT], key, 8);
            }
        }
        char *err = NULL;
        rocksdb_write(d->db, has_del ? d->wo : d->wo_nowal, wb, &err);
        int written = lrc == 0 && err == NULL;
        if (err) {
            if (lrc == 0)
                write_failed(d, list, err);
            free(err);
        }
        /* written (or dropped by write_failed): the index points at the record from now on,
         * unless a later put or a delete of the id came meanwhile (then the record is garbage
         * and pending names the later put, or nothing) */
        pthread_mutex_lock(&d->mu);
        for (struct op *op = list; op; op = op->next) {
            uint64_t v;
            if (op->obj != NULL)
                d->queued -= op->obj->body_len;
            if (op->obj == NULL || !edge_idmap_get(&d->pending, op->id, &v) || v != (uint64_t)(uintptr_t)op->obj)
                continue;
            edge_idmap_del(&d->pending, op->id);
            if (!written || op->val == NULL || loc_set_locked(d, op->id, &op->at) < 0) {
                /* not written: out of the index (write_failed did it for a failed write) */
                if (edge_policy_remove(d->pol, op->id))
                    edge_idmap_del(&d->exp, op->id);
                loc_forget_locked(d, op->id);
            }
        }
        int full = d->full;
        pthread_mutex_unlock(&d->mu);
        if (!full)
            clean(d, wb);
        while (list) {
            struct op *n = list->next;
            edge_obj_release(list->obj);
            free(list->val);
            free(list);
            list = n;
        }
        pthread_mutex_lock(&d->mu);
        d->busy = 0;
        pthread_cond_broadcast(&d->idle);
    }
    pthread_mutex_unlock(&d->mu);
    rocksdb_writebatch_destroy(wb);
    return NULL;
}

/* The index from the meta family (at open, and after a reopen). A value whose location is not
 * inside a segment file (a crash left the file shorter, or it was removed) is deleted; so is a
 * value from before the body log (its body in the "body" family): a cache, not an archive. */
static void rebuild(struct edge_rdb *d, edge_rdb_scan_cb scan, void *data)
{
    rocksdb_writebatch_t *old = rocksdb_writebatch_create();
    size_t nold = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(d->db, d->ro, d->cf[CF_META]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl, ml;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        const char *why;
        const uint8_t *meta;
        struct edge_blog_loc at;
        uint64_t id = 0;
        for (size_t i = 0; i < kl && i < 8; i++)
            id = id << 8 | (uint8_t)k[i];
        if (!loc_parse((const uint8_t *)v, vl, &at, &meta, &ml)) {
            rocksdb_writebatch_delete_cf(old, d->cf[CF_META], k, kl);
            rocksdb_writebatch_delete_cf(old, d->cf[CF_BODY], k, kl);
            nold++;
            continue;
        }
        struct edge_obj *o = kl == 8 && edge_blog_valid(d->blog, &at) ? edge_obj_decode(meta, ml, &why) : NULL;
        if (o == NULL || o->id != id ||
            edge_policy_insert(d->pol, id, edge_obj_charge(o), on_evict, d) < 0 || loc_set_locked(d, id, &at) < 0) {
            /* corrupt, gone from the log, or no room: delete it */
            edge_policy_remove(d->pol, id);
            enqueue_locked(d, id, NULL);
        } else {
            exp_put(d, id, o);
            if (scan)
                scan(o, data);
        }
        edge_obj_release(o);
    }
    rocksdb_iter_destroy(it);
    if (nold > 0) {
        char *err = NULL;
        rocksdb_write(d->db, d->wo, old, &err);
        cdn_notice("disk tier: %zu objects stored before the body log dropped%s%s", nold, err ? ": " : "",
                   err ? err : "");
        free(err);
    }
    rocksdb_writebatch_destroy(old);
}

struct edge_rdb *edge_rdb_open(const char *dir, uint64_t capacity, edge_rdb_scan_cb scan, void *data,
                               char *errbuf, size_t errlen)
{
    struct edge_rdb *d = calloc(1, sizeof(*d));
    char *err = NULL;
    if (d == NULL)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    pthread_rwlock_init(&d->dblock, NULL);
    pthread_cond_init(&d->cv, NULL);
    pthread_cond_init(&d->idle, NULL);
    d->capacity = capacity;
    d->pol = edge_policy_new(EDGE_POLICY_LRU, capacity);
    if (edge_idmap_init(&d->exp, 1024) < 0 || edge_idmap_init(&d->pending, 64) < 0 ||
        edge_idmap_init(&d->locs, 1024) < 0) {
        snprintf(errbuf, errlen, "out of memory");
        edge_rdb_close(d);
        return NULL;
    }
    d->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(d->opts, 1);
    rocksdb_options_set_create_missing_column_families(d->opts, 1);
    /* its own LOG file only at open: Debian's RocksDB asserts on a log line after a failed
     * append to it (a full disk), and we log what matters ourselves */
    rocksdb_options_set_info_log_level(d->opts, 5 /* header only */);
    rocksdb_options_set_keep_log_file_num(d->opts, 2);
    rocksdb_options_set_max_open_files(d->opts, 256);
    /* A WAL file goes only when every column family with data in it has flushed. The meta
     * family's memtable (a few hundred bytes an object) took tens of thousands of objects to
     * fill, and until then every WAL file stayed, bodies and all: an 8 MiB tier held 180 MB of
     * them after 9,000 writes. Meta and body now flush together, and the WAL is bounded. */
    rocksdb_options_set_atomic_flush(d->opts, 1);
    rocksdb_options_set_max_total_wal_size(d->opts, 32 << 20);
    /* one writer thread: the vector memtable (below) needs this off */
    rocksdb_options_set_allow_concurrent_memtable_write(d->opts, 0);
    d->cache = rocksdb_cache_create_lru(64 << 20);
    d->bbt = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(d->bbt, d->cache);
    const char *names[3] = {"default", "meta", "body"};
    for (int i = 0; i < 3; i++) {
        d->cf_opts[i] = rocksdb_options_create_copy(d->opts);
        rocksdb_options_set_block_based_table_factory(d->cf_opts[i], d->bbt);
        rocksdb_options_set_write_buffer_size(d->cf_opts[i], MEMTABLE);
    }
    /* The meta family is written once per stored object and read only at open (the index has
     * every location in RAM, a hit reads the log): a vector memtable appends in O(1) where the
     * skip list's insert was 4% of a miss's CPU, and sorts once at flush. */
    rocksdb_options_set_memtable_vector_rep(d->cf_opts[CF_META]);
    /* metas are a few hundred bytes each beside bodies of kilobytes: snappy in the compactions
     * saved little room for 1-2% of a miss's CPU */
    rocksdb_options_set_compression(d->cf_opts[CF_META], rocksdb_no_compression);
    /* "body" held the bodies before the body log; it stays so that an old folder opens (and
     * its objects are dropped, see rebuild) */
    char bodies[4096];
    snprintf(bodies, sizeof(bodies), "%s/bodies", dir);
    /* segments of a 16th of the tier (1-256 MiB): cleaning moves at most one at a time */
    d->seg_bytes = capacity / 16;
    d->seg_bytes = d->seg_bytes < (1u << 20) ? (1u << 20) : d->seg_bytes > (256u << 20) ? (256u << 20) : d->seg_bytes;
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "cannot create %s: %s", dir, strerror(errno));
        edge_rdb_close(d);
        return NULL;
    }
    if ((d->blog = edge_blog_open(bodies, d->seg_bytes, errbuf, errlen)) == NULL) {
        edge_rdb_close(d);
        return NULL;
    }
    d->db = rocksdb_open_column_families(d->opts, dir, 3, names, (const rocksdb_options_t *const *)d->cf_opts,
                                         d->cf, &err);
    d->dir = strdup(dir);
    if (d->db == NULL || d->pol == NULL || d->dir == NULL) {
        snprintf(errbuf, errlen, "rocksdb open %s: %s", dir, err ? err : "out of memory");
        free(err);
        d->db = NULL;
        edge_rdb_close(d);
        return NULL;
    }
    d->ro = rocksdb_readoptions_create();
    d->ro_body = rocksdb_readoptions_create();
    /* A body is checked against the XXH3-64 in its meta after every read (edge_obj_attach_body);
     * RocksDB's own CRC-32C of the blob record over the same bytes was 12% of a disk hit. */
    rocksdb_readoptions_set_verify_checksums(d->ro_body, 0);
    d->wo = rocksdb_writeoptions_create();
    d->wo_nowal = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(d->wo_nowal, 1);
    rebuild(d, scan, data);
    size_t dropped = edge_blog_drop_empty(d->blog);
    if (dropped > 0)
        cdn_info("disk tier: %zu segment files with nothing indexed removed", dropped);
    if (pthread_create(&d->writer, NULL, writer_main, d) != 0) {
        snprintf(errbuf, errlen, "cannot start the rocksdb writer thread");
        rocksdb_close(d->db);
        d->db = NULL;
        edge_rdb_close(d);
        return NULL;
    }
    return d;
}

static void free_locs(struct edge_idmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->ids[i] != 0)
            free((void *)(uintptr_t)m->vals[i]);
    edge_idmap_free(m);
}

void edge_rdb_close(struct edge_rdb *d)
{
    if (d == NULL)
        return;
    if (d->db) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->writer, NULL);
        /* flush memtables so that a restart reads SST files, not a long WAL replay (not
         * after a failed write: RocksDB would abort on it, see the top) */
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        rocksdb_flushoptions_set_wait(fo, 1);
        for (int i = CF_META; i <= CF_BODY && !d->full; i++) {
            char *err = NULL;
            rocksdb_flush_cf(d->db, fo, d->cf[i], &err);
            free(err);
        }
        rocksdb_flushoptions_destroy(fo);
        for (int i = 0; i < 3; i++)
            rocksdb_column_family_handle_destroy(d->cf[i]);
        rocksdb_close(d->db);
    }
    for (struct op *op = d->head, *n; op; op = n) {
        n = op->next;
        edge_obj_release(op->obj);
        free(op);
    }
    if (d->ro) rocksdb_readoptions_destroy(d->ro);
    if (d->ro_body) rocksdb_readoptions_destroy(d->ro_body);
    if (d->wo) rocksdb_writeoptions_destroy(d->wo);
    if (d->wo_nowal) rocksdb_writeoptions_destroy(d->wo_nowal);
    for (int i = 0; i < 3; i++)
        if (d->cf_opts[i]) rocksdb_options_destroy(d->cf_opts[i]);
    if (d->opts) rocksdb_options_destroy(d->opts);
    if (d->bbt) rocksdb_block_based_options_destroy(d->bbt);
    if (d->cache) rocksdb_cache_destroy(d->cache);
    edge_blog_close(d->blog);
    free_locs(&d->locs);
    edge_policy_free(d->pol);
    edge_idmap_free(&d->exp);
    edge_idmap_free(&d->pending);
    pthread_mutex_destroy(&d->mu);
    pthread_rwlock_destroy(&d->dblock);
    pthread_cond_destroy(&d->cv);
    pthread_cond_destroy(&d->idle);
    free(d->dir);
    free(d);
}

/* Closes and opens the database again (after a failed write, whose handle cannot write any
 * more). Readers wait on dblock meanwhile. 0, or -1 with the reason (the old handle stays). */
static int reopen(struct edge_rdb *d, char *errbuf, size_t errlen)
{
    static const char *const names[3] = {"default", "meta", "body"};
    rocksdb_column_family_handle_t *cf[3];
    char *err = NULL;
    pthread_rwlock_wrlock(&d->dblock);
    for (int i = 0; i < 3; i++)
        rocksdb_column_family_handle_destroy(d->cf[i]);
    rocksdb_close(d->db);
    d->db = rocksdb_open_column_families(d->opts, d->dir, 3, names, (const rocksdb_options_t *const *)d->cf_opts, cf,
                                         &err);
    int rc = 0;
    if (d->db == NULL) {
        snprintf(errbuf, errlen, "cannot reopen %s: %s", d->dir, err ? err : "?");
        free(err);
        rc = -1;
    } else {
        memcpy(d->cf, cf, sizeof(cf));
        /* the index again from what is on disk (puts that were only in the old memtable are
         * gone); gets wait on dblock, puts and deletes on mu meanwhile */
        pthread_mutex_lock(&d->mu);
        struct edge_policy *pol = edge_policy_new(EDGE_POLICY_LRU, d->capacity);
        struct edge_idmap exp = {0}, locs = {0};
        if (pol != NULL && edge_idmap_init(&exp, 1024) == 0 && edge_idmap_init(&locs, 1024) == 0) {
            edge_policy_free(d->pol);
            edge_idmap_free(&d->exp);
            free_locs(&d->locs);
            d->pol = pol;
            d->exp = exp;
            d->locs = locs;
            d->sweep_at = 0;
            edge_blog_live_reset(d->blog);
            rebuild(d, NULL, NULL);
            for (const struct op *op = d->head; op; op = op->next) /* deletes still queued */
                if (op->obj == NULL && op->soft_at == 0 && edge_policy_remove(d->pol, op->id)) {
                    edge_idmap_del(&d->exp, op->id);
                    loc_forget_locked(d, op->id);
                }
        } else {
            edge_policy_free(pol); /* out of memory: the old index stays (a lost put reads as a miss) */
            edge_idmap_free(&exp);
            edge_idmap_free(&locs);
        }
        pthread_mutex_unlock(&d->mu);
    }
    pthread_rwlock_unlock(&d->dblock);
    return rc;
}

int edge_rdb_has(struct edge_rdb *d, const char *key, size_t key_len)
{
    pthread_mutex_lock(&d->mu);
    int r = edge_policy_contains(d->pol, edge_key_id(key, key_len));
    pthread_mutex_unlock(&d->mu);
    return r;
}

int edge_rdb_has_id(struct edge_rdb *d, uint64_t id)
{
    pthread_mutex_lock(&d->mu);
    int r = edge_policy_contains(d->pol, id);
    pthread_mutex_unlock(&d->mu);
    return r;
}

static void drop_corrupt(struct edge_rdb *d, uint64_t id)
{
    pthread_mutex_lock(&d->mu);
    edge_policy_remove(d->pol, id);
    enqueue_locked(d, id, NULL);
    pthread_mutex_unlock(&d->mu);
}

/* The object whose record is at `at` (its segment pinned by the caller): one read of the whole
 * record into the buffer the object keeps as its body's block, the meta decoded from it. */
static struct edge_obj *read_obj(struct edge_rdb *d, int fd, uint64_t id, const struct edge_blog_loc *at,
                                 const char *key, size_t key_len, int *corrupt)
{
    const uint8_t *meta, *body;
    size_t ml, bl;
    const char *why;
    void *buf = malloc(at->len);
    if (buf == NULL)
        return NULL; /* out of memory is not corruption: a miss */
    struct edge_obj *o = NULL;
    if (edge_blog_read(fd, at, id, buf, &meta, &ml, &body, &bl) == 0 &&
        (o = edge_obj_decode(meta, ml, &why)) != NULL) {
        if (o->key_len != key_len || memcmp(o->key, key, key_len) != 0) {
            edge_obj_release(o); /* another key with the same id: a miss */
            free(buf);
            return NULL;
        }
        if (edge_obj_adopt_body(o, buf, body, bl) == 0)
            return o;
        buf = NULL; /* adopt freed it */
    }
    free(buf);
    edge_obj_release(o);
    *corrupt = 1;
    drop_corrupt(d, id);
    return NULL;
}

struct edge_obj *edge_rdb_get(struct edge_rdb *d, const char *key, size_t key_len, int *corrupt)
{
    uint64_t id = edge_key_id(key, key_len);
    *corrupt = 0;
    pthread_mutex_lock(&d->mu);
    int known = edge_policy_hit(d->pol, id);
    uint64_t v;
    struct edge_obj *q = known && edge_idmap_get(&d->pending, id, &v) ? (struct edge_obj *)(uintptr_t)v : NULL;
    if (q != NULL && q->key_len == key_len && memcmp(q->key, key, key_len) == 0)
        edge_obj_ref(q); /* queued, not yet written: the object itself (its body is attached) */
    else
        q = NULL;
    struct edge_blog_loc at;
    int located = known && q == NULL && edge_idmap_get(&d->locs, id, &v), fd = -1;
    if (located) {
        at = *(const struct edge_blog_loc *)(uintptr_t)v;
        fd = edge_blog_pin(d->blog, at.seg);
        located = fd >= 0 ? 1 : -1;
    }
    pthread_mutex_unlock(&d->mu);
    if (q != NULL)
        return q;
    if (located == 0)
        return NULL; /* not stored, or a queued put for another key with the same id */
    if (located < 0) {
        *corrupt = 1; /* located in a segment that is gone: cannot happen unless the files were
                       * removed behind our back */
        drop_corrupt(d, id);
        return NULL;
    }
    struct edge_obj *o = read_obj(d, fd, id, &at, key, key_len, corrupt);
    edge_blog_unpin(d->blog, at.seg);
    return o;
}

int edge_rdb_put(struct edge_rdb *d, struct edge_obj *o)
{
    uint64_t id = o->id;
    pthread_mutex_lock(&d->mu);
    /* full, or the disk is slower than the misses (the queue holds QUEUE_MAX of bodies): the
     * object stays in RAM only, and an older copy on disk goes (it must not outlive this one).
     * Without the bound the queue grew in RAM for as long as the disk lagged. */
    if (d->full || d->queued > QUEUE_MAX) {
        d->refused++;
        if (edge_policy_remove(d->pol, id))
            enqueue_locked(d, id, NULL);
        pthread_mutex_unlock(&d->mu);
        return -1;
    }
    int rc = edge_policy_insert(d->pol, id, edge_obj_charge(o), on_evict, d);
    if (rc == 0) {
        exp_put(d, id, o);
        enqueue_locked(d, id, edge_obj_ref(o));
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

void edge_rdb_del_id(struct edge_rdb *d, uint64_t id)
{
    pthread_mutex_lock(&d->mu);
    if (edge_policy_remove(d->pol, id))
        enqueue_locked(d, id, NULL);
    pthread_mutex_unlock(&d->mu);
}

void edge_rdb_hold(struct edge_rdb *d, int on)
{
    pthread_mutex_lock(&d->mu);
    d->hold = on;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void edge_rdb_sync(struct edge_rdb *d)
{
    pthread_mutex_lock(&d->mu);
    while (d->head != NULL || d->busy)
        pthread_cond_wait(&d->idle, &d->mu);
    pthread_mutex_unlock(&d->mu);
}

uint64_t edge_rdb_bytes(struct edge_rdb *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t b = edge_policy_bytes(d->pol);
    pthread_mutex_unlock(&d->mu);
    return b;
}

size_t edge_rdb_count(struct edge_rdb *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = edge_policy_count(d->pol);
    pthread_mutex_unlock(&d->mu);
    return n;
}

size_t edge_rdb_expire(struct edge_rdb *d, int64_t now, int64_t keep, size_t slots, uint64_t *ids, size_t max,
                       int *wrapped)
{
    size_t n = 0;
    *wrapped = 0;
    pthread_mutex_lock(&d->mu);
    for (size_t k = 0; k < slots && n < max && d->exp.cap > 0; k++) {
        if (d->sweep_at >= d->exp.cap) {
            d->sweep_at = 0;
            *wrapped = 1;
            break;
        }
        size_t i = d->sweep_at++;
        uint64_t v = d->exp.vals[i];
        int64_t at = (int64_t)(v & ~EXP_VALIDATOR) + ((v & EXP_VALIDATOR) && keep > 0 ? keep : 0);
        if (d->exp.ids[i] != 0 && at <= now)
            ids[n++] = d->exp.ids[i];
    }
    /* deleting moves entries in exp (backward shift): collect first, then delete; an entry moved
     * behind the cursor waits for the next pass */
    for (size_t i = 0; i < n; i++) {
        edge_policy_remove(d->pol, ids[i]);
        enqueue_locked(d, ids[i], NULL);
    }
    pthread_mutex_unlock(&d->mu);
    return n;
}

void edge_rdb_health(struct edge_rdb *d, int *full, uint64_t *write_errors, uint64_t *refused)
{
    pthread_mutex_lock(&d->mu);
    *full = d->full;
    *write_errors = d->write_errors;
    *refused = d->refused;
    pthread_mutex_unlock(&d->mu);
}

uint64_t edge_rdb_cleaned(struct edge_rdb *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t n = d->cleaned;
    pthread_mutex_unlock(&d->mu);
    return n;
}

uint64_t edge_rdb_log_bytes(struct edge_rdb *d)
{
    return edge_blog_bytes(d->blog);
}

void edge_rdb_soft(struct edge_rdb *d, uint64_t id, int64_t at)
{
    pthread_mutex_lock(&d->mu);
    if (!d->full && edge_policy_contains(d->pol, id))
        enqueue_soft_locked(d, id, at);
    pthread_mutex_unlock(&d->mu);
}

size_t edge_rdb_soft_scan(struct edge_rdb *d, void (*cb)(uint64_t id, void *data), void *data)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&d->dblock);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(d->db, d->ro, d->cf[CF_DEFAULT]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl != 8 || vl != 8)
            continue;
        uint64_t id = 0, at = 0;
        for (int i = 0; i < 8; i++) {
            id = id << 8 | (uint8_t)k[i];
            at = at << 8 | (uint8_t)v[i];
        }
        pthread_mutex_lock(&d->mu);
        int held = edge_policy_contains(d->pol, id);
        pthread_mutex_unlock(&d->mu);
        if (!held)
            continue;
        /* the mark holds for the copy it was made for: one stored since (born after it) is fresh */
        char *err = NULL;
        rocksdb_pinnableslice_t *m = rocksdb_get_pinned_cf(d->db, d->ro, d->cf[CF_META], k, 8, &err);
        free(err);
        if (m == NULL)
            continue;
        size_t ml;
        const char *mv = rocksdb_pinnableslice_value(m, &ml);
        const char *why;
        const uint8_t *meta;
        size_t mlen;
        struct edge_blog_loc loc;
        struct edge_obj *o = loc_parse((const uint8_t *)mv, ml, &loc, &meta, &mlen) ? edge_obj_decode(meta, mlen, &why)
                                                                                   : NULL;
        rocksdb_pinnableslice_destroy(m);
        if (o != NULL && o->request_time <= (int64_t)at) {
            cb(id, data);
            n++;
        }
        edge_obj_release(o);
    }
    rocksdb_iter_destroy(it);
    pthread_rwlock_unlock(&d->dblock);
    return n;
}
