/* Unit tests for lib/metrics.c: the exact Prometheus text for each type (labels, escaping, float
 * formatting, histogram buckets), registration rules, and exact sums under concurrent updates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/metrics.h"

static char *render(cdn_metrics_t *m)
{
    size_t len = 12345;
    char *s = cdn_metrics_render(m, &len);
    assert_non_null(s);
    assert_int_equal(len, strlen(s));
    return s;
}

static void counter_text(void **state)
{
    cdn_metrics_t *m = cdn_metrics_new();
    const char *labels[] = {"code", "method", NULL};
    cdn_metric_t *f = cdn_metrics_counter(m, "http_requests_total", "Requests served.", labels);
    assert_non_null(f);
    cdn_metric_t *plain = cdn_metrics_counter(m, "cdn_up_total", "Plain one\\with \"quotes\"\nand newline.", NULL);
    assert_non_null(plain);
    cdn_series_t *a = cdn_metric_series(f, (const char *[]){"200", "GET"});
    cdn_series_t *b = cdn_metric_series(f, (const char *[]){"404", "a\\b\"c\nd"});
    assert_ptr_equal(a, cdn_metric_series(f, (const char *[]){"200", "GET"})); /* same values, same series */
    assert_ptr_not_equal(a, b);
    cdn_counter_inc(a);
    cdn_counter_add(a, 41);
    cdn_counter_add(b, 7);
    assert_int_equal(cdn_counter_value(a), 42);
    char *s = render(m);
    assert_string_equal(s, "# HELP http_requests_total Requests served.\n"
                           "# TYPE http_requests_total counter\n"
                           "http_requests_total{code=\"200\",method=\"GET\"} 42\n"
                           "http_requests_total{code=\"404\",method=\"a\\\\b\\\"c\\nd\"} 7\n"
                           "# HELP cdn_up_total Plain one\\\\with \"quotes\"\\nand newline.\n"
                           "# TYPE cdn_up_total counter\n"
                           "cdn_up_total 0\n");
    free(s);
    cdn_metrics_free(m);
}

static double fn_value(void *data)
{
    return *(double *)data;
}

static void gauge_text(void **state)
{
    cdn_metrics_t *m = cdn_metrics_new();
    cdn_metric_t *g = cdn_metrics_gauge(m, "cdn_inflight", "In flight.", (const char *[]){"tier", NULL});
    cdn_series_t *s = cdn_metric_series(g, (const char *[]){"mem"});
    cdn_series_t *t = cdn_metric_series(g, (const char *[]){"disk"});
    cdn_series_t *u = cdn_metric_series(g, (const char *[]){"x"});
    cdn_series_t *v = cdn_metric_series(g, (const char *[]){"y"});
    cdn_series_t *w = cdn_metric_series(g, (const char *[]){"z"});
    cdn_gauge_add(s, 3);
    cdn_gauge_add(s, -1);
    cdn_gauge_set(t, 2.5);
    cdn_gauge_add(t, 1);
    cdn_gauge_set(u, 1e6);
    cdn_gauge_add(v, 5);
    cdn_gauge_set(v, 0.00001); /* set after add wins */
    cdn_gauge_set(w, -1.5e-7);
    assert_true(cdn_gauge_value(s) == 2);
    assert_true(cdn_gauge_value(v) == 0.00001);
    double x = 123456.75;
    assert_int_equal(cdn_metrics_gauge_fn(m, "cdn_bytes", "Bytes.", fn_value, &x), 0);
    assert_int_equal(cdn_metrics_gauge_fn(m, "cdn_bytes", "Again.", fn_value, &x), -1);
    char *r = render(m);
    assert_string_equal(r, "# HELP cdn_inflight In flight.\n"
                           "# TYPE cdn_inflight gauge\n"
                           "cdn_inflight{tier=\"mem\"} 2\n"
                           "cdn_inflight{tier=\"disk\"} 3.5\n"
                           "cdn_inflight{tier=\"x\"} 1e+06\n"
                           "cdn_inflight{tier=\"y\"} 1e-05\n"
                           "cdn_inflight{tier=\"z\"} -1.5e-07\n"
                           "# HELP cdn_bytes Bytes.\n"
                           "# TYPE cdn_bytes gauge\n"
                           "cdn_bytes 123456.75\n");
    free(r);
    x = NAN;
    r = render(m);
    assert_non_null(strstr(r, "cdn_bytes NaN\n"));
    free(r);
    x = -INFINITY;
    r = render(m);
    assert_non_null(strstr(r, "cdn_bytes -Inf\n"));
    free(r);
    cdn_metrics_free(m);
}

static void histogram_text(void **state)
{
    cdn_metrics_t *m = cdn_metrics_new();
    const double bounds[] = {0.005, 0.1, 1, 2.5};
    cdn_metric_t *h = cdn_metrics_histogram(m, "req_seconds", "Latency.", (const char *[]){"route", NULL}, bounds, 4);
    assert_non_null(h);
    cdn_series_t *s = cdn_metric_series(h, (const char *[]){"/a"});
    cdn_histogram_observe(s, 0.005); /* le is inclusive */
    cdn_histogram_observe(s, 0.05);
    cdn_histogram_observe(s, 0.5);
    cdn_histogram_observe(s, 0.75);
    cdn_histogram_observe(s, 100);
    assert_int_equal(cdn_histogram_count(s), 5);
    cdn_metric_t *p = cdn_metrics_histogram(m, "size_bytes", "Sizes.", NULL, (const double[]){1024, 1048576, INFINITY}, 3);
    assert_non_null(p);
    cdn_histogram_observe(cdn_metric_plain(p), 2048);
    char *r = render(m);
    assert_string_equal(r, "# HELP req_seconds Latency.\n"
                           "# TYPE req_seconds histogram\n"
                           "req_seconds_bucket{route=\"/a\",le=\"0.005\"} 1\n"
                           "req_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
                           "req_seconds_bucket{route=\"/a\",le=\"1\"} 4\n"
                           "req_seconds_bucket{route=\"/a\",le=\"2.5\"} 4\n"
                           "req_seconds_bucket{route=\"/a\",le=\"+Inf\"} 5\n"
                           "req_seconds_sum{route=\"/a\"} 101.305\n"
                           "req_seconds_count{route=\"/a\"} 5\n"
                           "# HELP size_bytes Sizes.\n"
                           "# TYPE size_bytes histogram\n"
                           "size_bytes_bucket{le=\"1024\"} 0\n"
                           "size_bytes_bucket{le=\"1.048576e+06\"} 1\n"
                           "size_bytes_bucket{le=\"+Inf\"} 1\n"
                           "size_bytes_sum 2048\n"
                           "size_bytes_count 1\n");
    free(r);
    cdn_metrics_free(m);
}

static void registration_rules(void **state)
{
    cdn_metrics_t *m = cdn_metrics_new();
    assert_non_null(cdn_metrics_counter(m, "a:b_c1", "", NULL));
    assert_null(cdn_metrics_counter(m, "a:b_c1", "", NULL));      /* duplicate */
    assert_null(cdn_metrics_gauge(m, "a:b_c1", "", NULL));        /* duplicate across types */
    assert_null(cdn_metrics_counter(m, "1abc", "", NULL));        /* bad first char */
    assert_null(cdn_metrics_counter(m, "a-b", "", NULL));
    assert_null(cdn_metrics_counter(m, "", "", NULL));
    assert_null(cdn_metrics_counter(m, NULL, "", NULL));
    assert_null(cdn_metrics_counter(m, "x1", "", (const char *[]){"a:b", NULL}));   /* no colon in labels */
    assert_null(cdn_metrics_counter(m, "x2", "", (const char *[]){"__x", NULL}));   /* reserved */
    assert_null(cdn_metrics_counter(m, "x3", "", (const char *[]){"a", "a", NULL})); /* twice */
    assert_null(cdn_metrics_counter(m, "x4", "", (const char *[]){"a", "b", "c", "d", "e", NULL}));
    assert_null(cdn_metrics_histogram(m, "x5", "", (const char *[]){"le", NULL}, (const double[]){1}, 1));
    assert_null(cdn_metrics_histogram(m, "x6", "", NULL, (const double[]){2, 1}, 2)); /* not ascending */
    assert_null(cdn_metrics_histogram(m, "x7", "", NULL, (const double[]){1, 1}, 2));
    assert_null(cdn_metrics_histogram(m, "x8", "", NULL, (const double[]){NAN}, 1));
    assert_non_null(cdn_metrics_histogram(m, "x9", "", NULL, cdn_metrics_latency_buckets, cdn_metrics_latency_nbuckets));
    cdn_metric_t *l = cdn_metrics_counter(m, "x10", "", (const char *[]){"a", NULL});
    assert_null(cdn_metric_plain(l));                     /* has labels */
    assert_null(cdn_metric_series(l, (const char *[]){NULL}));
    /* Wrong-type updates and NULL series are ignored rather than crashing. */
    cdn_series_t *s = cdn_metric_series(l, (const char *[]){"v"});
    cdn_gauge_set(s, 3);
    cdn_histogram_observe(s, 3);
    cdn_counter_inc(NULL);
    assert_int_equal(cdn_counter_value(s), 0);
    /* Many series: the hash grows and every lookup finds its own. */
    cdn_series_t *all[500];
    char name[16];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "v%d", i);
        all[i] = cdn_metric_series(l, (const char *[]){name});
        cdn_counter_add(all[i], (uint64_t)i);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "v%d", i);
        assert_ptr_equal(all[i], cdn_metric_series(l, (const char *[]){name}));
        assert_int_equal(cdn_counter_value(all[i]), i);
    }
    cdn_metrics_free(m);
}

#define THREADS 4
#define ITER 1000000

struct work {
    cdn_series_t *c, *g, *h;
};

static void *worker(void *arg)
{
    struct work *w = arg;
    for (int i = 0; i < ITER; i++) {
        cdn_counter_inc(w->c);
        cdn_gauge_add(w->g, 1);
        if (i % 10 == 0)
            cdn_histogram_observe(w->h, (double)(i % 3));
    }
    return NULL;
}

static void threads_sum_exactly(void **state)
{
    cdn_metrics_t *m = cdn_metrics_new();
    struct work w = {
        cdn_metric_plain(cdn_metrics_counter(m, "c", "", NULL)),
        cdn_metric_plain(cdn_metrics_gauge(m, "g", "", NULL)),
        cdn_metric_plain(cdn_metrics_histogram(m, "h", "", NULL, (const double[]){0.5, 1.5}, 2)),
    };
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(cdn_counter_value(w.c), (uint64_t)THREADS * ITER);
    assert_true(cdn_gauge_value(w.g) == (double)THREADS * ITER);
    assert_int_equal(cdn_histogram_count(w.h), (uint64_t)THREADS * ITER / 10);
    cdn_metrics_free(m);
}

/* More threads than slots: the overflow threads share the last slot and still sum exactly. */
static void *small_worker(void *arg)
{
    for (int i = 0; i < 1000; i++)
        cdn_counter_inc(arg);
    return NULL;
}

static void overflow_threads(void **state)
{
    cdn_metrics_t *m = cdn_metrics_new();
    cdn_series_t *c = cdn_metric_plain(cdn_metrics_counter(m, "c", "", NULL));
    enum { N = CDN_METRICS_MAX_THREADS + 16 };
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, small_worker, c), 0);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(cdn_counter_value(c), (uint64_t)N * 1000);
    cdn_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_text),      cmocka_unit_test(gauge_text),
        cmocka_unit_test(histogram_text),    cmocka_unit_test(registration_rules),
        cmocka_unit_test(threads_sum_exactly), cmocka_unit_test(overflow_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
