/* lab/cdnlab/up.c - `cdn-lab up`: checks everything it needs, writes the state file, the TLS pair, the
 * edge key, the DNS config and the catalog, makes the namespaces, links, routes and WAN relays
 * (netns mode), starts BIRD (anycast), then the daemons kind by kind, each kind healthy before the
 * next, and prints where things are. */
#include "config.h"
#include <sys/random.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"
#include "lab/lib/anycast.h"

struct sysctl_arg { const char *path, *value; };

static int do_sysctl(void *arg)
{
    struct sysctl_arg *s = arg;
    int fd = open(s->path, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t n = write(fd, s->value, strlen(s->value));
    close(fd);
    return n > 0 ? 0 : -1;
}

static void net_up(void)
{
    struct lab_plan *p = &L.plan;
    for (size_t i = 0; i < p->nnodes; i++) {
        const char *ns = p->nodes[i].ns;
        lab_state_add("ns %s", ns);
        lab_must(lab_runf(0, "ip netns add %s", ns), "ip netns add");
        lab_must(lab_runf(0, "ip -n %s link set lo up", ns), "link set lo up");
        if (p->nodes[i].kind == LAB_ROUTER) {
            struct sysctl_arg s = {"/proc/sys/net/ipv4/ip_forward", "1"};
            if (lab_in_ns(ns, do_sysctl, &s) < 0) lab_die("ip_forward in %s", ns);
        }
    }
    for (size_t i = 0; i < p->nlinks; i++) {
        const struct lab_link *l = &p->links[i];
        const char *na = p->nodes[l->a].ns, *nb = p->nodes[l->b].ns;
        lab_must(lab_runf(0, "ip link add %s netns %s type veth peer name %s netns %s", l->if_a, na, l->if_b, nb), "veth");
        if (*l->addr_a) lab_must(lab_runf(0, "ip -n %s addr add %s dev %s", na, l->addr_a, l->if_a), "addr add");
        if (*l->addr_b) lab_must(lab_runf(0, "ip -n %s addr add %s dev %s", nb, l->addr_b, l->if_b), "addr add");
        lab_must(lab_runf(0, "ip -n %s link set %s up", na, l->if_a), "link up");
        lab_must(lab_runf(0, "ip -n %s link set %s up", nb, l->if_b), "link up");
    }
    if (p->ctl >= 0) { /* the management network: a bridge in the ctl namespace, the nodes' mg0 on it */
        const char *cns = p->nodes[p->ctl].ns;
        lab_must(lab_runf(0, "ip -n %s link add mgmt type bridge", cns), "management bridge");
        lab_must(lab_runf(0, "ip -n %s addr add %s/24 dev mgmt", cns, LAB_MGMT_BRIDGE), "management address");
        lab_must(lab_runf(0, "ip -n %s link set mgmt up", cns), "management bridge up");
        for (size_t i = 0; i < p->nlinks; i++)
            if (p->links[i].b == p->ctl)
                lab_must(lab_runf(0, "ip -n %s link set %s master mgmt", cns, p->links[i].if_b), "management port");
    }
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct lab_node *n = &p->nodes[i];
        if (*n->gw) lab_must(lab_runf(0, "ip -n %s route add default via %s", n->ns, n->gw), "default route");
        if (n->kind == LAB_CLIENT) {
            const struct lab_region *r = lab_topo_reg(L.topo, (size_t)n->region);
            for (unsigned k = 1; k < r->clients; k++) {
                char a[20];
                lab_plan_client_addr(p, n->region, k, a, sizeof(a));
                lab_must(lab_runf(0, "ip -n %s addr add %s/24 dev up0", n->ns, a), "client address");
            }
        }
    }
    for (size_t i = 0; p->anycast && i < p->nnodes; i++) {
        const struct lab_node *n = &p->nodes[i];
        if (n->kind != LAB_EDGE || lab_topo_edge(L.topo, (size_t)n->index)->parent) continue;
        for (size_t k = 0; k < L.topo->anycast.addresses.n; k++)
            lab_must(lab_runf(0, "ip -n %s addr add %s/32 dev lo", n->ns, lab_topo_anycast_addr(L.topo, k)), "anycast address");
    }
    for (size_t i = 0; i < p->nroutes; i++) {
        const struct lab_route *r = &p->routes[i];
        lab_must(lab_runf(0, "ip -n %s route add %s via %s", p->nodes[r->node].ns, r->dst, r->via), "route add");
    }
    int wan = lab_plan_find_name(p, "wan");
    for (size_t i = 0; i < p->nrelays; i++) {
        const struct lab_relay *r = &p->relays[i];
        struct lab_argv a = {0};
        char name[32], stats[PATH_MAX], ctl[PATH_MAX];
        snprintf(name, sizeof(name), "wan-%s-%s", lab_topo_reg(L.topo, (size_t)r->ra)->name,
                 lab_topo_reg(L.topo, (size_t)r->rb)->name);
        lab_path(stats, sizeof(stats), "%s.stats", name);
        lab_path(ctl, sizeof(ctl), "%s.ctl", name); /* `fault wan-loss` (wanloss.c) */
        unlink(ctl);
        lab_argv_add(&a, "cdn-wanrelay");
        lab_argv_add(&a, "-d");
        lab_argv_add(&a, "%llums", (unsigned long long)r->delay_ms);
        lab_argv_add(&a, "-s");
        lab_argv_add(&a, "%s", stats);
        lab_argv_add(&a, "--control");
        lab_argv_add(&a, "%s", ctl);
        lab_argv_add(&a, "%s", r->if_a);
        lab_argv_add(&a, "%s", r->if_b);
        lab_start_proc(&p->nodes[wan], name, &a);
    }
}

/* --- daemons --- */
void lab_daemon_argv(int node, struct lab_argv *a)
{
    const char *sd = L.statedir;
    switch (L.plan.nodes[node].kind) {
    case LAB_EDGE: lab_cmd_edge(L.topo, &L.plan, node, "", sd, a); break;
    case LAB_APP: lab_cmd_app(L.topo, &L.plan, node, "", sd, a); break;
    case LAB_LB: lab_cmd_lb(L.topo, &L.plan, node, "", sd, a); break;
    case LAB_DNS: lab_cmd_dns(&L.plan, node, "", sd, a); break;
    default: a->argc = 0;
    }
}

/* The purge bus: a redis-server in cdn-dns's namespace (the lab's control host), AOF on (a
 * restart loses no purge), its password the admin token; the edges wait for it at start. Its
 * config file (STATE/redis.conf, 0600) keeps the password off the command line. */
static void start_redis(void)
{
    int dns = lab_plan_find(&L.plan, LAB_DNS, 0);
    const struct lab_node *n = &L.plan.nodes[dns];
    char conf[PATH_MAX], dir[PATH_MAX];
    lab_path(dir, sizeof(dir), "redis");
    mkdir(dir, 0700);
    const char *tok = lab_admin_token();
    if (tok == NULL) lab_die("no admin token in %s", L.statedir);
    lab_path(conf, sizeof(conf), "redis.conf");
    mode_t um = umask(077);
    FILE *f = fopen(conf, "w");
    umask(um);
    if (!f || fprintf(f, "port %d\nbind %s\nprotected-mode no\nrequirepass %s\nappendonly yes\nappendfsync everysec\n"
                         "save \"\"\ndir %s\ndaemonize no\nloglevel warning\n", LAB_PORT_REDIS, n->addr, tok, dir) < 0 ||
        fclose(f) != 0)
        lab_die("cannot write %s", conf);
    struct lab_argv a = {0};
    lab_argv_add(&a, "redis-server");
    lab_argv_add(&a, "%s", conf);
    pid_t pid = lab_start_proc(n, "redis", &a);
    setenv("REDISCLI_AUTH", tok, 1); /* for the ping: not on a command line */
    for (int t = 0; t < 200; t++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            lab_tail_log("redis");
            lab_die("redis-server exited during start-up");
        }
        /* redis-cli exits 1 while it cannot connect */
        if (lab_runf(1, "%s%s%sredis-cli -h %s -p %d ping", *n->ns ? "ip netns exec " : "", n->ns, *n->ns ? " " : "",
                     n->addr, LAB_PORT_REDIS) == 0) {
            unsetenv("REDISCLI_AUTH");
            return;
        }
        usleep(50000);
    }
    lab_die("redis-server did not answer within 10 s");
}

/* Starts the daemons of one kind and waits until each is healthy (or dies, or the deadline). */
static void start_kind(enum lab_kind kind, int deadline_s)
{
    struct lab_plan *p = &L.plan;
    pid_t pids[128];
    int idx[128], n = 0;
    for (size_t i = 0; i < p->nnodes && n < 128; i++) {
        if (p->nodes[i].kind != kind) continue;
        if (kind == LAB_APP && p->nodes[i].index >= (int)L.topo->origin.apps) continue; /* a spare for the scaler */
        struct lab_argv a = {0};
        lab_daemon_argv((int)i, &a);
        idx[n] = (int)i;
        pids[n++] = lab_start_proc(&p->nodes[i], p->nodes[i].name, &a);
    }
    int ready[128] = {0}, left = n;
    for (int t = 0; left > 0; t++) {
        for (int k = 0; k < n; k++) {
            if (ready[k]) continue;
            int st;
            if (waitpid(pids[k], &st, WNOHANG) == pids[k]) {
                fprintf(stderr, PROG ": %s exited during start-up; its log:\n", p->nodes[idx[k]].name);
                lab_tail_log(p->nodes[idx[k]].name);
                lab_die("start-up failed; run `" PROG " down -s %s` to clean up", L.statedir);
            }
            if (lab_node_healthy(&p->nodes[idx[k]])) {
                ready[k] = 1;
                left--;
            }
        }
        if (left && t >= deadline_s * 20) {
            for (int k = 0; k < n; k++)
                if (!ready[k]) {
                    fprintf(stderr, PROG ": %s not healthy after %d s; its log:\n", p->nodes[idx[k]].name, deadline_s);
                    lab_tail_log(p->nodes[idx[k]].name);
                }
            lab_die("start-up failed; run `" PROG " down -s %s` to clean up", L.statedir);
        }
        if (left) usleep(50000);
    }
}

static void print_where(FILE *f)
{
    struct lab_plan *p = &L.plan;
    const struct lab_topo *t = L.topo;
    int dns = lab_plan_find(p, LAB_DNS, 0), lb = lab_plan_find(p, LAB_LB, 0);
    fprintf(f, "lab '%s' up (%s mode, prefix %s, state %s)\n", t->name,
            L.mode == LAB_NETNS ? "namespaces" : "loopback", L.prefix, L.statedir);
    fprintf(f, "  dns      %s:%d (udp/tcp), admin http://%s:%d/metrics\n", p->nodes[dns].addr, LAB_PORT_DNS,
            p->nodes[dns].mgmt, LAB_PORT_DNS_ADMIN);
    fprintf(f, "  purge    redis://%s:%d (stream cdn:purge; cdn-lab purge --wait url URL)\n", p->nodes[dns].addr,
            LAB_PORT_REDIS);
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct lab_node *n = &p->nodes[i];
        const char *rn = n->region >= 0 ? lab_topo_reg(t, (size_t)n->region)->name : "-";
        switch (n->kind) {
        case LAB_EDGE:
            fprintf(f, "  edge     %-8s %-4s http://%s:%d https://%s:%d admin http://%s:%d/metrics\n",
                    lab_topo_edge(t, (size_t)n->index)->name, rn, n->addr, LAB_PORT_HTTP, n->addr, LAB_PORT_HTTPS,
                    n->mgmt, LAB_PORT_EDGE_ADMIN);
            break;
        case LAB_CLIENT:
            fprintf(f, "  clients  %-8s %-4s %s%s%s\n", n->name, rn, p->client_net[n->region], *n->ns ? " in netns " : "",
                    n->ns);
            break;
        case LAB_APP:
            fprintf(f, "  app      %-8s %-4s http://%s:%d%s\n", n->name, rn, n->addr, LAB_PORT_APP,
                    n->index >= (int)t->origin.apps ? " (spare: not started; `cdn-lab scale` starts it)" : "");
            break;
        default: break;
        }
    }
    fprintf(f, "  origin   shop-lb  %-4s http://%s:%d admin http://%s:%d/metrics\n",
            lab_topo_reg(t, (size_t)t->origin_region)->name, p->nodes[lb].addr, LAB_PORT_LB, p->nodes[lb].mgmt,
            LAB_PORT_LB_ADMIN);
    if (p->ctl >= 0)
        fprintf(f, "  control  %s on %s: the admin listeners (ip netns exec %s ...); clients cannot reach it\n",
                LAB_MGMT_NET, "the management bridge", p->nodes[p->ctl].ns);
    lab_db_where(f);
    for (size_t i = 0; i < p->nrelays; i++)
        fprintf(f, "  wan      %s-%s one-way %llu ms (cdn-wanrelay)\n", lab_topo_reg(t, (size_t)p->relays[i].ra)->name,
                lab_topo_reg(t, (size_t)p->relays[i].rb)->name, (unsigned long long)p->relays[i].delay_ms);
    const char *const *hn = t->hostnames.items;
    int c0 = lab_plan_find(p, LAB_CLIENT, 0);
    fprintf(f, "try: %s%s%skdig @%s -p %d %s.%s\n", *p->nodes[c0].ns ? "ip netns exec " : "", p->nodes[c0].ns,
            *p->nodes[c0].ns ? " " : "", p->nodes[dns].addr, LAB_PORT_DNS, hn[0], t->zone);
    lab_prometheus_where(f);
}

/* A lab already in the state directory: refuse if any of its processes lives, else clean up the
 * leftovers of a crashed run. */
static void check_not_up(void)
{
    char p[PATH_MAX];
    lab_path(p, sizeof(p), "state");
    if (access(p, F_OK) != 0) return;
    lab_load_state();
    struct lab_proc_rec pr[256];
    size_t n = lab_read_procs(pr, 256), alive = 0;
    for (size_t i = 0; i < n; i++) alive += lab_proc_alive(pr[i].pid, pr[i].start);
    if (alive) lab_die("a lab is already up in %s (%zu processes); take it down first:\n  " PROG " -s %s down", L.statedir, alive, L.statedir);
    lab_cmd_down(1, 1); /* leftovers of a crashed run (their logs kept) */
}

static void choose_mode(const char *mode)
{
    int can_ns = geteuid() == 0 && lab_runf(1, "ip netns list") == 0;
    if (!strcmp(mode, "netns")) {
        if (!can_ns) lab_die("namespaces mode needs root and a working `ip netns`");
        L.mode = LAB_NETNS;
    } else if (!strcmp(mode, "loopback")) {
        L.mode = LAB_LOOPBACK;
    } else {
        L.mode = can_ns ? LAB_NETNS : LAB_LOOPBACK;
    }
}

/* Everything needed, checked before anything is made. */
static void check_programs(void)
{
    static const char *const progs[] = {"cdn-edge", "cdn-dns", "shop-app", "shop-lb", "cdn-wanrelay", "cdn-health",
                                        "bird", NULL};
    char rx[PATH_MAX];
    if (lab_find_prog("redis-server", rx, sizeof(rx)) < 0 || lab_find_prog("cdn-purge", rx, sizeof(rx)) < 0)
        lab_die("the purge bus needs redis-server (apt-get install redis-server) and cdn-purge (make)");
    char missing[256] = "";
    for (int i = 0; progs[i]; i++) {
        char x[PATH_MAX];
        if (i == 4 && (L.mode != LAB_NETNS || !L.plan.nrelays)) continue;
        if (i >= 5 && !L.plan.anycast) continue;
        if (lab_find_prog(progs[i], x, sizeof(x)) < 0)
            snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s", progs[i]);
    }
    if (*missing) lab_die("missing programs:%s (not built yet? looked beside %s and in ../edge ../dns ../origin; bird: apt-get install bird2)", missing, L.exedir);
    if (lab_runf(1, "openssl version") != 0) lab_die("openssl (the command) is needed for the lab's TLS certificate");
}

/* The state directory, its logs/ and the state file's first lines. */
static void make_state(void)
{
    char p[PATH_MAX];
    mkdir(L.statedir, 0755);
    lab_path(p, sizeof(p), "logs");
    mkdir(p, 0755);
    lab_state_add("mode %s", L.mode == LAB_NETNS ? "netns" : "loopback");
    lab_state_add("prefix %s", L.prefix);
    lab_state_add("base %d", L.base);
    lab_state_add("topology %s", L.topo_path);
    lab_state_add("started %ld", (long)time(NULL));
    lab_registry_add(); /* commands find it without -s when it is the only lab up */
}

/* The TLS pair for *.zone, and the key the lab's edges know each other by (cdn-edge
 * --edge-key-file): 128 random bits; and the admin token (STATE/admin.key, --admin-token-file). */
static void write_keys(void)
{
    char p[PATH_MAX], crt[PATH_MAX], key[PATH_MAX];
    lab_path(crt, sizeof(crt), "tls.crt");
    lab_path(key, sizeof(key), "tls.key");
    char *oargv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-days", "30", "-subj", "/CN=cdn-lab", "-addext", NULL, "-keyout", key, "-out", crt, NULL};
    char san[300];
    snprintf(san, sizeof(san), "subjectAltName=DNS:*.%s,DNS:%s", L.topo->zone, L.topo->zone);
    oargv[13] = san;
    lab_must(lab_run_argv(oargv, 1), "openssl req (TLS certificate)");
    unsigned char rnd[16];
    char hexkey[40];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) lab_die("getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof(rnd); i++) snprintf(hexkey + 2 * i, 3, "%02x", rnd[i]);
    lab_path(p, sizeof(p), "edge.key");
    FILE *kf = fopen(p, "w");
    if (!kf || fprintf(kf, "%s\n", hexkey) < 0 || fclose(kf) != 0) lab_die("cannot write %s", p);
    chmod(p, 0600);
    /* the admin token (cdn-edge --admin-token-file): purge and drain need it; another 128 bits */
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) lab_die("getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof(rnd); i++) snprintf(hexkey + 2 * i, 3, "%02x", rnd[i]);
    lab_path(p, sizeof(p), "admin.key");
    mode_t um = umask(077);
    kf = fopen(p, "w");
    umask(um);
    if (!kf || fprintf(kf, "%s\n", hexkey) < 0 || fclose(kf) != 0) lab_die("cannot write %s", p);
    chmod(p, 0600);
}

/* The DNS config, and the catalog, generated once for all apps. */
static void write_data(void)
{
    char p[PATH_MAX];
    struct lab_buf b = {0};
    lab_gen_dns_yaml(L.topo, &L.plan, L.statedir, &b);
    lab_path(p, sizeof(p), "dns.yaml");
    FILE *f = fopen(p, "w");
    if (!f || b.oom || fwrite(b.s, 1, b.len, f) != b.len || fclose(f) != 0) lab_die("cannot write %s", p);
    lab_buf_free(&b);
    char prog[PATH_MAX], db[PATH_MAX];
    lab_find_prog("shop-app", prog, sizeof(prog));
    lab_path(db, sizeof(db), "catalog.db");
    struct lab_argv ga = {0};
    lab_argv_add(&ga, "%s", prog);
    lab_argv_add(&ga, "--generate");
    lab_argv_add(&ga, "%u", L.topo->origin.products);
    lab_argv_add(&ga, "--seed");
    lab_argv_add(&ga, "%u", L.topo->origin.seed);
    lab_argv_add(&ga, "--db");
    lab_argv_add(&ga, "%s", db);
    lab_must(lab_run_argv(ga.argv, 1), "shop-app --generate (the catalog)");
}

int lab_cmd_up(const char *topo, const char *mode, const char *profile)
{
    check_not_up();
    lab_identity();
    choose_mode(mode);
    if (!realpath(topo, L.topo_path)) lab_die("%s: %s", topo, strerror(errno));
    if (profile) snprintf(L.profile, sizeof(L.profile), "%.15s", profile);
    lab_load_topology(L.topo_path);
    if (L.topo->anycast.addresses.n && L.mode != LAB_NETNS)
        fprintf(stderr, PROG ": note: anycast needs namespaces mode; anycast names are answered by DNS steering\n");
    check_programs();
    lab_db_check();
    make_state();
    write_keys();
    write_data();
    if (L.mode == LAB_NETNS) net_up();
    if (L.plan.anycast) lab_routing_up();
    lab_db_up(); /* PostgreSQL before the apps that use it (db.c) */
    start_kind(LAB_APP, 20);
    start_kind(LAB_LB, 20);
    start_redis();
    lab_db_outbox_start(); /* the database's purge relay, beside the bus (db.c, outbox.c) */
    start_kind(LAB_EDGE, 30);
    if (L.plan.anycast) lab_anycast_up();
    start_kind(LAB_DNS, 20);
    if (L.prometheus) lab_prometheus_up(); /* prom.c: optional, after every daemon it scrapes */
    lab_state_add("up %ld", (long)time(NULL));
    print_where(stdout);
    return 0;
}

/* cdn-lab purge [cdn-purge options] KIND ARG... | status: cdn-purge run in cdn-dns's namespace
 * against the lab's Redis, with its password; its exit status. */
int lab_cmd_purge(int argc, char **argv)
{
    if (lab_load_state() < 0) lab_die("no lab in %s (cdn-lab up first)", L.statedir);
    lab_load_topology(L.topo_path);
    const struct lab_node *n = &L.plan.nodes[lab_plan_find(&L.plan, LAB_DNS, 0)];
    char prog[PATH_MAX], key[PATH_MAX], url[64];
    if (lab_find_prog("cdn-purge", prog, sizeof(prog)) < 0) lab_die("cdn-purge not found (is it built?)");
    lab_path(key, sizeof(key), "admin.key");
    snprintf(url, sizeof(url), "redis://%s:%d", n->addr, LAB_PORT_REDIS);
    char *av[128];
    int k = 0;
    if (*n->ns) {
        av[k++] = "ip";
        av[k++] = "netns";
        av[k++] = "exec";
        av[k++] = (char *)n->ns;
    }
    av[k++] = prog;
    av[k++] = "--redis";
    av[k++] = url;
    av[k++] = "--auth-file";
    av[k++] = key;
    for (int i = 1; i < argc && k < 127; i++) av[k++] = argv[i];
    av[k] = NULL;
    return lab_run_argv(av, 0);
}
