/* dns/view.h - everything cdn-dns answers from: zones, the topology (regions, coverage subnets,
 * distances, edges) and the server settings, built once from the config and then read-only.
 *
 * Ownership: a view owns all of its memory (one arena, freed by cdns_view_free). Worker threads
 * read a view without locks; a reload builds a new view and the server swaps the pointer (see
 * server.c for when the old one is freed). The only mutable part is the health word per edge,
 * written by the main thread and read with relaxed atomics.
 *
 * Pure parts, unit-tested with tables: cdns_geo_lookup (subnet -> region, with the prefix length
 * the decision depended on), cdns_select (region + health + now -> edges and TTL) and
 * cdns_health_step (probe result -> up/down with rise/fall). */
#ifndef CDNS_VIEW_H
#define CDNS_VIEW_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "cdn/risefall.h"
#include "dns/wire.h"

#define CDNS_MAX_ADDRS 4   /* per edge and family */
#define CDNS_MAX_PICK 16   /* edges in one answer */

struct cdns_rdata { uint16_t len; const uint8_t *data; };
struct cdns_rrset {
    uint16_t type;
    uint32_t ttl;
    uint16_t n, cap;
    struct cdns_rdata *rd;
    struct cdns_rrset *next;
};
struct cdns_cdn {           /* a name whose A/AAAA answer is computed */
    uint32_t ttl;           /* normal TTL */
    uint32_t doubt_ttl;     /* while some edge's health is in doubt, or in fallback */
    unsigned count;         /* edges per answer */
};
struct cdns_node {
    const uint8_t *name;    /* lowercased wire name */
    struct cdns_rrset *rrsets;
    struct cdns_cdn *cdn;
    struct cdns_node *hnext;
};
struct cdns_zone {
    const uint8_t *apex;    /* lowercased wire name */
    struct cdns_node *apex_node;
    const struct cdns_rrset *soa;
    uint32_t neg_ttl;       /* min(SOA TTL, SOA minimum) */
    struct cdns_node **tab; /* hash table of nodes (power of two) */
    size_t tabsize, nnodes;
};

struct cdns_region { const char *name; };
struct cdns_edge {
    const char *name;
    int region;
    int n4, n6;
    uint8_t v4[CDNS_MAX_ADDRS][4];
    uint8_t v6[CDNS_MAX_ADDRS][16];
    const char *health_url;  /* NULL: not probed, always up */
};

struct cdns_trie_node { int32_t child[2]; int32_t region; };
struct cdns_trie { struct cdns_trie_node *n; size_t len, cap; };

struct cdns_settings {
    unsigned udp_max;        /* the largest UDP answer we send (and advertise), default 1232 */
    unsigned amp_factor;     /* unknown UDP clients get at most factor x query bytes; 0 = off */
    unsigned rrl_rate;       /* answers per second per subnet; 0 = RRL off */
    unsigned rrl_burst;
    unsigned rrl_slip;       /* every Nth limited answer is a TC=1 "slip"; 0 = never */
    unsigned rrl_v4_prefix, rrl_v6_prefix;
    uint64_t doubt_ms;       /* after a health change, TTLs stay low this long */
    uint64_t hc_interval_ms, hc_timeout_ms;
    unsigned hc_rise, hc_fall;
};

struct cdns_view {
    struct cdns_settings set;
    struct cdns_zone *zones; size_t nzones;
    struct cdns_region *regions; size_t nregions;
    uint32_t *dist;          /* nregions x nregions; UINT32_MAX = unreachable */
    int default_region;
    struct cdns_edge *edges; size_t nedges;
    int *order;              /* nregions x nedges: edge indices, nearest first */
    struct cdns_trie geo4, geo6;
    int fb_n4, fb_n6;        /* fallback addresses when every edge is down (0: all edges) */
    uint8_t fb4[CDNS_MAX_ADDRS][4];
    uint8_t fb6[CDNS_MAX_ADDRS][16];
    _Atomic uint64_t *health; /* per edge, cdns_health_pack() */
    void *user;              /* the server's per-view data (metric series), in the arena */
    uint64_t serial;         /* unique per view in this process (answer caches key on it) */
    struct arena *arena;
};

/* --- building (config loader and tests) --- */
struct cdns_view *cdns_view_new(void);
void cdns_view_free(struct cdns_view *v);
void *cdns_view_alloc(struct cdns_view *v, size_t n);      /* zeroed, owned by the view */
char *cdns_view_strdup(struct cdns_view *v, const char *s);
/* Each returns an index / pointer, or -1 / NULL with err filled. */
struct cdns_zone *cdns_view_add_zone(struct cdns_view *v, const char *apex, char *err, size_t errlen);
/* One record in presentation form relative to the zone: "name [ttl] [IN] TYPE rdata". Types: A,
 * AAAA, NS, CNAME, PTR, MX, TXT (quoted strings), SOA. */
int cdns_zone_add_text(struct cdns_view *v, struct cdns_zone *z, const char *line, uint32_t default_ttl,
                       char *err, size_t errlen);
int cdns_zone_add_cdn(struct cdns_view *v, struct cdns_zone *z, const char *name,
                      const struct cdns_cdn *cdn, char *err, size_t errlen);
int cdns_view_add_region(struct cdns_view *v, const char *name, char *err, size_t errlen);
int cdns_view_region_index(const struct cdns_view *v, const char *name);
/* "10.1.0.0/16" or "2001:db8::/32" (host bits must be zero). */
int cdns_view_add_subnet(struct cdns_view *v, int region, const char *cidr, char *err, size_t errlen);
/* Symmetric. Regions are at distance 0 from themselves, UINT32_MAX from unlisted ones. */
int cdns_view_set_distance(struct cdns_view *v, int a, int b, uint32_t d);
int cdns_view_add_edge(struct cdns_view *v, const char *name, int region, const char *const *addrs,
                       size_t naddrs, const char *health_url, char *err, size_t errlen);
int cdns_view_add_fallback(struct cdns_view *v, const char *addr, char *err, size_t errlen);
/* Validates (every zone has a SOA, CNAME alone at its name, ...), orders edges per region and
 * allocates the health words (every edge starts up and in doubt). */
int cdns_view_finish(struct cdns_view *v, char *err, size_t errlen);
void cdns_view_default_settings(struct cdns_settings *s);

/* --- lookups --- */
const struct cdns_zone *cdns_view_find_zone(const struct cdns_view *v, const uint8_t *lname);
const struct cdns_node *cdns_zone_find(const struct cdns_zone *z, const uint8_t *lname);
/* Every ancestor of a name with data exists as a node (maybe empty: an empty non-terminal), so
 * "no node" means NXDOMAIN and "a node without the type" means NODATA. */
const struct cdns_rrset *cdns_node_rrset(const struct cdns_node *n, uint16_t type);

/* Longest-prefix match of the first `bits` bits of addr (family 1 = IPv4, 2 = IPv6). Returns the
 * region or -1, and in *scope how many leading bits the result depended on. */
int cdns_geo_lookup(const struct cdns_view *v, int family, const uint8_t *addr, unsigned bits,
                    unsigned *scope);

/* --- health --- */
struct cdns_health {
    struct cdn_risefall rf; /* rf.up: counted as up; the runs (at most 255: they are packed in 8 bits) */
    int doubt;              /* a probe disagreed with the state, or no probe result yet */
    uint64_t changed_ms;    /* when rf.up last changed */
};
/* One 64-bit word per edge (view->health), so that workers read it without a lock: up, doubt,
 * 8-bit ok and fail runs, 46 bits of changed_ms. */
uint64_t cdns_health_pack(const struct cdns_health *h);
void cdns_health_unpack(uint64_t w, struct cdns_health *h);
/* One probe result: the rise/fall rule of cdn/risefall.h (up after `rise` successes in a row, down
 * after `fall` failures), then the doubt and changed_ms that TTLs depend on. Returns 1 if rf.up
 * changed. */
int cdns_health_step(struct cdns_health *h, int ok, uint64_t now_ms, unsigned rise, unsigned fall);

/* --- edge selection --- */
struct cdns_pick {
    int n;
    int edge[CDNS_MAX_PICK];  /* indices into v->edges, nearest healthy first */
    uint32_t ttl;
    int fallback;             /* every edge was down */
};
/* Pure: the edges for a client in `region` asking for `family` (1 = A, 2 = AAAA) at `now`, given
 * each edge's health (h[nedges]). Skips down edges and edges without an address of the family;
 * when none is left, falls back to every edge (nearest first). TTL is cdn->doubt_ttl when any edge
 * considered is in doubt or changed within doubt_ms, or when falling back. */
void cdns_select(const struct cdns_view *v, const struct cdns_cdn *cdn, int region, int family,
                 const struct cdns_health *h, uint64_t now_ms, struct cdns_pick *out);

#endif
