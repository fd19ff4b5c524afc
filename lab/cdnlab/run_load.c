/* lab/cdnlab/run_load.c - `cdn-lab load`: scrapes every edge's and shop-lb's /metrics
 * (metrics/before-*), runs one cdn-load per region inside that region's client namespace (or from
 * its loopback /24), from all of its client addresses, each with its own log (load-REGION.log) and
 * seed (seed + region index; a fresh seed per run unless -s/--seed), shows every region's progress
 * (a block redrawn on a terminal, else each region's line every 5 s) and keeps each region's
 * progress, errors and summary in logs/load-REGION.txt, waits, and scrapes again (metrics/after-*). `cdn-lab report`
 * (report.c) reads what it leaves in the state directory. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
    int tty;                          /* cdn-lab's stderr is a terminal: the progress block */
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
static pid_t start_region(const struct lab_run *r, size_t k, const struct load_args *la, int argc, char **argv,
                          int out_fd)
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
    char prog_s[8];
    snprintf(prog_s, sizeof(prog_s), "%d", la->tty ? 1 : 5); /* every line of every region, through out_fd */
    av[n++] = "--progress";
    av[n++] = prog_s;
    av[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out_fd, 2); /* progress, errors, summary: to cdn-lab (show_progress), which logs them */
        execvp(av[0], av);
        _exit(127);
    }
    return pid;
}

/* Every region's stderr (cdn-load's progress lines, errors, summary) until they all close: each
 * line appended to logs/load-REGION.txt; on a terminal the regions' last lines redrawn as a block
 * each time one changes, elsewhere every line printed as it comes (cdn-load writes one per region
 * every 5 s there). */
static void show_progress(const struct lab_run *r, const struct load_args *la, int *fds, size_t nr)
{
    char (*last)[256] = calloc(nr, 256), (*part)[1024] = calloc(nr, 1024);
    FILE *logs[LAB_MAX_REGIONS] = {0};
    size_t plen[LAB_MAX_REGIONS] = {0}, open_n = nr, drawn = 0;
    if (!last || !part) {
        free(last);
        free(part);
        return;
    }
    for (size_t k = 0; k < nr; k++) {
        char lp[PATH_MAX];
        snprintf(lp, sizeof(lp), "%s/logs/load-%s.txt", r->statedir, lab_topo_reg(r->topo, k)->name);
        logs[k] = fopen(lp, "w");
    }
    while (open_n > 0) {
        struct pollfd pf[LAB_MAX_REGIONS];
        for (size_t k = 0; k < nr; k++) pf[k] = (struct pollfd){.fd = fds[k], .events = POLLIN};
        if (poll(pf, nr, 1000) < 0 && errno != EINTR) break;
        int changed = 0;
        for (size_t k = 0; k < nr; k++) {
            if (fds[k] < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = read(fds[k], part[k] + plen[k], sizeof(part[k]) - 1 - plen[k]);
            if (got <= 0) {
                close(fds[k]);
                fds[k] = -1;
                open_n--;
                got = 0;
                if (plen[k]) part[k][plen[k]++] = '\n'; /* a last line without its end */
            }
            plen[k] += (size_t)got;
            char *nl;
            while ((nl = memchr(part[k], '\n', plen[k])) || plen[k] >= sizeof(part[k]) - 1) {
                size_t ll = nl ? (size_t)(nl - part[k]) : plen[k];
                part[k][ll] = 0;
                char *line = part[k];
                while (*line == '\r') line++;
                if (logs[k]) {
                    fprintf(logs[k], "%s\n", line);
                    fflush(logs[k]);
                }
                if (!la->tty) fprintf(stderr, "%s\n", line);
                else if (line[0] == '[') { /* a progress line: the block shows it */
                    snprintf(last[k], 256, "%.255s", line);
                    changed = 1;
                } else { /* an error or the summary: printed above the block, kept */
                    if (drawn) fprintf(stderr, "\033[%zuA\033[J", drawn);
                    drawn = 0;
                    fprintf(stderr, "%s\n", line);
                    changed = 1;
                }
                size_t used = nl ? ll + 1 : ll;
                memmove(part[k], part[k] + used, plen[k] - used);
                plen[k] -= used;
            }
        }
        if (la->tty && changed) {
            if (drawn) fprintf(stderr, "\033[%zuA\033[J", drawn);
            drawn = 0;
            for (size_t k = 0; k < nr; k++)
                if (last[k][0]) {
                    fprintf(stderr, "%s\n", last[k]);
                    drawn++;
                }
        }
    }
    for (size_t k = 0; k < nr; k++)
        if (logs[k]) fclose(logs[k]);
    free(last);
    free(part);
}

/* A seed for this run: -s/--seed if given, else a fresh one (printed, and written to STATE/load.seed). */
static unsigned long long fresh_seed(void)
{
    unsigned long long s = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &s, sizeof(s)) != (ssize_t)sizeof(s)) s = 0;
        close(fd);
    }
    if (!s) s = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
    return s % 1000000000ULL + 1; /* short enough to type */
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
    la.seed = 0;
    la.tty = isatty(2);
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "--seed")) la.seed = strtoull(argv[i + 1], NULL, 10);
    int given = la.seed != 0;
    if (!given) la.seed = fresh_seed();
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
    int fds[LAB_MAX_REGIONS];
    size_t nr = r->topo->regions.n;
    char sp[PATH_MAX];
    snprintf(sp, sizeof(sp), "%s/load.seed", r->statedir);
    FILE *sf = fopen(sp, "w");
    if (sf) {
        fprintf(sf, "%llu\n", la.seed);
        fclose(sf);
    }
    printf("load: seed %llu%s (region k gets seed + k; `" "cdn-lab load --seed %llu ...` repeats it)\n", la.seed,
           given ? "" : ", fresh", la.seed);
    fflush(stdout);
    for (size_t k = 0; k < nr; k++) {
        int pp[2];
        if (pipe2(pp, O_CLOEXEC) < 0) {
            pids[k] = -1;
            fds[k] = -1;
            continue;
        }
        pids[k] = start_region(r, k, &la, argc, argv, pp[1]);
        close(pp[1]);
        fds[k] = pp[0];
    }
    show_progress(r, &la, fds, nr);
    int bad = 0;
    for (size_t k = 0; k < nr; k++) {
        int st;
        if (pids[k] > 0 && waitpid(pids[k], &st, 0) > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) bad++;
    }
    usleep(300000); /* let the edges finish their bookkeeping of the last responses */
    scrape(r, "after");
    printf("load done: %zu regions, logs in %s/load-*.log, progress and summaries in %s/logs/load-*.txt%s\n", nr,
           r->statedir, r->statedir, bad ? " (some regions failed)" : "");
    return bad ? 1 : 0;
}
