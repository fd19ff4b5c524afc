/* lab/cdnlab/db.c - the lab's PostgreSQL (a topology's `db: {primary: REGION, replicas: [REGION...]}`):
 * `cdn-lab up` initialises the primary (initdb), copies each replica from it (pg_basebackup -R,
 * streaming, hot standby), runs every server in its own namespace in its region (a replica in
 * another region sits behind the WAN delay), generates the catalog into the primary and writes
 * the apps' `db:` (STATE/shop-db.yaml); `down` stops them with the other recorded processes.
 * `status` shows each replica's lag (pg_stat_replication); the faults replica-down, primary-down,
 * db-start and promote are here.
 *
 * The servers are Debian's PostgreSQL 15 (/usr/lib/postgresql/15/bin, or $CDN_LAB_PG_BIN). They
 * refuse to run as root: as root they run as the `postgres` user (setpriv, which execs in place,
 * so the recorded pid is the postmaster's). Authentication is `trust` for the user `shop` from the
 * lab's own addresses: the lab's networks are namespaces nobody else reaches.
 *
 * The apps follow a promotion by themselves: their primary is a multi-host URL (every server,
 * target_session_attrs=read-write: libpq connects to whichever takes writes) and their replica
 * one that prefers a standby (the nearest replica first, the primary when no standby answers). */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"
#include "lab/cdnlab/labrun.h"

static const char *pg_bin(void)
{
    const char *b = getenv("CDN_LAB_PG_BIN");
    return b && *b ? b : "/usr/lib/postgresql/15/bin";
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* argv prefix: the namespace (ns may be NULL: here), then the postgres user when we are root */
static void prefix(struct lab_argv *a, const char *ns)
{
    if (ns && *ns) {
        lab_argv_add(a, "ip");
        lab_argv_add(a, "netns");
        lab_argv_add(a, "exec");
        lab_argv_add(a, "%s", ns);
    }
    if (geteuid() == 0) {
        lab_argv_add(a, "setpriv");
        lab_argv_add(a, "--reuid=postgres");
        lab_argv_add(a, "--regid=postgres");
        lab_argv_add(a, "--init-groups");
    } else {
        lab_argv_add(a, "env"); /* lab_start_proc finds argv[0] by name: PostgreSQL's are not on PATH */
    }
}

static const struct lab_node *db_node(unsigned i)
{
    int k = lab_plan_find(&L.plan, LAB_DB, (int)i);
    if (k < 0) lab_die("no database server %u in this lab", i);
    return &L.plan.nodes[k];
}

static void url_of(const struct lab_node *n, char *out, size_t len)
{
    snprintf(out, len, "postgresql://shop@%s:%d/postgres", n->addr, LAB_PORT_DB);
}

/* Does the server answer a query (psql from inside its namespace)? */
static int answers(const struct lab_node *n)
{
    char url[128];
    url_of(n, url, sizeof(url));
    return lab_runf(1, "%s%s%spsql -Atqc select(1) %s", *n->ns ? "ip netns exec " : "", n->ns, *n->ns ? " " : "", url) == 0;
}

/* One line of a query's output (psql -At), run inside node's namespace; -1 when psql fails. */
static int query(const struct lab_node *n, const char *sql, char *out, size_t len)
{
    char cmd[1024], url[128];
    url_of(n, url, sizeof(url));
    snprintf(cmd, sizeof(cmd), "%s%s%spsql -AtqF ' ' -c \"%s\" %s 2>/dev/null", *n->ns ? "ip netns exec " : "", n->ns,
             *n->ns ? " " : "", sql, url);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t got = fread(out, 1, len - 1, p);
    out[got] = '\0';
    int rc = pclose(p);
    return rc == 0 ? 0 : -1;
}

static pid_t start_server(unsigned i)
{
    const struct lab_node *n = db_node(i);
    char dir[PATH_MAX];
    lab_path(dir, sizeof(dir), "%s", n->name);
    struct lab_argv a = {0};
    prefix(&a, NULL); /* lab_start_proc enters the namespace itself */
    lab_argv_add(&a, "%s/postgres", pg_bin());
    lab_argv_add(&a, "-D");
    lab_argv_add(&a, "%s/data", dir);
    lab_argv_add(&a, "-p");
    lab_argv_add(&a, "%d", LAB_PORT_DB);
    lab_argv_add(&a, "-k");
    lab_argv_add(&a, "%s", dir);
    lab_argv_add(&a, "-c");
    lab_argv_add(&a, "listen_addresses=%s", n->addr);
    lab_argv_add(&a, "-c");
    lab_argv_add(&a, "fsync=off");
    lab_argv_add(&a, "-c");
    lab_argv_add(&a, "shared_buffers=32MB");
    lab_argv_add(&a, "-c");
    lab_argv_add(&a, "wal_keep_size=256MB"); /* a replica that was down a while catches up from here */
    pid_t pid = lab_start_proc(n, n->name, &a);
    for (int t = 0; t < 400; t++) {
        if (answers(n)) return pid;
        usleep(50000);
    }
    lab_tail_log(n->name);
    lab_die("%s did not answer within 20 s; to clean up:\n  " PROG " -s %s down", n->name, L.statedir);
}

static void owned_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) lab_die("mkdir %s: %s", dir, strerror(errno));
    if (geteuid() == 0 && lab_runf(1, "chown postgres: %s", dir) != 0) lab_die("chown postgres %s", dir);
}

void lab_db_check(void)
{
    char p[PATH_MAX];
    if (!L.topo->db_servers) return;
    snprintf(p, sizeof(p), "%s/postgres", pg_bin());
    if (access(p, X_OK) != 0)
        lab_die("db: needs PostgreSQL 15's binaries in %s (apt-get install postgresql; or set CDN_LAB_PG_BIN)", pg_bin());
    if (lab_runf(1, "psql --version") != 0) lab_die("db: needs psql (apt-get install postgresql-client)");
    if (geteuid() == 0 && lab_runf(1, "id postgres") != 0) lab_die("db: as root the servers run as the postgres user; there is none");
}

void lab_db_up(void)
{
    const struct lab_topo *t = L.topo;
    if (!t->db_servers) return;
    if (geteuid() == 0) { /* the postgres user reaches its folders */
        chmod(L.statedir, 0711);
        if (lab_runf(1, "setpriv --reuid=postgres --regid=postgres --init-groups test -x %s", L.statedir) != 0)
            lab_die("db: the postgres user cannot reach %s (a parent folder without o+x?); to clean up:\n  " PROG " -s %s down",
                    L.statedir, L.statedir);
    }
    const struct lab_node *pn = db_node(0);
    char dir[PATH_MAX], url[128];
    lab_path(dir, sizeof(dir), "%s", pn->name);
    owned_dir(dir);
    struct lab_argv a = {0};
    prefix(&a, NULL);
    lab_argv_add(&a, "%s/initdb", pg_bin());
    lab_argv_add(&a, "-D");
    lab_argv_add(&a, "%s/data", dir);
    lab_argv_add(&a, "-A");
    lab_argv_add(&a, "trust");
    lab_argv_add(&a, "-U");
    lab_argv_add(&a, "shop");
    lab_argv_add(&a, "-E");
    lab_argv_add(&a, "UTF8");
    lab_argv_add(&a, "--no-sync");
    lab_must(lab_run_argv(a.argv, 1), "initdb (the database primary)");
    /* the lab's addresses may connect and replicate */
    char hba[PATH_MAX + 32];
    snprintf(hba, sizeof(hba), "%s/data/pg_hba.conf", dir);
    FILE *f = fopen(hba, "a");
    if (!f || fprintf(f, "# cdn-lab: the lab's own networks\nhost all shop 198.18.0.0/15 trust\n"
                         "host replication shop 198.18.0.0/15 trust\nhost all shop 127.0.0.0/8 trust\n"
                         "host replication shop 127.0.0.0/8 trust\n") < 0 || fclose(f) != 0)
        lab_die("cannot write %s", hba);
    start_server(0);
    url_of(pn, url, sizeof(url));
    /* the catalog: the same generator as the SQLite file's, copied in (COPY) */
    char prog[PATH_MAX];
    lab_find_prog("shop-app", prog, sizeof(prog));
    lab_must(lab_runf(1, "%s%s%s%s --generate %u --seed %u --db %s", *pn->ns ? "ip netns exec " : "", pn->ns,
                      *pn->ns ? " " : "", prog, t->origin.products, t->origin.seed, url),
             "shop-app --generate into the primary");
    for (unsigned i = 1; i < t->db_servers; i++) {
        const struct lab_node *rn = db_node(i);
        char rdir[PATH_MAX];
        lab_path(rdir, sizeof(rdir), "%s", rn->name);
        owned_dir(rdir);
        struct lab_argv b = {0};
        prefix(&b, rn->ns);
        lab_argv_add(&b, "%s/pg_basebackup", pg_bin());
        lab_argv_add(&b, "-d");
        lab_argv_add(&b, "postgresql://shop@%s:%d/postgres?application_name=%s", pn->addr, LAB_PORT_DB, rn->name);
        lab_argv_add(&b, "-D");
        lab_argv_add(&b, "%s/data", rdir);
        lab_argv_add(&b, "-R");
        lab_argv_add(&b, "-X");
        lab_argv_add(&b, "stream");
        lab_argv_add(&b, "-c");
        lab_argv_add(&b, "fast");
        lab_must(lab_run_argv(b.argv, 1), "pg_basebackup (a database replica)");
        start_server(i);
    }
    /* the apps' db: the primary is whichever server takes writes; the replica the nearest standby */
    unsigned near = 0;
    for (unsigned i = 1; i < t->db_servers; i++)
        if (!near || (t->db_region[i] == t->origin_region && t->db_region[near] != t->origin_region)) near = i;
    char hosts[512] = "", rhosts[512] = "";
    for (unsigned i = 0; i < t->db_servers; i++)
        snprintf(hosts + strlen(hosts), sizeof(hosts) - strlen(hosts), "%s%s:%d", i ? "," : "", db_node(i)->addr, LAB_PORT_DB);
    snprintf(rhosts, sizeof(rhosts), "%s:%d", db_node(near)->addr, LAB_PORT_DB);
    for (unsigned i = 0; i < t->db_servers; i++)
        if (i != near)
            snprintf(rhosts + strlen(rhosts), sizeof(rhosts) - strlen(rhosts), ",%s:%d", db_node(i)->addr, LAB_PORT_DB);
    char conf[PATH_MAX];
    lab_path(conf, sizeof(conf), "shop-db.yaml");
    f = fopen(conf, "w");
    if (!f || fprintf(f, "# written by cdn-lab up: the shop-apps' database (docs/ORIGIN.md)\ndb:\n"
                         "  primary: \"postgresql://shop@%s/postgres?target_session_attrs=read-write\"\n"
                         "  replica: \"postgresql://shop@%s/postgres?target_session_attrs=prefer-standby\"\n"
                         "  read_your_writes: %llums\n  timeout: 2s\n",
                      hosts, rhosts, (unsigned long long)(t->db.ryw_ms ? t->db.ryw_ms : 5000)) < 0 ||
        fclose(f) != 0)
        lab_die("cannot write %s", conf);
}

void lab_db_outbox_start(void)
{
    if (!L.topo->db_servers) return;
    /* beside the purge bus (cdn-dns's namespace): cdn-purge's round trips to Redis stay local (from
     * the primary's region they cost ~450 ms over the WAN); the NOTIFY carries the row, so the
     * primary is one crossing away */
    const struct lab_node *host = &L.plan.nodes[lab_plan_find(&L.plan, LAB_DNS, 0)];
    struct lab_argv a = {0};
    lab_argv_add(&a, "cdn-lab");
    lab_argv_add(&a, "-s");
    lab_argv_add(&a, "%s", L.statedir);
    lab_argv_add(&a, "outbox");
    lab_start_proc(host, "outbox", &a);
}

void lab_db_where(FILE *f)
{
    const struct lab_topo *t = L.topo;
    for (unsigned i = 0; i < t->db_servers; i++) {
        const struct lab_node *n = db_node(i);
        fprintf(f, "  db       %-10s %-4s postgresql://shop@%s:%d/postgres%s\n", n->name,
                lab_topo_reg(t, (size_t)n->region)->name, n->addr, LAB_PORT_DB, i ? " (replica)" : "");
    }
}

/* Replication as the primary sees it: one line per server and per replica, to a and b (b may be NULL). */
static void db_status2(FILE *a, FILE *b)
{
    if (!L.topo->db_servers) return;
    for (unsigned i = 0; i < L.topo->db_servers; i++) {
        const struct lab_node *n = db_node(i);
        char out[2048];
        if (query(n, "SELECT pg_is_in_recovery()", out, sizeof(out)) != 0) {
            lab_out2(a, b, "  db %-10s NOT ANSWERING\n", n->name);
            continue;
        }
        int standby = out[0] == 't';
        lab_out2(a, b, "  db %-10s %s\n", n->name, standby ? "standby" : "primary (takes writes)");
        if (standby) continue;
        if (query(n, "SELECT application_name, state, COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0),"
                     " COALESCE(round(EXTRACT(epoch FROM replay_lag) * 1000, 1), 0) FROM pg_stat_replication",
                  out, sizeof(out)) != 0)
            continue;
        char *save = NULL;
        for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            char app[64], st[32];
            double bytes, ms;
            if (sscanf(l, "%63s %31s %lf %lf", app, st, &bytes, &ms) == 4)
                lab_out2(a, b, "     replica %-10s %-10s replay lag %.0f bytes, %.1f ms\n", app, st, bytes, ms);
        }
    }
}

void lab_db_status(FILE *f) { db_status2(f, NULL); }

/* The report's database section: the servers and their lag now, and where the apps' reads went
 * during the load run (their /metrics before and after). */
void lab_report_db(const struct lab_run *r, FILE *o, FILE *rf)
{
    if (!L.topo->db_servers) return;
    lab_out2(o, rf, "\n== Database (PostgreSQL; lag as of the report)\n");
    db_status2(o, rf);
    static const char *const from[] = {"replica", "primary_ryw", "primary_fallback", "primary_write"};
    double v[4] = {0}, qerr = 0, lost = 0;
    for (size_t i = 0; i < r->plan->nnodes; i++) {
        const struct lab_node *n = &r->plan->nodes[i];
        if (n->kind != LAB_APP) continue;
        for (int k = 0; k < 4; k++) {
            char m[64];
            snprintf(m, sizeof(m), "from=\"%s\"", from[k]);
            v[k] += lab_metric_delta(r, n->name, "shop_db_reads_total", m);
        }
        qerr += lab_metric_delta(r, n->name, "shop_db_queries_total", "result=\"error\"");
        lost += lab_metric_delta(r, n->name, "shop_db_connections_lost_total", NULL);
    }
    lab_out2(o, rf, "  the apps' reads during the run: %.0f from the replica, %.0f from the primary for read-your-writes, "
                    "%.0f from the primary as the replica's fallback, %.0f for writes; %.0f queries failed, %.0f "
                    "connections lost\n", v[0], v[1], v[2], v[3], qerr, lost);
}

/* A cart write through shop-lb from the lb's namespace: its status (-1: no connection). */
static int write_once(void)
{
    const struct lab_node *lb = &L.plan.nodes[lab_plan_find(&L.plan, LAB_LB, 0)];
    return lab_http_call(lb->ns, lb->addr, LAB_PORT_LB, "POST", "/api/cart?add=1");
}

/* curl from inside the lb's namespace to shop-lb; its body (at most len) in out. 0, or -1. */
static int curl_lb(const char *args, char *out, size_t len)
{
    const struct lab_node *lb = &L.plan.nodes[lab_plan_find(&L.plan, LAB_LB, 0)];
    char cmd[6000];
    snprintf(cmd, sizeof(cmd), "%s%s%scurl -s -m 5 %s", *lb->ns ? "ip netns exec " : "", lb->ns, *lb->ns ? " " : "", args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t got = fread(out, 1, len - 1, p);
    out[got] = '\0';
    return pclose(p) == 0 ? 0 : -1;
}

/* A cookie's value from a curl cookie jar (the last column of its line). */
static int jar_get(const char *jar, const char *name, char *out, size_t len)
{
    FILE *f = fopen(jar, "r");
    char line[512];
    int found = -1;
    if (!f) return -1;
    while (fgets(line, sizeof(line), f)) {
        char c[7][256];
        /* HttpOnly cookies come as "#HttpOnly_host ..." lines */
        if ((line[0] != '#' || !strncmp(line, "#HttpOnly_", 10)) && sscanf(line, "%255s %255s %255s %255s %255s %255s %255s", c[0], c[1], c[2], c[3], c[4], c[5],
                                     c[6]) == 7 && !strcmp(c[5], name)) {
            snprintf(out, len, "%s", c[6]);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

/* lag DB: replay paused on the replica the apps read from; a client writes its cart through
 * shop-lb and reads it back with its cookies (sid and the read-your-writes mark dbw) and with its
 * sid only; then replay resumes and the replica catches up. */
static int lag_check(const struct lab_node *n, double t0)
{
    const struct lab_node *lb = &L.plan.nodes[lab_plan_find(&L.plan, LAB_LB, 0)];
    char out[8192], args[5000], jar[PATH_MAX], sid[256] = "", dbw[256] = "";
    if (query(n, "SELECT pg_wal_replay_pause()", out, sizeof(out)) != 0) lab_die("lag: %s is not a standby", n->name);
    lab_path(jar, sizeof(jar), "lag.jar");
    unlink(jar);
    snprintf(args, sizeof(args), "-c '%s' -X POST 'http://%s:%d/api/cart?add=7&qty=2'", jar, lb->addr, LAB_PORT_LB);
    if (curl_lb(args, out, sizeof(out)) != 0 || jar_get(jar, "sid", sid, sizeof(sid)) != 0 || jar_get(jar, "dbw", dbw, sizeof(dbw)) != 0)
        lab_die("lag: the cart write through shop-lb failed: %.200s", out);
    double tw = mono_s();
    snprintf(args, sizeof(args), "-b 'sid=%s; dbw=%s' 'http://%s:%d/api/cart'", sid, dbw, lb->addr, LAB_PORT_LB);
    int own = curl_lb(args, out, sizeof(out)) == 0 && strstr(out, "\"id\":7,\"qty\":2") != NULL;
    snprintf(args, sizeof(args), "-b 'sid=%s' 'http://%s:%d/api/cart'", sid, lb->addr, LAB_PORT_LB);
    int stale = curl_lb(args, out, sizeof(out)) == 0 && strstr(out, "\"id\":7") == NULL;
    double paused = mono_s() - t0;
    query(n, "SELECT pg_wal_replay_resume()", out, sizeof(out));
    double tr = mono_s(), caught = -1;
    for (int t = 0; t < 200; t++) {
        if (curl_lb(args, out, sizeof(out)) == 0 && strstr(out, "\"id\":7") != NULL) {
            caught = mono_s() - tr;
            break;
        }
        usleep(50000);
    }
    printf("lag %s: replay paused %.2f s; the writer read its own cart (sid + dbw, from the primary): %s; "
           "the same sid without dbw (the replica): %s; replay resumed, the replica had the cart after %.2f s\n",
           n->name, paused, own ? "yes" : "NO", stale ? "the older cart (the lag shows)" : "the new cart", caught);
    (void)tw;
    return own ? 0 : 1;
}

/* replica-down|primary-down|db-start|promote|lag HOST; -1 when what is none of them. */
int lab_db_fault(const char *what, int k, struct lab_proc_rec *pr, size_t np)
{
    const struct lab_node *n = &L.plan.nodes[k];
    int down = !strcmp(what, "replica-down") || !strcmp(what, "primary-down");
    if (!down && strcmp(what, "db-start") && strcmp(what, "promote") && strcmp(what, "lag")) return -1;
    if (n->kind != LAB_DB) lab_die("%s: %s is not a database server (db-primary, db-r1, ...)", what, n->name);
    struct lab_proc_rec *me = NULL, *prim = NULL;
    for (size_t i = 0; i < np; i++) {
        if (!strcmp(pr[i].name, n->name)) me = &pr[i];
        if (!strcmp(pr[i].name, "db-primary")) prim = &pr[i];
    }
    double t0 = mono_s();
    if (!strcmp(what, "lag")) {
        if (n->index == 0) lab_die("lag: name a replica (db-r1, ...)");
        return lag_check(n, t0);
    }
    if (down) {
        if (!me || !lab_proc_alive(me->pid, me->start)) lab_die("%s is not running", n->name);
        lab_stop_pid(me->pid, me->start, SIGINT); /* fast shutdown: clients are cut at once */
        for (int t = 0; t < 200 && lab_proc_alive(me->pid, me->start); t++) usleep(50000);
        int st = write_once();
        printf("%s %s (stopped in %.2f s); a cart write through shop-lb now answers %d\n", what, n->name, mono_s() - t0, st);
    } else if (!strcmp(what, "db-start")) {
        if (me && lab_proc_alive(me->pid, me->start)) lab_die("%s is running", n->name);
        start_server((unsigned)n->index);
        printf("started %s in %.2f s\n", n->name, mono_s() - t0);
    } else { /* promote: the primary goes (if it still runs), the replica takes writes, the apps follow */
        if (n->index == 0) lab_die("promote: name a replica (db-r1, ...)");
        if (prim && lab_proc_alive(prim->pid, prim->start)) {
            lab_stop_pid(prim->pid, prim->start, SIGINT);
            for (int t = 0; t < 200 && lab_proc_alive(prim->pid, prim->start); t++) usleep(50000);
        }
        double tp = mono_s();
        char out[256];
        if (query(n, "SELECT pg_promote(true, 30)", out, sizeof(out)) != 0 || out[0] != 't')
            lab_die("promote: pg_promote() on %s failed", n->name);
        double tpr = mono_s(), tw = 0;
        /* the other replicas stream from the new primary (primary_conninfo reloads; they follow its
         * new timeline: recovery_target_timeline is 'latest') */
        int repointed = 0;
        for (unsigned i = 1; i < L.topo->db_servers; i++) {
            const struct lab_node *o = db_node(i);
            char sql[512];
            if (o == n) continue;
            snprintf(sql, sizeof(sql), "ALTER SYSTEM SET primary_conninfo = 'host=%s port=%d user=shop application_name=%s'",
                     n->addr, LAB_PORT_DB, o->name);
            if (query(o, sql, out, sizeof(out)) == 0 && query(o, "SELECT pg_reload_conf()", out, sizeof(out)) == 0) repointed++;
        }
        int st = -1;
        for (int t = 0; t < 600; t++) {
            if ((st = write_once()) == 200) {
                tw = mono_s();
                break;
            }
            usleep(50000);
        }
        if (st != 200) lab_die("promote: writes still fail (%d) 30 s after promoting %s", st, n->name);
        printf("promoted %s: the primary stopped in %.2f s, pg_promote() took %.2f s, writes answered 200 again "
               "%.2f s after the fault began (the write outage); %d other replica%s now stream%s from it\n", n->name,
               tp - t0, tpr - tp, tw - t0, repointed, repointed == 1 ? "" : "s", repointed == 1 ? "s" : "");
    }
    return 0;
}
