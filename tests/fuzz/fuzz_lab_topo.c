/* libFuzzer harness: the lab's topology files (lab/lib/topo.c: regions, edges, parents, dns, origin,
 * db, scale, anycast, health) over the YAML loader, then the address plan made from a topology that
 * loads, in both modes. Checks: no crash, no leak, a refused file says where ("topo.yaml:L:C: ...")
 * whenever the error has a position, and every plan that is made stays inside its arrays. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/config.h"
#include "lab/lib/topo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lab_plan plan; /* large: not on the stack */
    cdn_conf_t *c = NULL;
    cdn_conf_err_t err;
    memset(&err, 0, sizeof(err));
    struct lab_topo *t = lab_topo_load_string("topo.yaml", (const char *)data, size, &c, &err);
    if (t == NULL) {
        if (err.msg[0] == '\0')
            abort(); /* every refusal says why */
        if (err.line > 0 && strncmp(err.msg, "topo.yaml:", 10) != 0)
            abort(); /* ... and where */
        return 0;
    }
    char msg[256];
    for (int mode = LAB_NETNS; mode <= LAB_LOOPBACK; mode++) {
        memset(&plan, 0, sizeof(plan));
        if (lab_plan_make(t, (enum lab_mode)mode, "cdnlab-fuzz", 20, &plan, msg, sizeof(msg)) < 0) {
            if (msg[0] == '\0')
                abort();
            continue;
        }
        if (plan.nnodes > sizeof(plan.nodes) / sizeof(plan.nodes[0]))
            abort();
    }
    cdn_conf_free(c);
    return 0;
}
