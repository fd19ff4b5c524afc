/* lab/lib/top.c - `cdn-lab top`'s pure part (see top.h): /metrics text -> snapshot, two snapshots
 * -> a row, rows -> text or JSON. */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/top.h"

const char *const lab_top_tier_names[LAB_TOP_NTIERS] = {"ram", "rocksdb", "parent", "origin"};

void lab_top_snap_init(struct lab_top_snap *s, double t)
{
    memset(s, 0, sizeof(*s));
    s->t = t;
    s->hit_bytes = s->draining = s->lag = s->bus_up = NAN;
    s->lb_req = s->lb_5xx = NAN;
}

/* The value of label `name` in a label set `{a="x",b="y"}` (lbl .. end), copied into out; 0 if found. */
static int label(const char *lbl, const char *end, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = lbl; p && p < end; p++) {
        if ((p == lbl || p[-1] == '{' || p[-1] == ',') && (size_t)(end - p) > nl + 2 && !memcmp(p, name, nl) &&
            p[nl] == '=' && p[nl + 1] == '"') {
            const char *v = p + nl + 2, *q = v;
            while (q < end && *q != '"') q += *q == '\\' && q + 1 < end ? 2 : 1;
            size_t n = (size_t)(q - v) < cap - 1 ? (size_t)(q - v) : cap - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
    }
    return -1;
}

static int is(const char *name, size_t nl, const char *want)
{
    return strlen(want) == nl && !memcmp(name, want, nl);
}

static void add_bucket(struct lab_top_snap *s, double le, double v)
{
    size_t i = 0;
    while (i < s->nb && s->le[i] < le) i++;
    if (i < s->nb && s->le[i] == le) {
        s->cum[i] += v; /* the same bound twice (should not happen): summed */
        return;
    }
    if (s->nb >= LAB_TOP_BUCKETS) return;
    memmove(s->le + i + 1, s->le + i, (s->nb - i) * sizeof(double));
    memmove(s->cum + i + 1, s->cum + i, (s->nb - i) * sizeof(double));
    s->le[i] = le;
    s->cum[i] = v;
    s->nb++;
}

/* One sample line: name [{labels}] value. */
static int sample(struct lab_top_snap *s, const char *line, const char *end)
{
    const char *p = line;
    while (p < end && *p != '{' && *p != ' ') p++;
    const char *name = line;
    size_t nl = (size_t)(p - line);
    const char *lbl = NULL, *lend = NULL;
    if (p < end && *p == '{') {
        lbl = p;
        int inq = 0;
        while (p < end && (inq || *p != '}')) {
            if (*p == '"' && p[-1] != '\\') inq = !inq;
            p++;
        }
        if (p >= end) return 0;
        lend = p++;
    }
    while (p < end && *p == ' ') p++;
    char num[64];
    size_t vl = 0;
    while (p + vl < end && p[vl] != ' ' && vl < sizeof(num) - 1) vl++;
    if (!vl) return 0;
    memcpy(num, p, vl);
    num[vl] = 0;
    char *ep;
    double v = strtod(num, &ep);
    if (*ep || isnan(v)) return 0;
    char lv[64];
    if (is(name, nl, "edge_requests_total")) {
        s->req += v;
        if (lbl && !label(lbl, lend, "result", lv, sizeof(lv))) {
            if (!strcmp(lv, "hit")) s->hit += v;
            else if (!strcmp(lv, "error")) s->err += v;
        }
        if (lbl && !label(lbl, lend, "tier", lv, sizeof(lv)))
            for (int t = 0; t < LAB_TOP_NTIERS; t++)
                if (!strcmp(lv, lab_top_tier_names[t]) || (t == LAB_TOP_DISK && !strcmp(lv, "disk"))) s->tier[t] += v;
    } else if (is(name, nl, "edge_body_bytes_sent_total")) s->bytes += v;
    else if (is(name, nl, "edge_hit_body_bytes_sent_total")) s->hit_bytes = isnan(s->hit_bytes) ? v : s->hit_bytes + v;
    else if (is(name, nl, "edge_origin_fetches_total")) s->origin += v;
    else if (is(name, nl, "edge_origin_errors_total")) s->origin_err += v;
    else if (is(name, nl, "edge_draining")) s->draining = v;
    else if (is(name, nl, "edge_purge_stream_lag")) s->lag = v;
    else if (is(name, nl, "edge_purge_bus_up")) s->bus_up = v;
    else if (is(name, nl, "edge_request_duration_seconds_bucket")) {
        if (!lbl || label(lbl, lend, "le", lv, sizeof(lv))) return 0;
        add_bucket(s, strtod(lv, NULL), v);
    } else if (is(name, nl, "shop_lb_requests_total")) {
        s->lb_req = isnan(s->lb_req) ? v : s->lb_req + v;
        if (isnan(s->lb_5xx)) s->lb_5xx = 0;
        if (lbl && !label(lbl, lend, "status", lv, sizeof(lv)) && lv[0] == '5') s->lb_5xx += v;
    } else return 0;
    return 1;
}

int lab_top_parse(const char *text, size_t len, struct lab_top_snap *s)
{
    int n = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le > p && *p != '#') n += sample(s, p, le > p && le[-1] == '\r' ? le - 1 : le);
        p = nl ? nl + 1 : end;
    }
    return n;
}

double lab_top_quantile(const double *le, const double *dcum, size_t nb, double q)
{
    if (!nb || dcum[nb - 1] <= 0) return NAN;
    double rank = q * dcum[nb - 1];
    for (size_t i = 0; i < nb; i++) {
        if (dcum[i] < rank) continue;
        if (isinf(le[i])) return i ? le[i - 1] : NAN; /* above the last bound: the last bound */
        double lo = i ? le[i - 1] : 0, clo = i ? dcum[i - 1] : 0;
        double in = dcum[i] - clo;
        return in > 0 ? lo + (le[i] - lo) * (rank - clo) / in : le[i];
    }
    return le[nb - 1];
}

/* A counter's increase; after a restart (it went down) what it counted since. */
static double inc(double prev, double cur)
{
    if (isnan(cur)) return NAN;
    if (isnan(prev)) return cur;
    return cur >= prev ? cur - prev : cur;
}

int lab_top_rate(const struct lab_top_snap *prev, const struct lab_top_snap *cur, int healthy, struct lab_top_row *row)
{
    double dt = cur->t - prev->t;
    memset(row, 0, sizeof(*row));
    row->up = cur->up;
    row->healthy = healthy;
    row->draining = !isnan(cur->draining) && cur->draining > 0;
    row->lag = cur->lag;
    if (!(dt > 0)) return -1;
    int restarted = cur->req < prev->req; /* every counter of the edge started again */
    const struct lab_top_snap zero = {.hit_bytes = NAN, .lb_req = NAN, .lb_5xx = NAN};
    const struct lab_top_snap *p = restarted ? &zero : prev;
    /* down, or back after a scrape that failed (its counters may span much more than dt): no rates */
    if (!cur->up || !prev->up) {
        row->req_s = row->origin_s = row->err_s = NAN;
        row->hit = row->byte_hit = row->p50_ms = row->p99_ms = NAN;
        for (int t = 0; t < LAB_TOP_NTIERS; t++) row->tier[t] = NAN;
        return 0;
    }
    double dreq = inc(p->req, cur->req);
    row->req_s = dreq / dt;
    row->origin_s = inc(p->origin, cur->origin) / dt;
    row->err_s = inc(p->err, cur->err) / dt;
    row->hit = dreq > 0 ? inc(p->hit, cur->hit) / dreq : NAN;
    double db = inc(p->bytes, cur->bytes), dhb = inc(p->hit_bytes, cur->hit_bytes);
    row->byte_hit = db > 0 && !isnan(dhb) ? (dhb > db ? 1.0 : dhb / db) : NAN;
    for (int t = 0; t < LAB_TOP_NTIERS; t++) row->tier[t] = dreq > 0 ? inc(p->tier[t], cur->tier[t]) / dreq : NAN;
    /* the histogram's increase per bound (bounds matched by value: a restarted edge has the same) */
    double d[LAB_TOP_BUCKETS];
    for (size_t i = 0; i < cur->nb; i++) {
        double pv = 0;
        for (size_t j = 0; j < p->nb; j++)
            if (p->le[j] == cur->le[i]) pv = p->cum[j];
        d[i] = inc(pv, cur->cum[i]);
    }
    /* the histogram also times what edge_requests_total does not count (the admin's health
     * checks on a parent): no latency without requests */
    row->p50_ms = dreq > 0 ? lab_top_quantile(cur->le, d, cur->nb, 0.50) * 1e3 : NAN;
    row->p99_ms = dreq > 0 ? lab_top_quantile(cur->le, d, cur->nb, 0.99) * 1e3 : NAN;
    return 0;
}

/* "  97.5" or "     -" in width w. */
static void num(struct lab_buf *b, int w, int prec, double v)
{
    if (isnan(v) || isinf(v)) lab_buf_printf(b, " %*s", w, "-");
    else lab_buf_printf(b, " %*.*f", w, prec, v);
}

static const char *state_of(const struct lab_top_row *r)
{
    if (!r->up) return "DOWN";
    if (r->draining) return "draining";
    return r->healthy ? "ok" : "FAILING";
}

void lab_top_text(const struct lab_top_frame *f, struct lab_buf *b)
{
    lab_buf_printf(b, "cdn-lab top: lab '%s', %.0f s; tiers: share answered by ram, rocksdb, a parent, the origin\n",
                   f->lab ? f->lab : "?", f->t);
    lab_buf_printf(b, "%-10s %-6s %7s %6s %6s %5s %5s %5s %5s %8s %6s %8s %8s %-8s %5s\n", "edge", "region", "req/s",
                   "hit%", "byte%", "ram", "rdb", "par", "orig", "origin/s", "err/s", "p50 ms", "p99 ms", "state",
                   "lag");
    double creq = 0, chit = 0, cerr = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct lab_top_row *r = &f->rows[i];
        char nm[24];
        snprintf(nm, sizeof(nm), "%s%s", f->names[i], f->parent && f->parent[i] ? "*" : "");
        lab_buf_printf(b, "%-10s %-6s", nm, f->regions[i]);
        num(b, 7, 1, r->req_s);
        num(b, 6, 1, r->hit * 100);
        num(b, 6, 1, r->byte_hit * 100);
        for (int t = 0; t < LAB_TOP_NTIERS; t++) num(b, 5, 0, r->tier[t] * 100);
        num(b, 8, 1, r->origin_s);
        num(b, 6, 1, r->err_s);
        num(b, 8, 1, r->p50_ms);
        num(b, 8, 1, r->p99_ms);
        lab_buf_printf(b, " %-8s", state_of(r));
        if (isnan(r->lag)) lab_buf_printf(b, " %5s\n", "-");
        else lab_buf_printf(b, " %5.0f\n", r->lag);
        if (f->parent && f->parent[i]) continue; /* a shield's requests are the children's misses */
        if (!isnan(r->req_s)) {
            creq += r->req_s;
            cerr += r->err_s;
            if (!isnan(r->hit)) chit += r->hit * r->req_s;
        }
    }
    lab_buf_printf(b, "%-17s", "clients (no *)");
    num(b, 7, 1, creq);
    num(b, 6, 1, creq > 0 ? 100 * chit / creq : NAN);
    lab_buf_printf(b, "   err/s %.1f", cerr);
    if (!isnan(f->lb_req_s)) lab_buf_printf(b, "   origin (shop-lb) %.1f req/s, %.1f 5xx/s", f->lb_req_s, f->lb_5xx_s);
    lab_buf_printf(b, "\n");
}

void lab_top_json_num(struct lab_buf *b, double v, int prec)
{
    if (isnan(v) || isinf(v)) lab_buf_printf(b, "null");
    else lab_buf_printf(b, "%.*f", prec, v);
}

/* A name from the topology (letters, digits, - and _ by its checks), quoted; anything else dropped. */
static void jstr(struct lab_buf *b, const char *s)
{
    lab_buf_printf(b, "\"");
    for (; s && *s; s++)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20) lab_buf_printf(b, "%c", *s);
    lab_buf_printf(b, "\"");
}

void lab_top_json(const struct lab_top_frame *f, struct lab_buf *b)
{
    lab_buf_printf(b, "{\"lab\":");
    jstr(b, f->lab);
    lab_buf_printf(b, ",\"t\":%.3f,\"origin\":{\"req_s\":", f->t);
    lab_top_json_num(b, f->lb_req_s, 2);
    lab_buf_printf(b, ",\"err_s\":");
    lab_top_json_num(b, f->lb_5xx_s, 2);
    lab_buf_printf(b, "},\"edges\":[");
    for (size_t i = 0; i < f->n; i++) {
        const struct lab_top_row *r = &f->rows[i];
        lab_buf_printf(b, "%s{\"name\":", i ? "," : "");
        jstr(b, f->names[i]);
        lab_buf_printf(b, ",\"region\":");
        jstr(b, f->regions[i]);
        lab_buf_printf(b, ",\"parent\":%s,\"state\":\"%s\",\"up\":%s,\"healthy\":%s,\"draining\":%s,\"req_s\":",
                       f->parent && f->parent[i] ? "true" : "false", state_of(r), r->up ? "true" : "false",
                       r->healthy ? "true" : "false", r->draining ? "true" : "false");
        lab_top_json_num(b, r->req_s, 2);
        lab_buf_printf(b, ",\"hit\":");
        lab_top_json_num(b, r->hit, 4);
        lab_buf_printf(b, ",\"byte_hit\":");
        lab_top_json_num(b, r->byte_hit, 4);
        lab_buf_printf(b, ",\"tiers\":{");
        for (int t = 0; t < LAB_TOP_NTIERS; t++) {
            lab_buf_printf(b, "%s\"%s\":", t ? "," : "", lab_top_tier_names[t]);
            lab_top_json_num(b, r->tier[t], 4);
        }
        lab_buf_printf(b, "},\"origin_s\":");
        lab_top_json_num(b, r->origin_s, 2);
        lab_buf_printf(b, ",\"err_s\":");
        lab_top_json_num(b, r->err_s, 2);
        lab_buf_printf(b, ",\"p50_ms\":");
        lab_top_json_num(b, r->p50_ms, 2);
        lab_buf_printf(b, ",\"p99_ms\":");
        lab_top_json_num(b, r->p99_ms, 2);
        lab_buf_printf(b, ",\"lag\":");
        lab_top_json_num(b, r->lag, 0);
        lab_buf_printf(b, "}");
    }
    lab_buf_printf(b, "]}");
}

size_t lab_hit_curve(const double *t, const unsigned char *hit, size_t n, double step, double win, size_t min_n,
                     struct lab_hit_point *out, size_t max)
{
    if (!n || !(step > 0) || !(win > 0)) return 0;
    size_t k = 0, lo = 0, hi = 0, wh = 0, ch = 0; /* window [lo, hi), its hits; hits before hi */
    double last = t[n - 1];
    for (double end = floor(t[0] / step) * step + step; end <= last + 1e-9 && k < max; end += step) {
        while (hi < n && t[hi] < end) {
            wh += hit[hi];
            ch += hit[hi];
            hi++;
        }
        while (lo < hi && t[lo] < end - win) wh -= hit[lo++];
        size_t wn = hi - lo;
        if (wn < min_n || !wn) continue;
        out[k++] = (struct lab_hit_point){.t = end, .win = (double)wh / (double)wn, .cum = (double)ch / (double)hi, .n = wn};
    }
    return k;
}
