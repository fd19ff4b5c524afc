/* lab/lib/workload.h - what cdn-load asks for, and when: the Zipf sampler, Poisson arrivals, the
 * request generators (shopper, Zipf over images, trace replay), and the per-request log line.
 *
 * Pure: randomness comes from a seeded generator owned by the caller, times are passed in, so the
 * same seed gives the same request sequence (unit-tested). */
#ifndef LAB_WORKLOAD_H
#define LAB_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64 */
static inline uint64_t lab_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* uniform in [0, 1) */
static inline double lab_rng_unit(uint64_t *s) { return (double)(lab_rng_next(s) >> 11) * 0x1.0p-53; }

/* Zipf(alpha) over ranks 1..n: P(k) proportional to k^-alpha. */
struct lab_zipf {
    size_t n;
    double alpha;
    double *cdf; /* n entries, cdf[n-1] == 1 */
};
int lab_zipf_init(struct lab_zipf *z, size_t n, double alpha);
void lab_zipf_free(struct lab_zipf *z);
/* rank in 1..n for u in [0, 1) */
size_t lab_zipf_rank(const struct lab_zipf *z, double u);

/* Poisson arrivals: the gap to the next arrival (seconds) for a rate (per second), u in [0, 1). */
double lab_poisson_gap(double rate, double u);

/* A rate that changes over the run (cdn-load --ramp "0:4,20:40,40:40,60:4"): points of (seconds
 * from the start, requests per second), times increasing from 0, linear in between, the last rate
 * after the last point. Arrivals follow it as a non-homogeneous Poisson process by thinning:
 * candidates at the highest rate, each kept with probability rate(t) / highest. */
#define LAB_RAMP_MAX 32
struct lab_ramp {
    size_t n;
    double t[LAB_RAMP_MAX], r[LAB_RAMP_MAX];
};
/* 0, or -1 when s is malformed (no point, times not increasing or not from 0, a negative rate,
 * every rate 0, more than LAB_RAMP_MAX points). */
int lab_ramp_parse(const char *s, struct lab_ramp *out);
double lab_ramp_rate(const struct lab_ramp *r, double t_s);
double lab_ramp_max(const struct lab_ramp *r);

/* --- request generators --- */
enum lab_wl_kind { LAB_WL_SHOPPER, LAB_WL_ZIPF, LAB_WL_TRACE };

struct lab_og_req { /* one oracleGeneral record */
    uint32_t ts;
    uint64_t id;
    uint32_t size;
    int64_t next;
};

struct lab_wl {
    enum lab_wl_kind kind;
    uint64_t rng;
    struct lab_zipf zipf;
    size_t products;
    /* shopper: the images still to fetch of the current page view */
    unsigned pending_id, pending_n;
    /* trace */
    const unsigned char *trace;
    size_t trace_len, trace_pos;
    int trace_loop;
};

/* One request: which CDN name (index into the hostnames: 0 images, 1 pages) and path. */
struct lab_wl_req {
    int host;
    char path[96];
    int first_of_visit; /* a new page view (shopper) */
};

int lab_wl_init(struct lab_wl *w, enum lab_wl_kind kind, size_t products, double alpha, uint64_t seed);
/* Trace replay over an in-memory oracleGeneral file (not copied; must outlive w). */
void lab_wl_set_trace(struct lab_wl *w, const void *data, size_t len, int loop);
void lab_wl_free(struct lab_wl *w);
/* 1 and *r filled, or 0 at the end of a trace. */
int lab_wl_next(struct lab_wl *w, struct lab_wl_req *r);

/* oracleGeneral: record i of a buffer; 0, or -1 past the end. Little-endian, 24 bytes, packed. */
int lab_og_read(const void *data, size_t len, size_t i, struct lab_og_req *out);

/* --- the per-request log: one tab-separated line per request ---
 * t(seconds since start)  phase(w|m)  region  edge  status  bytes  latency_ms  cache  url
 * cache is the first result word of Cache-Status: hit, miss, stale, ... or "-". */
struct lab_logrec {
    double t, latency_ms;
    char phase;
    char region[16], edge[32], cache[16], url[128];
    int status;
    uint64_t bytes;
    char tier[8]; /* "ram", "disk", "parent" or "" (from Cache-Status detail) */
};
size_t lab_log_format(const struct lab_logrec *r, char *buf, size_t cap);
/* 0, or -1 for a malformed line (bounds-checked; the report skips and counts those). */
int lab_log_parse(const char *line, size_t len, struct lab_logrec *r);
/* From a Cache-Status value: the cache's name after "cdn-edge-" and the result word. */
void lab_cache_status_parse(const char *v, size_t len, char *edge, size_t elen, char *result, size_t rlen,
                            char *tier, size_t tlen);

/* The tier that answered a logged request: 0 the edge's RAM, 1 its disk, 2 a parent's cache (a
 * miss here, "hit" in an upstream Cache-Status entry), 3 the origin; -1 no answer (status 0 or 5xx). */
int lab_log_tier(const struct lab_logrec *r);

/* Percentile (0..100) of a sorted array, nearest-rank. */
double lab_percentile(const double *sorted, size_t n, double p);

#endif
