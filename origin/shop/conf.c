/* origin/shop/conf.c - shop-app's settings: defaults, then the YAML file, then the command line,
 * into one struct app_conf; the same path at start and on every SIGHUP (so a command-line
 * setting such as --delay is not lost by a reload). Errors name the offending node
 * (file:line:col). Also the catalog's place and its generation at start. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdn/proc.h"
#include "origin/shop/app.h"

static const char *const alog_formats[] = {"combined", "json", NULL};

static const cdn_conf_field_t rule_fields[] = {
    {"prefix", CDN_CT_STR, offsetof(struct shop_rule, prefix), CDN_CF_REQUIRED},
    {"cache_control", CDN_CT_STR, offsetof(struct shop_rule, cache_control)},
    {"vary", CDN_CT_STR, offsetof(struct shop_rule, vary)},
    {"surrogate_control", CDN_CT_STR, offsetof(struct shop_rule, surrogate_control)},
    {"delay", CDN_CT_DURATION, offsetof(struct shop_rule, delay_ms)},
    {"error_rate", CDN_CT_DOUBLE, offsetof(struct shop_rule, error_rate), 0, 0, 0, 0.0, 1.0},
    {"gzip", CDN_CT_BOOL, offsetof(struct shop_rule, gzip)},
    {NULL}};

/* "headers:" is a list of rules; each starts from defaults (gzip on), which the schema's LIST
 * type cannot express, so it is decoded by hand. */
static int decode_rules(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    struct shop_rules *r = out;
    if (cdn_conf_kind(n) != CDN_CONF_SEQ)
        return cdn_conf_fail(c, n, err, "expected a list of {prefix, cache_control, ...}");
    size_t cnt = cdn_conf_len(n);
    r->rules = cdn_conf_alloc(c, (cnt ? cnt : 1) * sizeof(*r->rules));
    r->n = 0;
    for (size_t i = 0; i < cnt; i++) {
        struct shop_rule *x = &r->rules[r->n];
        memset(x, 0, sizeof(*x));
        x->gzip = 1;
        if (cdn_conf_decode(c, cdn_conf_item(n, i), rule_fields, x, err) != 0)
            return -1;
        if (x->prefix[0] != '/')
            return cdn_conf_fail(c, cdn_conf_item(n, i), err, "prefix must start with '/'");
        r->n++;
    }
    shop_rules_sort(r);
    return 0;
}

static const cdn_conf_field_t conf_fields[] = {
    {"listen", CDN_CT_ADDR, offsetof(struct app_conf, listen), .addr_default_host = "127.0.0.1"},
    {"name", CDN_CT_STR, offsetof(struct app_conf, name)},
    {"threads", CDN_CT_UINT, offsetof(struct app_conf, threads), 0, 1, MAX_WORKERS},
    {"db", CDN_CT_CUSTOM, offsetof(struct app_conf, db), .custom = app_db_conf_decode},
    {"products", CDN_CT_UINT, offsetof(struct app_conf, products), 0, 1, 10000000},
    {"seed", CDN_CT_INT, offsetof(struct app_conf, seed), 0, 0, LLONG_MAX},
    {"cdn_host", CDN_CT_STR, offsetof(struct app_conf, cdn_host)},
    {"image_cache", CDN_CT_SIZE, offsetof(struct app_conf, image_cache)},
    {"render_threads", CDN_CT_UINT, offsetof(struct app_conf, render_threads), 0, 1, 64},
    {"error_log", CDN_CT_STR, offsetof(struct app_conf, error_log)},
    {"log_level", CDN_CT_STR, offsetof(struct app_conf, log_level)},
    {"access_log", CDN_CT_STR, offsetof(struct app_conf, access_log)},
    {"access_log_format", CDN_CT_ENUM, offsetof(struct app_conf, access_log_format), .enum_names = alog_formats},
    {"pid_file", CDN_CT_STR, offsetof(struct app_conf, pid_file)},
    {"graceful_timeout", CDN_CT_DURATION, offsetof(struct app_conf, graceful_timeout)},
    {"delay", CDN_CT_DURATION, offsetof(struct app_conf, delay)},
    {"error_rate", CDN_CT_DOUBLE, offsetof(struct app_conf, error_rate), 0, 0, 0, 0.0, 1.0},
    {"gzip", CDN_CT_BOOL, offsetof(struct app_conf, gzip)},
    {"headers", CDN_CT_CUSTOM, offsetof(struct app_conf, rules), .custom = decode_rules},
    {"error_cache_control", CDN_CT_STR, offsetof(struct app_conf, error_cache_control)},
    {"server_error_cache_control", CDN_CT_STR, offsetof(struct app_conf, server_error_cache_control)},
    {"idempotency_ttl", CDN_CT_DURATION, offsetof(struct app_conf, idempotency_ttl)},
    {"idempotency_keys", CDN_CT_UINT, offsetof(struct app_conf, idempotency_keys), 0, 0, 10000000},
    {"idempotency_bytes", CDN_CT_SIZE, offsetof(struct app_conf, idempotency_bytes)},
    {NULL}};

static void conf_defaults(struct app_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->threads = 1;
    c->products = SHOP_DEFAULT_PRODUCTS;
    c->seed = SHOP_DEFAULT_SEED;
    c->cdn_host = "https://img.shop.test";
    c->image_cache = 128u << 20;
    c->render_threads = 2;
    c->log_level = "info";
    c->graceful_timeout = 10000;
    c->gzip = 1;
    c->idempotency_ttl = 24 * 3600 * 1000;
    c->idempotency_keys = 10000;
    c->idempotency_bytes = 32u << 20;
}

/* Decodes a config file into *out (over its defaults). NULL with err on failure. */
static cdn_conf_t *conf_file(const char *path, struct app_conf *out, cdn_conf_err_t *err)
{
    cdn_conf_t *c = cdn_conf_load_file(path, err);
    if (c == NULL)
        return NULL;
    if (cdn_conf_decode(c, cdn_conf_root(c), conf_fields, out, err) != 0) {
        cdn_conf_free(c);
        return NULL;
    }
    if (out->log_level && cdn_log_level_parse(out->log_level) < 0) {
        cdn_conf_fail(c, cdn_conf_get(cdn_conf_root(c), "log_level"), err, "expected debug, info, notice, warn or error");
        cdn_conf_free(c);
        return NULL;
    }
    return c;
}

/* The command line wins over the file. 0, or -1 with err (a bad listen address). */
static int apply_cmdline(const struct app_cmdline *cl, struct app_conf *c, char *err, size_t errlen)
{
    if (cl->listen != NULL) {
        c->listen.len = sizeof(c->listen.ss);
        if (cdn_parse_addr(cl->listen, "127.0.0.1", &c->listen.ss, &c->listen.len) != 0) {
            snprintf(err, errlen, "bad listen address '%s'", cl->listen);
            return -1;
        }
        c->listen.text = cl->listen;
    }
    if (cl->db) c->db = cl->db;
    if (cl->cdn) c->cdn_host = cl->cdn;
    if (cl->name) c->name = cl->name;
    if (cl->alog) c->access_log = cl->alog;
    if (cl->alog_format >= 0) c->access_log_format = cl->alog_format;
    if (cl->elog) c->error_log = cl->elog;
    if (cl->pid) c->pid_file = cl->pid;
    if (cl->threads > 0) c->threads = (unsigned)cl->threads;
    if (cl->render_threads > 0) c->render_threads = (unsigned)cl->render_threads;
    if (cl->seed >= 0) c->seed = cl->seed;
    if (cl->generate > 0) c->products = (unsigned)cl->generate;
    if (cl->delay >= 0) c->delay = (uint64_t)cl->delay;
    if (cl->erate >= 0) c->error_rate = cl->erate;
    return 0;
}

int app_conf_load(const struct app_cmdline *cl, struct app_conf *c, cdn_conf_t **doc, char *err, size_t errlen)
{
    conf_defaults(c);
    *doc = NULL;
    if (cl->conf_path != NULL) {
        cdn_conf_err_t cerr;
        if ((*doc = conf_file(cl->conf_path, c, &cerr)) == NULL) {
            snprintf(err, errlen, "%s", cerr.msg);
            return 1;
        }
    }
    if (apply_cmdline(cl, c, err, errlen) != 0) {
        cdn_conf_free(*doc);
        *doc = NULL;
        return 2;
    }
    return 0;
}

struct shop_rules app_conf_rules(const struct app_conf *c)
{
    struct shop_rules r = c->rules.n > 0 ? c->rules : *shop_rules_default();
    if (c->error_cache_control)
        r.error_cache_control = c->error_cache_control;
    if (c->server_error_cache_control)
        r.server_error_cache_control = c->server_error_cache_control;
    return r;
}

/* ---------------- the command line ---------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [options]\n"
            "The lab shop's app server: catalog pages, JSON API, product images, cart.\n\n"
            "  -a, --listen ADDR       listen on ADDR (127.0.0.1:8081); quick mode when no config\n"
            "  -c, --config FILE       YAML config (see origin/examples/shop-app.yaml)\n"
            "  -t, --test              check the config and the catalog, then exit\n"
            "      --generate N        generate a catalog of N products into --db and exit\n"
            "                          (with -a: generate, then serve)\n"
            "      --seed S            catalog seed (default %d)\n"
            "      --db FILE           catalog file (default: the cache folder)\n"
            "      --threads N         worker threads (default 1)\n"
            "      --render-threads N  image render threads (default 2)\n"
            "      --cdn-host URL      where pages link images (default https://img.shop.test;\n"
            "                          \"\" for same-origin)\n"
            "      --name NAME         this instance's name (X-Served-By), default the listen address\n"
            "      --delay MS          service delay per request, in milliseconds\n"
            "      --error-rate P      fraction of requests answered 500 (0..1)\n"
            "      --access-log FILE   access log (\"-\" = stdout)\n"
            "      --access-log-format combined|json   (default combined)\n"
            "      --error-log FILE    error log (default stderr)\n"
            "      --pid-file FILE     write the pid there\n"
            "  -V, --version           print the version\n"
            "  -h, --help              this text\n"
            "Signals: TERM/INT stop gracefully, HUP reopens logs and reloads header rules.\n",
            SHOP_DEFAULT_SEED);
}

/* A number from lo to hi, or a usage error with msg. */
static int num(const char *arg, long long lo, long long hi, const char *msg, long long *out)
{
    char *e;
    long long v = strtoll(arg, &e, 10);
    if (*e || v < lo || v > hi) {
        fprintf(stderr, PROG ": %s\n", msg);
        return -1;
    }
    *out = v;
    return 0;
}

/* The options with a value to check: 0, or -1 after a message. */
static int option_value(int ch, const char *arg, struct app_cmdline *cl)
{
    enum { O_GENERATE = 256, O_SEED, O_THREADS, O_DELAY, O_ERATE };
    long long v;
    char *end;
    switch (ch) {
    case O_GENERATE:
        if (num(arg, 1, 10000000, "--generate wants a product count from 1 to 10000000", &v) != 0)
            return -1;
        cl->generate = (long)v;
        return 0;
    case O_SEED:
        return num(arg, 0, LLONG_MAX, "--seed wants a non-negative integer", &cl->seed);
    case O_THREADS:
        if (num(arg, 1, MAX_WORKERS, "--threads wants 1..16", &v) != 0)
            return -1;
        cl->threads = (long)v;
        return 0;
    case O_DELAY:
        if (num(arg, 0, LONG_MAX, "--delay wants milliseconds", &v) != 0)
            return -1;
        cl->delay = (long)v;
        return 0;
    case O_ERATE:
        cl->erate = strtod(arg, &end);
        if (*end || cl->erate < 0 || cl->erate > 1) {
            fprintf(stderr, PROG ": --error-rate wants a fraction from 0 to 1\n");
            return -1;
        }
        return 0;
    }
    return -1;
}

int app_cmdline_parse(int argc, char **argv, struct app_cmdline *cl)
{
    /* the first five are option_value's */
    enum { O_GENERATE = 256, O_SEED, O_THREADS, O_DELAY, O_ERATE, O_DB, O_CDN, O_NAME, O_ALOG, O_ELOG, O_PID, O_ALOGF,
           O_RENDER };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'a'}, {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'}, {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'},
        {"generate", required_argument, NULL, O_GENERATE}, {"seed", required_argument, NULL, O_SEED},
        {"db", required_argument, NULL, O_DB}, {"threads", required_argument, NULL, O_THREADS},
        {"cdn-host", required_argument, NULL, O_CDN}, {"name", required_argument, NULL, O_NAME},
        {"delay", required_argument, NULL, O_DELAY}, {"error-rate", required_argument, NULL, O_ERATE},
        {"access-log", required_argument, NULL, O_ALOG}, {"error-log", required_argument, NULL, O_ELOG},
        {"access-log-format", required_argument, NULL, O_ALOGF},
        {"pid-file", required_argument, NULL, O_PID}, {"render-threads", required_argument, NULL, O_RENDER},
        {NULL, 0, NULL, 0}};
    int ch;
    *cl = (struct app_cmdline){.generate = -1, .threads = -1, .delay = -1, .seed = -1, .erate = -1, .alog_format = -1,
                               .render_threads = -1};
    while ((ch = getopt_long(argc, argv, "a:c:tVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': cl->listen = optarg; break;
        case 'c': cl->conf_path = optarg; break;
        case 't': cl->test = 1; break;
        case 'V': cdn_print_version(PROG); return 1;
        case 'h': usage(stdout); return 1;
        case O_GENERATE: case O_SEED: case O_THREADS: case O_DELAY: case O_ERATE:
            if (option_value(ch, optarg, cl) != 0)
                return 3;
            break;
        case O_DB: cl->db = optarg; break;
        case O_CDN: cl->cdn = optarg; break;
        case O_NAME: cl->name = optarg; break;
        case O_ALOG: cl->alog = optarg; break;
        case O_ALOGF:
            if ((cl->alog_format = cdn_conf_enum_index(alog_formats, optarg)) < 0) {
                fprintf(stderr, PROG ": --access-log-format combined|json\n");
                return 3;
            }
            break;
        case O_ELOG: cl->elog = optarg; break;
        case O_PID: cl->pid = optarg; break;
        case O_RENDER: {
            long long v;
            if (num(optarg, 1, 64, "--render-threads wants 1..64", &v) != 0)
                return 3;
            cl->render_threads = (long)v;
            break;
        }
        default: usage(stderr); return 3;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n", argv[optind]);
        return 3;
    }
    return 0;
}

/* ---------------- the catalog ---------------- */

/* $XDG_CACHE_HOME/cdn-lab or ~/.cache/cdn-lab, created unless only named (create 0: a config
 * test writes nothing). */
static int cache_dir(char *out, size_t cap, int create)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char base[PATH_MAX];
    if (x != NULL && *x)
        snprintf(base, sizeof(base), "%s", x);
    else if (home != NULL && *home)
        snprintf(base, sizeof(base), "%s/.cache", home);
    else
        snprintf(base, sizeof(base), "/tmp");
    if ((size_t)snprintf(out, cap, "%s/cdn-lab", base) >= cap)
        return -1;
    if (!create)
        return 0;
    mkdir(base, 0755);
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Opens the catalog once: its product count and date. -1, or the exit code. */
static int catalog_probe(void)
{
    char err[512];
    shop_catalog_t *probe = shop_catalog_open(app.conf.db, err, sizeof(err));
    if (probe == NULL) {
        const cdn_conf_node_t *at =
            app.cmdline.db == NULL && app.cdoc != NULL ? cdn_conf_get(cdn_conf_root(app.cdoc), "db") : NULL;
        if (at != NULL) { /* the file named it: say where */
            cdn_conf_err_t cerr;
            cdn_conf_fail(app.cdoc, at, &cerr, "db: not a catalog: %s", err);
            fprintf(stderr, PROG ": %s\n", cerr.msg);
        } else {
            fprintf(stderr, PROG ": %s\n", err);
        }
        return 1;
    }
    app.conf.products = shop_catalog_count(probe);
    app.catalog_time = shop_catalog_generated_at(probe);
    shop_catalog_close(probe);
    return -1;
}

int app_catalog_prepare(void)
{
    static char dbpath[PATH_MAX];
    char err[512];
    int test = app.cmdline.test, serving = app.conf.listen.len > 0;
    int pg = app_db_prepare(); /* PostgreSQL (db.c), or -2 for the SQLite file */
    if (pg != -2)
        return pg;
    /* generate on request, or in quick mode into the cache folder when missing */
    if (app.conf.db == NULL) {
        char dir[PATH_MAX - 64];
        if (cache_dir(dir, sizeof(dir), !test) != 0) {
            fprintf(stderr, PROG ": no cache folder for the catalog (set XDG_CACHE_HOME or use --db)\n");
            return 1;
        }
        /* v2: the generator changed (no phrase twice in a text); bump it with every content change */
        snprintf(dbpath, sizeof(dbpath), "%s/catalog-v2-%u-%lld.db", dir, app.conf.products, app.conf.seed);
        app.conf.db = dbpath;
    }
    if (test && !serving) {
        fprintf(stderr, PROG ": nothing to listen on (-a ADDR or listen: in the config)\n");
        return 1;
    }
    if (test && access(app.conf.db, F_OK) != 0) {
        /* the catalog is made at start when missing: a config test only says so */
        printf(PROG ": configuration ok (catalog %s does not exist yet: %u products are generated at start)\n",
               app.conf.db, app.conf.products);
        return 0;
    }
    if (!test && (app.cmdline.generate > 0 || (access(app.conf.db, R_OK) != 0 && serving))) {
        if (shop_catalog_generate(app.conf.db, app.conf.products, (uint64_t)app.conf.seed, err, sizeof(err)) != 0) {
            fprintf(stderr, PROG ": generating %s: %s\n", app.conf.db, err);
            return 1;
        }
        cdn_info("catalog %s: %u products, seed %lld", app.conf.db, app.conf.products, app.conf.seed);
        if (!serving)
            return 0;
    }
    int rc = catalog_probe();
    if (rc >= 0)
        return rc;
    if (!serving) {
        fprintf(stderr, PROG ": nothing to listen on (-a ADDR or listen: in the config)\n");
        return test ? 1 : 2;
    }
    if (test) {
        printf(PROG ": configuration ok (catalog %s, %u products)\n", app.conf.db, app.conf.products);
        return 0;
    }
    return -1;
}

/* ---------------- reload ---------------- */

static void free_doc(void *doc) { cdn_conf_free(doc); }

/* SIGHUP: the header rules, delay and error rate change live; listen, threads, db need a
 * restart. The replaced rules go to cdn_daemon_retire: no request keeps a rule across a loop
 * turn (parked and rendering requests match theirs again when they resume). */
void app_reload(void *data)
{
    (void)data;
    if (app.cmdline.conf_path == NULL) {
        cdn_notice("SIGHUP: logs reopened");
        return;
    }
    struct app_conf nc;
    cdn_conf_t *doc;
    char err[512];
    if (app_conf_load(&app.cmdline, &nc, &doc, err, sizeof(err)) != 0) {
        cdn_err("reload failed, keeping the running config: %s", err);
        return;
    }
    struct shop_rules *nr = cdn_conf_alloc(doc, sizeof(*nr));
    *nr = app_conf_rules(&nc);
    app.conf.delay = nc.delay;
    app.conf.error_rate = nc.error_rate;
    __atomic_store_n(&app.rules, nr, __ATOMIC_RELEASE);
    if (app.reload_doc != NULL && cdn_daemon_retire(app.d, app.reload_doc, free_doc) != 0)
        cdn_warn("reload: cannot retire the previous config (out of memory): it stays");
    app.reload_doc = doc;
    cdn_notice("SIGHUP: config %s reloaded (%zu header rules)", app.cmdline.conf_path, nr->n);
}
