/* lab/cachesim/cdn_cachesim.c - cdn-cachesim: replays cache traces through the edge's eviction policies
 * (edge/store/policy.c) at byte capacities and prints object and byte miss ratios, so that a policy
 * change is judged on real numbers before it reaches the edge. The replay itself is in
 * replay.c, the trace readers in lab/lib/trace.c; this file is the command line and the table. */
#include "config.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lab/cachesim/cachesim.h"
#include "edge/store/admit.h"
#include "edge/store/policy.h"
#include "lab/lib/trace.h"

#define PROG "cdn-cachesim"
#define MAX_POL 8
/* offline references, beside the edge_policy_kind values */
#define POL_BELADY 100
#define POL_BELADY_SIZE 101
#define MAX_SIZES 32

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " [options] TRACE...\n"
               "Replays each TRACE through the edge's eviction policies; prints object and byte miss ratios.\n"
               "  -p, --policy LIST   policies side by side: lru,s3fifo,sieve,adaptive (also lfu-size,\n"
               "                      and adaptive2, the previous default), the offline references\n"
               "                      belady,belady-size, or all (default all: the four, belady, belady-size)\n"
               "  -s, --size LIST     cache sizes: %% of the working-set bytes or bytes with K/M/G/T\n"
               "                      (powers of 1024), e.g. 0.1%%,1%%,10%%,64M (default 0.1%%,1%%,10%%)\n"
               "  -f, --format F      auto | oracleGeneral | csv (default auto: *.csv[.zst] is CSV)\n"
               "      --csv-cols C    CSV columns, 1-based: id=N,size=N[,time=N] (default: from the header)\n"
               "  -n, --limit N       replay only the first N requests\n"
               "  -D, --disk LIST     also replay two tiers: each -s size as RAM (each online -p policy)\n"
               "                      in front of a disk tier of each of these sizes (same units)\n"
               "  -A, --disk-admit L  the disk tier's admission rules side by side: all,second-hit\n"
               "                      (default both)\n"
               "  -h, --help, --version\n"
               "Traces may be zstd-compressed (.zst, detected by content). oracleGeneral: 24-byte little-endian\n"
               "records (u32 time, u64 id, u32 size, i64 next access); CSV: a header line naming the columns.\n");
}

static int parse_policies(const char *s, int *out, size_t *n)
{
    *n = 0;
    if (!strcmp(s, "all")) {
        out[0] = EDGE_POLICY_LRU, out[1] = EDGE_POLICY_S3FIFO, out[2] = EDGE_POLICY_SIEVE;
        out[3] = EDGE_POLICY_ADAPTIVE;
        out[4] = POL_BELADY, out[5] = POL_BELADY_SIZE;
        *n = 6;
        return 0;
    }
    char buf[256];
    if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf)) return -1;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = !strcmp(t, "belady") ? POL_BELADY : !strcmp(t, "belady-size") ? POL_BELADY_SIZE : edge_policy_kind_parse(t);
        if (k < 0 || *n == MAX_POL) return -1;
        out[(*n)++] = k;
    }
    return *n ? 0 : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0; }

static const char *pol_name(int k)
{
    return k == POL_BELADY ? "belady" : k == POL_BELADY_SIZE ? "belady-size" : edge_policy_kind_name(k);
}

static int is_offline(int k) { return k == POL_BELADY || k == POL_BELADY_SIZE; }

/* What the options say, for every trace. */
struct sim_opts {
    int pols[MAX_POL];
    size_t npol, nsz, ndisk, nadmit;
    struct lab_sim_size sizes[MAX_SIZES], disks[MAX_SIZES];
    int admits[2];
    struct lab_csv_cols cols;
    int fmt;
    size_t limit;
};

/* One trace: read it, every size x policy, the table on stdout, the speed on stderr; 0 or 1. */
static int sim_trace(const char *path, const struct sim_opts *o)
{
    int rc = 0;
    struct lab_trace t = {0};
    char err[512];
    double t0 = now_s();
    if (lab_trace_load(path, (enum lab_trace_fmt)o->fmt, &o->cols, o->limit, &t, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    struct lab_sim_ws ws;
    if (lab_sim_working_set(&t, &ws) < 0) {
        fprintf(stderr, PROG ": %s: out of memory\n", path);
        lab_trace_free(&t);
        return 1;
    }
    double t1 = now_s();
    printf("trace %s\n", path);
    printf("requests %llu  objects %llu  working_set_bytes %llu  requested_bytes %llu\n",
           (unsigned long long)ws.reqs, (unsigned long long)ws.objects, (unsigned long long)ws.bytes,
           (unsigned long long)ws.req_bytes);
    uint32_t *next = NULL;
    int offline = 0;
    for (size_t p = 0; p < o->npol; p++)
        offline |= is_offline(o->pols[p]);
    if (offline && lab_sim_next(&t, &next) < 0) {
        fprintf(stderr, PROG ": %s: out of memory\n", path);
        lab_trace_free(&t);
        return 1;
    }
    /* obj_gap / byte_gap: this miss ratio over the best offline reference's (if one was asked);
     * meta/obj: the policy's own bytes (nodes, ghosts, maps, minis) per id it holds at the end */
    printf("%-11s %-8s %15s %10s %10s %10s %15s %8s %8s %8s\n", "policy", "size", "cache_bytes", "obj_miss",
           "byte_miss", "misses", "miss_bytes", "obj_gap", "byte_gap", "meta/obj");
    for (size_t s = 0; s < o->nsz && rc == 0; s++) {
        uint64_t cap = lab_sim_size_bytes(&o->sizes[s], ws.bytes);
        struct lab_sim_result r[MAX_POL];
        double best_obj = -1, best_byte = -1;
        for (int pass = 0; pass < 2 && rc == 0; pass++) /* the offline ones first: the gaps need them */
            for (size_t p = 0; p < o->npol; p++) {
                int k = o->pols[p];
                if (is_offline(k) != !pass)
                    continue;
                int e = is_offline(k) ? lab_sim_offline(&t, next, k == POL_BELADY_SIZE, cap, &r[p])
                                      : lab_sim_run(&t, k, cap, &r[p]);
                if (e < 0) {
                    fprintf(stderr, PROG ": %s: out of memory\n", path);
                    rc = 1;
                    break;
                }
                if (is_offline(k)) {
                    double ob = ratio(r[p].misses, r[p].reqs), by = ratio(r[p].miss_bytes, r[p].req_bytes);
                    best_obj = best_obj < 0 || ob < best_obj ? ob : best_obj;
                    best_byte = best_byte < 0 || by < best_byte ? by : best_byte;
                }
            }
        for (size_t p = 0; p < o->npol && rc == 0; p++) {
            double ob = ratio(r[p].misses, r[p].reqs), by = ratio(r[p].miss_bytes, r[p].req_bytes);
            printf("%-11s %-8s %15llu %10.6f %10.6f %10llu %15llu", pol_name(o->pols[p]), o->sizes[s].label,
                   (unsigned long long)cap, ob, by, (unsigned long long)r[p].misses,
                   (unsigned long long)r[p].miss_bytes);
            if (best_obj > 0 && best_byte > 0)
                printf(" %8.3f %8.3f", ob / best_obj, by / best_byte);
            else
                printf(" %8s %8s", "-", "-");
            if (r[p].resident)
                printf(" %8.0f\n", (double)r[p].meta_bytes / (double)r[p].resident);
            else
                printf(" %8s\n", "-");
        }
    }
    free(next);
    /* two tiers: total miss ratios, RAM's share of the hits, disk writes per request */
    if (o->ndisk > 0 && rc == 0)
        printf("%-11s %-8s %-8s %-10s %10s %10s %10s %10s %11s %13s\n", "tiers", "ram", "disk", "admit", "obj_miss",
               "byte_miss", "ram_hits", "disk_hits", "writes/req", "wbytes/req");
    for (size_t s = 0; s < o->nsz && rc == 0; s++)
        for (size_t d = 0; d < o->ndisk && rc == 0; d++)
            for (size_t p = 0; p < o->npol && rc == 0; p++) {
                if (is_offline(o->pols[p]))
                    continue;
                for (size_t a = 0; a < o->nadmit; a++) {
                    struct lab_sim_tiers r;
                    uint64_t rc_ = lab_sim_size_bytes(&o->sizes[s], ws.bytes), dc = lab_sim_size_bytes(&o->disks[d], ws.bytes);
                    if (lab_sim_two_tier(&t, o->pols[p], rc_, dc, o->admits[a], &r) < 0) {
                        fprintf(stderr, PROG ": %s: out of memory\n", path);
                        rc = 1;
                        break;
                    }
                    printf("%-11s %-8s %-8s %-10s %10.6f %10.6f %10.6f %10.6f %11.6f %13.0f\n", pol_name(o->pols[p]),
                           o->sizes[s].label, o->disks[d].label, edge_admit_kind_name(o->admits[a]),
                           1 - ratio(r.ram_hits + r.disk_hits, r.reqs),
                           1 - ratio(r.ram_hit_bytes + r.disk_hit_bytes, r.req_bytes), ratio(r.ram_hits, r.reqs),
                           ratio(r.disk_hits, r.reqs), ratio(r.disk_writes, r.reqs),
                           (double)r.disk_write_bytes / (double)(r.reqs ? r.reqs : 1));
                }
            }
    fflush(stdout);
    double t2 = now_s(), runs = (double)(o->nsz * o->npol);
    fprintf(stderr, PROG ": %s: read in %.2f s; %.0f runs x %zu requests in %.2f s (%.1f M requests/s)\n", path,
            t1 - t0, runs, t.n, t2 - t1, runs * (double)t.n / (t2 - t1 > 0 ? t2 - t1 : 1e-9) / 1e6);
    lab_trace_free(&t);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"policy", 1, NULL, 'p'}, {"size", 1, NULL, 's'},     {"format", 1, NULL, 'f'},
        {"limit", 1, NULL, 'n'},  {"csv-cols", 1, NULL, 'C'}, {"help", 0, NULL, 'h'},
        {"disk", 1, NULL, 'D'},   {"disk-admit", 1, NULL, 'A'},
        {"version", 0, NULL, 'V'}, {NULL, 0, NULL, 0}};
    static struct sim_opts o = {.fmt = LAB_TRACE_AUTO, .admits = {EDGE_ADMIT_ALL, EDGE_ADMIT_SECOND_HIT}, .nadmit = 2};
    parse_policies("all", o.pols, &o.npol);
    lab_sim_sizes_parse("0.1%,1%,10%", o.sizes, MAX_SIZES, &o.nsz);
    int c;
    while ((c = getopt_long(argc, argv, "p:s:f:n:D:A:hV", lo, NULL)) != -1) {
        switch (c) {
        case 'D':
            if (lab_sim_sizes_parse(optarg, o.disks, MAX_SIZES, &o.ndisk) < 0) {
                fprintf(stderr, PROG ": --disk: bad list '%s' (e.g. 1%%,10%%,4G)\n", optarg);
                return 2;
            }
            break;
        case 'A': {
            char buf[64];
            o.nadmit = 0;
            if (snprintf(buf, sizeof(buf), "%s", optarg) >= (int)sizeof(buf))
                buf[0] = 0;
            for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int k = edge_admit_kind_parse(t);
                if (k < 0 || o.nadmit == 2) {
                    o.nadmit = 0;
                    break;
                }
                o.admits[o.nadmit++] = k;
            }
            if (o.nadmit == 0) {
                fprintf(stderr, PROG ": --disk-admit: want all, second-hit or both, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'p':
            if (parse_policies(optarg, o.pols, &o.npol) < 0) {
                fprintf(stderr, PROG ": --policy: unknown policy in '%s' (lru, s3fifo, sieve, adaptive, lfu-size, adaptive2, belady, belady-size, all)\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (lab_sim_sizes_parse(optarg, o.sizes, MAX_SIZES, &o.nsz) < 0) {
                fprintf(stderr, PROG ": --size: bad list '%s' (e.g. 0.1%%,1%%,64M)\n", optarg);
                return 2;
            }
            break;
        case 'f':
            if ((o.fmt = lab_trace_fmt_parse(optarg)) < 0) {
                fprintf(stderr, PROG ": --format: unknown '%s' (auto, oracleGeneral, csv)\n", optarg);
                return 2;
            }
            break;
        case 'C':
            if (lab_csv_cols_parse(optarg, &o.cols) < 0) {
                fprintf(stderr, PROG ": --csv-cols: bad '%s' (e.g. id=5,size=4,time=2)\n", optarg);
                return 2;
            }
            break;
        case 'n': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || end == optarg || v == 0) {
                fprintf(stderr, PROG ": --limit: want a positive count, got '%s'\n", optarg);
                return 2;
            }
            o.limit = (size_t)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    int rc = 0;
    for (int a = optind; a < argc; a++) rc |= sim_trace(argv[a], &o);
    return rc;
}
