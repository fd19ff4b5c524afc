/* lab/lib/top.h - the pure part of `cdn-lab top` (lab/cdnlab/top.c): an edge's /metrics text into a
 * snapshot of its counters, two snapshots into one row of rates and ratios, and rows into the
 * terminal frame or the status page's JSON.
 *
 * Rules: nothing here does I/O or reads a clock; the caller passes each snapshot's time (any
 * monotonic seconds). A counter that went down between two snapshots (the edge restarted) counts
 * from 0 again; after a snapshot of an edge that did not answer, the next row has no rates. A ratio or a latency with nothing under it is NAN, shown as "-" (text) and null
 * (JSON). Metric names are cdn-edge's (edge/admin.c, edge/purge/bus.c) and shop-lb's
 * (origin/lb/admin.c). */
#ifndef LAB_TOP_H
#define LAB_TOP_H

#include <stddef.h>
#include "lab/lib/topo.h"

#define LAB_TOP_BUCKETS 40
enum { LAB_TOP_RAM, LAB_TOP_DISK, LAB_TOP_PARENT, LAB_TOP_ORIGIN, LAB_TOP_NTIERS };
extern const char *const lab_top_tier_names[LAB_TOP_NTIERS]; /* ram rocksdb parent origin */

/* One scrape of an edge (cumulative counters as the edge reports them). */
struct lab_top_snap {
    double t;          /* when it was taken, seconds */
    int up;            /* 1: /metrics answered */
    double req, hit, err;           /* edge_requests_total: all, result="hit", result="error" */
    double tier[LAB_TOP_NTIERS];    /* edge_requests_total by tier */
    double bytes, hit_bytes;        /* edge_body_bytes_sent_total, edge_hit_body_bytes_sent_total (NAN: absent) */
    double origin, origin_err;      /* edge_origin_fetches_total, edge_origin_errors_total */
    double le[LAB_TOP_BUCKETS], cum[LAB_TOP_BUCKETS]; /* edge_request_duration_seconds_bucket */
    size_t nb;
    double draining, lag, bus_up;   /* gauges: edge_draining, edge_purge_stream_lag, edge_purge_bus_up (NAN: absent) */
    double lb_req, lb_5xx;          /* shop-lb: shop_lb_requests_total, those with status 5xx */
};

/* What `top` shows for one edge between two snapshots. */
struct lab_top_row {
    double req_s, hit, byte_hit;    /* requests per second; hit ratios 0..1 (NAN: no requests) */
    double tier[LAB_TOP_NTIERS];    /* share of the requests per tier, 0..1 (NAN: no requests) */
    double origin_s, err_s;         /* origin fetches and error answers per second */
    double p50_ms, p99_ms;          /* from the histogram's buckets (NAN: no requests) */
    double lag;                     /* purge stream lag, entries (NAN: no bus) */
    int up, healthy, draining;
};

/* Parses Prometheus text exposition into *s (s->t is left alone); unknown lines are skipped.
 * Returns the number of samples used. */
int lab_top_parse(const char *text, size_t len, struct lab_top_snap *s);
/* An empty snapshot: counters 0, gauges NAN, no buckets. */
void lab_top_snap_init(struct lab_top_snap *s, double t);
/* The q-quantile (0..1) of histogram deltas (cumulative counts per upper bound le, ascending, the
 * last +Inf), interpolating linearly inside a bucket as Prometheus' histogram_quantile does;
 * NAN without observations. */
double lab_top_quantile(const double *le, const double *dcum, size_t nb, double q);
/* prev -> cur; healthy comes from the caller (the edge's /healthz). 0, or -1 when prev is not
 * older than cur. */
int lab_top_rate(const struct lab_top_snap *prev, const struct lab_top_snap *cur, int healthy, struct lab_top_row *row);

/* One frame of the view: the rows of every edge of the topology, and the origin. */
struct lab_top_frame {
    const char *lab;                /* the topology's name */
    double t;                       /* seconds since top started */
    size_t n;
    const char *const *names;       /* per edge */
    const char *const *regions;
    const int *parent;              /* 1: a shield (clients never reach it) */
    const struct lab_top_row *rows;
    double lb_req_s, lb_5xx_s;      /* shop-lb (NAN: not scraped) */
};
/* The terminal frame (header line, one line per edge, a clients' total, the origin). */
void lab_top_text(const struct lab_top_frame *f, struct lab_buf *b);
/* The same figures as one JSON object (no history: the caller adds it). */
void lab_top_json(const struct lab_top_frame *f, struct lab_buf *b);
/* A number or null, JSON-safe ("%.*f"). */
void lab_top_json_num(struct lab_buf *b, double v, int prec);

/* The report's hit-ratio curve of one edge (lab/cdnlab/report.c): its requests (t seconds, hit 0/1,
 * in time order) into a point every `step` seconds with the hit ratio of the last `win` seconds and
 * the cumulative one since its first request. A point only where the window holds at least min_n
 * requests, and none after the last full step (the run's last second holds only the stragglers: an
 * "empty last bin"). The number of points written, at most max. */
struct lab_hit_point {
    double t, win, cum; /* the window's end; its hit ratio; since the start */
    size_t n;           /* requests in the window */
};
size_t lab_hit_curve(const double *t, const unsigned char *hit, size_t n, double step, double win, size_t min_n,
                     struct lab_hit_point *out, size_t max);

#endif
