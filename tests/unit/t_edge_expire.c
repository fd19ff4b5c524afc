/* Unit test of the RocksDB tier's expiry sweep (edge_rdb_expire): an object goes when it is stale
 * beyond both its stale-while-revalidate and stale-if-error windows, at a `now` the test passes
 * in; the delete reaches the database (a reopened tier does not find it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge/store/obj.h"
#include "edge/store/tier_ram.h"
#include "edge/store/tier_rdb.h"

#define T0 1700000000
/* fresh until T0 - 3 + lifetime (initial age 3), then the windows */
static struct edge_obj *mkobj(const char *key, int64_t lifetime, int64_t swr, int64_t sie)
{
    struct edge_hdr h[] = {{"Content-Type", 12, "text/plain", 10}};
    struct edge_fresh f = {.response_time = T0, .initial_age = 3, .lifetime = lifetime, .swr = swr, .sie = sie};
    struct edge_obj *o = edge_obj_new(key, strlen(key), strlen(key), 200, h, 1, "", 0, &f, T0 - 1);
    assert_non_null(o);
    edge_obj_set_body(o, (uint8_t *)strdup("body"), 4);
    return o;
}

/* A fresh folder for a RocksDB tier, and its removal. */
static void mkdir_tmp(char *dir) { assert_non_null(mkdtemp(dir)); }
static void rm_dir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static size_t sweep_keep(struct edge_rdb *d, int64_t now, int64_t keep)
{
    uint64_t ids[8];
    size_t total = 0;
    int wrapped = 0;
    while (!wrapped)
        total += edge_rdb_expire(d, now, keep, 3, ids, 8, &wrapped); /* small steps: the cursor is tested too */
    return total;
}

static size_t sweep(struct edge_rdb *d, int64_t now) { return sweep_keep(d, now, 0); }

/* keep: an object with a validator stays that much longer (a 304 can still renew it), one
 * without does not; after a reopen (the index rebuilt from the database) as well */
static void expire_keep(void **state)
{
    char dir[] = "/tmp/t_edge_keep.XXXXXX", err[256];
    mkdir_tmp(dir);
    struct edge_rdb *d = edge_rdb_open(dir, 1 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    struct edge_hdr he[] = {{"ETag", 4, "\"v\"", 3}}, hl[] = {{"Last-Modified", 13, "Tue, 14 Nov 2023 22:13:20 GMT", 29}};
    struct edge_fresh f = {.response_time = T0, .initial_age = 3, .lifetime = 60, .swr = -1, .sie = -1};
    struct edge_obj *o[3] = {edge_obj_new("http://h/etag", 13, 13, 200, he, 1, "", 0, &f, T0 - 1),
                             edge_obj_new("http://h/lm", 11, 11, 200, hl, 1, "", 0, &f, T0 - 1),
                             mkobj("http://h/none", 60, -1, -1)};
    for (int i = 0; i < 3; i++) {
        assert_non_null(o[i]);
        if (o[i]->body == NULL)
            edge_obj_set_body(o[i], (uint8_t *)strdup("body"), 4);
        assert_int_equal(edge_rdb_put(d, o[i]), 0);
    }
    edge_rdb_sync(d);
    assert_int_equal(sweep_keep(d, T0 + 57, 100), 1); /* only the one without a validator */
    assert_false(edge_rdb_has(d, "http://h/none", 13));
    assert_int_equal(sweep_keep(d, T0 + 156, 100), 0);
    edge_rdb_sync(d);
    edge_rdb_close(d);
    d = edge_rdb_open(dir, 1 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(sweep_keep(d, T0 + 156, 100), 0);
    assert_int_equal(sweep_keep(d, T0 + 157, 100), 2);
    assert_int_equal(edge_rdb_count(d), 0);
    edge_rdb_close(d);
    for (int i = 0; i < 3; i++)
        edge_obj_release(o[i]);
    rm_dir(dir);
}

static void expire_windows(void **state)
{
    char dir[] = "/tmp/t_edge_expire.XXXXXX", err[256];
    mkdir_tmp(dir);
    struct edge_rdb *d = edge_rdb_open(dir, 1 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    struct edge_obj *o[4] = {mkobj("http://h/none", 60, -1, -1), mkobj("http://h/swr", 60, 100, -1),
                             mkobj("http://h/sie", 60, 10, 600), mkobj("http://h/long", 3600, -1, -1)};
    for (int i = 0; i < 4; i++)
        assert_int_equal(edge_rdb_put(d, o[i]), 0);
    edge_rdb_sync(d);
    assert_int_equal(sweep(d, T0 + 56), 0);  /* all fresh (the first three stale at T0 + 57) */
    assert_int_equal(sweep(d, T0 + 57), 1);  /* "none" has no window */
    assert_false(edge_rdb_has(d, "http://h/none", 13));
    assert_true(edge_rdb_has(d, "http://h/swr", 12));
    assert_int_equal(sweep(d, T0 + 156), 0); /* swr window: up to T0 + 157 */
    assert_int_equal(sweep(d, T0 + 157), 1);
    assert_int_equal(sweep(d, T0 + 656), 0); /* the larger window (sie 600) counts */
    assert_int_equal(sweep(d, T0 + 657), 1);
    assert_int_equal(edge_rdb_count(d), 1);
    assert_true(edge_rdb_has(d, "http://h/long", 13));
    edge_rdb_sync(d);
    edge_rdb_close(d);
    /* the deletes are in the database; the survivor is swept after a restart too */
    d = edge_rdb_open(dir, 1 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(edge_rdb_count(d), 1);
    assert_int_equal(sweep(d, T0 + 3597), 1);
    assert_int_equal(edge_rdb_count(d), 0);
    edge_rdb_close(d);
    for (int i = 0; i < 4; i++)
        edge_obj_release(o[i]);
    rm_dir(dir);
}

/* issue 19: a get while the writer has not yet written a put (a loaded disk; the RAM tier may
 * have evicted the object already) finds the queued object, not a miss: a miss there made a
 * stale copy invisible to stale-if-error. A delete hides the queued put; after the write the
 * database answers. The writer is held to make the window explicit. */
static void queued_put_is_found(void **state)
{
    char dir[] = "/tmp/t_edge_queued.XXXXXX", err[256];
    mkdir_tmp(dir);
    struct edge_rdb *d = edge_rdb_open(dir, 1 << 20, NULL, NULL, err, sizeof(err));
    assert_non_null(d);
    int corrupt = 0;
    struct edge_obj *o = mkobj("http://h/q", 1, -1, 600);
    edge_rdb_hold(d, 1);
    assert_int_equal(edge_rdb_put(d, o), 0);
    struct edge_obj *g = edge_rdb_get(d, "http://h/q", 10, &corrupt);
    assert_non_null(g); /* before the fix: NULL (the index knew it, RocksDB did not yet) */
    assert_int_equal(corrupt, 0);
    assert_int_equal(g->body_len, 4);
    assert_memory_equal(g->body, "body", 4);
    assert_int_equal(g->fresh.sie, 600);
    edge_obj_release(g);
    assert_null(edge_rdb_get(d, "http://h/other", 14, &corrupt)); /* another key: still a miss */
    edge_rdb_del_id(d, edge_key_id("http://h/q", 10));
    assert_null(edge_rdb_get(d, "http://h/q", 10, &corrupt)); /* the delete hides the queued put */
    assert_int_equal(edge_rdb_put(d, o), 0);
    edge_rdb_hold(d, 0);
    edge_rdb_sync(d);
    assert_non_null(g = edge_rdb_get(d, "http://h/q", 10, &corrupt)); /* from the database now */
    assert_true(g != o);
    edge_obj_release(g);
    edge_obj_release(o);
    edge_rdb_close(d);
    rm_dir(dir);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(expire_windows), cmocka_unit_test(expire_keep),
                                       cmocka_unit_test(queued_put_is_found)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
