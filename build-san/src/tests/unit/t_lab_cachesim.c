/* Unit tests for cdn-cachesim's parts: the trace readers (lab/lib/trace.c: oracleGeneral, CSV, zstd;
 * truncated and corrupt input), the replay (lab/cachesim/replay.c: LRU against a hand-computed
 * expectation) and SIEVE in edge/store/policy.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "lab/cachesim/cachesim.h"
#include "lab/lib/trace.h"
#include "edge/store/policy.h"

static void put_og(unsigned char *p, uint32_t ts, uint64_t id, uint32_t size, int64_t next)
{
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(ts >> (8 * k));
    for (int k = 0; k < 8; k++) p[4 + k] = (unsigned char)(id >> (8 * k));
    for (int k = 0; k < 4; k++) p[12 + k] = (unsigned char)(size >> (8 * k));
    for (int k = 0; k < 8; k++) p[16 + k] = (unsigned char)((uint64_t)next >> (8 * k));
}

static void test_og(void **state)
{
    unsigned char buf[24 * 3 + 5];
    put_og(buf, 1, 7, 1000, 3);
    put_og(buf + 24, 2, 1234567890123ull, 4000000000u, -1);
    put_og(buf + 48, 3, 7, 1000, -1);
    struct lab_trace t = {0};
    char err[200];
    assert_int_equal(lab_trace_parse_og(buf, 72, 0, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 3);
    assert_true(t.r[1].id == 1234567890123ull && t.r[1].size == 4000000000u && t.r[1].ts == 2);
    assert_true(t.r[2].id == 7 && t.r[2].size == 1000);
    lab_trace_free(&t);
    /* a record cut short is an error that says so, not a shorter trace */
    assert_int_equal(lab_trace_parse_og(buf, sizeof(buf), 0, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated"));
    /* ... unless the limit stops before it */
    assert_int_equal(lab_trace_parse_og(buf, sizeof(buf), 2, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    lab_trace_free(&t);
    assert_int_equal(lab_trace_parse_og(buf, 23, 0, &t, err, sizeof(err)), -1);
}

static void test_csv(void **state)
{
    struct lab_trace t = {0};
    char err[200];
    /* cloudPhysicsIO.csv's layout: header names the columns; CRLF and blank lines are fine */
    const char *cp = "version,time,op,size,lbn\r\n1,5633898,28,4096,81920\r\n\n1,5633899,2a,512,3\r\n";
    assert_int_equal(lab_trace_parse_csv(cp, strlen(cp), NULL, 0, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    assert_true(t.r[0].id == 81920 && t.r[0].size == 4096 && t.r[0].ts == 5633898);
    assert_true(t.r[1].id == 3 && t.r[1].size == 512);
    lab_trace_free(&t);
    /* no header: the columns must be given */
    const char *nh = "1,http://a/x,100\n2,http://a/y,200\n3,http://a/x,100\n";
    assert_int_equal(lab_trace_parse_csv(nh, strlen(nh), NULL, 0, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no id column"));
    struct lab_csv_cols c;
    assert_int_equal(lab_csv_cols_parse("id=2,size=3,time=1", &c), 0);
    assert_true(c.id == 2 && c.size == 3 && c.ts == 1);
    assert_int_equal(lab_trace_parse_csv(nh, strlen(nh), &c, 0, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 3);
    assert_true(t.r[0].id == t.r[2].id && t.r[0].id != t.r[1].id); /* string ids hashed, stably */
    lab_trace_free(&t);
    assert_int_equal(lab_trace_parse_csv(nh, strlen(nh), &c, 2, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    lab_trace_free(&t);
    /* errors name the line and the field */
    const char *bad = "id,size\n1,100\n2,lots\n";
    assert_int_equal(lab_trace_parse_csv(bad, strlen(bad), NULL, 0, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "line 3: size: not a number below 2^32");
    lab_trace_free(&t);
    const char *shortl = "id,size\n1,100\n2\n";
    assert_int_equal(lab_trace_parse_csv(shortl, strlen(shortl), NULL, 0, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 3"));
    lab_trace_free(&t);
    const char *big = "id,size\n1,4294967296\n";
    assert_int_equal(lab_trace_parse_csv(big, strlen(big), NULL, 0, &t, err, sizeof(err)), -1);
    lab_trace_free(&t);
    assert_int_equal(lab_csv_cols_parse("id=0,size=1", &c), -1);
    assert_int_equal(lab_csv_cols_parse("foo=1", &c), -1);
    assert_int_equal(lab_csv_cols_parse("id=1,", &c), 0); /* a trailing comma is harmless */
}

static void test_zstd(void **state)
{
    unsigned char raw[24 * 100];
    for (int i = 0; i < 100; i++) put_og(raw + 24 * i, (uint32_t)i, (uint64_t)(i % 7) + 1, 100, -1);
    size_t bound = ZSTD_compressBound(sizeof(raw));
    unsigned char *z = malloc(2 * bound);
    size_t zn = ZSTD_compress(z, bound, raw, sizeof(raw), 3);
    assert_false(ZSTD_isError(zn));
    assert_true(lab_trace_is_zstd(z, zn));
    assert_false(lab_trace_is_zstd(raw, sizeof(raw)));
    void *out;
    size_t on;
    char err[200];
    assert_int_equal(lab_trace_unzstd(z, zn, 1 << 20, &out, &on, err, sizeof(err)), 0);
    assert_int_equal(on, sizeof(raw));
    assert_memory_equal(out, raw, sizeof(raw));
    free(out);
    /* two frames back to back read as one stream */
    memcpy(z + zn, z, zn);
    assert_int_equal(lab_trace_unzstd(z, 2 * zn, 1 << 20, &out, &on, err, sizeof(err)), 0);
    assert_int_equal(on, 2 * sizeof(raw));
    free(out);
    /* cut short */
    assert_int_equal(lab_trace_unzstd(z, zn - 3, 1 << 20, &out, &on, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "zstd"));
    assert_null(out);
    /* over the cap */
    assert_int_equal(lab_trace_unzstd(z, zn, 1000, &out, &on, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than 1000"));
    /* corrupt: garbage after a valid magic */
    unsigned char junk[64];
    memset(junk, 0xA5, sizeof(junk));
    memcpy(junk, "\x28\xB5\x2F\xFD", 4);
    assert_int_equal(lab_trace_unzstd(junk, sizeof(junk), 1 << 20, &out, &on, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "zstd: "));

    /* through a file: detected by content; the name picks oracleGeneral */
    char path[] = "/tmp/t_lab_cachesim.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, z, zn), (ssize_t)zn);
    close(fd);
    struct lab_trace t = {0};
    assert_int_equal(lab_trace_load(path, LAB_TRACE_AUTO, NULL, 0, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 100);
    assert_true(t.r[99].id == 99 % 7 + 1 && t.r[99].ts == 99);
    lab_trace_free(&t);
    /* the same file cut short: a clear error naming the file */
    assert_int_equal(truncate(path, (off_t)(zn - 5)), 0);
    assert_int_equal(lab_trace_load(path, LAB_TRACE_AUTO, NULL, 0, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "zstd"));
    unlink(path);
    assert_int_equal(lab_trace_load(path, LAB_TRACE_AUTO, NULL, 0, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
    free(z);

    assert_int_equal(lab_trace_fmt_guess("a/b.csv.zst"), LAB_TRACE_CSV);
    assert_int_equal(lab_trace_fmt_guess("x.oracleGeneral.bin.zst"), LAB_TRACE_OG);
    assert_int_equal(lab_trace_fmt_parse("oracleGeneral"), LAB_TRACE_OG);
    assert_int_equal(lab_trace_fmt_parse("nope"), -1);
}

/* LRU at 300 bytes over a trace worked through by hand (A is id 0, which the policy reserves):
 *   1 A100 miss [A]        2 B100 miss [B A]      3 C100 miss [C B A]   4 A hit [A C B]
 *   5 D100 miss, out B     6 B miss, out C [B D A]
 *   7 F400 miss, larger than the cache: not admitted, nothing evicted   8 A hit [A B D]
 *   9 E250 miss, out D B A [E]                   10 A miss, out E [A]
 * 8 misses of 10; requested 1450 bytes, hits 200, so 1250 missed. 6 objects, 1050 bytes. */
static void test_lru_by_hand(void **state)
{
    enum { A = 0, B, C, D, E, F };
    static const struct lab_trace_rec recs[] = {{A, 100, 0}, {B, 100, 0}, {C, 100, 0}, {A, 100, 0}, {D, 100, 0},
                                                {B, 100, 0}, {F, 400, 0}, {A, 100, 0}, {E, 250, 0}, {A, 100, 0}};
    struct lab_trace t = {(struct lab_trace_rec *)recs, 10, 10};
    struct lab_sim_ws ws;
    assert_int_equal(lab_sim_working_set(&t, &ws), 0);
    assert_true(ws.reqs == 10 && ws.objects == 6 && ws.bytes == 1050 && ws.req_bytes == 1450);
    struct lab_sim_result r;
    assert_int_equal(lab_sim_run(&t, EDGE_POLICY_LRU, 300, &r), 0);
    assert_int_equal(r.reqs, 10);
    assert_int_equal(r.misses, 8);
    assert_int_equal(r.req_bytes, 1450);
    assert_int_equal(r.miss_bytes, 1250);
    /* a cache holding everything misses only the first sight of each object */
    assert_int_equal(lab_sim_run(&t, EDGE_POLICY_LRU, 1050, &r), 0);
    assert_int_equal(r.misses, 6);
    assert_int_equal(r.miss_bytes, 1050);
}

static void test_sizes(void **state)
{
    struct lab_sim_size s[8];
    size_t n;
    assert_int_equal(lab_sim_sizes_parse("0.1%,1%,10%,64M,1G,5000", s, 8, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(lab_sim_size_bytes(&s[0], 2000000), 2000);
    assert_int_equal(lab_sim_size_bytes(&s[2], 2000000), 200000);
    assert_int_equal(lab_sim_size_bytes(&s[3], 1), 64ull << 20);
    assert_int_equal(lab_sim_size_bytes(&s[4], 1), 1ull << 30);
    assert_int_equal(lab_sim_size_bytes(&s[5], 1), 5000);
    assert_string_equal(s[0].label, "0.1%");
    const char *bad[] = {"", "0%", "x", "1%,", "200%", "5Q", "-1", ",1%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(lab_sim_sizes_parse(bad[i], s, 8, &n), -1);
    assert_int_equal(lab_sim_sizes_parse("1%,2%,3%", s, 2, &n), -1); /* more than fit */
}

static uint64_t evicted[16];
static int nev;
static void on_evict(uint64_t id, void *data) { evicted[nev++] = id; }

/* SIEVE by hand, 3 slots of 100: the hand starts at the oldest, spares visited ids once (clearing
 * the bit) and walks towards the newest, wrapping to the oldest. */
static void test_sieve(void **state)
{
    assert_int_equal(edge_policy_kind_parse("sieve"), EDGE_POLICY_SIEVE);
    assert_string_equal(edge_policy_kind_name(EDGE_POLICY_SIEVE), "sieve");
    struct edge_policy *p = edge_policy_new(EDGE_POLICY_SIEVE, 300);
    nev = 0;
    for (uint64_t id = 1; id <= 3; id++) assert_int_equal(edge_policy_insert(p, id, 100, on_evict, NULL), 0);
    assert_true(edge_policy_hit(p, 1)); /* queue (new..old): 3 2 1*; hits never reorder */
    assert_int_equal(edge_policy_insert(p, 4, 100, on_evict, NULL), 0);
    assert_int_equal(nev, 1);
    assert_int_equal(evicted[0], 2); /* 1 spared (LRU would evict 2 as well, but for another reason) */
    assert_true(edge_policy_hit(p, 3)); /* 4 3* 1, hand at 3 */
    assert_int_equal(edge_policy_insert(p, 5, 100, on_evict, NULL), 0);
    assert_int_equal(evicted[1], 4); /* LRU would evict 1 here */
    assert_true(edge_policy_contains(p, 1));
    assert_int_equal(edge_policy_insert(p, 6, 100, on_evict, NULL), 0);
    assert_int_equal(evicted[2], 1); /* hand wrapped to the oldest; its bit was cleared */
    assert_true(edge_policy_hit(p, 3)); /* 6 5 3*, hand at 3 */
    assert_int_equal(edge_policy_insert(p, 7, 100, on_evict, NULL), 0);
    assert_int_equal(evicted[3], 5); /* 7 6 3, hand at 6 */
    /* removing the id under the hand moves the hand on to the next newer (7), not to the tail (3) */
    assert_true(edge_policy_remove(p, 6));
    assert_int_equal(edge_policy_insert(p, 8, 100, on_evict, NULL), 0);
    assert_int_equal(nev, 4);
    assert_int_equal(edge_policy_insert(p, 9, 100, on_evict, NULL), 0);
    assert_int_equal(evicted[4], 7);
    assert_int_equal(edge_policy_count(p), 3);
    assert_int_equal(edge_policy_bytes(p), 300);
    assert_int_equal(edge_policy_insert(p, 10, 301, on_evict, NULL), -1);
    edge_policy_free(p);
}

static uint64_t s3ev[64];
static int ns3ev;
static void on_s3evict(uint64_t id, void *data) { s3ev[ns3ev++] = id; }
/* inserts ids [from, to] and checks that exactly want[0..n) were evicted, in that order */
static void s3_ins(struct edge_policy *p, uint64_t from, uint64_t to, const uint64_t *want, int n)
{
    ns3ev = 0;
    for (uint64_t id = from; id <= to; id++) assert_int_equal(edge_policy_insert(p, id, 50, on_s3evict, NULL), 0);
    assert_int_equal(ns3ev, n);
    for (int i = 0; i < n; i++) assert_int_equal(s3ev[i], want[i]);
}

/* S3-FIFO by hand, as libCacheSim's S3FIFO.c: 1000 bytes, ids of 50 bytes. Small is 100 bytes
 * (2 ids), main 900 (18), the ghost 900 bytes (18 ids). */
static void test_s3fifo(void **state)
{
    struct edge_policy *p = edge_policy_new(EDGE_POLICY_S3FIFO, 1000);
    assert_int_equal(edge_policy_max_size(p), 99); /* below 10% of the capacity */
    assert_int_equal(edge_policy_insert(p, 99, 100, on_s3evict, NULL), -1);
    /* warm-up: 1 2 fill small, 3..20 go to main while nothing has been evicted yet */
    s3_ins(p, 1, 20, NULL, 0);
    assert_true(edge_policy_hit(p, 5)); /* main, freq 1 */
    /* each new id pushes small's oldest (hit fewer than 2 times) out to the ghost: 1 2 21..36 */
    s3_ins(p, 21, 38, (const uint64_t[]){1, 2, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36}, 18);
    /* 1 is the ghost's oldest: it leaves the ghost before small evicts 37 into the full ghost, so
     * 1 returns to main */
    s3_ins(p, 1, 1, (const uint64_t[]){37}, 1);
    /* 2 (ghost) to main too; main is over its 900 bytes, so main evicts its oldest: 3, then 4 */
    s3_ins(p, 2, 2, (const uint64_t[]){3}, 1);
    s3_ins(p, 39, 39, (const uint64_t[]){4}, 1);
    /* small evicts 38 and 39; the ghost is full, so 21 leaves it, then 22 */
    s3_ins(p, 40, 41, (const uint64_t[]){38, 39}, 2);
    s3_ins(p, 21, 21, (const uint64_t[]){40}, 1); /* no longer a ghost: to small, small evicts */
    s3_ins(p, 23, 23, (const uint64_t[]){41}, 1); /* still a ghost: to main, over 900 again */
    /* main's oldest is 5, hit once: reinserted with its count down to 0, and 6 goes */
    s3_ins(p, 42, 42, (const uint64_t[]){6}, 1);
    assert_true(edge_policy_contains(p, 5));
    /* small holds 21 42: 21 hit twice moves to main at the tail, 42 hit once goes to the ghost */
    assert_true(edge_policy_hit(p, 21) && edge_policy_hit(p, 21) && edge_policy_hit(p, 42));
    s3_ins(p, 43, 43, (const uint64_t[]){42}, 1);
    s3_ins(p, 44, 44, (const uint64_t[]){7}, 1); /* main is over 900 with 21 */
    assert_true(edge_policy_contains(p, 21));
    assert_int_equal(edge_policy_bytes(p), 1000);
    assert_int_equal(edge_policy_count(p), 20);
    edge_policy_free(p);
    p = edge_policy_new(EDGE_POLICY_SIEVE, 1000);
    assert_int_equal(edge_policy_max_size(p), 1000);
    edge_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_og),    cmocka_unit_test(test_csv),   cmocka_unit_test(test_zstd),
        cmocka_unit_test(test_lru_by_hand), cmocka_unit_test(test_sizes), cmocka_unit_test(test_sieve),
        cmocka_unit_test(test_s3fifo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
