/* Unit tests for lib/config.c: a good file decoded through every field type, broken files with the
 * exact file:line:col and message, the node API, and the duration/size/address syntax tables. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/config.h"

/* --- the schema of a made-up daemon, covering every field type --- */

struct origin {
    struct cdn_conf_addr addr;
    long long weight;
};

struct pool {
    const char *name; /* the MAP key */
    unsigned max_conns;
};

struct tls {
    const char *cert, *key;
};

struct rgb {
    unsigned r, g, b;
};

struct daemon {
    const char *name, *note;
    struct cdn_conf_addr listen, admin;
    unsigned port;
    long long workers;
    double ratio;
    int debug;
    uint64_t timeout_ms, cache_size;
    int log_level;
    struct tls tls;
    struct cdn_conf_list origins, aliases, pools;
    struct rgb color;
};

static const char *const levels[] = {"debug", "info", "notice", "warn", "error", NULL};

static const cdn_conf_field_t tls_fields[] = {
    {.key = "cert", .type = CDN_CT_STR, .off = offsetof(struct tls, cert), .flags = CDN_CF_REQUIRED},
    {.key = "key", .type = CDN_CT_STR, .off = offsetof(struct tls, key)},
    {NULL},
};

static const cdn_conf_field_t origin_fields[] = {
    {.key = "addr", .type = CDN_CT_ADDR, .off = offsetof(struct origin, addr), .flags = CDN_CF_REQUIRED,
     .addr_default_host = "127.0.0.1"},
    {.key = "weight", .type = CDN_CT_INT, .off = offsetof(struct origin, weight), .min = 1, .max = 100},
    {NULL},
};
static const struct origin origin_defaults = {.weight = 1};

static const cdn_conf_field_t pool_fields[] = {
    {.key = "max_conns", .type = CDN_CT_UINT, .off = offsetof(struct pool, max_conns), .min = 1, .max = 1000},
    {NULL},
};
static const struct pool pool_defaults = {.max_conns = 64};

/* A custom field: "#rrggbb". */
static int decode_color(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    const char *s = cdn_conf_scalar(n);
    struct rgb *rgb = out;
    if (s == NULL || strlen(s) != 7 || s[0] != '#' || strspn(s + 1, "0123456789abcdef") != 6 ||
        sscanf(s + 1, "%2x%2x%2x", &rgb->r, &rgb->g, &rgb->b) != 3)
        return cdn_conf_fail(c, n, err, "expected a colour like #ff8800");
    return 0;
}

static const cdn_conf_field_t daemon_fields[] = {
    {.key = "name", .type = CDN_CT_STR, .off = offsetof(struct daemon, name), .flags = CDN_CF_REQUIRED},
    {.key = "note", .type = CDN_CT_STR, .off = offsetof(struct daemon, note)},
    {.key = "listen", .type = CDN_CT_ADDR, .off = offsetof(struct daemon, listen), .flags = CDN_CF_REQUIRED},
    {.key = "admin", .type = CDN_CT_ADDR, .off = offsetof(struct daemon, admin)},
    {.key = "port", .type = CDN_CT_UINT, .off = offsetof(struct daemon, port), .min = 1, .max = 65535},
    {.key = "workers", .type = CDN_CT_INT, .off = offsetof(struct daemon, workers)},
    {.key = "ratio", .type = CDN_CT_DOUBLE, .off = offsetof(struct daemon, ratio), .dmin = 0, .dmax = 1},
    {.key = "debug", .type = CDN_CT_BOOL, .off = offsetof(struct daemon, debug)},
    {.key = "timeout", .type = CDN_CT_DURATION, .off = offsetof(struct daemon, timeout_ms)},
    {.key = "cache_size", .type = CDN_CT_SIZE, .off = offsetof(struct daemon, cache_size)},
    {.key = "log_level", .type = CDN_CT_ENUM, .off = offsetof(struct daemon, log_level), .enum_names = levels},
    {.key = "tls", .type = CDN_CT_STRUCT, .off = offsetof(struct daemon, tls), .sub = tls_fields},
    {.key = "origins", .type = CDN_CT_LIST, .off = offsetof(struct daemon, origins), .sub = origin_fields,
     .sub_size = sizeof(struct origin), .sub_defaults = &origin_defaults},
    {.key = "aliases", .type = CDN_CT_STRLIST, .off = offsetof(struct daemon, aliases)},
    {.key = "pools", .type = CDN_CT_MAP, .off = offsetof(struct daemon, pools), .sub = pool_fields,
     .sub_size = sizeof(struct pool), .sub_defaults = &pool_defaults},
    {.key = "color", .type = CDN_CT_CUSTOM, .off = offsetof(struct daemon, color), .custom = decode_color},
    {NULL},
};

static void set_defaults(struct daemon *d)
{
    memset(d, 0, sizeof(*d));
    d->note = "default note";
    d->port = 80;
    d->workers = 1;
    d->ratio = 0.5;
    d->timeout_ms = 5000;
    d->cache_size = 1024;
    d->log_level = 1;
    d->tls.key = "default.key";
}

static char path_buf[512];

static const char *data(const char *name)
{
    const char *top = getenv("top_srcdir");
    snprintf(path_buf, sizeof(path_buf), "%s/tests/data/config/%s", top != NULL ? top : ".", name);
    return path_buf;
}

/* Loads and decodes a file; returns the conf (NULL on error, err filled). */
static cdn_conf_t *load_decode(const char *file, struct daemon *d, cdn_conf_err_t *err)
{
    set_defaults(d);
    cdn_conf_t *c = cdn_conf_load_file(data(file), err);
    if (c == NULL)
        return NULL;
    if (cdn_conf_decode(c, cdn_conf_root(c), daemon_fields, d, err) != 0) {
        cdn_conf_free(c);
        return NULL;
    }
    return c;
}

static void good_file(void **state)
{
    struct daemon d;
    cdn_conf_err_t err = {0};
    cdn_conf_t *c = load_decode("good.yaml", &d, &err);
    if (c == NULL)
        fail_msg("%s", err.msg);
    assert_string_equal(cdn_conf_name(c), data("good.yaml"));
    assert_string_equal(d.name, "edge-1");
    assert_null(d.note); /* "note: ~" unsets a string */
    assert_string_equal(d.listen.text, "127.0.0.1:8080");
    assert_int_equal(d.listen.ss.ss_family, AF_INET);
    assert_int_equal(d.listen.len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((struct sockaddr_in *)&d.listen.ss)->sin_port), 8080);
    assert_int_equal(d.admin.ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&d.admin.ss)->sin6_port), 9090);
    assert_int_equal(d.port, 8443);
    assert_int_equal(d.workers, 4);
    assert_true(d.ratio == 0.75);
    assert_int_equal(d.debug, 1);
    assert_int_equal(d.timeout_ms, 90000);
    assert_int_equal(d.cache_size, 64u << 20);
    assert_int_equal(d.log_level, 2);
    assert_string_equal(d.tls.cert, "/etc/cdn/cert.pem");
    assert_string_equal(d.tls.key, "/etc/cdn/key.pem");
    assert_int_equal(d.origins.n, 2);
    struct origin *o = d.origins.items;
    assert_string_equal(o[0].addr.text, "127.0.0.1:9001");
    assert_int_equal(o[0].weight, 2);
    assert_string_equal(o[1].addr.text, "9002");
    assert_int_equal(o[1].weight, 1); /* sub_defaults */
    struct sockaddr_in *sin = (struct sockaddr_in *)&o[1].addr.ss;
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001); /* addr_default_host */
    assert_int_equal(d.aliases.n, 2);
    assert_string_equal(((const char **)d.aliases.items)[0], "a.example");
    assert_string_equal(((const char **)d.aliases.items)[1], "b.example");
    assert_int_equal(d.pools.n, 3);
    struct pool *p = d.pools.items;
    assert_string_equal(p[0].name, "images");
    assert_int_equal(p[0].max_conns, 10);
    assert_string_equal(p[1].name, "api"); /* "api:" alone: an element with defaults */
    assert_int_equal(p[1].max_conns, 64);
    assert_string_equal(p[2].name, "static");
    assert_int_equal(p[2].max_conns, 3);
    assert_int_equal(d.color.r, 0xff);
    assert_int_equal(d.color.g, 0x88);
    assert_int_equal(d.color.b, 0x00);

    /* The node API on the same document. */
    const cdn_conf_node_t *root = cdn_conf_root(c);
    assert_int_equal(cdn_conf_kind(root), CDN_CONF_MAP);
    assert_int_equal(cdn_conf_len(root), 16);
    assert_string_equal(cdn_conf_scalar(cdn_conf_key(root, 0)), "name");
    assert_int_equal(cdn_conf_line(cdn_conf_key(root, 0)), 2);
    assert_int_equal(cdn_conf_col(cdn_conf_value(root, 0)), 7);
    const cdn_conf_node_t *origins = cdn_conf_get(root, "origins");
    assert_int_equal(cdn_conf_kind(origins), CDN_CONF_SEQ);
    assert_int_equal(cdn_conf_len(origins), 2);
    const cdn_conf_node_t *w = cdn_conf_get(cdn_conf_item(origins, 0), "weight");
    assert_int_equal(cdn_conf_line(w), 18);
    assert_int_equal(cdn_conf_col(w), 13);
    assert_null(cdn_conf_item(origins, 2));
    assert_null(cdn_conf_get(root, "nope"));
    assert_true(cdn_conf_is_null(cdn_conf_get(root, "note")));
    assert_false(cdn_conf_is_null(cdn_conf_get(root, "name")));
    assert_null(cdn_conf_scalar(origins));
    long long port;
    assert_int_equal(cdn_conf_int(c, cdn_conf_get(root, "port"), 1, 65535, &port, &err), 0);
    assert_int_equal(port, 8443);
    assert_int_equal(cdn_conf_int(c, cdn_conf_get(root, "port"), 1, 1024, &port, &err), -1);
    assert_string_equal(err.msg + strlen(data("good.yaml")), ":5:7: expected an integer from 1 to 1024, got \"8443\"");
    /* Arena helpers. */
    char *s = cdn_conf_strdup(c, "copy");
    assert_string_equal(s, "copy");
    unsigned char *z = cdn_conf_alloc(c, 100000);
    assert_non_null(z);
    assert_int_equal(z[99999], 0);
    cdn_conf_free(c);
}

static void defaults_kept(void **state)
{
    struct daemon d;
    cdn_conf_err_t err;
    set_defaults(&d);
    const char *text = "name: n\nlisten: 80\ntls:\n  cert: c\n";
    cdn_conf_t *c = cdn_conf_load_string("inline", text, strlen(text), &err);
    assert_non_null(c);
    assert_int_equal(cdn_conf_decode(c, cdn_conf_root(c), daemon_fields, &d, &err), 0);
    assert_string_equal(d.note, "default note");
    assert_int_equal(d.port, 80);
    assert_int_equal(d.workers, 1);
    assert_true(d.ratio == 0.5);
    assert_int_equal(d.timeout_ms, 5000);
    assert_int_equal(d.cache_size, 1024);
    assert_int_equal(d.log_level, 1);
    assert_string_equal(d.tls.cert, "c");
    assert_string_equal(d.tls.key, "default.key");
    assert_int_equal(d.origins.n, 0);
    assert_null(d.origins.items);
    assert_int_equal(ntohl(((struct sockaddr_in *)&d.listen.ss)->sin_addr.s_addr), 0); /* 0.0.0.0 */
    cdn_conf_free(c);

    /* An empty file is an empty mapping: only the required keys complain. */
    c = cdn_conf_load_file(data("empty.yaml"), &err);
    assert_non_null(c);
    assert_int_equal(cdn_conf_len(cdn_conf_root(c)), 0);
    set_defaults(&d);
    assert_int_equal(cdn_conf_decode(c, cdn_conf_root(c), daemon_fields, &d, &err), -1);
    assert_string_equal(err.msg + strlen(data("empty.yaml")), ":1:1: missing required key \"name\"");
    cdn_conf_free(c);
}

/* --- broken files: exact position and message --- */

struct broken {
    const char *file;
    int line, col;
    const char *msg; /* what follows "file:line:col: " */
};

static const struct broken broken[] = {
    {"syntax.yaml", 3, 7, "YAML: mapping values are not allowed in this context"},
    {"root_list.yaml", 1, 1, "expected a mapping at the top level, got a list"},
    {"dup.yaml", 4, 1, "duplicate key \"name\" (first at line 1, column 1)"},
    {"anchor.yaml", 1, 7, "anchors and aliases are not allowed"},
    {"alias.yaml", 3, 10, "anchors and aliases are not allowed"},
    {"unknown.yaml", 5, 3, "unknown key \"chain\" (accepted: cert, key)"},
    {"missing.yaml", 1, 1, "missing required key \"name\""},
    {"type_map.yaml", 3, 6, "tls: expected a mapping, got \"yes\""},
    {"type_list.yaml", 4, 3, "origins: expected a list, got a mapping"},
    {"type_scalar.yaml", 1, 7, "name: expected a scalar, got a list"},
    {"range.yaml", 3, 7, "port: expected an integer from 1 to 65535, got \"70000\""},
    {"nested.yaml", 6, 13, "weight: expected an integer from 1 to 100, got \"0\""},
    {"duration.yaml", 3, 10, "timeout: expected a duration (like 250ms, 10s, 2m, 1h, 1d, 1m30s), got \"10 s\""},
    {"size.yaml", 3, 13, "cache_size: expected a size (like 512, 64k, 64KiB, 10MB, 1g), got \"12XB\""},
    {"addr.yaml", 2, 9,
     "listen: expected an address (like 127.0.0.1:8080, [::1]:53 or a port), got \"10.0.0.1:99999\""},
    {"bool.yaml", 3, 8, "debug: expected a boolean (true, false, yes, no, on, off), got \"maybe\""},
    {"enum.yaml", 3, 12, "log_level: expected one of: debug, info, notice, warn, error; got \"loud\""},
    {"two_docs.yaml", 3, 1, "expected a single YAML document"},
    {"utf8.yaml", 3, 12, "YAML: invalid leading UTF-8 octet (#FF)"},
    {"complex_key.yaml", 3, 3, "expected a scalar key, got a list"},
};

static void broken_files(void **state)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        const struct broken *b = &broken[i];
        struct daemon d;
        cdn_conf_err_t err;
        memset(&err, 0, sizeof(err));
        cdn_conf_t *c = load_decode(b->file, &d, &err);
        if (c != NULL) {
            print_error("%s: loaded\n", b->file);
            cdn_conf_free(c);
            bad++;
            continue;
        }
        char want[600];
        snprintf(want, sizeof(want), "%s:%d:%d: %s", data(b->file), b->line, b->col, b->msg);
        if (strcmp(err.msg, want) != 0 || err.line != b->line || err.col != b->col ||
            strcmp(err.file, data(b->file)) != 0) {
            print_error("%s:\n got  %s (%d:%d)\n want %s\n", b->file, err.msg, err.line, err.col, want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void io_errors(void **state)
{
    cdn_conf_err_t err;
    assert_null(cdn_conf_load_file("/nonexistent/x.yaml", &err));
    assert_string_equal(err.msg, "/nonexistent/x.yaml: No such file or directory");
    assert_int_equal(err.line, 0);
    assert_null(cdn_conf_load_file("/", &err));
    assert_string_equal(err.msg, "/: Is a directory");
    /* Over the size cap, without parsing it. */
    size_t big = (16u << 20) + 1;
    char *s = malloc(big);
    assert_non_null(s);
    memset(s, ' ', big);
    assert_null(cdn_conf_load_string("big", s, big, &err));
    assert_string_equal(err.msg, "big: document larger than 16777216 bytes");
    free(s);
}

static void hostile_documents(void **state)
{
    cdn_conf_err_t err;
    char buf[4096];
    /* Nesting: 64 levels load, 65 do not. */
    for (int depth = 64; depth <= 65; depth++) {
        size_t o = 0;
        o += (size_t)sprintf(buf + o, "a: ");
        for (int i = 1; i < depth; i++)
            buf[o++] = '[';
        for (int i = 1; i < depth; i++)
            buf[o++] = ']';
        cdn_conf_t *c = cdn_conf_load_string("deep", buf, o, &err);
        if (depth == 64) {
            assert_non_null(c);
            cdn_conf_free(c);
        } else {
            assert_null(c);
            assert_string_equal(err.msg, "deep:1:67: nesting deeper than 64 levels");
        }
    }
    /* Billion laughs never expands: the first anchor is refused. */
    const char *lol = "a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a,*a]\nc: [*b,*b,*b]\n";
    assert_null(cdn_conf_load_string("lol", lol, strlen(lol), &err));
    assert_string_equal(err.msg, "lol:1:4: anchors and aliases are not allowed");
    /* NUL inside a quoted scalar. */
    const char *nul = "a: \"x\\0y\"\n";
    assert_null(cdn_conf_load_string("nul", nul, strlen(nul), &err));
    assert_string_equal(err.msg, "nul:1:4: NUL character in a scalar");
    /* A raw NUL byte in the input is a reader error, not a crash. */
    assert_null(cdn_conf_load_string("raw", "a: b\0c", 6, &err));
    assert_int_equal(strncmp(err.msg, "raw:1:", 6), 0);
    /* Duplicate key among many: still found (sorted check), at the second occurrence. */
    size_t o = 0;
    for (int i = 0; i < 200; i++)
        o += (size_t)sprintf(buf + o, "k%d: %d\n", i, i);
    o += (size_t)sprintf(buf + o, "k7: again\n");
    assert_null(cdn_conf_load_string("many", buf, o, &err));
    assert_string_equal(err.msg, "many:201:1: duplicate key \"k7\" (first at line 8, column 1)");
    /* A nested duplicate is reported too. */
    const char *nd = "a:\n  b: 1\n  c: 2\n  b: 3\n";
    assert_null(cdn_conf_load_string("nd", nd, strlen(nd), &err));
    assert_string_equal(err.msg, "nd:4:3: duplicate key \"b\" (first at line 2, column 3)");
    /* NULL text is an empty document. */
    cdn_conf_t *c = cdn_conf_load_string(NULL, NULL, 0, &err);
    assert_non_null(c);
    cdn_conf_free(c);
}

static void required_null_and_wrong_items(void **state)
{
    struct daemon d;
    cdn_conf_err_t err;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"name:\nlisten: 1\n", "t:1:6: name: a value is required"},
        {"name: n\nlisten: 1\naliases: [a, {b: c}]\n", "t:3:14: aliases: expected a scalar, got a mapping"},
        {"name: n\nlisten: 1\norigins: [{weight: 3}]\n", "t:3:11: missing required key \"addr\""},
        {"name: n\nlisten: 1\norigins: [~]\n", "t:3:11: missing required key \"addr\""},
        {"name: n\nlisten: 1\npools: [a]\n", "t:3:8: pools: expected a mapping, got a list"},
        {"name: n\nlisten: 1\npools:\n  a: 3\n", "t:4:6: expected a mapping, got \"3\""},
        {"name: n\nlisten: 1\nratio: 1.5\n", "t:3:8: ratio: expected a number from 0 to 1, got \"1.5\""},
        {"name: n\nlisten: 1\nratio: nan\n", "t:3:8: ratio: expected a number from 0 to 1, got \"nan\""},
        {"name: n\nlisten: 1\nworkers: 9223372036854775808\n",
         "t:3:10: workers: expected an integer, got \"9223372036854775808\""},
        {"name: n\nlisten: 1\ncolor: red\n", "t:3:8: color: expected a colour like #ff8800"},
        {"name: n\nlisten: 1\ntls: {key: k}\n", "t:3:6: tls: missing required key \"cert\""},
        {"name: n\nlisten: 1\nport: -1\n", "t:3:7: port: expected an integer from 1 to 65535, got \"-1\""},
        /* A long value is shortened in the message, on a UTF-8 character boundary. */
        {"name: n\nlisten: 1\nworkers: x" "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\n",
         "t:3:10: workers: expected an integer, got \"x" "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_defaults(&d);
        cdn_conf_t *c = cdn_conf_load_string("t", cases[i].text, strlen(cases[i].text), &err);
        assert_non_null(c);
        int r = cdn_conf_decode(c, cdn_conf_root(c), daemon_fields, &d, &err);
        if (r != -1 || strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, r, err.msg, cases[i].msg);
        cdn_conf_free(c);
    }
    /* Extreme values that are in range. */
    const char *ok = "name: n\nlisten: 1\nworkers: -9223372036854775808\nport: 65535\nratio: 0\n";
    set_defaults(&d);
    cdn_conf_t *c = cdn_conf_load_string("t", ok, strlen(ok), &err);
    assert_int_equal(cdn_conf_decode(c, cdn_conf_root(c), daemon_fields, &d, &err), 0);
    assert_true(d.workers == (-9223372036854775807LL - 1));
    assert_int_equal(d.port, 65535);
    assert_true(d.ratio == 0);
    cdn_conf_free(c);
}

/* --- syntax tables --- */

static void durations(void **state)
{
    static const struct {
        const char *s;
        int ok;
        uint64_t ms;
    } t[] = {
        {"250ms", 1, 250},     {"10s", 1, 10000},   {"2m", 1, 120000},     {"1h", 1, 3600000},
        {"1d", 1, 86400000},   {"30", 1, 30000},    {"0", 1, 0},           {"1m30s", 1, 90000},
        {"1h2m3s4ms", 1, 3723004}, {"1.5s", 1, 1500}, {"0.25h", 1, 900000}, {"1.0005s", 1, 1000},
        {"", 0, 0},            {"s", 0, 0},         {"10 s", 0, 0},        {"-1s", 0, 0},
        {"10x", 0, 0},         {"10S", 0, 0},       {"1.s", 0, 0},         {".5s", 0, 0},
        {"10mss", 0, 0},       {"5 ", 0, 0},        {"1s30", 0, 0},        {"99999999999999999999s", 0, 0},
        {"213503982335d", 0, 0}, {"18446744073709551615ms", 1, 18446744073709551615ull},
        {"18446744073709551616ms", 0, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint64_t v = 12345;
        int r = cdn_parse_duration_ms(t[i].s, &v);
        if ((r == 0) != t[i].ok || (t[i].ok && v != t[i].ms))
            fail_msg("duration \"%s\": r=%d v=%llu", t[i].s, r, (unsigned long long)v);
    }
    assert_int_equal(cdn_parse_duration_ms(NULL, &(uint64_t){0}), -1);
}

static void sizes(void **state)
{
    static const struct {
        const char *s;
        int ok;
        uint64_t v;
    } t[] = {
        {"512", 1, 512},         {"0", 1, 0},           {"64k", 1, 65536},      {"64K", 1, 65536},
        {"64KiB", 1, 65536},     {"64kb", 1, 65536},    {"10MB", 1, 10485760},  {"10m", 1, 10485760},
        {"1g", 1, 1073741824},   {"1GiB", 1, 1073741824}, {"2t", 1, 2199023255552ull}, {"100b", 1, 100},
        {"100B", 1, 100},        {"1.5k", 1, 1536},     {"64 KiB", 1, 65536},   {"0.5g", 1, 536870912},
        {"", 0, 0},              {"k", 0, 0},           {"-1", 0, 0},           {"1.5", 0, 0},
        {"12XB", 0, 0},          {"64KiBs", 0, 0},      {"64  k", 0, 0},        {"1kib ", 0, 0},
        {"16777216t", 0, 0},     {"18446744073709551615", 1, 18446744073709551615ull},
        {"18446744073709551616", 0, 0}, {"64Ki", 0, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint64_t v = 12345;
        int r = cdn_parse_size(t[i].s, &v);
        if ((r == 0) != t[i].ok || (t[i].ok && v != t[i].v))
            fail_msg("size \"%s\": r=%d v=%llu", t[i].s, r, (unsigned long long)v);
    }
}

static void addresses(void **state)
{
    static const struct {
        const char *s, *def;
        int ok, family;
        const char *ip;
        unsigned port;
    } t[] = {
        {"127.0.0.1:8080", NULL, 1, AF_INET, "127.0.0.1", 8080},
        {"[::1]:53", NULL, 1, AF_INET6, "::1", 53},
        {"8080", NULL, 1, AF_INET, "0.0.0.0", 8080},
        {"8080", "127.0.0.1", 1, AF_INET, "127.0.0.1", 8080},
        {"53", "::", 1, AF_INET6, "::", 53},
        {"*:80", NULL, 1, AF_INET, "0.0.0.0", 80},
        {"localhost:80", NULL, 1, AF_INET, "127.0.0.1", 80},
        {"0.0.0.0:0", NULL, 1, AF_INET, "0.0.0.0", 0},
        {"[2001:db8::5]:65535", NULL, 1, AF_INET6, "2001:db8::5", 65535},
        {"1.2.3.4:65536", NULL, 0, 0, NULL, 0},
        {"::1:53", NULL, 0, 0, NULL, 0},
        {"[::1]", NULL, 0, 0, NULL, 0},
        {"[::1]53", NULL, 0, 0, NULL, 0},
        {"[127.0.0.1]:53", NULL, 0, 0, NULL, 0},
        {"example.com:80", NULL, 0, 0, NULL, 0},
        {"1.2.3:80", NULL, 0, 0, NULL, 0},
        {":80", NULL, 0, 0, NULL, 0},
        {"1.2.3.4:", NULL, 0, 0, NULL, 0},
        {"1.2.3.4:8o", NULL, 0, 0, NULL, 0},
        {"", NULL, 0, 0, NULL, 0},
        {"080808", NULL, 0, 0, NULL, 0},
        {"80", "nonsense", 0, 0, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int r = cdn_parse_addr(t[i].s, t[i].def, &ss, &len);
        if ((r == 0) != t[i].ok)
            fail_msg("addr \"%s\": r=%d", t[i].s, r);
        if (!t[i].ok)
            continue;
        char ip[64];
        assert_int_equal(ss.ss_family, t[i].family);
        if (t[i].family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            assert_int_equal(len, sizeof(*sin));
            inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
            assert_int_equal(ntohs(sin->sin_port), t[i].port);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            assert_int_equal(len, sizeof(*sin6));
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
            assert_int_equal(ntohs(sin6->sin6_port), t[i].port);
        }
        assert_string_equal(ip, t[i].ip);
    }
}

static void booleans_and_nulls(void **state)
{
    const char *text = "a: true\nb: Off\nc: YES\nd: no\ne: 1\nf: ~\ng: \"\"\nh: null\ni: 'null'\nj:\n";
    cdn_conf_err_t err;
    cdn_conf_t *c = cdn_conf_load_string("b", text, strlen(text), &err);
    assert_non_null(c);
    const cdn_conf_node_t *r = cdn_conf_root(c);
    int v = -1;
    assert_int_equal(cdn_conf_bool(c, cdn_conf_get(r, "a"), &v, &err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(cdn_conf_bool(c, cdn_conf_get(r, "b"), &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cdn_conf_bool(c, cdn_conf_get(r, "c"), &v, &err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(cdn_conf_bool(c, cdn_conf_get(r, "d"), &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cdn_conf_bool(c, cdn_conf_get(r, "e"), &v, &err), -1);
    assert_string_equal(err.msg, "b:5:4: expected a boolean (true, false, yes, no, on, off), got \"1\"");
    assert_true(cdn_conf_is_null(cdn_conf_get(r, "f")));
    assert_false(cdn_conf_is_null(cdn_conf_get(r, "g"))); /* quoted empty string is a string */
    assert_true(cdn_conf_is_null(cdn_conf_get(r, "h")));
    assert_false(cdn_conf_is_null(cdn_conf_get(r, "i")));
    assert_true(cdn_conf_is_null(cdn_conf_get(r, "j")));
    const char *s;
    assert_int_equal(cdn_conf_str(c, cdn_conf_get(r, "g"), &s, &err), 0);
    assert_string_equal(s, "");
    assert_int_equal(cdn_conf_fail(c, cdn_conf_get(r, "a"), &err, "custom %d", 7), -1);
    assert_string_equal(err.msg, "b:1:4: custom 7");
    assert_int_equal(err.line, 1);
    assert_int_equal(err.col, 4);
    assert_int_equal(cdn_conf_fail(c, NULL, &err, "no position"), -1);
    assert_string_equal(err.msg, "b: no position");
    cdn_conf_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_file),
        cmocka_unit_test(defaults_kept),
        cmocka_unit_test(broken_files),
        cmocka_unit_test(io_errors),
        cmocka_unit_test(hostile_documents),
        cmocka_unit_test(required_null_and_wrong_items),
        cmocka_unit_test(durations),
        cmocka_unit_test(sizes),
        cmocka_unit_test(addresses),
        cmocka_unit_test(booleans_and_nulls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
