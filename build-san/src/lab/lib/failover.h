/* lab/lib/failover.h - what one fault did to one region's clients, from cdn-load's per-request log.
 *
 * Pure: records and times in, numbers out (unit-tested in tests/unit/t_lab_anycast.c). Times are
 * seconds on the log's own clock (cdn-load's t: completion time since its start); the caller
 * converts the fault's CLOCK_MONOTONIC time with the log's .t0 file. A request's start is its
 * completion minus its latency. A success is a status in 1..499 (a 404 still proves the edge
 * answered); a failure is a transport error (status 0) or a 5xx. */
#ifndef LAB_FAILOVER_H
#define LAB_FAILOVER_H

#include <stddef.h>
#include "lab/lib/workload.h"

struct lab_fo_result {
    char next_edge[32];     /* the edge that took over ("" when none did) */
    double failover_s;      /* fault -> first success at another edge (completion), -1 none */
    double return_s;        /* undo -> first success back at the failed edge, -1 none or no undo */
    unsigned failed;        /* failures completed between the fault and the return (or the end) */
    double hit_before;      /* hit ratio of the region's requests at the failed edge, 10 s before */
    double hit_next_5s;     /* hit ratio at the next edge, first 5 s after the failover */
    double hit_next_all;    /* ... from the failover until the return (or the end) */
    double last_dead_s;     /* fault -> the last failed request that still went to the failed
                               edge (by name or address; DNS routing: a cached answer); -1 none */
    unsigned n_before, n_next_5s;
};

/* recs: one region's log in file order; dead: the failed edge's name ("eu1"), dead_addr its
 * unicast address (or NULL); t_fault and t_undo (< 0: never undone) on the log's clock. */
void lab_failover_analyse(const struct lab_logrec *recs, size_t n, const char *dead, const char *dead_addr,
                          double t_fault, double t_undo, struct lab_fo_result *out);

#endif
