/* lab/cdnlab/routing.c - anycast routing in the lab: a BIRD per router and per top-level edge (config from
 * lab/lib/bird.c), a cdn-health agent per such edge, and the waits until BGP sessions, the regions'
 * routes and the anycast routes are there. */
#include "config.h"
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"
#include "lab/lib/anycast.h"

/* --- anycast routing: a BIRD per router and edge, a health agent per edge (anycast.h) --- */
int lab_routes_node(const struct lab_node *n)
{
    return L.plan.anycast && (n->kind == LAB_ROUTER || (n->kind == LAB_EDGE && !lab_topo_edge(L.topo, (size_t)n->index)->parent));
}

void lab_bird_ctl(const struct lab_node *n, char *out, size_t len)
{
    lab_path(out, len, "b/%s.ctl", n->name);
}

pid_t lab_start_bird(int node)
{
    const struct lab_node *n = &L.plan.nodes[node];
    char p[PATH_MAX], name[48];
    lab_bird_ctl(n, p, sizeof(p));
    if (strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        lab_die("%s: too long for a unix socket; use a shorter state directory (-s)", p);
    struct lab_buf b = {0};
    lab_gen_bird_conf(L.topo, &L.plan, node, L.topo->profile, L.statedir, &b);
    lab_path(p, sizeof(p), "b/%s.conf", n->name);
    FILE *f = fopen(p, "w");
    if (!f || b.oom || fwrite(b.s, 1, b.len, f) != b.len || fclose(f) != 0) lab_die("cannot write %s", p);
    lab_buf_free(&b);
    struct lab_argv a;
    lab_cmd_bird(&L.plan, node, L.statedir, &a);
    snprintf(name, sizeof(name), "bird-%s", n->name);
    return lab_start_proc(n, name, &a);
}

/* BGP sessions of a node's BIRD: established and total (-1 when BIRD does not answer). */
int lab_bgp_sessions(const struct lab_node *n, int *total)
{
    char ctl[PATH_MAX], out[16384];
    lab_bird_ctl(n, ctl, sizeof(ctl));
    *total = 0;
    if (lab_bird_cmd(ctl, "show protocols", 1000, out, sizeof(out)) < 0) return -1;
    int est = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strstr(l, " BGP ")) {
            (*total)++;
            est += strstr(l, "Established") != NULL;
        }
    return est;
}

/* Does this node's BIRD have a route for addr? */
static int bird_has_route(const struct lab_node *n, const char *addr)
{
    char ctl[PATH_MAX], cmd[64], out[4096];
    lab_bird_ctl(n, ctl, sizeof(ctl));
    snprintf(cmd, sizeof(cmd), "show route for %s", addr);
    int code = lab_bird_cmd(ctl, cmd, 1000, out, sizeof(out));
    return code >= 0 && code < 8000 && strstr(out, "/");
}

/* Waits until cond(node) holds for every routing node, or dies after deadline_s with the BIRD logs. */
static void wait_routing(const char *what, int (*cond)(const struct lab_node *), int deadline_s)
{
    for (int t = 0;; t++) {
        int bad = -1;
        for (size_t i = 0; i < L.plan.nnodes && bad < 0; i++)
            if (lab_routes_node(&L.plan.nodes[i]) && !cond(&L.plan.nodes[i])) bad = (int)i;
        if (bad < 0) return;
        if (t >= deadline_s * 10) {
            char name[48];
            snprintf(name, sizeof(name), "bird-%s", L.plan.nodes[bad].name);
            fprintf(stderr, PROG ": %s: not ready after %d s (%s); its log:\n", L.plan.nodes[bad].name, deadline_s, what);
            lab_tail_log(name);
            lab_die("start-up failed; to clean up:\n  " PROG " -s %s down", L.statedir);
        }
        usleep(100000);
    }
}

static int all_established(const struct lab_node *n)
{
    int total, est = lab_bgp_sessions(n, &total);
    return est >= 0 && est == total;
}

static int region_nets_known(const struct lab_node *n)
{   /* a router knows every other region's client LAN (the way back after a failover) */
    if (n->kind != LAB_ROUTER) return 1;
    for (size_t r = 0; r < L.topo->regions.n; r++) {
        char a[20];
        if ((int)r == n->region) continue;
        snprintf(a, sizeof(a), "%.*s1", (int)strcspn(L.plan.client_net[r], "/") - 1, L.plan.client_net[r]);
        if (!bird_has_route(n, a)) return 0;
    }
    return 1;
}

static int anycast_known(const struct lab_node *n)
{
    if (n->kind != LAB_ROUTER) return 1;
    for (size_t k = 0; k < L.topo->anycast.addresses.n; k++)
        if (!bird_has_route(n, lab_topo_anycast_addr(L.topo, k))) return 0;
    return 1;
}

void lab_routing_up(void)
{
    char p[PATH_MAX];
    lab_path(p, sizeof(p), "b");
    mkdir(p, 0755);
    lab_state_add("profile %s", lab_profile_name(L.topo->profile));
    for (size_t i = 0; i < L.plan.nnodes; i++)
        if (lab_routes_node(&L.plan.nodes[i])) lab_start_bird((int)i);
    int slow = L.topo->profile == LAB_PROF_REALISTIC; /* connect delay 5 s */
    wait_routing("BGP sessions", all_established, slow ? 40 : 20);
    wait_routing("routes to the other regions", region_nets_known, slow ? 40 : 20);
}

static pid_t start_health(int node)
{
    struct lab_argv a;
    char name[48];
    lab_cmd_health(L.topo, &L.plan, node, L.statedir, &a);
    snprintf(name, sizeof(name), "hc-%s", L.plan.nodes[node].name + 2);
    return lab_start_proc(&L.plan.nodes[node], name, &a);
}

void lab_anycast_up(void)
{
    for (size_t i = 0; i < L.plan.nnodes; i++)
        if (lab_routes_node(&L.plan.nodes[i]) && L.plan.nodes[i].kind == LAB_EDGE) start_health((int)i);
    wait_routing("anycast routes", anycast_known, 20);
}
