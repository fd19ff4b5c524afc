/* lab/cdnlab/labrun.h - what cdn-lab's `load`, `report` and `rtt` commands (run_load.c, report.c,
 * rtt.c) get from the orchestrator (cdn_lab.c, labctl.h): the state directory, the topology, the plan, and a
 * way to GET a URL from inside a node's namespace. */
#ifndef LAB_LABRUN_H
#define LAB_LABRUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "lab/lib/topo.h"

struct lab_run {
    const char *statedir, *exedir;
    const struct lab_topo *topo;
    const struct lab_plan *plan;
    /* HTTP status, -1 on a connection failure; *body malloc'd (or NULL) */
    int (*http_get)(const char *ns, const char *addr, int port, const char *target, char **body, size_t *len);
    /* a non-blocking TCP socket made inside namespace ns ("" here), or -1 */
    int (*ns_socket)(const char *ns);
};

/* What the client logs of one load run say, whole run (warm-up too: the window the scrapes saw). */
struct lab_log_counts {
    uint64_t logged;      /* every request */
    uint64_t no_response; /* status 0: DNS or transport failure, timeout, cut at the end */
    uint64_t hits;        /* Cache-Status hit at the edge that answered */
    uint64_t parent_hits; /* misses there that a parent's cache answered */
};

int lab_cmd_load(struct lab_run *r, int argc, char **argv);
int lab_cmd_report(struct lab_run *r, int argc, char **argv);
/* The report's failover section (lab/cdnlab/report_failover.c); the number of faults shown. */
int lab_report_failover(struct lab_run *r, const char *odir, FILE *o, FILE *rf);

/* lab/cdnlab/rtt.c: `cdn-lab rtt [-n SAMPLES] [-q]` writes STATE/rtt.tsv (and prints the matrix);
 * the report prints the region x region matrix from it (nothing without the file). */
int lab_cmd_rtt(struct lab_run *r, int argc, char **argv);
/* lab/cdnlab/db.c: the report's database section (nothing without db:). */
void lab_report_db(const struct lab_run *r, FILE *o, FILE *rf);
void lab_report_rtt(const struct lab_run *r, FILE *o, FILE *rf);
/* lab/cdnlab/scale.c: the report's auto-scaler section and scale.png (nothing without STATE/scale.log). */
void lab_report_scale(const struct lab_run *r, const char *odir, FILE *o, FILE *rf);
/* printf to both of two streams (the terminal and the report file); either may be NULL. */
void lab_out2(FILE *a, FILE *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* lab/cdnlab/report_recon.c: a metric's change over the load run (after - before scrape) summed over its
 * samples whose labels contain `match` (all for NULL); NAN without scrapes. */
double lab_metric_delta(const struct lab_run *r, const char *node, const char *name, const char *match);
/* The parent edges' table (from their scrapes); nothing without parents. */
void lab_report_parents(const struct lab_run *r, FILE *o, FILE *rf);
/* Origin offload and the reconciliation of edges, parents, client logs and shop-lb. */
void lab_report_reconcile(const struct lab_run *r, const struct lab_log_counts *lc, FILE *o, FILE *rf);
/* The live vs replay section (lab/cdnlab/report_replay.c): each edge's hit ratio beside a replay of
 * its requests through cdn-cachesim's model at its sizes. */
void lab_report_replay(const struct lab_run *r, FILE *o, FILE *rf);

#endif
