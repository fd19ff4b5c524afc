/* lab/cdnlab/fault.c - `cdn-lab fault`: kill, restart, slow, isolate and heal a host; the anycast edge's
 * routing faults (service-down, bird-crash, hang, link-down, blackhole) and `recover`. Each fault
 * is written to faults.tsv with its CLOCK_MONOTONIC start (the report lines it up with cdn-load's
 * logs) and to the state file. */
#include "config.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"
#include "lab/lib/anycast.h"

struct bh_arg { const char *ifname; char err[200]; };

static int do_blackhole(void *arg)
{
    struct bh_arg *b = arg;
    return lab_blackhole_attach(b->ifname, b->err, sizeof(b->err));
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* faults.tsv: CLOCK_MONOTONIC seconds (cdn-load's logs carry the same clock), fault, node. */
static void fault_record(double t, const char *what, const char *node)
{
    char p[PATH_MAX];
    lab_path(p, sizeof(p), "faults.tsv");
    FILE *f = fopen(p, "a");
    if (!f) return;
    fprintf(f, "%.3f\t%s\t%s\n", t, what, node);
    fclose(f);
}

static struct lab_proc_rec *proc_named(struct lab_proc_rec *pr, size_t n, const char *fmt, const char *arg)
{
    char name[64];
    snprintf(name, sizeof(name), fmt, arg);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(pr[i].name, name)) return &pr[i];
    return NULL;
}

/* The routing faults of an anycast edge, and `recover`, which undoes any of them. */
static int anycast_fault(const char *what, int k, struct lab_proc_rec *pr, size_t np)
{
    struct lab_node *n = &L.plan.nodes[k];
    if (!lab_routes_node(n) || n->kind != LAB_EDGE) lab_die("%s: %s is not an anycast edge", what, n->name);
    struct lab_proc_rec *bird = proc_named(pr, np, "bird-%s", n->name), *edge = proc_named(pr, np, "%s", n->name);
    double t = mono_s();
    int rc = 0;
    if (!strcmp(what, "service-down")) {
        /* the edge drains: its /healthz says 503, its health agent withdraws the route, and it
         * serves whatever still arrives meanwhile (`fault kill` is the crash) */
        if (!edge || !lab_proc_alive(edge->pid, edge->start)) lab_die("%s is not running", n->name);
        if (lab_http_call(n->ns, n->mgmt, LAB_PORT_EDGE_ADMIN, "POST", "/drain") != 200) lab_die("%s: POST /drain failed", n->name);
    } else if (!strcmp(what, "bird-crash") || !strcmp(what, "hang")) {
        if (!bird || !lab_proc_alive(bird->pid, bird->start)) lab_die("bird-%s is not running", n->name);
        lab_stop_pid(bird->pid, bird->start, !strcmp(what, "hang") ? SIGSTOP : SIGKILL);
    } else if (!strcmp(what, "link-down")) {
        lab_must(lab_runf(0, "ip -n %s link set up0 down", n->ns), "link set down");
    } else if (!strcmp(what, "blackhole")) {
        lab_must(lab_runf(0, "tc -n %s qdisc add dev up0 clsact", n->ns), "tc qdisc add clsact");
        struct bh_arg b = {.ifname = "up0"};
        if (lab_in_ns(n->ns, do_blackhole, &b) < 0) {
            lab_runf(1, "tc -n %s qdisc del dev up0 clsact", n->ns);
            lab_die("blackhole on %s: %s", n->name, *b.err ? b.err : "cannot enter the namespace");
        }
    } else if (!strcmp(what, "recover")) {
        if (bird && lab_proc_alive(bird->pid, bird->start)) lab_stop_pid(bird->pid, bird->start, SIGCONT);
        lab_runf(1, "tc -n %s qdisc del dev up0 clsact", n->ns);
        lab_runf(1, "ip -n %s link set up0 up", n->ns);
        lab_runf(1, "ip -n %s route replace default via %s", n->ns, n->gw);
        if (!bird || !lab_proc_alive(bird->pid, bird->start)) lab_start_bird(k);
        if (!edge || !lab_proc_alive(edge->pid, edge->start)) {
            struct lab_argv a = {0};
            lab_daemon_argv(k, &a);
            lab_start_proc(n, n->name, &a);
        } else if (lab_http_call(n->ns, n->mgmt, LAB_PORT_EDGE_ADMIN, "DELETE", "/drain") != 200) {
            fprintf(stderr, PROG ": %s: DELETE /drain failed\n", n->name);
            rc = 1;
        }
    } else {
        return -1;
    }
    fault_record(t, what, n->name);
    printf("%s %s\n", what, n->name);
    return rc;
}

/* fault kill|restart|isolate|heal|slow HOST, and the anycast edge faults */
int lab_cmd_fault(const char *what, const char *host)
{
    if (lab_load_state() < 0) lab_die("no lab in %s", L.statedir);
    lab_load_topology(L.topo_path);
    char name[40];
    int k = lab_plan_find_name(&L.plan, host);
    if (k < 0) {
        snprintf(name, sizeof(name), "e-%s", host); /* edges by their topology name */
        k = lab_plan_find_name(&L.plan, name);
    }
    if (k < 0) lab_die("no host '%s' in this lab", host);
    struct lab_node *n = &L.plan.nodes[k];
    struct lab_proc_rec pr[256];
    size_t np = lab_read_procs(pr, 256);
    struct lab_proc_rec *me = NULL;
    for (size_t i = 0; i < np; i++)
        if (!strcmp(pr[i].name, n->name)) me = &pr[i];
    if (!strcmp(what, "service-down") || !strcmp(what, "bird-crash") || !strcmp(what, "hang") ||
        !strcmp(what, "link-down") || !strcmp(what, "blackhole") || !strcmp(what, "recover")) {
        int rc = anycast_fault(what, k, pr, np) != 0;
        lab_state_add("fault %ld %s %s", (long)time(NULL), what, n->name);
        return rc;
    }
    double t0 = mono_s();
    int rc = lab_db_fault(what, k, pr, np); /* the database's faults (db.c) */
    if (rc >= 0) {
        fault_record(t0, what, n->name);
        lab_state_add("fault %ld %s %s", (long)time(NULL), what, n->name);
        return rc;
    }
    rc = 0;
    if (!strcmp(what, "kill")) {
        if (!me || !lab_proc_alive(me->pid, me->start)) lab_die("%s is not running", n->name);
        lab_stop_pid(me->pid, me->start, SIGKILL);
        for (int t = 0; t < 40 && lab_proc_alive(me->pid, me->start); t++) usleep(50000);
        if (lab_proc_alive(me->pid, me->start)) lab_die("%s (pid %d) still running after SIGKILL", n->name, (int)me->pid);
        printf("killed %s (pid %d)\n", n->name, (int)me->pid);
    } else if (!strcmp(what, "restart") || !strcmp(what, "slow")) {
        if (me && lab_proc_alive(me->pid, me->start)) {
            lab_stop_pid(me->pid, me->start, SIGTERM);
            for (int t = 0; t < 60 && lab_proc_alive(me->pid, me->start); t++) usleep(50000);
            lab_stop_pid(me->pid, me->start, SIGKILL);
        }
        struct lab_argv a = {0};
        lab_daemon_argv(k, &a);
        if (!a.argc) lab_die("%s is not a daemon", n->name);
        if (!strcmp(what, "slow")) {
            if (n->kind != LAB_APP) lab_die("slow: only shop-apps have a service delay");
            lab_argv_add(&a, "--delay");
            lab_argv_add(&a, "200");
        }
        pid_t pid = lab_start_proc(n, n->name, &a);
        for (int t = 0; t < 200 && !lab_node_healthy(n); t++) usleep(50000);
        int healthy = lab_node_healthy(n);
        printf("%s %s (pid %d)%s\n", !strcmp(what, "slow") ? "slowed (200 ms per request)" : "restarted", n->name, (int)pid,
               healthy ? "" : ", NOT healthy after 10 s");
        if (!healthy) {
            fprintf(stderr, PROG ": %s not healthy after 10 s; its log:\n", n->name);
            lab_tail_log(n->name);
            rc = 1;
        }
    } else if (!strcmp(what, "isolate") || !strcmp(what, "heal")) {
        int iso = !strcmp(what, "isolate");
        if (L.mode == LAB_NETNS) {
            lab_must(lab_runf(0, "ip -n %s link set up0 %s", n->ns, iso ? "down" : "up"), "link set");
            if (!iso && *n->gw) lab_runf(1, "ip -n %s route replace default via %s", n->ns, n->gw);
        } else {
            /* no links on loopback: a stopped process is the closest to a cut cable */
            if (!me || !lab_proc_alive(me->pid, me->start)) lab_die("%s is not running", n->name);
            lab_stop_pid(me->pid, me->start, iso ? SIGSTOP : SIGCONT);
        }
        printf("%s %s\n", iso ? "isolated" : "healed", n->name);
    } else {
        lab_die("fault: kill|restart|isolate|heal|slow HOST, or service-down|bird-crash|link-down|blackhole|hang|recover EDGE,"
                " or replica-down|primary-down|db-start|promote|lag DB");
    }
    fault_record(t0, what, n->name); /* at the time it began, once it was done */
    lab_state_add("fault %ld %s %s", (long)time(NULL), what, n->name);
    return rc;
}
