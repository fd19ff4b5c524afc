/* lab/cdnlab/cdn_lab.c - cdn-lab: brings a topology up (network namespaces as root, else loopback
 * addresses), runs load and faults, writes the report, and takes everything down again.
 *
 * Owns: the state directory (-s DIR): `state` (mode, prefix, topology, and one line per namespace
 * and process as soon as it exists, so `down` after a crash still knows what to remove), logs/,
 * the generated configs, the TLS pair, the catalog and the edges' RocksDB folders. The plan itself
 * (addresses, links, command lines) is recomputed from the topology by lab/lib/plan.c, a pure function.
 *
 * Rules: every process is started in its own session (setsid), in its namespace through
 * `ip netns exec`, and recorded with its start time, so `down` never signals a reused pid; `down`
 * also removes every namespace whose name starts with this lab's prefix, recorded or not; `up`
 * on a lab that is up refuses, `down` on a lab that is down succeeds.
 *
 * Where things are: this file holds the lab (L), the global options and the command table; each
 * command is in its own file and the helpers they share are declared in labctl.h (which says
 * which file has what). */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"
#include "lab/cdnlab/labrun.h"

struct lab_ctx L;

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " [-s STATEDIR] [-v] COMMAND ...\n"
               "  up [--mode auto|netns|loopback] [--profile realistic|tuned|bfd] [--prometheus] TOPOLOGY.yaml\n"
               "                                                bring the lab up, print where things are\n"
               "                                                (--prometheus: Debian's prometheus scraping every daemon)\n"
               "  down [--drop-logs]                            remove every process, namespace and file (idempotent);\n"
               "                                                the logs are kept (beside the report of the last\n"
               "                                                `report -o DIR`, else in STATEDIR.logs-TIME) unless --drop-logs\n"
               "  status                                        processes, health, namespaces, relay counters\n"
               "  top [--once|--count N] [--interval S] [--http [ADDR:]PORT]\n"
               "                                                live view per edge (req/s, hit ratios, tiers, p50/p99,\n"
               "                                                state, purge lag); --http: status page and JSON\n"
               "  (without -s and $CDN_LAB_DIR: /tmp/cdn-lab-$UID if a lab is there, else the only lab up,\n"
               "   registered by up in /tmp/cdn-lab-labs-$UID; with several up, say which with -s)\n"
               "  fault kill|restart|isolate|heal|slow HOST     HOST: eu1 (an edge), dns, lb, app2, ...\n"
               "  fault service-down|bird-crash|link-down|blackhole|hang|recover EDGE   anycast faults\n"
               "  fault replica-down|primary-down|db-start|promote|lag DB   database faults (db-primary, db-r1, ...)\n"
               "  fault origin-hang|origin-down|parent-down [--for D]   the origin side, held D (10s), then undone\n"
               "  fault origin-slow MS|origin-errors RATE|app-hang APP [--for D]\n"
               "  fault wan-loss PCT [--link origin|all|REGION|A-B] [--for D]\n"
               "                                                PCT%% packet loss (0..100) both ways in the WAN relays\n"
               "                                                (namespaces): by default every link to the origin's\n"
               "                                                region (the other regions' fetches to shield and origin)\n"
               "  change price PRODUCT CENTS                    a price change on the primary (db:), purged by the outbox relay\n"
               "                                                (service-down drains the edge; kill is the crash)\n"
               "  purge [--soft] [--wait[=S]] url|prefix|tag|all ARG... | status\n"
               "                                                cdn-purge on the lab's purge bus (Redis beside cdn-dns)\n"
               "  load [cdn-load options]                       one cdn-load per region, from its clients\n"
               "  report [-o DIR]                               hit ratios, offload, latency, plots into DIR\n"
               "                                                (default STATEDIR/report, removed by down)\n"
               "  rtt [-n SAMPLES] [-q]                         measured round trip per region pair (also run by load)\n"
               "  drill [--drills A,B] [--modes on,off] [-o DIR] fault drills under load, breaker+fast stale on vs off\n"
               "  env                                           shell variables describing the lab\n"
               "  browse [-o DIR] [--product ID]                page loads in Chromium from every region, cold and\n"
               "                                                warm: TTFB, LCP, load, bytes from cache (lab/browse.py)\n"
               "  scale [-d DURATION] [--fixed]                 the app pool's auto-scaler (topology scale:), log in\n"
               "                                                STATEDIR/scale.log; --fixed: decide, never act\n"
               "STATEDIR defaults to $CDN_LAB_DIR or /tmp/cdn-lab-$UID.\n");
}

/* -s, -v, -h: the index of the command in argv, or -(exit status) when there is nothing to run. */
static int parse_global(int argc, char **argv, const char **sd)
{
    static const struct option lo[] = {{"state", required_argument, NULL, 's'}, {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "+s:vh", lo, NULL)) != -1) {
        switch (c) {
        case 's': *sd = optarg; break;
        case 'v': L.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return -2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return -2;
    }
    return optind;
}

/* L.statedir (absolute: the state must be found again from any directory) and L.exedir. */
static void set_dirs(const char *sd)
{
    char def[64];
    snprintf(def, sizeof(def), "/tmp/cdn-lab-%d", (int)getuid());
    if (!sd) sd = def;
    if (*sd == '/') snprintf(L.statedir, sizeof(L.statedir), "%s", sd);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd))) lab_die("getcwd");
        snprintf(L.statedir, sizeof(L.statedir), "%.2000s/%.2000s", cwd, sd);
    }
    size_t sl = strlen(L.statedir);
    while (sl > 1 && L.statedir[sl - 1] == '/') L.statedir[--sl] = 0;
    if (!strcmp(L.statedir, "/")) lab_die("refusing / as the state directory");
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *s = strrchr(exe, '/');
        if (s) *s = 0;
        snprintf(L.exedir, sizeof(L.exedir), "%s", exe);
    }
}

/* The commands, argv[0] being the command's name. */
static int run_up(int argc, char **argv)
{
    const char *mode = "auto", *profile = NULL;
    optind = 1;
    static const struct option uo[] = {{"mode", required_argument, NULL, 'm'}, {"profile", required_argument, NULL, 'p'},
                                       {"prometheus", no_argument, NULL, 'P'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:p:", uo, NULL)) != -1)
        if (c == 'm') mode = optarg;
        else if (c == 'p') profile = optarg;
        else if (c == 'P') L.prometheus = 1;
        else return 2;
    if (optind != argc - 1) lab_die("up TOPOLOGY.yaml");
    return lab_cmd_up(argv[optind], mode, profile);
}

static int run_down(int argc, char **argv)
{
    int keep = 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--drop-logs")) keep = 0;
        else lab_die("down [--drop-logs]");
    return lab_cmd_down(0, keep);
}

static int run_status(int argc, char **argv)
{
    (void)argc, (void)argv;
    return lab_cmd_status();
}

static int run_env(int argc, char **argv)
{
    (void)argc, (void)argv;
    return lab_cmd_env();
}

/* fault wan-loss PCT [--link L] [--for D]: PCT is checked before the lab is looked at (exit 2) */
static int run_wan_loss(double for_s, const char *link, const char *arg)
{
    char *end = NULL;
    double pct = arg ? strtod(arg, &end) : NAN;
    if (end && *end == '%') end++;
    if (!arg || !*arg || *end || !(pct >= 0 && pct <= 100)) {
        fprintf(stderr, PROG ": fault wan-loss PCT: a packet loss of 0 to 100 (%%), got '%s'\n", arg ? arg : "");
        return 2;
    }
    if (lab_load_state() < 0) lab_die("no lab in %s", L.statedir);
    lab_load_topology(L.topo_path);
    return lab_fault_wan_loss(pct, link, for_s);
}

static int run_fault(int argc, char **argv)
{
    static const char *const origin[] = {"origin-hang", "origin-down", "parent-down", "origin-slow", "origin-errors",
                                         "app-hang", "wan-loss", NULL};
    for (int i = 0; argc >= 2 && origin[i]; i++) {
        if (strcmp(argv[1], origin[i])) continue;
        /* fault WHAT [ARG] [--for DURATION]: injected, held, undone (default 10 s, at most 600) */
        const char *arg = NULL, *link = NULL;
        double for_s = 10;
        int wan = !strcmp(argv[1], "wan-loss");
        for (int k = 2; k < argc; k++) {
            if (wan && !strcmp(argv[k], "--link") && k + 1 < argc) {
                link = argv[++k];
            } else if (!strcmp(argv[k], "--for") && k + 1 < argc) {
                char *end;
                double v = strtod(argv[++k], &end);
                v *= !strcmp(end, "ms") ? 0.001 : !strcmp(end, "m") ? 60 : (!*end || !strcmp(end, "s")) ? 1 : -1;
                if (!(v >= 0.1 && v <= 600)) lab_die("fault %s --for DURATION: 0.1 s to 600 s (10, 10s, 2500ms)", argv[1]);
                for_s = v;
            } else if (!arg) {
                arg = argv[k];
            } else {
                lab_die("fault %s: unexpected '%s'", argv[1], argv[k]);
            }
        }
        if (wan) return run_wan_loss(for_s, link, arg);
        if (lab_load_state() < 0) lab_die("no lab in %s", L.statedir);
        lab_load_topology(L.topo_path);
        return lab_fault_origin(argv[1], arg, for_s);
    }
    if (argc != 3) lab_die("fault kill|restart|isolate|heal|slow HOST, or service-down|bird-crash|link-down|blackhole|hang|recover EDGE, "
                           "or replica-down|primary-down|db-start|promote|lag DB, or origin-hang|origin-down|parent-down [--for D], "
                           "origin-slow MS|origin-errors RATE|app-hang APP [--for D], wan-loss PCT [--link L] [--for D]");
    return lab_cmd_fault(argv[1], argv[2]);
}

static int run_outbox(int argc, char **argv)
{
    (void)argc, (void)argv;
    return lab_cmd_outbox();
}

/* load, report and rtt: a lab that is up, seen through labrun.h */
static int run_measure(int argc, char **argv)
{
    if (lab_load_state() < 0) lab_die("no lab in %s (cdn-lab up first)", L.statedir);
    lab_load_topology(L.topo_path);
    struct lab_run r = {.statedir = L.statedir, .exedir = L.exedir, .topo = L.topo, .plan = &L.plan,
                        .http_get = lab_http_get, .ns_socket = lab_ns_socket};
    if (!strcmp(argv[0], "rtt")) return lab_cmd_rtt(&r, argc, argv);
    return !strcmp(argv[0], "load") ? lab_cmd_load(&r, argc, argv) : lab_cmd_report(&r, argc, argv);
}

/* browse: lab/browse.py (next to this program in a build tree, or $CDN_LAB_BROWSE), given this
 * program and the state directory; it runs Chromium in each client namespace. */
static int run_browse(int argc, char **argv)
{
    char py[PATH_MAX + 16], me[PATH_MAX + 16];
    const char *e = getenv("CDN_LAB_BROWSE");
    snprintf(py, sizeof(py), "%s", e && *e ? e : "");
    if (!*py)
        snprintf(py, sizeof(py), "%s/browse.py", L.exedir);
    if (access(py, R_OK) != 0) lab_die("browse: no %s (set CDN_LAB_BROWSE to lab/browse.py)", py);
    snprintf(me, sizeof(me), "%s/cdn-lab", L.exedir);
    char **av = calloc((size_t)argc + 8, sizeof(*av));
    if (av == NULL) lab_die("out of memory");
    int n = 0;
    av[n++] = "python3";
    av[n++] = py;
    av[n++] = "--lab";
    av[n++] = me;
    av[n++] = "-s";
    av[n++] = L.statedir;
    for (int i = 1; i < argc; i++)
        av[n++] = argv[i];
    execvp("python3", av);
    lab_die("browse: cannot run python3: %s", strerror(errno));
    return 1;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"top", lab_cmd_top}, /* top.c: the live view */
    {"up", run_up},         {"down", run_down},       {"status", run_status}, {"env", run_env},
    {"fault", run_fault},   {"load", run_measure},    {"report", run_measure}, {"rtt", run_measure},
    {"browse", run_browse},
    {"purge", lab_cmd_purge},   {"change", lab_cmd_change}, {"outbox", run_outbox},
    {"scale", lab_cmd_scale},
    {"drill", lab_cmd_drill},
};

/* Neither -s nor CDN_LAB_DIR: the lab in the default directory, else the only lab up (the
 * registry, state.c); with several up, the user says which (exit 2). NULL: the default. */
static const char *find_lab(const char *cmd)
{
    static char labs[16][PATH_MAX];
    char def[64], dir[PATH_MAX], st[128];
    snprintf(def, sizeof(def), "/tmp/cdn-lab-%d", (int)getuid());
    snprintf(st, sizeof(st), "%s/state", def);
    int n = lab_registry_list(labs, 15, dir, sizeof(dir)), dup = 0;
    const char *reg = getenv("CDN_LAB_REGISTRY"); /* tests: only the labs registered there */
    for (int i = 0; i < n; i++) dup |= !strcmp(labs[i], def);
    if (!(reg && *reg) && !dup && access(st, F_OK) == 0) snprintf(labs[n++], PATH_MAX, "%s", def);
    if (n == 0) return NULL;
    if (n == 1) {
        if (strcmp(labs[0], def)) fprintf(stderr, PROG ": using the only lab up, in %s\n", labs[0]);
        return labs[0];
    }
    fprintf(stderr, PROG ": %d labs are up; say which one, e.g.:\n", n);
    for (int i = 0; i < n; i++) fprintf(stderr, "  " PROG " -s %s %s\n", labs[i], cmd);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *sd = getenv("CDN_LAB_DIR");
    if (sd && !*sd) sd = NULL;
    int first = parse_global(argc, argv, &sd);
    if (first <= 0) return -first;
    if (!sd && strcmp(argv[first], "up")) sd = find_lab(argv[first]);
    set_dirs(sd);
    lab_identity();
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[first], commands[i].name)) return commands[i].run(argc - first, argv + first);
    usage(stderr);
    return 2;
}
