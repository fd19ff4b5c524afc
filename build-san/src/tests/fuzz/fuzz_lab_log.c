/* libFuzzer harness: the lab's parsers of files it did not write itself or that may be cut short:
 * the per-request log line (lab_log_parse), Cache-Status values (lab_cache_status_parse) and
 * oracleGeneral trace records (lab_og_read, via the trace generator). Checks: no crash, parsed
 * fields are NUL-terminated and within their sizes, a parsed line formats back and reparses. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lab_logrec r;
    if (lab_log_parse((const char *)data, size, &r) == 0) {
        char line[512];
        size_t n = lab_log_format(&r, line, sizeof(line));
        struct lab_logrec r2;
        if (n < sizeof(line) && lab_log_parse(line, n, &r2) != 0) abort();
        if (strlen(r.edge) >= sizeof(r.edge) || strlen(r.url) >= sizeof(r.url)) abort();
    }
    char e[32], res[16], t[8];
    lab_cache_status_parse((const char *)data, size, e, sizeof(e), res, sizeof(res), t, sizeof(t));
    if (strlen(e) >= sizeof(e) || strlen(res) >= sizeof(res) || strlen(t) >= sizeof(t)) abort();
    struct lab_wl w;
    if (lab_wl_init(&w, LAB_WL_TRACE, 100, 0, 1) == 0) {
        lab_wl_set_trace(&w, data, size, 0);
        struct lab_wl_req q;
        size_t k = 0;
        while (lab_wl_next(&w, &q)) k++;
        if (k != size / 24) abort();
        lab_wl_free(&w);
    }
    return 0;
}
