/* lab/cdnlab/cdnlab/cdn_lab.c - cdn-lab: brings a topology up (network namespaces as root, else loopback
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
 * on a lab that is up refuses, `down` on a lab that is down succeeds. */
#include "config.h"
#include <sys/random.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cdn/http.h"
#include "lab/lib/topo.h"
#include "lab/cdnlab/labrun.h"
#include "lab/lib/anycast.h"

#define PROG "cdn-lab"

static struct lab_ctx {
    char statedir[PATH_MAX];
    char topo_path[PATH_MAX];
    char exedir[PATH_MAX];
    enum lab_mode mode;
    char prefix[40];
    int base;
    int verbose;
    char profile[16];           /* anycast timer profile override from `up --profile` */
    cdn_conf_t *conf;
    struct lab_topo *topo;
    struct lab_plan plan;
} L;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void path(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void path(char *out, size_t n, const char *fmt, ...)
{
    char rel[PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof(rel), fmt, ap);
    va_end(ap);
    snprintf(out, n, "%.2000s/%.2000s", L.statedir, rel);
}

/* --- state file: "key value..." lines, appended as things come to exist --- */
static void state_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void state_add(const char *fmt, ...)
{
    char p[PATH_MAX];
    path(p, sizeof(p), "state");
    FILE *f = fopen(p, "a");
    if (!f) die("cannot write %s: %s", p, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
}

/* Process start time (field 22 of /proc/PID/stat), so a recycled pid is not mistaken for ours. */
static unsigned long long proc_start(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *s = strrchr(buf, ')');
    if (!s) return 0;
    unsigned long long v = 0;
    int field = 2;
    for (char *q = s + 1; *q; q++)
        if (*q == ' ' && ++field == 22) {
            v = strtoull(q + 1, NULL, 10);
            break;
        }
    return v;
}

static int proc_alive(pid_t pid, unsigned long long start)
{
    if (pid <= 0 || kill(pid, 0) < 0) return 0;
    /* a zombie of ours counts as dead */
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    int ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    char *s = ok ? strrchr(buf, ')') : NULL;
    if (!s || s[2] == 'Z') return 0;
    return !start || proc_start(pid) == start;
}

/* --- running commands --- */
static int run_argv(char *const argv[], int quiet)
{
    if (L.verbose) {
        fprintf(stderr, "+");
        for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* run("ip -n %s link set %s up", ...): split on spaces (no quoting needed for our arguments). */
static int run(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(int quiet, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char *argv[64];
    int n = 0;
    for (char *t = strtok(line, " "); t && n < 63; t = strtok(NULL, " ")) argv[n++] = t;
    argv[n] = NULL;
    return run_argv(argv, quiet);
}

static void must(int rc, const char *what)
{
    if (rc != 0) die("%s failed (exit %d); run `" PROG " down` to clean up", what, rc);
}

/* Runs fn inside network namespace ns (or here, for ""), then comes back. */
static int in_ns(const char *ns, int (*fn)(void *), void *arg)
{
    if (!*ns) return fn(arg);
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "/run/netns/%s", ns);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd = open(p, O_RDONLY | O_CLOEXEC);
    if (self < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        if (self >= 0) close(self);
        if (fd >= 0) close(fd);
        return -1;
    }
    int rc = fn(arg);
    if (setns(self, CLONE_NEWNET) < 0) die("cannot return to the original network namespace");
    close(self);
    close(fd);
    return rc;
}

/* --- tiny HTTP/1.0 GET for readiness and scrapes (local addresses, short timeouts); other
 * methods (no body) for admin switches such as an edge's POST /drain --- */
struct http_get {
    const char *method; /* NULL: GET */
    const char *addr, *target;
    int port;
    int status;
    char *body; /* malloc'd, or NULL */
    size_t len;
};

static int do_http_get(void *arg)
{
    struct http_get *g = arg;
    g->status = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g->port)};
    inet_pton(AF_INET, g->addr, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: cdn-lab\r\n%s\r\n",
                     g->method ? g->method : "GET", g->target, g->addr, g->method ? "Content-Length: 0\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) { /* a target too long, or I/O */
        close(fd);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return -1;
    }
    for (;;) {
        if (len + 4096 > cap) {
            if (cap >= (64u << 20)) break;
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) { /* out of memory: no answer rather than a cut one */
                free(buf);
                close(fd);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7)) {
        free(buf);
        return -1;
    }
    g->status = atoi(buf + 9);
    char *b = strstr(buf, "\r\n\r\n");
    if (b) {
        g->len = len - (size_t)(b + 4 - buf);
        memmove(buf, b + 4, g->len + 1);
    } else {
        g->len = 0;
    }
    g->body = buf;
    return 0;
}

static int http_get(const char *ns, const char *addr, int port, const char *target, char **body, size_t *len)
{
    struct http_get g = {.addr = addr, .port = port, .target = target};
    int rc = in_ns(ns, do_http_get, &g);
    if (rc < 0) return -1;
    if (body) *body = g.body;
    else free(g.body);
    if (len) *len = g.len;
    return g.status;
}

/* METHOD TARGET without a body; the status, or -1 */
static int http_call(const char *ns, const char *addr, int port, const char *method, const char *target)
{
    struct http_get g = {.method = method, .addr = addr, .port = port, .target = target};
    if (in_ns(ns, do_http_get, &g) < 0) return -1;
    free(g.body);
    return g.status;
}

static int do_socket(void *arg)
{
    *(int *)arg = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return *(int *)arg < 0 ? -1 : 0;
}

/* A socket belongs to the namespace it was made in, wherever it is used later. */
static int ns_socket(const char *ns)
{
    int fd = -1;
    return in_ns(ns, do_socket, &fd) < 0 ? -1 : fd;
}

/* --- finding the programs: beside cdn-lab (installed) or in the build tree's folders --- */
static int find_prog(const char *name, char *out, size_t n)
{
    static const char *const sub[] = {"", "/../edge", "/../dns", "/../origin", "/../lab", NULL};
    const char *env = getenv("CDN_LAB_BINDIR");
    for (int i = -1; sub[i + 1] || i < 0; i++) {
        if (i < 0) {
            if (!env) continue;
            snprintf(out, n, "%s/%s", env, name);
        } else {
            snprintf(out, n, "%.3000s%s/%.200s", L.exedir, sub[i], name);
        }
        if (access(out, X_OK) == 0) {
            char real[PATH_MAX];
            if (realpath(out, real)) snprintf(out, n, "%s", real);
            return 0;
        }
    }
    /* system programs (bird): PATH, then the sbin folders a non-login root shell may lack */
    char sp[PATH_MAX];
    snprintf(sp, sizeof(sp), "%s:/usr/sbin:/sbin", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(sp, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%.3000s/%.200s", d, name);
        if (*d == '/' && access(out, X_OK) == 0) return 0;
    }
    return -1;
}

/* --- lab identity: prefix and loopback base from the state directory's path --- */
static void identity(void)
{
    /* fixed key: the same state directory gives the same names in every run (a lab that is up
     * keeps its own in its state file, so `down` finds it even if this changes) */
    uint64_t h = cdn_hash_fixed(L.statedir, strlen(L.statedir));
    snprintf(L.prefix, sizeof(L.prefix), "cdnlab-%04x", (unsigned)(h & 0xffff));
    L.base = 100 + (int)((h >> 16) % 100);
}

static int load_state(void)
{
    char p[PATH_MAX], line[PATH_MAX + 64];
    path(p, sizeof(p), "state");
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "mode ", 5)) L.mode = !strcmp(line + 5, "netns") ? LAB_NETNS : LAB_LOOPBACK;
        else if (!strncmp(line, "topology ", 9)) snprintf(L.topo_path, sizeof(L.topo_path), "%.4000s", line + 9);
        else if (!strncmp(line, "prefix ", 7)) snprintf(L.prefix, sizeof(L.prefix), "%.30s", line + 7);
        else if (!strncmp(line, "base ", 5)) L.base = atoi(line + 5);
        else if (!strncmp(line, "profile ", 8)) snprintf(L.profile, sizeof(L.profile), "%.15s", line + 8);
    }
    fclose(f);
    return 0;
}

static void load_topology(const char *p)
{
    cdn_conf_err_t err;
    L.topo = lab_topo_load(p, &L.conf, &err);
    if (!L.topo) die("%s", err.msg);
    char msg[200];
    if (lab_plan_make(L.topo, L.mode, L.prefix, L.base, &L.plan, msg, sizeof(msg)) < 0) die("%s: %s", p, msg);
    if (*L.profile && lab_profile_parse(L.profile, &L.topo->profile) < 0) die("unknown profile '%s'", L.profile);
}

/* --- processes --- */
struct proc_rec {
    char name[32];
    pid_t pid;
    unsigned long long start;
};

static size_t read_procs(struct proc_rec *out, size_t max)
{
    char p[PATH_MAX], line[512];
    path(p, sizeof(p), "state");
    FILE *f = fopen(p, "r");
    size_t n = 0;
    if (!f) return 0;
    while (fgets(line, sizeof(line), f)) {
        struct proc_rec r;
        int pid;
        if (sscanf(line, "proc %31s %d %llu", r.name, &pid, &r.start) != 3) continue;
        r.pid = pid;
        size_t i;
        for (i = 0; i < n; i++)
            if (!strcmp(out[i].name, r.name)) break; /* a restart replaces the earlier record */
        if (i == n && n < max) n++;
        if (i < max) out[i] = r;
    }
    fclose(f);
    return n;
}

static pid_t start_proc(const struct lab_node *node, const char *name, struct lab_argv *a)
{
    char prog[PATH_MAX], logp[PATH_MAX];
    const char *base = strrchr(a->argv[0], '/');
    base = base ? base + 1 : a->argv[0];
    if (find_prog(base, prog, sizeof(prog)) < 0) die("program %s not found (is it built?)", base);
    path(logp, sizeof(logp), "logs/%s.log", name);
    char *argv[104];
    int k = 0;
    if (node && *node->ns) {
        argv[k++] = "ip";
        argv[k++] = "netns";
        argv[k++] = "exec";
        argv[k++] = (char *)node->ns;
    }
    argv[k++] = prog;
    for (int i = 1; i < a->argc && k < 103; i++) argv[k++] = a->argv[i];
    argv[k] = NULL;
    if (L.verbose) {
        fprintf(stderr, "+");
        for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, " > %s\n", logp);
    }
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        setsid();
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644), nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    /* `ip netns exec` execs the program in place: the pid stays. Wait for the exec so that the
     * start time we record is the program's. */
    unsigned long long st = 0;
    for (int i = 0; i < 200; i++) {
        char exe[PATH_MAX], p[64];
        snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
        ssize_t n = readlink(p, exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = 0;
            if (!strcmp(exe, prog)) break;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        usleep(5000);
    }
    st = proc_start(pid);
    state_add("proc %s %d %llu", name, (int)pid, st);
    return pid;
}

static void stop_pid(pid_t pid, unsigned long long start, int sig)
{
    if (!proc_alive(pid, start)) return;
    kill(-pid, sig); /* its session's process group */
    kill(pid, sig);
}

/* --- network (netns mode) --- */
static int ns_exists(const char *ns)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "/run/netns/%s", ns);
    return access(p, F_OK) == 0;
}

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
        state_add("ns %s", ns);
        must(run(0, "ip netns add %s", ns), "ip netns add");
        must(run(0, "ip -n %s link set lo up", ns), "link set lo up");
        if (p->nodes[i].kind == LAB_ROUTER) {
            struct sysctl_arg s = {"/proc/sys/net/ipv4/ip_forward", "1"};
            if (in_ns(ns, do_sysctl, &s) < 0) die("ip_forward in %s", ns);
        }
    }
    for (size_t i = 0; i < p->nlinks; i++) {
        const struct lab_link *l = &p->links[i];
        const char *na = p->nodes[l->a].ns, *nb = p->nodes[l->b].ns;
        must(run(0, "ip link add %s netns %s type veth peer name %s netns %s", l->if_a, na, l->if_b, nb), "veth");
        if (*l->addr_a) must(run(0, "ip -n %s addr add %s dev %s", na, l->addr_a, l->if_a), "addr add");
        if (*l->addr_b) must(run(0, "ip -n %s addr add %s dev %s", nb, l->addr_b, l->if_b), "addr add");
        must(run(0, "ip -n %s link set %s up", na, l->if_a), "link up");
        must(run(0, "ip -n %s link set %s up", nb, l->if_b), "link up");
    }
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct lab_node *n = &p->nodes[i];
        if (*n->gw) must(run(0, "ip -n %s route add default via %s", n->ns, n->gw), "default route");
        if (n->kind == LAB_CLIENT) {
            const struct lab_region *r = lab_topo_reg(L.topo, (size_t)n->region);
            for (unsigned k = 1; k < r->clients; k++) {
                char a[20];
                lab_plan_client_addr(p, n->region, k, a, sizeof(a));
                must(run(0, "ip -n %s addr add %s/24 dev up0", n->ns, a), "client address");
            }
        }
    }
    for (size_t i = 0; p->anycast && i < p->nnodes; i++) {
        const struct lab_node *n = &p->nodes[i];
        if (n->kind != LAB_EDGE || lab_topo_edge(L.topo, (size_t)n->index)->parent) continue;
        for (size_t k = 0; k < L.topo->anycast.addresses.n; k++)
            must(run(0, "ip -n %s addr add %s/32 dev lo", n->ns, lab_topo_anycast_addr(L.topo, k)), "anycast address");
    }
    for (size_t i = 0; i < p->nroutes; i++) {
        const struct lab_route *r = &p->routes[i];
        must(run(0, "ip -n %s route add %s via %s", p->nodes[r->node].ns, r->dst, r->via), "route add");
    }
    int wan = lab_plan_find_name(p, "wan");
    for (size_t i = 0; i < p->nrelays; i++) {
        const struct lab_relay *r = &p->relays[i];
        struct lab_argv a = {0};
        char name[32], stats[PATH_MAX];
        snprintf(name, sizeof(name), "wan-%s-%s", lab_topo_reg(L.topo, (size_t)r->ra)->name,
                 lab_topo_reg(L.topo, (size_t)r->rb)->name);
        path(stats, sizeof(stats), "%s.stats", name);
        lab_argv_add(&a, "cdn-wanrelay");
        lab_argv_add(&a, "-d");
        lab_argv_add(&a, "%llums", (unsigned long long)r->delay_ms);
        lab_argv_add(&a, "-s");
        lab_argv_add(&a, "%s", stats);
        lab_argv_add(&a, "%s", r->if_a);
        lab_argv_add(&a, "%s", r->if_b);
        start_proc(&p->nodes[wan], name, &a);
    }
}

/* --- daemons --- */
static void cmd_for(int node, struct lab_argv *a)
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

/* Where a node's health shows: (port, path). */
static int health_of(const struct lab_node *n, int *port, const char **target)
{
    switch (n->kind) {
    case LAB_EDGE: *port = LAB_PORT_EDGE_ADMIN; *target = "/healthz"; return 0;
    case LAB_APP: *port = LAB_PORT_APP; *target = "/healthz"; return 0;
    case LAB_LB: *port = LAB_PORT_LB; *target = "/healthz"; return 0; /* proxied to an app: the pool works */
    case LAB_DNS: *port = LAB_PORT_DNS_ADMIN; *target = "/healthz"; return 0;
    default: return -1;
    }
}

static int node_healthy(const struct lab_node *n)
{
    int port;
    const char *target;
    if (health_of(n, &port, &target) < 0) return 1;
    return http_get(n->ns, n->addr, port, target, NULL, NULL) == 200;
}

static void tail_log(const char *name)
{
    char p[PATH_MAX], line[512];
    path(p, sizeof(p), "logs/%s.log", name);
    FILE *f = fopen(p, "r");
    if (!f) return;
    char lines[8][512] = {{0}};
    int k = 0;
    while (fgets(line, sizeof(line), f)) snprintf(lines[k++ % 8], 512, "%s", line);
    fclose(f);
    for (int i = 0; i < 8; i++)
        if (*lines[(k + i) % 8]) fprintf(stderr, "  | %s", lines[(k + i) % 8]);
}

/* Starts the daemons of one kind and waits until each is healthy (or dies, or the deadline). */
static void start_kind(enum lab_kind kind, int deadline_s)
{
    struct lab_plan *p = &L.plan;
    pid_t pids[128];
    int idx[128], n = 0;
    for (size_t i = 0; i < p->nnodes && n < 128; i++) {
        if (p->nodes[i].kind != kind) continue;
        struct lab_argv a = {0};
        cmd_for((int)i, &a);
        idx[n] = (int)i;
        pids[n++] = start_proc(&p->nodes[i], p->nodes[i].name, &a);
    }
    int ready[128] = {0}, left = n;
    for (int t = 0; left > 0; t++) {
        for (int k = 0; k < n; k++) {
            if (ready[k]) continue;
            int st;
            if (waitpid(pids[k], &st, WNOHANG) == pids[k]) {
                fprintf(stderr, PROG ": %s exited during start-up; its log:\n", p->nodes[idx[k]].name);
                tail_log(p->nodes[idx[k]].name);
                die("start-up failed; run `" PROG " down -s %s` to clean up", L.statedir);
            }
            if (node_healthy(&p->nodes[idx[k]])) {
                ready[k] = 1;
                left--;
            }
        }
        if (left && t >= deadline_s * 20) {
            for (int k = 0; k < n; k++)
                if (!ready[k]) {
                    fprintf(stderr, PROG ": %s not healthy after %d s; its log:\n", p->nodes[idx[k]].name, deadline_s);
                    tail_log(p->nodes[idx[k]].name);
                }
            die("start-up failed; run `" PROG " down -s %s` to clean up", L.statedir);
        }
        if (left) usleep(50000);
    }
}


/* --- anycast routing: a BIRD per router and edge, a health agent per edge (anycast.h) --- */
static int routes_node(const struct lab_node *n)
{
    return L.plan.anycast && (n->kind == LAB_ROUTER || (n->kind == LAB_EDGE && !lab_topo_edge(L.topo, (size_t)n->index)->parent));
}

static void bird_ctl(const struct lab_node *n, char *out, size_t len)
{
    path(out, len, "b/%s.ctl", n->name);
}

static pid_t start_bird(int node)
{
    const struct lab_node *n = &L.plan.nodes[node];
    char p[PATH_MAX], name[48];
    bird_ctl(n, p, sizeof(p));
    if (strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        die("%s: too long for a unix socket; use a shorter state directory (-s)", p);
    struct lab_buf b = {0};
    lab_gen_bird_conf(L.topo, &L.plan, node, L.topo->profile, L.statedir, &b);
    path(p, sizeof(p), "b/%s.conf", n->name);
    FILE *f = fopen(p, "w");
    if (!f || b.oom || fwrite(b.s, 1, b.len, f) != b.len || fclose(f) != 0) die("cannot write %s", p);
    lab_buf_free(&b);
    struct lab_argv a;
    lab_cmd_bird(&L.plan, node, L.statedir, &a);
    snprintf(name, sizeof(name), "bird-%s", n->name);
    return start_proc(n, name, &a);
}

/* BGP sessions of a node's BIRD: established and total (-1 when BIRD does not answer). */
static int bgp_sessions(const struct lab_node *n, int *total)
{
    char ctl[PATH_MAX], out[16384];
    bird_ctl(n, ctl, sizeof(ctl));
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
    bird_ctl(n, ctl, sizeof(ctl));
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
            if (routes_node(&L.plan.nodes[i]) && !cond(&L.plan.nodes[i])) bad = (int)i;
        if (bad < 0) return;
        if (t >= deadline_s * 10) {
            char name[48];
            snprintf(name, sizeof(name), "bird-%s", L.plan.nodes[bad].name);
            fprintf(stderr, PROG ": %s: not ready after %d s (%s); its log:\n", L.plan.nodes[bad].name, deadline_s, what);
            tail_log(name);
            die("start-up failed; run `" PROG " down -s %s` to clean up", L.statedir);
        }
        usleep(100000);
    }
}

static int all_established(const struct lab_node *n)
{
    int total, est = bgp_sessions(n, &total);
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

static void routing_up(void)
{
    char p[PATH_MAX];
    path(p, sizeof(p), "b");
    mkdir(p, 0755);
    state_add("profile %s", lab_profile_name(L.topo->profile));
    for (size_t i = 0; i < L.plan.nnodes; i++)
        if (routes_node(&L.plan.nodes[i])) start_bird((int)i);
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
    return start_proc(&L.plan.nodes[node], name, &a);
}

static void anycast_up(void)
{
    for (size_t i = 0; i < L.plan.nnodes; i++)
        if (routes_node(&L.plan.nodes[i]) && L.plan.nodes[i].kind == LAB_EDGE) start_health((int)i);
    wait_routing("anycast routes", anycast_known, 20);
}

static void print_where(FILE *f)
{
    struct lab_plan *p = &L.plan;
    const struct lab_topo *t = L.topo;
    int dns = lab_plan_find(p, LAB_DNS, 0), lb = lab_plan_find(p, LAB_LB, 0);
    fprintf(f, "lab '%s' up (%s mode, prefix %s, state %s)\n", t->name,
            L.mode == LAB_NETNS ? "namespaces" : "loopback", L.prefix, L.statedir);
    fprintf(f, "  dns      %s:%d (udp/tcp), admin http://%s:%d/metrics\n", p->nodes[dns].addr, LAB_PORT_DNS,
            p->nodes[dns].addr, LAB_PORT_DNS_ADMIN);
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct lab_node *n = &p->nodes[i];
        const char *rn = n->region >= 0 ? lab_topo_reg(t, (size_t)n->region)->name : "-";
        switch (n->kind) {
        case LAB_EDGE:
            fprintf(f, "  edge     %-8s %-4s http://%s:%d https://%s:%d admin http://%s:%d/metrics\n",
                    lab_topo_edge(t, (size_t)n->index)->name, rn, n->addr, LAB_PORT_HTTP, n->addr, LAB_PORT_HTTPS,
                    n->addr, LAB_PORT_EDGE_ADMIN);
            break;
        case LAB_CLIENT:
            fprintf(f, "  clients  %-8s %-4s %s%s%s\n", n->name, rn, p->client_net[n->region], *n->ns ? " in netns " : "",
                    n->ns);
            break;
        case LAB_APP: fprintf(f, "  app      %-8s %-4s http://%s:%d\n", n->name, rn, n->addr, LAB_PORT_APP); break;
        default: break;
        }
    }
    fprintf(f, "  origin   shop-lb  %-4s http://%s:%d admin http://%s:%d/metrics\n",
            lab_topo_reg(t, (size_t)t->origin_region)->name, p->nodes[lb].addr, LAB_PORT_LB, p->nodes[lb].addr,
            LAB_PORT_LB_ADMIN);
    for (size_t i = 0; i < p->nrelays; i++)
        fprintf(f, "  wan      %s-%s one-way %llu ms (cdn-wanrelay)\n", lab_topo_reg(t, (size_t)p->relays[i].ra)->name,
                lab_topo_reg(t, (size_t)p->relays[i].rb)->name, (unsigned long long)p->relays[i].delay_ms);
    const char *const *hn = t->hostnames.items;
    int c0 = lab_plan_find(p, LAB_CLIENT, 0);
    fprintf(f, "try: %s%s%skdig @%s -p %d %s.%s\n", *p->nodes[c0].ns ? "ip netns exec " : "", p->nodes[c0].ns,
            *p->nodes[c0].ns ? " " : "", p->nodes[dns].addr, LAB_PORT_DNS, hn[0], t->zone);
}

static int cmd_down(int quiet);

static int cmd_up(const char *topo, const char *mode, const char *profile)
{
    char p[PATH_MAX];
    path(p, sizeof(p), "state");
    if (access(p, F_OK) == 0) {
        load_state();
        struct proc_rec pr[256];
        size_t n = read_procs(pr, 256), alive = 0;
        for (size_t i = 0; i < n; i++) alive += proc_alive(pr[i].pid, pr[i].start);
        if (alive) die("a lab is already up in %s (%zu processes); `" PROG " down -s %s` first", L.statedir, alive, L.statedir);
        cmd_down(1); /* leftovers of a crashed run */
    }
    identity();
    int can_ns = geteuid() == 0 && run(1, "ip netns list") == 0;
    if (!strcmp(mode, "netns")) {
        if (!can_ns) die("namespaces mode needs root and a working `ip netns`");
        L.mode = LAB_NETNS;
    } else if (!strcmp(mode, "loopback")) {
        L.mode = LAB_LOOPBACK;
    } else {
        L.mode = can_ns ? LAB_NETNS : LAB_LOOPBACK;
    }
    if (!realpath(topo, L.topo_path)) die("%s: %s", topo, strerror(errno));
    if (profile) snprintf(L.profile, sizeof(L.profile), "%.15s", profile);
    load_topology(L.topo_path);
    if (L.topo->anycast.addresses.n && L.mode != LAB_NETNS)
        fprintf(stderr, PROG ": note: anycast needs namespaces mode; anycast names are answered by DNS steering\n");
    /* Everything needed, checked before anything is made. */
    static const char *const progs[] = {"cdn-edge", "cdn-dns", "shop-app", "shop-lb", "cdn-wanrelay", "cdn-health",
                                        "bird", NULL};
    char missing[256] = "";
    for (int i = 0; progs[i]; i++) {
        char x[PATH_MAX];
        if (i == 4 && (L.mode != LAB_NETNS || !L.plan.nrelays)) continue;
        if (i >= 5 && !L.plan.anycast) continue;
        if (find_prog(progs[i], x, sizeof(x)) < 0)
            snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s", progs[i]);
    }
    if (*missing) die("missing programs:%s (not built yet? looked beside %s and in ../edge ../dns ../origin; bird: apt-get install bird2)", missing, L.exedir);
    if (run(1, "openssl version") != 0) die("openssl (the command) is needed for the lab's TLS certificate");
    mkdir(L.statedir, 0755);
    path(p, sizeof(p), "logs");
    mkdir(p, 0755);
    state_add("mode %s", L.mode == LAB_NETNS ? "netns" : "loopback");
    state_add("prefix %s", L.prefix);
    state_add("base %d", L.base);
    state_add("topology %s", L.topo_path);
    state_add("started %ld", (long)time(NULL));
    /* TLS pair for *.zone */
    char crt[PATH_MAX], key[PATH_MAX];
    path(crt, sizeof(crt), "tls.crt");
    path(key, sizeof(key), "tls.key");
    char *oargv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-days", "30", "-subj", "/CN=cdn-lab", "-addext", NULL, "-keyout", key, "-out", crt, NULL};
    char san[300];
    snprintf(san, sizeof(san), "subjectAltName=DNS:*.%s,DNS:%s", L.topo->zone, L.topo->zone);
    oargv[13] = san;
    must(run_argv(oargv, 1), "openssl req (TLS certificate)");
    /* the key the lab's edges know each other by (cdn-edge --edge-key-file): 128 random bits */
    unsigned char rnd[16];
    char hexkey[40];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) die("getrandom: %s", strerror(errno));
    for (size_t i = 0; i < sizeof(rnd); i++) snprintf(hexkey + 2 * i, 3, "%02x", rnd[i]);
    path(p, sizeof(p), "edge.key");
    FILE *kf = fopen(p, "w");
    if (!kf || fprintf(kf, "%s\n", hexkey) < 0 || fclose(kf) != 0) die("cannot write %s", p);
    chmod(p, 0600);
    /* DNS config */
    struct lab_buf b = {0};
    lab_gen_dns_yaml(L.topo, &L.plan, L.statedir, &b);
    path(p, sizeof(p), "dns.yaml");
    FILE *f = fopen(p, "w");
    if (!f || b.oom || fwrite(b.s, 1, b.len, f) != b.len || fclose(f) != 0) die("cannot write %s", p);
    lab_buf_free(&b);
    /* The catalog, generated once for all apps. */
    char prog[PATH_MAX], db[PATH_MAX];
    find_prog("shop-app", prog, sizeof(prog));
    path(db, sizeof(db), "catalog.db");
    struct lab_argv ga = {0};
    lab_argv_add(&ga, "%s", prog);
    lab_argv_add(&ga, "--generate");
    lab_argv_add(&ga, "%u", L.topo->origin.products);
    lab_argv_add(&ga, "--seed");
    lab_argv_add(&ga, "%u", L.topo->origin.seed);
    lab_argv_add(&ga, "--db");
    lab_argv_add(&ga, "%s", db);
    must(run_argv(ga.argv, 1), "shop-app --generate (the catalog)");
    if (L.mode == LAB_NETNS) net_up();
    if (L.plan.anycast) routing_up();
    start_kind(LAB_APP, 20);
    start_kind(LAB_LB, 20);
    start_kind(LAB_EDGE, 30);
    if (L.plan.anycast) anycast_up();
    start_kind(LAB_DNS, 20);
    state_add("up %ld", (long)time(NULL));
    print_where(stdout);
    return 0;
}

static int cmd_down(int quiet)
{
    char p[PATH_MAX];
    path(p, sizeof(p), "state");
    int have = load_state() == 0;
    if (!have) identity();
    struct proc_rec pr[256];
    size_t n = read_procs(pr, 256), killed = 0;
    for (size_t i = 0; i < n; i++)
        if (proc_alive(pr[i].pid, pr[i].start)) {
            stop_pid(pr[i].pid, pr[i].start, SIGTERM);
            killed++;
        }
    for (int t = 0; t < 60; t++) { /* 3 s of grace, then SIGKILL */
        size_t alive = 0;
        for (size_t i = 0; i < n; i++) {
            waitpid(pr[i].pid, NULL, WNOHANG);
            alive += proc_alive(pr[i].pid, pr[i].start);
        }
        if (!alive) break;
        usleep(50000);
    }
    for (size_t i = 0; i < n; i++) stop_pid(pr[i].pid, pr[i].start, SIGKILL);
    size_t left = 0;
    for (int t = 0; t < 40; t++) { /* SIGKILL takes effect at once, but give it up to 2 s */
        left = 0;
        for (size_t i = 0; i < n; i++) {
            waitpid(pr[i].pid, NULL, WNOHANG);
            left += proc_alive(pr[i].pid, pr[i].start);
        }
        if (!left) break;
        usleep(50000);
    }
    /* Namespaces: recorded ones and any other with our prefix (a crash between add and record). */
    size_t nsdel = 0, nsleft = 0;
    DIR *d = opendir("/run/netns");
    if (d) {
        struct dirent *e;
        size_t pl = strlen(L.prefix);
        while ((e = readdir(d)))
            if (!strncmp(e->d_name, L.prefix, pl) && e->d_name[pl] == '-') {
                if (run(1, "ip netns del %s", e->d_name) == 0) nsdel++;
                else nsleft++;
            }
        closedir(d);
    }
    /* The state directory: everything in it is ours. */
    if (have || access(L.statedir, F_OK) == 0) {
        char *argv[] = {"rm", "-rf", "--one-file-system", L.statedir, NULL};
        if (strlen(L.statedir) > 1) run_argv(argv, 1);
    }
    /* whatever is still there (a process SIGKILL did not end, a namespace or the state directory
     * that could not be removed) makes `down` fail: the lab is not down */
    int dirleft = access(L.statedir, F_OK) == 0 || errno != ENOENT;
    if (left || nsleft || dirleft) {
        fprintf(stderr, PROG ": down: %zu processes still running, %zu namespaces not removed, %s %s\n", left, nsleft,
                L.statedir, dirleft ? "NOT removed" : "removed");
        return 1;
    }
    if (!quiet) printf("lab down: %zu processes stopped, %zu namespaces removed, %s removed\n", killed, nsdel, L.statedir);
    return 0;
}

static int cmd_status(void)
{
    if (load_state() < 0) {
        printf("no lab in %s\n", L.statedir);
        return 3;
    }
    load_topology(L.topo_path);
    struct proc_rec pr[256];
    size_t n = read_procs(pr, 256);
    int bad = 0;
    printf("lab '%s' (%s mode, prefix %s, state %s)\n", L.topo->name, L.mode == LAB_NETNS ? "namespaces" : "loopback",
           L.prefix, L.statedir);
    printf("  %-16s %-8s %-6s %s\n", "process", "pid", "alive", "health");
    for (size_t i = 0; i < n; i++) {
        int alive = proc_alive(pr[i].pid, pr[i].start);
        int k = lab_plan_find_name(&L.plan, pr[i].name);
        const char *h = "-";
        if (k >= 0 && alive) h = node_healthy(&L.plan.nodes[k]) ? "ok" : "FAILING";
        if (!alive || !strcmp(h, "FAILING")) bad = 1;
        printf("  %-16s %-8d %-6s %s\n", pr[i].name, (int)pr[i].pid, alive ? "yes" : "NO", h);
    }
    for (size_t i = 0; i < L.plan.nnodes; i++) {
        const struct lab_node *nd = &L.plan.nodes[i];
        if (!routes_node(nd)) continue;
        int total, est = bgp_sessions(nd, &total);
        char ctl[PATH_MAX], out[1024] = "";
        const char *ann = "";
        if (nd->kind == LAB_EDGE) {
            bird_ctl(nd, ctl, sizeof(ctl));
            lab_bird_cmd(ctl, "show protocols anycast", 1000, out, sizeof(out));
            ann = strstr(out, " up ") ? ", anycast announced" : ", anycast WITHDRAWN";
        }
        if (est < 0) printf("  bird %-10s NOT ANSWERING\n", nd->name);
        else printf("  bird %-10s BGP %d/%d established%s\n", nd->name, est, total, est >= 0 ? ann : "");
        if (est < total) bad = 1;
    }
    if (L.mode == LAB_NETNS) {
        size_t have = 0;
        for (size_t i = 0; i < L.plan.nnodes; i++) have += ns_exists(L.plan.nodes[i].ns);
        printf("  namespaces: %zu of %zu present\n", have, L.plan.nnodes);
        if (have != L.plan.nnodes) bad = 1;
        for (size_t i = 0; i < L.plan.nrelays; i++) {
            char sp[PATH_MAX], line[1024] = "";
            path(sp, sizeof(sp), "wan-%s-%s.stats", lab_topo_reg(L.topo, (size_t)L.plan.relays[i].ra)->name,
                 lab_topo_reg(L.topo, (size_t)L.plan.relays[i].rb)->name);
            FILE *f = fopen(sp, "r");
            if (f) {
                if (!fgets(line, sizeof(line), f)) *line = 0;
                fclose(f);
            }
            printf("  relay %s: %s", sp + strlen(L.statedir) + 1, *line ? line : "(no counters yet)\n");
        }
    }
    return bad;
}

int lab_blackhole_attach(const char *ifname, char *err, size_t errlen);
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
    path(p, sizeof(p), "faults.tsv");
    FILE *f = fopen(p, "a");
    if (!f) return;
    fprintf(f, "%.3f\t%s\t%s\n", t, what, node);
    fclose(f);
}

static struct proc_rec *proc_named(struct proc_rec *pr, size_t n, const char *fmt, const char *arg)
{
    char name[64];
    snprintf(name, sizeof(name), fmt, arg);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(pr[i].name, name)) return &pr[i];
    return NULL;
}

/* The routing faults of an anycast edge, and `recover`, which undoes any of them. */
static int anycast_fault(const char *what, int k, struct proc_rec *pr, size_t np)
{
    struct lab_node *n = &L.plan.nodes[k];
    if (!routes_node(n) || n->kind != LAB_EDGE) die("%s: %s is not an anycast edge", what, n->name);
    struct proc_rec *bird = proc_named(pr, np, "bird-%s", n->name), *edge = proc_named(pr, np, "%s", n->name);
    double t = mono_s();
    int rc = 0;
    if (!strcmp(what, "service-down")) {
        /* the edge drains: its /healthz says 503, its health agent withdraws the route, and it
         * serves whatever still arrives meanwhile (`fault kill` is the crash) */
        if (!edge || !proc_alive(edge->pid, edge->start)) die("%s is not running", n->name);
        if (http_call(n->ns, n->addr, LAB_PORT_EDGE_ADMIN, "POST", "/drain") != 200) die("%s: POST /drain failed", n->name);
    } else if (!strcmp(what, "bird-crash") || !strcmp(what, "hang")) {
        if (!bird || !proc_alive(bird->pid, bird->start)) die("bird-%s is not running", n->name);
        stop_pid(bird->pid, bird->start, !strcmp(what, "hang") ? SIGSTOP : SIGKILL);
    } else if (!strcmp(what, "link-down")) {
        must(run(0, "ip -n %s link set up0 down", n->ns), "link set down");
    } else if (!strcmp(what, "blackhole")) {
        must(run(0, "tc -n %s qdisc add dev up0 clsact", n->ns), "tc qdisc add clsact");
        struct bh_arg b = {.ifname = "up0"};
        if (in_ns(n->ns, do_blackhole, &b) < 0) {
            run(1, "tc -n %s qdisc del dev up0 clsact", n->ns);
            die("blackhole on %s: %s", n->name, *b.err ? b.err : "cannot enter the namespace");
        }
    } else if (!strcmp(what, "recover")) {
        if (bird && proc_alive(bird->pid, bird->start)) stop_pid(bird->pid, bird->start, SIGCONT);
        run(1, "tc -n %s qdisc del dev up0 clsact", n->ns);
        run(1, "ip -n %s link set up0 up", n->ns);
        run(1, "ip -n %s route replace default via %s", n->ns, n->gw);
        if (!bird || !proc_alive(bird->pid, bird->start)) start_bird(k);
        if (!edge || !proc_alive(edge->pid, edge->start)) {
            struct lab_argv a = {0};
            cmd_for(k, &a);
            start_proc(n, n->name, &a);
        } else if (http_call(n->ns, n->addr, LAB_PORT_EDGE_ADMIN, "DELETE", "/drain") != 200) {
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
static int cmd_fault(const char *what, const char *host)
{
    if (load_state() < 0) die("no lab in %s", L.statedir);
    load_topology(L.topo_path);
    char name[40];
    int k = lab_plan_find_name(&L.plan, host);
    if (k < 0) {
        snprintf(name, sizeof(name), "e-%s", host); /* edges by their topology name */
        k = lab_plan_find_name(&L.plan, name);
    }
    if (k < 0) die("no host '%s' in this lab", host);
    struct lab_node *n = &L.plan.nodes[k];
    struct proc_rec pr[256];
    size_t np = read_procs(pr, 256);
    struct proc_rec *me = NULL;
    for (size_t i = 0; i < np; i++)
        if (!strcmp(pr[i].name, n->name)) me = &pr[i];
    if (!strcmp(what, "service-down") || !strcmp(what, "bird-crash") || !strcmp(what, "hang") ||
        !strcmp(what, "link-down") || !strcmp(what, "blackhole") || !strcmp(what, "recover")) {
        int rc = anycast_fault(what, k, pr, np) != 0;
        state_add("fault %ld %s %s", (long)time(NULL), what, n->name);
        return rc;
    }
    double t0 = mono_s();
    int rc = 0;
    if (!strcmp(what, "kill")) {
        if (!me || !proc_alive(me->pid, me->start)) die("%s is not running", n->name);
        stop_pid(me->pid, me->start, SIGKILL);
        for (int t = 0; t < 40 && proc_alive(me->pid, me->start); t++) usleep(50000);
        if (proc_alive(me->pid, me->start)) die("%s (pid %d) still running after SIGKILL", n->name, (int)me->pid);
        printf("killed %s (pid %d)\n", n->name, (int)me->pid);
    } else if (!strcmp(what, "restart") || !strcmp(what, "slow")) {
        if (me && proc_alive(me->pid, me->start)) {
            stop_pid(me->pid, me->start, SIGTERM);
            for (int t = 0; t < 60 && proc_alive(me->pid, me->start); t++) usleep(50000);
            stop_pid(me->pid, me->start, SIGKILL);
        }
        struct lab_argv a = {0};
        cmd_for(k, &a);
        if (!a.argc) die("%s is not a daemon", n->name);
        if (!strcmp(what, "slow")) {
            if (n->kind != LAB_APP) die("slow: only shop-apps have a service delay");
            lab_argv_add(&a, "--delay");
            lab_argv_add(&a, "200");
        }
        pid_t pid = start_proc(n, n->name, &a);
        for (int t = 0; t < 200 && !node_healthy(n); t++) usleep(50000);
        int healthy = node_healthy(n);
        printf("%s %s (pid %d)%s\n", !strcmp(what, "slow") ? "slowed (200 ms per request)" : "restarted", n->name, (int)pid,
               healthy ? "" : ", NOT healthy after 10 s");
        if (!healthy) {
            fprintf(stderr, PROG ": %s not healthy after 10 s; its log:\n", n->name);
            tail_log(n->name);
            rc = 1;
        }
    } else if (!strcmp(what, "isolate") || !strcmp(what, "heal")) {
        int iso = !strcmp(what, "isolate");
        if (L.mode == LAB_NETNS) {
            must(run(0, "ip -n %s link set up0 %s", n->ns, iso ? "down" : "up"), "link set");
            if (!iso && *n->gw) run(1, "ip -n %s route replace default via %s", n->ns, n->gw);
        } else {
            /* no links on loopback: a stopped process is the closest to a cut cable */
            if (!me || !proc_alive(me->pid, me->start)) die("%s is not running", n->name);
            stop_pid(me->pid, me->start, iso ? SIGSTOP : SIGCONT);
        }
        printf("%s %s\n", iso ? "isolated" : "healed", n->name);
    } else {
        die("fault: kill|restart|isolate|heal|slow HOST, or service-down|bird-crash|link-down|blackhole|hang|recover EDGE");
    }
    fault_record(t0, what, n->name); /* at the time it began, once it was done */
    state_add("fault %ld %s %s", (long)time(NULL), what, n->name);
    return rc;
}

int lab_cmd_load(struct lab_run *r, int argc, char **argv);
int lab_cmd_report(struct lab_run *r, int argc, char **argv);

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " [-s STATEDIR] [-v] COMMAND ...\n"
               "  up [--mode auto|netns|loopback] [--profile realistic|tuned|bfd] TOPOLOGY.yaml\n"
               "                                                bring the lab up, print where things are\n"
               "  down                                          remove every process, namespace and file (idempotent)\n"
               "  status                                        processes, health, namespaces, relay counters\n"
               "  fault kill|restart|isolate|heal|slow HOST     HOST: eu1 (an edge), dns, lb, app2, ...\n"
               "  fault service-down|bird-crash|link-down|blackhole|hang|recover EDGE   anycast faults\n"
               "                                                (service-down drains the edge; kill is the crash)\n"
               "  load [cdn-load options]                       one cdn-load per region, from its clients\n"
               "  report [-o DIR]                               hit ratios, offload, latency, plots into DIR\n"
               "                                                (default STATEDIR/report, removed by down)\n"
               "  rtt [-n SAMPLES] [-q]                         measured round trip per region pair (also run by load)\n"
               "  env                                           shell variables describing the lab\n"
               "STATEDIR defaults to $CDN_LAB_DIR or /tmp/cdn-lab-$UID.\n");
}

static int cmd_env(void)
{
    if (load_state() < 0) die("no lab in %s", L.statedir);
    load_topology(L.topo_path);
    struct lab_plan *p = &L.plan;
    printf("LAB_MODE=%s\nLAB_PREFIX=%s\nLAB_STATE=%s\n", L.mode == LAB_NETNS ? "netns" : "loopback", L.prefix, L.statedir);
    printf("LAB_DNS=%s:%d\n", p->nodes[lab_plan_find(p, LAB_DNS, 0)].addr, LAB_PORT_DNS);
    printf("LAB_LB=%s:%d\n", p->nodes[lab_plan_find(p, LAB_LB, 0)].addr, LAB_PORT_LB);
    printf("LAB_LB_ADMIN=%s:%d\n", p->nodes[lab_plan_find(p, LAB_LB, 0)].addr, LAB_PORT_LB_ADMIN);
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct lab_node *n = &p->nodes[i];
        char v[40];
        snprintf(v, sizeof(v), "%s", n->name);
        for (char *c = v; *c; c++)
            if (!isalnum((unsigned char)*c)) *c = '_';
        printf("LAB_ADDR_%s=%s\nLAB_NS_%s=%s\n", v, n->addr, v, n->ns);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"state", required_argument, NULL, 's'}, {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *sd = getenv("CDN_LAB_DIR");
    char def[64];
    snprintf(def, sizeof(def), "/tmp/cdn-lab-%d", (int)getuid());
    int c;
    while ((c = getopt_long(argc, argv, "+s:vh", lo, NULL)) != -1) {
        switch (c) {
        case 's': sd = optarg; break;
        case 'v': L.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (!sd) sd = def;
    /* An absolute path: the state must be found again from any directory. */
    if (*sd == '/') snprintf(L.statedir, sizeof(L.statedir), "%s", sd);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd))) die("getcwd");
        snprintf(L.statedir, sizeof(L.statedir), "%.2000s/%.2000s", cwd, sd);
    }
    size_t sl = strlen(L.statedir);
    while (sl > 1 && L.statedir[sl - 1] == '/') L.statedir[--sl] = 0;
    if (!strcmp(L.statedir, "/")) die("refusing / as the state directory");
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *s = strrchr(exe, '/');
        if (s) *s = 0;
        snprintf(L.exedir, sizeof(L.exedir), "%s", exe);
    }
    identity();
    signal(SIGPIPE, SIG_IGN);
    const char *cmd = argv[optind];
    argc -= optind;
    argv += optind;
    if (!strcmp(cmd, "up")) {
        const char *mode = "auto", *profile = NULL;
        optind = 1;
        static const struct option uo[] = {{"mode", required_argument, NULL, 'm'}, {"profile", required_argument, NULL, 'p'},
                                           {NULL, 0, NULL, 0}};
        while ((c = getopt_long(argc, argv, "m:p:", uo, NULL)) != -1)
            if (c == 'm') mode = optarg;
            else if (c == 'p') profile = optarg;
            else return 2;
        if (optind != argc - 1) die("up TOPOLOGY.yaml");
        return cmd_up(argv[optind], mode, profile);
    }
    if (!strcmp(cmd, "down")) return cmd_down(0);
    if (!strcmp(cmd, "status")) return cmd_status();
    if (!strcmp(cmd, "env")) return cmd_env();
    if (!strcmp(cmd, "fault")) {
        if (argc != 3) die("fault kill|restart|isolate|heal|slow HOST, or service-down|bird-crash|link-down|blackhole|hang|recover EDGE");
        return cmd_fault(argv[1], argv[2]);
    }
    if (!strcmp(cmd, "load") || !strcmp(cmd, "report") || !strcmp(cmd, "rtt")) {
        if (load_state() < 0) die("no lab in %s (cdn-lab up first)", L.statedir);
        load_topology(L.topo_path);
        struct lab_run r = {.statedir = L.statedir, .exedir = L.exedir, .topo = L.topo, .plan = &L.plan,
                            .http_get = http_get, .ns_socket = ns_socket};
        if (!strcmp(cmd, "rtt")) return lab_cmd_rtt(&r, argc, argv);
        return !strcmp(cmd, "load") ? lab_cmd_load(&r, argc, argv) : lab_cmd_report(&r, argc, argv);
    }
    usage(stderr);
    return 2;
}
