/* lab/labrun.h - what cdn-lab's `load` and `report` commands (lab/lab_ops.c) get from the
 * orchestrator: the state directory, the topology, the plan, and a way to GET a URL from inside a
 * node's namespace. */
#ifndef LAB_LABRUN_H
#define LAB_LABRUN_H

#include <stddef.h>
#include <stdio.h>
#include "topo.h"

struct lab_run {
    const char *statedir, *exedir;
    const struct lab_topo *topo;
    const struct lab_plan *plan;
    /* HTTP status, -1 on a connection failure; *body malloc'd (or NULL) */
    int (*http_get)(const char *ns, const char *addr, int port, const char *target, char **body, size_t *len);
};

int lab_cmd_load(struct lab_run *r, int argc, char **argv);
int lab_cmd_report(struct lab_run *r, int argc, char **argv);
/* The report's failover section (lab/lab_failover.c); the number of faults shown. */
int lab_report_failover(struct lab_run *r, const char *odir, FILE *o, FILE *rf);

#endif
