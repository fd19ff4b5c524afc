/* lab/lib/topo.c - reading and checking a topology file (schema in topo.h; example
 * lab/topologies/default.yaml). Every error names the file, line and column of the offending node. */
#include "config.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lab/lib/topo.h"

static int decode_delay(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    struct cdn_conf_list *l = out;
    if (cdn_conf_kind(n) != CDN_CONF_MAP)
        return cdn_conf_fail(c, n, err, "expected a map of region: one-way delay (e.g. {us: 40ms})");
    size_t k = cdn_conf_len(n);
    struct lab_delay *d = cdn_conf_alloc(c, (k ? k : 1) * sizeof(*d));
    if (!d) return cdn_conf_fail(c, n, err, "out of memory");
    for (size_t i = 0; i < k; i++) {
        if (cdn_conf_str(c, cdn_conf_key(n, i), &d[i].to, err) < 0) return -1;
        if (cdn_conf_duration_ms(c, cdn_conf_value(n, i), &d[i].ms, err) < 0) return -1;
        if (d[i].ms > 10000) return cdn_conf_fail(c, cdn_conf_value(n, i), err, "a one-way delay above 10s");
        d[i].line = cdn_conf_line(cdn_conf_key(n, i));
    }
    l->items = d;
    l->n = k;
    return 0;
}

static const cdn_conf_field_t region_fields[] = {
    {"name", CDN_CT_STR, offsetof(struct lab_region, name)},
    {"delay", CDN_CT_CUSTOM, offsetof(struct lab_region, delay), .custom = decode_delay},
    {"clients", CDN_CT_UINT, offsetof(struct lab_region, clients), .min = 1, .max = 200},
    {NULL}};
static const struct lab_region region_defaults = {.clients = 4};

static const cdn_conf_field_t edge_fields[] = {
    {"name", CDN_CT_STR, offsetof(struct lab_edge, name), CDN_CF_REQUIRED},
    {"region", CDN_CT_STR, offsetof(struct lab_edge, region), CDN_CF_REQUIRED},
    {"ram", CDN_CT_SIZE, offsetof(struct lab_edge, ram)},
    {"disk", CDN_CT_SIZE, offsetof(struct lab_edge, disk)},
    {"parent", CDN_CT_BOOL, offsetof(struct lab_edge, parent)},
    {"parents", CDN_CT_STRLIST, offsetof(struct lab_edge, parents)},
    {"workers", CDN_CT_UINT, offsetof(struct lab_edge, workers), .min = 1, .max = 64},
    {NULL}};
static const struct lab_edge edge_defaults = {.ram = 64u << 20, .disk = 512u << 20, .workers = 1};

static const cdn_conf_field_t dns_fields[] = {
    {"region", CDN_CT_STR, offsetof(struct lab_dns_conf, region)},
    {"ttl", CDN_CT_DURATION, offsetof(struct lab_dns_conf, ttl_ms)},
    {"answers", CDN_CT_UINT, offsetof(struct lab_dns_conf, answers), .min = 1, .max = 8},
    {NULL}};

static const char *const algos[] = {"rr", "leastconn", "hash-client", "hash-url", NULL};
static int decode_algo(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    const char *s;
    if (cdn_conf_str(c, n, &s, err) < 0) return -1;
    for (int i = 0; algos[i]; i++)
        if (!strcmp(s, algos[i])) {
            *(const char **)out = s;
            return 0;
        }
    return cdn_conf_fail(c, n, err, "expected one of rr, leastconn, hash-client, hash-url");
}

static const cdn_conf_field_t origin_fields[] = {
    {"region", CDN_CT_STR, offsetof(struct lab_origin_conf, region)},
    {"apps", CDN_CT_UINT, offsetof(struct lab_origin_conf, apps), .min = 1, .max = 16},
    {"products", CDN_CT_UINT, offsetof(struct lab_origin_conf, products), .min = 10, .max = 1000000},
    {"seed", CDN_CT_UINT, offsetof(struct lab_origin_conf, seed), .min = 0, .max = 0},
    {"algo", CDN_CT_CUSTOM, offsetof(struct lab_origin_conf, algo), .custom = decode_algo},
    {"delay", CDN_CT_DURATION, offsetof(struct lab_origin_conf, delay_ms)},
    {"render_threads", CDN_CT_UINT, offsetof(struct lab_origin_conf, render_threads), .min = 1, .max = 64},
    {NULL}};

static int decode_routing(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    struct cdn_conf_list *l = out;
    if (cdn_conf_kind(n) != CDN_CONF_MAP)
        return cdn_conf_fail(c, n, err, "expected a map of hostname: dns | anycast | both (e.g. {img: anycast})");
    size_t k = cdn_conf_len(n);
    struct lab_route_mode *m = cdn_conf_alloc(c, (k ? k : 1) * sizeof(*m));
    if (!m) return cdn_conf_fail(c, n, err, "out of memory");
    for (size_t i = 0; i < k; i++) {
        if (cdn_conf_str(c, cdn_conf_key(n, i), &m[i].host, err) < 0) return -1;
        if (cdn_conf_str(c, cdn_conf_value(n, i), &m[i].mode, err) < 0) return -1;
        if (strcmp(m[i].mode, "dns") && strcmp(m[i].mode, "anycast") && strcmp(m[i].mode, "both"))
            return cdn_conf_fail(c, cdn_conf_value(n, i), err, "routing: expected dns, anycast or both");
        m[i].line = cdn_conf_line(cdn_conf_key(n, i));
    }
    l->items = m;
    l->n = k;
    return 0;
}

static const cdn_conf_field_t health_fields[] = {
    {"interval", CDN_CT_DURATION, offsetof(struct lab_health_conf, interval_ms)},
    {"timeout", CDN_CT_DURATION, offsetof(struct lab_health_conf, timeout_ms)},
    {"rise", CDN_CT_UINT, offsetof(struct lab_health_conf, rise), .min = 1, .max = 100},
    {"fall", CDN_CT_UINT, offsetof(struct lab_health_conf, fall), .min = 1, .max = 100},
    {NULL}};

static const cdn_conf_field_t anycast_fields[] = {
    {"addresses", CDN_CT_STRLIST, offsetof(struct lab_anycast_conf, addresses)},
    {"profile", CDN_CT_STR, offsetof(struct lab_anycast_conf, profile)},
    {"health", CDN_CT_STRUCT, offsetof(struct lab_anycast_conf, health), .sub = health_fields},
    {"routing", CDN_CT_CUSTOM, offsetof(struct lab_anycast_conf, routing), .custom = decode_routing},
    {NULL}};

static const char *const profiles[] = {"realistic", "tuned", "bfd", NULL};
int lab_profile_parse(const char *s, enum lab_profile *out)
{
    for (int i = 0; profiles[i]; i++)
        if (s && !strcmp(s, profiles[i])) {
            *out = (enum lab_profile)i;
            return 0;
        }
    return -1;
}
const char *lab_profile_name(enum lab_profile p) { return profiles[p]; }

const char *lab_topo_anycast_addr(const struct lab_topo *t, size_t host)
{
    if (!t->anycast.addresses.n) return NULL;
    return ((const char *const *)t->anycast.addresses.items)[host % t->anycast.addresses.n];
}

static const cdn_conf_field_t db_fields[] = {
    {"primary", CDN_CT_STR, offsetof(struct lab_db_conf, primary), CDN_CF_REQUIRED},
    {"replicas", CDN_CT_STRLIST, offsetof(struct lab_db_conf, replicas)},
    {"read_your_writes", CDN_CT_DURATION, offsetof(struct lab_db_conf, ryw_ms)},
    {NULL}};

static const cdn_conf_node_t *at(const cdn_conf_node_t *root, const char *k1, long idx, const char *k2);

/* db: the regions of the primary and the replicas. */
static int resolve_db(cdn_conf_t *c, const cdn_conf_node_t *root, struct lab_topo *t, cdn_conf_err_t *err)
{
    if (!t->db.primary) return 0;
    if (t->db.replicas.n > LAB_MAX_REPLICAS)
        return cdn_conf_fail(c, at(root, "db", -1, "replicas"), err, "at most %d replicas", LAB_MAX_REPLICAS);
    if ((t->db_region[0] = lab_topo_region(t, t->db.primary)) < 0)
        return cdn_conf_fail(c, at(root, "db", -1, "primary"), err, "unknown region '%s'", t->db.primary);
    for (size_t i = 0; i < t->db.replicas.n; i++) {
        const char *rn = ((const char *const *)t->db.replicas.items)[i];
        if ((t->db_region[1 + i] = lab_topo_region(t, rn)) < 0)
            return cdn_conf_fail(c, at(root, "db", -1, "replicas"), err, "unknown region '%s'", rn);
    }
    t->db_servers = 1 + (unsigned)t->db.replicas.n;
    return 0;
}

static const cdn_conf_field_t scale_fields[] = {
    {"min", CDN_CT_UINT, offsetof(struct lab_scale_conf, min), .min = 1, .max = 16},
    {"max", CDN_CT_UINT, offsetof(struct lab_scale_conf, max), .min = 1, .max = 16},
    {"target_inflight", CDN_CT_DOUBLE, offsetof(struct lab_scale_conf, target_inflight), .dmin = 0, .dmax = 100000},
    {"target_p95", CDN_CT_DURATION, offsetof(struct lab_scale_conf, target_p95_ms)},
    {"target_cpu", CDN_CT_DOUBLE, offsetof(struct lab_scale_conf, target_cpu), .dmin = 0, .dmax = 64},
    {"p95_min_requests", CDN_CT_UINT, offsetof(struct lab_scale_conf, p95_min_requests), .min = 1, .max = 1000000},
    {"down_below", CDN_CT_DOUBLE, offsetof(struct lab_scale_conf, down_below), .dmin = 0, .dmax = 1},
    {"up_after", CDN_CT_DURATION, offsetof(struct lab_scale_conf, up_after_ms)},
    {"down_after", CDN_CT_DURATION, offsetof(struct lab_scale_conf, down_after_ms)},
    {"cooldown", CDN_CT_DURATION, offsetof(struct lab_scale_conf, cooldown_ms)},
    {"interval", CDN_CT_DURATION, offsetof(struct lab_scale_conf, interval_ms)},
    {NULL}};

/* scale: min <= origin.apps <= max, a target at least, windows of at least one interval. */
static int check_scale(cdn_conf_t *c, const cdn_conf_node_t *root, struct lab_topo *t, cdn_conf_err_t *err)
{
    struct lab_scale_conf *s = &t->scale;
    const cdn_conf_node_t *sn = cdn_conf_get(root, "scale");
    t->app_slots = t->origin.apps;
    if (!sn) return 0;
    s->on = 1;
    if (s->max < s->min)
        return cdn_conf_fail(c, at(sn, "max", -1, NULL), err, "scale: max %u below min %u", s->max, s->min);
    if (t->origin.apps < s->min || t->origin.apps > s->max)
        return cdn_conf_fail(c, at(root, "origin", -1, "apps"), err, "origin.apps %u: the pool starts within scale's min %u and max %u",
                             t->origin.apps, s->min, s->max);
    if (s->target_inflight <= 0 && !s->target_p95_ms && s->target_cpu <= 0)
        return cdn_conf_fail(c, sn, err, "scale: no target (target_inflight, target_p95_ms or target_cpu)");
    if (s->down_below <= 0 || s->down_below > 1)
        return cdn_conf_fail(c, at(sn, "down_below", -1, NULL), err, "scale: down_below above 0, at most 1");
    if (s->interval_ms < 100 || s->interval_ms > 60000)
        return cdn_conf_fail(c, at(sn, "interval", -1, NULL), err, "scale: interval from 100ms to 60s");
    static const char *const win[] = {"up_after", "down_after"};
    uint64_t wv[] = {s->up_after_ms, s->down_after_ms};
    for (int i = 0; i < 2; i++)
        if (wv[i] < s->interval_ms || wv[i] > 3600000)
            return cdn_conf_fail(c, at(sn, win[i], -1, NULL), err, "scale: %s from one interval (%llu ms) to 1h", win[i],
                                 (unsigned long long)s->interval_ms);
    if (s->cooldown_ms > 3600000) return cdn_conf_fail(c, at(sn, "cooldown", -1, NULL), err, "scale: cooldown at most 1h");
    if (s->max > t->app_slots) t->app_slots = s->max;
    return 0;
}

static const cdn_conf_field_t topo_fields[] = {
    {"name", CDN_CT_STR, offsetof(struct lab_topo, name)},
    {"zone", CDN_CT_STR, offsetof(struct lab_topo, zone)},
    {"hostnames", CDN_CT_STRLIST, offsetof(struct lab_topo, hostnames)},
    {"regions", CDN_CT_MAP, offsetof(struct lab_topo, regions), CDN_CF_REQUIRED, .sub = region_fields,
     .sub_size = sizeof(struct lab_region), .sub_defaults = &region_defaults},
    {"edges", CDN_CT_LIST, offsetof(struct lab_topo, edges), CDN_CF_REQUIRED, .sub = edge_fields,
     .sub_size = sizeof(struct lab_edge), .sub_defaults = &edge_defaults},
    {"dns", CDN_CT_STRUCT, offsetof(struct lab_topo, dns), .sub = dns_fields},
    {"origin", CDN_CT_STRUCT, offsetof(struct lab_topo, origin), .sub = origin_fields},
    {"anycast", CDN_CT_STRUCT, offsetof(struct lab_topo, anycast), .sub = anycast_fields},
    {"db", CDN_CT_STRUCT, offsetof(struct lab_topo, db), .sub = db_fields},
    {"scale", CDN_CT_STRUCT, offsetof(struct lab_topo, scale), .sub = scale_fields},
    {NULL}};

int lab_topo_region(const struct lab_topo *t, const char *name)
{
    for (size_t i = 0; name && i < t->regions.n; i++)
        if (!strcmp(lab_topo_reg(t, i)->name, name)) return (int)i;
    return -1;
}

static int valid_label(const char *s)
{   /* names end up in namespace and file names: keep them short and plain; `name:` with no
     * value is NULL (fuzz_lab_topo found cdn-lab crashing on it) */
    if (s == NULL) return 0;
    size_t n = strlen(s);
    if (!n || n > 12) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || (s[i] == '-' && i))) return 0;
    return 1;
}

static const cdn_conf_node_t *at(const cdn_conf_node_t *root, const char *k1, long idx, const char *k2)
{   /* the node to blame: root.k1[idx].k2 (each step optional) */
    const cdn_conf_node_t *n = cdn_conf_get(root, k1);
    if (!n) return root;
    if (idx >= 0) {
        const cdn_conf_node_t *m = cdn_conf_kind(n) == CDN_CONF_SEQ ? cdn_conf_item(n, (size_t)idx)
                                                                     : cdn_conf_key(n, (size_t)idx);
        if (!m) return n;
        if (cdn_conf_kind(n) == CDN_CONF_MAP) {
            if (!k2) return m;
            n = cdn_conf_value(n, (size_t)idx);
        } else {
            n = m;
        }
    }
    if (k2 && n && cdn_conf_kind(n) == CDN_CONF_MAP) {
        const cdn_conf_node_t *m = cdn_conf_get(n, k2);
        if (m) return m;
    }
    return n;
}

/* anycast: addresses in 198.19.255.0/24 (1..254, distinct), a known profile, routing for known
 * hostnames only, and routing other than dns only when there are addresses. */
static int check_anycast(cdn_conf_t *c, const cdn_conf_node_t *root, struct lab_topo *t, cdn_conf_err_t *err)
{
    struct lab_anycast_conf *a = &t->anycast;
    const cdn_conf_node_t *an = cdn_conf_get(root, "anycast");
    const char *const *ad = a->addresses.items;
    if (an && !a->addresses.n) {
        static const char *def[] = {"198.19.255.1"};
        a->addresses.items = (void *)def;
        a->addresses.n = 1;
        ad = a->addresses.items;
    }
    if (a->addresses.n > LAB_MAX_ANYCAST)
        return cdn_conf_fail(c, at(an, "addresses", -1, NULL), err, "at most %d anycast addresses", LAB_MAX_ANYCAST);
    for (size_t i = 0; i < a->addresses.n; i++) {
        unsigned o4;
        char tail;
        if (sscanf(ad[i], "198.19.255.%u%c", &o4, &tail) != 1 || o4 < 1 || o4 > 254)
            return cdn_conf_fail(c, at(an, "addresses", -1, NULL), err,
                                 "anycast address '%s': expected 198.19.255.1 to 198.19.255.254", ad[i]);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(ad[k], ad[i]))
                return cdn_conf_fail(c, at(an, "addresses", -1, NULL), err, "anycast address %s given twice", ad[i]);
    }
    t->profile = LAB_PROF_TUNED;
    if (a->profile && lab_profile_parse(a->profile, &t->profile) < 0)
        return cdn_conf_fail(c, at(an, "profile", -1, NULL), err, "profile: expected realistic, tuned or bfd");
    if (a->health.timeout_ms < 10 || a->health.interval_ms < 10)
        return cdn_conf_fail(c, at(an, "health", -1, NULL), err, "health: interval and timeout of at least 10ms");
    const char *const *hn = t->hostnames.items;
    for (size_t i = 0; i < t->hostnames.n; i++) t->routing[i] = a->addresses.n ? LAB_ROUTE_ANYCAST : LAB_ROUTE_DNS;
    const struct lab_route_mode *m = a->routing.items;
    for (size_t k = 0; k < a->routing.n; k++) {
        size_t i;
        for (i = 0; i < t->hostnames.n; i++)
            if (!strcmp(hn[i], m[k].host)) break;
        if (i == t->hostnames.n)
            return cdn_conf_fail(c, at(an, "routing", -1, NULL), err, "routing: '%s' is not one of the hostnames", m[k].host);
        t->routing[i] = !strcmp(m[k].mode, "dns") ? LAB_ROUTE_DNS : !strcmp(m[k].mode, "anycast") ? LAB_ROUTE_ANYCAST
                                                                                                  : LAB_ROUTE_BOTH;
    }
    return 0;
}

/* Parents of each child edge: the ones it names (each must be a parent edge), else every parent
 * edge of the nearest region (by one-way delay) that has one; two tiers only, so a parent edge
 * names none. Needs edge_region[] filled. */
static int resolve_parents(cdn_conf_t *c, const cdn_conf_node_t *root, struct lab_topo *t, cdn_conf_err_t *err)
{
    size_t ne = t->edges.n;
    t->nparents = 0;
    for (size_t i = 0; i < ne; i++) t->nparents += lab_topo_edge(t, i)->parent != 0;
    if (t->nparents == ne)
        return cdn_conf_fail(c, at(root, "edges", -1, NULL), err, "every edge is a parent: clients need at least one other");
    for (size_t i = 0; i < ne; i++) {
        const struct lab_edge *e = lab_topo_edge(t, i);
        const char *const *pn = e->parents.items;
        t->edge_nparents[i] = 0;
        if (e->parents.n && e->parent)
            return cdn_conf_fail(c, at(root, "edges", (long)i, "parents"), err,
                                 "edge %s: a parent edge has no parents (two tiers)", e->name);
        if (e->parents.n > LAB_MAX_PARENTS)
            return cdn_conf_fail(c, at(root, "edges", (long)i, "parents"), err, "edge %s: at most %d parents", e->name,
                                 LAB_MAX_PARENTS);
        for (size_t k = 0; k < e->parents.n; k++) {
            size_t j;
            for (j = 0; j < ne; j++)
                if (!strcmp(lab_topo_edge(t, j)->name, pn[k])) break;
            if (j == ne || !lab_topo_edge(t, j)->parent)
                return cdn_conf_fail(c, at(root, "edges", (long)i, "parents"), err,
                                     j == ne ? "edge %s: unknown parent '%s'" : "edge %s: '%s' is not a parent edge (parent: true)",
                                     e->name, pn[k]);
            for (size_t q = 0; q < t->edge_nparents[i]; q++)
                if (t->edge_parents[i][q] == (int)j)
                    return cdn_conf_fail(c, at(root, "edges", (long)i, "parents"), err, "edge %s: parent '%s' named twice",
                                         e->name, pn[k]);
            t->edge_parents[i][t->edge_nparents[i]++] = (int)j;
        }
        if (e->parents.n || e->parent || !t->nparents) continue;
        uint64_t best = UINT64_MAX;
        for (size_t j = 0; j < ne; j++)
            if (lab_topo_edge(t, j)->parent && t->delay_ms[t->edge_region[i]][t->edge_region[j]] < best)
                best = t->delay_ms[t->edge_region[i]][t->edge_region[j]];
        for (size_t j = 0; j < ne && t->edge_nparents[i] < LAB_MAX_PARENTS; j++)
            if (lab_topo_edge(t, j)->parent && t->delay_ms[t->edge_region[i]][t->edge_region[j]] == best)
                t->edge_parents[i][t->edge_nparents[i]++] = (int)j;
    }
    return 0;
}

/* Delays: symmetric, every pair given once or twice the same, none to itself or unknown. */
static int check_delays(cdn_conf_t *c, const cdn_conf_node_t *root, struct lab_topo *t, cdn_conf_err_t *err)
{
    size_t nr = t->regions.n;
    for (size_t i = 0; i < nr; i++)
        for (size_t j = 0; j < nr; j++) t->delay_ms[i][j] = i == j ? 0 : UINT64_MAX;
    for (size_t i = 0; i < nr; i++) {
        const struct lab_region *r = lab_topo_reg(t, i);
        const struct lab_delay *d = r->delay.items;
        for (size_t k = 0; k < r->delay.n; k++) {
            int j = lab_topo_region(t, d[k].to);
            const cdn_conf_node_t *dn = at(root, "regions", (long)i, "delay");
            if (j < 0) {
                cdn_conf_fail(c, dn, err, "region %s: delay to unknown region '%s'", r->name, d[k].to);
                return -1;
            }
            if ((size_t)j == i) {
                cdn_conf_fail(c, dn, err, "region %s: delay to itself", r->name);
                return -1;
            }
            if (t->delay_ms[i][j] != UINT64_MAX && t->delay_ms[i][j] != d[k].ms) {
                cdn_conf_fail(c, dn, err, "delay %s-%s given twice, differently (%llu ms and %llu ms)", r->name,
                              d[k].to, (unsigned long long)t->delay_ms[i][j], (unsigned long long)d[k].ms);
                return -1;
            }
            t->delay_ms[i][j] = t->delay_ms[j][i] = d[k].ms;
        }
    }
    for (size_t i = 0; i < nr; i++)
        for (size_t j = i + 1; j < nr; j++)
            if (t->delay_ms[i][j] == UINT64_MAX) {
                cdn_conf_fail(c, at(root, "regions", (long)i, NULL), err, "no delay between regions %s and %s",
                              lab_topo_reg(t, i)->name, lab_topo_reg(t, j)->name);
                return -1;
            }
    return 0;
}

/* 1 to 64 edges, named once each, in known regions. */
static int check_edges(cdn_conf_t *c, const cdn_conf_node_t *root, struct lab_topo *t, cdn_conf_err_t *err)
{
    if (t->edges.n < 1 || t->edges.n > 64) {
        cdn_conf_fail(c, at(root, "edges", -1, NULL), err, "expected 1 to 64 edges");
        return -1;
    }
    for (size_t i = 0; i < t->edges.n; i++) {
        const struct lab_edge *e = lab_topo_edge(t, i);
        if (!valid_label(e->name)) {
            cdn_conf_fail(c, at(root, "edges", (long)i, "name"), err, "edge name: 1 to 12 of a-z, 0-9, '-'");
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(lab_topo_edge(t, k)->name, e->name)) {
                cdn_conf_fail(c, at(root, "edges", (long)i, "name"), err, "edge name '%s' used twice", e->name);
                return -1;
            }
        t->edge_region[i] = lab_topo_region(t, e->region);
        if (t->edge_region[i] < 0) {
            cdn_conf_fail(c, at(root, "edges", (long)i, "region"), err, "unknown region '%s'", e->region);
            return -1;
        }
    }
    return 0;
}

static struct lab_topo *finish(cdn_conf_t *c, cdn_conf_err_t *err)
{
    const cdn_conf_node_t *root = cdn_conf_root(c);
    struct lab_topo *t = cdn_conf_alloc(c, sizeof(*t));
    if (!t) return NULL;
    t->name = "lab";
    t->zone = "shop.test";
    t->dns = (struct lab_dns_conf){.ttl_ms = 20000, .answers = 2};
    t->origin = (struct lab_origin_conf){.apps = 3, .products = 2000, .seed = 1, .algo = "hash-url"};
    t->anycast.health = (struct lab_health_conf){.interval_ms = 100, .timeout_ms = 200, .rise = 3, .fall = 3};
    t->scale = (struct lab_scale_conf){.min = 1, .max = 6, .down_below = 0.5, .p95_min_requests = 5, .up_after_ms = 5000, .down_after_ms = 20000,
                                       .cooldown_ms = 10000, .interval_ms = 1000};
    if (cdn_conf_decode(c, root, topo_fields, t, err) < 0) return NULL;
    if (!t->hostnames.n) {
        static const char *def[] = {"img", "www"};
        t->hostnames.items = (void *)def;
        t->hostnames.n = 2;
    }
    if (!valid_label(t->name)) {
        cdn_conf_fail(c, at(root, "name", -1, NULL), err, "name: 1 to 12 of a-z, 0-9, '-'");
        return NULL;
    }
    size_t nr = t->regions.n;
    if (nr < 1 || nr > LAB_MAX_REGIONS) {
        cdn_conf_fail(c, at(root, "regions", -1, NULL), err, "expected 1 to %d regions", LAB_MAX_REGIONS);
        return NULL;
    }
    for (size_t i = 0; i < nr; i++)
        if (!valid_label(lab_topo_reg(t, i)->name)) {
            cdn_conf_fail(c, at(root, "regions", (long)i, NULL), err,
                          "region name: 1 to 12 of a-z, 0-9, '-'");
            return NULL;
        }
    if (check_delays(c, root, t, err) < 0 || check_edges(c, root, t, err) < 0) return NULL;
    if (resolve_parents(c, root, t, err) < 0) return NULL;
    t->dns_region = t->dns.region ? lab_topo_region(t, t->dns.region) : 0;
    if (t->dns_region < 0) {
        cdn_conf_fail(c, at(root, "dns", -1, "region"), err, "unknown region '%s'", t->dns.region);
        return NULL;
    }
    t->origin_region = t->origin.region ? lab_topo_region(t, t->origin.region) : 0;
    if (t->origin_region < 0) {
        cdn_conf_fail(c, at(root, "origin", -1, "region"), err, "unknown region '%s'", t->origin.region);
        return NULL;
    }
    if (resolve_db(c, root, t, err) < 0) return NULL;
    if (check_scale(c, root, t, err) < 0) return NULL;
    if (t->dns.ttl_ms < 1000) {
        cdn_conf_fail(c, at(root, "dns", -1, "ttl"), err, "ttl: at least 1s");
        return NULL;
    }
    const char *const *hn = t->hostnames.items;
    if (t->hostnames.n > 16) {
        cdn_conf_fail(c, at(root, "hostnames", -1, NULL), err, "at most 16 hostnames");
        return NULL;
    }
    for (size_t i = 0; i < t->hostnames.n; i++)
        if (!valid_label(hn[i])) {
            cdn_conf_fail(c, at(root, "hostnames", -1, NULL), err, "hostname '%s': a label within the zone (img)", hn[i]);
            return NULL;
        }
    return check_anycast(c, root, t, err) < 0 ? NULL : t;
}

struct lab_topo *lab_topo_load(const char *path, cdn_conf_t **conf, cdn_conf_err_t *err)
{
    *conf = cdn_conf_load_file(path, err);
    if (!*conf) return NULL;
    struct lab_topo *t = finish(*conf, err);
    if (!t) {
        cdn_conf_free(*conf);
        *conf = NULL;
    }
    return t;
}

struct lab_topo *lab_topo_load_string(const char *name, const char *text, size_t len, cdn_conf_t **conf,
                                      cdn_conf_err_t *err)
{
    *conf = cdn_conf_load_string(name, text, len, err);
    if (!*conf) return NULL;
    struct lab_topo *t = finish(*conf, err);
    if (!t) {
        cdn_conf_free(*conf);
        *conf = NULL;
    }
    return t;
}
