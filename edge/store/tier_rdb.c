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
#include <sys/statvfs.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "edge/store/idmap.h"
#include "edge/store/policy.h"
#include "edge/store/tier_ram.h"
#include "edge/store/tier_rdb.h"
#include "cdn/log.h"

#define RETRY_MS 3000           /* how often a full tier looks at the free space */
#define ROOM_MIN (64ull << 20)  /* free bytes (or 5% of the file system) before it admits again */
#define MEMTABLE (8ull << 20)   /* write buffer of each family: a flush needs about this much room */
#define GC_ON 0.20              /* blob GC while garbage is above this share of the blob files... */
#define GC_OFF 0.05             /* ...until it falls below this one */
#define GC_CHECK_MS 1000        /* how often the writer looks at the garbage */

struct op {
    struct op *next;
    uint64_t id;
    struct edge_obj *obj; /* NULL: delete (or a soft mark, below) */
    int64_t soft_at;      /* > 0: not a delete, the object's soft-purge mark (seconds) */
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
    int blob_gc;                      /* blob GC on (garbage above GC_ON); written by the writer under mu */
    struct timespec gc_checked;       /* writer thread: when the garbage was last looked at */
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
    uint64_t refused;        /* under mu: puts refused while full */
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

static void enqueue_locked(struct edge_rdb *d, uint64_t id, struct edge_obj *o)
{
    if (o == NULL)
        edge_idmap_del(&d->exp, id); /* a delete: nothing left to sweep */
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
        if (!later && edge_policy_remove(d->pol, op->id))
            edge_idmap_del(&d->exp, op->id);
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

/* Blob GC only while there is garbage to collect. RocksDB's GC relocates every live blob of the
 * oldest blob files each time a compaction meets their keys, garbage or not; with nothing
 * evicted yet (a tier filling up) that copied every body once more and was 28% of the edge's CPU
 * on a miss-heavy load. Evictions and purges make garbage; above GC_ON of the blob files' bytes
 * GC runs until it is below GC_OFF. Writer thread only. */
static void blob_gc_check(struct edge_rdb *d)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - d->gc_checked.tv_sec) * 1000 + (now.tv_nsec - d->gc_checked.tv_nsec) / 1000000 < GC_CHECK_MS)
        return;
    d->gc_checked = now;
    uint64_t garbage = 0, live = 0;
    if (rocksdb_property_int_cf(d->db, d->cf[CF_BODY], "rocksdb.live-blob-file-garbage-size", &garbage) != 0 ||
        rocksdb_property_int_cf(d->db, d->cf[CF_BODY], "rocksdb.live-blob-file-size", &live) != 0 || live == 0)
        return;
    double share = (double)garbage / (double)live;
    int want = d->blob_gc ? share >= GC_OFF : share >= GC_ON;
    if (want == d->blob_gc)
        return;
    const char *keys[1] = {"enable_blob_garbage_collection"}, *vals[1] = {want ? "true" : "false"};
    char *err = NULL;
    rocksdb_set_options_cf(d->db, d->cf[CF_BODY], 1, keys, vals, &err);
    if (err) {
        cdn_warn("disk tier: blob GC %s: %s", want ? "on" : "off", err);
        free(err);
        return;
    }
    pthread_mutex_lock(&d->mu);
    d->blob_gc = want;
    pthread_mutex_unlock(&d->mu);
    cdn_info("disk tier: blob GC %s (garbage %.0f%% of %llu bytes of blob files)", want ? "on" : "off",
             share * 100, (unsigned long long)live);
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
        int has_del = 0;
        rocksdb_writebatch_clear(wb);
        for (struct op *op = list; op; op = op->next) {
            char k[8];
            key8(op->id, k);
            if (op->obj) {
                size_t ml;
                uint8_t *meta = edge_obj_encode(op->obj, &ml);
                if (meta) {
                    rocksdb_writebatch_put_cf(wb, d->cf[CF_BODY], k, 8, (const char *)op->obj->body,
                                              op->obj->body_len);
                    rocksdb_writebatch_put_cf(wb, d->cf[CF_META], k, 8, (const char *)meta, ml);
                    free(meta);
                }
            } else if (op->soft_at > 0) {
                char v[8];
                key8((uint64_t)op->soft_at, v);
                has_del = 1; /* a soft purge, like a delete, must outlive a crash */
                rocksdb_writebatch_put_cf(wb, d->cf[CF_DEFAULT], k, 8, v, 8);
            } else {
                has_del = 1;
                rocksdb_writebatch_delete_cf(wb, d->cf[CF_META], k, 8);
                rocksdb_writebatch_delete_cf(wb, d->cf[CF_BODY], k, 8);
                rocksdb_writebatch_delete_cf(wb, d->cf[CF_DEFAULT], k, 8);
            }
        }
        char *err = NULL;
        rocksdb_write(d->db, has_del ? d->wo : d->wo_nowal, wb, &err);
        if (err) {
            write_failed(d, list, err);
            free(err);
        } else {
            blob_gc_check(d);
        }
        /* written (or dropped by write_failed): gets read the database from now on, unless a
         * later put of the id waits in the queue (then pending names that one) */
        pthread_mutex_lock(&d->mu);
        for (struct op *op = list; op; op = op->next) {
            uint64_t v;
            if (op->obj != NULL && edge_idmap_get(&d->pending, op->id, &v) && v == (uint64_t)(uintptr_t)op->obj)
                edge_idmap_del(&d->pending, op->id);
        }
        pthread_mutex_unlock(&d->mu);
        while (list) {
            struct op *n = list->next;
            edge_obj_release(list->obj);
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

static void rebuild(struct edge_rdb *d, edge_rdb_scan_cb scan, void *data)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(d->db, d->ro, d->cf[CF_META]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        const char *why;
        struct edge_obj *o = kl == 8 ? edge_obj_decode((const uint8_t *)v, vl, &why) : NULL;
        uint64_t id = 0;
        for (size_t i = 0; i < kl && i < 8; i++)
            id = id << 8 | (uint8_t)k[i];
        if (o == NULL || edge_key_id(o->key, o->key_len) != id ||
            edge_policy_insert(d->pol, id, edge_obj_charge(o), on_evict, d) < 0) {
            /* corrupt or no room: delete it */
            enqueue_locked(d, id, NULL);
        } else {
            exp_put(d, id, o);
            if (scan)
                scan(o, data);
        }
        edge_obj_release(o);
    }
    rocksdb_iter_destroy(it);
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
    if (edge_idmap_init(&d->exp, 1024) < 0 || edge_idmap_init(&d->pending, 64) < 0) {
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
    d->cache = rocksdb_cache_create_lru(64 << 20);
    d->bbt = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(d->bbt, d->cache);
    const char *names[3] = {"default", "meta", "body"};
    for (int i = 0; i < 3; i++) {
        d->cf_opts[i] = rocksdb_options_create_copy(d->opts);
        rocksdb_options_set_block_based_table_factory(d->cf_opts[i], d->bbt);
        rocksdb_options_set_write_buffer_size(d->cf_opts[i], MEMTABLE);
    }
    rocksdb_options_set_compression(d->cf_opts[CF_BODY], rocksdb_no_compression);
    rocksdb_options_set_enable_blob_files(d->cf_opts[CF_BODY], 1);
    rocksdb_options_set_min_blob_size(d->cf_opts[CF_BODY], 4096);
    rocksdb_options_set_enable_blob_gc(d->cf_opts[CF_BODY], 0); /* on while there is garbage: blob_gc_check */
    rocksdb_options_set_blob_cache(d->cf_opts[CF_BODY], d->cache);
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
    if (pthread_create(&d->writer, NULL, writer_main, d) != 0) {
        snprintf(errbuf, errlen, "cannot start the rocksdb writer thread");
        rocksdb_close(d->db);
        d->db = NULL;
        edge_rdb_close(d);
        return NULL;
    }
    return d;
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
        /* flush memtables so that a restart reads SST/blob files, not a long WAL replay (not
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
        d->blob_gc = 0; /* opened with GC off: blob_gc_check decides again */
        struct edge_policy *pol = edge_policy_new(EDGE_POLICY_LRU, d->capacity);
        struct edge_idmap exp;
        if (pol != NULL && edge_idmap_init(&exp, 1024) == 0) {
            edge_policy_free(d->pol);
            edge_idmap_free(&d->exp);
            d->pol = pol;
            d->exp = exp;
            d->sweep_at = 0;
            rebuild(d, NULL, NULL);
            for (const struct op *op = d->head; op; op = op->next) /* deletes still queued */
                if (op->obj == NULL && op->soft_at == 0 && edge_policy_remove(d->pol, op->id))
                    edge_idmap_del(&d->exp, op->id);
        } else {
            edge_policy_free(pol); /* out of memory: the old index stays (a lost put reads as a miss) */
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

/* The object under id from the database; the caller holds dblock shared. */
static struct edge_obj *read_obj(struct edge_rdb *d, uint64_t id, const char *key, size_t key_len, int *corrupt)
{
    char k[8], *err = NULL;
    key8(id, k);
    rocksdb_pinnableslice_t *m = rocksdb_get_pinned_cf(d->db, d->ro, d->cf[CF_META], k, 8, &err);
    if (err) {
        free(err);
        return NULL;
    }
    if (m == NULL)
        return NULL; /* not there (deleted meanwhile; a queued put is read from `pending`) */
    size_t ml;
    const char *mv = rocksdb_pinnableslice_value(m, &ml);
    const char *why;
    struct edge_obj *o = edge_obj_decode((const uint8_t *)mv, ml, &why);
    rocksdb_pinnableslice_destroy(m);
    if (o == NULL) {
        *corrupt = 1;
        drop_corrupt(d, id);
        return NULL;
    }
    if (o->key_len != key_len || memcmp(o->key, key, key_len) != 0) {
        edge_obj_release(o); /* another key with the same id: a miss */
        return NULL;
    }
    rocksdb_pinnableslice_t *b = rocksdb_get_pinned_cf(d->db, d->ro_body, d->cf[CF_BODY], k, 8, &err);
    size_t bl = 0;
    const char *bv = b ? rocksdb_pinnableslice_value(b, &bl) : NULL;
    if (err || b == NULL || edge_obj_attach_body(o, bv ? bv : "", bl) < 0) {
        free(err);
        if (b)
            rocksdb_pinnableslice_destroy(b);
        edge_obj_release(o);
        *corrupt = 1;
        drop_corrupt(d, id);
        return NULL;
    }
    rocksdb_pinnableslice_destroy(b);
    return o;
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
    pthread_mutex_unlock(&d->mu);
    if (!known)
        return NULL;
    if (q != NULL)
        return q;
    pthread_rwlock_rdlock(&d->dblock);
    struct edge_obj *o = read_obj(d, id, key, key_len, corrupt);
    pthread_rwlock_unlock(&d->dblock);
    return o;
}

int edge_rdb_put(struct edge_rdb *d, struct edge_obj *o)
{
    uint64_t id = edge_key_id(o->key, o->key_len);
    pthread_mutex_lock(&d->mu);
    if (d->full) {
        d->refused++;
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

int edge_rdb_blob_gc(struct edge_rdb *d)
{
    pthread_mutex_lock(&d->mu);
    int on = d->blob_gc;
    pthread_mutex_unlock(&d->mu);
    return on;
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
        struct edge_obj *o = edge_obj_decode((const uint8_t *)mv, ml, &why);
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
