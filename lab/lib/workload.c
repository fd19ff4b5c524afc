/* lab/lib/workload.c - request generators and the per-request log (see workload.h). */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/workload.h"

int lab_zipf_init(struct lab_zipf *z, size_t n, double alpha)
{
    memset(z, 0, sizeof(*z));
    if (n == 0 || alpha < 0 || !isfinite(alpha)) return -1;
    z->cdf = malloc(n * sizeof(double));
    if (!z->cdf) return -1;
    z->n = n;
    z->alpha = alpha;
    double sum = 0;
    for (size_t k = 0; k < n; k++) z->cdf[k] = (sum += pow((double)(k + 1), -alpha));
    for (size_t k = 0; k < n; k++) z->cdf[k] /= sum;
    z->cdf[n - 1] = 1.0;
    return 0;
}

void lab_zipf_free(struct lab_zipf *z)
{
    free(z->cdf);
    z->cdf = NULL;
}

size_t lab_zipf_rank(const struct lab_zipf *z, double u)
{   /* the first rank whose cdf exceeds u */
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo + 1;
}

double lab_poisson_gap(double rate, double u)
{
    if (rate <= 0) return INFINITY;
    if (u >= 1.0) u = 0x1.fffffffffffffp-1;
    return -log1p(-u) / rate;
}

int lab_ramp_parse(const char *s, struct lab_ramp *out)
{
    out->n = 0;
    while (s && *s) {
        char *e;
        double t = strtod(s, &e);
        if (e == s || *e != ':' || out->n == LAB_RAMP_MAX) return -1;
        s = e + 1;
        double r = strtod(s, &e);
        if (e == s || (*e && *e != ',') || !(r >= 0) || !(t >= 0) || r > 1e6) return -1;
        if ((out->n == 0 && t != 0) || (out->n && t <= out->t[out->n - 1])) return -1;
        out->t[out->n] = t;
        out->r[out->n++] = r;
        s = *e ? e + 1 : e;
    }
    return out->n && lab_ramp_max(out) > 0 ? 0 : -1;
}

double lab_ramp_rate(const struct lab_ramp *r, double t_s)
{
    if (!r->n) return 0;
    if (t_s <= r->t[0]) return r->r[0];
    for (size_t i = 1; i < r->n; i++)
        if (t_s < r->t[i]) return r->r[i - 1] + (r->r[i] - r->r[i - 1]) * (t_s - r->t[i - 1]) / (r->t[i] - r->t[i - 1]);
    return r->r[r->n - 1];
}

double lab_ramp_max(const struct lab_ramp *r)
{
    double m = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->r[i] > m) m = r->r[i];
    return m;
}

int lab_og_read(const void *data, size_t len, size_t i, struct lab_og_req *out)
{
    if (i >= len / 24) return -1;
    const unsigned char *p = (const unsigned char *)data + i * 24;
    uint64_t v = 0;
    for (int k = 3; k >= 0; k--) v = v << 8 | p[k];
    out->ts = (uint32_t)v;
    v = 0;
    for (int k = 11; k >= 4; k--) v = v << 8 | p[k];
    out->id = v;
    v = 0;
    for (int k = 15; k >= 12; k--) v = v << 8 | p[k];
    out->size = (uint32_t)v;
    v = 0;
    for (int k = 23; k >= 16; k--) v = v << 8 | p[k];
    out->next = (int64_t)v;
    return 0;
}

int lab_wl_init(struct lab_wl *w, enum lab_wl_kind kind, size_t products, double alpha, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->kind = kind;
    w->products = products ? products : 1;
    w->rng = seed * 0x2545F4914F6CDD1Dull + 1;
    if (kind != LAB_WL_TRACE) return lab_zipf_init(&w->zipf, w->products, alpha);
    return 0;
}

void lab_wl_set_trace(struct lab_wl *w, const void *data, size_t len, int loop)
{
    w->trace = data;
    w->trace_len = len;
    w->trace_pos = 0;
    w->trace_loop = loop;
}

void lab_wl_free(struct lab_wl *w) { lab_zipf_free(&w->zipf); }

static const char *const sizes[] = {"thumb", "medium", "large"};

int lab_wl_next(struct lab_wl *w, struct lab_wl_req *r)
{
    memset(r, 0, sizeof(*r));
    switch (w->kind) {
    case LAB_WL_SHOPPER:
        if (w->pending_n) { /* the page's images: medium, then the 2x large */
            unsigned k = 3 - w->pending_n--;
            r->host = 0;
            snprintf(r->path, sizeof(r->path), "/img/%u/%s.png", w->pending_id, sizes[k]);
            return 1;
        }
        w->pending_id = (unsigned)lab_zipf_rank(&w->zipf, lab_rng_unit(&w->rng));
        w->pending_n = 2;
        r->host = 1;
        r->first_of_visit = 1;
        snprintf(r->path, sizeof(r->path), "/p/%u", w->pending_id);
        return 1;
    case LAB_WL_ZIPF: {
        /* images ranked by popularity: product rank k, size variant by a second draw */
        size_t k = lab_zipf_rank(&w->zipf, lab_rng_unit(&w->rng));
        double u = lab_rng_unit(&w->rng);
        r->host = 0;
        snprintf(r->path, sizeof(r->path), "/img/%zu/%s.png", k, sizes[u < 0.5 ? 0 : u < 0.85 ? 1 : 2]);
        return 1;
    }
    case LAB_WL_TRACE: {
        struct lab_og_req q;
        if (lab_og_read(w->trace, w->trace_len, w->trace_pos, &q) < 0) {
            if (!w->trace_loop || w->trace_len < 24) return 0;
            w->trace_pos = 0;
            if (lab_og_read(w->trace, w->trace_len, 0, &q) < 0) return 0;
        }
        w->trace_pos++;
        /* trace objects onto the shop's images: the id picks a product and a size */
        r->host = 0;
        snprintf(r->path, sizeof(r->path), "/img/%llu/%s.png", (unsigned long long)(q.id % w->products + 1),
                 sizes[(q.id / w->products) % 3]);
        return 1;
    }
    }
    return 0;
}

size_t lab_log_format(const struct lab_logrec *r, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%.3f\t%c\t%s\t%s\t%d\t%llu\t%.3f\t%s%s%s\t%s\n", r->t, r->phase, r->region,
                     *r->edge ? r->edge : "-", r->status, (unsigned long long)r->bytes, r->latency_ms,
                     *r->cache ? r->cache : "-", *r->tier ? "/" : "", r->tier, r->url);
    return n < 0 ? 0 : (size_t)n;
}

/* Bounded field cursor over one line. */
struct cur {
    const char *p, *end;
    int err;
};

static size_t field(struct cur *c, const char **start)
{
    if (c->err || c->p > c->end) {
        c->err = 1;
        *start = "";
        return 0;
    }
    const char *s = c->p;
    while (c->p < c->end && *c->p != '\t' && *c->p != '\n') c->p++;
    *start = s;
    size_t n = (size_t)(c->p - s);
    c->p++; /* past the tab; may go one past end, checked on the next call */
    return n;
}

static void copy_field(struct cur *c, char *dst, size_t cap)
{
    const char *s;
    size_t n = field(c, &s);
    if (n == 0 || n >= cap) {
        c->err = 1;
        *dst = 0;
        return;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) { /* NUL, CR, LF...: not a line we wrote */
            c->err = 1;
            *dst = 0;
            return;
        }
    memcpy(dst, s, n);
    dst[n] = 0;
}

static double num_field(struct cur *c, int integer)
{
    char tmp[32];
    copy_field(c, tmp, sizeof(tmp));
    if (c->err) return 0;
    char *e;
    double v = integer ? (double)strtoll(tmp, &e, 10) : strtod(tmp, &e);
    /* below 1e15: the line formats back (%.3f) within the field's 31 characters (fuzz) */
    if (*e || !isfinite(v) || v < 0 || v >= 1e15) c->err = 1;
    return v;
}

int lab_log_parse(const char *line, size_t len, struct lab_logrec *r)
{
    memset(r, 0, sizeof(*r));
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    struct cur c = {line, line + len, 0};
    char phase[4];
    r->t = num_field(&c, 0);
    copy_field(&c, phase, sizeof(phase));
    copy_field(&c, r->region, sizeof(r->region));
    copy_field(&c, r->edge, sizeof(r->edge));
    double st = num_field(&c, 1);
    double by = num_field(&c, 1);
    r->latency_ms = num_field(&c, 0);
    char cache[32];
    copy_field(&c, cache, sizeof(cache));
    copy_field(&c, r->url, sizeof(r->url));
    if (c.err || c.p < c.end) return -1;
    if (strlen(phase) != 1 || (phase[0] != 'w' && phase[0] != 'm') || st > 999) return -1;
    r->phase = phase[0];
    r->status = (int)st;
    r->bytes = (uint64_t)by;
    char *slash = strchr(cache, '/');
    if (slash) {
        *slash = 0;
        snprintf(r->tier, sizeof(r->tier), "%.7s", slash + 1);
    }
    snprintf(r->cache, sizeof(r->cache), "%.15s", cache);
    return 0;
}

void lab_cache_status_parse(const char *v, size_t len, char *edge, size_t elen, char *result, size_t rlen,
                            char *tier, size_t tlen)
{
    *edge = *result = *tier = 0;
    /* The last member is the cache nearest the client (RFC 9211 section 2). Earlier members,
     * when present, are the parents it went through. */
    const char *end = v + len, *m = v;
    int members = 1;
    for (const char *p = v; p < end; p++)
        if (*p == ',') {
            m = p + 1;
            members++;
        }
    while (m < end && (*m == ' ' || *m == '\t')) m++;
    const char *semi = memchr(m, ';', (size_t)(end - m));
    const char *nend = semi ? semi : end;
    const char *name = m;
    if ((size_t)(nend - m) > 9 && !memcmp(m, "cdn-edge-", 9)) name = m + 9;
    snprintf(edge, elen, "%.*s", (int)(nend - name), name);
    for (const char *p = semi; p && p < end;) {
        p++;
        while (p < end && *p == ' ') p++;
        const char *q = memchr(p, ';', (size_t)(end - p));
        const char *pe = q ? q : end;
        size_t n = (size_t)(pe - p);
        if (n == 3 && !memcmp(p, "hit", 3)) snprintf(result, rlen, "hit");
        else if (n > 4 && !memcmp(p, "fwd=", 4) && !*result) snprintf(result, rlen, "%.*s", (int)(n - 4), p + 4);
        else if (n > 7 && !memcmp(p, "detail=", 7) && !strcmp(result, "hit") && !memcmp(p + 7, "disk", n - 7 < 4 ? n - 7 : 4))
            snprintf(tier, tlen, "disk");
        p = q;
    }
    if (!strcmp(result, "hit") && !*tier) snprintf(tier, tlen, "ram");
    /* a miss here that a parent answered from its cache */
    if (strcmp(result, "hit") && members > 1 && memmem(v, (size_t)(m - v), "; hit", 5)) snprintf(tier, tlen, "parent");
}

int lab_log_tier(const struct lab_logrec *r)
{
    if (r->status == 0 || r->status >= 500) return -1;
    if (!strcmp(r->cache, "hit")) return !strcmp(r->tier, "disk") ? 1 : 0;
    return !strcmp(r->tier, "parent") ? 2 : 3;
}

double lab_percentile(const double *sorted, size_t n, double p)
{
    if (!n) return 0;
    double rank = ceil(p / 100.0 * (double)n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    if (i >= n) i = n - 1;
    return sorted[i];
}
