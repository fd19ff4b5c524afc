/* libFuzzer harness: `cdn-lab top`'s reader of an edge's or shop-lb's /metrics text (lab_top_parse,
 * input from a daemon over the network) and what follows from a scrape: the rates against an
 * empty scrape and against itself half a second later, the quantiles, the text frame and the JSON.
 * Checks: no crash; at most LAB_TOP_BUCKETS buckets, their bounds ascending; the JSON is one
 * object. (Ratios are not checked: a scrape may lie, e.g. more hits than requests.) */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/top.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lab_top_snap a, b;
    lab_top_snap_init(&a, 0);
    a.up = 1;
    lab_top_parse((const char *)data, size, &a);
    if (a.nb > LAB_TOP_BUCKETS) abort();
    for (size_t i = 1; i < a.nb; i++)
        if (!(a.le[i - 1] < a.le[i])) abort();
    b = a;
    b.t = 0.5;
    lab_top_snap_init(&a, 0);
    a.up = 1;
    struct lab_top_row rows[2];
    lab_top_rate(&a, &b, 1, &rows[0]);
    a = b;
    a.t = 1.0;
    lab_top_rate(&b, &a, 0, &rows[1]);
    const char *names[] = {"a", "b"}, *regs[] = {"x", "y"};
    int parent[] = {0, 1};
    struct lab_top_frame f = {.lab = "fuzz", .t = 1, .n = 2, .names = names, .regions = regs, .parent = parent,
                              .rows = rows, .lb_req_s = b.lb_req, .lb_5xx_s = b.lb_5xx};
    struct lab_buf t = {0}, j = {0};
    lab_top_text(&f, &t);
    lab_top_json(&f, &j);
    if (!j.oom && (!j.s || j.s[0] != '{' || j.s[j.len - 1] != '}')) abort();
    lab_buf_free(&t);
    lab_buf_free(&j);
    return 0;
}
