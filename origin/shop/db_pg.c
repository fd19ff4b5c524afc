/* origin/shop/db_pg.c - PostgreSQL for shop-app: per-worker pools of libpq connections driven by
 * the worker's loop, and the blocking start-up helpers (the catalog generator's COPY, the probe).
 *
 * A connection's life: DOWN -(timer)-> CONNECTING (PQconnectStart + PQconnectPoll on socket
 * events) -> PREPARING (every statement of app_pg_stmts, one PQsendPrepare at a time) -> IDLE
 * <-> BUSY (one query at a time: PQsendQueryPrepared, PQflush while the socket takes it,
 * PQconsumeInput + PQgetResult when it is readable). Any error, or a connect or query that takes
 * longer than the timeout, closes it: the running query fails with conn_lost, the connection goes
 * DOWN and retries after a backoff (100 ms doubling to 5 s, reset by a success), counted in
 * shop_db_connections_total{role,result} and shop_db_connections_lost_total{role}.
 *
 * Rules: a query waits in the pool's queue while some connection is on its way up or busy; when
 * every connection is DOWN it fails at once ("not connected"), so a dead database costs a
 * request nothing but its answer. A query's memory is its caller's: app_pgq_cancel forgets it
 * (queued: unlinked; running: its result is dropped). Loop thread only. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/metrics.h"
#include "origin/shop/app.h"
#include "origin/shop/db.h"

#define PG_MAGIC 0x50474331u
#define BACKOFF_MIN 100
#define BACKOFF_MAX 5000
#define MAX_CONNS 16

const char *const app_pg_role_names[APP_PG_NROLES] = {"primary", "replica"};

#define PCOLS "p.id, p.category_id, p.name, p.price_cents, p.stock, p.updated_at, p.description, c.slug, c.name"
#define CCOLS "c.id, c.slug, c.name, (SELECT count(*) FROM products p WHERE p.category_id = c.id)"
const char *const app_pg_stmts[][2] = {
    {"product", "SELECT " PCOLS " FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = ANY($1::int[])"
                " ORDER BY p.id"},
    {"cat_slug", "SELECT " CCOLS " FROM categories c WHERE c.slug = $1"},
    {"cats", "SELECT " CCOLS " FROM categories c ORDER BY c.id"},
    {"list", "SELECT " PCOLS " FROM products p JOIN categories c ON c.id = p.category_id WHERE p.category_id = $1"
             " ORDER BY p.id LIMIT $2 OFFSET $3"},
    {"firsts", "SELECT DISTINCT ON (p.category_id) " PCOLS " FROM products p JOIN categories c ON c.id = p.category_id"
               " ORDER BY p.category_id, p.id"},
    {"search", "SELECT " PCOLS " FROM products p JOIN categories c ON c.id = p.category_id"
               " WHERE to_tsvector('simple', p.name || ' ' || p.description) @@ to_tsquery('simple', $1)"
               " ORDER BY p.id LIMIT $2"},
    {"cart_get", "SELECT items FROM carts WHERE sid = $1"},
    {"cart_put", "INSERT INTO carts(sid, items) VALUES($1, $2) ON CONFLICT (sid) DO UPDATE"
                 " SET items = EXCLUDED.items, updated_at = now()"},
    {NULL, NULL}};

/* ---------------- counters ---------------- */

static cdn_series_t *s_query[APP_PG_NROLES][2], *s_connect[APP_PG_NROLES][2], *s_lost[APP_PG_NROLES];
static int up_now[APP_PG_NROLES]; /* ready connections over all workers (atomic) */

static double gauge_up(void *d) { return (double)__atomic_load_n(&up_now[(intptr_t)d], __ATOMIC_RELAXED); }

int app_pg_metrics_init(void)
{
    const char *ql[] = {"role", "result", NULL}, *rl[] = {"role", NULL};
    cdn_metric_t *q = cdn_metrics_counter(app.metrics, "shop_db_queries_total", "PostgreSQL queries, by role and result", ql);
    cdn_metric_t *c = cdn_metrics_counter(app.metrics, "shop_db_connections_total",
                                          "PostgreSQL connection attempts, by role and result", ql);
    cdn_metric_t *l = cdn_metrics_counter(app.metrics, "shop_db_connections_lost_total",
                                          "PostgreSQL connections closed by an error or a timeout", rl);
    if (!q || !c || !l)
        return -1;
    for (int r = 0; r < APP_PG_NROLES; r++) {
        const char *ok[] = {app_pg_role_names[r], "ok"}, *bad[] = {app_pg_role_names[r], "error"};
        s_query[r][1] = cdn_metric_series(q, ok);
        s_query[r][0] = cdn_metric_series(q, bad);
        s_connect[r][1] = cdn_metric_series(c, ok);
        s_connect[r][0] = cdn_metric_series(c, bad);
        s_lost[r] = cdn_metric_series(l, (const char *[]){app_pg_role_names[r]});
    }
    cdn_metrics_gauge_fn(app.metrics, "shop_db_primary_up", "Ready connections to the primary", gauge_up, (void *)0);
    cdn_metrics_gauge_fn(app.metrics, "shop_db_replica_up", "Ready connections to the replica", gauge_up, (void *)1);
    return 0;
}

void app_pg_count_query(enum app_pg_role role, int ok)
{
    if (s_query[role][ok ? 1 : 0])
        cdn_counter_inc(s_query[role][ok ? 1 : 0]);
}

/* ---------------- connections ---------------- */

enum pg_state { PG_DOWN, PG_CONNECTING, PG_PREPARING, PG_IDLE, PG_BUSY };

struct app_pgconn {
    unsigned magic;
    struct app_pgpool *pool;
    PGconn *pg;
    int fd;
    cdn_watch_t *watch;
    cdn_timer_t *timer;       /* DOWN: the retry; otherwise the connect/query timeout */
    enum pg_state st;
    int prep;                 /* PREPARING: the statement being prepared */
    struct app_pgq *cur;      /* BUSY: the query (NULL once cancelled) */
    PGresult *res;            /* the current command's first result, until the command ends */
    uint64_t backoff;
};

struct app_pgpool {
    h2o_evloop_t *loop;
    char *conninfo;
    enum app_pg_role role;
    uint64_t timeout_ms;
    unsigned n;
    h2o_linklist_t queue;
    struct app_pgconn conns[MAX_CONNS];
};

static void conn_start(struct app_pgconn *c);
static void pool_dispatch(struct app_pgpool *p);

static int ready(enum pg_state st) { return st == PG_IDLE || st == PG_BUSY; }

static void set_state(struct app_pgconn *c, enum pg_state st)
{
    int was = ready(c->st), is = ready(st);
    if (was != is)
        __atomic_add_fetch(&up_now[c->pool->role], is ? 1 : -1, __ATOMIC_RELAXED);
    c->st = st;
}

static void finish_query(struct app_pgconn *c, PGresult *res, const char *err, int lost)
{
    struct app_pgq *q = c->cur;
    c->cur = NULL;
    if (q != NULL) {
        q->conn = NULL;
        app_pg_count_query(c->pool->role, res != NULL);
        q->cb(q, res, err, lost);
    }
}

static void fail_queue(struct app_pgpool *p, const char *why)
{
    while (!h2o_linklist_is_empty(&p->queue)) {
        struct app_pgq *q = H2O_STRUCT_FROM_MEMBER(struct app_pgq, link, p->queue.next);
        h2o_linklist_unlink(&q->link);
        app_pg_count_query(p->role, 0);
        q->cb(q, NULL, why, 1);
    }
}

static int pool_any_alive(const struct app_pgpool *p)
{
    for (unsigned i = 0; i < p->n; i++)
        if (p->conns[i].st != PG_DOWN)
            return 1;
    return 0;
}

/* Closes the connection after an error; the running query fails; retry after the backoff. */
static void conn_drop(struct app_pgconn *c, const char *why)
{
    char msg[256];
    int was_ready = ready(c->st);
    snprintf(msg, sizeof(msg), "%s: %s", app_pg_role_names[c->pool->role], why);
    for (char *s = msg; *s; s++)
        if (*s == '\n')
            *s = ' ';
    if (was_ready)
        cdn_counter_inc(s_lost[c->pool->role]);
    else
        cdn_counter_inc(s_connect[c->pool->role][0]);
    cdn_warn("database %s (retry in %llu ms)", msg, (unsigned long long)c->backoff);
    if (c->watch) {
        cdn_watch_free(c->watch);
        c->watch = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    PQclear(c->res);
    c->res = NULL;
    c->fd = -1;
    set_state(c, PG_DOWN);
    cdn_timer_start(c->timer, c->backoff);
    c->backoff = c->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : c->backoff * 2;
    finish_query(c, NULL, msg, 1);
    if (!pool_any_alive(c->pool))
        fail_queue(c->pool, msg);
}

static void on_conn_event(cdn_watch_t *w, int fd, int events, void *data);

static void watch_fd(struct app_pgconn *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd != c->fd && c->watch) {
        cdn_watch_free(c->watch);
        c->watch = NULL;
    }
    if (c->watch == NULL) {
        c->fd = fd;
        c->watch = cdn_watch_new(c->pool->loop, fd, on_conn_event, c);
    }
    cdn_watch_set(c->watch, events);
}

/* Sends the next statement to prepare, or becomes IDLE. */
static void prepare_next(struct app_pgconn *c)
{
    if (app_pg_stmts[c->prep][0] == NULL) {
        set_state(c, PG_IDLE);
        c->backoff = BACKOFF_MIN;
        cdn_timer_stop(c->timer);
        cdn_counter_inc(s_connect[c->pool->role][1]);
        cdn_info("database %s: connected", app_pg_role_names[c->pool->role]);
        pool_dispatch(c->pool);
        return;
    }
    if (!PQsendPrepare(c->pg, app_pg_stmts[c->prep][0], app_pg_stmts[c->prep][1], 0, NULL)) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    watch_fd(c, CDN_WATCH_READ | (PQflush(c->pg) == 1 ? CDN_WATCH_WRITE : 0));
}

/* All results of the current command are in: the first one decides. */
static void on_results(struct app_pgconn *c, PGresult *first)
{
    ExecStatusType st = first ? PQresultStatus(first) : PGRES_FATAL_ERROR;
    int ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (c->st == PG_PREPARING) {
        if (!ok) {
            char why[256];
            snprintf(why, sizeof(why), "preparing %s: %s", app_pg_stmts[c->prep][0],
                     first ? PQresultErrorMessage(first) : PQerrorMessage(c->pg));
            conn_drop(c, why);
            return;
        }
        c->prep++;
        prepare_next(c);
        return;
    }
    /* BUSY */
    cdn_timer_stop(c->timer);
    set_state(c, PG_IDLE);
    watch_fd(c, CDN_WATCH_READ); /* notice a server that closes an idle connection */
    if (ok)
        finish_query(c, first, NULL, 0);
    else
        finish_query(c, NULL, first ? PQresultErrorMessage(first) : PQerrorMessage(c->pg), 0);
    pool_dispatch(c->pool);
}

static void on_conn_event(cdn_watch_t *w, int fd, int events, void *data)
{
    struct app_pgconn *c = data;
    (void)w;
    (void)fd;
    assert(c->magic == PG_MAGIC);
    if (c->st == PG_CONNECTING) {
        switch (PQconnectPoll(c->pg)) {
        case PGRES_POLLING_READING: watch_fd(c, CDN_WATCH_READ); return;
        case PGRES_POLLING_WRITING: watch_fd(c, CDN_WATCH_WRITE); return;
        case PGRES_POLLING_OK:
            if (PQsetnonblocking(c->pg, 1) != 0) {
                conn_drop(c, "cannot set non-blocking");
                return;
            }
            set_state(c, PG_PREPARING);
            c->prep = 0;
            prepare_next(c);
            return;
        default: conn_drop(c, PQerrorMessage(c->pg)); return;
        }
    }
    if (events & CDN_WATCH_WRITE) {
        int f = PQflush(c->pg);
        if (f < 0) {
            conn_drop(c, PQerrorMessage(c->pg));
            return;
        }
        watch_fd(c, CDN_WATCH_READ | (f == 1 ? CDN_WATCH_WRITE : 0));
    }
    if (!(events & CDN_WATCH_READ))
        return;
    if (!PQconsumeInput(c->pg)) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    if (c->st == PG_IDLE) {
        /* nothing was asked: a notice, or the server going away */
        if (PQstatus(c->pg) == CONNECTION_BAD)
            conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    /* the first result of the command is kept until libpq says the command is done (NULL) */
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            PGresult *first = c->res;
            c->res = NULL;
            on_results(c, first);
            PQclear(first);
            return;
        }
        if (c->res == NULL)
            c->res = r;
        else
            PQclear(r);
    }
}

static void on_conn_timer(cdn_timer_t *t, void *data)
{
    struct app_pgconn *c = data;
    (void)t;
    assert(c->magic == PG_MAGIC);
    if (c->st == PG_DOWN)
        conn_start(c);
    else
        conn_drop(c, c->st == PG_BUSY ? "query timed out" : "connect timed out");
}

static void conn_start(struct app_pgconn *c)
{
    c->pg = PQconnectStart(c->pool->conninfo);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        set_state(c, PG_CONNECTING); /* so that conn_drop counts a failed connect */
        conn_drop(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    set_state(c, PG_CONNECTING);
    c->fd = -1;
    cdn_timer_start(c->timer, c->pool->timeout_ms);
    watch_fd(c, CDN_WATCH_WRITE);
}

static void conn_send(struct app_pgconn *c, struct app_pgq *q)
{
    c->cur = q;
    q->conn = c;
    set_state(c, PG_BUSY);
    if (!PQsendQueryPrepared(c->pg, q->stmt, q->nparams, q->params, NULL, NULL, 0)) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    cdn_timer_start(c->timer, c->pool->timeout_ms);
    int f = PQflush(c->pg);
    if (f < 0) {
        conn_drop(c, PQerrorMessage(c->pg));
        return;
    }
    watch_fd(c, CDN_WATCH_READ | (f == 1 ? CDN_WATCH_WRITE : 0));
}

static void pool_dispatch(struct app_pgpool *p)
{
    for (unsigned i = 0; i < p->n && !h2o_linklist_is_empty(&p->queue); i++) {
        struct app_pgconn *c = &p->conns[i];
        if (c->st != PG_IDLE)
            continue;
        struct app_pgq *q = H2O_STRUCT_FROM_MEMBER(struct app_pgq, link, p->queue.next);
        h2o_linklist_unlink(&q->link);
        conn_send(c, q);
    }
}

struct app_pgpool *app_pgpool_new(h2o_evloop_t *loop, const char *conninfo, enum app_pg_role role, unsigned n,
                                  uint64_t timeout_ms)
{
    struct app_pgpool *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->conninfo = strdup(conninfo)) == NULL) {
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->role = role;
    p->n = n < 1 ? 1 : n > MAX_CONNS ? MAX_CONNS : n;
    p->timeout_ms = timeout_ms ? timeout_ms : 3000;
    h2o_linklist_init_anchor(&p->queue);
    for (unsigned i = 0; i < p->n; i++) {
        struct app_pgconn *c = &p->conns[i];
        c->magic = PG_MAGIC;
        c->pool = p;
        c->fd = -1;
        c->backoff = BACKOFF_MIN;
        c->timer = cdn_timer_new(loop, on_conn_timer, c);
        if (c->timer == NULL) {
            app_pgpool_free(p);
            return NULL;
        }
        cdn_timer_start(c->timer, 0); /* connect on the loop's first turn */
    }
    return p;
}

void app_pgpool_free(struct app_pgpool *p)
{
    if (p == NULL)
        return;
    fail_queue(p, "shutting down");
    for (unsigned i = 0; i < p->n; i++) {
        struct app_pgconn *c = &p->conns[i];
        if (c->watch)
            cdn_watch_free(c->watch);
        if (c->timer)
            cdn_timer_free(c->timer);
        if (c->pg)
            PQfinish(c->pg);
        PQclear(c->res);
        set_state(c, PG_DOWN);
        c->magic = 0;
    }
    free(p->conninfo);
    free(p);
}

int app_pgpool_up(const struct app_pgpool *p)
{
    int n = 0;
    for (unsigned i = 0; p && i < p->n; i++)
        n += ready(p->conns[i].st);
    return n;
}

void app_pgq_run(struct app_pgpool *p, struct app_pgq *q)
{
    q->conn = NULL;
    q->link = (h2o_linklist_t){NULL, NULL}; /* unlinked */
    if (!pool_any_alive(p)) {
        app_pg_count_query(p->role, 0);
        q->cb(q, NULL, "not connected", 1);
        return;
    }
    h2o_linklist_insert(&p->queue, &q->link);
    pool_dispatch(p);
}

void app_pgq_cancel(struct app_pgq *q)
{
    if (h2o_linklist_is_linked(&q->link))
        h2o_linklist_unlink(&q->link);
    if (q->conn != NULL) {
        q->conn->cur = NULL; /* the result is read and dropped */
        q->conn = NULL;
    }
}

/* ---------------- start-up helpers (blocking) ---------------- */

static int run(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "postgresql: %s (in: %.60s)", PQresultErrorMessage(r), sql);
    PQclear(r);
    return ok ? 0 : -1;
}

/* COPY text format: backslash, tab, newline and carriage return escaped. */
static void copy_field(char **o, char *end, const char *s)
{
    for (; s && *s && *o + 2 < end; s++) {
        char ch = *s;
        if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r') {
            *(*o)++ = '\\';
            ch = ch == '\t' ? 't' : ch == '\n' ? 'n' : ch == '\r' ? 'r' : '\\';
        }
        *(*o)++ = ch;
    }
}

/* Copies every row of a SQLite query into a table (columns as text, tab-separated). */
static int copy_table(PGconn *pg, sqlite3 *db, const char *select, const char *copy, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, select, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
        return -1;
    }
    PGresult *r = PQexec(pg, copy);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        snprintf(err, errlen, "postgresql: %s", PQresultErrorMessage(r));
        PQclear(r);
        sqlite3_finalize(st);
        return -1;
    }
    PQclear(r);
    static char line[8192];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char *o = line, *end = line + sizeof(line) - 2;
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            if (i > 0)
                *o++ = '\t';
            copy_field(&o, end, (const char *)sqlite3_column_text(st, i));
        }
        *o++ = '\n';
        if (PQputCopyData(pg, line, (int)(o - line)) != 1)
            break;
    }
    sqlite3_finalize(st);
    if (PQputCopyEnd(pg, rc == SQLITE_DONE ? NULL : "sqlite read error") != 1) {
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(pg));
        return -1;
    }
    r = PQgetResult(pg);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "postgresql: %s", PQresultErrorMessage(r));
    PQclear(r);
    while ((r = PQgetResult(pg)) != NULL)
        PQclear(r);
    return ok ? 0 : -1;
}

/* The same generator as the SQLite file's (shop_catalog_generate into a temporary file), then its
 * rows copied in id order into fresh tables in one transaction: same (n, seed), same rows. */
int app_pg_generate(const char *conninfo, uint32_t n, uint64_t seed, const char *tmpdir, char *err, size_t errlen)
{
    char path[4096];
    int rc = -1;
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/shop-catalog-%d.db", tmpdir ? tmpdir : "/tmp", (int)getpid());
    if (shop_catalog_generate(path, n, seed, err, errlen) != 0)
        return -1;
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(pg));
        goto out;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s", path);
        goto out;
    }
    if (run(pg, "SET client_min_messages = warning; BEGIN;"
                "DROP TABLE IF EXISTS meta, products, categories;"
                "CREATE TABLE meta(key text PRIMARY KEY, value text NOT NULL);"
                "CREATE TABLE categories(id integer PRIMARY KEY, slug text NOT NULL UNIQUE, name text NOT NULL);"
                "CREATE TABLE products(id integer PRIMARY KEY, category_id integer NOT NULL, name text NOT NULL,"
                " price_cents integer NOT NULL, stock integer NOT NULL, updated_at bigint NOT NULL,"
                " description text NOT NULL);"
                "CREATE TABLE IF NOT EXISTS carts(sid text PRIMARY KEY, items text NOT NULL,"
                " updated_at timestamptz NOT NULL DEFAULT now());",
            err, errlen) ||
        copy_table(pg, db, "SELECT key, value FROM meta ORDER BY key", "COPY meta FROM STDIN", err, errlen) ||
        copy_table(pg, db, "SELECT id, slug, name FROM categories ORDER BY id", "COPY categories FROM STDIN", err, errlen) ||
        copy_table(pg, db,
                   "SELECT id, category_id, name, price_cents, stock, updated_at, description FROM products ORDER BY id",
                   "COPY products FROM STDIN", err, errlen) ||
        run(pg, "CREATE INDEX products_by_category ON products(category_id, id);"
                /* a price change's purge: the tags go into an outbox in the changing transaction
                 * (cdn-lab's relay publishes them after the replicas replay it: lab/cdnlab/outbox.c) */
                "CREATE TABLE IF NOT EXISTS purge_outbox(id bigserial PRIMARY KEY, tags text NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT clock_timestamp());"
                "CREATE OR REPLACE FUNCTION products_outbox() RETURNS trigger LANGUAGE plpgsql AS $$"
                " DECLARE oid bigint; t text := 'product-' || NEW.id || ' category-' || NEW.category_id; BEGIN"
                " INSERT INTO purge_outbox(tags) VALUES (t) RETURNING id INTO oid;"
                /* the row in the notification ("ID MS TAGS"): the relay needs no query to start */
                " PERFORM pg_notify('purge_outbox', oid || ' ' || (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
                " || ' ' || t); RETURN NEW; END $$;"
                "CREATE TRIGGER products_outbox AFTER UPDATE ON products FOR EACH ROW EXECUTE FUNCTION products_outbox();"
                "CREATE INDEX products_fts ON products USING gin (to_tsvector('simple', name || ' ' || description));"
                "COMMIT; ANALYZE meta; ANALYZE categories; ANALYZE products;",
            err, errlen))
        goto out;
    rc = 0;
out:
    if (db)
        sqlite3_close(db);
    PQfinish(pg);
    unlink(path);
    return rc;
}

int app_pg_probe(const char *conninfo, uint32_t *count, int64_t *generated_at, char *err, size_t errlen)
{
    PGconn *pg = PQconnectdb(conninfo);
    int rc = -1;
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, errlen, "postgresql: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return -1;
    }
    PGresult *r = PQexec(pg, "SELECT (SELECT value FROM meta WHERE key = 'count'),"
                             " (SELECT value FROM meta WHERE key = 'generated_at')");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        snprintf(err, errlen, "not a shop catalog: %s", PQresultStatus(r) == PGRES_TUPLES_OK ? "no meta rows"
                                                                                              : PQresultErrorMessage(r));
    } else {
        *count = (uint32_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
        *generated_at = PQgetisnull(r, 0, 1) ? 0 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        rc = *count > 0 ? 0 : -1;
        if (rc != 0)
            snprintf(err, errlen, "not a shop catalog (no products)");
    }
    PQclear(r);
    PQfinish(pg);
    return rc;
}
