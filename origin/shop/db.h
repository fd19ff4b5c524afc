/* origin/shop/db.h - shop-app's storage choice: the read-only SQLite catalog file (the default) or
 * PostgreSQL, a primary for carts and a replica for catalog reads (db_pg.c, on libpq).
 *
 * Owns: the "db:" setting (a file path, a postgresql:// URL, or a map {primary, replica,
 * read_your_writes, pool, timeout}); with PostgreSQL, each worker's connection pools (one per
 * role), the per-request rows fetched before the handlers run, and the cart's write-through.
 *
 * How a request is served on PostgreSQL (nothing blocks the loop):
 * 1. serve.c's serve() asks app_db_before(): from the path it knows which rows the handler will
 *    read (a product, a category and its page, the home page's categories, a search, a cart and
 *    its products) and sends those queries (prepared statements, libpq's asynchronous API, the
 *    socket watched on the worker's loop). The request waits; other requests go on.
 * 2. When the rows are in, serve() runs again: the handlers call the shop_catalog_* functions as
 *    they do on SQLite; the worker's catalog is a view (shop_catalog_wrap) that answers from the
 *    rows fetched for the request being served.
 * 3. A cart that changed is written to the primary before the answer goes out (app_db_hold on
 *    app_send): a failed write answers 503 with the reason instead.
 *
 * Roles and read-your-writes: catalog rows come from the replica (the primary when no replica
 * connection is up, and once more from the primary when a replica query fails). Carts are
 * written to the primary; a cart is read from the primary for a POST and for `read_your_writes`
 * (default 5 s) after the client's last write, which a cookie `dbw=<ms since the epoch>` marks
 * (so any app behind shop-lb honours it), and from the replica otherwise. A replica that lags
 * more than the window shows an older cart after the window: the window is the promise.
 *
 * Threads: everything on the worker's loop; the pools are per worker; counters are shared
 * metrics. */
#ifndef ORIGIN_SHOP_DB_H
#define ORIGIN_SHOP_DB_H

#include <stdint.h>
#include <h2o.h>

#include "cdn/config.h"
#include "origin/shop/shop.h"

struct app_worker;
struct app_conf;

struct app_db_conf {
    const char *primary;       /* conninfo or URL; NULL: SQLite */
    const char *replica;       /* NULL: the primary serves the reads too */
    uint64_t ryw_ms;           /* read_your_writes window */
    unsigned pool;             /* connections per role per worker */
    uint64_t timeout_ms;       /* connect and query timeout: past it the connection is dropped */
};

/* CDN_CT_CUSTOM decoder of "db:" (out points at struct app_conf's `db`). */
int app_db_conf_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err);
/* Whether a "db" value names PostgreSQL (postgresql:// or postgres://). */
int app_db_is_url(const char *s);
/* 1 when shop-app runs on PostgreSQL (after app_db_prepare). */
int app_db_pg(void);
/* app_catalog_prepare's PostgreSQL side: --generate (COPY into the primary), the product count
 * and date from the replica, -t. -1: go on serving, or the exit code. */
int app_db_prepare(void);
/* Main thread, in on_worker_init: w->cat (SQLite, or the view over the request's rows) and, on
 * PostgreSQL, the pools. 0 or -1 with err. */
int app_db_worker_init(struct app_worker *w, char *err, size_t errlen);
void app_db_worker_exit(struct app_worker *w);
/* From serve(): 1 when the request waits for its rows (serve is called again with them), 0 to
 * serve it now. */
int app_db_before(h2o_req_t *req, void (*serve)(h2o_req_t *req));
/* From the cart handler: the stored cart replaces the cookie's (when there is a stored one). */
void app_db_cart_read(h2o_req_t *req, struct shop_cart *cart);
/* From the cart handler: the cart changed, write it before answering. */
void app_db_cart_changed(h2o_req_t *req, const struct shop_cart *cart);
/* From app_send: 1 when the answer waits for a cart write (it is sent, or replaced by a 503,
 * when the write is done). */
int app_db_hold(h2o_req_t *req, int status, const char *reason, const char *body, size_t len);
/* Metrics (after app_metrics_init). 0 or -1. */
int app_db_metrics_init(void);

/* ---- db_pg.c: the connection pools (one per role per worker) ---- */

enum app_pg_role { APP_PG_PRIMARY, APP_PG_REPLICA, APP_PG_NROLES };
struct app_pgpool;
struct app_pgq;
/* res NULL on error (err says why; conn_lost: the connection broke, a retry elsewhere may work).
 * res is freed after the callback. */
typedef void (*app_pgq_cb)(struct app_pgq *q, const void *res /* PGresult */, const char *err, int conn_lost);
#define APP_PGQ_MAXP 4
struct app_pgq {
    h2o_linklist_t link;       /* in the pool's queue while waiting */
    struct app_pgconn *conn;   /* while running */
    const char *stmt;          /* a prepared statement's name */
    int nparams;
    const char *params[APP_PGQ_MAXP];
    app_pgq_cb cb;
    void *data;
};

struct app_pgpool *app_pgpool_new(h2o_evloop_t *loop, const char *conninfo, enum app_pg_role role, unsigned n,
                                  uint64_t timeout_ms);
void app_pgpool_free(struct app_pgpool *p);
/* Connections ready (idle or busy). */
int app_pgpool_up(const struct app_pgpool *p);
/* Runs q (its memory the caller's until cb, or until app_pgq_cancel); q->cb may run before this
 * returns when nothing can run it (no connection: err "not connected"). */
void app_pgq_run(struct app_pgpool *p, struct app_pgq *q);
/* The caller's q goes away (its request did): it is forgotten, its result dropped. */
void app_pgq_cancel(struct app_pgq *q);
/* The statements prepared on every connection (name, SQL). */
extern const char *const app_pg_stmts[][2];

/* Blocking helpers for start-up (not on a loop): --generate and the probe. */
int app_pg_generate(const char *conninfo, uint32_t n, uint64_t seed, const char *tmpdir, char *err, size_t errlen);
int app_pg_probe(const char *conninfo, uint32_t *count, int64_t *generated_at, char *err, size_t errlen);

/* Counters (db_pg.c): queries {role, result}, connects {role, result}, lost connections {role}. */
void app_pg_count_query(enum app_pg_role role, int ok);
int app_pg_metrics_init(void);
extern const char *const app_pg_role_names[APP_PG_NROLES];

#endif
