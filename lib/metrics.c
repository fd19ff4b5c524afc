/* lib/metrics.c - the metrics registry and its Prometheus text rendering.
 *
 * Rules:
 * - The registry mutex guards the family list, each family's series list and its hash; it is
 *   taken to register a family, to create or look up a series and to render. Never on updates.
 * - Updates are lock-free. A thread takes a slot index once (atomic counter, thread-local copy).
 *   Each series holds one pointer per slot index to a cache-line-aligned block allocated on the
 *   thread's first update of that series (installed with a CAS), so memory grows with the threads
 *   that actually write, and no two threads write the same line.
 * - Slots 0..MAX-2 have a single writer: load + store (relaxed atomics, no lock prefix). The last
 *   slot is shared by every thread past MAX-1: it is always updated with atomic read-modify-write.
 * - A scrape sums the slots with relaxed loads; a histogram's buckets, sum and count may be a few
 *   observations apart from each other while updates run, never torn within one number.
 * - Gauges: add() goes to the thread's delta. set(v) records base = v and offset = the sum of the
 *   deltas at that moment (both under the series' spinlock, which only set and reads take);
 *   value = base + (sum of deltas - offset). The last set wins, later adds apply on top, and a
 *   set value reads back exactly (the difference of two equal sums is exactly 0).
 * - Families and series live until cdn_metrics_free(): returned pointers stay valid. */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"
#include "cdn/metrics.h"

#define LINE 64

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM, K_GAUGE_FN, K_COUNTER_FN };

struct cdn_series {
    cdn_metric_t *fam;
    char **values;                           /* nlabels copies */
    uint32_t hash;
    cdn_series_t *hnext;                     /* hash chain within the family */
    atomic_flag gauge_lock;                  /* guards gauge_base/gauge_off as a pair */
    double gauge_base, gauge_off;
    _Atomic(void *) slots[CDN_METRICS_MAX_THREADS];
};

struct cdn_metric {
    cdn_metrics_t *reg;
    enum kind kind;
    char *name, *help;
    char *labels[CDN_METRICS_MAX_LABELS];
    size_t nlabels;
    double bounds[CDN_METRICS_MAX_BUCKETS];
    size_t nbounds;
    size_t slot_size;                        /* bytes of one thread's block, multiple of LINE */
    double (*fn)(void *);
    void *fn_data;
    cdn_series_t **series;                   /* in creation order */
    size_t nseries, capseries;
    cdn_series_t **htab;                     /* hash buckets, size hcap (power of two) */
    size_t hcap;
    cdn_metric_t *next;
};

struct cdn_metrics {
    pthread_mutex_t lock;
    cdn_metric_t *first, *last;
};

const double cdn_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,    0.25,  0.5,    1,     2.5,  5,    10};
const size_t cdn_metrics_latency_nbuckets =
    sizeof(cdn_metrics_latency_buckets) / sizeof(cdn_metrics_latency_buckets[0]);

/* --- thread slots --- */

static atomic_int next_slot;
static _Thread_local int my_slot = -1;

static inline int thread_slot(void)
{
    if (__builtin_expect(my_slot < 0, 0)) {
        int i = atomic_load_explicit(&next_slot, memory_order_relaxed);
        /* Stop counting once full so the counter can never wrap. */
        if (i < CDN_METRICS_MAX_THREADS - 1)
            i = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed);
        my_slot = i < CDN_METRICS_MAX_THREADS - 1 ? i : CDN_METRICS_MAX_THREADS - 1;
    }
    return my_slot;
}

static inline int slot_shared(int i)
{
    return i == CDN_METRICS_MAX_THREADS - 1;
}

/* The calling thread's block of s, allocated on first use; NULL if out of memory. */
static void *slot_block(cdn_series_t *s, int i)
{
    void *p = atomic_load_explicit(&s->slots[i], memory_order_acquire);
    if (__builtin_expect(p != NULL, 1))
        return p;
    void *fresh = aligned_alloc(LINE, s->fam->slot_size);
    if (fresh == NULL)
        return NULL;
    memset(fresh, 0, s->fam->slot_size);
    void *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&s->slots[i], &expected, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    free(fresh); /* only the shared slot can race */
    return expected;
}

static inline void u64_add(_Atomic uint64_t *p, uint64_t v, int shared)
{
    if (shared)
        atomic_fetch_add_explicit(p, v, memory_order_relaxed);
    else
        atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline double bits_dbl(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static inline uint64_t dbl_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static inline void dbl_add(_Atomic uint64_t *p, double v, int shared)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    if (!shared) {
        atomic_store_explicit(p, dbl_bits(bits_dbl(old) + v), memory_order_relaxed);
        return;
    }
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbl_bits(bits_dbl(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* --- updates --- */

void cdn_counter_add(cdn_series_t *s, uint64_t v)
{
    if (s == NULL || s->fam->kind != K_COUNTER)
        return;
    int i = thread_slot();
    _Atomic uint64_t *p = slot_block(s, i);
    if (p != NULL)
        u64_add(p, v, slot_shared(i));
}

void cdn_gauge_add(cdn_series_t *s, double v)
{
    if (s == NULL || s->fam->kind != K_GAUGE)
        return;
    int i = thread_slot();
    _Atomic uint64_t *p = slot_block(s, i);
    if (p != NULL)
        dbl_add(p, v, slot_shared(i));
}

static double gauge_deltas(const cdn_series_t *s)
{
    double sum = 0;
    for (int i = 0; i < CDN_METRICS_MAX_THREADS; i++) {
        _Atomic uint64_t *p = atomic_load_explicit(&((cdn_series_t *)s)->slots[i], memory_order_acquire);
        if (p != NULL)
            sum += bits_dbl(atomic_load_explicit(p, memory_order_relaxed));
    }
    return sum;
}

void cdn_gauge_set(cdn_series_t *s, double v)
{
    if (s == NULL || s->fam->kind != K_GAUGE)
        return;
    while (atomic_flag_test_and_set_explicit(&s->gauge_lock, memory_order_acquire))
        ;
    s->gauge_off = gauge_deltas(s);
    s->gauge_base = v;
    atomic_flag_clear_explicit(&s->gauge_lock, memory_order_release);
}

/* Histogram block: counts[nbounds + 1] (the last is +Inf), then the sum (double bits). */
void cdn_histogram_observe(cdn_series_t *s, double v)
{
    if (s == NULL || s->fam->kind != K_HISTOGRAM)
        return;
    const cdn_metric_t *f = s->fam;
    size_t lo = 0, hi = f->nbounds; /* first bucket whose bound >= v (NaN lands in +Inf) */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= f->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    int i = thread_slot();
    _Atomic uint64_t *p = slot_block(s, i);
    if (p == NULL)
        return;
    u64_add(&p[lo], 1, slot_shared(i));
    dbl_add(&p[f->nbounds + 1], v, slot_shared(i));
}

/* --- reads --- */

static uint64_t slot_sum(const cdn_series_t *s, size_t idx)
{
    uint64_t sum = 0;
    for (int i = 0; i < CDN_METRICS_MAX_THREADS; i++) {
        _Atomic uint64_t *p = atomic_load_explicit(&((cdn_series_t *)s)->slots[i], memory_order_acquire);
        if (p != NULL)
            sum += atomic_load_explicit(&p[idx], memory_order_relaxed);
    }
    return sum;
}

static double slot_dsum(const cdn_series_t *s, size_t idx)
{
    double sum = 0;
    for (int i = 0; i < CDN_METRICS_MAX_THREADS; i++) {
        _Atomic uint64_t *p = atomic_load_explicit(&((cdn_series_t *)s)->slots[i], memory_order_acquire);
        if (p != NULL)
            sum += bits_dbl(atomic_load_explicit(&p[idx], memory_order_relaxed));
    }
    return sum;
}

uint64_t cdn_counter_value(const cdn_series_t *s)
{
    return s != NULL && s->fam->kind == K_COUNTER ? slot_sum(s, 0) : 0;
}

double cdn_gauge_value(const cdn_series_t *s)
{
    if (s == NULL)
        return 0;
    if (s->fam->kind == K_GAUGE_FN || s->fam->kind == K_COUNTER_FN)
        return s->fam->fn(s->fam->fn_data);
    if (s->fam->kind != K_GAUGE)
        return 0;
    cdn_series_t *w = (cdn_series_t *)s; /* the lock is the only thing written */
    while (atomic_flag_test_and_set_explicit(&w->gauge_lock, memory_order_acquire))
        ;
    double v = w->gauge_base + (gauge_deltas(s) - w->gauge_off);
    atomic_flag_clear_explicit(&w->gauge_lock, memory_order_release);
    return v;
}

uint64_t cdn_histogram_count(const cdn_series_t *s)
{
    if (s == NULL || s->fam->kind != K_HISTOGRAM)
        return 0;
    uint64_t n = 0;
    for (size_t b = 0; b <= s->fam->nbounds; b++)
        n += slot_sum(s, b);
    return n;
}

/* --- registry --- */

cdn_metrics_t *cdn_metrics_new(void)
{
    cdn_metrics_t *m = calloc(1, sizeof(*m));
    if (m != NULL)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

static void series_free(cdn_series_t *s, size_t nlabels)
{
    for (int i = 0; i < CDN_METRICS_MAX_THREADS; i++)
        free(atomic_load_explicit(&s->slots[i], memory_order_relaxed));
    for (size_t i = 0; s->values != NULL && i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s);
}

static void family_free(cdn_metric_t *f)
{
    for (size_t i = 0; i < f->nseries; i++)
        series_free(f->series[i], f->nlabels);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->series);
    free(f->htab);
    free(f->name);
    free(f->help);
    free(f);
}

void cdn_metrics_free(cdn_metrics_t *m)
{
    if (m == NULL)
        return;
    for (cdn_metric_t *f = m->first, *next; f != NULL; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static int valid_name(const char *s, int colon)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || (colon && ch == ':') ||
                 (p != s && ch >= '0' && ch <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static cdn_metric_t *find_family(cdn_metrics_t *m, const char *name)
{
    for (cdn_metric_t *f = m->first; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static cdn_series_t *series_create_locked(cdn_metric_t *f, const char *const *values, uint32_t h);

static cdn_metric_t *family_add(cdn_metrics_t *m, enum kind kind, const char *name, const char *help,
                                const char *const *label_names, const double *bounds, size_t nbounds,
                                double (*fn)(void *), void *fn_data)
{
    if (m == NULL || !valid_name(name, 1))
        return NULL;
    size_t nl = 0;
    for (; label_names != NULL && label_names[nl] != NULL; nl++) {
        const char *l = label_names[nl];
        if (nl >= CDN_METRICS_MAX_LABELS || !valid_name(l, 0) || strncmp(l, "__", 2) == 0 ||
            (kind == K_HISTOGRAM && strcmp(l, "le") == 0))
            return NULL;
        for (size_t j = 0; j < nl; j++)
            if (strcmp(label_names[j], l) == 0)
                return NULL;
    }
    if (kind == K_HISTOGRAM) {
        /* A trailing +Inf bound is the implicit one. */
        if (nbounds > 0 && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0)
            nbounds--;
        if (nbounds > CDN_METRICS_MAX_BUCKETS || (nbounds > 0 && bounds == NULL))
            return NULL;
        for (size_t i = 0; i < nbounds; i++)
            if (isnan(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                return NULL;
    }

    cdn_metric_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->reg = m;
    f->kind = kind;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    int oom = f->name == NULL || f->help == NULL;
    for (size_t i = 0; i < nl; i++)
        oom |= (f->labels[i] = strdup(label_names[i])) == NULL;
    f->nlabels = nl;
    f->fn = fn;
    f->fn_data = fn_data;
    if (kind == K_HISTOGRAM) {
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
        f->nbounds = nbounds;
    }
    size_t words = kind == K_HISTOGRAM ? nbounds + 2 : 1;
    f->slot_size = (words * sizeof(uint64_t) + LINE - 1) / LINE * LINE;
    if (oom) {
        family_free(f);
        return NULL;
    }

    pthread_mutex_lock(&m->lock);
    if (find_family(m, name) != NULL) {
        pthread_mutex_unlock(&m->lock);
        family_free(f);
        return NULL;
    }
    /* A family without labels has its one series from the start, so it renders as 0. */
    if (nl == 0 && series_create_locked(f, NULL, 0) == NULL) {
        pthread_mutex_unlock(&m->lock);
        family_free(f);
        return NULL;
    }
    if (m->last != NULL)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    pthread_mutex_unlock(&m->lock);
    return f;
}

cdn_metric_t *cdn_metrics_counter(cdn_metrics_t *m, const char *name, const char *help,
                                  const char *const *label_names)
{
    return family_add(m, K_COUNTER, name, help, label_names, NULL, 0, NULL, NULL);
}

cdn_metric_t *cdn_metrics_gauge(cdn_metrics_t *m, const char *name, const char *help,
                                const char *const *label_names)
{
    return family_add(m, K_GAUGE, name, help, label_names, NULL, 0, NULL, NULL);
}

cdn_metric_t *cdn_metrics_histogram(cdn_metrics_t *m, const char *name, const char *help,
                                    const char *const *label_names, const double *bounds, size_t nbounds)
{
    return family_add(m, K_HISTOGRAM, name, help, label_names, bounds, nbounds, NULL, NULL);
}

int cdn_metrics_gauge_fn(cdn_metrics_t *m, const char *name, const char *help, double (*fn)(void *data),
                         void *data)
{
    if (fn == NULL)
        return -1;
    return family_add(m, K_GAUGE_FN, name, help, NULL, NULL, 0, fn, data) != NULL ? 0 : -1;
}

int cdn_metrics_counter_fn(cdn_metrics_t *m, const char *name, const char *help, double (*fn)(void *data),
                           void *data)
{
    if (fn == NULL)
        return -1;
    return family_add(m, K_COUNTER_FN, name, help, NULL, NULL, 0, fn, data) != NULL ? 0 : -1;
}

/* Label values can come from requests (hosts, paths): the process's random hash key, chained
 * value by value so that ("ab","c") != ("a","bc"). */
static uint32_t hash_values(const char *const *values, size_t n)
{
    uint64_t h[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        h[1] = cdn_hash(values[i], strlen(values[i]));
        h[0] = cdn_hash(h, sizeof(h));
    }
    return (uint32_t)h[0];
}

static cdn_series_t *series_create_locked(cdn_metric_t *f, const char *const *values, uint32_t h)
{
    if (f->nseries == f->capseries) {
        size_t cap = f->capseries ? f->capseries * 2 : 4;
        cdn_series_t **n = realloc(f->series, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        f->series = n;
        f->capseries = cap;
    }
    if (f->nseries >= f->hcap / 2) { /* keep the load factor under 1/2 */
        size_t cap = f->hcap ? f->hcap * 2 : 16;
        cdn_series_t **t = calloc(cap, sizeof(*t));
        if (t == NULL)
            return NULL;
        for (size_t i = 0; i < f->nseries; i++) {
            cdn_series_t *s = f->series[i];
            s->hnext = t[s->hash & (cap - 1)];
            t[s->hash & (cap - 1)] = s;
        }
        free(f->htab);
        f->htab = t;
        f->hcap = cap;
    }
    cdn_series_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fam = f;
    s->hash = h;
    atomic_flag_clear(&s->gauge_lock);
    if (f->nlabels > 0) {
        s->values = calloc(f->nlabels, sizeof(char *));
        int oom = s->values == NULL;
        for (size_t i = 0; !oom && i < f->nlabels; i++)
            oom = (s->values[i] = strdup(values[i])) == NULL;
        if (oom) {
            series_free(s, f->nlabels);
            return NULL;
        }
    }
    f->series[f->nseries++] = s;
    s->hnext = f->htab[h & (f->hcap - 1)];
    f->htab[h & (f->hcap - 1)] = s;
    return s;
}

cdn_series_t *cdn_metric_series(cdn_metric_t *f, const char *const *label_values)
{
    if (f == NULL)
        return NULL;
    if (f->nlabels == 0)
        return f->series[0]; /* created with the family, never changes */
    if (label_values == NULL)
        return NULL;
    for (size_t i = 0; i < f->nlabels; i++)
        if (label_values[i] == NULL)
            return NULL;
    uint32_t h = hash_values(label_values, f->nlabels);
    pthread_mutex_lock(&f->reg->lock);
    cdn_series_t *s = f->hcap ? f->htab[h & (f->hcap - 1)] : NULL;
    for (; s != NULL; s = s->hnext) {
        if (s->hash != h)
            continue;
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], label_values[i]) == 0)
            i++;
        if (i == f->nlabels)
            break;
    }
    if (s == NULL)
        s = series_create_locked(f, label_values, h);
    pthread_mutex_unlock(&f->reg->lock);
    return s;
}

cdn_series_t *cdn_metric_plain(cdn_metric_t *f)
{
    return f != NULL && f->nlabels == 0 ? f->series[0] : NULL;
}

/* --- rendering --- */

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* HELP text escapes \ and newline; label values also escape ". */
static void put_escaped(struct buf *b, const char *s, int quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep != NULL) {
            put(b, run, (size_t)(s - run));
            puts_(b, rep);
            run = s + 1;
        }
    }
    put(b, run, (size_t)(s - run));
}

/* A float the way Prometheus' own client writes it (Go's strconv 'g', shortest round-trip):
 * "0.005", "1", "1e+06", "1.5e-07", "+Inf", "-Inf", "NaN". */
static void put_double(struct buf *b, double v)
{
    char out[40];
    if (isnan(v)) {
        puts_(b, "NaN");
        return;
    }
    if (isinf(v)) {
        puts_(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        puts_(b, signbit(v) ? "-0" : "0");
        return;
    }
    char e[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    if (prec == 17)
        snprintf(e, sizeof(e), "%.16e", v);
    /* e = [-]d[.ddd]e[+-]XX: split into sign, digits and exponent. */
    const char *p = e;
    int neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < sizeof(digits) - 1)
            digits[nd++] = *p;
    digits[nd] = '\0';
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = '\0';
    int exp = atoi(p + 1);
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp < -4 || exp >= 6) { /* Go's rule for the shortest form */
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, nd - 1);
            o += nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = -1; i > exp; i--)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        /* exp in [0, 5]: integer part is digits[0..exp], zero-padded */
        for (int i = 0; i <= exp; i++)
            out[o++] = (size_t)i < nd ? digits[i] : '0';
        if (nd > (size_t)exp + 1) {
            out[o++] = '.';
            memcpy(out + o, digits + exp + 1, nd - (size_t)exp - 1);
            o += nd - (size_t)exp - 1;
        }
    }
    put(b, out, o);
}

static void put_u64(struct buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    put(b, tmp, (size_t)n);
}

/* name{l1="v1",...[,le="x"]} */
static void put_series_name(struct buf *b, const cdn_metric_t *f, const char *suffix, const cdn_series_t *s,
                            const char *le)
{
    puts_(b, f->name);
    puts_(b, suffix);
    if (f->nlabels == 0 && le == NULL)
        return;
    puts_(b, "{");
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0)
            puts_(b, ",");
        puts_(b, f->labels[i]);
        puts_(b, "=\"");
        put_escaped(b, s->values[i], 1);
        puts_(b, "\"");
    }
    if (le != NULL) {
        if (f->nlabels > 0)
            puts_(b, ",");
        puts_(b, "le=\"");
        puts_(b, le);
        puts_(b, "\"");
    }
    puts_(b, "}");
}

static void render_family(struct buf *b, const cdn_metric_t *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "gauge", "counter"};
    if (f->nseries == 0)
        return;
    puts_(b, "# HELP ");
    puts_(b, f->name);
    puts_(b, " ");
    put_escaped(b, f->help, 0);
    puts_(b, "\n# TYPE ");
    puts_(b, f->name);
    puts_(b, " ");
    puts_(b, types[f->kind]);
    puts_(b, "\n");
    for (size_t i = 0; i < f->nseries; i++) {
        const cdn_series_t *s = f->series[i];
        switch (f->kind) {
        case K_COUNTER:
            put_series_name(b, f, "", s, NULL);
            puts_(b, " ");
            put_u64(b, cdn_counter_value(s));
            puts_(b, "\n");
            break;
        case K_GAUGE:
        case K_GAUGE_FN:
        case K_COUNTER_FN:
            put_series_name(b, f, "", s, NULL);
            puts_(b, " ");
            put_double(b, cdn_gauge_value(s));
            puts_(b, "\n");
            break;
        case K_HISTOGRAM: {
            uint64_t cum = 0;
            for (size_t k = 0; k <= f->nbounds; k++) {
                cum += slot_sum(s, k);
                struct buf le = {0};
                if (k < f->nbounds)
                    put_double(&le, f->bounds[k]);
                else
                    puts_(&le, "+Inf");
                if (le.oom) {
                    b->oom = 1;
                    return;
                }
                put_series_name(b, f, "_bucket", s, le.p);
                free(le.p);
                puts_(b, " ");
                put_u64(b, cum);
                puts_(b, "\n");
            }
            put_series_name(b, f, "_sum", s, NULL);
            puts_(b, " ");
            put_double(b, slot_dsum(s, f->nbounds + 1));
            puts_(b, "\n");
            put_series_name(b, f, "_count", s, NULL);
            puts_(b, " ");
            put_u64(b, cum);
            puts_(b, "\n");
            break;
        }
        }
    }
}

char *cdn_metrics_render(cdn_metrics_t *m, size_t *len)
{
    if (m == NULL)
        return NULL;
    struct buf b = {0};
    put(&b, "", 0); /* an empty registry renders as "" rather than NULL */
    pthread_mutex_lock(&m->lock);
    for (const cdn_metric_t *f = m->first; f != NULL; f = f->next)
        render_family(&b, f);
    pthread_mutex_unlock(&m->lock);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len != NULL)
        *len = b.len;
    return b.p;
}
