/* cdn/metrics.h - counters, gauges and histograms with labels, rendered as Prometheus text.
 *
 * Owns: a registry of metric families and their series. The hot path is lock-free: each series
 * keeps one slot per thread (a thread takes a slot index on its first update), so an increment is
 * a plain add to memory no other thread writes; a scrape sums the slots. Families and series are
 * created at start-up (or lazily, under the registry lock) and live as long as the registry; the
 * pointers they return stay valid, so callers look a series up once and keep it.
 *
 * Threads: at most CDN_METRICS_MAX_THREADS distinct threads may update metrics; later ones share
 * the last slot with atomic adds (still correct, just slower). */
#ifndef CDN_METRICS_H
#define CDN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define CDN_METRICS_MAX_THREADS 64
#define CDN_METRICS_MAX_LABELS 4
#define CDN_METRICS_MAX_BUCKETS 32

typedef struct cdn_metrics cdn_metrics_t;     /* the registry */
typedef struct cdn_metric cdn_metric_t;       /* a family: name, help, type, label names */
typedef struct cdn_series cdn_series_t;       /* one set of label values of a family */

cdn_metrics_t *cdn_metrics_new(void);
void cdn_metrics_free(cdn_metrics_t *m);

/* Families. label_names is NULL-terminated (NULL or {NULL} for no labels). The name must be a valid
 * Prometheus name; an invalid name or a name registered twice returns NULL. */
cdn_metric_t *cdn_metrics_counter(cdn_metrics_t *m, const char *name, const char *help,
                                  const char *const *label_names);
cdn_metric_t *cdn_metrics_gauge(cdn_metrics_t *m, const char *name, const char *help,
                                const char *const *label_names);
/* bounds: ascending upper bounds, the +Inf bucket is implicit. */
cdn_metric_t *cdn_metrics_histogram(cdn_metrics_t *m, const char *name, const char *help,
                                    const char *const *label_names, const double *bounds,
                                    size_t nbounds);
/* A gauge whose value is read by calling fn at scrape time (e.g. bytes in a cache tier). */
int cdn_metrics_gauge_fn(cdn_metrics_t *m, const char *name, const char *help,
                         double (*fn)(void *data), void *data);
/* The same for a counter kept elsewhere (e.g. the kernel's CPU time of the process). */
int cdn_metrics_counter_fn(cdn_metrics_t *m, const char *name, const char *help,
                           double (*fn)(void *data), void *data);

/* The process_* families every Prometheus client exports (CPU seconds, resident and virtual
 * memory, open and maximum file descriptors, start time; read from getrusage and /proc/self at
 * scrape time) and PREFIX_build_info{version, h2o} 1. 0, or -1 (a name taken twice, no memory). */
int cdn_metrics_add_process(cdn_metrics_t *m, const char *build_info_prefix);

/* The series for these label values (as many as the family has label names), created on first
 * use. Label values are copied and escaped on render. */
cdn_series_t *cdn_metric_series(cdn_metric_t *f, const char *const *label_values);
/* Shorthand for a family without labels. */
cdn_series_t *cdn_metric_plain(cdn_metric_t *f);

void cdn_counter_add(cdn_series_t *s, uint64_t v);
static inline void cdn_counter_inc(cdn_series_t *s) { cdn_counter_add(s, 1); }
void cdn_gauge_set(cdn_series_t *s, double v);
void cdn_gauge_add(cdn_series_t *s, double v);
void cdn_histogram_observe(cdn_series_t *s, double v);

/* Sums for tests and reports. */
uint64_t cdn_counter_value(const cdn_series_t *s);
double cdn_gauge_value(const cdn_series_t *s);
uint64_t cdn_histogram_count(const cdn_series_t *s);

/* Prometheus text exposition format 0.0.4 (HELP, TYPE, series sorted as created, histograms with
 * _bucket{le=...}, _sum, _count). Returns a malloc'd NUL-terminated string (*len set), or NULL. */
char *cdn_metrics_render(cdn_metrics_t *m, size_t *len);

/* Default latency buckets in seconds (0.5 ms .. 10 s). */
extern const double cdn_metrics_latency_buckets[];
extern const size_t cdn_metrics_latency_nbuckets;

#endif
