/* tests/bench/purge_store.c - does a purge of a tag that covers many objects stall hits? Fills a
 * store (RAM tier, and RocksDB with -d DIR) with N objects all tagged "big" plus 1000 hot objects,
 * then measures the latency of hits on the hot objects from T reader threads, first alone, then
 * while one thread (as the purge bus's does) purges the tag "big"; prints p50, p99 and max of each
 * phase and the purge's own time.
 *
 *   make tests/bench/purge_store && tests/bench/purge_store [-n 100000] [-t 2] [-d DIR]
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edge/purge/cmd.h"
#include "edge/store/obj.h"
#include "edge/store/store.h"

static struct edge_store *st;
static volatile int phase; /* 0 warm, 1 measure alone, 2 measure during the purge, 3 stop */
#define MAXS 4000000
struct lat {
    double *v;
    size_t n;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct edge_obj *mk(const char *key, const char *tags)
{
    struct edge_hdr h[] = {{"Content-Type", 12, "text/plain", 10}, {"Surrogate-Key", 13, tags, strlen(tags)}};
    struct edge_fresh f = {.response_time = time(NULL), .lifetime = 3600, .swr = -1, .sie = -1};
    struct edge_obj *o = edge_obj_new(key, strlen(key), strlen(key), 200, h, 2, "", 0, &f, time(NULL) - 10);
    edge_obj_set_body(o, (uint8_t *)strdup("0123456789012345678901234567890123456789"), 40);
    return o;
}

static void *reader(void *arg)
{
    struct lat *l = arg; /* l[0]: alone, l[1]: during */
    char key[64];
    unsigned r = (unsigned)(uintptr_t)arg;
    while (phase != 3) {
        int p = phase;
        snprintf(key, sizeof(key), "https://img.shop.test/hot/%u", (r = r * 1103515245u + 12345u) % 1000);
        int tier, corrupt;
        double t0 = now();
        struct edge_obj *o = edge_store_get(st, key, strlen(key), &tier, &corrupt);
        int soft = edge_store_is_soft(st, key, strlen(key));
        double dt = now() - t0;
        (void)soft;
        edge_obj_release(o);
        if ((p == 1 || p == 2) && l[p - 1].n < MAXS)
            l[p - 1].v[l[p - 1].n++] = dt;
    }
    return NULL;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, size_t n)
{
    if (n == 0) {
        printf("%-28s no samples\n", what);
        return;
    }
    qsort(v, n, sizeof(*v), cmpd);
    printf("%-28s %9zu hits  p50 %7.1f us  p99 %7.1f us  max %8.1f us\n", what, n, v[n / 2] * 1e6,
           v[(size_t)((double)n * 0.99)] * 1e6, v[n - 1] * 1e6);
}

int main(int argc, char **argv)
{
    int n = 100000, threads = 2, ch;
    const char *dir = NULL;
    while ((ch = getopt(argc, argv, "n:t:d:")) != -1) {
        if (ch == 'n')
            n = atoi(optarg);
        else if (ch == 't')
            threads = atoi(optarg);
        else if (ch == 'd')
            dir = optarg;
        else {
            fprintf(stderr, "usage: purge_store [-n OBJECTS] [-t READERS] [-d ROCKSDB-DIR]\n");
            return 2;
        }
    }
    char err[256];
    struct edge_store_conf c = {.ram_bytes = 1ULL << 30, .disk_bytes = 8ULL << 30, .ram_policy = EDGE_POLICY_LRU,
                                .dir = dir};
    if ((st = edge_store_open(&c, err, sizeof(err))) == NULL) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    double t0 = now();
    char key[64];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "https://img.shop.test/big/%d", i);
        struct edge_obj *o = mk(key, "big");
        edge_store_put(st, o);
        edge_obj_release(o);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "https://img.shop.test/hot/%d", i);
        struct edge_obj *o = mk(key, "hot");
        edge_store_put(st, o);
        edge_obj_release(o);
    }
    edge_store_sync(st);
    printf("filled %d objects tagged 'big' and 1000 hot ones in %.2f s (%s)\n", n, now() - t0,
           dir ? "RAM + RocksDB" : "RAM tier only");
    pthread_t th[16];
    struct lat l[16][2];
    if (threads < 1 || threads > 16)
        threads = 2;
    for (int i = 0; i < threads; i++) {
        for (int k = 0; k < 2; k++) {
            l[i][k].v = malloc(MAXS * sizeof(double));
            l[i][k].n = 0;
        }
        pthread_create(&th[i], NULL, reader, l[i]);
    }
    usleep(200000);
    phase = 1;
    usleep(500000);
    phase = 2;
    static struct edge_purge_cmd cmd;
    edge_purge_parse("tag big", 7, NULL, &cmd, err, sizeof(err));
    double p0 = now();
    size_t removed = edge_store_purge(st, &cmd, (int64_t)time(NULL) * 1000);
    double pt = now() - p0;
    phase = 3;
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    printf("purge of tag 'big': %zu objects in %.3f s, on its own thread\n", removed, pt);
    for (int k = 0; k < 2; k++) {
        size_t tot = 0;
        for (int i = 0; i < threads; i++)
            tot += l[i][k].n;
        double *all = malloc((tot ? tot : 1) * sizeof(double));
        size_t o = 0;
        for (int i = 0; i < threads; i++) {
            memcpy(all + o, l[i][k].v, l[i][k].n * sizeof(double));
            o += l[i][k].n;
        }
        report(k == 0 ? "hits before the purge (0.5 s)" : "hits during the purge", all, tot);
        free(all);
    }
    edge_store_close(st);
    return 0;
}
