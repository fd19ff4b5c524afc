/* lab/lib/trace.c - trace files into arrays of requests (see trace.h).
 *
 * A trace is read whole into memory (a 2M-request oracleGeneral trace is 48 MB, its array 32 MB):
 * the simulator replays it once per policy and size, and one pass over an array is what makes
 * that fast. oracleGeneral records are decoded by lab_og_read (workload.c), the one decoder that
 * cdn-load's trace replay uses too. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zstd.h>

#include "cdn/http.h"
#include "lab/lib/trace.h"
#include "lab/lib/workload.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int lab_trace_fmt_parse(const char *s)
{
    if (!strcasecmp(s, "auto")) return LAB_TRACE_AUTO;
    if (!strcasecmp(s, "oracleGeneral") || !strcasecmp(s, "og") || !strcasecmp(s, "bin")) return LAB_TRACE_OG;
    if (!strcasecmp(s, "csv")) return LAB_TRACE_CSV;
    return -1;
}

enum lab_trace_fmt lab_trace_fmt_guess(const char *path)
{
    size_t n = strlen(path);
    if (n > 4 && !strcmp(path + n - 4, ".zst")) n -= 4;
    return n > 4 && !strncasecmp(path + n - 4, ".csv", 4) ? LAB_TRACE_CSV : LAB_TRACE_OG;
}

int lab_csv_cols_parse(const char *s, struct lab_csv_cols *c)
{
    memset(c, 0, sizeof(*c));
    while (*s) {
        const char *eq = strchr(s, '=');
        if (!eq) return -1;
        char *end;
        errno = 0;
        long v = strtol(eq + 1, &end, 10);
        if (errno || end == eq + 1 || v < 1 || v > 1000 || (*end && *end != ',')) return -1;
        size_t k = (size_t)(eq - s);
        if (k == 2 && !strncmp(s, "id", 2)) c->id = (int)v;
        else if (k == 4 && !strncmp(s, "size", 4)) c->size = (int)v;
        else if (k == 4 && !strncmp(s, "time", 4)) c->ts = (int)v;
        else return -1;
        s = *end ? end + 1 : end;
    }
    return 0;
}

int lab_trace_is_zstd(const void *buf, size_t len)
{
    static const unsigned char magic[4] = {0x28, 0xB5, 0x2F, 0xFD};
    return len >= 4 && !memcmp(buf, magic, 4);
}

int lab_trace_unzstd(const void *in, size_t len, size_t cap, void **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    /* First guess from the frame header, but never trust it for more than the input could plausibly
     * hold: the buffer doubles as needed anyway. */
    unsigned long long fcs = ZSTD_getFrameContentSize(in, len);
    size_t guess = len > (SIZE_MAX - (1 << 20)) / 64 ? SIZE_MAX : len * 64 + (1 << 20);
    size_t ocap = fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR && fcs < guess ? (size_t)fcs : guess;
    if (ocap > cap) ocap = cap;
    if (ocap == 0) ocap = cap < 4096 ? cap : 4096;
    if (ocap == 0) return fail(err, errlen, "zstd: output cap is 0");
    ZSTD_DCtx *d = ZSTD_createDCtx();
    unsigned char *buf = malloc(ocap);
    if (!d || !buf) {
        ZSTD_freeDCtx(d);
        free(buf);
        return fail(err, errlen, "zstd: out of memory");
    }
    ZSTD_inBuffer ib = {in, len, 0};
    ZSTD_outBuffer ob = {buf, ocap, 0};
    for (;;) {
        if (ob.pos == ob.size) {
            if (ob.size >= cap) {
                fail(err, errlen, "zstd: decompressed trace larger than %zu bytes", cap);
                goto bad;
            }
            size_t nc = ob.size > cap / 2 ? cap : ob.size * 2;
            unsigned char *nb = realloc(buf, nc);
            if (!nb) {
                fail(err, errlen, "zstd: out of memory (%zu bytes)", nc);
                goto bad;
            }
            buf = nb;
            ob.dst = nb;
            ob.size = nc;
        }
        size_t in0 = ib.pos, out0 = ob.pos;
        size_t ret = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(ret)) {
            fail(err, errlen, "zstd: %s", ZSTD_getErrorName(ret));
            goto bad;
        }
        if (ret == 0 && ib.pos == ib.size) break; /* last frame complete and flushed */
        if (ib.pos == in0 && ob.pos == out0 && ob.pos < ob.size) {
            fail(err, errlen, "zstd: truncated (the stream ends inside a frame)");
            goto bad;
        }
    }
    ZSTD_freeDCtx(d);
    *out = buf;
    *outlen = ob.pos;
    return 0;
bad:
    ZSTD_freeDCtx(d);
    free(buf);
    return -1;
}

int lab_trace_slurp(const char *path, size_t cap, void **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(err, errlen, "%s: %s", path, strerror(errno));
    size_t n = 0, c = 1 << 20;
    unsigned char *buf = malloc(c);
    if (!buf) {
        close(fd);
        return fail(err, errlen, "%s: out of memory", path);
    }
    for (;;) {
        if (n == c) {
            if (c >= cap) {
                fail(err, errlen, "%s: larger than %zu bytes", path, cap);
                goto bad;
            }
            size_t nc = c > cap / 2 ? cap : c * 2;
            unsigned char *nb = realloc(buf, nc);
            if (!nb) {
                fail(err, errlen, "%s: out of memory", path);
                goto bad;
            }
            buf = nb;
            c = nc;
        }
        ssize_t r = read(fd, buf + n, c - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            fail(err, errlen, "%s: %s", path, strerror(errno));
            goto bad;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (lab_trace_is_zstd(buf, n)) {
        void *d;
        size_t dn;
        char e[200];
        int rc = lab_trace_unzstd(buf, n, cap, &d, &dn, e, sizeof(e));
        free(buf);
        if (rc < 0) return fail(err, errlen, "%s: %s", path, e);
        *out = d;
        *outlen = dn;
        return 0;
    }
    *out = buf;
    *outlen = n;
    return 0;
bad:
    close(fd);
    free(buf);
    return -1;
}

static int reserve(struct lab_trace *t, size_t more)
{
    if (t->cap - t->n >= more) return 0;
    size_t nc = t->cap ? t->cap : 1024;
    while (nc - t->n < more) {
        if (nc > SIZE_MAX / 2 / sizeof(*t->r)) return -1;
        nc *= 2;
    }
    struct lab_trace_rec *nr = realloc(t->r, nc * sizeof(*nr));
    if (!nr) return -1;
    t->r = nr;
    t->cap = nc;
    return 0;
}

int lab_trace_parse_og(const void *buf, size_t len, size_t limit, struct lab_trace *t, char *err, size_t errlen)
{
    size_t n = len / 24;
    if (limit && limit <= n) n = limit;
    else if (len % 24)
        return fail(err, errlen, "truncated: %zu bytes is %zu records and %zu stray bytes (a record is 24)", len,
                    len / 24, len % 24);
    if (reserve(t, n) < 0) return fail(err, errlen, "out of memory for %zu requests", n);
    for (size_t i = 0; i < n; i++) {
        struct lab_og_req q;
        lab_og_read(buf, len, i, &q); /* i < len / 24: cannot fail */
        t->r[t->n++] = (struct lab_trace_rec){.id = q.id, .size = q.size, .ts = q.ts};
    }
    return 0;
}

/* --- CSV: a bounded cursor over one line at a time --- */

struct field {
    const char *p;
    size_t n;
};

/* Splits [p, end) at commas into up to max fields, spaces trimmed; returns how many. */
static size_t split(const char *p, const char *end, struct field *f, size_t max)
{
    size_t k = 0;
    while (k < max) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *fe = c ? c : end;
        const char *s = p;
        while (s < fe && (*s == ' ' || *s == '\t')) s++;
        const char *e = fe;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        f[k++] = (struct field){s, (size_t)(e - s)};
        if (!c) break;
        p = c + 1;
    }
    return k;
}

/* Unsigned decimal; 0 on success. */
static int num(const struct field *f, uint64_t max, uint64_t *v)
{
    if (f->n == 0 || f->n > 20) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < f->n; i++) {
        unsigned d = (unsigned char)f->p[i] - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    if (x > max) return -1;
    *v = x;
    return 0;
}

static int name_is(const struct field *f, const char *const *names)
{
    for (; *names; names++)
        if (strlen(*names) == f->n && !strncasecmp(f->p, *names, f->n)) return 1;
    return 0;
}

#define CSV_MAXF 64

int lab_trace_parse_csv(const char *buf, size_t len, const struct lab_csv_cols *cols, size_t limit,
                        struct lab_trace *t, char *err, size_t errlen)
{
    static const char *const id_names[] = {"id", "obj_id", "object_id", "key", "lbn", NULL};
    static const char *const size_names[] = {"size", "obj_size", "object_size", "bytes", NULL};
    static const char *const ts_names[] = {"time", "timestamp", "ts", "clock_time", NULL};
    struct lab_csv_cols c = cols ? *cols : (struct lab_csv_cols){0};
    if (c.id > CSV_MAXF || c.size > CSV_MAXF || c.ts > CSV_MAXF)
        return fail(err, errlen, "csv: columns beyond %d are not supported", CSV_MAXF);
    const char *p = buf, *end = buf + len;
    size_t line = 0, added = 0;
    int first = 1;
    struct field f[CSV_MAXF];
    while (p < end && (!limit || added < limit)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        line++;
        if (le > p && le[-1] == '\r') le--;
        if (le == p) { /* blank line */
            p = next;
            continue;
        }
        size_t nf = split(p, le, f, CSV_MAXF);
        if (first) {
            first = 0;
            /* a header is a first line with no number in it */
            int numeric = 0;
            uint64_t v;
            for (size_t k = 0; k < nf; k++) numeric |= num(&f[k], UINT64_MAX, &v) == 0;
            if (!numeric) {
                for (size_t k = 0; k < nf; k++) {
                    if (!c.id && name_is(&f[k], id_names)) c.id = (int)k + 1;
                    else if (!c.size && name_is(&f[k], size_names)) c.size = (int)k + 1;
                    else if (!c.ts && name_is(&f[k], ts_names)) c.ts = (int)k + 1;
                }
                p = next;
                continue;
            }
        }
        if (!c.id || !c.size)
            return fail(err, errlen, "csv: no %s column (name it in a header line or give id=N,size=N)",
                        !c.id ? "id" : "size");
        int need = c.id > c.size ? c.id : c.size;
        if (c.ts > need) need = c.ts;
        if ((int)nf < need) return fail(err, errlen, "line %zu: %zu fields, column %d wanted", line, nf, need);
        struct lab_trace_rec r = {0};
        const struct field *fid = &f[c.id - 1];
        if (fid->n == 0) return fail(err, errlen, "line %zu: id: empty", line);
        /* a non-numeric id (a URL, a key): its fixed-key hash, so that a trace replays the same
         * in every run */
        if (num(fid, UINT64_MAX, &r.id) < 0)
            r.id = cdn_hash_fixed(fid->p, fid->n);
        uint64_t v;
        if (num(&f[c.size - 1], UINT32_MAX, &v) < 0)
            return fail(err, errlen, "line %zu: size: not a number below 2^32", line);
        r.size = (uint32_t)v;
        if (c.ts) {
            if (num(&f[c.ts - 1], UINT32_MAX, &v) < 0)
                return fail(err, errlen, "line %zu: time: not a number below 2^32", line);
            r.ts = (uint32_t)v;
        }
        if (reserve(t, 1) < 0) return fail(err, errlen, "out of memory at line %zu", line);
        t->r[t->n++] = r;
        added++;
        p = next;
    }
    return 0;
}

int lab_trace_load(const char *path, enum lab_trace_fmt fmt, const struct lab_csv_cols *cols, size_t limit,
                   struct lab_trace *t, char *err, size_t errlen)
{
    void *buf;
    size_t len;
    if (lab_trace_slurp(path, LAB_TRACE_MAX_BYTES, &buf, &len, err, errlen) < 0) return -1;
    if (fmt == LAB_TRACE_AUTO) fmt = lab_trace_fmt_guess(path);
    char e[200];
    int rc = fmt == LAB_TRACE_CSV ? lab_trace_parse_csv(buf, len, cols, limit, t, e, sizeof(e))
                                  : lab_trace_parse_og(buf, len, limit, t, e, sizeof(e));
    free(buf);
    if (rc < 0) return fail(err, errlen, "%s: %s", path, e);
    if (t->n == 0) return fail(err, errlen, "%s: no requests", path);
    return 0;
}

void lab_trace_free(struct lab_trace *t)
{
    free(t->r);
    memset(t, 0, sizeof(*t));
}
