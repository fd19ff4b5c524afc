/* lab/lib/topo.h - the lab's topology file and the plan computed from it.
 *
 * Owns: the decoded topology (struct lab_topo, strings in the cdn_conf_t arena) and the plan
 * (struct lab_plan: every namespace, link, address, route, relay and daemon command line), which
 * is a pure function of the topology, the mode and a naming prefix, so it is unit-tested without
 * touching the system. cdn-lab (lab/cdnlab/, its commands in up.c, down.c, fault.c ...) only executes a plan.
 *
 * Addresses, namespaces mode (all in 198.18.0.0/15; anycast 198.19.255.0/24 is left for BIRD):
 *   backbone pair p (regions i<j)  198.18.(p/64).(4*(p%64))/30   .1 router i, .2 router j
 *   region r client LAN            198.18.(10+2r).0/24          .1 router, .10.. clients
 *   region r hosts (p2p /30 each)  198.18.(11+2r).(4k)/30        .4k+1 router, .4k+2 host
 *   management network             198.19.0.0/24                .1 the ctl namespace's bridge,
 *                                  .10.. the admin side of each edge, dns and lb (a veth `mg0`
 *                                  to the bridge; no router has a route to it, so clients cannot
 *                                  reach an admin listener)
 * so region r's whole space is the /23 198.18.(10+2r).0/23, one static route per remote region
 * (BIRD can announce the same prefixes later). Loopback mode: region r is 127.B.(r+1).0/24
 * (B = a base octet per lab, so two labs do not collide): clients .10.., hosts .100.. */
#ifndef LAB_TOPO_H
#define LAB_TOPO_H

#include <stddef.h>
#include <stdint.h>

#include "cdn/config.h"
#include "lab/lib/scale.h"

#define LAB_MAX_REGIONS 24
#define LAB_MAX_HOSTS 60  /* per region */

struct lab_delay {
    const char *to;
    uint64_t ms;
    int line;
};

struct lab_region {
    const char *name;           /* map key */
    struct cdn_conf_list delay; /* of struct lab_delay */
    unsigned clients;           /* client addresses in this region (default 4) */
};

struct lab_edge {
    const char *name;
    const char *region;
    uint64_t ram, disk;         /* bytes */
    int parent;                 /* a parent (shield, second-tier) edge: fetched from by the others,
                                 * never handed to clients by cdn-dns, holds no anycast address */
    struct cdn_conf_list parents; /* of const char *: this child's parents by name (default: the
                                   * parent edges of the nearest region that has any) */
    unsigned workers;
};
#define LAB_MAX_PARENTS 8 /* per child edge (cdn-edge takes 16) */

struct lab_dns_conf {
    const char *region;
    uint64_t ttl_ms;
    unsigned answers;
};

struct lab_origin_conf {
    const char *region;
    unsigned apps;
    unsigned products;
    unsigned seed;
    const char *algo;           /* rr | leastconn | hash-client | hash-url */
    uint64_t delay_ms;          /* app service delay */
    unsigned render_threads;    /* each app's image render threads (0: shop-app's default, 2): with
                                 * 1, an app renders on at most one core, like a 1-vCPU instance */
};

/* PostgreSQL for the shop-apps (docs/LAB.md, "The database"): a primary and streaming replicas,
 * each in its own namespace in the region named. No "db:": the apps share the SQLite file. */
#define LAB_MAX_REPLICAS 4
struct lab_db_conf {
    const char *primary;        /* region name; NULL: no database servers */
    struct cdn_conf_list replicas; /* region names */
    uint64_t ryw_ms;            /* the apps' read_your_writes window */
};

/* Anycast: service addresses held by every edge and announced over BGP by BIRD. */
enum lab_profile { LAB_PROF_REALISTIC, LAB_PROF_TUNED, LAB_PROF_BFD };
enum lab_routing { LAB_ROUTE_DNS, LAB_ROUTE_ANYCAST, LAB_ROUTE_BOTH };
#define LAB_MAX_ANYCAST 3 /* cdn-edge takes 8 listeners: 2 own + 2 per address */
struct lab_health_conf {
    uint64_t interval_ms, timeout_ms;
    unsigned rise, fall;
};
struct lab_anycast_conf {
    struct cdn_conf_list addresses; /* of const char *, in 198.19.255.0/24 */
    const char *profile;            /* realistic | tuned | bfd */
    struct lab_health_conf health;
    struct cdn_conf_list routing;   /* of struct lab_route_mode: per hostname */
};
struct lab_route_mode {
    const char *host;
    const char *mode;
    int line;
};

struct lab_topo {
    const char *name;
    const char *zone;           /* shop.test */
    struct cdn_conf_list hostnames; /* CDN names in the zone, e.g. img, www */
    struct cdn_conf_list regions;   /* of struct lab_region */
    struct cdn_conf_list edges;     /* of struct lab_edge */
    struct lab_dns_conf dns;
    struct lab_origin_conf origin;
    struct lab_anycast_conf anycast; /* addresses.n == 0: no anycast */
    struct lab_db_conf db;
    struct lab_scale_conf scale;     /* scale: the app pool's auto-scaler (lab/lib/scale.h); .on 0 without */
    /* resolved */
    enum lab_profile profile;
    enum lab_routing routing[16];    /* per hostname */
    int edge_region[64];
    int edge_parents[64][LAB_MAX_PARENTS]; /* edge indexes of each child's parents, in order */
    unsigned edge_nparents[64];            /* 0 for parent edges and when the lab has no parent */
    unsigned nparents;                     /* parent edges in the lab */
    int dns_region, origin_region;
    int db_region[1 + LAB_MAX_REPLICAS];   /* [0] the primary's, then each replica's */
    unsigned db_servers;                   /* 0 without "db:" */
    unsigned app_slots;                    /* app nodes in the plan: origin.apps, or scale.max when larger
                                            * (the spares get a namespace and address; `up` starts only
                                            * the first origin.apps, the scaler the others) */
    uint64_t delay_ms[LAB_MAX_REGIONS][LAB_MAX_REGIONS]; /* one-way, symmetric */
};

/* Loads and validates; NULL with err ("file:line:col: what") on failure. The topology points into
 * *conf, which the caller frees with cdn_conf_free() after the topology is no longer used. */
struct lab_topo *lab_topo_load(const char *path, cdn_conf_t **conf, cdn_conf_err_t *err);
struct lab_topo *lab_topo_load_string(const char *name, const char *text, size_t len, cdn_conf_t **conf,
                                      cdn_conf_err_t *err);
int lab_topo_region(const struct lab_topo *t, const char *name);
/* The anycast address a hostname is answered with (hostname i -> address i mod n). */
const char *lab_topo_anycast_addr(const struct lab_topo *t, size_t host);
int lab_profile_parse(const char *s, enum lab_profile *out);
const char *lab_profile_name(enum lab_profile p);
static inline const struct lab_region *lab_topo_reg(const struct lab_topo *t, size_t i)
{
    return &((const struct lab_region *)t->regions.items)[i];
}
static inline const struct lab_edge *lab_topo_edge(const struct lab_topo *t, size_t i)
{
    return &((const struct lab_edge *)t->edges.items)[i];
}

/* --- the plan --- */
enum lab_mode { LAB_NETNS, LAB_LOOPBACK };
enum lab_kind { LAB_ROUTER, LAB_WAN, LAB_CLIENT, LAB_EDGE, LAB_DNS, LAB_LB, LAB_APP, LAB_DB,
                LAB_CTL /* the control namespace: the management bridge (netns mode) */ };

/* Service ports, the same in both modes (unprivileged, so loopback mode runs without root). */
enum {
    LAB_PORT_HTTP = 8080, LAB_PORT_HTTPS = 8443, LAB_PORT_EDGE_ADMIN = 9080,
    LAB_PORT_DNS = 5353, LAB_PORT_DNS_ADMIN = 5380,
    LAB_PORT_LB = 8000, LAB_PORT_LB_ADMIN = 8001, LAB_PORT_APP = 8081,
    LAB_PORT_REDIS = 6390, /* the purge bus, beside cdn-dns (never the system's 6379) */
    LAB_PORT_DB = 5440,    /* PostgreSQL servers (never the system's 5432) */
};

struct lab_node {
    enum lab_kind kind;
    char name[32];              /* "r-eu", "c-eu", "e-eu1", "dns", "lb", "app1", "wan" */
    char ns[64];                /* namespace ("" in loopback mode) */
    int region;                 /* -1 for wan */
    int index;                  /* edge/app index */
    char addr[16];              /* service / primary address */
    char gw[16];                /* default route (netns) */
    char mgmt[16];              /* where its admin listener binds: its address on the management
                                 * network (netns mode: edges, dns, lb), else addr */
};

struct lab_link {
    int a, b;                   /* node indexes */
    char if_a[16], if_b[16];
    char addr_a[20], addr_b[20];/* with /len, "" for none (relay side) */
};

struct lab_relay {
    int ra, rb;                 /* regions */
    char if_a[16], if_b[16];    /* both in the wan namespace */
    uint64_t delay_ms;
};

struct lab_route {
    int node;
    char dst[20], via[16];
};

struct lab_plan {
    enum lab_mode mode;
    char prefix[40];
    int base;                   /* loopback second octet */
    size_t nnodes, nlinks, nrelays, nroutes;
    struct lab_node nodes[8 + LAB_MAX_REGIONS * 4 + 128];
    struct lab_link links[LAB_MAX_REGIONS * LAB_MAX_REGIONS + 256];
    struct lab_relay relays[LAB_MAX_REGIONS * LAB_MAX_REGIONS / 2];
    struct lab_route routes[LAB_MAX_REGIONS * LAB_MAX_REGIONS + 64];
    int anycast;                /* BGP routing with BIRD (namespaces mode and an anycast section) */
    char client_net[LAB_MAX_REGIONS][20]; /* per region: the client subnet ("198.18.10.0/24") */
    char region_net[LAB_MAX_REGIONS][20]; /* per region: everything ("198.18.10.0/23") */
    int ctl;                    /* the control namespace's node (netns mode), else -1; the links
                                 * whose b side is it are the management bridge's ports */
};
#define LAB_MGMT_NET "198.19.0.0/24"
#define LAB_MGMT_BRIDGE "198.19.0.1"

/* Computes the plan; -1 with msg when the topology does not fit (too many hosts in a region). */
int lab_plan_make(const struct lab_topo *t, enum lab_mode mode, const char *prefix, int base,
                  struct lab_plan *p, char *msg, size_t msglen);
int lab_plan_find(const struct lab_plan *p, enum lab_kind kind, int index_or_region);
int lab_plan_find_name(const struct lab_plan *p, const char *name);
/* The i-th client address of region r ("198.18.10.10"). */
void lab_plan_client_addr(const struct lab_plan *p, int r, unsigned i, char *out, size_t len);

/* A growable string with a cap (config files are small). */
struct lab_buf {
    char *s;
    size_t len, cap;
    int oom;
};
void lab_buf_printf(struct lab_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lab_buf_free(struct lab_buf *b);

/* cdn-dns's YAML for this lab (regions, coverage, distances, edges with health URLs, the zone). */
void lab_gen_dns_yaml(const struct lab_topo *t, const struct lab_plan *p, const char *statedir, struct lab_buf *b);
/* Command lines (argv, NULL-terminated, strings in the buffer `store`) of each daemon. */
struct lab_argv {
    char *argv[96];
    char store[4096];
    size_t used;
    int argc;
};
void lab_argv_add(struct lab_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lab_cmd_edge(const struct lab_topo *t, const struct lab_plan *p, int node, const char *bindir,
                  const char *statedir, struct lab_argv *a);
void lab_cmd_app(const struct lab_topo *t, const struct lab_plan *p, int node, const char *bindir,
                 const char *statedir, struct lab_argv *a);
void lab_cmd_lb(const struct lab_topo *t, const struct lab_plan *p, int node, const char *bindir,
                const char *statedir, struct lab_argv *a);
void lab_cmd_dns(const struct lab_plan *p, int node, const char *bindir, const char *statedir, struct lab_argv *a);

#endif
