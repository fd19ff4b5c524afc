/* lab/cdnlab/outbox.c - a price change end to end, on a lab with a database (db:):
 * `cdn-lab change price ID CENTS` updates the product on the primary; a trigger on products
 * (made by shop-app --generate, origin/shop/db_pg.c) writes the affected tags into the table
 * purge_outbox in the same transaction and NOTIFYs with the row; `cdn-lab outbox` (started by `up`
 * beside the purge bus, logs/outbox.log) takes each row, waits until it is visible on every replica (an
 * edge refetching from an app that reads a lagging replica would cache the old price again),
 * publishes the tags on the purge bus with `cdn-purge --wait`, and deletes the row only then: an
 * outbox, so a relay that dies between the commit and the publication loses nothing (the row
 * waits for the next one). One line per change in its log:
 *   outbox ID TAGS committed MS picked MS replayed MS published MS acked MS
 * (wall-clock milliseconds; lab/price-trials reads them). */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "lab/cdnlab/labctl.h"

static long long wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The apps' primary URL: every server, the one that takes writes (follows a promotion). */
static void primary_url(char *out, size_t len)
{
    size_t o = (size_t)snprintf(out, len, "postgresql://shop@");
    for (unsigned i = 0; i < L.topo->db_servers && o < len; i++) {
        int k = lab_plan_find(&L.plan, LAB_DB, (int)i);
        o += (size_t)snprintf(out + o, len - o, "%s%s:%d", i ? "," : "", L.plan.nodes[k].addr, LAB_PORT_DB);
    }
    if (o < len) snprintf(out + o, len - o, "/postgres?target_session_attrs=read-write&connect_timeout=2");
}

static int tags_ok(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == ' ')) return 0;
    return 1;
}

/* The replicas, asked directly for their replay position: pg_stat_replication on the primary
 * only learns it when a standby reports (every ~200 ms here), which was most of a change's delay. */
static PGconn *replicas[LAB_MAX_REPLICAS];

static int replica_behind(unsigned i, const char *id)
{
    if (replicas[i] == NULL || PQstatus(replicas[i]) != CONNECTION_OK) {
        char url[256];
        int k = lab_plan_find(&L.plan, LAB_DB, (int)i + 1);
        PQfinish(replicas[i]);
        snprintf(url, sizeof(url), "postgresql://shop@%s:%d/postgres?connect_timeout=1", L.plan.nodes[k].addr, LAB_PORT_DB);
        replicas[i] = PQconnectdb(url);
        if (PQstatus(replicas[i]) != CONNECTION_OK) return -1;
    }
    const char *pv[1] = {id};
    /* the outbox row is visible there: the change's commit is replayed (exact, no LSN needed); a
     * promoted server (no longer in recovery) has nothing to wait for */
    PGresult *r = PQexecParams(replicas[i], "SELECT pg_is_in_recovery() AND NOT EXISTS (SELECT 1 FROM purge_outbox WHERE id = $1)",
                               1, NULL, pv, NULL, NULL, 0);
    int behind = PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0)[0] == 't' : -1;
    PQclear(r);
    return behind;
}

static volatile sig_atomic_t stop;
static long long done_max; /* the highest row published: a scan and a notification may both bring one */
static void on_term(int sig) { (void)sig; stop = 1; }

/* Publishes one row; 0 when the bus took it (then the row goes). */
static int relay_row(PGconn *pg, const char *purge, const char *redis, const char *key, const char *id, const char *tags,
                     const char *committed)
{
    if (strtoll(id, NULL, 10) <= done_max) return 0;
    /* every replica past the change first (one that does not answer is not waited for: it reads
     * nothing for anyone while it is down) */
    long long t0 = wall_ms(), replayed = 0;
    (void)pg;
    while (wall_ms() - t0 < 5000) {
        int behind = 0;
        for (unsigned i = 0; i + 1 < L.topo->db_servers; i++)
            behind += replica_behind(i, id) == 1;
        if (behind == 0) {
            replayed = wall_ms();
            break;
        }
        usleep(1000);
    }
    if (!replayed) replayed = -1; /* a replica that does not catch up within 5 s does not hold the purge forever */
    char cmd[2 * PATH_MAX + 1024], line[512];
    snprintf(cmd, sizeof(cmd), "%s --redis %s --auth-file %s --wait=5 tag %s 2>&1", purge, redis, key, tags);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    long long published = 0;
    while (fgets(line, sizeof(line), p)) {
        fputs(line, stdout);
        if (!strncmp(line, "published ", 10)) published = strtoll(line + 10, NULL, 10);
    }
    int rc = pclose(p);
    long long acked = wall_ms();
    if (rc != 0 && !published) return -1; /* not on the bus: the row stays */
    const char *dv[1] = {id};
    PQclear(PQexecParams(pg, "DELETE FROM purge_outbox WHERE id = $1", 1, NULL, dv, NULL, NULL, 0));
    if (strtoll(id, NULL, 10) > done_max) done_max = strtoll(id, NULL, 10);
    printf("outbox %s %s committed %s picked %lld replayed %lld published %lld acked %lld%s\n", id, tags, committed, t0,
           replayed, published, acked, rc ? " (not every edge acked)" : "");
    fflush(stdout);
    return 0;
}

int lab_cmd_outbox(void)
{
    char url[1024], purge[PATH_MAX], key[PATH_MAX], redis[64];
    if (lab_load_state() < 0) lab_die("no lab in %s", L.statedir);
    lab_load_topology(L.topo_path);
    if (!L.topo->db_servers) lab_die("outbox: this lab has no database");
    if (lab_find_prog("cdn-purge", purge, sizeof(purge)) < 0) lab_die("cdn-purge not found");
    lab_path(key, sizeof(key), "admin.key");
    const struct lab_node *dns = &L.plan.nodes[lab_plan_find(&L.plan, LAB_DNS, 0)];
    snprintf(redis, sizeof(redis), "redis://%s:%d", dns->addr, LAB_PORT_REDIS);
    primary_url(url, sizeof(url));
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    setvbuf(stdout, NULL, _IOLBF, 0);
    PGconn *pg = NULL;
    printf("outbox relay: %s -> %s\n", url, redis);
    long long scanned = 0;
    while (!stop) {
        if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
            PQfinish(pg);
            pg = PQconnectdb(url);
            if (PQstatus(pg) != CONNECTION_OK) {
                usleep(500000);
                continue;
            }
            PQclear(PQexec(pg, "LISTEN purge_outbox"));
            scanned = 0;
        }
        /* the table, every second: rows whose notification was missed (the relay was down) or
         * whose publication failed */
        if (wall_ms() - scanned >= 1000) {
            PGresult *r = PQexec(pg, "SELECT id, tags, (extract(epoch FROM created_at) * 1000)::bigint FROM purge_outbox"
                                     " ORDER BY id LIMIT 50");
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                PQclear(r);
                PQfinish(pg);
                pg = NULL;
                usleep(200000);
                continue;
            }
            for (int i = 0; i < PQntuples(r) && !stop; i++)
                if (!tags_ok(PQgetvalue(r, i, 1))) {
                    const char *dv[1] = {PQgetvalue(r, i, 0)};
                    PQclear(PQexecParams(pg, "DELETE FROM purge_outbox WHERE id = $1", 1, NULL, dv, NULL, NULL, 0));
                    printf("outbox %s: tags '%s' refused\n", dv[0], PQgetvalue(r, i, 1));
                } else if (relay_row(pg, purge, redis, key, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)) != 0)
                    break; /* the bus or the database failed: again at the next scan */
            scanned = PQntuples(r) == 50 ? 0 : wall_ms();
            PQclear(r);
        }
        /* a NOTIFY carries its row ("ID MS TAGS"): published at once, no query first */
        int fd = PQsocket(pg);
        fd_set rs;
        FD_ZERO(&rs);
        FD_SET(fd, &rs);
        struct timeval tv = {0, 200000};
        if (select(fd + 1, &rs, NULL, NULL, &tv) > 0 && PQconsumeInput(pg)) {
            PGnotify *n;
            while ((n = PQnotifies(pg)) != NULL) {
                char id[32], ms[32];
                int off = 0;
                if (sscanf(n->extra, "%31s %31s %n", id, ms, &off) == 2 && off > 0 && tags_ok(n->extra + off) &&
                    relay_row(pg, purge, redis, key, id, n->extra + off, ms) != 0)
                    scanned = 0; /* failed: the scan takes it again */
                PQfreemem(n);
            }
        }
    }
    PQfinish(pg);
    return 0;
}

struct change { const char *url; unsigned id, cents; int rc; char msg[300]; };

static int do_change(void *arg)
{
    struct change *c = arg;
    char ids[16], cs[16];
    snprintf(ids, sizeof(ids), "%u", c->id);
    snprintf(cs, sizeof(cs), "%u", c->cents);
    const char *pv[2] = {ids, cs};
    PGconn *pg = PQconnectdb(c->url);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(c->msg, sizeof(c->msg), "%s", PQerrorMessage(pg));
        PQfinish(pg);
        return c->rc = -1;
    }
    /* one statement, one transaction: the trigger's outbox row commits with the price */
    PGresult *r = PQexecParams(pg, "UPDATE products SET price_cents = $2, updated_at = extract(epoch FROM now())::bigint"
                                   " WHERE id = $1 RETURNING (SELECT price_cents FROM products WHERE id = $1)",
                               2, NULL, pv, NULL, NULL, 0);
    long long committed = wall_ms();
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        snprintf(c->msg, sizeof(c->msg), "%s", PQresultStatus(r) == PGRES_TUPLES_OK ? "no such product" : PQresultErrorMessage(r));
    else
        snprintf(c->msg, sizeof(c->msg), "committed %lld product %u price %s -> %u cents", committed, c->id, PQgetvalue(r, 0, 0),
                 c->cents);
    c->rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? 0 : -1;
    PQclear(r);
    PQfinish(pg);
    return c->rc;
}

int lab_cmd_change(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[1], "price")) lab_die("change price PRODUCT CENTS");
    if (lab_load_state() < 0) lab_die("no lab in %s (cdn-lab up first)", L.statedir);
    lab_load_topology(L.topo_path);
    if (!L.topo->db_servers) lab_die("change: this lab has no database (a topology with db:, e.g. lab/topologies/db.yaml)");
    char url[1024];
    primary_url(url, sizeof(url));
    struct change c = {.url = url, .id = (unsigned)strtoul(argv[2], NULL, 10), .cents = (unsigned)strtoul(argv[3], NULL, 10)};
    /* from the primary's namespace: the root namespace has no route into the lab */
    const struct lab_node *pn = &L.plan.nodes[lab_plan_find(&L.plan, LAB_DB, 0)];
    if (lab_in_ns(pn->ns, do_change, &c) < 0 && !*c.msg) lab_die("change: cannot enter %s", pn->ns);
    printf("%s\n", c.msg);
    return c.rc == 0 ? 0 : 1;
}
