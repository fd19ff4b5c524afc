/* lab/cdnlab/status.c - `cdn-lab status` (processes, health, BGP, namespaces, relay counters; exit 1 if
 * anything is wrong, 3 without a lab) and `cdn-lab env` (shell variables describing the lab). */
#include "config.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lab/cdnlab/labctl.h"
#include "lab/lib/anycast.h"

int lab_cmd_status(void)
{
    if (lab_load_state() < 0) {
        printf("no lab in %s\n", L.statedir);
        return 3;
    }
    lab_load_topology(L.topo_path);
    struct lab_proc_rec pr[256];
    size_t n = lab_read_procs(pr, 256);
    int bad = 0;
    printf("lab '%s' (%s mode, prefix %s, state %s)\n", L.topo->name, L.mode == LAB_NETNS ? "namespaces" : "loopback",
           L.prefix, L.statedir);
    printf("  %-16s %-8s %-6s %s\n", "process", "pid", "alive", "health");
    for (size_t i = 0; i < n; i++) {
        if (pr[i].pid == 0) { /* "proc NAME 0 0": stopped on purpose (an app the scaler took out) */
            printf("  %-16s %-8s %-6s %s\n", pr[i].name, "-", "no", "stopped (scaled in)");
            continue;
        }
        int alive = lab_proc_alive(pr[i].pid, pr[i].start);
        int k = lab_plan_find_name(&L.plan, pr[i].name);
        const char *h = "-";
        if (k >= 0 && alive) h = lab_node_healthy(&L.plan.nodes[k]) ? "ok" : "FAILING";
        if (!alive || !strcmp(h, "FAILING")) bad = 1;
        printf("  %-16s %-8d %-6s %s\n", pr[i].name, (int)pr[i].pid, alive ? "yes" : "NO", h);
    }
    for (size_t i = 0; i < L.plan.nnodes; i++) {
        const struct lab_node *nd = &L.plan.nodes[i];
        if (!lab_routes_node(nd)) continue;
        int total, est = lab_bgp_sessions(nd, &total);
        char ctl[PATH_MAX], out[1024] = "";
        const char *ann = "";
        if (nd->kind == LAB_EDGE) {
            lab_bird_ctl(nd, ctl, sizeof(ctl));
            lab_bird_cmd(ctl, "show protocols anycast", 1000, out, sizeof(out));
            ann = strstr(out, " up ") ? ", anycast announced" : ", anycast WITHDRAWN";
        }
        if (est < 0) printf("  bird %-10s NOT ANSWERING\n", nd->name);
        else printf("  bird %-10s BGP %d/%d established%s\n", nd->name, est, total, est >= 0 ? ann : "");
        if (est < total) bad = 1;
    }
    if (L.mode == LAB_NETNS) {
        size_t have = 0;
        for (size_t i = 0; i < L.plan.nnodes; i++) have += lab_ns_exists(L.plan.nodes[i].ns);
        printf("  namespaces: %zu of %zu present\n", have, L.plan.nnodes);
        if (have != L.plan.nnodes) bad = 1;
        for (size_t i = 0; i < L.plan.nrelays; i++) {
            char sp[PATH_MAX], line[1024] = "";
            lab_path(sp, sizeof(sp), "wan-%s-%s.stats", lab_topo_reg(L.topo, (size_t)L.plan.relays[i].ra)->name,
                 lab_topo_reg(L.topo, (size_t)L.plan.relays[i].rb)->name);
            FILE *f = fopen(sp, "r");
            if (f) {
                if (!fgets(line, sizeof(line), f)) *line = 0;
                fclose(f);
            }
            printf("  relay %s: %s", sp + strlen(L.statedir) + 1, *line ? line : "(no counters yet)\n");
        }
    }
    lab_db_status(stdout); /* the database servers and each replica's lag (db.c) */
    return bad;
}

int lab_cmd_env(void)
{
    if (lab_load_state() < 0) lab_die("no lab in %s", L.statedir);
    lab_load_topology(L.topo_path);
    struct lab_plan *p = &L.plan;
    printf("LAB_MODE=%s\nLAB_PREFIX=%s\nLAB_STATE=%s\n", L.mode == LAB_NETNS ? "netns" : "loopback", L.prefix, L.statedir);
    printf("LAB_DNS=%s:%d\n", p->nodes[lab_plan_find(p, LAB_DNS, 0)].addr, LAB_PORT_DNS);
    printf("LAB_LB=%s:%d\n", p->nodes[lab_plan_find(p, LAB_LB, 0)].addr, LAB_PORT_LB);
    printf("LAB_LB_ADMIN=%s:%d\n", p->nodes[lab_plan_find(p, LAB_LB, 0)].mgmt, LAB_PORT_LB_ADMIN);
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct lab_node *n = &p->nodes[i];
        char v[40];
        snprintf(v, sizeof(v), "%s", n->name);
        for (char *c = v; *c; c++)
            if (!isalnum((unsigned char)*c)) *c = '_';
        printf("LAB_ADDR_%s=%s\nLAB_NS_%s=%s\n", v, n->addr, v, n->ns);
        if (strcmp(n->mgmt, n->addr)) printf("LAB_MGMT_%s=%s\n", v, n->mgmt); /* its admin listener's address */
    }
    return 0;
}
