/* lab/cdnlab/run_load.c - `cdn-lab load`: scrapes every edge's and shop-lb's /metrics
 * (metrics/before-*), runs one cdn-load per region inside that region's client namespace (or from
 * its loopback /24), from all of its client addresses, each with its own log (load-REGION.log) and
 * seed (seed + region index), waits, and scrapes again (metrics/after-*). `cdn-lab report`
 * (report.c) reads what it leaves in the state directory. */
#include "config.h"
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lab/cdnlab/labrun.h"

static void scrape(struct lab_run *r, const char *when)
{
    char dir[PATH_MAX], p[PATH_MAX + 64];
    snprintf(dir, sizeof(dir), "%s/metrics", r->statedir);
    mkdir(dir, 0755);
    for (size_t i = 0; i < r->plan->nnodes; i++) {
        const struct lab_node *n = &r->plan->nodes[i];
        int port = n->kind == LAB_EDGE ? LAB_PORT_EDGE_ADMIN : n->kind == LAB_LB ? LAB_PORT_LB_ADMIN
                 : n->kind == LAB_APP && r->topo->db_servers ? LAB_PORT_APP : 0; /* the apps: database reads */
        if (!port) continue;
        char *body = NULL;
        size_t len = 0;
        int st = r->http_get(n->ns, port == LAB_PORT_APP ? n->addr : n->mgmt, port, "/metrics", &body, &len);
        snprintf(p, sizeof(p), "%s/%s-%s.txt", dir, when, n->name);
        FILE *f = fopen(p, "w");
        if (f) {
            if (st == 200 && body) fwrite(body, 1, len, f);
            fclose(f);
        }
        free(body);
    }
}

/* What `load` passes to every region's cdn-load besides the user's own options. */
struct load_args {
    char prog[PATH_MAX];              /* cdn-load beside cdn-lab */
    unsigned long long seed;          /* -s/--seed; region k gets seed + k */
    char hosts[128], routing[16];     /* --hosts for --routing, and the routing (load.routing) */
    int keep[96];                     /* the user's argv[i] to pass on (not --routing and its value) */
};

/* --routing dns|anycast: which of each hostname's names to ask for (anycast.h, routing both);
 * 0, or the exit status. */
static int parse_routing(const struct lab_run *r, int argc, char **argv, struct load_args *la)
{
    snprintf(la->routing, sizeof(la->routing), "topology");
    for (int i = 0; i < argc && i < 96; i++) la->keep[i] = 1;
    for (int i = 1; i + 1 < argc && i + 1 < 96; i++)
        if (!strcmp(argv[i], "--routing")) {
            const char *m = argv[i + 1];
            if (strcmp(m, "dns") && strcmp(m, "anycast")) {
                fprintf(stderr, "cdn-lab: --routing dns|anycast\n");
                return 2;
            }
            int any = !strcmp(m, "anycast");
            if (any && !r->plan->anycast) {
                fprintf(stderr, "cdn-lab: --routing anycast: this lab has no anycast (namespaces mode and an anycast section)\n");
                return 2;
            }
            const char *const *hn = r->topo->hostnames.items;
            char *hosts = la->hosts;
            for (size_t k = 0; k < 2; k++) {
                size_t h = k < r->topo->hostnames.n ? k : 0;
                enum lab_routing rt = r->topo->routing[h];
                if ((any && rt == LAB_ROUTE_DNS) || (!any && rt == LAB_ROUTE_ANYCAST && r->plan->anycast)) {
                    fprintf(stderr, "cdn-lab: --routing %s: hostname %s is routed by %s only (topology anycast.routing)\n", m,
                            hn[h], any ? "dns" : "anycast");
                    return 2;
                }
                snprintf(hosts + strlen(hosts), sizeof(la->hosts) - strlen(hosts), "%s%s%s", k ? "," : "", hn[h],
                         any && rt == LAB_ROUTE_BOTH ? "-any" : "");
            }
            snprintf(la->routing, sizeof(la->routing), "%s", m);
            la->keep[i] = la->keep[i + 1] = 0;
        }
    return 0;
}

/* Starts region k's cdn-load from its client namespace and addresses; its pid (-1: fork failed). */
static pid_t start_region(const struct lab_run *r, size_t k, const struct load_args *la, int argc, char **argv)
{
    const struct lab_plan *p = r->plan;
    const struct lab_node *dns = &p->nodes[lab_plan_find(p, LAB_DNS, 0)];
    const struct lab_node *c = &p->nodes[lab_plan_find(p, LAB_CLIENT, (int)k)];
    const struct lab_region *reg = lab_topo_reg(r->topo, k);
    char srcs[1024] = "", a[20];
    for (unsigned i = 0; i < reg->clients && strlen(srcs) < sizeof(srcs) - 20; i++) {
        lab_plan_client_addr(p, (int)k, i, a, sizeof(a));
        snprintf(srcs + strlen(srcs), sizeof(srcs) - strlen(srcs), "%s%s", i ? "," : "", a);
    }
    char dnsa[40], logp[PATH_MAX], sd[32], prods[16];
    snprintf(dnsa, sizeof(dnsa), "%s:%d", dns->addr, LAB_PORT_DNS);
    snprintf(logp, sizeof(logp), "%s/load-%s.log", r->statedir, reg->name);
    snprintf(sd, sizeof(sd), "%llu", la->seed + k);
    snprintf(prods, sizeof(prods), "%u", r->topo->origin.products);
    char *av[96];
    int n = 0;
    if (*c->ns) {
        av[n++] = "ip";
        av[n++] = "netns";
        av[n++] = "exec";
        av[n++] = (char *)c->ns;
    }
    av[n++] = (char *)la->prog;
    av[n++] = "-n";
    av[n++] = prods;
    for (int i = 1; i < argc && n < 80; i++) /* the user's options; ours below win */
        if (i >= 96 || la->keep[i]) av[n++] = argv[i];
    if (*la->hosts) {
        av[n++] = "--hosts";
        av[n++] = (char *)la->hosts;
    }
    char *ours[] = {"-r", (char *)reg->name, "-D", dnsa, "-S", srcs, "-z", (char *)r->topo->zone, "-l", logp, "-s", sd};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) av[n++] = ours[i];
    av[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        if (!isatty(2) || k) { /* one progress line on a terminal: the first region's */
            int fd = open("/dev/null", O_WRONLY);
            if (k) dup2(fd, 2);
        }
        execvp(av[0], av);
        _exit(127);
    }
    return pid;
}

int lab_cmd_load(struct lab_run *r, int argc, char **argv)
{
    static struct load_args la;
    memset(&la, 0, sizeof(la));
    snprintf(la.prog, sizeof(la.prog), "%s/cdn-load", r->exedir);
    if (access(la.prog, X_OK) < 0) {
        fprintf(stderr, "cdn-lab: %s not found\n", la.prog);
        return 1;
    }
    la.seed = 1;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "--seed")) la.seed = strtoull(argv[i + 1], NULL, 10);
    int rc = parse_routing(r, argc, argv, &la);
    if (rc) return rc;
    char rp[PATH_MAX];
    snprintf(rp, sizeof(rp), "%s/load.routing", r->statedir);
    FILE *rf = fopen(rp, "w");
    if (rf) {
        fprintf(rf, "%s\n", la.routing);
        fclose(rf);
    }
    /* the round trips, on the idle network (before the load queues anything) */
    char *rav[] = {"rtt", "-q", NULL};
    if (lab_cmd_rtt(r, 2, rav) != 0) fprintf(stderr, "cdn-lab: some round trips could not be measured\n");
    scrape(r, "before");
    pid_t pids[LAB_MAX_REGIONS];
    size_t nr = r->topo->regions.n;
    for (size_t k = 0; k < nr; k++) pids[k] = start_region(r, k, &la, argc, argv);
    int bad = 0;
    for (size_t k = 0; k < nr; k++) {
        int st;
        if (pids[k] > 0 && waitpid(pids[k], &st, 0) > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) bad++;
    }
    usleep(300000); /* let the edges finish their bookkeeping of the last responses */
    scrape(r, "after");
    printf("load done: %zu regions, logs in %s/load-*.log%s\n", nr, r->statedir, bad ? " (some regions failed)" : "");
    return bad ? 1 : 0;
}
