/* libFuzzer harness: cdn-cachesim's trace readers (lab/lib/trace.c) on untrusted bytes: oracleGeneral
 * records, CSV (header-named and numbered columns), and zstd frames, whose output is parsed in
 * turn. Checks: no crash or leak; a reader that succeeds returns exactly what it claims (24 bytes
 * a record; a CSV request per non-header, non-blank line at most); a failure leaves a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/trace.h"

static void parse_all(const uint8_t *data, size_t size)
{
    struct lab_trace t = {0};
    char err[256] = "";
    if (lab_trace_parse_og(data, size, 0, &t, err, sizeof(err)) == 0) {
        if (size % 24 || t.n != size / 24) abort();
    } else if (!*err || size % 24 == 0) {
        abort();
    }
    lab_trace_free(&t);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    err[0] = 0;
    if (lab_trace_parse_csv((const char *)data, size, NULL, 0, &t, err, sizeof(err)) == 0) {
        if (t.n > lines) abort();
    } else if (!*err) {
        abort();
    }
    lab_trace_free(&t);
    struct lab_csv_cols c = {.id = 2, .size = 3, .ts = 1};
    err[0] = 0;
    if (lab_trace_parse_csv((const char *)data, size, &c, 5, &t, err, sizeof(err)) == 0) {
        if (t.n > 5) abort();
    } else if (!*err) {
        abort();
    }
    lab_trace_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_all(data, size);
    if (lab_trace_is_zstd(data, size)) {
        void *out;
        size_t n;
        char err[256] = "";
        if (lab_trace_unzstd(data, size, 1 << 20, &out, &n, err, sizeof(err)) == 0) {
            if (n > (1 << 20)) abort();
            parse_all(out, n);
            free(out);
        } else if (!*err || out != NULL) {
            abort();
        }
    }
    return 0;
}
