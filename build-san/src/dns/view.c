/* dns/view.c - building a view (zones, topology, settings) and the pure lookups on it: zone and
 * node lookup, the coverage-zone trie, health accounting and edge selection. */
#include "config.h"

#include "dns/view.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cdn/http.h"
#include "dns/msg.h"

/* --- arena: the view's memory, freed in one go --- */
struct arena { struct arena *next; size_t used, cap; _Alignas(16) unsigned char data[]; };

void *cdns_view_alloc(struct cdns_view *v, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena *a = v->arena;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        a = calloc(1, sizeof(*a) + cap);
        if (!a) return NULL;
        a->cap = cap;
        a->next = v->arena;
        v->arena = a;
    }
    void *p = a->data + a->used;
    a->used += n;
    return p;
}

char *cdns_view_strdup(struct cdns_view *v, const char *s)
{
    size_t l = strlen(s) + 1;
    char *p = cdns_view_alloc(v, l);
    if (p) memcpy(p, s, l);
    return p;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void cdns_view_default_settings(struct cdns_settings *s)
{
    *s = (struct cdns_settings){
        .udp_max = 1232, .amp_factor = 10, .rrl_rate = 0, .rrl_burst = 0, .rrl_slip = 2,
        .rrl_v4_prefix = 24, .rrl_v6_prefix = 56, .doubt_ms = 10000,
        .hc_interval_ms = 2000, .hc_timeout_ms = 1000, .hc_rise = 2, .hc_fall = 2,
    };
}

struct cdns_view *cdns_view_new(void)
{
    struct cdns_view *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    static _Atomic uint64_t serials;
    cdns_view_default_settings(&v->set);
    v->default_region = -1;
    v->serial = atomic_fetch_add(&serials, 1) + 1;
    return v;
}

void cdns_view_free(struct cdns_view *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->nzones; i++) free(v->zones[i].tab);
    free(v->zones);
    free(v->regions);
    free(v->dist);
    free(v->edges);
    free(v->order);
    free(v->geo4.n);
    free(v->geo6.n);
    free((void *)v->health);
    for (struct arena *a = v->arena, *n; a; a = n) { n = a->next; free(a); }
    free(v);
}

/* --- zones and nodes --- */
/* Hash over exactly the name's bytes, under the process's random key: query names are the
 * client's choice. Only the chains' order depends on it, never an answer. */
static uint32_t hash_name(const uint8_t *lname)
{
    return (uint32_t)cdn_hash(lname, cdns_name_len(lname, CDNS_NAME_MAX));
}

const struct cdns_zone *cdns_view_find_zone(const struct cdns_view *v, const uint8_t *lname)
{
    /* longest apex that is a suffix of the name: walk the name's suffixes from the longest */
    for (const uint8_t *s = lname;; s += 1 + *s) {
        for (size_t i = 0; i < v->nzones; i++)
            if (cdns_name_eq(s, v->zones[i].apex)) return &v->zones[i];
        if (*s == 0) return NULL;
    }
}

const struct cdns_node *cdns_zone_find(const struct cdns_zone *z, const uint8_t *lname)
{
    if (!z->tabsize) return NULL;
    size_t len = cdns_name_len(lname, CDNS_NAME_MAX);
    for (struct cdns_node *n = z->tab[hash_name(lname) & (z->tabsize - 1)]; n; n = n->hnext)
        if (memcmp(n->name, lname, len) == 0 && cdns_name_len(n->name, CDNS_NAME_MAX) == len) return n;
    return NULL;
}

const struct cdns_rrset *cdns_node_rrset(const struct cdns_node *n, uint16_t type)
{
    for (const struct cdns_rrset *r = n->rrsets; r; r = r->next)
        if (r->type == type) return r;
    return NULL;
}

static int zone_rehash(struct cdns_zone *z, size_t size)
{
    struct cdns_node **t = calloc(size, sizeof(*t));
    if (!t) return -1;
    for (size_t i = 0; i < z->tabsize; i++) {
        for (struct cdns_node *n = z->tab[i], *next; n; n = next) {
            next = n->hnext;
            size_t b = hash_name(n->name) & (size - 1);
            n->hnext = t[b];
            t[b] = n;
        }
    }
    free(z->tab);
    z->tab = t;
    z->tabsize = size;
    return 0;
}

static struct cdns_node *zone_get(struct cdns_view *v, struct cdns_zone *z, const uint8_t *lname)
{
    struct cdns_node *n = (struct cdns_node *)cdns_zone_find(z, lname);
    if (n) return n;
    if (z->nnodes + 1 > z->tabsize && zone_rehash(z, z->tabsize ? z->tabsize * 2 : 64) != 0) return NULL;
    size_t len = cdns_name_len(lname, CDNS_NAME_MAX);
    n = cdns_view_alloc(v, sizeof(*n));
    uint8_t *name = cdns_view_alloc(v, len);
    if (!n || !name) return NULL;
    memcpy(name, lname, len);
    n->name = name;
    size_t b = hash_name(name) & (z->tabsize - 1);
    n->hnext = z->tab[b];
    z->tab[b] = n;
    z->nnodes++;
    /* the parent exists too (an empty non-terminal if nothing else), up to the apex */
    if (!cdns_name_eq(lname, z->apex) && !zone_get(v, z, lname + 1 + lname[0])) return NULL;
    return n;
}

struct cdns_zone *cdns_view_add_zone(struct cdns_view *v, const char *apex, char *err, size_t errlen)
{
    uint8_t name[CDNS_NAME_MAX], lname[CDNS_NAME_MAX];
    if (!cdns_name_from_text(name, apex, NULL)) { fail(err, errlen, "bad zone name '%s'", apex); return NULL; }
    cdns_name_lower(lname, name);
    for (size_t i = 0; i < v->nzones; i++)
        if (cdns_name_eq(v->zones[i].apex, lname)) { fail(err, errlen, "zone '%s' listed twice", apex); return NULL; }
    struct cdns_zone *zs = realloc(v->zones, (v->nzones + 1) * sizeof(*zs));
    if (!zs) { fail(err, errlen, "out of memory"); return NULL; }
    v->zones = zs;
    struct cdns_zone *z = &zs[v->nzones++];
    memset(z, 0, sizeof(*z));
    size_t len = cdns_name_len(lname, CDNS_NAME_MAX);
    uint8_t *a = cdns_view_alloc(v, len);
    if (!a) { fail(err, errlen, "out of memory"); return NULL; }
    memcpy(a, lname, len);
    z->apex = a;
    z->apex_node = zone_get(v, z, a);
    return z;
}

/* Splits a record line into tokens; quoted strings keep their spaces (quotes dropped, \" and \\
 * unescaped). tok[i] point into buf. Returns the count, or -1. */
static int tokenize(const char *line, char *buf, size_t buflen, char **tok, int *quoted, int max)
{
    int n = 0;
    size_t o = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        if (n == max) return -1;
        tok[n] = buf + o;
        quoted[n] = *p == '"';
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) p++;
                if (o + 2 >= buflen) return -1;
                buf[o++] = *p++;
            }
            if (*p != '"') return -1;
            p++;
        } else {
            while (*p && *p != ' ' && *p != '\t') {
                if (o + 2 >= buflen) return -1;
                buf[o++] = *p++;
            }
        }
        buf[o++] = 0;
        n++;
    }
    return n;
}

static int parse_u32(const char *s, uint32_t *out)
{
    if (!*s || !isdigit((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno || x > UINT32_MAX) return -1;
    *out = (uint32_t)x;
    return 0;
}

static const struct { const char *name; uint16_t type; } types[] = {
    {"A", CDNS_T_A}, {"NS", CDNS_T_NS}, {"CNAME", CDNS_T_CNAME}, {"SOA", CDNS_T_SOA},
    {"PTR", CDNS_T_PTR}, {"MX", CDNS_T_MX}, {"TXT", CDNS_T_TXT}, {"AAAA", CDNS_T_AAAA},
};

static int add_rdata(struct cdns_view *v, struct cdns_node *n, uint16_t type, uint32_t ttl,
                     const uint8_t *rd, size_t len)
{
    struct cdns_rrset *r, **pp = &n->rrsets;
    for (r = n->rrsets; r; r = r->next) {
        if (r->type == type) break;
        pp = &r->next;
    }
    if (!r) {
        if (!(r = cdns_view_alloc(v, sizeof(*r)))) return -1;
        r->type = type;
        r->ttl = ttl;
        *pp = r;
    }
    if (ttl < r->ttl) r->ttl = ttl;  /* one TTL per RRset (RFC 2181): the smallest */
    for (unsigned i = 0; i < r->n; i++)
        if (r->rd[i].len == len && memcmp(r->rd[i].data, rd, len) == 0) return 0;  /* duplicate */
    if (r->n == 0xFFFF) return -1;
    if (r->n == r->cap) {
        unsigned cap = r->cap ? r->cap * 2u : 4u;
        if (cap > 0xFFFF) cap = 0xFFFF;
        struct cdns_rdata *nrd = cdns_view_alloc(v, cap * sizeof(*nrd));
        if (!nrd) return -1;
        if (r->n) memcpy(nrd, r->rd, r->n * sizeof(*nrd));
        r->rd = nrd;
        r->cap = (uint16_t)cap;
    }
    uint8_t *copy = cdns_view_alloc(v, len ? len : 1);
    if (!copy) return -1;
    memcpy(copy, rd, len);
    r->rd[r->n].data = copy;
    r->rd[r->n].len = (uint16_t)len;
    r->n++;
    return 0;
}

int cdns_zone_add_text(struct cdns_view *v, struct cdns_zone *z, const char *line, uint32_t default_ttl,
                       char *err, size_t errlen)
{
    char buf[4096];
    char *tok[64];
    int quoted[64];
    int nt = tokenize(line, buf, sizeof(buf), tok, quoted, 64);
    if (nt < 3) return fail(err, errlen, "expected \"name [ttl] [IN] TYPE data\"");
    int i = 0;
    uint8_t name[CDNS_NAME_MAX], lname[CDNS_NAME_MAX];
    if (!cdns_name_from_text(name, tok[i], z->apex)) return fail(err, errlen, "bad owner name '%s'", tok[i]);
    cdns_name_lower(lname, name);
    if (!cdns_name_is_sub(lname, z->apex)) return fail(err, errlen, "'%s' is outside the zone", tok[i]);
    i++;
    uint32_t ttl = default_ttl;
    if (i < nt && isdigit((unsigned char)tok[i][0])) {
        if (parse_u32(tok[i], &ttl) != 0 || ttl > 0x7FFFFFFF) return fail(err, errlen, "bad TTL '%s'", tok[i]);
        i++;
    }
    if (i < nt && strcasecmp(tok[i], "IN") == 0) i++;
    if (i >= nt) return fail(err, errlen, "missing record type");
    uint16_t type = 0;
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
        if (strcasecmp(tok[i], types[k].name) == 0) type = types[k].type;
    if (!type) return fail(err, errlen, "unsupported record type '%s' (A, AAAA, NS, CNAME, PTR, MX, TXT, SOA)", tok[i]);
    i++;
    int nargs = nt - i;
    char **a = tok + i;
    uint8_t rd[4096];
    cdns_wire_t w;
    cdns_wire_init(&w, rd, sizeof(rd));
    uint8_t tmp[CDNS_NAME_MAX];
    switch (type) {
    case CDNS_T_A:
        if (nargs != 1 || inet_pton(AF_INET, a[0], rd) != 1) return fail(err, errlen, "bad IPv4 address");
        w.pos = 4;
        break;
    case CDNS_T_AAAA:
        if (nargs != 1 || inet_pton(AF_INET6, a[0], rd) != 1) return fail(err, errlen, "bad IPv6 address");
        w.pos = 16;
        break;
    case CDNS_T_NS: case CDNS_T_CNAME: case CDNS_T_PTR:
        if (nargs != 1 || !cdns_name_from_text(tmp, a[0], z->apex)) return fail(err, errlen, "bad target name");
        cdns_name_lower(tmp, tmp);
        cdns_name_write(&w, NULL, tmp);
        break;
    case CDNS_T_MX: {
        uint32_t pref;
        if (nargs != 2 || parse_u32(a[0], &pref) != 0 || pref > 0xFFFF ||
            !cdns_name_from_text(tmp, a[1], z->apex))
            return fail(err, errlen, "expected \"MX preference name\"");
        cdns_name_lower(tmp, tmp);
        cdns_wire_put_u16(&w, (uint16_t)pref);
        cdns_name_write(&w, NULL, tmp);
        break;
    }
    case CDNS_T_TXT:
        if (nargs < 1) return fail(err, errlen, "TXT needs at least one string");
        for (int k = 0; k < nargs; k++) {
            size_t l = strlen(a[k]);
            if (l > 255) return fail(err, errlen, "TXT string longer than 255 bytes");
            cdns_wire_put_u8(&w, (uint8_t)l);
            cdns_wire_put(&w, a[k], l);
        }
        break;
    case CDNS_T_SOA: {
        uint32_t num[5];
        uint8_t rname[CDNS_NAME_MAX];
        if (nargs != 7 || !cdns_name_from_text(tmp, a[0], z->apex) || !cdns_name_from_text(rname, a[1], z->apex))
            return fail(err, errlen, "expected \"SOA mname rname serial refresh retry expire minimum\"");
        for (int k = 0; k < 5; k++)
            if (parse_u32(a[2 + k], &num[k]) != 0) return fail(err, errlen, "bad SOA number '%s'", a[2 + k]);
        if (!cdns_name_eq(lname, z->apex)) return fail(err, errlen, "SOA only at the zone apex");
        cdns_name_lower(tmp, tmp);
        cdns_name_lower(rname, rname);
        cdns_name_write(&w, NULL, tmp);
        cdns_name_write(&w, NULL, rname);
        for (int k = 0; k < 5; k++) cdns_wire_put_u32(&w, num[k]);
        break;
    }
    }
    if (w.err) return fail(err, errlen, "record data too long");
    struct cdns_node *n = zone_get(v, z, lname);
    if (!n) return fail(err, errlen, "out of memory");
    if (type == CDNS_T_SOA && cdns_node_rrset(n, CDNS_T_SOA)) return fail(err, errlen, "a second SOA");
    if (add_rdata(v, n, type, ttl, rd, w.pos) != 0) return fail(err, errlen, "out of memory");
    return 0;
}

int cdns_zone_add_cdn(struct cdns_view *v, struct cdns_zone *z, const char *name,
                      const struct cdns_cdn *cdn, char *err, size_t errlen)
{
    uint8_t n[CDNS_NAME_MAX], ln[CDNS_NAME_MAX];
    if (!cdns_name_from_text(n, name, z->apex)) return fail(err, errlen, "bad name '%s'", name);
    cdns_name_lower(ln, n);
    if (!cdns_name_is_sub(ln, z->apex)) return fail(err, errlen, "'%s' is outside the zone", name);
    struct cdns_node *node = zone_get(v, z, ln);
    if (!node) return fail(err, errlen, "out of memory");
    if (node->cdn) return fail(err, errlen, "CDN name '%s' listed twice", name);
    if (!(node->cdn = cdns_view_alloc(v, sizeof(*cdn)))) return fail(err, errlen, "out of memory");
    *node->cdn = *cdn;
    if (node->cdn->count == 0) node->cdn->count = 1;
    if (node->cdn->count > CDNS_MAX_PICK) node->cdn->count = CDNS_MAX_PICK;
    return 0;
}

/* --- topology --- */
int cdns_view_region_index(const struct cdns_view *v, const char *name)
{
    for (size_t i = 0; i < v->nregions; i++)
        if (strcmp(v->regions[i].name, name) == 0) return (int)i;
    return -1;
}

int cdns_view_add_region(struct cdns_view *v, const char *name, char *err, size_t errlen)
{
    if (cdns_view_region_index(v, name) >= 0) return fail(err, errlen, "region '%s' listed twice", name);
    if (v->nregions >= 1024) return fail(err, errlen, "too many regions");
    struct cdns_region *r = realloc(v->regions, (v->nregions + 1) * sizeof(*r));
    if (!r) return fail(err, errlen, "out of memory");
    v->regions = r;
    size_t n = v->nregions + 1;
    uint32_t *d = malloc(n * n * sizeof(*d));
    if (!d) return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            d[i * n + j] = i == j ? 0 : (i < n - 1 && j < n - 1) ? v->dist[i * (n - 1) + j] : UINT32_MAX;
    free(v->dist);
    v->dist = d;
    r[v->nregions].name = cdns_view_strdup(v, name);
    return (int)v->nregions++;
}

int cdns_view_set_distance(struct cdns_view *v, int a, int b, uint32_t d)
{
    if (a < 0 || b < 0 || (size_t)a >= v->nregions || (size_t)b >= v->nregions) return -1;
    if (a == b) return 0;
    v->dist[(size_t)a * v->nregions + (size_t)b] = d;
    v->dist[(size_t)b * v->nregions + (size_t)a] = d;
    return 0;
}

static int32_t trie_node(struct cdns_trie *t)
{
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct cdns_trie_node *n = realloc(t->n, cap * sizeof(*n));
        if (!n) return -1;
        t->n = n;
        t->cap = cap;
    }
    t->n[t->len] = (struct cdns_trie_node){{-1, -1}, -1};
    return (int32_t)t->len++;
}

static inline int bit_at(const uint8_t *a, unsigned i) { return (a[i / 8] >> (7 - i % 8)) & 1; }

int cdns_view_add_subnet(struct cdns_view *v, int region, const char *cidr, char *err, size_t errlen)
{
    char host[64];
    const char *slash = strchr(cidr, '/');
    size_t hl = slash ? (size_t)(slash - cidr) : strlen(cidr);
    if (hl >= sizeof(host)) return fail(err, errlen, "bad subnet '%s'", cidr);
    memcpy(host, cidr, hl);
    host[hl] = 0;
    uint8_t addr[16];
    unsigned max;
    struct cdns_trie *t;
    if (inet_pton(AF_INET, host, addr) == 1) { max = 32; t = &v->geo4; }
    else if (inet_pton(AF_INET6, host, addr) == 1) { max = 128; t = &v->geo6; }
    else return fail(err, errlen, "bad subnet '%s' (expected ADDRESS/PREFIX)", cidr);
    uint32_t bits = max;
    if (slash && (parse_u32(slash + 1, &bits) != 0 || bits > max))
        return fail(err, errlen, "bad prefix length in '%s' (0 to %u)", cidr, max);
    for (unsigned i = bits; i < max; i++)
        if (bit_at(addr, i)) return fail(err, errlen, "'%s' has host bits set beyond /%u", cidr, bits);
    if (t->len == 0 && trie_node(t) < 0) return fail(err, errlen, "out of memory");
    int32_t cur = 0;
    for (unsigned i = 0; i < bits; i++) {
        int b = bit_at(addr, i);
        if (t->n[cur].child[b] < 0) {
            int32_t nn = trie_node(t);
            if (nn < 0) return fail(err, errlen, "out of memory");
            t->n[cur].child[b] = nn;
        }
        cur = t->n[cur].child[b];
    }
    if (t->n[cur].region >= 0 && t->n[cur].region != region)
        return fail(err, errlen, "subnet '%s' is already in region '%s'", cidr, v->regions[t->n[cur].region].name);
    t->n[cur].region = region;
    return 0;
}

int cdns_geo_lookup(const struct cdns_view *v, int family, const uint8_t *addr, unsigned bits,
                    unsigned *scope)
{
    const struct cdns_trie *t = family == 1 ? &v->geo4 : &v->geo6;
    unsigned max = family == 1 ? 32 : 128;
    if (bits > max) bits = max;
    *scope = 0;
    if (t->len == 0) return -1;
    int best = -1;
    int32_t cur = 0;
    for (unsigned d = 0;; d++) {
        const struct cdns_trie_node *n = &t->n[cur];
        if (n->region >= 0) best = n->region;
        if (d == bits) { *scope = d; break; }
        int32_t c = n->child[bit_at(addr, d)];
        if (c < 0) {
            /* bit d decided it if another branch exists here; otherwise nothing below mattered */
            *scope = (n->child[0] >= 0 || n->child[1] >= 0) ? d + 1 : d;
            break;
        }
        cur = c;
    }
    return best;
}

int cdns_view_add_edge(struct cdns_view *v, const char *name, int region, const char *const *addrs,
                       size_t naddrs, const char *health_url, char *err, size_t errlen)
{
    if (region < 0 || (size_t)region >= v->nregions) return fail(err, errlen, "edge '%s': unknown region", name);
    for (size_t i = 0; i < v->nedges; i++)
        if (strcmp(v->edges[i].name, name) == 0) return fail(err, errlen, "edge '%s' listed twice", name);
    if (v->nedges >= 256) return fail(err, errlen, "too many edges (256)");
    struct cdns_edge e = {.name = cdns_view_strdup(v, name), .region = region,
                          .health_url = health_url ? cdns_view_strdup(v, health_url) : NULL};
    for (size_t i = 0; i < naddrs; i++) {
        if (e.n4 < CDNS_MAX_ADDRS && inet_pton(AF_INET, addrs[i], e.v4[e.n4]) == 1) e.n4++;
        else if (e.n6 < CDNS_MAX_ADDRS && inet_pton(AF_INET6, addrs[i], e.v6[e.n6]) == 1) e.n6++;
        else return fail(err, errlen, "edge '%s': bad address '%s' (or more than %d per family)", name, addrs[i], CDNS_MAX_ADDRS);
    }
    if (e.n4 + e.n6 == 0) return fail(err, errlen, "edge '%s' has no address", name);
    struct cdns_edge *ne = realloc(v->edges, (v->nedges + 1) * sizeof(*ne));
    if (!ne) return fail(err, errlen, "out of memory");
    v->edges = ne;
    ne[v->nedges] = e;
    return (int)v->nedges++;
}

int cdns_view_add_fallback(struct cdns_view *v, const char *addr, char *err, size_t errlen)
{
    if (v->fb_n4 < CDNS_MAX_ADDRS && inet_pton(AF_INET, addr, v->fb4[v->fb_n4]) == 1) v->fb_n4++;
    else if (v->fb_n6 < CDNS_MAX_ADDRS && inet_pton(AF_INET6, addr, v->fb6[v->fb_n6]) == 1) v->fb_n6++;
    else return fail(err, errlen, "bad fallback address '%s'", addr);
    return 0;
}

static const struct cdns_view *sort_view;
static int sort_region;
static int cmp_edge(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    size_t nr = sort_view->nregions;
    uint32_t dx = sort_view->dist[(size_t)sort_region * nr + (size_t)sort_view->edges[x].region];
    uint32_t dy = sort_view->dist[(size_t)sort_region * nr + (size_t)sort_view->edges[y].region];
    if (dx != dy) return dx < dy ? -1 : 1;
    return x - y;  /* config order among equals */
}

int cdns_view_finish(struct cdns_view *v, char *err, size_t errlen)
{
    char nb[1024];
    for (size_t i = 0; i < v->nzones; i++) {
        struct cdns_zone *z = &v->zones[i];
        const struct cdns_rrset *soa = cdns_node_rrset(z->apex_node, CDNS_T_SOA);
        if (!soa) return fail(err, errlen, "zone %s has no SOA", cdns_name_to_text(z->apex, nb, sizeof(nb)));
        z->soa = soa;
        const uint8_t *rd = soa->rd[0].data;
        size_t l1 = cdns_name_len(rd, soa->rd[0].len), l2 = cdns_name_len(rd + l1, soa->rd[0].len - l1);
        const uint8_t *m = rd + l1 + l2 + 16;
        uint32_t minimum = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
        z->neg_ttl = minimum < soa->ttl ? minimum : soa->ttl;
        for (size_t b = 0; b < z->tabsize; b++) {
            for (struct cdns_node *n = z->tab[b]; n; n = n->hnext) {
                int others = 0, cname = 0, addr = 0;
                for (struct cdns_rrset *r = n->rrsets; r; r = r->next) {
                    if (r->type == CDNS_T_CNAME) cname = 1; else others++;
                    if (r->type == CDNS_T_A || r->type == CDNS_T_AAAA) addr = 1;
                }
                if (cname && (others || n->cdn || n == z->apex_node))
                    return fail(err, errlen, "%s: a CNAME cannot have other data", cdns_name_to_text(n->name, nb, sizeof(nb)));
                if (n->cdn && addr)
                    return fail(err, errlen, "%s: a CDN name cannot also have static A/AAAA records", cdns_name_to_text(n->name, nb, sizeof(nb)));
                if (n->cdn && v->nedges == 0)
                    return fail(err, errlen, "%s: a CDN name needs at least one edge", cdns_name_to_text(n->name, nb, sizeof(nb)));
            }
        }
    }
    if (v->nregions && v->default_region < 0) v->default_region = 0;
    v->order = calloc(v->nregions * (v->nedges ? v->nedges : 1), sizeof(int));
    v->health = calloc(v->nedges ? v->nedges : 1, sizeof(*v->health));
    if (!v->order || !v->health) return fail(err, errlen, "out of memory");
    for (size_t r = 0; r < v->nregions; r++) {
        int *row = v->order + r * v->nedges;
        for (size_t e = 0; e < v->nedges; e++) row[e] = (int)e;
        sort_view = v;
        sort_region = (int)r;
        qsort(row, v->nedges, sizeof(int), cmp_edge);
    }
    struct cdns_health h0 = {.rf = {.up = 1, .seen = 1}, .doubt = 1};
    for (size_t e = 0; e < v->nedges; e++) {
        struct cdns_health h = h0;
        if (!v->edges[e].health_url) h.doubt = 0;  /* not probed: always up, never in doubt */
        atomic_store_explicit(&v->health[e], cdns_health_pack(&h), memory_order_relaxed);
    }
    return 0;
}

/* --- health --- */
uint64_t cdns_health_pack(const struct cdns_health *h)
{
    uint64_t ok = h->rf.ok_run > 255 ? 255 : h->rf.ok_run, f = h->rf.fail_run > 255 ? 255 : h->rf.fail_run;
    return (uint64_t)(h->rf.up != 0) | (uint64_t)(h->doubt != 0) << 1 | ok << 2 | f << 10 |
           (h->changed_ms & ((1ULL << 46) - 1)) << 18;
}

void cdns_health_unpack(uint64_t w, struct cdns_health *h)
{
    h->rf.up = (uint8_t)(w & 1);
    /* every edge starts up (cdns_view_finish) and so counts as checked: the rise/fall rule's "a
     * target never checked comes up at its first pass" does not apply to an edge that went down */
    h->rf.seen = 1;
    h->doubt = (int)(w >> 1 & 1);
    h->rf.ok_run = (uint16_t)(w >> 2 & 0xFF);
    h->rf.fail_run = (uint16_t)(w >> 10 & 0xFF);
    h->changed_ms = w >> 18;
}

int cdns_health_step(struct cdns_health *h, int ok, uint64_t now_ms, unsigned rise, unsigned fall)
{
    int was = h->rf.up;
    h->rf.seen = 1;  /* as in unpack */
    cdn_risefall_observe(&h->rf, ok, rise, fall);
    if (h->rf.ok_run > 255) h->rf.ok_run = 255;  /* what the packed word holds */
    if (h->rf.fail_run > 255) h->rf.fail_run = 255;
    int changed = h->rf.up != was;
    if (changed) h->changed_ms = now_ms ? now_ms : 1;
    h->doubt = h->rf.up ? h->rf.fail_run > 0 : h->rf.ok_run > 0;
    return changed;
}

/* --- selection --- */
static int in_doubt(const struct cdns_health *h, uint64_t now, uint64_t doubt_ms)
{
    return h->doubt || (h->changed_ms && now >= h->changed_ms && now - h->changed_ms < doubt_ms);
}

void cdns_select(const struct cdns_view *v, const struct cdns_cdn *cdn, int region, int family,
                 const struct cdns_health *h, uint64_t now_ms, struct cdns_pick *out)
{
    out->n = 0;
    out->fallback = 0;
    out->ttl = cdn->ttl;
    if (v->nedges == 0) return;
    if (region < 0 || (size_t)region >= v->nregions) region = v->default_region < 0 ? 0 : v->default_region;
    const int *row = v->order + (size_t)region * v->nedges;
    unsigned want = cdn->count ? cdn->count : 1;
    if (want > CDNS_MAX_PICK) want = CDNS_MAX_PICK;
    int doubt = 0;
    for (size_t i = 0; i < v->nedges && (unsigned)out->n < want; i++) {
        int e = row[i];
        const struct cdns_edge *ed = &v->edges[e];
        if ((family == 1 ? ed->n4 : ed->n6) == 0) continue;
        if (in_doubt(&h[e], now_ms, v->set.doubt_ms)) doubt = 1;
        if (!h[e].rf.up) continue;
        out->edge[out->n++] = e;
    }
    if (out->n == 0) {
        out->fallback = 1;
        doubt = 1;
        for (size_t i = 0; i < v->nedges && out->n < CDNS_MAX_PICK; i++) {
            int e = row[i];
            if ((family == 1 ? v->edges[e].n4 : v->edges[e].n6) == 0) continue;
            out->edge[out->n++] = e;
        }
    }
    if (doubt) out->ttl = cdn->doubt_ttl < cdn->ttl ? cdn->doubt_ttl : cdn->ttl;
}
