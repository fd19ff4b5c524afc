/* lab/cdnlab/labctl.h - inside cdn-lab's orchestrator: the one lab this process works on (L) and
 * the helpers its commands share. The commands are in their own files: up.c (and routing.c for
 * anycast BIRD and health agents), down.c, status.c (status, env), fault.c; cdn_lab.c parses the
 * global options and dispatches. The helpers: state.c (the state directory and its `state` file),
 * proc.c (running commands, starting and stopping recorded processes, entering a namespace),
 * nshttp.c (a small HTTP client that works from inside a namespace, and node health).
 *
 * Rules: everything here is for one short-lived command-line process, single-threaded. lab_die()
 * prints and exits 1; the helpers that can fail on something outside (a file, a process, the
 * network) return -1 or a status instead. labrun.h is the narrower view that `load`, `report`
 * and `rtt` get. */
#ifndef LAB_LABCTL_H
#define LAB_LABCTL_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "lab/lib/topo.h"

#define PROG "cdn-lab"

struct lab_ctx {
    char statedir[PATH_MAX];
    char topo_path[PATH_MAX];
    char exedir[PATH_MAX];
    enum lab_mode mode;
    char prefix[40];
    int base;
    int verbose;
    char profile[16];           /* anycast timer profile override from `up --profile` */
    int prometheus;             /* `up --prometheus` (prom.c) */
    cdn_conf_t *conf;
    struct lab_topo *topo;
    struct lab_plan plan;
};
/* The lab of this run (cdn_lab.c): the state directory from -s, the rest from the state file
 * (lab_load_state) and the topology (lab_load_topology). */
extern struct lab_ctx L;

/* A process recorded in the state file ("proc NAME PID START"). */
struct lab_proc_rec {
    char name[32];
    pid_t pid;
    unsigned long long start; /* field 22 of /proc/PID/stat: a reused pid is not ours */
};

/* --- state.c --- */
void lab_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* out = STATEDIR/fmt... */
void lab_path(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Appends a "key value..." line to STATEDIR/state (synced: `down` after a crash still finds it). */
void lab_state_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The prefix and loopback base derived from the state directory's path. */
void lab_identity(void);
/* mode, topology, prefix, base and profile from the state file; -1 without one. */
int lab_load_state(void);
/* L.topo and L.plan from a topology file; dies on an error. */
void lab_load_topology(const char *p);
/* The recorded processes, a later record of a name replacing an earlier one; their number. */
size_t lab_read_procs(struct lab_proc_rec *out, size_t max);
/* The registry of labs that are up ($CDN_LAB_REGISTRY or /tmp/cdn-lab-labs-UID): up adds this lab,
 * down removes it; list: the state directories of the labs registered whose state file exists
 * (stale entries are dropped), their number; *dir gets the registry's folder. */
void lab_registry_add(void);
void lab_registry_del(void);
int lab_registry_list(char (*out)[PATH_MAX], int max, char *dir, size_t dirlen);

/* --- proc.c --- */
int lab_proc_alive(pid_t pid, unsigned long long start);
/* Runs argv and waits; its exit status (127: not found, 128: killed). quiet: output to /dev/null. */
int lab_run_argv(char *const argv[], int quiet);
/* lab_runf(quiet, "ip -n %s link set %s up", ...): split on spaces, no quoting. */
int lab_runf(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Dies (with a hint to run `down`) unless rc is 0. */
void lab_must(int rc, const char *what);
/* Runs fn(arg) inside network namespace ns ("" here), then comes back; -1 if it cannot enter. */
int lab_in_ns(const char *ns, int (*fn)(void *), void *arg);
/* A program beside cdn-lab, in the build tree's folders, or on PATH (+ sbin); -1 if none. */
int lab_find_prog(const char *name, char *out, size_t n);
/* Starts a->argv in node's namespace, in its own session, output to logs/NAME.log, and records
 * it in the state file; dies if the program is not found. */
pid_t lab_start_proc(const struct lab_node *node, const char *name, struct lab_argv *a);
/* Signals a recorded process and its session's group, if it is still the one we started. */
void lab_stop_pid(pid_t pid, unsigned long long start, int sig);
int lab_ns_exists(const char *ns);
/* The last 8 lines of logs/NAME.log on stderr. */
void lab_tail_log(const char *name);

/* --- nshttp.c --- */
/* GET from inside namespace ns: the status, -1 on a connection failure; *body malloc'd. */
int lab_http_get(const char *ns, const char *addr, int port, const char *target, char **body, size_t *len);
/* METHOD TARGET without a body; the status, or -1. */
int lab_http_call(const char *ns, const char *addr, int port, const char *method, const char *target);
const char *lab_admin_token(void);
/* A non-blocking TCP socket made inside namespace ns, or -1. */
int lab_ns_socket(const char *ns);
/* Does the node's health URL answer 200 (nodes without one are healthy)? */
int lab_node_healthy(const struct lab_node *n);

/* --- up.c --- */
/* The command line of node's daemon (a->argc 0 for nodes without one). */
void lab_daemon_argv(int node, struct lab_argv *a);

/* --- routing.c: anycast, a BIRD per router and edge, a health agent per edge --- */
int lab_routes_node(const struct lab_node *n);
void lab_bird_ctl(const struct lab_node *n, char *out, size_t len);
pid_t lab_start_bird(int node);
/* BGP sessions of a node's BIRD: established and *total (-1 when BIRD does not answer). */
int lab_bgp_sessions(const struct lab_node *n, int *total);
void lab_routing_up(void);
void lab_anycast_up(void);

/* --- db.c: the lab's PostgreSQL (a topology's db:) --- */
void lab_db_check(void);
void lab_db_up(void);
void lab_db_where(FILE *f);
void lab_db_status(FILE *f);
/* replica-down|primary-down|db-start|promote|lag on node k: 0 done, -1 when `what` is none of them. */
int lab_db_fault(const char *what, int k, struct lab_proc_rec *pr, size_t np);

/* --- outbox.c: a price change end to end (db:) --- */
int lab_cmd_change(int argc, char **argv);
/* The outbox relay (a process `up` starts beside the purge bus): runs until SIGTERM. */
int lab_cmd_outbox(void);
void lab_db_outbox_start(void);

/* --- prom.c: `up --prometheus`, Debian's prometheus scraping every daemon (optional) --- */
void lab_prometheus_up(void);
void lab_prometheus_where(FILE *f);
/* --- top.c: the live view (and the status page with --http) --- */
int lab_cmd_top(int argc, char **argv);

/* lab/cdnlab/blackhole.c: run inside the interface's namespace, after `tc qdisc add ... clsact`. */
int lab_blackhole_attach(const char *ifname, char *err, size_t errlen);

/* --- the commands; each returns the exit status --- */
int lab_cmd_up(const char *topo, const char *mode, const char *profile);
/* keep_logs: move the logs, load logs and scrapes out of the state directory first (down.c) */
int lab_cmd_down(int quiet, int keep_logs);
int lab_cmd_status(void);
int lab_cmd_env(void);
int lab_cmd_fault(const char *what, const char *host);
int lab_cmd_purge(int argc, char **argv);
/* scale.c: the app pool's auto-scaler (topology scale:), until SIGTERM or -d */
int lab_cmd_scale(int argc, char **argv);
/* drill.c: issue 19's fault drills under load, breaker and fast stale on vs off */
int lab_cmd_drill(int argc, char **argv);
/* drill.c: `fault origin-hang|origin-down|parent-down|origin-slow MS|origin-errors RATE|app-hang APP`
 * for for_s seconds, then undone; -1 when `what` is none of these */
int lab_fault_origin(const char *what, const char *arg, double for_s);
/* wanloss.c: packet loss in the WAN relays (cdn-wanrelay --control + SIGHUP). */
#define LAB_WAN_MAX (LAB_MAX_REGIONS * LAB_MAX_REGIONS / 2)
/* The number of WAN relays (0 on loopback or without delays). */
int lab_wan_relays(void);
/* sel[relay] = 1 for the links `link` names: NULL or "origin" (every link with an end in the
 * origin's region), "all", a region (its link to the origin's region) or a pair "eu-us"; desc gets
 * "eu-us, us-ap". The count; dies when there is none. */
int lab_wan_select(const char *link, int *sel, char *desc, size_t dn);
/* Loss p (0..1; 0: back to none) on the selected relays, both directions; waits (3 s) until each
 * relay's stats show it. *drops (may be NULL): their drop_loss then. 0, or -1 after saying which
 * relay did not take it. */
int lab_wan_set_loss(const int *sel, double p, unsigned long long *drops);
/* `fault wan-loss PCT [--link L] [--for D]`: set, held for_s, undone; 0, 1 when a relay did not
 * take a change, 128+SIG when SIGINT/SIGTERM/SIGHUP ended the hold early (undone all the same). */
int lab_fault_wan_loss(double pct, const char *link, double for_s);

#endif
