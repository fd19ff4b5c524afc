/* lab/lab_ops.c - cdn-lab load and report (placeholder until cdn-load lands). */
#include <stdio.h>
#include "labrun.h"

int lab_cmd_load(struct lab_run *r, int argc, char **argv)
{
    (void)r; (void)argc; (void)argv;
    fprintf(stderr, "cdn-lab: load is not implemented yet\n");
    return 1;
}

int lab_cmd_report(struct lab_run *r, int argc, char **argv)
{
    (void)r; (void)argc; (void)argv;
    fprintf(stderr, "cdn-lab: report is not implemented yet\n");
    return 1;
}
