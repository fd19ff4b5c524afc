/* edge/conf.c - cdn-edge's settings (see conf.h): the option table and usage, the YAML keys, the
 * checks beyond types, the first load and the SIGHUP reload with its "needs a restart" log. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "cdn/admin.h"
#include "cdn/log.h"
#include "cdn/proc.h"
#include "edge/conf.h"
#include "edge/http/accept.h"
#include "edge/store/admit.h"
#include "edge/vhost/vhconf.h"

/* --upstream-engine / upstream_engine: 0 = h1 (the HTTP/1.1 engine of cdn_httpc for plain
 * GET/HEAD), 1 = curl (libcurl for every upstream request), -1 = neither */
static int edge_engine_parse(const char *v)
{
    static const char *const engines[] = {"h1", "curl", NULL}; /* index: upstream_curl */
    return cdn_conf_enum_index(engines, v);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cdn-edge -a ADDR:PORT -b ORIGIN-URL [options]\n"
            "       cdn-edge -c FILE [-t]\n"
            "  -a, --listen ADDR:PORT   plain listener: HTTP/1.1 and h2c (prior knowledge); repeatable\n"
            "  -b, --backend URL        origin base URL (http://127.0.0.1:8000): the default vhost\n"
            "      --parent URL         parent (shield) edge; repeatable (rendezvous hashing by key)\n"
            "      --parent-only        never go to the origin directly (502 when no parent is up)\n"
            "      --parent-retry MS    skip a parent that refused connections this long (default 10000)\n"
            "      --parent-check MS    GET /healthz on each parent this often (default 5000; 0: off);\n"
            "                           2 failures in a row mark it down, 2 successes up again\n"
            "      --served-by NAME     add X-Served-By: NAME to every response\n"
            "      --tls ADDR:PORT      TLS listener (ALPN h2, http/1.1); needs --cert and --key\n"
            "      --cert FILE, --key FILE\n"
            "  -A, --admin ADDR:PORT    admin listener: /healthz /metrics /purge?url=|tag= /drain (default none)\n"
            "  -d, --dir DIR            RocksDB folder (default: a fresh temporary folder)\n"
            "  -s, --ram SIZE           RAM tier bytes (default 256MiB)\n"
            "  -S, --disk SIZE          RocksDB tier bytes (default 4GiB)\n"
            "      --expire-sweep MS    remove objects stale beyond their stale-while-revalidate /\n"
            "                           stale-if-error windows this often (default 60000; 0: never)\n"
            "      --expire-keep S      ... and keep objects with a validator S seconds longer, for\n"
            "                           a cheap 304 revalidation (default 0)\n"
            "      --range-fetch-above SIZE  a Range miss on an object known to be larger asks\n"
            "                           upstream for the range only, uncached (default 0: whole)\n"
            "      --policy P           RAM eviction policy: adaptive (default), s3fifo, sieve, lru,\n"
            "                           lfu-size or adaptive2 (the previous default)\n"
            "      --disk-admit A       RocksDB tier admission: second-hit (default: written on its\n"
            "                           second miss) or all (every stored object is written)\n"
            "  -n, --name NAME          cache name in Cache-Status: cdn-edge-NAME (default edge); an\n"
            "                           token: a letter, then letters, digits or !#$%%&'*+-.^_`|~\n"
            "  -w, --workers N          worker threads, 1 to 64 (default: number of CPUs)\n"
            "      --edge-cc NAME       edge-specific targeted Cache-Control field (RFC 9213)\n"
            "      --drop-param NAME    query parameter left out of cache keys (prefix*); repeatable\n"
            "      --sort-params        sort query parameters in cache keys\n"
            "      --timeout MS         origin transfer timeout (default 30000)\n"
            "      --connect-timeout MS origin connect timeout (default 3000); also bounds the wait\n"
            "                           for a fetch slot (--max-fetches)\n"
            "      --upstream-engine E  h1 (default): plain http:// GET/HEAD to origins and parents\n"
            "                           on the HTTP/1.1 client over h2o sockets; curl: all on libcurl\n"
            "      --max-fetches N      concurrent requests to each origin (default 256, 0 = no\n"
            "                           limit); more wait in a FIFO queue, then 503\n"
            "      --h2-reset-limit N   HTTP/2 streams a client may reset per connection per second\n"
            "                           before GOAWAY (default 100, 0 = no bound)\n"
            "      --h2-empty-frame-limit N  empty HTTP/2 frames (DATA, HEADERS, CONTINUATION) a\n"
            "                           client may send per connection per second before GOAWAY\n"
            "                           and close (default 100, 0 = no bound)\n"
            "      --send-timeout MS    a response the client takes nothing of for this long is\n"
            "                           ended: RST_STREAM on h2, close on HTTP/1 (default 30000,\n"
            "                           0 = never)\n"
            "      --edge-key KEY       shared by the edges of one CDN: sent to parents, and what\n"
            "                           makes a request another edge's (CDN-Edge-Key; none: no one)\n"
            "      --edge-key-file FILE the same, read from FILE's first line (not shown by ps)\n"
            "      --purge-bus URL      Redis purge bus (redis://HOST:PORT): apply the purges of its\n"
            "                           stream, waiting for the backlog before serving\n"
            "      --purge-bus-auth-file FILE  its password (Redis AUTH), FILE's first line\n"
            "      --admin-token-file FILE  bearer token for the admin's purge and drain (without\n"
            "                           one they are off; needed for an admin address off loopback)\n"
            "      --graceful-timeout MS  on SIGTERM, wait this long at most for fetches in flight\n"
            "      --stale-first-byte MS  a validation of a stale copy that stale-if-error allows\n"
            "                           waits this long for the upstream's head, then serves the\n"
            "                           stale copy and refreshes in the background (default 0: off)\n"
            "                           (default 5000)\n"
            "  -p, --pid-file FILE\n"
            "      --access-log FILE    JSON lines access log (- for stdout)\n"
            "  -c, --config FILE        YAML config (see docs/EDGE.md)\n"
            "  -t, --test               check the configuration and exit\n"
            "  -l, --log-level LEVEL    debug|info|notice|warn|error\n"
            "  -V, --version, -h, --help\n");
}

/* The cache name goes into Cache-Status (an sf-token, RFC 8941 3.3.4), Via (a pseudonym: a
 * token, RFC 9110 7.6.3) and CDN-Loop (a token, RFC 8586): what all three accept is a letter
 * first, then tchar. */
static int name_ok(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (s == NULL || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr(tchar, *s) != NULL))
            return 0;
    return 1;
}
#define NAME_RULE "a token: a letter first, then letters, digits or !#$%&'*+-.^_`|~"

/* The first line of a key file (at least 16 visible characters), or NULL. Kept until exit. */
static const char *read_key_file(const char *path)
{
    static char key[256];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *r = fgets(key, sizeof(key), f);
    fclose(f);
    if (r == NULL)
        return NULL;
    key[strcspn(key, "\r\n")] = '\0';
    for (const char *p = key; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return NULL;
    return strlen(key) >= 16 ? key : NULL;
}

/* The admin token (admin_token_file / --admin-token-file), kept until exit. NULL with err set. */
static char admin_token[256];
static const char *admin_token_load(const char *path, char *err, size_t errlen)
{
    return cdn_token_read(path, admin_token, sizeof(admin_token), err, errlen) == 0 ? admin_token : NULL;
}

static int add_listen(struct edge_settings *s, const char *addr, int tls)
{
    if (s->nlisten == EDGE_MAX_LISTEN)
        return -1;
    struct edge_listen *l = &s->listen[s->nlisten];
    if (cdn_parse_addr(addr, "127.0.0.1", &l->ss, &l->len) < 0)
        return -1;
    l->tls = tls;
    s->nlisten++;
    return 0;
}

/* -c FILE: the same settings as the options, as YAML. */
struct file_conf {
    const char *disk_admit;
    const char *upstream_engine; /* h1 (default) or curl */
    const char *name, *origin, *admin, *dir, *pid_file, *policy, *edge_cc, *cert, *key, *log_level, *served_by,
        *parent_check_path, *edge_key, *admin_token_file;
    struct cdn_conf_list listen, tls_listen, drop_params, parents, vhosts, image_paths, image_formats;
    uint64_t ram, disk, max_object, range_fetch_above, expire_sweep, expire_keep, connect_timeout, timeout, send_timeout, heuristic_max, parent_retry,
        parent_check_interval, parent_check_timeout, graceful_timeout;
    long long workers, max_fetches, h2_reset_limit, h2_empty_frame_limit, parent_check_rise, parent_check_fall, rate_limit_keys;
    struct edge_rl_conf rate_limit;
    int sort_params, store_set_cookie, parent_only;
    struct edge_bus_conf bus;
    uint64_t stale_first_byte;         /* resilience (edge/fetch/resil.h) */
    struct file_breaker {
        long long failures, min_requests, probes;
        double error_ratio;
        uint64_t window, open, grace, first_byte;
    } breaker;
    struct file_budget {
        double ratio;
        long long min;
        uint64_t window, backoff, backoff_max;
    } retry_budget;
    long long fetch_queue_max;
    uint64_t fill_memory;
};

static const cdn_conf_field_t budget_fields[] = {
    {"ratio", CDN_CT_DOUBLE, offsetof(struct file_budget, ratio), 0, 0, 0, 0.0, 10.0},
    {"min", CDN_CT_INT, offsetof(struct file_budget, min), 0, 0, 1000000},
    {"window", CDN_CT_DURATION, offsetof(struct file_budget, window)},
    {"backoff", CDN_CT_DURATION, offsetof(struct file_budget, backoff)},
    {"backoff_max", CDN_CT_DURATION, offsetof(struct file_budget, backoff_max)},
    {NULL},
};

static const cdn_conf_field_t breaker_fields[] = {
    {"failures", CDN_CT_INT, offsetof(struct file_breaker, failures), 0, 0, 1000000},
    {"error_ratio", CDN_CT_DOUBLE, offsetof(struct file_breaker, error_ratio), 0, 0, 0, 0.0, 1.0},
    {"min_requests", CDN_CT_INT, offsetof(struct file_breaker, min_requests), 0, 1, 1000000},
    {"window", CDN_CT_DURATION, offsetof(struct file_breaker, window)},
    {"open", CDN_CT_DURATION, offsetof(struct file_breaker, open)},
    {"probes", CDN_CT_INT, offsetof(struct file_breaker, probes), 0, 1, 1000},
    {"grace", CDN_CT_DURATION, offsetof(struct file_breaker, grace)},
    {"first_byte", CDN_CT_DURATION, offsetof(struct file_breaker, first_byte)},
    {NULL},
};

/* purge_bus: {redis: redis://HOST:PORT, stream: NAME, name: GROUP, start: wait|serve,
 * retry_after: 5s, max_deliveries: 5, block: 1s} */
struct file_bus {
    const char *redis, *stream, *name, *start, *auth_file;
    uint64_t retry_after, block;
    long long max_deliveries;
};
static const cdn_conf_field_t bus_fields[] = {
    {"redis", CDN_CT_STR, offsetof(struct file_bus, redis), CDN_CF_REQUIRED},
    {"stream", CDN_CT_STR, offsetof(struct file_bus, stream)},
    {"name", CDN_CT_STR, offsetof(struct file_bus, name)},
    {"start", CDN_CT_STR, offsetof(struct file_bus, start)},
    {"retry_after", CDN_CT_DURATION, offsetof(struct file_bus, retry_after)},
    {"block", CDN_CT_DURATION, offsetof(struct file_bus, block)},
    {"max_deliveries", CDN_CT_INT, offsetof(struct file_bus, max_deliveries), 0, 1, 1000},
    {"auth_file", CDN_CT_STR, offsetof(struct file_bus, auth_file)},
    {NULL},
};

static int bus_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    struct edge_bus_conf *b = out;
    struct file_bus f = {0};
    if (cdn_conf_kind(n) != CDN_CONF_MAP)
        return cdn_conf_fail(c, n, err, "expected a map {redis: redis://HOST:PORT, stream: NAME, name: NAME, start: "
                                        "wait|serve, retry_after: 5s, max_deliveries: 5}");
    if (cdn_conf_decode(c, n, bus_fields, &f, err) < 0)
        return -1;
    char host[256];
    int port;
    if (edge_purge_redis_url(f.redis, host, sizeof(host), &port) < 0)
        return cdn_conf_fail(c, cdn_conf_get(n, "redis"), err, "redis '%s': expected redis://HOST:PORT", f.redis);
    if (f.start != NULL && strcmp(f.start, "wait") != 0 && strcmp(f.start, "serve") != 0)
        return cdn_conf_fail(c, cdn_conf_get(n, "start"), err, "start must be wait or serve");
    if (f.name != NULL && !name_ok(f.name))
        return cdn_conf_fail(c, cdn_conf_get(n, "name"), err, "name '%s' must be %s", f.name, NAME_RULE);
    *b = (struct edge_bus_conf){.redis = f.redis, .stream = f.stream, .name = f.name,
                                .serve_early = f.start != NULL && strcmp(f.start, "serve") == 0,
                                .retry_after_ms = f.retry_after, .block_ms = f.block,
                                .max_deliveries = (unsigned)f.max_deliveries, .auth_file = f.auth_file};
    return 0;
}

static const cdn_conf_field_t conf_fields[] = {
    {"name", CDN_CT_STR, offsetof(struct file_conf, name)},
    {"origin", CDN_CT_STR, offsetof(struct file_conf, origin)},
    {"parents", CDN_CT_STRLIST, offsetof(struct file_conf, parents)},
    {"parent_only", CDN_CT_BOOL, offsetof(struct file_conf, parent_only)},
    {"parent_retry", CDN_CT_DURATION, offsetof(struct file_conf, parent_retry)},
    {"served_by", CDN_CT_STR, offsetof(struct file_conf, served_by)},
    {"parent_check_interval", CDN_CT_DURATION, offsetof(struct file_conf, parent_check_interval)},
    {"parent_check_timeout", CDN_CT_DURATION, offsetof(struct file_conf, parent_check_timeout)},
    {"parent_check_rise", CDN_CT_INT, offsetof(struct file_conf, parent_check_rise), 0, 1, 100},
    {"parent_check_fall", CDN_CT_INT, offsetof(struct file_conf, parent_check_fall), 0, 1, 100},
    {"parent_check_path", CDN_CT_STR, offsetof(struct file_conf, parent_check_path)},
    {"vhosts", CDN_CT_CUSTOM, offsetof(struct file_conf, vhosts), 0, 0, 0, 0, 0, NULL, NULL, 0, edge_vhconf_decode},
    {"listen", CDN_CT_STRLIST, offsetof(struct file_conf, listen)},
    {"tls_listen", CDN_CT_STRLIST, offsetof(struct file_conf, tls_listen)},
    {"cert", CDN_CT_STR, offsetof(struct file_conf, cert)},
    {"key", CDN_CT_STR, offsetof(struct file_conf, key)},
    {"admin", CDN_CT_STR, offsetof(struct file_conf, admin)},
    {"dir", CDN_CT_STR, offsetof(struct file_conf, dir)},
    {"pid_file", CDN_CT_STR, offsetof(struct file_conf, pid_file)},
    {"ram", CDN_CT_SIZE, offsetof(struct file_conf, ram)},
    {"disk", CDN_CT_SIZE, offsetof(struct file_conf, disk)},
    {"ram_policy", CDN_CT_STR, offsetof(struct file_conf, policy)},
    {"disk_admit", CDN_CT_STR, offsetof(struct file_conf, disk_admit)},
    {"max_object", CDN_CT_SIZE, offsetof(struct file_conf, max_object)},
    {"range_fetch_above", CDN_CT_SIZE, offsetof(struct file_conf, range_fetch_above)},
    {"expire_sweep", CDN_CT_DURATION, offsetof(struct file_conf, expire_sweep)},
    {"expire_keep", CDN_CT_DURATION, offsetof(struct file_conf, expire_keep)},
    {"workers", CDN_CT_INT, offsetof(struct file_conf, workers), 0, 1, CDN_DAEMON_MAX_THREADS},
    {"max_fetches", CDN_CT_INT, offsetof(struct file_conf, max_fetches), 0, 0, 1000000},
    {"edge_key", CDN_CT_STR, offsetof(struct file_conf, edge_key)},
    {"admin_token_file", CDN_CT_STR, offsetof(struct file_conf, admin_token_file)},
    {"purge_bus", CDN_CT_CUSTOM, offsetof(struct file_conf, bus), 0, 0, 0, 0, 0, NULL, NULL, 0, bus_decode},
    {"h2_reset_limit", CDN_CT_INT, offsetof(struct file_conf, h2_reset_limit), 0, 0, 1000000},
    {"h2_empty_frame_limit", CDN_CT_INT, offsetof(struct file_conf, h2_empty_frame_limit), 0, 0, 1000000},
    {"rate_limit", CDN_CT_CUSTOM, offsetof(struct file_conf, rate_limit), 0, 0, 0, 0, 0, NULL, NULL, 0, edge_rlconf_decode},
    {"rate_limit_keys", CDN_CT_INT, offsetof(struct file_conf, rate_limit_keys), 0, CDN_RL_WAYS, 1 << 26},
    {"edge_cache_control", CDN_CT_STR, offsetof(struct file_conf, edge_cc)},
    {"drop_params", CDN_CT_STRLIST, offsetof(struct file_conf, drop_params)},
    {"sort_params", CDN_CT_BOOL, offsetof(struct file_conf, sort_params)},
    {"image_paths", CDN_CT_STRLIST, offsetof(struct file_conf, image_paths)},
    {"image_formats", CDN_CT_STRLIST, offsetof(struct file_conf, image_formats)},
    {"store_set_cookie", CDN_CT_BOOL, offsetof(struct file_conf, store_set_cookie)},
    {"heuristic_max", CDN_CT_DURATION, offsetof(struct file_conf, heuristic_max)},
    {"connect_timeout", CDN_CT_DURATION, offsetof(struct file_conf, connect_timeout)},
    {"upstream_engine", CDN_CT_STR, offsetof(struct file_conf, upstream_engine)},
    {"timeout", CDN_CT_DURATION, offsetof(struct file_conf, timeout)},
    {"send_timeout", CDN_CT_DURATION, offsetof(struct file_conf, send_timeout)},
    {"log_level", CDN_CT_STR, offsetof(struct file_conf, log_level)},
    {"graceful_timeout", CDN_CT_DURATION, offsetof(struct file_conf, graceful_timeout)},
    {"stale_first_byte_timeout", CDN_CT_DURATION, offsetof(struct file_conf, stale_first_byte)},
    {"breaker", CDN_CT_STRUCT, offsetof(struct file_conf, breaker), 0, 0, 0, 0, 0, NULL, breaker_fields,
     sizeof(struct file_breaker)},
    {"fetch_queue_max", CDN_CT_INT, offsetof(struct file_conf, fetch_queue_max), 0, 0, 1000000},
    {"fill_memory", CDN_CT_SIZE, offsetof(struct file_conf, fill_memory)},
    {"retry_budget", CDN_CT_STRUCT, offsetof(struct file_conf, retry_budget), 0, 0, 0, 0, 0, NULL, budget_fields,
     sizeof(struct file_budget)},
    {NULL},
};

/* What the file's values must be beyond their types, at the offending node: the cache name, the
 * origin's and the parents' schemes, the log level. At start-up and on SIGHUP. */
static int check_file_values(cdn_conf_t *c, const struct file_conf *fc, cdn_conf_err_t *err)
{
    const cdn_conf_node_t *root = cdn_conf_root(c);
    const char *b;
    if (fc->name != NULL && !name_ok(fc->name))
        return cdn_conf_fail(c, cdn_conf_get(root, "name"), err, "name '%s' must be %s", fc->name, NAME_RULE);
    if (fc->origin != NULL) {
        if (edge_url_base(fc->origin, &b) < 0)
            return cdn_conf_fail(c, cdn_conf_get(root, "origin"), err, "origin '%s' must be an http:// or https:// URL",
                                 fc->origin);
        if (b != fc->origin)
            free((char *)b);
    }
    if (fc->parents.n > EDGE_MAX_PARENTS)
        return cdn_conf_fail(c, cdn_conf_get(root, "parents"), err, "at most %d parents", EDGE_MAX_PARENTS);
    for (size_t i = 0; i < fc->parents.n; i++) {
        const char *u = ((const char **)fc->parents.items)[i];
        if (edge_url_base(u, &b) < 0)
            return cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(root, "parents"), i), err,
                                 "parent '%s' must be an http:// or https:// URL", u);
        if (b != u)
            free((char *)b);
    }
    if (fc->log_level != NULL && cdn_log_level_parse(fc->log_level) < 0)
        return cdn_conf_fail(c, cdn_conf_get(root, "log_level"), err, "log_level must be debug, info, notice, warn or error");
    return 0;
}

/* The file's settings as the first load decoded them (conf_run) and the defaults it decoded them
 * over, from the command line and built in (conf_base): a reload decodes the new file over
 * conf_base and compares it with conf_run to name the keys it changed but cannot apply. */
static struct file_conf conf_base, conf_run;

/* The config document: decoded strings point into it, so it lives until exit. */
static cdn_conf_t *conf_doc;
static void conf_doc_free(void)
{
    cdn_conf_free(conf_doc);
    conf_doc = NULL;
}

/* The file's listen:, tls_listen: and admin: addresses. */
static int file_addresses(struct edge_settings *s, cdn_conf_t *c, const struct file_conf *fc, cdn_conf_err_t *cerr)
{
    const cdn_conf_node_t *root = cdn_conf_root(c);
    for (int tls = 0; tls <= 1; tls++) {
        const struct cdn_conf_list *l = tls ? &fc->tls_listen : &fc->listen;
        const char *key = tls ? "tls_listen" : "listen";
        for (size_t i = 0; i < l->n; i++)
            if (add_listen(s, ((const char **)l->items)[i], tls) < 0)
                return cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(root, key), i), cerr, "bad %s address '%s'%s", key,
                                     ((const char **)l->items)[i], s->nlisten == EDGE_MAX_LISTEN ? " (too many)" : "");
    }
    if (fc->admin && cdn_parse_addr(fc->admin, "127.0.0.1", &s->admin, &s->admin_len) < 0)
        return cdn_conf_fail(c, cdn_conf_get(root, "admin"), cerr, "bad admin address '%s'", fc->admin);
    if (fc->admin_token_file != NULL && admin_token_load(fc->admin_token_file, s->admin_token_err,
                                                         sizeof(s->admin_token_err)) == NULL)
        return cdn_conf_fail(c, cdn_conf_get(root, "admin_token_file"), cerr, "admin_token_file %s",
                             s->admin_token_err);
    return 0;
}

/* The decoded file into the settings (what it leaves out keeps the command line's value). */
static void file_apply(struct edge_settings *s, struct edge_conf *ec, const struct file_conf *fc)
{
    if (fc->log_level && cdn_log_level_parse(fc->log_level) >= 0)
        cdn_log_set_level(cdn_log_level_parse(fc->log_level));
    ec->name = fc->name ? fc->name : ec->name;
    ec->origin = fc->origin ? fc->origin : ec->origin;
    for (size_t i = 0; i < fc->parents.n && s->nparents < EDGE_MAX_PARENTS + 1; i++)
        s->parents[s->nparents++] = ((const char **)fc->parents.items)[i];
    s->parent_only = fc->parent_only;
    s->max_fetches = (unsigned)fc->max_fetches;
    s->health.interval_ms = fc->parent_check_interval;
    s->health.timeout_ms = fc->parent_check_timeout;
    s->health.rise = (unsigned)fc->parent_check_rise;
    s->health.fall = (unsigned)fc->parent_check_fall;
    s->health.path = fc->parent_check_path ? fc->parent_check_path : s->health.path;
    s->file_vhosts = fc->vhosts;
    ec->parent_retry_ms = fc->parent_retry;
    ec->served_by = fc->served_by ? fc->served_by : ec->served_by;
    s->cert = fc->cert ? fc->cert : s->cert;
    s->key = fc->key ? fc->key : s->key;
    s->dir = fc->dir ? fc->dir : s->dir;
    s->pid_file = fc->pid_file ? fc->pid_file : s->pid_file;
    s->ram_bytes = fc->ram;
    s->disk_bytes = fc->disk;
    ec->graceful_timeout_ms = fc->graceful_timeout;
    ec->max_object = fc->max_object;
    ec->range_fetch_above = fc->range_fetch_above;
    ec->expire_sweep_ms = fc->expire_sweep;
    ec->expire_keep_s = fc->expire_keep / 1000;
    ec->workers = (int)fc->workers;
    ec->h2_reset_limit = (unsigned)fc->h2_reset_limit;
    ec->h2_empty_limit = (unsigned)fc->h2_empty_frame_limit;
    s->rate_limit = fc->rate_limit;
    ec->rate_limit_keys = (size_t)fc->rate_limit_keys;
    ec->edge_key = fc->edge_key ? fc->edge_key : ec->edge_key;
    ec->admin_token = fc->admin_token_file ? admin_token : ec->admin_token;
    if (fc->bus.redis != NULL) {
        const char *auth = s->bus.auth_file;
        s->bus = fc->bus;
        if (s->bus.auth_file == NULL)
            s->bus.auth_file = auth;
    }
    ec->fresh.edge_cc_name = fc->edge_cc ? fc->edge_cc : ec->fresh.edge_cc_name;
    ec->key.sort_params |= fc->sort_params;
    ec->fresh.store_set_cookie = fc->store_set_cookie;
    ec->fresh.heuristic_max = (int64_t)(fc->heuristic_max / 1000);
    ec->connect_timeout_ms = fc->connect_timeout;
    ec->timeout_ms = fc->timeout;
    ec->send_timeout_ms = fc->send_timeout;
    ec->resil.stale_first_byte_ms = fc->stale_first_byte;
    ec->resil.breaker = (struct cdn_breaker_conf){
        .failures = (unsigned)fc->breaker.failures, .ratio = fc->breaker.error_ratio,
        .min_requests = (unsigned)fc->breaker.min_requests, .window_ms = fc->breaker.window,
        .open_ms = fc->breaker.open, .probes = (unsigned)fc->breaker.probes};
    ec->resil.grace_ms = fc->breaker.grace;
    ec->resil.brk_first_byte_ms = fc->breaker.first_byte;
    ec->resil.retry_budget = (struct cdn_retry_budget_conf){.ratio = fc->retry_budget.ratio,
        .min = (unsigned)fc->retry_budget.min, .window_ms = fc->retry_budget.window};
    ec->resil.backoff_ms = fc->retry_budget.backoff;
    ec->resil.backoff_max_ms = fc->retry_budget.backoff_max;
    ec->resil.fetch_queue_max = (unsigned)fc->fetch_queue_max;
    ec->resil.fill_memory = fc->fill_memory;
}

/* image_paths (a list of path prefixes; [] turns the Accept normalisation off) and image_formats
 * (what the origin offers there, e.g. [webp, png]; the last is the fallback). Absent: the
 * defaults, ["/img/"] and [webp, png]. */
static int image_conf(cdn_conf_t *c, const struct file_conf *fc, struct edge_conf *ec, cdn_conf_err_t *err)
{
    const cdn_conf_node_t *root = cdn_conf_root(c);
    if (cdn_conf_get(root, "image_paths") != NULL) {
        const char **d = NULL;
        if (fc->image_paths.n > 0) {
            if ((d = cdn_conf_alloc(c, (fc->image_paths.n + 1) * sizeof(*d))) == NULL)
                return cdn_conf_fail(c, root, err, "out of memory");
            memcpy(d, fc->image_paths.items, fc->image_paths.n * sizeof(*d));
            for (size_t i = 0; i < fc->image_paths.n; i++)
                if (d[i][0] != '/')
                    return cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(root, "image_paths"), i), err,
                                         "image_paths: '%s' must start with /", d[i]);
        }
        ec->image_paths = d;
    }
    if (cdn_conf_get(root, "image_formats") != NULL) {
        unsigned m = 0;
        int last = -1;
        for (size_t i = 0; i < fc->image_formats.n; i++) {
            int f = edge_imgfmt_parse(((const char **)fc->image_formats.items)[i]);
            if (f < 0 || f <= last)
                return cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(root, "image_formats"), i), err,
                                     "image_formats: avif, webp, png, in that order");
            m |= 1u << f;
            last = f;
        }
        if (m == 0)
            return cdn_conf_fail(c, cdn_conf_get(root, "image_formats"), err, "image_formats: at least one format");
        ec->image_formats = m;
    }
    return 0;
}

/* -c FILE over the settings so far. 0, or -1 with err set. */
static int load_config(struct edge_settings *s, struct edge_conf *ec, char *err, size_t errlen)
{
    cdn_conf_err_t cerr;
    cdn_conf_t *c = conf_doc = cdn_conf_load_file(s->config, &cerr);
    if (c == NULL) {
        snprintf(err, errlen, "%s", cerr.msg);
        return -1;
    }
    struct file_conf fc = {.parent_retry = ec->parent_retry_ms, .parent_only = s->parent_only,
                           .parent_check_interval = s->health.interval_ms, .parent_check_timeout = s->health.timeout_ms,
                           .parent_check_rise = s->health.rise, .parent_check_fall = s->health.fall,
                           .workers = ec->workers, .max_fetches = s->max_fetches,
                           .h2_reset_limit = ec->h2_reset_limit, .h2_empty_frame_limit = ec->h2_empty_limit, .rate_limit_keys = (long long)ec->rate_limit_keys,
                           .ram = s->ram_bytes, .disk = s->disk_bytes,
                           .max_object = ec->max_object, .range_fetch_above = ec->range_fetch_above,
                           .expire_sweep = ec->expire_sweep_ms, .expire_keep = ec->expire_keep_s * 1000,
                           .connect_timeout = ec->connect_timeout_ms, .timeout = ec->timeout_ms,
                           .send_timeout = ec->send_timeout_ms,
                           .heuristic_max = (uint64_t)ec->fresh.heuristic_max * 1000,
                           .graceful_timeout = ec->graceful_timeout_ms,
                           .stale_first_byte = ec->resil.stale_first_byte_ms,
                           .breaker = {.failures = ec->resil.breaker.failures, .error_ratio = ec->resil.breaker.ratio,
                                       .min_requests = ec->resil.breaker.min_requests, .window = ec->resil.breaker.window_ms,
                                       .open = ec->resil.breaker.open_ms, .probes = ec->resil.breaker.probes,
                                       .grace = ec->resil.grace_ms, .first_byte = ec->resil.brk_first_byte_ms},
                           .retry_budget = {.ratio = ec->resil.retry_budget.ratio, .min = ec->resil.retry_budget.min,
                                            .window = ec->resil.retry_budget.window_ms,
                                            .backoff = ec->resil.backoff_ms, .backoff_max = ec->resil.backoff_max_ms},
                           .fetch_queue_max = ec->resil.fetch_queue_max, .fill_memory = ec->resil.fill_memory};
    struct file_conf base = fc;
    if (cdn_conf_decode(c, cdn_conf_root(c), conf_fields, &fc, &cerr) < 0) {
        snprintf(err, errlen, "%s", cerr.msg);
        conf_doc_free();
        return -1;
    }
    conf_base = base;
    conf_run = fc;
    /* strings live in the document: keep it for the life of the process */
    const cdn_conf_node_t *root = cdn_conf_root(c);
    if (check_file_values(c, &fc, &cerr) < 0 || file_addresses(s, c, &fc, &cerr) < 0 ||
        (fc.policy && (s->ram_policy = edge_policy_kind_parse(fc.policy)) < 0 &&
         cdn_conf_fail(c, cdn_conf_get(root, "ram_policy"), &cerr, "ram_policy must be adaptive, s3fifo, sieve, lru, lfu-size or adaptive2") < 0) ||
        (fc.disk_admit && (s->disk_admit = edge_admit_kind_parse(fc.disk_admit)) < 0 &&
         cdn_conf_fail(c, cdn_conf_get(root, "disk_admit"), &cerr, "disk_admit must be second-hit or all") < 0) ||
        (fc.upstream_engine && (ec->upstream_curl = edge_engine_parse(fc.upstream_engine)) < 0 &&
         cdn_conf_fail(c, cdn_conf_get(root, "upstream_engine"), &cerr, "upstream_engine must be h1 or curl") < 0)) {
        snprintf(err, errlen, "%s", cerr.msg);
        return -1;
    }
    if (fc.drop_params.n > 0) {
        const char **d = cdn_conf_alloc(c, (fc.drop_params.n + 1) * sizeof(*d));
        if (d == NULL) {
            snprintf(err, errlen, "%s: out of memory", s->config);
            return -1;
        }
        memcpy(d, fc.drop_params.items, fc.drop_params.n * sizeof(*d));
        ec->key.drop_params = d;
    }
    if (image_conf(c, &fc, ec, &cerr) < 0) {
        snprintf(err, errlen, "%s", cerr.msg);
        return -1;
    }
    if (fc.cert != NULL)
        s->cert_node = cdn_conf_get(root, "cert");
    if (fc.key != NULL)
        s->key_node = cdn_conf_get(root, "key");
    file_apply(s, ec, &fc);
    return 0;
}


/* The keys a reload applies; every other key needs a restart. */
static int reload_applies(const char *key)
{
    static const char *const applied[] = {"origin", "vhosts", "parents", "parent_only", "max_fetches",
                                           "rate_limit", NULL};
    for (size_t i = 0; applied[i] != NULL; i++)
        if (strcmp(key, applied[i]) == 0)
            return 1;
    return 0;
}

/* A field's value as text, for the log ("unset" for an absent string, a list joined by commas). */
static const char *field_text(const cdn_conf_field_t *f, const struct file_conf *fc, char *buf, size_t len)
{
    const char *p = (const char *)fc + f->off;
    switch (f->type) {
    case CDN_CT_STR: snprintf(buf, len, "%s", *(const char *const *)p ? *(const char *const *)p : "unset"); break;
    case CDN_CT_INT: snprintf(buf, len, "%lld", *(const long long *)p); break;
    case CDN_CT_BOOL: snprintf(buf, len, "%s", *(const int *)p ? "true" : "false"); break;
    case CDN_CT_SIZE: snprintf(buf, len, "%llu bytes", (unsigned long long)*(const uint64_t *)p); break;
    case CDN_CT_DURATION: snprintf(buf, len, "%llums", (unsigned long long)*(const uint64_t *)p); break;
    case CDN_CT_STRLIST: {
        const struct cdn_conf_list *l = (const void *)p;
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < l->n && o < len; i++) {
            int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", ((const char *const *)l->items)[i]);
            o += w > 0 ? (size_t)w : 0;
        }
        if (l->n == 0)
            snprintf(buf, len, "none");
        break;
    }
    default: snprintf(buf, len, "?"); break;
    }
    return buf;
}

/* Logs each key whose value in the new file (nfc) differs from the running one (conf_run) that a
 * reload does not apply, the way nginx names what needs a restart. Returns how many. */
static int log_unapplied(const struct file_conf *nfc)
{
    int n = 0;
    for (const cdn_conf_field_t *f = conf_fields; f->key != NULL; f++) {
        if (reload_applies(f->key))
            continue;
        const char *a = (const char *)&conf_run + f->off, *b = (const char *)nfc + f->off;
        int same;
        switch (f->type) {
        case CDN_CT_STR: {
            const char *x = *(const char *const *)a, *y = *(const char *const *)b;
            same = x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
            break;
        }
        case CDN_CT_INT: same = *(const long long *)a == *(const long long *)b; break;
        case CDN_CT_BOOL: same = *(const int *)a == *(const int *)b; break;
        case CDN_CT_SIZE:
        case CDN_CT_DURATION: same = *(const uint64_t *)a == *(const uint64_t *)b; break;
        case CDN_CT_STRLIST: {
            const struct cdn_conf_list *x = (const void *)a, *y = (const void *)b;
            same = x->n == y->n;
            for (size_t i = 0; same && i < x->n; i++)
                same = strcmp(((const char *const *)x->items)[i], ((const char *const *)y->items)[i]) == 0;
            break;
        }
        case CDN_CT_STRUCT: same = f->sub_size == 0 || memcmp(a, b, f->sub_size) == 0; break;
        default: same = 1; break; /* no other type among the keys a reload skips */
        }
        if (!same) {
            char was[128], now[128];
            cdn_warn("reload: '%s' changed (%s -> %s): needs a restart, not applied", f->key,
                     field_text(f, &conf_run, was, sizeof(was)), field_text(f, nfc, now, sizeof(now)));
            n++;
        }
    }
    return n;
}

/* SIGHUP: re-reads the config file and builds a new vhost table (origin, vhosts, parents,
 * parent_only, max_fetches, rate_limit). Every other key needs a restart: each one whose value changed is
 * logged as not applied. On any error NULL: the caller keeps its table, and the error
 * (file:line:col where the document has one) is logged. */
struct edge_vhosts *edge_conf_reload(const struct edge_settings *s)
{
    if (s->config == NULL) {
        cdn_notice("SIGHUP: no config file (-c) to reload");
        return NULL;
    }
    cdn_conf_err_t cerr;
    char err[512];
    cdn_conf_t *c = cdn_conf_load_file(s->config, &cerr);
    struct file_conf fc = conf_base;
    if (c == NULL || cdn_conf_decode(c, cdn_conf_root(c), conf_fields, &fc, &cerr) < 0 ||
        check_file_values(c, &fc, &cerr) < 0) {
        cdn_err("reload failed, keeping the running vhosts: %s", cerr.msg);
        cdn_conf_free(c);
        return NULL;
    }
    const char *parents[2 * EDGE_MAX_PARENTS];
    size_t np = 0;
    for (size_t i = 0; i < s->cli.nparents && np < 2 * EDGE_MAX_PARENTS; i++)
        parents[np++] = s->parents[i];
    for (size_t i = 0; i < fc.parents.n && np < 2 * EDGE_MAX_PARENTS; i++)
        parents[np++] = ((const char **)fc.parents.items)[i];
    struct edge_vhosts *nv = calloc(1, sizeof(*nv));
    if (nv == NULL || edge_vhosts_build(nv, &fc.vhosts, fc.origin ? fc.origin : s->cli.origin, parents, np,
                                        fc.parent_only, (unsigned)fc.max_fetches, &fc.rate_limit, err,
                                        sizeof(err)) < 0) {
        cdn_err("reload failed, keeping the running vhosts: %s: %s", s->config, nv ? err : "out of memory");
        free(nv);
        cdn_conf_free(c);
        return NULL;
    }
    int unapplied = log_unapplied(&fc);
    cdn_conf_free(c); /* the table owns copies of what it keeps */
    if (unapplied > 0)
        cdn_notice("reloaded %s: %zu vhost names%s (applied: origin, vhosts, parents, parent_only, max_fetches, "
                   "rate_limit); %d changed key%s not applied, see above", s->config, nv->n, nv->dflt ? " and a default" : "", unapplied,
                   unapplied == 1 ? "" : "s");
    else
        cdn_notice("reloaded %s: %zu vhost names%s (applied: origin, vhosts, parents, parent_only, max_fetches, "
                   "rate_limit)", s->config, nv->n, nv->dflt ? " and a default" : "");
    return nv;
}

void edge_conf_free(void) { conf_doc_free(); }


/* --- the command line --- */

static const struct option long_opts[] = {
    {"listen", 1, NULL, 'a'},  {"backend", 1, NULL, 'b'},    {"tls", 1, NULL, 1},
    {"cert", 1, NULL, 2},      {"key", 1, NULL, 3},          {"admin", 1, NULL, 'A'},
    {"dir", 1, NULL, 'd'},     {"ram", 1, NULL, 's'},        {"disk", 1, NULL, 'S'},
    {"policy", 1, NULL, 4},    {"name", 1, NULL, 'n'},       {"workers", 1, NULL, 'w'},
    {"edge-cc", 1, NULL, 5},   {"drop-param", 1, NULL, 6},   {"sort-params", 0, NULL, 7},
    {"timeout", 1, NULL, 8},   {"connect-timeout", 1, NULL, 9}, {"pid-file", 1, NULL, 'p'},
    {"config", 1, NULL, 'c'},  {"test", 0, NULL, 't'},       {"log-level", 1, NULL, 'l'},
    {"access-log", 1, NULL, 10}, {"parent", 1, NULL, 11}, {"parent-only", 0, NULL, 12},
    {"parent-retry", 1, NULL, 13}, {"served-by", 1, NULL, 14}, {"max-fetches", 1, NULL, 15},
    {"range-fetch-above", 1, NULL, 16}, {"expire-sweep", 1, NULL, 17},
    {"expire-keep", 1, NULL, 19}, {"h2-reset-limit", 1, NULL, 20}, {"edge-key", 1, NULL, 21},
    {"edge-key-file", 1, NULL, 22}, {"graceful-timeout", 1, NULL, 23}, {"admin-token-file", 1, NULL, 24},
    {"purge-bus", 1, NULL, 25}, {"purge-bus-auth-file", 1, NULL, 26},
    {"h2-empty-frame-limit", 1, NULL, 27}, {"send-timeout", 1, NULL, 28},
    {"disk-admit", 1, NULL, 40}, {"upstream-engine", 1, NULL, 41}, {"stale-first-byte", 1, NULL, 29}, {"parent-check", 1, NULL, 18}, {"version", 0, NULL, 'V'}, {"help", 0, NULL, 'h'},       {NULL, 0, NULL, 0},
};

static void defaults(struct edge_settings *s, struct edge_conf *c)
{
    static const char *drop[32]; /* --drop-param, kept until exit */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->name = "edge";
    c->workers = ncpu <= 0 ? 1 : ncpu > CDN_DAEMON_MAX_THREADS ? CDN_DAEMON_MAX_THREADS : (int)ncpu;
    c->max_object = 64 << 20;
    c->connect_timeout_ms = 3000;
    c->timeout_ms = 30000;
    c->parent_retry_ms = 10000;
    c->expire_sweep_ms = 60000;
    c->h2_reset_limit = EDGE_H2_RESET_LIMIT_DEFAULT;
    c->h2_empty_limit = EDGE_H2_EMPTY_LIMIT_DEFAULT;
    c->send_timeout_ms = EDGE_SEND_TIMEOUT_MS_DEFAULT;
    c->rate_limit_keys = CDN_RL_KEYS_DEFAULT;
    edge_fresh_conf_default(&c->fresh);
    c->key.drop_params = drop;
    static const char *const image_paths[] = {"/img/", NULL};
    c->image_paths = image_paths;
    c->image_formats = EDGE_IMGFMT_DEFAULT;
    s->health = (struct edge_health_conf){.interval_ms = 5000, .timeout_ms = 1000, .rise = 2, .fall = 2,
                                          .path = "/healthz"};
    s->ram_bytes = 256ULL << 20;
    s->disk_bytes = 4ULL << 30;
    s->ram_policy = EDGE_POLICY_ADAPTIVE; /* docs/CACHESIM.md: never beaten by lru, s3fifo or sieve there */
    s->disk_admit = EDGE_ADMIT_SECOND_HIT; /* docs/CACHESIM.md "Disk tier admission": 5-50x fewer writes */
    s->max_fetches = EDGE_MAX_FETCHES_DEFAULT;
    c->graceful_timeout_ms = EDGE_GRACEFUL_TIMEOUT_MS;
    c->resil.breaker = (struct cdn_breaker_conf){.min_requests = 20, .window_ms = 10000, .open_ms = 5000, .probes = 1};
    c->resil.retry_budget = (struct cdn_retry_budget_conf){.ratio = 0, .min = 3, .window_ms = 10000};
    c->resil.backoff_max_ms = 1000;
}

static int bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "cdn-edge: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

/* One option. -1 to go on, or the status to exit with. */
static int option(int ch, const char *arg, struct edge_settings *s, struct edge_conf *c, int *loglevel)
{
    switch (ch) {
    case 'a':
    case 1: return add_listen(s, arg, ch == 1) < 0 ? bad("bad listen address '%s'", arg) : -1;
    case 'b': c->origin = arg; break;
    case 2: s->cert = arg; break;
    case 3: s->key = arg; break;
    case 'A': return cdn_parse_addr(arg, "127.0.0.1", &s->admin, &s->admin_len) < 0 ? bad("bad admin address '%s'", arg) : -1;
    case 'd': s->dir = arg; break;
    case 's':
    case 'S': return cdn_parse_size(arg, ch == 's' ? &s->ram_bytes : &s->disk_bytes) < 0 ? bad("bad size '%s'", arg) : -1;
    case 4: return (s->ram_policy = edge_policy_kind_parse(arg)) < 0 ? bad("--policy must be adaptive, s3fifo, sieve, lru, lfu-size or adaptive2%s", "") : -1;
    case 'n':
        if (!name_ok(arg)) {
            fprintf(stderr, "cdn-edge: bad --name '%s': must be %s\n", arg, NAME_RULE);
            return 2;
        }
        c->name = arg;
        break;
    case 'w': c->workers = atoi(arg); break;
    case 5: c->fresh.edge_cc_name = arg; break;
    case 6: {
        size_t n = 0;
        while (c->key.drop_params[n] != NULL)
            n++;
        if (n < 31)
            ((const char **)c->key.drop_params)[n] = arg;
        break;
    }
    case 7: c->key.sort_params = 1; break;
    case 8: c->timeout_ms = strtoull(arg, NULL, 10); break;
    case 9: c->connect_timeout_ms = strtoull(arg, NULL, 10); break;
    case 'p': s->pid_file = arg; break;
    case 10: s->access_log = arg; break;
    case 11:
        if (s->nparents == EDGE_MAX_PARENTS) {
            fprintf(stderr, "cdn-edge: at most %d parents\n", EDGE_MAX_PARENTS);
            return 2;
        }
        s->parents[s->nparents++] = arg;
        break;
    case 12: s->parent_only = 1; break;
    case 13: c->parent_retry_ms = strtoull(arg, NULL, 10); break;
    case 14: c->served_by = arg; break;
    case 16: return cdn_parse_size(arg, &c->range_fetch_above) < 0 ? bad("bad size '%s'", arg) : -1;
    case 17: c->expire_sweep_ms = strtoull(arg, NULL, 10); break;
    case 19: c->expire_keep_s = strtoull(arg, NULL, 10); break;
    case 15: s->max_fetches = (unsigned)strtoul(arg, NULL, 10); break;
    case 20: c->h2_reset_limit = (unsigned)strtoul(arg, NULL, 10); break;
    case 21: c->edge_key = arg; break;
    case 41: return (c->upstream_curl = edge_engine_parse(arg)) < 0 ? bad("--upstream-engine must be h1 or curl%s", "") : -1;
    case 40: return (s->disk_admit = edge_admit_kind_parse(arg)) < 0 ? bad("--disk-admit must be second-hit or all%s", "") : -1;
    case 22:
        if ((c->edge_key = read_key_file(arg)) == NULL)
            return bad("--edge-key-file %s: cannot read a key from it", arg);
        break;
    case 23: c->graceful_timeout_ms = strtoull(arg, NULL, 10); break;
    case 24: {
        char e[300];
        if ((c->admin_token = admin_token_load(arg, e, sizeof(e))) == NULL) {
            fprintf(stderr, "cdn-edge: --admin-token-file %s\n", e);
            return 2;
        }
        break;
    }
    case 25: {
        char h[256];
        int port;
        if (edge_purge_redis_url(arg, h, sizeof(h), &port) < 0)
            return bad("--purge-bus '%s': expected redis://HOST:PORT", arg);
        s->bus.redis = arg;
        break;
    }
    case 26: s->bus.auth_file = arg; break;
    case 27: c->h2_empty_limit = (unsigned)strtoul(arg, NULL, 10); break;
    case 28: c->send_timeout_ms = strtoull(arg, NULL, 10); break;
    case 29: c->resil.stale_first_byte_ms = strtoull(arg, NULL, 10); break;
    case 'c': s->config = arg; break;
    case 18: s->health.interval_ms = strtoull(arg, NULL, 10); break;
    case 't': s->test_only = 1; break;
    case 'l': return (*loglevel = cdn_log_level_parse(arg)) < 0 ? bad("bad log level '%s'", arg) : -1;
    case 'V': cdn_print_version("cdn-edge"); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
    return -1;
}

int edge_cmdline_parse(int argc, char **argv, struct edge_settings *s, struct edge_conf *c)
{
    int ch, rc, loglevel = CDN_LOG_INFO;
    defaults(s, c);
    while ((ch = getopt_long(argc, argv, "a:b:A:d:s:S:n:w:p:c:tl:Vh", long_opts, NULL)) != -1)
        if ((rc = option(ch, optarg, s, c, &loglevel)) >= 0)
            return rc;
    cdn_log_open("cdn-edge", NULL, (enum cdn_log_level)loglevel);
    s->cli.origin = c->origin;
    s->cli.nparents = s->nparents;
    s->cli.parent_only = s->parent_only;
    s->cli.max_fetches = s->max_fetches;
    return -1;
}

/* The TLS context of the TLS listeners. -1 to go on (*ctx set), or the status to exit with. */
static int tls_context(const struct edge_settings *s, int bad_status, SSL_CTX **ctx)
{
    if (s->cert == NULL || s->key == NULL) {
        fprintf(stderr, "cdn-edge: a TLS listener needs a certificate and a key (--cert and --key, or cert: "
                        "and key: in the file)\n");
        return bad_status;
    }
    if ((*ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        fprintf(stderr, "cdn-edge: cannot make a TLS context: %s\n", ERR_error_string(ERR_get_error(), NULL));
        return 1;
    }
    SSL_CTX_set_min_proto_version(*ctx, TLS1_2_VERSION);
    int cert_bad = SSL_CTX_use_certificate_chain_file(*ctx, s->cert) != 1;
    if (cert_bad || SSL_CTX_use_PrivateKey_file(*ctx, s->key, SSL_FILETYPE_PEM) != 1) {
        /* the place in the file when the file named it; a certificate and key that do not match
         * are the key's fault */
        const char *what = cert_bad ? "certificate" : "key", *file = cert_bad ? s->cert : s->key;
        const cdn_conf_node_t *at = cert_bad ? s->cert_node : s->key_node;
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof(why));
        if (at != NULL) {
            cdn_conf_err_t cerr;
            cdn_conf_fail(conf_doc, at, &cerr, "cannot load the %s %s: %s", cert_bad ? "cert" : "key", file, why);
            fprintf(stderr, "cdn-edge: %s\n", cerr.msg);
        } else {
            fprintf(stderr, "cdn-edge: cannot load the %s %s: %s\n", what, file, why);
        }
        SSL_CTX_free(*ctx);
        *ctx = NULL;
        return 1;
    }
    h2o_ssl_register_alpn_protocols(*ctx, h2o_http2_alpn_protocols);
    return -1;
}

int edge_conf_load(struct edge_settings *s, struct edge_conf *c, SSL_CTX **tls)
{
    char err[512];
    const char *config = s->config;
    *tls = NULL;
    if (config != NULL && load_config(s, c, err, sizeof(err)) < 0) {
        fprintf(stderr, "cdn-edge: %s\n", err);
        return 1;
    }
    /* from here on what is missing or wrong may be the file's doing: with -c it is a bad file (1) */
    int bad_status = config != NULL ? 1 : 2;
    int workers_bad = c->workers < 1 || c->workers > CDN_DAEMON_MAX_THREADS;
    if ((c->origin == NULL && s->file_vhosts.n == 0) || s->nlisten == 0 || workers_bad) {
        char wb[32] = "";
        if (workers_bad)
            snprintf(wb, sizeof(wb), ", and 1 to %d workers", CDN_DAEMON_MAX_THREADS);
        fprintf(stderr, "cdn-edge: %s%sneed at least one listener (-a%s) and an origin (-b, or origin: or vhosts: in "
                        "the file)%s\n", config ? config : "", config ? ": " : "", config ? " or listen: in the file" : "",
                wb);
        if (config == NULL)
            usage(stderr);
        return bad_status;
    }
    if (s->nparents > EDGE_MAX_PARENTS) {
        fprintf(stderr, "cdn-edge: at most %d parents (--parent and parents: together)\n", EDGE_MAX_PARENTS);
        return bad_status;
    }
    /* the control plane is locked: an admin listener anyone else can reach needs a token */
    if (s->admin_len > 0 && !cdn_addr_is_loopback((const struct sockaddr *)&s->admin) && c->admin_token == NULL) {
        fprintf(stderr, "cdn-edge: the admin listener is not on loopback: it needs a token (admin_token_file: "
                        "or --admin-token-file) so that nobody else can purge or drain\n");
        return bad_status;
    }
    if ((c->vhosts = calloc(1, sizeof(*c->vhosts))) == NULL) {
        fprintf(stderr, "cdn-edge: out of memory\n");
        return 1;
    }
    if (edge_vhosts_build(c->vhosts, &s->file_vhosts, c->origin, s->parents, s->nparents, s->parent_only,
                          s->max_fetches, &s->rate_limit, err, sizeof(err)) < 0) {
        fprintf(stderr, "cdn-edge: %s\n", err);
        return bad_status;
    }
    for (int i = 0; i < s->nlisten; i++)
        if (s->listen[i].tls)
            return tls_context(s, bad_status, tls);
    return -1;
}
