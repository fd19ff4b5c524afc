/* lab/lib/trace.h - reading cache traces (libCacheSim's formats): oracleGeneral binary (24-byte
 * records: u32 time, u64 id, u32 size, i64 next access; decoded by lab_og_read in workload.c) and CSV, either one plain or zstd-compressed.
 *
 * Failure contract: every function returns 0 or -1 and, on -1, leaves a one-line reason in err
 * ("truncated: ...", "line 7: size: not a number", "zstd: Unknown frame descriptor"); nothing is
 * printed. Input is untrusted: every length is checked, decompressed output has a hard cap, and
 * a cut-short file is an error, never a silently shorter trace. */
#ifndef LAB_TRACE_H
#define LAB_TRACE_H

#include <stddef.h>
#include <stdint.h>

enum lab_trace_fmt { LAB_TRACE_AUTO, LAB_TRACE_OG, LAB_TRACE_CSV };

/* One request, as the simulator needs it (16 bytes, so 10M requests fit in 160 MB). */
struct lab_trace_rec {
    uint64_t id;
    uint32_t size;
    uint32_t ts;
};

struct lab_trace {
    struct lab_trace_rec *r;
    size_t n, cap;
};

/* CSV columns, 1-based; 0 = find it by the header's name (id: id, obj_id, object_id, key, lbn;
 * size: size, obj_size, object_size, bytes; time: time, timestamp, ts, clock_time). */
struct lab_csv_cols {
    int id, size, ts;
};

/* Default cap on a decompressed trace (bytes). */
#define LAB_TRACE_MAX_BYTES ((size_t)8 << 30)

/* "auto", "oracleGeneral"/"og"/"bin", "csv" -> fmt; -1 if unknown. */
int lab_trace_fmt_parse(const char *s);
/* By file name (a trailing .zst ignored): *.csv -> CSV, else oracleGeneral. */
enum lab_trace_fmt lab_trace_fmt_guess(const char *path);
/* "id=5,size=4,time=2" -> cols (unnamed ones stay 0). */
int lab_csv_cols_parse(const char *s, struct lab_csv_cols *c);

/* 1 if buf starts with the zstd frame magic. */
int lab_trace_is_zstd(const void *buf, size_t len);
/* Decompresses every zstd frame of in into a new malloc'd buffer (*out, *outlen; caller frees).
 * More than cap bytes of output, a corrupt frame or a stream cut short is an error. */
int lab_trace_unzstd(const void *in, size_t len, size_t cap, void **out, size_t *outlen, char *err,
                     size_t errlen);
/* Reads a whole file, decompressing it when it is zstd (by content, not name). */
int lab_trace_slurp(const char *path, size_t cap, void **out, size_t *outlen, char *err, size_t errlen);

/* Appends up to limit requests (0 = all) of an oracleGeneral buffer / CSV text to t. A length
 * that is not a whole number of records, or a CSV line that does not parse, is an error. */
int lab_trace_parse_og(const void *buf, size_t len, size_t limit, struct lab_trace *t, char *err, size_t errlen);
int lab_trace_parse_csv(const char *buf, size_t len, const struct lab_csv_cols *cols, size_t limit,
                        struct lab_trace *t, char *err, size_t errlen);
/* Slurp + parse. fmt AUTO guesses from the name; cols may be NULL (header names). */
int lab_trace_load(const char *path, enum lab_trace_fmt fmt, const struct lab_csv_cols *cols, size_t limit,
                   struct lab_trace *t, char *err, size_t errlen);
void lab_trace_free(struct lab_trace *t);

#endif
