/* dns/conf.c - YAML -> struct cdns_conf + view, walking the document with cdn/config.h's node
 * API so that every error points at the offending node. Nothing here touches a running server:
 * a reload parses into a fresh struct and the caller swaps it in only on success. */
#include "config.h"

#include "dns/conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cdn/log.h"

#define CK(x) do { if ((x) != 0) return -1; } while (0)

struct ctx {
    cdn_conf_t *c;
    cdn_conf_err_t *err;
    struct cdns_view *v;
    char e[512];
};

static const char *ks(const cdn_conf_node_t *k)
{
    const char *s = cdn_conf_scalar(k);
    return s ? s : "";
}

static int unknown_key(struct ctx *x, const cdn_conf_node_t *k, const char *accepted)
{
    return cdn_conf_fail(x->c, k, x->err, "unknown key '%s' (accepted: %s)", ks(k), accepted);
}

static int want(struct ctx *x, const cdn_conf_node_t *n, enum cdn_conf_kind kind, const char *what)
{
    if (cdn_conf_kind(n) != kind) return cdn_conf_fail(x->c, n, x->err, "expected %s", what);
    return 0;
}

/* A scalar or a sequence of scalars -> callback per string. */
static int each_str(struct ctx *x, const cdn_conf_node_t *n, int (*fn)(struct ctx *, const cdn_conf_node_t *, const char *, void *),
                    void *arg)
{
    if (cdn_conf_kind(n) == CDN_CONF_SCALAR) return fn(x, n, cdn_conf_scalar(n), arg);
    CK(want(x, n, CDN_CONF_SEQ, "a string or a list of strings"));
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        const cdn_conf_node_t *it = cdn_conf_item(n, i);
        const char *s;
        CK(cdn_conf_str(x->c, it, &s, x->err));
        CK(fn(x, it, s, arg));
    }
    return 0;
}

static int u32(struct ctx *x, const cdn_conf_node_t *n, long long min, long long max, unsigned *out)
{
    long long v;
    CK(cdn_conf_int(x->c, n, min, max, &v, x->err));
    *out = (unsigned)v;
    return 0;
}

static int add_listen(struct ctx *x, const cdn_conf_node_t *n, const char *s, void *arg)
{
    struct cdns_conf *o = arg;
    if (o->nlisten == CDNS_MAX_LISTEN) return cdn_conf_fail(x->c, n, x->err, "at most %d listen addresses", CDNS_MAX_LISTEN);
    struct cdn_conf_addr *a = &o->listen[o->nlisten];
    CK(cdn_conf_addr(x->c, n, "127.0.0.1", &a->ss, &a->len, x->err));
    a->text = NULL;
    o->nlisten++;
    (void)s;
    return 0;
}

static int opt_rrl(struct ctx *x, const cdn_conf_node_t *n)
{
    struct cdns_settings *s = &x->v->set;
    CK(want(x, n, CDN_CONF_MAP, "a mapping (rate, burst, slip, ipv4_prefix, ipv6_prefix)"));
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        const cdn_conf_node_t *k = cdn_conf_key(n, i), *val = cdn_conf_value(n, i);
        const char *key = ks(k);
        if (!strcmp(key, "rate")) CK(u32(x, val, 0, 1000000, &s->rrl_rate));
        else if (!strcmp(key, "burst")) CK(u32(x, val, 0, 1000000, &s->rrl_burst));
        else if (!strcmp(key, "slip")) CK(u32(x, val, 0, 100, &s->rrl_slip));
        else if (!strcmp(key, "ipv4_prefix")) CK(u32(x, val, 1, 32, &s->rrl_v4_prefix));
        else if (!strcmp(key, "ipv6_prefix")) CK(u32(x, val, 1, 128, &s->rrl_v6_prefix));
        else return unknown_key(x, k, "rate, burst, slip, ipv4_prefix, ipv6_prefix");
    }
    return 0;
}

static int opt_health(struct ctx *x, const cdn_conf_node_t *n)
{
    struct cdns_settings *s = &x->v->set;
    CK(want(x, n, CDN_CONF_MAP, "a mapping (interval, timeout, rise, fall, doubt)"));
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        const cdn_conf_node_t *k = cdn_conf_key(n, i), *val = cdn_conf_value(n, i);
        const char *key = ks(k);
        if (!strcmp(key, "interval")) CK(cdn_conf_duration_ms(x->c, val, &s->hc_interval_ms, x->err));
        else if (!strcmp(key, "timeout")) CK(cdn_conf_duration_ms(x->c, val, &s->hc_timeout_ms, x->err));
        else if (!strcmp(key, "rise")) CK(u32(x, val, 1, 100, &s->hc_rise));
        else if (!strcmp(key, "fall")) CK(u32(x, val, 1, 100, &s->hc_fall));
        else if (!strcmp(key, "doubt")) CK(cdn_conf_duration_ms(x->c, val, &s->doubt_ms, x->err));
        else return unknown_key(x, k, "interval, timeout, rise, fall, doubt");
    }
    if (s->hc_interval_ms < 100) s->hc_interval_ms = 100;
    if (s->hc_timeout_ms == 0) s->hc_timeout_ms = 1000;
    return 0;
}

static int add_subnet(struct ctx *x, const cdn_conf_node_t *n, const char *s, void *arg)
{
    if (cdns_view_add_subnet(x->v, *(int *)arg, s, x->e, sizeof(x->e)) != 0)
        return cdn_conf_fail(x->c, n, x->err, "%s", x->e);
    return 0;
}

static int opt_regions(struct ctx *x, const cdn_conf_node_t *n)
{
    CK(want(x, n, CDN_CONF_MAP, "a mapping of region names"));
    /* names first, so that distances may name any region */
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        const cdn_conf_node_t *k = cdn_conf_key(n, i);
        if (cdns_view_add_region(x->v, ks(k), x->e, sizeof(x->e)) < 0)
            return cdn_conf_fail(x->c, k, x->err, "%s", x->e);
    }
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        int r = (int)i;
        const cdn_conf_node_t *body = cdn_conf_value(n, i);
        if (cdn_conf_is_null(body)) continue;
        CK(want(x, body, CDN_CONF_MAP, "a mapping (subnets, distance)"));
        for (size_t j = 0; j < cdn_conf_len(body); j++) {
            const cdn_conf_node_t *k = cdn_conf_key(body, j), *val = cdn_conf_value(body, j);
            const char *key = ks(k);
            if (!strcmp(key, "subnets")) {
                CK(each_str(x, val, add_subnet, &r));
            } else if (!strcmp(key, "distance")) {
                CK(want(x, val, CDN_CONF_MAP, "a mapping region: distance"));
                for (size_t d = 0; d < cdn_conf_len(val); d++) {
                    const cdn_conf_node_t *dk = cdn_conf_key(val, d);
                    int other = cdns_view_region_index(x->v, ks(dk));
                    if (other < 0) return cdn_conf_fail(x->c, dk, x->err, "unknown region '%s'", ks(dk));
                    unsigned dist;
                    CK(u32(x, cdn_conf_value(val, d), 0, 4000000000LL, &dist));
                    cdns_view_set_distance(x->v, r, other, dist);
                }
            } else {
                return unknown_key(x, k, "subnets, distance");
            }
        }
    }
    return 0;
}

static int collect(struct ctx *x, const cdn_conf_node_t *n, const char *s, void *arg)
{
    struct { const char *a[2 * CDNS_MAX_ADDRS]; size_t n; } *l = arg;
    if (l->n == 2 * CDNS_MAX_ADDRS) return cdn_conf_fail(x->c, n, x->err, "too many addresses");
    l->a[l->n++] = s;
    return 0;
}

static int opt_edges(struct ctx *x, const cdn_conf_node_t *n)
{
    CK(want(x, n, CDN_CONF_SEQ, "a list of edges"));
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        const cdn_conf_node_t *e = cdn_conf_item(n, i);
        CK(want(x, e, CDN_CONF_MAP, "an edge (name, region, addresses, health)"));
        const char *name = NULL, *region = NULL, *health = NULL;
        struct { const char *a[2 * CDNS_MAX_ADDRS]; size_t n; } addrs = {.n = 0};
        const cdn_conf_node_t *rnode = e;
        for (size_t j = 0; j < cdn_conf_len(e); j++) {
            const cdn_conf_node_t *k = cdn_conf_key(e, j), *val = cdn_conf_value(e, j);
            const char *key = ks(k);
            if (!strcmp(key, "name")) CK(cdn_conf_str(x->c, val, &name, x->err));
            else if (!strcmp(key, "region")) { CK(cdn_conf_str(x->c, val, &region, x->err)); rnode = val; }
            else if (!strcmp(key, "addresses") || !strcmp(key, "address")) CK(each_str(x, val, collect, &addrs));
            else if (!strcmp(key, "health")) { if (!cdn_conf_is_null(val)) CK(cdn_conf_str(x->c, val, &health, x->err)); }
            else return unknown_key(x, k, "name, region, addresses, health");
        }
        if (!name || !region || addrs.n == 0) return cdn_conf_fail(x->c, e, x->err, "an edge needs name, region and addresses");
        int r = cdns_view_region_index(x->v, region);
        if (r < 0) return cdn_conf_fail(x->c, rnode, x->err, "unknown region '%s'", region);
        if (cdns_view_add_edge(x->v, name, r, addrs.a, addrs.n, health, x->e, sizeof(x->e)) < 0)
            return cdn_conf_fail(x->c, e, x->err, "%s", x->e);
    }
    return 0;
}

static int add_fallback(struct ctx *x, const cdn_conf_node_t *n, const char *s, void *arg)
{
    if (cdns_view_add_fallback(x->v, s, x->e, sizeof(x->e)) != 0) return cdn_conf_fail(x->c, n, x->err, "%s", x->e);
    return 0;
}

static int opt_cdn(struct ctx *x, struct cdns_zone *z, const cdn_conf_node_t *n)
{
    CK(want(x, n, CDN_CONF_SEQ, "a list of CDN names"));
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        const cdn_conf_node_t *e = cdn_conf_item(n, i);
        CK(want(x, e, CDN_CONF_MAP, "a CDN name (name, ttl, doubt_ttl, answers)"));
        const char *name = NULL;
        struct cdns_cdn cdn = {.ttl = 20, .doubt_ttl = 5, .count = 1};
        for (size_t j = 0; j < cdn_conf_len(e); j++) {
            const cdn_conf_node_t *k = cdn_conf_key(e, j), *val = cdn_conf_value(e, j);
            const char *key = ks(k);
            if (!strcmp(key, "name")) CK(cdn_conf_str(x->c, val, &name, x->err));
            else if (!strcmp(key, "ttl")) CK(u32(x, val, 0, 86400, &cdn.ttl));
            else if (!strcmp(key, "doubt_ttl")) CK(u32(x, val, 0, 86400, &cdn.doubt_ttl));
            else if (!strcmp(key, "answers")) CK(u32(x, val, 1, CDNS_MAX_PICK, &cdn.count));
            else return unknown_key(x, k, "name, ttl, doubt_ttl, answers");
        }
        if (!name) return cdn_conf_fail(x->c, e, x->err, "a CDN name needs 'name'");
        if (cdns_zone_add_cdn(x->v, z, name, &cdn, x->e, sizeof(x->e)) != 0)
            return cdn_conf_fail(x->c, e, x->err, "%s", x->e);
    }
    return 0;
}

static int opt_zones(struct ctx *x, const cdn_conf_node_t *n)
{
    CK(want(x, n, CDN_CONF_SEQ, "a list of zones"));
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        const cdn_conf_node_t *zn = cdn_conf_item(n, i);
        CK(want(x, zn, CDN_CONF_MAP, "a zone (name, ttl, soa, records, cdn)"));
        const cdn_conf_node_t *name = cdn_conf_get(zn, "name");
        if (!name) return cdn_conf_fail(x->c, zn, x->err, "a zone needs 'name'");
        const char *apex;
        CK(cdn_conf_str(x->c, name, &apex, x->err));
        struct cdns_zone *z = cdns_view_add_zone(x->v, apex, x->e, sizeof(x->e));
        if (!z) return cdn_conf_fail(x->c, name, x->err, "%s", x->e);
        unsigned ttl = 3600;
        const cdn_conf_node_t *t = cdn_conf_get(zn, "ttl");
        if (t) CK(u32(x, t, 0, 0x7FFFFFFF, &ttl));
        for (size_t j = 0; j < cdn_conf_len(zn); j++) {
            const cdn_conf_node_t *k = cdn_conf_key(zn, j), *val = cdn_conf_value(zn, j);
            const char *key = ks(k);
            if (!strcmp(key, "name") || !strcmp(key, "ttl")) continue;
            if (!strcmp(key, "soa")) {
                const char *s;
                char line[1024];
                CK(cdn_conf_str(x->c, val, &s, x->err));
                snprintf(line, sizeof(line), "@ SOA %s", s);
                if (cdns_zone_add_text(x->v, z, line, ttl, x->e, sizeof(x->e)) != 0)
                    return cdn_conf_fail(x->c, val, x->err, "%s", x->e);
            } else if (!strcmp(key, "records")) {
                CK(want(x, val, CDN_CONF_SEQ, "a list of records (\"name [ttl] TYPE data\")"));
                for (size_t r = 0; r < cdn_conf_len(val); r++) {
                    const cdn_conf_node_t *rn = cdn_conf_item(val, r);
                    const char *s;
                    CK(cdn_conf_str(x->c, rn, &s, x->err));
                    if (cdns_zone_add_text(x->v, z, s, ttl, x->e, sizeof(x->e)) != 0)
                        return cdn_conf_fail(x->c, rn, x->err, "%s", x->e);
                }
            } else if (!strcmp(key, "cdn")) {
                CK(opt_cdn(x, z, val));
            } else {
                return unknown_key(x, k, "name, ttl, soa, records, cdn");
            }
        }
    }
    return 0;
}

static int decode(cdn_conf_t *c, struct cdns_conf *o, cdn_conf_err_t *err)
{
    struct ctx x = {.c = c, .err = err};
    memset(o, 0, sizeof(*o));
    o->workers = 1;
    o->log_level = CDN_LOG_INFO;
    o->tcp_idle_ms = 10000;
    o->tcp_msg_ms = 2000;
    o->tcp_max_conns = 512;
    o->tcp_max_per_addr = 32;
    if (!(x.v = o->view = cdns_view_new())) return cdn_conf_fail(c, cdn_conf_root(c), err, "out of memory");
    const cdn_conf_node_t *root = cdn_conf_root(c);
    const cdn_conf_node_t *regions = NULL, *edges = NULL, *zones = NULL, *defreg = NULL, *fallback = NULL;
    for (size_t i = 0; i < cdn_conf_len(root); i++) {
        const cdn_conf_node_t *k = cdn_conf_key(root, i), *val = cdn_conf_value(root, i);
        const char *key = ks(k);
        const char *s;
        if (!strcmp(key, "listen")) CK(each_str(&x, val, add_listen, o));
        else if (!strcmp(key, "admin")) {
            if (!cdn_conf_is_null(val)) CK(cdn_conf_addr(c, val, "127.0.0.1", &o->admin.ss, &o->admin.len, err));
        } else if (!strcmp(key, "workers")) CK(u32(&x, val, 1, 64, &o->workers));
        else if (!strcmp(key, "pid_file")) { CK(cdn_conf_str(c, val, &s, err)); o->pid_file = strdup(s); }
        else if (!strcmp(key, "log_file")) { CK(cdn_conf_str(c, val, &s, err)); o->log_file = strdup(s); }
        else if (!strcmp(key, "log_level")) {
            CK(cdn_conf_str(c, val, &s, err));
            if ((o->log_level = cdn_log_level_parse(s)) < 0)
                return cdn_conf_fail(c, val, err, "expected debug, info, notice, warn or error");
        } else if (!strcmp(key, "udp_max_size")) CK(u32(&x, val, 512, 4096, &x.v->set.udp_max));
        else if (!strcmp(key, "amplification_factor")) CK(u32(&x, val, 0, 1000, &x.v->set.amp_factor));
        else if (!strcmp(key, "tcp_idle_timeout")) CK(cdn_conf_duration_ms(c, val, &o->tcp_idle_ms, err));
        else if (!strcmp(key, "tcp_message_timeout")) {
            CK(cdn_conf_duration_ms(c, val, &o->tcp_msg_ms, err));
            if (o->tcp_msg_ms == 0) return cdn_conf_fail(c, val, err, "expected a duration above 0");
        } else if (!strcmp(key, "tcp_max_connections")) CK(u32(&x, val, 1, 1000000, &o->tcp_max_conns));
        else if (!strcmp(key, "tcp_max_connections_per_address")) CK(u32(&x, val, 0, 1000000, &o->tcp_max_per_addr));
        else if (!strcmp(key, "udp_steer")) {
            CK(cdn_conf_str(c, val, &s, err));
            if (strcmp(s, "cpu") && strcmp(s, "hash")) return cdn_conf_fail(c, val, err, "expected cpu or hash");
            o->udp_steer_cpu = !strcmp(s, "cpu");
        }
        else if (!strcmp(key, "rrl")) CK(opt_rrl(&x, val));
        else if (!strcmp(key, "health")) CK(opt_health(&x, val));
        else if (!strcmp(key, "regions")) regions = val;
        else if (!strcmp(key, "default_region")) defreg = val;
        else if (!strcmp(key, "edges")) edges = val;
        else if (!strcmp(key, "fallback")) fallback = val;
        else if (!strcmp(key, "zones")) zones = val;
        else return unknown_key(&x, k, "listen, admin, workers, pid_file, log_file, log_level, udp_max_size, "
                                       "amplification_factor, tcp_idle_timeout, tcp_message_timeout, tcp_max_connections, "
                                       "tcp_max_connections_per_address, udp_steer, rrl, health, "
                                       "regions, default_region, edges, fallback, zones");
    }
    /* order matters: regions before edges and the default, zones last (CDN names need edges) */
    if (regions) CK(opt_regions(&x, regions));
    if (defreg) {
        const char *s;
        CK(cdn_conf_str(c, defreg, &s, err));
        if ((x.v->default_region = cdns_view_region_index(x.v, s)) < 0)
            return cdn_conf_fail(c, defreg, err, "unknown region '%s'", s);
    }
    if (edges) CK(opt_edges(&x, edges));
    if (fallback) CK(each_str(&x, fallback, add_fallback, NULL));
    if (!zones) return cdn_conf_fail(c, root, err, "no 'zones': nothing to serve");
    CK(opt_zones(&x, zones));
    if (o->nlisten == 0) return cdn_conf_fail(c, root, err, "no 'listen' address");
    if (cdns_view_finish(x.v, x.e, sizeof(x.e)) != 0) return cdn_conf_fail(c, zones, err, "%s", x.e);
    return 0;
}

static int load(cdn_conf_t *c, struct cdns_conf *out, cdn_conf_err_t *err)
{
    if (!c) return -1;
    int rc = decode(c, out, err);
    cdn_conf_free(c);  /* everything we keep was copied into the view */
    if (rc != 0) { cdns_conf_free(out); return -1; }
    return 0;
}

int cdns_conf_load(const char *path, struct cdns_conf *out, cdn_conf_err_t *err)
{
    memset(out, 0, sizeof(*out));
    return load(cdn_conf_load_file(path, err), out, err);
}

int cdns_conf_load_string(const char *name, const char *text, struct cdns_conf *out, cdn_conf_err_t *err)
{
    memset(out, 0, sizeof(*out));
    return load(cdn_conf_load_string(name, text, strlen(text), err), out, err);
}

void cdns_conf_free(struct cdns_conf *c)
{
    cdns_view_free(c->view);
    free((void *)c->pid_file);
    free((void *)c->log_file);
    memset(c, 0, sizeof(*c));
}
