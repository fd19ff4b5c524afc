/* origin/shop/db.c - shop-app's storage selection (db.h): the "db:" setting, and on PostgreSQL the
 * rows a request needs fetched before its handler runs, the catalog view over them, the cart's
 * stored copy, its write to the primary and the read-your-writes window.
 *
 * A request's rows (struct app_db_rows) live in its pool; its dispose callback cancels a query still
 * running, so a client that goes away leaves nothing behind. The plan per class mirrors serve.c's
 * routing: a path serve.c answers without the catalog (a malformed id, an unknown path) fetches
 * nothing; a lookup the plan did not foresee answers -1 (a 500), never a wrong row. */
#include "config.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <libpq-fe.h>

#include "origin/shop/app.h"
#include "origin/shop/db.h"

#define ROWS_MAGIC 0x524f5753u
#define MAX_IDS (SHOP_CART_MAX + 4)

static int pg_on;
static struct app_db_conf *dbc;       /* app.conf's */
static cdn_series_t *s_reads[4];      /* reads by where they went */
enum { R_REPLICA, R_PRIMARY_RYW, R_PRIMARY_FALLBACK, R_PRIMARY_WRITE };
static const char *const read_names[4] = {"replica", "primary_ryw", "primary_fallback", "primary_write"};

/* ---------------- config ---------------- */

int app_db_is_url(const char *s)
{
    return s != NULL && (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0);
}

static const cdn_conf_field_t db_fields[] = {
    {"primary", CDN_CT_STR, offsetof(struct app_db_conf, primary), CDN_CF_REQUIRED},
    {"replica", CDN_CT_STR, offsetof(struct app_db_conf, replica)},
    {"read_your_writes", CDN_CT_DURATION, offsetof(struct app_db_conf, ryw_ms)},
    {"pool", CDN_CT_UINT, offsetof(struct app_db_conf, pool), 0, 1, 16},
    {"timeout", CDN_CT_DURATION, offsetof(struct app_db_conf, timeout_ms)},
    {NULL}};

int app_db_conf_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    struct app_conf *conf = (struct app_conf *)((char *)out - offsetof(struct app_conf, db));
    if (cdn_conf_kind(n) != CDN_CONF_MAP)
        return cdn_conf_str(c, n, &conf->db, err);
    if (cdn_conf_decode(c, n, db_fields, &conf->pg, err) != 0)
        return -1;
    if (!app_db_is_url(conf->pg.primary))
        return cdn_conf_fail(c, cdn_conf_get(n, "primary"), err, "expected a postgresql:// URL");
    if (conf->pg.replica != NULL && !app_db_is_url(conf->pg.replica))
        return cdn_conf_fail(c, cdn_conf_get(n, "replica"), err, "expected a postgresql:// URL");
    conf->db = conf->pg.primary;
    return 0;
}

int app_db_pg(void) { return pg_on; }

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int app_db_prepare(void)
{
    char err[512];
    dbc = &app.conf.pg;
    if (!app_db_is_url(app.conf.db) && dbc->primary == NULL)
        return -2; /* SQLite */
    if (dbc->primary == NULL || (app.cmdline.db != NULL && strcmp(app.cmdline.db, dbc->primary) != 0)) {
        dbc->primary = app.conf.db; /* a URL on the command line wins over the file's map */
        dbc->replica = NULL;
    }
    if (dbc->replica == NULL)
        dbc->replica = dbc->primary;
    if (dbc->ryw_ms == 0)
        dbc->ryw_ms = 5000;
    if (dbc->pool == 0)
        dbc->pool = 4;
    if (dbc->timeout_ms == 0)
        dbc->timeout_ms = 3000;
    pg_on = 1;
    int test = app.cmdline.test, serving = app.conf.listen.len > 0;
    if (!test && app.cmdline.generate > 0) {
        const char *tmp = getenv("TMPDIR");
        if (app_pg_generate(dbc->primary, app.conf.products, (uint64_t)app.conf.seed, tmp, err, sizeof(err)) != 0) {
            fprintf(stderr, PROG ": generating the catalog into the primary: %s\n", err);
            return 1;
        }
        cdn_info("catalog in postgresql: %u products, seed %lld", app.conf.products, app.conf.seed);
        if (!serving)
            return 0;
    }
    if (!serving) {
        fprintf(stderr, PROG ": nothing to listen on (-a ADDR or listen: in the config)\n");
        return test ? 1 : 2;
    }
    /* the count and date from the replica (the primary when it is the same) */
    if (app_pg_probe(dbc->replica, &app.conf.products, &app.catalog_time, err, sizeof(err)) != 0 &&
        app_pg_probe(dbc->primary, &app.conf.products, &app.catalog_time, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": db: %s\n", err);
        return 1;
    }
    if (test) {
        printf(PROG ": configuration ok (catalog in postgresql, %u products)\n", app.conf.products);
        return 0;
    }
    return -1;
}

int app_db_metrics_init(void)
{
    if (!pg_on)
        return 0;
    const char *l[] = {"from", NULL};
    cdn_metric_t *m = cdn_metrics_counter(app.metrics, "shop_db_reads_total",
                                          "Reads by where they went (replica, primary for read-your-writes, "
                                          "primary as the replica's fallback, primary for a write)", l);
    if (m == NULL || app_pg_metrics_init() != 0)
        return -1;
    for (int i = 0; i < 4; i++)
        s_reads[i] = cdn_metric_series(m, (const char *[]){read_names[i]});
    return 0;
}

/* ---------------- a request's rows ---------------- */

enum step { S_NONE, S_CATS, S_FIRSTS, S_CAT_SLUG, S_LIST, S_PRODUCTS, S_SEARCH, S_CART_GET, S_DONE };

struct app_db_rows {
    unsigned magic;
    h2o_req_t *req;
    struct app_worker *w;
    void (*serve)(h2o_req_t *req);
    struct app_pgq q;
    enum step step;
    enum app_pg_role role;     /* where the running query went */
    int retried, ready;
    char p[3][64];             /* the running query's parameters */
    /* what was fetched */
    struct shop_category *cats;
    int ncats, cats_ok;
    struct shop_product *firsts;
    int nfirsts, firsts_ok;
    char slug[64];
    struct shop_category cat;
    int cat_found, cat_ok;
    uint32_t list_cat, list_off, list_lim;
    struct shop_product *list;
    int nlist, list_ok;
    uint32_t ids[MAX_IDS];
    int nids;
    struct shop_product *prods;
    int nprods, prods_ok;
    char q_text[256];
    struct shop_product *found;
    int nfound, found_ok;
    /* the cart */
    char sid[64];
    int cart_stored, cart_ok;
    char cart_items[SHOP_CART_MAX * 24];
    int writes;                /* the read of the cart was for a POST */
    /* a held answer (app_db_hold) */
    int hold_wanted;
    char cart_new[SHOP_CART_MAX * 24];
    int status;
    const char *reason;
    char *body;
    size_t len;
};

static struct app_db_rows *current(struct app_worker *w) { return w->db_rows; }

static void on_rows_dispose(void *p)
{
    struct app_db_rows *r = p;
    if (r->magic == ROWS_MAGIC) /* a query may still run (0: the answer went out) */
        app_pgq_cancel(&r->q);
    r->magic = 0;
}

/* ---- the catalog view: answers from the request being served ---- */

static int v_product(void *d, uint32_t id, struct shop_product *p)
{
    struct app_db_rows *r = current(d);
    if (r == NULL || !r->prods_ok)
        return -1;
    for (int i = 0; i < r->nprods; i++)
        if (r->prods[i].id == id) {
            *p = r->prods[i];
            return 1;
        }
    for (int i = 0; i < r->nids; i++)
        if (r->ids[i] == id)
            return 0;
    return -1;
}

static int v_cat_slug(void *d, const char *slug, struct shop_category *cat)
{
    struct app_db_rows *r = current(d);
    if (r == NULL || !r->cat_ok || strcmp(slug, r->slug) != 0)
        return -1;
    if (r->cat_found)
        *cat = r->cat;
    return r->cat_found;
}

static int v_cat_id(void *d, uint32_t id, struct shop_category *cat)
{
    struct app_db_rows *r = current(d);
    if (r == NULL || !r->cats_ok)
        return -1;
    for (int i = 0; i < r->ncats; i++)
        if (r->cats[i].id == id) {
            *cat = r->cats[i];
            return 1;
        }
    return 0;
}

static int v_cats(void *d, struct shop_category *out, int cap)
{
    struct app_db_rows *r = current(d);
    if (r == NULL || !r->cats_ok)
        return 0;
    int n = r->ncats < cap ? r->ncats : cap;
    memcpy(out, r->cats, sizeof(*out) * (size_t)n);
    return n;
}

static int v_list(void *d, uint32_t cid, uint32_t off, uint32_t lim, struct shop_product *out)
{
    struct app_db_rows *r = current(d);
    if (r == NULL)
        return -1;
    if (r->firsts_ok && off == 0 && lim == 1) { /* the home page's first product of each category */
        for (int i = 0; i < r->nfirsts; i++)
            if (r->firsts[i].category_id == cid) {
                out[0] = r->firsts[i];
                return 1;
            }
        return 0;
    }
    if (!r->list_ok || cid != r->list_cat || off != r->list_off || lim < (uint32_t)r->nlist)
        return -1;
    memcpy(out, r->list, sizeof(*out) * (size_t)r->nlist);
    return r->nlist;
}

static int v_search(void *d, const char *q, uint32_t limit, struct shop_product *out)
{
    struct app_db_rows *r = current(d);
    if (r == NULL || !r->found_ok || strcmp(q, r->q_text) != 0)
        return -1;
    int n = (uint32_t)r->nfound < limit ? r->nfound : (int)limit;
    memcpy(out, r->found, sizeof(*out) * (size_t)n);
    return n;
}

static const struct shop_catalog_ops view_ops = {v_product, v_cat_slug, v_cat_id, v_cats, v_list, v_search};

/* ---- rows from results ---- */

static void copy_str(char *out, size_t cap, const char *s)
{
    snprintf(out, cap, "%s", s ? s : "");
}

static void row_product(const PGresult *res, int i, struct shop_product *p)
{
    memset(p, 0, sizeof(*p));
    p->id = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
    p->category_id = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
    copy_str(p->name, sizeof(p->name), PQgetvalue(res, i, 2));
    p->price_cents = (uint32_t)strtoul(PQgetvalue(res, i, 3), NULL, 10);
    p->stock = (uint32_t)strtoul(PQgetvalue(res, i, 4), NULL, 10);
    p->updated_at = strtoll(PQgetvalue(res, i, 5), NULL, 10);
    copy_str(p->description, sizeof(p->description), PQgetvalue(res, i, 6));
    copy_str(p->category_slug, sizeof(p->category_slug), PQgetvalue(res, i, 7));
    copy_str(p->category_name, sizeof(p->category_name), PQgetvalue(res, i, 8));
}

static void row_category(const PGresult *res, int i, struct shop_category *c)
{
    memset(c, 0, sizeof(*c));
    c->id = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
    copy_str(c->slug, sizeof(c->slug), PQgetvalue(res, i, 1));
    copy_str(c->name, sizeof(c->name), PQgetvalue(res, i, 2));
    c->count = (uint32_t)strtoul(PQgetvalue(res, i, 3), NULL, 10);
}

static struct shop_product *products_of(h2o_req_t *req, const PGresult *res, int max, int *n)
{
    int rows = PQntuples(res);
    if (rows > max)
        rows = max;
    struct shop_product *out = h2o_mem_alloc_pool(&req->pool, sizeof(*out) * (size_t)(rows ? rows : 1));
    for (int i = 0; i < rows; i++)
        row_product(res, i, &out[i]);
    *n = rows;
    return out;
}

/* ---- the plan ---- */

static void next_step(struct app_db_rows *r);

static void on_step_done(struct app_pgq *q, const void *resv, const char *err, int conn_lost)
{
    struct app_db_rows *r = q->data;
    const PGresult *res = resv;
    assert(r->magic == ROWS_MAGIC);
    h2o_req_t *req = r->req;
    if (res == NULL) {
        /* a read from the replica that lost its connection: once more from the primary */
        if (conn_lost && r->role == APP_PG_REPLICA && !r->retried && r->w->db_pool[APP_PG_REPLICA] != r->w->db_pool[APP_PG_PRIMARY]) {
            r->retried = 1;
            r->role = APP_PG_PRIMARY;
            cdn_counter_inc(s_reads[R_PRIMARY_FALLBACK]);
            app_pgq_run(r->w->db_pool[APP_PG_PRIMARY], &r->q);
            return;
        }
        char msg[320];
        snprintf(msg, sizeof(msg), "%s: the %s database is unavailable: %s\n",
                 r->writes ? "cart not saved" : "not answered", app_pg_role_names[r->role], err ? err : "?");
        for (char *s = msg; s[0] && s[1]; s++)
            if (*s == '\n')
                *s = ' ';
        r->magic = 0; /* the answer goes out now */
        app_set_hdr(req, H2O_TOKEN_RETRY_AFTER, "1");
        app_send_error(req, 503, "Service Unavailable", msg);
        return;
    }
    r->retried = 0;
    switch (r->step) {
    case S_CATS:
        r->ncats = PQntuples(res) < SHOP_NUM_CATEGORIES ? PQntuples(res) : SHOP_NUM_CATEGORIES;
        r->cats = h2o_mem_alloc_pool(&req->pool, sizeof(*r->cats) * SHOP_NUM_CATEGORIES);
        for (int i = 0; i < r->ncats; i++)
            row_category(res, i, &r->cats[i]);
        r->cats_ok = 1;
        r->step = S_FIRSTS;
        break;
    case S_FIRSTS:
        r->firsts = products_of(req, res, 1000, &r->nfirsts);
        r->firsts_ok = 1;
        r->step = S_DONE;
        break;
    case S_CAT_SLUG: {
        r->cat_ok = 1;
        r->cat_found = PQntuples(res) == 1;
        r->step = S_DONE;
        if (!r->cat_found)
            break;
        row_category(res, 0, &r->cat);
        /* the page as serve.c's page_of reads it; a bad one gets its 400 there */
        char pg[16];
        long page = 1;
        if (req->query_at != SIZE_MAX &&
            shop_query_get(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, "page", pg, sizeof(pg)) > 0) {
            char *end;
            page = strtol(pg, &end, 10);
            if (*end || page < 1 || page > 1000000)
                break;
        }
        uint32_t pages = (r->cat.count + SHOP_PAGE_SIZE - 1) / SHOP_PAGE_SIZE;
        if ((uint32_t)page > (pages ? pages : 1))
            break;
        r->list_cat = r->cat.id;
        r->list_off = (uint32_t)(page - 1) * SHOP_PAGE_SIZE;
        r->list_lim = SHOP_PAGE_SIZE;
        r->step = S_LIST;
        break;
    }
    case S_LIST:
        r->list = products_of(req, res, SHOP_PAGE_SIZE, &r->nlist);
        r->list_ok = 1;
        r->step = S_DONE;
        break;
    case S_PRODUCTS:
        r->prods = products_of(req, res, MAX_IDS, &r->nprods);
        r->prods_ok = 1;
        r->step = S_DONE;
        break;
    case S_SEARCH:
        r->found = products_of(req, res, SHOP_PAGE_SIZE, &r->nfound);
        r->found_ok = 1;
        r->step = S_DONE;
        break;
    case S_CART_GET: {
        r->cart_ok = 1;
        r->cart_stored = PQntuples(res) == 1;
        if (r->cart_stored)
            copy_str(r->cart_items, sizeof(r->cart_items), PQgetvalue(res, 0, 0));
        /* the stored cart's products join the ones asked for */
        struct shop_cart c = {0};
        shop_cart_parse(r->cart_items, strlen(r->cart_items), &c);
        for (size_t i = 0; i < c.n && r->nids < MAX_IDS; i++)
            r->ids[r->nids++] = c.items[i].id;
        r->step = S_PRODUCTS;
        break;
    }
    default: assert(!"a result for no step"); return;
    }
    next_step(r);
}

static void run_step(struct app_db_rows *r, enum app_pg_role role, const char *stmt, int nparams, const char *p0)
{
    struct app_pgpool *p = r->w->db_pool[role];
    /* reads fall back to the primary while no replica connection is up */
    if (role == APP_PG_REPLICA && app_pgpool_up(p) == 0 && p != r->w->db_pool[APP_PG_PRIMARY]) {
        role = APP_PG_PRIMARY;
        p = r->w->db_pool[role];
        cdn_counter_inc(s_reads[R_PRIMARY_FALLBACK]);
    } else if (role == APP_PG_REPLICA) {
        cdn_counter_inc(s_reads[R_REPLICA]);
    }
    r->role = role;
    r->q.stmt = stmt;
    r->q.nparams = nparams;
    for (int i = 0; i < nparams; i++)
        r->q.params[i] = i == 0 && p0 != NULL ? p0 : r->p[i];
    r->q.cb = on_step_done;
    r->q.data = r;
    app_pgq_run(p, &r->q);
}

/* The ids as an array literal "{1,2,3}" (up to MAX_IDS ids of 10 digits). */
static const char *ids_param(struct app_db_rows *r)
{
    size_t o = 0;
    char *big = h2o_mem_alloc_pool(&r->req->pool, MAX_IDS * 11 + 3);
    big[o++] = '{';
    for (int i = 0; i < r->nids; i++)
        o += (size_t)sprintf(big + o, "%s%u", i ? "," : "", r->ids[i]);
    big[o++] = '}';
    big[o] = '\0';
    return big;
}

static void next_step(struct app_db_rows *r)
{
    switch (r->step) {
    case S_CATS: run_step(r, APP_PG_REPLICA, "cats", 0, NULL); return;
    case S_FIRSTS: run_step(r, APP_PG_REPLICA, "firsts", 0, NULL); return;
    case S_CAT_SLUG:
        copy_str(r->p[0], sizeof(r->p[0]), r->slug);
        run_step(r, APP_PG_REPLICA, "cat_slug", 1, NULL);
        return;
    case S_LIST:
        snprintf(r->p[0], sizeof(r->p[0]), "%u", r->list_cat);
        snprintf(r->p[1], sizeof(r->p[1]), "%u", r->list_lim);
        snprintf(r->p[2], sizeof(r->p[2]), "%u", r->list_off);
        run_step(r, APP_PG_REPLICA, "list", 3, NULL);
        return;
    case S_PRODUCTS:
        run_step(r, APP_PG_REPLICA, "product", 1, ids_param(r));
        return;
    case S_SEARCH: {
        /* every word as a prefix term (to_tsquery syntax never sees user input): "red sho" ->
         * "red:* & sho:*" */
        char *t = r->p[0];
        size_t o = 0, cap = sizeof(r->p[0]);
        for (const char *s = r->q_text; *s;) {
            while (*s && !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
                s++;
            if (!*s)
                break;
            if (o + 8 >= cap)
                break;
            if (o > 0) {
                memcpy(t + o, " & ", 3);
                o += 3;
            }
            while (*s && ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) && o + 6 < cap)
                t[o++] = *s++;
            memcpy(t + o, ":*", 2);
            o += 2;
        }
        t[o] = '\0';
        if (o == 0) { /* nothing to search for: no results, as SQLite's FTS answers */
            r->found_ok = 1;
            r->nfound = 0;
            r->step = S_DONE;
            next_step(r);
            return;
        }
        snprintf(r->p[1], sizeof(r->p[1]), "%d", SHOP_PAGE_SIZE);
        run_step(r, APP_PG_REPLICA, "search", 2, NULL);
        return;
    }
    case S_CART_GET: {
        copy_str(r->p[0], sizeof(r->p[0]), r->sid);
        int64_t last = 0;
        char v[32];
        for (ssize_t i = -1; (i = h2o_find_header(&r->req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
            h2o_iovec_t c = r->req->headers.entries[i].value;
            if (shop_cookie_get(c.base, c.len, "dbw", v, sizeof(v)) > 0)
                last = strtoll(v, NULL, 10);
        }
        int64_t now = wall_ms();
        enum app_pg_role role = APP_PG_REPLICA;
        if (r->writes) {
            role = APP_PG_PRIMARY;
            cdn_counter_inc(s_reads[R_PRIMARY_WRITE]);
        } else if (last > 0 && now - last < (int64_t)dbc->ryw_ms && now >= last - 60000) {
            role = APP_PG_PRIMARY;
            cdn_counter_inc(s_reads[R_PRIMARY_RYW]);
        }
        run_step(r, role, "cart_get", 1, NULL);
        return;
    }
    case S_DONE:
    case S_NONE: {
        struct app_worker *w = r->w;
        r->ready = 1;
        w->db_rows = r;
        r->serve(r->req);
        w->db_rows = NULL;
        return;
    }
    default: assert(!"no such step");
    }
}

/* "/p/42" style ids as serve.c's parse_id reads them. */
static int parse_id(const char *p, size_t len, uint32_t *id, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9' && i < 10)
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0 || v == 0 || v > UINT32_MAX || (p[0] == '0'))
        return -1;
    *id = (uint32_t)v;
    *used = i;
    return 0;
}

static void add_id(struct app_db_rows *r, unsigned long id)
{
    if (id < 1 || id > UINT32_MAX || r->nids >= MAX_IDS)
        return;
    for (int i = 0; i < r->nids; i++)
        if (r->ids[i] == id)
            return;
    r->ids[r->nids++] = (uint32_t)id;
}

/* What the request will read; S_NONE when nothing. */
static enum step plan(struct app_db_rows *r)
{
    h2o_req_t *req = r->req;
    const char *p = req->path_normalized.base;
    size_t len = req->path_normalized.len, used;
    uint32_t id;
    int get = app_is_method(req, "GET") || app_is_method(req, "HEAD");
    switch (app_classify(p, len)) {
    case C_HOME: return get ? S_CATS : S_NONE;
    case C_CATEGORY:
        if (!get || len - 3 == 0 || len - 3 >= sizeof(r->slug))
            return S_NONE;
        memcpy(r->slug, p + 3, len - 3);
        r->slug[len - 3] = '\0';
        return S_CAT_SLUG;
    case C_PRODUCT:
        if (!get || parse_id(p + 3, len - 3, &id, &used) != 0 || used != len - 3)
            return S_NONE;
        add_id(r, id);
        return S_PRODUCTS;
    case C_API:
        if (!get || len <= 14 || memcmp(p, "/api/products/", 14) != 0 || parse_id(p + 14, len - 14, &id, &used) != 0 ||
            used != len - 14)
            return S_NONE;
        add_id(r, id);
        return S_PRODUCTS;
    case C_IMAGE:
        if (!get || parse_id(p + 5, len - 5, &id, &used) != 0)
            return S_NONE;
        add_id(r, id);
        return S_PRODUCTS;
    case C_SEARCH:
        if (!get || len != 11 || req->query_at == SIZE_MAX ||
            shop_query_get(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, "q", r->q_text,
                           sizeof(r->q_text)) < 0)
            return S_NONE;
        return S_SEARCH;
    case C_CART: {
        int post = app_is_method(req, "POST");
        if (!get && !post)
            return S_NONE;
        /* the cookie cart's products, the ones a POST adds, then the stored cart's */
        char v[1024], num[16];
        struct shop_cart c = {0};
        for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
            h2o_iovec_t ck = req->headers.entries[i].value;
            if (shop_cookie_get(ck.base, ck.len, "cart", v, sizeof(v)) >= 0)
                shop_cart_parse(v, strlen(v), &c);
            if (shop_cookie_get(ck.base, ck.len, "sid", v, sizeof(v)) > 0)
                copy_str(r->sid, sizeof(r->sid), v);
        }
        for (size_t i = 0; i < c.n; i++)
            add_id(r, c.items[i].id);
        if (post) {
            h2o_iovec_t src[2] = {req->query_at == SIZE_MAX ? h2o_iovec_init(NULL, 0)
                                                            : h2o_iovec_init(req->path.base + req->query_at + 1,
                                                                             req->path.len - req->query_at - 1),
                                  req->entity};
            for (int k = 0; k < 2; k++)
                if (src[k].base != NULL && shop_query_get(src[k].base, src[k].len, "add", num, sizeof(num)) > 0)
                    add_id(r, strtoul(num, NULL, 10));
        }
        r->writes = post;
        return r->sid[0] ? S_CART_GET : S_PRODUCTS;
    }
    default: return S_NONE;
    }
}

int app_db_before(h2o_req_t *req, void (*serve)(h2o_req_t *req))
{
    struct app_worker *w = app_worker_of(req);
    if (!pg_on)
        return 0;
    if (w->db_rows != NULL && w->db_rows->req == req)
        return 0; /* its rows are in: serve it */
    struct app_db_rows *r = h2o_mem_alloc_shared(&req->pool, sizeof(*r), on_rows_dispose);
    memset(r, 0, sizeof(*r));
    r->magic = ROWS_MAGIC;
    r->req = req;
    r->w = w;
    r->serve = serve;
    r->step = plan(r);
    if (r->step == S_NONE)
        return 0; /* nothing to read: the handler needs no rows (a 404, a 405, /healthz) */
    next_step(r);
    return 1;
}

/* ---------------- the cart ---------------- */

void app_db_cart_read(h2o_req_t *req, struct shop_cart *cart)
{
    struct app_db_rows *r = pg_on ? current(app_worker_of(req)) : NULL;
    if (r != NULL && r->req == req && r->cart_stored)
        shop_cart_parse(r->cart_items, strlen(r->cart_items), cart);
}

void app_db_cart_changed(h2o_req_t *req, const struct shop_cart *cart)
{
    struct app_db_rows *r = pg_on ? current(app_worker_of(req)) : NULL;
    if (r == NULL || r->req != req)
        return;
    shop_cart_format(cart, r->cart_new, sizeof(r->cart_new));
    r->hold_wanted = 1;
    if (!r->sid[0]) { /* a first visit: the sid just made, from its Set-Cookie */
        for (size_t i = 0; i < req->res.headers.size; i++) {
            h2o_header_t *h = &req->res.headers.entries[i];
            if (h->name == &H2O_TOKEN_SET_COOKIE->buf && h->value.len > 4 && memcmp(h->value.base, "sid=", 4) == 0) {
                size_t n = 4;
                while (n < h->value.len && h->value.base[n] != ';' && n - 4 < sizeof(r->sid) - 1)
                    n++;
                memcpy(r->sid, h->value.base + 4, n - 4);
                r->sid[n - 4] = '\0';
            }
        }
    }
}

static void on_cart_written(struct app_pgq *q, const void *res, const char *err, int conn_lost)
{
    struct app_db_rows *r = q->data;
    h2o_req_t *req = r->req;
    (void)conn_lost;
    assert(r->magic == ROWS_MAGIC);
    r->magic = 0; /* the answer goes out now */
    if (res == NULL) {
        char msg[320];
        snprintf(msg, sizeof(msg), "cart not saved: the primary database is unavailable: %s\n", err ? err : "?");
        for (char *s = msg; s[0] && s[1]; s++)
            if (*s == '\n')
                *s = ' ';
        memset(&req->res.headers, 0, sizeof(req->res.headers));
        app_set_hdr(req, H2O_TOKEN_RETRY_AFTER, "1");
        app_send_error(req, 503, "Service Unavailable", msg);
        return;
    }
    /* the client reads its cart from the primary for the next read_your_writes */
    char *sc = h2o_mem_alloc_pool(&req->pool, 96);
    snprintf(sc, 96, "dbw=%lld; Path=/; Max-Age=%llu; HttpOnly; SameSite=Lax", (long long)wall_ms(),
             (unsigned long long)(dbc->ryw_ms + 999) / 1000);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, sc, strlen(sc));
    app_send(req, r->status, r->reason, r->body, r->len);
}

int app_db_hold(h2o_req_t *req, int status, const char *reason, const char *body, size_t len)
{
    struct app_db_rows *r = pg_on ? current(app_worker_of(req)) : NULL;
    if (r == NULL || r->req != req || !r->hold_wanted || status != 200)
        return 0;
    r->hold_wanted = 0;
    r->status = status;
    r->reason = reason;
    r->body = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(r->body, body, len);
    r->len = len;
    copy_str(r->p[0], sizeof(r->p[0]), r->sid);
    r->q.stmt = "cart_put";
    r->q.nparams = 2;
    r->q.params[0] = r->p[0];
    r->q.params[1] = r->cart_new;
    r->q.cb = on_cart_written;
    r->q.data = r;
    r->role = APP_PG_PRIMARY;
    r->magic = ROWS_MAGIC;
    app_pgq_run(r->w->db_pool[APP_PG_PRIMARY], &r->q);
    return 1;
}

/* ---------------- workers ---------------- */

int app_db_worker_init(struct app_worker *w, char *err, size_t errlen)
{
    if (!pg_on) {
        w->cat = shop_catalog_open(app.conf.db, err, errlen);
        return w->cat != NULL ? 0 : -1;
    }
    w->cat = shop_catalog_wrap(&view_ops, w, app.conf.products, app.catalog_time);
    w->db_pool[APP_PG_PRIMARY] = app_pgpool_new(w->loop, dbc->primary, APP_PG_PRIMARY, dbc->pool, dbc->timeout_ms);
    w->db_pool[APP_PG_REPLICA] = strcmp(dbc->replica, dbc->primary) == 0
                                     ? w->db_pool[APP_PG_PRIMARY]
                                     : app_pgpool_new(w->loop, dbc->replica, APP_PG_REPLICA, dbc->pool, dbc->timeout_ms);
    if (w->cat == NULL || w->db_pool[APP_PG_PRIMARY] == NULL || w->db_pool[APP_PG_REPLICA] == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void app_db_worker_exit(struct app_worker *w)
{
    if (w->db_pool[APP_PG_REPLICA] != w->db_pool[APP_PG_PRIMARY])
        app_pgpool_free(w->db_pool[APP_PG_REPLICA]);
    app_pgpool_free(w->db_pool[APP_PG_PRIMARY]);
    w->db_pool[APP_PG_PRIMARY] = w->db_pool[APP_PG_REPLICA] = NULL;
    shop_catalog_close(w->cat);
    w->cat = NULL;
}
