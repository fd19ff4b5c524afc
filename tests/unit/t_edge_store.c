/* Unit tests for the edge's storage: policy.c (LRU, S3-FIFO, the byte bound), obj.c (format
 * round trip, corruption, 304 merge), tier_ram.c and tier_rdb.c (restart keeps objects, a corrupted value is
 * never returned, eviction past the byte bound reaches the database). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glob.h>

#include <rocksdb/c.h>

#include "edge/store/idmap.h"
#include "edge/store/obj.h"
#include "edge/store/admit.h"
#include "edge/store/policy.h"
#include "edge/store/store.h"
#include "edge/store/tier_ram.h"
#include "edge/store/tier_rdb.h"

static uint64_t evicted[64];
static int nevicted;
static void on_evict(uint64_t id, void *data) { evicted[nevicted++ % 64] = id; }

static void idmap(void **state)
{
    struct edge_idmap m;
    assert_int_equal(edge_idmap_init(&m, 4), 0);
    for (uint64_t i = 1; i <= 5000; i++)
        assert_int_equal(edge_idmap_put(&m, i * 7919, i), 0);
    for (uint64_t i = 1; i <= 5000; i += 2)
        assert_int_equal(edge_idmap_del(&m, i * 7919), 1);
    for (uint64_t i = 1; i <= 5000; i++) {
        uint64_t v = 0;
        int has = edge_idmap_get(&m, i * 7919, &v);
        assert_int_equal(has, i % 2 == 0);
        if (has)
            assert_int_equal(v, i);
    }
    assert_int_equal(m.n, 2500);
    edge_idmap_free(&m);
}

static void lru(void **state)
{
    struct edge_policy *p = edge_policy_new(EDGE_POLICY_LRU, 300);
    nevicted = 0;
    assert_int_equal(edge_policy_insert(p, 1, 100, on_evict, NULL), 0);
    assert_int_equal(edge_policy_insert(p, 2, 100, on_evict, NULL), 0);
    assert_int_equal(edge_policy_insert(p, 3, 100, on_evict, NULL), 0);
    edge_policy_hit(p, 1); /* 2 is now the least recent */
    assert_int_equal(edge_policy_insert(p, 4, 100, on_evict, NULL), 0);
    assert_int_equal(nevicted, 1);
    assert_int_equal(evicted[0], 2);
    assert_false(edge_policy_contains(p, 2));
    assert_int_equal(edge_policy_insert(p, 5, 301, on_evict, NULL), -1); /* larger than all */
    assert_int_equal(edge_policy_insert(p, 6, 250, on_evict, NULL), 0);
    assert_true(edge_policy_bytes(p) <= 300);
    assert_int_equal(edge_policy_remove(p, 6), 1);
    assert_int_equal(edge_policy_bytes(p), 0);
    edge_policy_free(p);
}

/* S3-FIFO keeps a reused working set while a scan of one-hit wonders passes through small. The
 * round (50 hot + 80 scan ids) is longer than the cache (100 ids) but shorter than cache + ghost
 * (90% of the bytes, 90 ids): a hot id that small drops comes back from the ghost into main. */
static void s3fifo_scan_resistance(void **state)
{
    static const enum edge_policy_kind kinds[] = {EDGE_POLICY_LRU, EDGE_POLICY_S3FIFO, EDGE_POLICY_ADAPTIVE};
    for (int k = 0; k < 3; k++) {
        struct edge_policy *p = edge_policy_new(kinds[k], 100 * 10);
        int hits = 0;
        for (int round = 0; round < 50; round++) {
            for (uint64_t h = 1; h <= 50; h++) /* hot set: 50 objects of 10 */
                if (edge_policy_hit(p, h))
                    hits++;
                else
                    edge_policy_insert(p, h, 10, NULL, NULL);
            for (uint64_t s = 0; s < 80; s++) /* scan: never seen again */
                edge_policy_insert(p, 1000000 + (uint64_t)round * 1000 + s, 10, NULL, NULL);
            assert_true(edge_policy_bytes(p) <= 1000);
        }
        if (k == 0)
            assert_int_equal(hits, 0); /* LRU: the scan flushes the hot set every round */
        else
            assert_true(hits > 40 * 50); /* S3-FIFO keeps it, and adaptive, which starts as S3-FIFO */
        if (k == 2)
            assert_string_equal(edge_policy_running(p), "s3fifo");
        edge_policy_free(p);
    }
}

/* Recency-driven traffic, where LRU wins: each new id comes back once, 30 new ids later. LRU (100
 * ids) hits every return; S3-FIFO's small queue (10 ids) has dropped it to the ghost by then, so
 * every return is a miss. Adaptive's miniature caches see this and it switches to LRU. */
static void adaptive_follows_recency(void **state)
{
    static const enum edge_policy_kind kinds[] = {EDGE_POLICY_LRU, EDGE_POLICY_S3FIFO, EDGE_POLICY_ADAPTIVE};
    int hits[3] = {0};
    for (int k = 0; k < 3; k++) {
        struct edge_policy *p = edge_policy_new(kinds[k], 100 * 10);
        for (uint64_t i = 1; i <= 30000; i++) {
            uint64_t ids[2] = {i, i > 30 ? i - 30 : 0};
            for (int j = 0; j < 2; j++) {
                if (ids[j] == 0)
                    continue;
                if (edge_policy_hit(p, ids[j]))
                    hits[k]++;
                else
                    edge_policy_insert(p, ids[j], 10, NULL, NULL);
            }
        }
        if (k == 2)
            assert_string_equal(edge_policy_running(p), "lru");
        edge_policy_free(p);
    }
    print_message("# hits: lru %d s3fifo %d adaptive %d\n", hits[0], hits[1], hits[2]);
    assert_true(hits[0] > 29900);
    assert_true(hits[1] <= 100);
    /* it runs as S3-FIFO until the first decision, 8192 + 8 x 100 lookups in (4,500 of the 30,000
     * rounds), and as LRU after it */
    assert_true(hits[2] > hits[0] * 8 / 10);
}

/* lfu-size by hand: one resident, so the sampled victim is always it. Scores are lookups counted
 * / size^(1/4): A (60 bytes, 2 lookups) 0.728; B (50 bytes) 0.376 after 1 lookup, 0.752 after 2;
 * C (70 bytes, 2 lookups) 0.690. */
static void lfu_size_by_hand(void **state)
{
    struct edge_policy *p = edge_policy_new(EDGE_POLICY_LFU_SIZE, 100);
    assert_string_equal(edge_policy_running(p), "lfu-size");
    assert_int_equal(edge_policy_max_size(p), 100);
    assert_int_equal(edge_policy_hit(p, 1), 0);
    assert_int_equal(edge_policy_insert(p, 1, 60, on_evict, NULL), 0); /* room: no contest */
    assert_int_equal(edge_policy_hit(p, 1), 1);
    assert_int_equal(edge_policy_hit(p, 2), 0);
    assert_int_equal(edge_policy_insert(p, 2, 50, on_evict, NULL), 1); /* seen once: declined */
    assert_int_equal(edge_policy_contains(p, 1), 1);
    assert_int_equal(edge_policy_contains(p, 2), 0);
    assert_int_equal(edge_policy_hit(p, 3), 0);
    assert_int_equal(edge_policy_hit(p, 3), 0);
    assert_int_equal(edge_policy_insert(p, 3, 70, on_evict, NULL), 1); /* as often as 1, but larger */
    assert_int_equal(edge_policy_hit(p, 2), 0);
    assert_int_equal(edge_policy_insert(p, 2, 50, on_evict, NULL), 0); /* as often as 1, and smaller */
    assert_int_equal(edge_policy_contains(p, 1), 0);
    assert_int_equal(edge_policy_contains(p, 2), 1);
    assert_int_equal(edge_policy_bytes(p), 50);
    edge_policy_free(p);
}

/* lfu-size keeps a hot set through a scan of one-hit wonders (the first round's scan fills the free
 * room; after that each scan id is declined: seen once, it does not score above any resident). */
static void lfu_size_scan(void **state)
{
    struct edge_policy *p = edge_policy_new(EDGE_POLICY_LFU_SIZE, 100 * 10);
    int hits = 0;
    for (int round = 0; round < 50; round++) {
        for (uint64_t h = 1; h <= 50; h++)
            if (edge_policy_hit(p, h))
                hits++;
            else
                edge_policy_insert(p, h, 10, NULL, NULL);
        for (uint64_t s = 0; s < 80; s++) {
            uint64_t id = 1000000 + (uint64_t)round * 1000 + s;
            edge_policy_hit(p, id);
            edge_policy_insert(p, id, 10, NULL, NULL);
        }
        assert_true(edge_policy_bytes(p) <= 1000);
    }
    assert_int_equal(hits, 49 * 50); /* every hot lookup after the first round */
    edge_policy_free(p);
}

/* Independent requests with Zipf(1.0) popularity over 20,000 ids, sizes 1-32 units and not tied to
 * popularity, a cache of 5% of the bytes: frequency wins here, small objects more so. Adaptive,
 * which starts as S3-FIFO, must end up running lfu-size and beat adaptive2 (S3-FIFO or LRU) in
 * object hits without losing byte hits. */
static void adaptive_follows_frequency(void **state)
{
    enum { N = 20000, REQS = 600000 };
    static double cdf[N];
    double sum = 0;
    uint64_t ws = 0;
    for (int i = 0; i < N; i++) {
        sum += 1.0 / (i + 1);
        cdf[i] = sum;
        ws += 1u << (((uint64_t)i * 2654435761u >> 7) % 6);
    }
    static const enum edge_policy_kind kinds[] = {EDGE_POLICY_ADAPTIVE2, EDGE_POLICY_ADAPTIVE};
    double obj[2], byte[2];
    for (int k = 0; k < 2; k++) {
        struct edge_policy *p = edge_policy_new(kinds[k], ws / 20);
        uint64_t rng = 12345, hits = 0, hit_bytes = 0, req_bytes = 0;
        for (int r = 0; r < REQS; r++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            double u = (double)(rng >> 11) / 9007199254740992.0 * sum;
            int lo = 0, hi = N - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (cdf[mid] < u)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            uint64_t id = (uint64_t)lo + 1, size = 1u << (((uint64_t)lo * 2654435761u >> 7) % 6);
            req_bytes += size;
            if (edge_policy_hit(p, id)) {
                hits++;
                hit_bytes += size;
            } else {
                edge_policy_insert(p, id, size, NULL, NULL);
            }
            assert_true(edge_policy_bytes(p) <= ws / 20);
        }
        obj[k] = (double)hits / REQS;
        byte[k] = (double)hit_bytes / (double)req_bytes;
        if (k == 1)
            assert_string_equal(edge_policy_running(p), "lfu-size");
        edge_policy_free(p);
    }
    print_message("# hit ratio obj/byte: adaptive2 %.4f/%.4f adaptive %.4f/%.4f\n", obj[0], byte[0], obj[1], byte[1]);
    assert_true(obj[1] > obj[0] + 0.01);
    assert_true(byte[1] > byte[0] - 0.005);
}

static void policy_random_bound(void **state)
{
    srand(7);
    static const enum edge_policy_kind kinds[] = {EDGE_POLICY_LRU, EDGE_POLICY_S3FIFO, EDGE_POLICY_SIEVE,
                                                  EDGE_POLICY_ADAPTIVE, EDGE_POLICY_LFU_SIZE, EDGE_POLICY_ADAPTIVE2};
    for (int k = 0; k < 6; k++) {
        struct edge_policy *p = edge_policy_new(kinds[k], 100000);
        for (int i = 0; i < 200000; i++) {
            uint64_t id = (uint64_t)(rand() % 5000) + 1;
            int op = rand() % 10;
            if (op < 6)
                edge_policy_insert(p, id, (uint64_t)(rand() % 2000) + 1, NULL, NULL);
            else if (op < 9)
                edge_policy_hit(p, id);
            else
                edge_policy_remove(p, id);
            if (edge_policy_bytes(p) > 100000)
                fail_msg("over capacity at %d", i);
        }
        edge_policy_free(p);
    }
}

static struct edge_obj *mkobj(const char *key, const char *body)
{
    struct edge_hdr h[] = {
        {"Content-Type", 12, "text/plain", 10}, {"Content-Length", 14, "5", 1},
        {"Connection", 10, "close, X-Hop", 12}, {"X-Hop", 5, "secret", 6},
        {"Set-Cookie", 10, "a=b", 3},           {"Surrogate-Key", 13, "prod-1  cat-2", 13},
        {"ETag", 4, "\"v1\"", 4},               {"Date", 4, "Tue, 14 Nov 2023 22:13:20 GMT", 29},
        {"Transfer-Encoding", 17, "chunked", 7},
    };
    struct edge_fresh f = {.response_time = 1700000000, .initial_age = 3, .lifetime = 60, .swr = -1, .sie = 30,
                           .flags = EDGE_F_AUTH_OK};
    struct edge_obj *o = edge_obj_new(key, strlen(key), strlen(key), 200, h, 9, "", 0, &f, 1699999999);
    assert_non_null(o);
    edge_obj_set_body(o, (uint8_t *)strdup(body), strlen(body));
    return o;
}

static void obj_format(void **state)
{
    struct edge_obj *o = mkobj("http://h/a", "hello");
    /* hop-by-hop (incl. Connection-named), Set-Cookie and Surrogate-Key are not stored */
    assert_int_equal(o->nhdrs, 4);
    assert_null(edge_obj_hdr(o, "x-hop"));
    assert_null(edge_obj_hdr(o, "set-cookie"));
    assert_null(edge_obj_hdr(o, "transfer-encoding"));
    assert_string_equal(o->tags, "prod-1 cat-2");
    size_t len;
    uint8_t *m = edge_obj_encode(o, &len);
    assert_non_null(m);
    const char *why;
    struct edge_obj *d = edge_obj_decode(m, len, &why);
    assert_non_null(d);
    assert_int_equal(d->status, 200);
    assert_int_equal(d->fresh.lifetime, 60);
    assert_int_equal(d->fresh.sie, 30);
    assert_int_equal(d->fresh.swr, -1);
    assert_int_equal(d->request_time, 1699999999);
    assert_string_equal(d->key, "http://h/a");
    assert_string_equal(edge_obj_hdr(d, "etag")->value, "\"v1\"");
    assert_int_equal(d->body_len, 5);
    assert_int_equal(edge_obj_attach_body(d, "hellO", 5), -1); /* body CRC */
    assert_int_equal(edge_obj_attach_body(d, "hell", 4), -1);  /* body length */
    assert_int_equal(edge_obj_attach_body(d, "hello", 5), 0);
    edge_obj_release(d);
    /* every single-bit flip and every truncation of the meta is detected */
    for (size_t i = 0; i < len * 8; i++) {
        m[i / 8] ^= (uint8_t)(1 << (i % 8));
        assert_null(edge_obj_decode(m, len, &why));
        m[i / 8] ^= (uint8_t)(1 << (i % 8));
    }
    for (size_t l = 0; l < len; l++)
        assert_null(edge_obj_decode(m, l, &why));
    free(m);
    edge_obj_release(o);
}

static void merge_304(void **state)
{
    struct edge_obj *o = mkobj("http://h/a", "hello");
    struct edge_hdr h[] = {
        {"Content-Length", 14, "0", 1},  /* never replaces the stored one */
        {"ETag", 4, "\"v2\"", 4},
        {"Cache-Control", 13, "max-age=100", 11},
        {"Connection", 10, "X-Drop", 6}, {"X-Drop", 6, "1", 1},
        {"Date", 4, "Tue, 14 Nov 2023 22:20:00 GMT", 29},
    };
    struct edge_fresh f = {.response_time = 1700000400, .lifetime = 100, .swr = -1, .sie = -1};
    struct edge_obj *m = edge_obj_merge_304(o, h, 6, &f, 1700000399);
    assert_non_null(m);
    assert_string_equal(edge_obj_hdr(m, "content-length")->value, "5");
    assert_string_equal(edge_obj_hdr(m, "etag")->value, "\"v2\"");
    assert_string_equal(edge_obj_hdr(m, "cache-control")->value, "max-age=100");
    assert_string_equal(edge_obj_hdr(m, "content-type")->value, "text/plain");
    assert_string_equal(edge_obj_hdr(m, "date")->value, "Tue, 14 Nov 2023 22:20:00 GMT");
    assert_null(edge_obj_hdr(m, "x-drop"));
    assert_int_equal(edge_hdr_find(m->hdrs, m->nhdrs, "etag", 0) >= 0, 1);
    assert_int_equal(m->body_len, 5);
    assert_memory_equal(m->body, "hello", 5);
    assert_int_equal(m->fresh.lifetime, 100);
    /* the Date a client sees follows the merged Date */
    assert_string_equal(o->date, "Tue, 14 Nov 2023 22:13:20 GMT");
    assert_string_equal(m->date, "Tue, 14 Nov 2023 22:20:00 GMT");
    edge_obj_release(m);
    /* fields that describe the stored body are not replaced; a new one is not added either */
    struct edge_hdr b[] = {
        {"Content-Encoding", 16, "gzip", 4}, {"Content-MD5", 11, "x", 1}, {"Content-Range", 13, "bytes 0-1/5", 11},
        {"X-New", 5, "1", 1},
    };
    m = edge_obj_merge_304(o, b, 4, &f, 1700000399);
    assert_non_null(m);
    assert_null(edge_obj_hdr(m, "content-encoding"));
    assert_null(edge_obj_hdr(m, "content-md5"));
    assert_null(edge_obj_hdr(m, "content-range"));
    assert_string_equal(edge_obj_hdr(m, "x-new")->value, "1");
    edge_obj_release(m);
    /* RFC 9111 4.3.4: a 304 selects the stored response only if its ETag (if any) matches */
    struct edge_hdr e1[] = {{"ETag", 4, " \"v1\"", 5}}, e2[] = {{"ETag", 4, "W/\"v1\"", 6}},
                    e3[] = {{"ETag", 4, "\"v2\"", 4}}, e4[] = {{"Cache-Control", 13, "max-age=1", 9}};
    assert_true(edge_obj_304_selects(o, e1, 1));
    assert_true(edge_obj_304_selects(o, e2, 1));
    assert_false(edge_obj_304_selects(o, e3, 1));
    assert_true(edge_obj_304_selects(o, e4, 1));
    edge_obj_release(o);
}

static void ram_tier(void **state)
{
    struct edge_obj *a = mkobj("http://h/a", "aaaa"), *b = mkobj("http://h/b", "bbbb");
    uint64_t charge = edge_obj_charge(a);
    struct edge_ram *r = edge_ram_new(charge + charge / 2, EDGE_POLICY_LRU);
    assert_int_equal(edge_ram_put(r, a), 0);
    struct edge_obj *g = edge_ram_get(r, "http://h/a", 10);
    assert_ptr_equal(g, a);
    edge_obj_release(g);
    assert_null(edge_ram_get(r, "http://h/b", 10));
    assert_int_equal(edge_ram_put(r, b), 0); /* evicts a */
    assert_null(edge_ram_get(r, "http://h/a", 10));
    assert_int_equal(edge_ram_count(r), 1);
    edge_ram_free(r);
    edge_obj_release(a);
    edge_obj_release(b);
}

/* Removes a test's folder (and fails the test if it cannot). */
static void rmtree(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Replaces the first `from` in the disk tier's body log files by `to` (same length): 1 if found. */
static int flip_in_log(const char *dir, const char *from, const char *to)
{
    char pat[300];
    glob_t g;
    int found = 0;
    snprintf(pat, sizeof(pat), "%s/bodies/*.seg", dir);
    if (glob(pat, 0, NULL, &g) != 0)
        return 0;
    for (size_t i = 0; i < g.gl_pathc && !found; i++) {
        FILE *f = fopen(g.gl_pathv[i], "r+b");
        char buf[1 << 16];
        size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
        for (size_t j = 0; j + strlen(from) <= n && !found; j++)
            if (memcmp(buf + j, from, strlen(from)) == 0) {
                fseek(f, (long)j, SEEK_SET);
                fwrite(to, 1, strlen(to), f);
                found = 1;
            }
        if (f)
            fclose(f);
    }
    globfree(&g);
    return found;
}

static void rdb_tier(void **state)
{
    char dir[] = "/tmp/t_edge_rdb.XXXXXX", err[256];
    assert_non_null(mkdtemp(dir));
    struct edge_rdb *d = edge_rdb_open(dir, 1 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    struct edge_obj *a = mkobj("http://h/a", "hello"), *b = mkobj("http://h/b", "world");
    assert_int_equal(edge_rdb_put(d, a), 0);
    assert_int_equal(edge_rdb_put(d, b), 0);
    edge_rdb_sync(d);
    int corrupt;
    struct edge_obj *g = edge_rdb_get(d, "http://h/a", 10, &corrupt);
    assert_non_null(g);
    assert_memory_equal(g->body, "hello", 5);
    edge_obj_release(g);
    assert_null(edge_rdb_get(d, "http://h/zz", 11, &corrupt));
    assert_int_equal(corrupt, 0);
    edge_rdb_close(d);

    /* restart: the index is rebuilt, objects come back */
    int seen = 0;
    d = edge_rdb_open(dir, 1 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(edge_rdb_count(d), 2);
    assert_true(edge_rdb_has(d, "http://h/b", 10));
    g = edge_rdb_get(d, "http://h/b", 10, &corrupt);
    assert_non_null(g);
    assert_memory_equal(g->body, "world", 5);
    edge_obj_release(g);
    edge_rdb_close(d);
    (void)seen;

    /* corrupt b's body in the body log behind the tier's back: never served, and dropped */
    assert_int_equal(flip_in_log(dir, "world", "wurld"), 1);

    /* a value from before the body log (meta only, its body in the "body" family) is dropped at
     * open, not misread */
    rocksdb_options_t *o = rocksdb_options_create();
    const char *names[3] = {"default", "meta", "body"};
    const rocksdb_options_t *cfo[3] = {o, o, o};
    rocksdb_column_family_handle_t *cf[3];
    char *e = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, dir, 3, names, cfo, cf, &e);
    assert_null(e);
    uint64_t id = edge_key_id("http://h/b", 10);
    char k[8];
    for (int i = 7; i >= 0; i--, id >>= 8)
        k[i] = (char)(id & 0xff);
    struct edge_obj *c = mkobj("http://h/c", "old");
    size_t cl;
    uint8_t *cmeta = edge_obj_encode(c, &cl);
    assert_non_null(cmeta);
    uint64_t cid = edge_key_id("http://h/c", 10);
    char ck[8];
    for (int i = 7; i >= 0; i--, cid >>= 8)
        ck[i] = (char)(cid & 0xff);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put_cf(db, wo, cf[1], ck, 8, (const char *)cmeta, cl, &e);
    assert_null(e);
    rocksdb_put_cf(db, wo, cf[2], ck, 8, "old", 3, &e);
    assert_null(e);
    free(cmeta);
    edge_obj_release(c);
    (void)k;
    rocksdb_writeoptions_destroy(wo);
    for (int i = 0; i < 3; i++)
        rocksdb_column_family_handle_destroy(cf[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);

    d = edge_rdb_open(dir, 1 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    assert_false(edge_rdb_has(d, "http://h/c", 10));
    assert_int_equal(edge_rdb_count(d), 2);
    assert_true(edge_rdb_has(d, "http://h/b", 10));
    assert_null(edge_rdb_get(d, "http://h/b", 10, &corrupt));
    assert_int_equal(corrupt, 1);
    assert_false(edge_rdb_has(d, "http://h/b", 10));
    g = edge_rdb_get(d, "http://h/a", 10, &corrupt);
    assert_non_null(g);
    edge_obj_release(g);
    /* capacity: a tiny store evicts */
    edge_rdb_close(d);
    d = edge_rdb_open(dir, edge_obj_charge(a) + 10, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(edge_rdb_count(d), 1);
    edge_rdb_close(d);
    edge_obj_release(a);
    edge_obj_release(b);
    rmtree(dir);
}

/* RocksDB-tier eviction (on_evict in tier_rdb.c): a tier of room for 4 objects gets 20; the least
 * recently used go from the index at once and from the database through the writer (a restart
 * with room for everything finds only the survivors). Then the same through edge_store with a RAM
 * tier too small to hold anything: evicted objects are gone from the store and its counts fall. */
static struct edge_obj *mkobj_n(int i)
{
    char key[32], body[1001];
    snprintf(key, sizeof(key), "http://h/e%02d", i);
    memset(body, 'a' + i % 26, 1000);
    body[1000] = 0;
    return mkobj(key, body);
}

/* The RAM tier keeps its objects as the policy's values: with every policy, objects put, replaced,
 * evicted, deleted and freed with the tier hold exactly the references they should (the test owns
 * one of each: it must be the only one left at the end; ASan sees any leak or double release). */
static void ram_tier_refs(void **state)
{
    static const enum edge_policy_kind kinds[] = {EDGE_POLICY_LRU, EDGE_POLICY_S3FIFO, EDGE_POLICY_SIEVE,
                                                  EDGE_POLICY_ADAPTIVE};
    enum { N = 60 };
    struct edge_obj *objs[N];
    for (int i = 0; i < N; i++)
        objs[i] = mkobj_n(i);
    uint64_t charge = edge_obj_charge(objs[0]);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        struct edge_ram *r = edge_ram_new(charge * 20 + charge / 2, kinds[k]);
        assert_non_null(r);
        for (int round = 0; round < 3; round++)
            for (int i = 0; i < N; i++) {
                char key[32];
                snprintf(key, sizeof(key), "http://h/e%02d", i % 25);
                struct edge_obj *g = edge_ram_get(r, key, strlen(key));
                if (g) {
                    assert_ptr_equal(g, objs[i % 25]);
                    edge_obj_release(g);
                } else {
                    assert_int_equal(edge_ram_put(r, objs[i % 25]), 0);
                }
                assert_int_equal(edge_ram_put(r, objs[25 + i % 35]), 0); /* replaced or new */
                assert_true(edge_ram_bytes(r) <= charge * 20 + charge / 2);
            }
        assert_true(edge_ram_count(r) <= 20);
        edge_ram_del_id(r, edge_key_id("http://h/e03", 12));
        assert_null(edge_ram_get(r, "http://h/e03", 12));
        edge_ram_free(r);
        for (int i = 0; i < N; i++)
            assert_int_equal(objs[i]->refs, 1);
    }
    for (int i = 0; i < N; i++)
        edge_obj_release(objs[i]);
}

/* Disk admission (admit.c): all takes everything; second-hit takes an id on its second miss while
 * the doorkeeper remembers it (between one and two windows of misses), not on its first. */
static void disk_admit(void **state)
{
    assert_int_equal(edge_admit_kind_parse("second-hit"), EDGE_ADMIT_SECOND_HIT);
    assert_int_equal(edge_admit_kind_parse("all"), EDGE_ADMIT_ALL);
    assert_int_equal(edge_admit_kind_parse("first-hit"), -1);
    struct edge_admit *all = edge_admit_new(EDGE_ADMIT_ALL, 0), *a = edge_admit_new(EDGE_ADMIT_SECOND_HIT, 7);
    assert_int_equal(edge_admit_miss(all, 1, 0, 0), 1);
    int first = 0;
    for (uint64_t id = 1; id <= 1000; id++)
        first += edge_admit_miss(a, id, 4096, 0);
    assert_true(first < 1000 / 10); /* only false positives (about 3%) */
    for (uint64_t id = 1; id <= 1000; id++)
        assert_int_equal(edge_admit_miss(a, id, 4096, 0), 1);
    /* 2 x 4096 other misses later, 1..1000 are forgotten (the window is at least 4096) */
    for (uint64_t id = 100000; id < 100000 + 2 * 4096 + 1; id++)
        edge_admit_miss(a, id, 4096, 0);
    int again = 0;
    for (uint64_t id = 1; id <= 1000; id++)
        again += edge_admit_miss(a, id, 4096, 0);
    assert_true(again < 1000 / 10);
    /* a larger window (the disk tier grew) resizes the filter at the next turn */
    for (uint64_t id = 200000; id < 200000 + 3 * 4096; id++)
        edge_admit_miss(a, id, 40000, 0);
    assert_true(edge_admit_bytes(a) >= 2 * 40000);
    edge_admit_free(all);
    edge_admit_free(a);
}

/* Through the store with the edge's default rule: while the disk tier has room everything is
 * written; once it is full, an object is written on its second store; a copy already on disk is
 * always replaced. */
static void store_second_hit(void **state)
{
    char sdir[] = "/tmp/t_edge_st2h.XXXXXX", err[256];
    assert_non_null(mkdtemp(sdir));
    struct edge_obj *a = mkobj("http://h/a", "one"), *a2 = mkobj("http://h/a", "two"), *e = mkobj_n(0);
    uint64_t charge = edge_obj_charge(e);
    edge_obj_release(e);
    /* room for 3 of those, and 16 bytes: nothing more fits */
    struct edge_store_conf c = {.ram_bytes = 1, .disk_bytes = 3 * charge + 16,
                                .ram_policy = EDGE_POLICY_ADAPTIVE, .dir = sdir, .disk_admit = EDGE_ADMIT_SECOND_HIT};
    struct edge_store *s = edge_store_open(&c, err, sizeof(err));
    assert_non_null(s);
    for (int i = 0; i < 3; i++) { /* room for 3: each is written on its first store */
        struct edge_obj *o = mkobj_n(i);
        edge_store_put(s, o);
        edge_obj_release(o);
    }
    edge_store_sync(s);
    assert_int_equal(edge_store_count(s, EDGE_TIER_DISK), 3);
    int tier, corrupt;
    edge_store_put(s, a); /* the tier is full: a first miss stays in RAM (which holds nothing here) */
    edge_store_sync(s);
    assert_null(edge_store_get(s, "http://h/a", 10, &tier, &corrupt));
    edge_store_put(s, a); /* the second is written, the oldest leaves */
    edge_store_sync(s);
    struct edge_obj *g = edge_store_get(s, "http://h/a", 10, &tier, &corrupt);
    assert_non_null(g);
    assert_int_equal(tier, EDGE_TIER_DISK);
    edge_obj_release(g);
    assert_int_equal(edge_store_count(s, EDGE_TIER_DISK), 3);
    edge_store_put(s, a2); /* a new version replaces the copy on disk, first miss or not */
    edge_store_sync(s);
    g = edge_store_get(s, "http://h/a", 10, &tier, &corrupt);
    assert_non_null(g);
    assert_int_equal(tier, EDGE_TIER_DISK);
    assert_memory_equal(g->body, "two", 3);
    edge_obj_release(g);
    edge_store_close(s);
    edge_obj_release(a);
    edge_obj_release(a2);
    rmtree(sdir);
}

/* A disk slower than the misses (the writer held): once 64 MiB of bodies wait in the queue, puts
 * are refused (counted) instead of growing the queue in RAM without bound, and a refused put of an
 * id already stored removes the older copy. Released, the writer stores what was accepted. */
static void rdb_backlog(void **state)
{
    char dir[] = "/tmp/t_edge_rdbq.XXXXXX", err[256], key[32];
    assert_non_null(mkdtemp(dir));
    struct edge_rdb *d = edge_rdb_open(dir, 1ull << 30, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    struct edge_obj *first = mkobj("http://h/q000", "x");
    assert_int_equal(edge_rdb_put(d, first), 0);
    edge_rdb_sync(d);
    edge_rdb_hold(d, 1);
    int accepted = 0, refused = 0;
    for (int i = 1; i <= 80; i++) {
        snprintf(key, sizeof(key), "http://h/q%03d", i);
        struct edge_obj *o = mkobj(key, "x");
        uint8_t *b = calloc(1, 1 << 20);
        assert_non_null(b);
        edge_obj_set_body(o, b, 1 << 20);
        if (edge_rdb_put(d, o) == 0)
            accepted++;
        else
            refused++;
        edge_obj_release(o);
    }
    assert_true(accepted >= 64 && accepted <= 66);
    assert_int_equal(accepted + refused, 80);
    int full;
    uint64_t errs, nref;
    edge_rdb_health(d, &full, &errs, &nref);
    assert_int_equal(nref, (uint64_t)refused);
    assert_int_equal(full, 0);
    /* a new copy of a stored id refused: the old one must not outlive it */
    assert_true(edge_rdb_has(d, "http://h/q000", 13));
    assert_int_equal(edge_rdb_put(d, first), -1);
    assert_false(edge_rdb_has(d, "http://h/q000", 13));
    edge_rdb_hold(d, 0);
    edge_rdb_sync(d);
    assert_int_equal(edge_rdb_count(d), (size_t)accepted);
    snprintf(key, sizeof(key), "http://h/q%03d", 80);
    assert_false(edge_rdb_has(d, key, strlen(key)));
    /* below the bound again: puts are taken */
    assert_int_equal(edge_rdb_put(d, first), 0);
    edge_rdb_close(d);
    edge_obj_release(first);
    rmtree(dir);
    (void)state;
}

/* A backlog of a thousand small puts (a writer held up: a slow disk, a busy core) goes out in
 * one batch: more records than one pwritev takes (IOV_MAX iovecs, three per record) are split,
 * not refused with EINVAL (which made the tier read-only for seconds). */
static void rdb_big_batch(void **state)
{
    char dir[] = "/tmp/t_edge_rdbm.XXXXXX", err[256], key[32];
    assert_non_null(mkdtemp(dir));
    struct edge_rdb *d = edge_rdb_open(dir, 64 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    edge_rdb_hold(d, 1);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "http://h/m%04d", i);
        struct edge_obj *o = mkobj(key, "small");
        assert_int_equal(edge_rdb_put(d, o), 0);
        edge_obj_release(o);
    }
    edge_rdb_hold(d, 0);
    edge_rdb_sync(d);
    int full, corrupt = 0;
    uint64_t errs, refused;
    edge_rdb_health(d, &full, &errs, &refused);
    assert_int_equal(errs, 0);
    assert_int_equal(full, 0);
    assert_int_equal(edge_rdb_count(d), 1000);
    edge_rdb_close(d);
    d = edge_rdb_open(dir, 64 << 20, NULL, NULL, err, sizeof(err)); /* all of them on disk */
    assert_non_null(d);
    assert_int_equal(edge_rdb_count(d), 1000);
    struct edge_obj *g = edge_rdb_get(d, "http://h/m0999", 14, &corrupt);
    assert_non_null(g);
    assert_memory_equal(g->body, "small", 5);
    edge_obj_release(g);
    edge_rdb_close(d);
    rmtree(dir);
    (void)state;
}

static void rdb_evict(void **state)
{
    char dir[] = "/tmp/t_edge_rdbev.XXXXXX", err[256], key[32];
    assert_non_null(mkdtemp(dir));
    struct edge_obj *probe = mkobj_n(0);
    uint64_t charge = edge_obj_charge(probe), cap = 4 * charge + charge / 2;
    edge_obj_release(probe);
    struct edge_rdb *d = edge_rdb_open(dir, cap, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    int corrupt = 0;
    for (int i = 0; i < 4; i++) {
        struct edge_obj *o = mkobj_n(i);
        assert_int_equal(edge_rdb_put(d, o), 0);
        edge_obj_release(o);
    }
    assert_int_equal(edge_rdb_count(d), 4);
    /* e00 used: e01 is now the least recent and goes first */
    edge_rdb_sync(d);
    struct edge_obj *g = edge_rdb_get(d, "http://h/e00", 12, &corrupt);
    assert_non_null(g);
    edge_obj_release(g);
    for (int i = 4; i < 20; i++) {
        struct edge_obj *o = mkobj_n(i);
        assert_int_equal(edge_rdb_put(d, o), 0);
        edge_obj_release(o);
        assert_true(edge_rdb_bytes(d) <= cap);
        assert_true(edge_rdb_count(d) <= 4);
        if (i == 4) { /* the first eviction took e01, not the used e00 */
            assert_false(edge_rdb_has(d, "http://h/e01", 12));
            assert_true(edge_rdb_has(d, "http://h/e00", 12));
        }
    }
    edge_rdb_sync(d);
    assert_int_equal(edge_rdb_count(d), 4);
    assert_true(edge_rdb_bytes(d) <= cap);
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "http://h/e%02d", i);
        assert_false(edge_rdb_has(d, key, strlen(key)));
        assert_null(edge_rdb_get(d, key, strlen(key), &corrupt));
        assert_int_equal(corrupt, 0);
    }
    for (int i = 16; i < 20; i++) {
        snprintf(key, sizeof(key), "http://h/e%02d", i);
        g = edge_rdb_get(d, key, strlen(key), &corrupt);
        assert_non_null(g);
        assert_int_equal(g->body_len, 1000);
        assert_int_equal(g->body[999], 'a' + i % 26);
        edge_obj_release(g);
    }
    edge_rdb_close(d);
    /* the evictions reached the database: reopened with room for all 20, 4 are there */
    d = edge_rdb_open(dir, 100 * charge, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(edge_rdb_count(d), 4);
    assert_false(edge_rdb_has(d, "http://h/e01", 12));
    assert_true(edge_rdb_has(d, "http://h/e19", 12));
    edge_rdb_close(d);
    rmtree(dir);

    /* through the store: disk tier of room for 3, RAM for nothing */
    char sdir[] = "/tmp/t_edge_stev.XXXXXX";
    assert_non_null(mkdtemp(sdir));
    struct edge_store_conf c = {.ram_bytes = 1, .disk_bytes = 3 * charge + charge / 2,
                                .ram_policy = EDGE_POLICY_LRU, .dir = sdir};
    struct edge_store *s = edge_store_open(&c, err, sizeof(err));
    assert_non_null(s);
    size_t most = 0;
    for (int i = 0; i < 10; i++) {
        struct edge_obj *o = mkobj_n(i);
        edge_store_put(s, o);
        edge_obj_release(o);
        size_t n = edge_store_count(s, EDGE_TIER_DISK);
        assert_true(n <= 3);
        if (n > most)
            most = n;
    }
    edge_store_sync(s);
    assert_int_equal(most, 3);
    assert_int_equal(edge_store_count(s, EDGE_TIER_DISK), 3);
    assert_int_equal(edge_store_count(s, EDGE_TIER_RAM), 0);
    assert_true(edge_store_bytes(s, EDGE_TIER_DISK) <= c.disk_bytes);
    int tier = -1;
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "http://h/e%02d", i);
        g = edge_store_get(s, key, strlen(key), &tier, &corrupt);
        if (i < 7) {
            assert_null(g);
        } else {
            assert_non_null(g);
            assert_int_equal(tier, EDGE_TIER_DISK);
            edge_obj_release(g);
        }
    }
    /* a purge of an evicted URL finds nothing; of a kept one, one object */
    assert_int_equal(edge_store_purge_url(s, "http://h/e02", 12), 0);
    assert_int_equal(edge_store_purge_url(s, "http://h/e09", 12), 1);
    assert_int_equal(edge_store_count(s, EDGE_TIER_DISK), 2);
    edge_store_close(s);
    rmtree(sdir);
}

/* Bytes under dir (regular files), for rdb_bounded. */
static uint64_t dir_bytes(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "du -sb %s", dir);
    FILE *f = popen(cmd, "r");
    unsigned long long n = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%llu", &n), 1);
    pclose(f);
    return n;
}

/* The disk tier's files stay near its capacity however much passes through it: 160 MiB of
 * 64 KiB bodies through an 8 MiB tier with a hot set. Before, every WAL file stayed until the
 * small meta family's memtable filled (tens of thousands of objects), and the folder grew with
 * every byte written (about 160 MB here). The body log's cleaning must move the hot records out
 * of segments that evictions made mostly garbage, so that they can go whole. */
static void rdb_bounded(void **state)
{
    char dir[] = "/var/tmp/t_edge_rdbb.XXXXXX", err[256], key[32];
    assert_non_null(mkdtemp(dir));
    uint64_t cap = 8 << 20;
    struct edge_rdb *d = edge_rdb_open(dir, cap, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    uint8_t *body = malloc(64 << 10);
    assert_non_null(body);
    int gc = 0;
    for (int i = 0; i < 2560; i++) {
        snprintf(key, sizeof(key), "http://h/b%05d", i);
        memset(body, i & 0xff, 64 << 10);
        struct edge_obj *o = mkobj(key, "x");
        uint8_t *b = malloc(64 << 10);
        assert_non_null(b);
        memcpy(b, body, 64 << 10);
        edge_obj_set_body(o, b, 64 << 10);
        assert_int_equal(edge_rdb_put(d, o), 0);
        edge_obj_release(o);
        if (i % 64 == 63) {
            edge_rdb_sync(d); /* the writer keeps up, as a disk does with a network's worth of misses */
            /* a hot set spread over the first segments (every 16th of the first 768) stays in use,
             * so those files are mostly garbage but cannot go whole: what cleaning is for */
            for (int h = 0; h < 768 && h <= i; h += 16) {
                int corrupt = 0;
                snprintf(key, sizeof(key), "http://h/b%05d", h);
                struct edge_obj *g = edge_rdb_get(d, key, strlen(key), &corrupt);
                assert_int_equal(corrupt, 0);
                edge_obj_release(g);
            }
        }
    }
    edge_rdb_sync(d);
    gc = edge_rdb_cleaned(d) > 0;
    assert_true(edge_rdb_bytes(d) <= cap);
    uint64_t used = dir_bytes(dir);
    print_message("# %llu bytes on disk (%llu in the body log) for a %llu-byte tier after 160 MiB of puts; "
                  "%llu segments cleaned\n", (unsigned long long)used, (unsigned long long)edge_rdb_log_bytes(d),
                  (unsigned long long)cap, (unsigned long long)edge_rdb_cleaned(d));
    assert_true(used < 3 * cap);
    /* the log's bound: the capacity + a quarter + two segments (1 MiB here), and one batch more */
    assert_true(edge_rdb_log_bytes(d) <= cap + cap / 4 + 3 * (1 << 20));
    assert_true(gc);
    /* what the index lists is there, whole */
    int corrupt = 0;
    snprintf(key, sizeof(key), "http://h/b%05d", 2559);
    assert_true(edge_rdb_has(d, key, strlen(key)));
    struct edge_obj *g = edge_rdb_get(d, key, strlen(key), &corrupt);
    assert_non_null(g);
    assert_int_equal(g->body_len, 64 << 10);
    assert_int_equal(g->body[0], 2559 & 0xff);
    edge_obj_release(g);
    edge_rdb_close(d);
    free(body);
    rmtree(dir);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idmap),     cmocka_unit_test(lru),
        cmocka_unit_test(s3fifo_scan_resistance),
        cmocka_unit_test(adaptive_follows_recency), cmocka_unit_test(policy_random_bound),
        cmocka_unit_test(lfu_size_by_hand), cmocka_unit_test(lfu_size_scan), cmocka_unit_test(adaptive_follows_frequency),
        cmocka_unit_test(obj_format), cmocka_unit_test(merge_304),
        cmocka_unit_test(ram_tier),  cmocka_unit_test(rdb_tier), cmocka_unit_test(ram_tier_refs), cmocka_unit_test(disk_admit),
        cmocka_unit_test(store_second_hit), cmocka_unit_test(rdb_evict), cmocka_unit_test(rdb_bounded), cmocka_unit_test(rdb_backlog), cmocka_unit_test(rdb_big_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
