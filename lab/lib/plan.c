/* lab/lib/plan.c - from a topology to a plan: namespaces, links, addresses, routes, relays, and each
 * daemon's config file or command line. Pure (no system calls), see topo.h for the address map. */
#include "config.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/topo.h"

/* snprintf through a wrapper: names and addresses are bounded by the plan's limits, and gcc's
 * truncation warnings cannot see those bounds. */
static void __attribute__((format(printf, 3, 4))) sfmt(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static int add_node(struct lab_plan *p, enum lab_kind kind, const char *name, int region, int index)
{
    struct lab_node *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    sfmt(n->name, sizeof(n->name), "%s", name);
    if (p->mode == LAB_NETNS) sfmt(n->ns, sizeof(n->ns), "%s-%s", p->prefix, name);
    n->region = region;
    n->index = index;
    return (int)p->nnodes++;
}

static void add_link(struct lab_plan *p, int a, const char *if_a, const char *addr_a, int b, const char *if_b,
                     const char *addr_b)
{
    struct lab_link *l = &p->links[p->nlinks++];
    memset(l, 0, sizeof(*l));
    l->a = a;
    l->b = b;
    sfmt(l->if_a, sizeof(l->if_a), "%s", if_a);
    sfmt(l->if_b, sizeof(l->if_b), "%s", if_b);
    sfmt(l->addr_a, sizeof(l->addr_a), "%s", addr_a);
    sfmt(l->addr_b, sizeof(l->addr_b), "%s", addr_b);
}

void lab_plan_client_addr(const struct lab_plan *p, int r, unsigned i, char *out, size_t len)
{
    if (p->mode == LAB_NETNS) sfmt(out, len, "198.18.%d.%u", 10 + 2 * r, 10 + i);
    else sfmt(out, len, "127.%d.%d.%u", p->base, r + 1, 10 + i);
}

/* Backbone (netns): a full mesh of /30s between the region routers, a relay in the wan namespace
 * where the delay is not zero, and static routes between the regions unless BIRD carries them. */
static void plan_backbone(const struct lab_topo *t, struct lab_plan *p, const int *router)
{
    int nr = (int)t->regions.n;
    int wan = -1, pair = 0;
    for (int i = 0; i < nr; i++)
        for (int j = i + 1; j < nr; j++, pair++) {
            char a[20], b[20], ia[16], ib[16], ga[16], gb[16];
            sfmt(ga, sizeof(ga), "198.18.%d.%d", pair / 64, 4 * (pair % 64) + 1);
            sfmt(gb, sizeof(gb), "198.18.%d.%d", pair / 64, 4 * (pair % 64) + 2);
            sfmt(a, sizeof(a), "%s/30", ga);
            sfmt(b, sizeof(b), "%s/30", gb);
            sfmt(ia, sizeof(ia), "bb%d", j);
            sfmt(ib, sizeof(ib), "bb%d", i);
            if (t->delay_ms[i][j] > 0) {
                if (wan < 0) wan = add_node(p, LAB_WAN, "wan", -1, 0);
                struct lab_relay *rl = &p->relays[p->nrelays++];
                rl->ra = i;
                rl->rb = j;
                rl->delay_ms = t->delay_ms[i][j];
                sfmt(rl->if_a, sizeof(rl->if_a), "w%dx%da", i, j);
                sfmt(rl->if_b, sizeof(rl->if_b), "w%dx%db", i, j);
                add_link(p, router[i], ia, a, wan, rl->if_a, "");
                add_link(p, wan, rl->if_b, "", router[j], ib, b);
            } else {
                add_link(p, router[i], ia, a, router[j], ib, b);
            }
            if (p->anycast) continue; /* BIRD carries the region prefixes (lab/lib/bird.c) */
            struct lab_route *ro = &p->routes[p->nroutes++];
            ro->node = router[i];
            sfmt(ro->dst, sizeof(ro->dst), "%s", p->region_net[j]);
            sfmt(ro->via, sizeof(ro->via), "%s", gb);
            ro = &p->routes[p->nroutes++];
            ro->node = router[j];
            sfmt(ro->dst, sizeof(ro->dst), "%s", p->region_net[i]);
            sfmt(ro->via, sizeof(ro->via), "%s", ga);
        }
}

/* The management network (netns): the ctl namespace holds a bridge (198.19.0.1/24); every edge,
 * the dns and the lb get a second interface, mg0, on it, and bind their admin listeners there.
 * Routers know nothing of 198.19.0.0/24 and no node forwards, so a client cannot reach it. */
static void plan_mgmt(struct lab_plan *p)
{
    size_t servers = p->nnodes;
    int ctl = add_node(p, LAB_CTL, "ctl", -1, 0);
    p->ctl = ctl;
    sfmt(p->nodes[ctl].addr, sizeof(p->nodes[ctl].addr), "%s", LAB_MGMT_BRIDGE);
    sfmt(p->nodes[ctl].mgmt, sizeof(p->nodes[ctl].mgmt), "%s", LAB_MGMT_BRIDGE);
    int k = 0;
    for (size_t i = 0; i < servers && k < 240; i++) {
        struct lab_node *n = &p->nodes[i];
        if (n->kind != LAB_EDGE && n->kind != LAB_DNS && n->kind != LAB_LB) continue;
        char a[20], ifn[16];
        sfmt(n->mgmt, sizeof(n->mgmt), "198.19.0.%d", 10 + k);
        sfmt(a, sizeof(a), "%s/24", n->mgmt);
        sfmt(ifn, sizeof(ifn), "m%d", k++);
        add_link(p, (int)i, "mg0", a, ctl, ifn, "");
    }
}

int lab_plan_make(const struct lab_topo *t, enum lab_mode mode, const char *prefix, int base,
                  struct lab_plan *p, char *msg, size_t msglen)
{
    memset(p, 0, sizeof(*p));
    p->mode = mode;
    p->base = base;
    sfmt(p->prefix, sizeof(p->prefix), "%s", prefix);
    int nr = (int)t->regions.n;
    int hosts[LAB_MAX_REGIONS] = {0};
    int router[LAB_MAX_REGIONS] = {0};
    char nm[40];
    for (int r = 0; r < nr; r++) {
        const char *rn = lab_topo_reg(t, r)->name;
        if (mode == LAB_NETNS) {
            sfmt(p->client_net[r], sizeof(p->client_net[r]), "198.18.%d.0/24", 10 + 2 * r);
            sfmt(p->region_net[r], sizeof(p->region_net[r]), "198.18.%d.0/23", 10 + 2 * r);
            sfmt(nm, sizeof(nm), "r-%s", rn);
            router[r] = add_node(p, LAB_ROUTER, nm, r, r);
            sfmt(p->nodes[router[r]].addr, 16, "198.18.%d.1", 10 + 2 * r);
        } else {
            sfmt(p->client_net[r], sizeof(p->client_net[r]), "127.%d.%d.0/24", base, r + 1);
            sfmt(p->region_net[r], sizeof(p->region_net[r]), "127.%d.%d.0/24", base, r + 1);
        }
        sfmt(nm, sizeof(nm), "c-%s", rn);
        int c = add_node(p, LAB_CLIENT, nm, r, r);
        lab_plan_client_addr(p, r, 0, p->nodes[c].addr, sizeof(p->nodes[c].addr));
        if (mode == LAB_NETNS) {
            char a[20];
            sfmt(a, sizeof(a), "198.18.%d.1/24", 10 + 2 * r);
            char b[20];
            sfmt(b, sizeof(b), "%s/24", p->nodes[c].addr);
            add_link(p, router[r], "cli", a, c, "up0", b);
            sfmt(p->nodes[c].gw, 16, "198.18.%d.1", 10 + 2 * r);
        }
    }
    /* Servers: edges, dns, lb, apps, each on its own /30 to its region's router. */
    struct { enum lab_kind k; int region, index; char name[32]; } hs[128];
    int nh = 0;
    for (size_t i = 0; i < t->edges.n && nh < 120; i++) {
        hs[nh] = (typeof(hs[0])){LAB_EDGE, t->edge_region[i], (int)i, ""};
        sfmt(hs[nh++].name, 32, "e-%s", lab_topo_edge(t, i)->name);
    }
    hs[nh++] = (typeof(hs[0])){LAB_DNS, t->dns_region, 0, "dns"};
    hs[nh++] = (typeof(hs[0])){LAB_LB, t->origin_region, 0, "lb"};
    for (unsigned i = 0; i < t->origin.apps && nh < 128; i++) {
        hs[nh] = (typeof(hs[0])){LAB_APP, t->origin_region, (int)i, ""};
        sfmt(hs[nh++].name, 32, "app%u", i + 1);
    }
    for (unsigned i = 0; i < t->db_servers && nh < 128; i++) { /* db-primary, db-r1, ... */
        hs[nh] = (typeof(hs[0])){LAB_DB, t->db_region[i], (int)i, ""};
        if (i == 0) sfmt(hs[nh++].name, 32, "db-primary");
        else sfmt(hs[nh++].name, 32, "db-r%u", i);
    }
    for (unsigned i = t->origin.apps; i < t->app_slots && nh < 128; i++) { /* the scaler's spares, last: */
        hs[nh] = (typeof(hs[0])){LAB_APP, t->origin_region, (int)i, ""};   /* the others keep their addresses */
        sfmt(hs[nh++].name, 32, "app%u", i + 1);
    }
    for (int h = 0; h < nh; h++) {
        int r = hs[h].region, k = hosts[r]++;
        if (k >= LAB_MAX_HOSTS) {
            sfmt(msg, msglen, "region %s: more than %d hosts", lab_topo_reg(t, r)->name, LAB_MAX_HOSTS);
            return -1;
        }
        int n = add_node(p, hs[h].k, hs[h].name, r, hs[h].index);
        if (mode == LAB_NETNS) {
            char a[20], b[20], ifn[16];
            sfmt(a, sizeof(a), "198.18.%d.%d/30", 11 + 2 * r, 4 * k + 1);
            sfmt(b, sizeof(b), "198.18.%d.%d/30", 11 + 2 * r, 4 * k + 2);
            sfmt(ifn, sizeof(ifn), "h%d", k);
            add_link(p, router[r], ifn, a, n, "up0", b);
            sfmt(p->nodes[n].addr, 16, "198.18.%d.%d", 11 + 2 * r, 4 * k + 2);
            sfmt(p->nodes[n].gw, 16, "198.18.%d.%d", 11 + 2 * r, 4 * k + 1);
        } else {
            sfmt(p->nodes[n].addr, 16, "127.%d.%d.%d", base, r + 1, 100 + k);
        }
    }
    p->ctl = -1;
    for (size_t i = 0; i < p->nnodes; i++) sfmt(p->nodes[i].mgmt, sizeof(p->nodes[i].mgmt), "%s", p->nodes[i].addr);
    if (mode == LAB_LOOPBACK) return 0;
    plan_mgmt(p);
    p->anycast = t->anycast.addresses.n > 0;
    plan_backbone(t, p, router);
    return 0;
}

int lab_plan_find(const struct lab_plan *p, enum lab_kind kind, int index_or_region)
{
    for (size_t i = 0; i < p->nnodes; i++)
        if (p->nodes[i].kind == kind &&
            (kind == LAB_ROUTER || kind == LAB_CLIENT ? p->nodes[i].region : p->nodes[i].index) == index_or_region)
            return (int)i;
    return -1;
}

int lab_plan_find_name(const struct lab_plan *p, const char *name)
{
    for (size_t i = 0; i < p->nnodes; i++)
        if (!strcmp(p->nodes[i].name, name)) return (int)i;
    return -1;
}

void lab_buf_printf(struct lab_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        if (ncap > (16u << 20)) { /* a config of 16 MB is a bug */
            b->oom = 1;
            return;
        }
        char *s = realloc(b->s, ncap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = ncap;
    }
}

void lab_buf_free(struct lab_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof(*b));
}

void lab_gen_dns_yaml(const struct lab_topo *t, const struct lab_plan *p, const char *statedir, struct lab_buf *b)
{
    int dns = lab_plan_find(p, LAB_DNS, 0), lb = lab_plan_find(p, LAB_LB, 0);
    const char *da = p->nodes[dns].addr;
    lab_buf_printf(b, "# generated by cdn-lab from topology '%s': do not edit\n", t->name);
    lab_buf_printf(b, "listen: [\"%s:%d\"]\nadmin: \"%s:%d\"\nworkers: 1\nlog_level: info\n", da, LAB_PORT_DNS,
                   p->nodes[dns].mgmt, LAB_PORT_DNS_ADMIN);
    (void)statedir;
    lab_buf_printf(b, "rrl: {rate: 0}\nhealth: {interval: 1s, timeout: 500ms, rise: 2, fall: 2, doubt: 5s}\n");
    lab_buf_printf(b, "regions:\n");
    for (size_t r = 0; r < t->regions.n; r++) {
        lab_buf_printf(b, "  %s:\n    subnets: [\"%s\"]\n", lab_topo_reg(t, r)->name, p->client_net[r]);
        int first = 1;
        for (size_t s = r + 1; s < t->regions.n; s++) {
            lab_buf_printf(b, "%s%s: %llu", first ? "    distance: {" : ", ", lab_topo_reg(t, s)->name,
                           (unsigned long long)t->delay_ms[r][s]);
            first = 0;
        }
        if (!first) lab_buf_printf(b, "}\n");
    }
    lab_buf_printf(b, "default_region: %s\nedges:\n", lab_topo_reg(t, 0)->name);
    for (size_t i = 0; i < t->edges.n; i++) {
        const struct lab_edge *e = lab_topo_edge(t, i);
        if (e->parent) continue; /* parents serve edges, not clients */
        const struct lab_node *en = &p->nodes[lab_plan_find(p, LAB_EDGE, (int)i)];
        lab_buf_printf(b, "  - {name: %s, region: %s, addresses: [\"%s\"], health: \"http://%s:%d/healthz\"}\n", e->name,
                       e->region, en->addr, en->mgmt, LAB_PORT_EDGE_ADMIN);
    }
    lab_buf_printf(b, "zones:\n  - name: %s\n    ttl: 300\n    soa: \"ns1 hostmaster 1 3600 600 86400 30\"\n", t->zone);
    lab_buf_printf(b, "    records:\n      - \"@ NS ns1\"\n      - \"ns1 A %s\"\n      - \"origin 60 A %s\"\n", da,
                   p->nodes[lb].addr);
    /* Routing per hostname: dns -> a CDN name (nearest healthy edges); anycast -> a static A record
     * with the anycast address; both -> NAME by DNS and NAME-any by anycast. Without BGP (loopback
     * mode) anycast names fall back to DNS steering. */
    const char *const *hn = t->hostnames.items;
    unsigned ttl = (unsigned)(t->dns.ttl_ms / 1000);
    for (size_t i = 0; i < t->hostnames.n; i++) {
        if (!p->anycast || t->routing[i] == LAB_ROUTE_DNS) continue;
        lab_buf_printf(b, "      - \"%s%s %u A %s\"\n", hn[i], t->routing[i] == LAB_ROUTE_BOTH ? "-any" : "", ttl,
                       lab_topo_anycast_addr(t, i));
    }
    int ncdn = 0;
    for (size_t i = 0; i < t->hostnames.n; i++) ncdn += !p->anycast || t->routing[i] != LAB_ROUTE_ANYCAST;
    if (ncdn) lab_buf_printf(b, "    cdn:\n");
    for (size_t i = 0; i < t->hostnames.n; i++) {
        int dns = !p->anycast || t->routing[i] != LAB_ROUTE_ANYCAST;
        int twin = !p->anycast && t->routing[i] == LAB_ROUTE_BOTH;
        for (int k = 0; k < 1 + twin; k++)
            if (dns)
                lab_buf_printf(b, "      - {name: %s%s, ttl: %u, doubt_ttl: %u, answers: %u}\n", hn[i], k ? "-any" : "",
                               ttl, ttl < 5 ? ttl : 5, t->dns.answers);
    }
}

void lab_argv_add(struct lab_argv *a, const char *fmt, ...)
{
    if (a->argc >= (int)(sizeof(a->argv) / sizeof(a->argv[0])) - 1) return;
    va_list ap;
    va_start(ap, fmt);
    size_t room = sizeof(a->store) - a->used;
    int n = vsnprintf(a->store + a->used, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) return;
    a->argv[a->argc++] = a->store + a->used;
    a->argv[a->argc] = NULL;
    a->used += (size_t)n + 1;
}

void lab_cmd_edge(const struct lab_topo *t, const struct lab_plan *p, int node, const char *bindir,
                  const char *statedir, struct lab_argv *a)
{
    const struct lab_node *n = &p->nodes[node];
    const struct lab_edge *e = lab_topo_edge(t, (size_t)n->index);
    const char *lb = p->nodes[lab_plan_find(p, LAB_LB, 0)].addr;
    memset(a, 0, sizeof(*a));
    lab_argv_add(a, "%s/cdn-edge", bindir);
    lab_argv_add(a, "-a");
    lab_argv_add(a, "%s:%d", n->addr, LAB_PORT_HTTP);
    lab_argv_add(a, "-A"); /* on the management network in netns mode */
    lab_argv_add(a, "%s:%d", n->mgmt, LAB_PORT_EDGE_ADMIN);
    lab_argv_add(a, "--tls");
    lab_argv_add(a, "%s:%d", n->addr, LAB_PORT_HTTPS);
    lab_argv_add(a, "--cert");
    lab_argv_add(a, "%s/tls.crt", statedir);
    lab_argv_add(a, "--key");
    lab_argv_add(a, "%s/tls.key", statedir);
    lab_argv_add(a, "-b");
    lab_argv_add(a, "http://%s:%d", lb, LAB_PORT_LB);
    lab_argv_add(a, "-d");
    lab_argv_add(a, "%s/edge-%s", statedir, e->name);
    lab_argv_add(a, "-s");
    lab_argv_add(a, "%llu", (unsigned long long)e->ram);
    lab_argv_add(a, "-S");
    lab_argv_add(a, "%llu", (unsigned long long)e->disk);
    if (p->anycast && !e->parent) /* the anycast addresses, on the edge's loopback */
        for (size_t i = 0; i < t->anycast.addresses.n; i++) {
            const char *ad = ((const char *const *)t->anycast.addresses.items)[i];
            lab_argv_add(a, "-a");
            lab_argv_add(a, "%s:%d", ad, LAB_PORT_HTTP);
            lab_argv_add(a, "--tls");
            lab_argv_add(a, "%s:%d", ad, LAB_PORT_HTTPS);
        }
    for (unsigned k = 0; k < t->edge_nparents[n->index]; k++) { /* the shield tier, over h1/h2c */
        int pn = lab_plan_find(p, LAB_EDGE, t->edge_parents[n->index][k]);
        lab_argv_add(a, "--parent");
        lab_argv_add(a, "http://%s:%d", p->nodes[pn].addr, LAB_PORT_HTTP);
    }
    lab_argv_add(a, "--access-log"); /* JSON lines: duration, Cache-Status, upstream (miss latency by hop) */
    lab_argv_add(a, "%s/logs/access-%s.json", statedir, e->name);
    lab_argv_add(a, "--edge-key-file"); /* the lab's edges know each other by it (CDN-Edge-Key) */
    lab_argv_add(a, "%s/edge.key", statedir);
    lab_argv_add(a, "--admin-token-file"); /* purge and drain need it (the admin is not on loopback) */
    lab_argv_add(a, "%s/admin.key", statedir);
    /* the purge bus: the lab's Redis beside cdn-dns, its password the admin token */
    lab_argv_add(a, "--purge-bus");
    lab_argv_add(a, "redis://%s:%d", p->nodes[lab_plan_find(p, LAB_DNS, 0)].addr, LAB_PORT_REDIS);
    lab_argv_add(a, "--purge-bus-auth-file");
    lab_argv_add(a, "%s/admin.key", statedir);
    lab_argv_add(a, "-n"); /* also its CDN-Loop name (cdn-edge-NAME): names differ along a chain */
    lab_argv_add(a, "%s", e->name);
    lab_argv_add(a, "--served-by");
    lab_argv_add(a, "%s", e->name);
    lab_argv_add(a, "-w");
    lab_argv_add(a, "%u", e->workers);
}

void lab_cmd_app(const struct lab_topo *t, const struct lab_plan *p, int node, const char *bindir,
                 const char *statedir, struct lab_argv *a)
{
    const struct lab_node *n = &p->nodes[node];
    const char *const *hn = t->hostnames.items;
    memset(a, 0, sizeof(*a));
    lab_argv_add(a, "%s/shop-app", bindir);
    lab_argv_add(a, "-a");
    lab_argv_add(a, "%s:%d", n->addr, LAB_PORT_APP);
    if (t->db_servers) { /* PostgreSQL: primary and replica in the file `cdn-lab up` writes */
        lab_argv_add(a, "-c");
        lab_argv_add(a, "%s/shop-db.yaml", statedir);
    } else {
        lab_argv_add(a, "--db");
        lab_argv_add(a, "%s/catalog.db", statedir);
    }
    lab_argv_add(a, "--seed");
    lab_argv_add(a, "%u", t->origin.seed);
    lab_argv_add(a, "--name");
    lab_argv_add(a, "%s", n->name);
    lab_argv_add(a, "--cdn-host");
    lab_argv_add(a, "https://%s.%s:%d", hn[0], t->zone, LAB_PORT_HTTPS);
    lab_argv_add(a, "--access-log"); /* JSON lines, as its name says */
    lab_argv_add(a, "%s/logs/access-%s.json", statedir, n->name);
    lab_argv_add(a, "--access-log-format");
    lab_argv_add(a, "json");
    if (t->origin.render_threads) {
        lab_argv_add(a, "--render-threads");
        lab_argv_add(a, "%u", t->origin.render_threads);
    }
    if (t->origin.delay_ms) {
        lab_argv_add(a, "--delay");
        lab_argv_add(a, "%llu", (unsigned long long)t->origin.delay_ms);
    }
}

void lab_cmd_lb(const struct lab_topo *t, const struct lab_plan *p, int node, const char *bindir,
                const char *statedir, struct lab_argv *a)
{
    const struct lab_node *n = &p->nodes[node];
    memset(a, 0, sizeof(*a));
    lab_argv_add(a, "%s/shop-lb", bindir);
    lab_argv_add(a, "-a");
    lab_argv_add(a, "%s:%d", n->addr, LAB_PORT_LB);
    lab_argv_add(a, "--admin");
    lab_argv_add(a, "%s:%d", n->mgmt, LAB_PORT_LB_ADMIN);
    lab_argv_add(a, "--admin-token-file"); /* its admin is not on loopback: POST /backends needs it */
    lab_argv_add(a, "%s/admin.key", statedir);
    lab_argv_add(a, "--algo");
    lab_argv_add(a, "%s", t->origin.algo);
    lab_argv_add(a, "--access-log"); /* JSON lines, beside the others */
    lab_argv_add(a, "%s/logs/access-%s.json", statedir, n->name);
    lab_argv_add(a, "--access-log-format");
    lab_argv_add(a, "json");
    for (unsigned i = 0; i < t->origin.apps; i++) {
        lab_argv_add(a, "-b");
        lab_argv_add(a, "http://%s:%d", p->nodes[lab_plan_find(p, LAB_APP, (int)i)].addr, LAB_PORT_APP);
    }
}

void lab_cmd_dns(const struct lab_plan *p, int node, const char *bindir, const char *statedir, struct lab_argv *a)
{
    (void)p;
    (void)node;
    memset(a, 0, sizeof(*a));
    lab_argv_add(a, "%s/cdn-dns", bindir);
    lab_argv_add(a, "-c");
    lab_argv_add(a, "%s/dns.yaml", statedir);
}
