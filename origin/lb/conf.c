/* origin/lb/conf.c - shop-lb's settings: defaults, then the YAML file, then the command line, into
 * one struct lb_conf; the same path at start and on every SIGHUP (so a command-line setting is
 * not lost by a reload). Errors name the offending node (file:line:col). */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/proc.h"
#include "origin/lb/lbd.h"

static const char *const alog_formats[] = {"combined", "json", NULL};
static const char *const upstream_engines[] = {"h1", "curl", NULL}; /* enum order: upstream_curl */

static const cdn_conf_field_t backend_fields[] = {
    {"addr", CDN_CT_STR, offsetof(struct conf_backend, addr), CDN_CF_REQUIRED},
    {"weight", CDN_CT_UINT, offsetof(struct conf_backend, weight), 0, 1, 1000},
    {NULL}};
static const cdn_conf_field_t pool_fields[] = {
    {"name", CDN_CT_STR, offsetof(struct conf_pool, name)},
    {"algo", CDN_CT_ENUM, offsetof(struct conf_pool, algo), .enum_names = lb_algo_names},
    {"vnodes", CDN_CT_UINT, offsetof(struct conf_pool, vnodes), 0, 1, 1000},
    {"backends", CDN_CT_LIST, offsetof(struct conf_pool, backends), CDN_CF_REQUIRED, .sub = backend_fields,
     .sub_size = sizeof(struct conf_backend)},
    {NULL}};
static const cdn_conf_field_t route_fields[] = {
    {"prefix", CDN_CT_STR, offsetof(struct conf_route, prefix), CDN_CF_REQUIRED},
    {"pool", CDN_CT_STR, offsetof(struct conf_route, pool), CDN_CF_REQUIRED},
    {NULL}};
static const cdn_conf_field_t protect_fields[] = {
    {"prefix", CDN_CT_STR, offsetof(struct conf_protect, prefix), CDN_CF_REQUIRED},
    {"token", CDN_CT_STR, offsetof(struct conf_protect, token), CDN_CF_REQUIRED},
    {NULL}};
static const cdn_conf_field_t health_fields[] = {
    {"enabled", CDN_CT_BOOL, offsetof(struct conf_health, enabled)},
    {"path", CDN_CT_STR, offsetof(struct conf_health, path)},
    {"interval", CDN_CT_DURATION, offsetof(struct conf_health, interval)},
    {"timeout", CDN_CT_DURATION, offsetof(struct conf_health, timeout)},
    {"rise", CDN_CT_UINT, offsetof(struct conf_health, rise), 0, 1, 100},
    {"fall", CDN_CT_UINT, offsetof(struct conf_health, fall), 0, 1, 100},
    {"passive_fails", CDN_CT_UINT, offsetof(struct conf_health, passive_fails), 0, 0, 1000},
    {"slow_start", CDN_CT_DURATION, offsetof(struct conf_health, slow_start)},
    {NULL}};
static const cdn_conf_field_t timeout_fields[] = {
    {"connect", CDN_CT_DURATION, offsetof(struct conf_timeouts, connect)},
    {"first_byte", CDN_CT_DURATION, offsetof(struct conf_timeouts, first_byte)},
    {"idle", CDN_CT_DURATION, offsetof(struct conf_timeouts, idle)},
    {"total", CDN_CT_DURATION, offsetof(struct conf_timeouts, total)},
    {"hedge", CDN_CT_DURATION, offsetof(struct conf_timeouts, hedge)},
    {NULL}};
static const cdn_conf_field_t breaker_fields[] = {
    {"failures", CDN_CT_UINT, offsetof(struct conf_breaker, failures), 0, 0, 1000000},
    {"error_ratio", CDN_CT_DOUBLE, offsetof(struct conf_breaker, error_ratio), 0, 0, 0, 0.0, 1.0},
    {"min_requests", CDN_CT_UINT, offsetof(struct conf_breaker, min_requests), 0, 1, 1000000},
    {"window", CDN_CT_DURATION, offsetof(struct conf_breaker, window)},
    {"open", CDN_CT_DURATION, offsetof(struct conf_breaker, open)},
    {"probes", CDN_CT_UINT, offsetof(struct conf_breaker, probes), 0, 1, 1000},
    {NULL}};
static const cdn_conf_field_t ratelimit_fields[] = {
    {"rate", CDN_CT_STR, offsetof(struct conf_ratelimit, rate)},
    {"burst", CDN_CT_INT, offsetof(struct conf_ratelimit, burst), 0, 1, 1000000000},
    {"key", CDN_CT_STR, offsetof(struct conf_ratelimit, key)},
    {"path_prefix", CDN_CT_STR, offsetof(struct conf_ratelimit, path_prefix)},
    {"name", CDN_CT_STR, offsetof(struct conf_ratelimit, name)},
    {"redis", CDN_CT_STR, offsetof(struct conf_ratelimit, redis)},
    {"redis_timeout", CDN_CT_DURATION, offsetof(struct conf_ratelimit, redis_timeout)},
    {NULL}};
static const cdn_conf_field_t conf_fields[] = {
    {"listen", CDN_CT_ADDR, offsetof(struct lb_conf, listen), CDN_CF_REQUIRED, .addr_default_host = "127.0.0.1"},
    {"admin", CDN_CT_ADDR, offsetof(struct lb_conf, admin), .addr_default_host = "127.0.0.1"},
    {"admin_token_file", CDN_CT_STR, offsetof(struct lb_conf, admin_token_file)},
    {"error_log", CDN_CT_STR, offsetof(struct lb_conf, error_log)},
    {"log_level", CDN_CT_STR, offsetof(struct lb_conf, log_level)},
    {"access_log", CDN_CT_STR, offsetof(struct lb_conf, access_log)},
    {"access_log_format", CDN_CT_ENUM, offsetof(struct lb_conf, access_log_format), .enum_names = alog_formats},
    {"upstream_engine", CDN_CT_ENUM, offsetof(struct lb_conf, upstream_curl), .enum_names = upstream_engines},
    {"pid_file", CDN_CT_STR, offsetof(struct lb_conf, pid_file)},
    {"retries", CDN_CT_UINT, offsetof(struct lb_conf, retries), 0, 0, 10},
    {"threads", CDN_CT_UINT, offsetof(struct lb_conf, threads), 0, 1, MAX_THREADS},
    {"graceful_timeout", CDN_CT_DURATION, offsetof(struct lb_conf, graceful_timeout)},
    {"timeouts", CDN_CT_STRUCT, offsetof(struct lb_conf, timeouts), .sub = timeout_fields},
    {"health", CDN_CT_STRUCT, offsetof(struct lb_conf, health), .sub = health_fields},
    {"breaker", CDN_CT_STRUCT, offsetof(struct lb_conf, breaker), .sub = breaker_fields},
    {"pools", CDN_CT_MAP, offsetof(struct lb_conf, pools), CDN_CF_REQUIRED, .sub = pool_fields,
     .sub_size = sizeof(struct conf_pool)},
    {"routes", CDN_CT_LIST, offsetof(struct lb_conf, routes), 0, .sub = route_fields, .sub_size = sizeof(struct conf_route)},
    {"protected", CDN_CT_LIST, offsetof(struct lb_conf, protect), 0, .sub = protect_fields,
     .sub_size = sizeof(struct conf_protect)},
    {"rate_limit", CDN_CT_STRUCT, offsetof(struct lb_conf, rate_limit), .sub = ratelimit_fields},
    {NULL}};

static void conf_defaults(struct lb_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->log_level = "info";
    c->retries = 2;
    c->threads = 1;
    c->graceful_timeout = 10000;
    c->timeouts = (struct conf_timeouts){.connect = 1000, .first_byte = 15000, .idle = 30000, .total = 300000};
    c->rate_limit.redis_timeout = 20;
    c->health = (struct conf_health){.enabled = 1, .path = "/healthz", .interval = 1000, .timeout = 1000,
                                     .slow_start = 10000, .rise = 2, .fall = 2, .passive_fails = 3};
    c->breaker = (struct conf_breaker){.min_requests = 20, .window = 10000, .open = 5000, .probes = 1};
}

/* "http://host:port/" or "host:port" -> "host:port"; its length, or 0 when malformed. */
size_t lb_norm_addr(const char *addr, const char **out)
{
    const char *a = addr;
    if (strncmp(a, "http://", 7) == 0)
        a += 7;
    size_t al = strlen(a);
    while (al > 0 && a[al - 1] == '/')
        al--;
    *out = a;
    return al == 0 || al >= sizeof(((struct backend *)0)->addr) || memchr(a, ':', al) == NULL ? 0 : al;
}

/* What a decoded file's values must be beyond their types, each error at the offending node
 * (file:line:col): backends that are host:port, routes to pools that exist, prefixes that start
 * with '/', a health path, a log level. At start-up and on SIGHUP, before sync_config (which checks
 * again what depends on the running state: the pool count with removed pools). */
static int conf_check(cdn_conf_t *c, const struct lb_conf *nc, cdn_conf_err_t *err)
{
    const cdn_conf_node_t *root = cdn_conf_root(c), *pools = cdn_conf_get(root, "pools");
    const cdn_conf_node_t *routes = cdn_conf_get(root, "routes"), *protect = cdn_conf_get(root, "protected");
    const struct conf_pool *cps = nc->pools.items;
    const struct conf_route *crs = nc->routes.items;
    const struct conf_protect *prs = nc->protect.items;
    if (nc->log_level != NULL && cdn_log_level_parse(nc->log_level) < 0)
        return cdn_conf_fail(c, cdn_conf_get(root, "log_level"), err, "log_level must be debug, info, notice, warn or error");
    if (nc->health.path == NULL || nc->health.path[0] != '/')
        return cdn_conf_fail(c, cdn_conf_get(cdn_conf_get(root, "health"), "path"), err, "health.path must start with '/'");
    if (nc->pools.n > MAX_POOLS)
        return cdn_conf_fail(c, pools, err, "at most %d pools", MAX_POOLS);
    for (size_t i = 0; i < nc->pools.n; i++) {
        const cdn_conf_node_t *pn = cdn_conf_value(pools, i), *bn = cdn_conf_get(pn, "backends");
        if (strlen(cps[i].name) >= sizeof(((struct pool *)0)->name))
            return cdn_conf_fail(c, cdn_conf_key(pools, i), err, "pool name longer than %zu bytes",
                                 sizeof(((struct pool *)0)->name) - 1);
        if (cps[i].backends.n == 0 || cps[i].backends.n > MAX_BACKENDS)
            return cdn_conf_fail(c, bn != NULL ? bn : pn, err, "pool %s: 1 to %d backends", cps[i].name, MAX_BACKENDS);
        for (size_t k = 0; k < cps[i].backends.n; k++) {
            const char *a, *addr = ((const struct conf_backend *)cps[i].backends.items)[k].addr;
            if (lb_norm_addr(addr, &a) == 0)
                return cdn_conf_fail(c, cdn_conf_get(cdn_conf_item(bn, k), "addr"), err,
                                     "pool %s: backend '%s': expected host:port or http://host:port", cps[i].name, addr);
        }
    }
    if (nc->routes.n > sizeof(lb.routes) / sizeof(lb.routes[0]))
        return cdn_conf_fail(c, routes, err, "at most %zu routes", sizeof(lb.routes) / sizeof(lb.routes[0]));
    for (size_t i = 0; i < nc->routes.n; i++) {
        const cdn_conf_node_t *rn = cdn_conf_item(routes, i);
        size_t k;
        for (k = 0; k < nc->pools.n && strcmp(cps[k].name, crs[i].pool) != 0; k++)
            ;
        if (crs[i].prefix[0] != '/')
            return cdn_conf_fail(c, cdn_conf_get(rn, "prefix"), err, "route %s: prefix must start with '/'", crs[i].prefix);
        if (k == nc->pools.n)
            return cdn_conf_fail(c, cdn_conf_get(rn, "pool"), err, "route %s: names an unknown pool '%s'", crs[i].prefix,
                                 crs[i].pool);
    }
    for (size_t i = 0; i < nc->protect.n; i++) {
        const cdn_conf_node_t *pn = cdn_conf_item(protect, i);
        if (prs[i].prefix[0] != '/')
            return cdn_conf_fail(c, cdn_conf_get(pn, "prefix"), err, "protected %s: prefix must start with '/'",
                                 prs[i].prefix);
        if (prs[i].token[0] == '\0')
            return cdn_conf_fail(c, cdn_conf_get(pn, "token"), err, "protected %s: token must not be empty", prs[i].prefix);
    }
    const cdn_conf_node_t *rln = cdn_conf_get(root, "rate_limit");
    const char *bad;
    char why[256];
    if (rln != NULL && lb_limit_conf_check(&nc->rate_limit, &bad, why, sizeof(why)) != 0)
        return cdn_conf_fail(c, bad != NULL && cdn_conf_get(rln, bad) != NULL ? cdn_conf_get(rln, bad) : rln, err, "%s", why);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " [options]\n"
               "L7 load balancer and API gateway for the lab shop.\n\n"
               "  -a, --listen ADDR          listen on ADDR (quick mode: one pool, route /)\n"
               "  -b, --backend URL          a backend (http://host:port or host:port), repeatable\n"
               "      --algo A               rr | leastconn | hash-client | hash-url (default rr)\n"
               "      --admin ADDR           admin listener (/healthz /metrics /backends)\n"
               "      --admin-token-file F   bearer token for the admin's POST /backends (else 403)\n"
               "      --retries N            retries of idempotent requests (default 2)\n"
               "      --threads N            worker threads, one event loop each (default 1)\n"
               "      --health-interval MS   active check interval (default 1000)\n"
               "      --rise N / --fall N    checks to come up / go down (default 2 / 2)\n"
               "      --slow-start MS        weight ramp after a return (default 10000)\n"
               "      --no-health            no active checks (backends start up)\n"
               "      --connect-timeout MS / --first-byte-timeout MS\n"
               "      --access-log FILE / --error-log FILE / --pid-file FILE\n"
               "      --access-log-format combined|json   (default combined)\n"
               "      --upstream-engine E    h1 (default): GET/HEAD to the apps on cdn_httpc's HTTP/1.1\n"
               "                             engine (docs/HTTPC.md); curl: everything on libcurl\n"
               "  -c, --config FILE          YAML config (see origin/examples/shop-lb.yaml)\n"
               "  -t, --test                 check the config and exit\n"
               "  -V, --version / -h, --help\n");
}

/* A number from lo to hi, or a usage error naming the option. */
static int num(const char *arg, long lo, long hi, const char *what, long *out)
{
    char *e;
    long v = strtol(arg, &e, 10);
    if (*arg == '\0' || *e != '\0' || v < lo || v > hi) {
        fprintf(stderr, PROG ": %s wants a number from %ld to %ld\n", what, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int lb_cmdline_parse(int argc, char **argv, struct lb_cmdline *cl)
{
    enum { O_ALGO = 256, O_ADMIN, O_RETRIES, O_HINT, O_RISE, O_FALL, O_SLOW, O_NOHEALTH, O_CTO, O_FBTO, O_ALOG, O_ELOG, O_PID, O_THREADS, O_ALOGF, O_ENGINE };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'a'}, {"backend", required_argument, NULL, 'b'},
        {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'}, {"help", no_argument, NULL, 'h'},
        {"algo", required_argument, NULL, O_ALGO}, {"admin", required_argument, NULL, O_ADMIN},
        {"admin-token-file", required_argument, NULL, 'T'},
        {"retries", required_argument, NULL, O_RETRIES}, {"health-interval", required_argument, NULL, O_HINT},
        {"rise", required_argument, NULL, O_RISE}, {"fall", required_argument, NULL, O_FALL},
        {"slow-start", required_argument, NULL, O_SLOW}, {"no-health", no_argument, NULL, O_NOHEALTH},
        {"connect-timeout", required_argument, NULL, O_CTO}, {"first-byte-timeout", required_argument, NULL, O_FBTO},
        {"access-log", required_argument, NULL, O_ALOG}, {"error-log", required_argument, NULL, O_ELOG},
        {"access-log-format", required_argument, NULL, O_ALOGF},
        {"upstream-engine", required_argument, NULL, O_ENGINE},
        {"pid-file", required_argument, NULL, O_PID}, {"threads", required_argument, NULL, O_THREADS},
        {NULL, 0, NULL, 0}};
    int ch, bad = 0;
    *cl = (struct lb_cmdline){.algo = LB_RR, .retries = -1, .threads = -1, .hint = -1, .rise = -1, .fall = -1,
                              .slow = -1, .cto = -1, .fbto = -1, .alog_format = -1,
                              .engine = -1};
    while (!bad && (ch = getopt_long(argc, argv, "a:b:c:tVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'a': cl->listen = optarg; break;
        case 'b':
            if (cl->nb >= MAX_BACKENDS) {
                fprintf(stderr, PROG ": at most %d backends\n", MAX_BACKENDS);
                return 3;
            }
            cl->backends[cl->nb++] = optarg;
            break;
        case 'c': cl->conf_path = optarg; break;
        case 't': cl->test = 1; break;
        case 'V': cdn_print_version(PROG); return 1;
        case 'h': usage(stdout); return 1;
        case O_ALGO:
            if ((cl->algo = lb_algo_parse(optarg)) < 0) {
                fprintf(stderr, PROG ": --algo wants rr, leastconn, hash-client or hash-url\n");
                return 3;
            }
            break;
        case O_ADMIN: cl->admin = optarg; break;
        case 'T': cl->admin_token_file = optarg; break;
        case O_RETRIES: bad = num(optarg, 0, 10, "--retries", &cl->retries); break;
        case O_THREADS: bad = num(optarg, 1, MAX_THREADS, "--threads", &cl->threads); break;
        case O_HINT: bad = num(optarg, 10, 3600000, "--health-interval", &cl->hint); break;
        case O_RISE: bad = num(optarg, 1, 100, "--rise", &cl->rise); break;
        case O_FALL: bad = num(optarg, 1, 100, "--fall", &cl->fall); break;
        case O_SLOW: bad = num(optarg, 0, 3600000, "--slow-start", &cl->slow); break;
        case O_NOHEALTH: cl->nohealth = 1; break;
        case O_CTO: bad = num(optarg, 1, 600000, "--connect-timeout", &cl->cto); break;
        case O_FBTO: bad = num(optarg, 1, 3600000, "--first-byte-timeout", &cl->fbto); break;
        case O_ALOG: cl->alog = optarg; break;
        case O_ALOGF:
            if ((cl->alog_format = cdn_conf_enum_index(alog_formats, optarg)) < 0) {
                fprintf(stderr, PROG ": --access-log-format combined|json\n");
                return 3;
            }
            break;
        case O_ENGINE:
            if ((cl->engine = cdn_conf_enum_index(upstream_engines, optarg)) < 0) {
                fprintf(stderr, PROG ": --upstream-engine h1|curl\n");
                return 3;
            }
            break;
        case O_ELOG: cl->elog = optarg; break;
        case O_PID: cl->pid = optarg; break;
        default: usage(stderr); return 3;
        }
    }
    if (bad)
        return 3;
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n", argv[optind]);
        return 3;
    }
    if (cl->conf_path == NULL && (cl->listen == NULL || cl->nb == 0)) {
        fprintf(stderr, PROG ": give -c FILE, or -a ADDR with at least one -b BACKEND (see --help)\n");
        return 3;
    }
    return 0;
}

static int parse_addr(const char *text, struct cdn_conf_addr *a, const char *what, char *err, size_t errlen)
{
    a->len = sizeof(a->ss);
    if (cdn_parse_addr(text, "127.0.0.1", &a->ss, &a->len) != 0) {
        snprintf(err, errlen, "bad %s address '%s'", what, text);
        return -1;
    }
    return 0;
}

/* The command line wins over the file. */
static int apply_cmdline(const struct lb_cmdline *cl, struct lb_conf *c, char *err, size_t errlen)
{
    if (cl->listen != NULL && parse_addr(cl->listen, &c->listen, "listen", err, errlen) != 0)
        return -1;
    if (cl->admin != NULL && parse_addr(cl->admin, &c->admin, "admin", err, errlen) != 0)
        return -1;
    if (cl->admin_token_file != NULL)
        c->admin_token_file = cl->admin_token_file;
    if (cl->retries >= 0) c->retries = (unsigned)cl->retries;
    if (cl->threads > 0) c->threads = (unsigned)cl->threads;
    if (cl->hint > 0) c->health.interval = (uint64_t)cl->hint, c->health.timeout = (uint64_t)cl->hint;
    if (cl->rise > 0) c->health.rise = (unsigned)cl->rise;
    if (cl->fall > 0) c->health.fall = (unsigned)cl->fall;
    if (cl->slow >= 0) c->health.slow_start = (uint64_t)cl->slow;
    if (cl->nohealth) c->health.enabled = 0;
    if (cl->cto > 0) c->timeouts.connect = (uint64_t)cl->cto;
    if (cl->fbto > 0) c->timeouts.first_byte = (uint64_t)cl->fbto;
    if (cl->alog) c->access_log = cl->alog;
    if (cl->alog_format >= 0) c->access_log_format = cl->alog_format;
    if (cl->engine >= 0) c->upstream_curl = cl->engine;
    if (cl->elog) c->error_log = cl->elog;
    if (cl->pid) c->pid_file = cl->pid;
    if (c->health.path == NULL || c->health.path[0] != '/') {
        snprintf(err, errlen, "health.path must start with '/'");
        return -1;
    }
    if (cdn_log_level_parse(c->log_level) < 0) {
        snprintf(err, errlen, "log_level must be debug, info, notice, warn or error");
        return -1;
    }
    return 0;
}

int lb_conf_load(const struct lb_cmdline *cl, struct lb_conf *c, cdn_conf_t **doc, char *err, size_t errlen)
{
    conf_defaults(c);
    *doc = NULL;
    if (cl->conf_path != NULL) {
        cdn_conf_err_t cerr;
        *doc = cdn_conf_load_file(cl->conf_path, &cerr);
        if (*doc == NULL || cdn_conf_decode(*doc, cdn_conf_root(*doc), conf_fields, c, &cerr) != 0 ||
            conf_check(*doc, c, &cerr) != 0) {
            snprintf(err, errlen, "%s", cerr.msg);
            cdn_conf_free(*doc);
            *doc = NULL;
            return -1;
        }
    }
    if (apply_cmdline(cl, c, err, errlen) != 0) {
        cdn_conf_free(*doc);
        *doc = NULL;
        return -1;
    }
    return 0;
}
