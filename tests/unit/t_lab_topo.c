/* Unit tests for lab/lib/topo.c and lab/lib/plan.c: the shipped topologies load; broken ones fail with
 * their line; the plan's namespaces, addresses, links, relays and routes (netns and loopback);
 * the generated cdn-dns YAML and daemon command lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/topo.h"

static const char *srcdir(void)
{
    const char *s = getenv("top_srcdir");
    return s ? s : ".";
}

static struct lab_topo *load_shipped(const char *name, cdn_conf_t **c)
{
    char path[1024];
    cdn_conf_err_t err;
    snprintf(path, sizeof(path), "%s/lab/topologies/%s", srcdir(), name);
    struct lab_topo *t = lab_topo_load(path, c, &err);
    if (!t) fprintf(stderr, "%s\n", err.msg);
    return t;
}

static void test_default(void **state)
{
    cdn_conf_t *c;
    struct lab_topo *t = load_shipped("default.yaml", &c);
    assert_non_null(t);
    assert_string_equal(t->name, "default");
    assert_int_equal(t->regions.n, 3);
    assert_int_equal(t->edges.n, 4);
    assert_int_equal(t->origin.apps, 3);
    int eu = lab_topo_region(t, "eu"), us = lab_topo_region(t, "us"), ap = lab_topo_region(t, "ap");
    assert_true(eu >= 0 && us >= 0 && ap >= 0);
    assert_int_equal(t->delay_ms[eu][us], 40);
    assert_int_equal(t->delay_ms[us][eu], 40); /* symmetric */
    assert_int_equal(t->delay_ms[ap][us], 60);
    assert_int_equal(t->delay_ms[eu][ap], 80);
    assert_int_equal(lab_topo_edge(t, 2)->ram, 32u << 20);
    /* the shield: a parent in the origin's region, the parent of every other edge */
    assert_true(lab_topo_edge(t, 3)->parent);
    assert_int_equal(t->edge_region[3], us);
    assert_int_equal(t->nparents, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t->edge_nparents[i], 1);
        assert_int_equal(t->edge_parents[i][0], 3);
    }
    assert_int_equal(t->edge_nparents[3], 0);
    assert_int_equal(t->dns_region, eu);
    assert_int_equal(t->origin_region, us);
    cdn_conf_free(c);
}

static void test_global(void **state)
{
    cdn_conf_t *c;
    struct lab_topo *t = load_shipped("global.yaml", &c);
    assert_non_null(t);
    assert_int_equal(t->regions.n, 6);
    assert_int_equal(t->edges.n, 9);
    assert_true(lab_topo_edge(t, 8)->parent);
    static struct lab_plan p;
    char msg[128];
    assert_int_equal(lab_plan_make(t, LAB_NETNS, "x", 0, &p, msg, sizeof(msg)), 0);
    assert_int_equal(p.nrelays, 15); /* every pair has a delay */
    assert_int_equal(p.nroutes, 30);
    cdn_conf_free(c);
}

struct bad { const char *text, *msg; };

static void test_errors(void **state)
{
    static const struct bad cases[] = {
        {"regions:\n  eu: {}\n  us: {}\nedges:\n  - {name: a, region: eu}\n",
         "t.yaml:2:3: no delay between regions eu and us"},
        {"regions:\n  eu: {delay: {us: 10ms}}\n  us: {delay: {eu: 20ms}}\nedges:\n  - {name: a, region: eu}\n",
         "t.yaml:3:15: delay us-eu given twice, differently (10 ms and 20 ms)"},
        {"regions:\n  eu: {delay: {mars: 10ms}}\nedges:\n  - {name: a, region: eu}\n",
         "t.yaml:2:15: region eu: delay to unknown region 'mars'"},
        {"regions:\n  eu: {}\nedges:\n  - {name: a, region: eu}\n  - {name: b, region: moon}\n",
         "t.yaml:5:23: unknown region 'moon'"},
        {"regions:\n  eu: {}\nedges:\n  - {name: a, region: eu}\n  - {name: a, region: eu}\n",
         "t.yaml:5:12: edge name 'a' used twice"},
        {"regions:\n  eu: {}\nedges:\n  - {name: a, region: eu}\norigin: {algo: random}\n",
         "t.yaml:5:16: algo: expected one of rr, leastconn, hash-client, hash-url"},
        {"regions:\n  eu: {}\nedges:\n  - {name: a, region: eu, ram: lots}\n", "t.yaml:4:32: ram: expected a size"},
        {"regions:\n  eu: {}\n", "t.yaml:1:1: "},
        {"regions:\n  Europe_1: {}\nedges:\n  - {name: a, region: Europe_1}\n", "t.yaml:2:3: region name"},
        {"regions:\n  eu: {delay: 40ms}\nedges:\n  - {name: a, region: eu}\n",
         "t.yaml:2:15: delay: expected a map of region"},
        {"regions: [\n", "t.yaml:"},
        {"regions:\n  eu: {}\nedges:\n  - {name: a, region: eu, parents: [b]}\n  - {name: b, region: eu}\n",
         "t.yaml:4:36: edge a: 'b' is not a parent edge (parent: true)"},
        {"regions:\n  eu: {}\nedges:\n  - {name: a, region: eu, parents: [zz]}\n",
         "t.yaml:4:36: edge a: unknown parent 'zz'"},
        {"regions:\n  eu: {}\nedges:\n  - {name: a, region: eu}\n  - {name: p, region: eu, parent: true, parents: [p]}\n",
         "t.yaml:5:50: edge p: a parent edge has no parents (two tiers)"},
        {"regions:\n  eu: {}\nedges:\n  - {name: p, region: eu, parent: true}\n", "t.yaml:4:3: every edge is a parent"},
        /* a key without a value (fuzz_lab_topo: cdn-lab crashed on these) */
        {"name:\nregions:\n  eu: {}\nedges:\n  - {name: a, region: eu}\n", "t.yaml:1:"},
        {"regions:\n  eu: {}\nedges:\n  - {name: , region: eu}\n", "t.yaml:4:"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cdn_conf_t *c;
        cdn_conf_err_t err;
        struct lab_topo *t = lab_topo_load_string("t.yaml", cases[i].text, strlen(cases[i].text), &c, &err);
        if (t || strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0) {
            fprintf(stderr, "case %zu: got '%s', want '%s...'\n", i, t ? "(ok)" : err.msg, cases[i].msg);
            bad++;
        }
        if (t) cdn_conf_free(c);
    }
    assert_int_equal(bad, 0);
}

static void test_plan_netns(void **state)
{
    cdn_conf_t *c;
    struct lab_topo *t = load_shipped("default.yaml", &c);
    assert_non_null(t);
    static struct lab_plan p;
    char msg[128];
    assert_int_equal(lab_plan_make(t, LAB_NETNS, "cdnlab-ab12", 0, &p, msg, sizeof(msg)), 0);
    /* 3 routers + 3 client hosts + 4 edges + dns + lb + 3 apps + ctl + wan */
    assert_int_equal(p.nnodes, 17);
    int r = lab_plan_find_name(&p, "r-eu");
    assert_true(r >= 0);
    assert_string_equal(p.nodes[r].ns, "cdnlab-ab12-r-eu");
    assert_string_equal(p.nodes[r].addr, "198.18.10.1");
    int ce = lab_plan_find(&p, LAB_CLIENT, 0);
    assert_string_equal(p.nodes[ce].addr, "198.18.10.10");
    assert_string_equal(p.nodes[ce].gw, "198.18.10.1");
    char a[20];
    lab_plan_client_addr(&p, 2, 3, a, sizeof(a));
    assert_string_equal(a, "198.18.14.13");
    /* Edges: eu1 first host of eu, dns after it; us1 and the shield in us's host /30s, then lb and apps. */
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 0)].addr, "198.18.11.2");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 1)].addr, "198.18.13.2");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 3)].addr, "198.18.13.6");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 3)].gw, "198.18.13.5");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 2)].addr, "198.18.15.2");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_DNS, 0)].addr, "198.18.11.6");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_LB, 0)].addr, "198.18.13.10");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_APP, 2)].addr, "198.18.13.22");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_APP, 2)].name, "app3");
    /* Backbone: 3 pairs, all delayed, so 3 relays and 6 links through the wan namespace. */
    assert_int_equal(p.nrelays, 3);
    assert_int_equal(p.relays[0].delay_ms, 40);
    assert_string_equal(p.relays[0].if_a, "w0x1a");
    /* 3 client LANs, 9 hosts, the management network's 6 ports, 6 relay links */
    assert_int_equal(p.nlinks, 3 + 9 + 6 + 6);
    /* The management network: the admins of the edges, the dns and the lb on the ctl namespace's
     * bridge; clients, routers and apps have no address on it. */
    assert_true(p.ctl >= 0);
    assert_string_equal(p.nodes[p.ctl].ns, "cdnlab-ab12-ctl");
    assert_string_equal(p.nodes[p.ctl].addr, "198.19.0.1");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 0)].mgmt, "198.19.0.10");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_LB, 0)].mgmt, "198.19.0.15");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_APP, 0)].mgmt, p.nodes[lab_plan_find(&p, LAB_APP, 0)].addr);
    assert_string_equal(p.nodes[ce].mgmt, "198.18.10.10");
    size_t ports = 0;
    for (size_t i = 0; i < p.nlinks; i++)
        if (p.links[i].b == p.ctl) {
            ports++;
            assert_string_equal(p.links[i].if_a, "mg0");
            assert_true(p.nodes[p.links[i].a].kind == LAB_EDGE || p.nodes[p.links[i].a].kind == LAB_DNS ||
                        p.nodes[p.links[i].a].kind == LAB_LB);
        }
    assert_int_equal(ports, 6);
    {
        struct lab_argv ea;
        lab_cmd_edge(t, &p, lab_plan_find(&p, LAB_EDGE, 0), "/b", "/st", &ea);
        int adm = 0;
        for (int i = 0; ea.argv[i + 1]; i++) adm += !strcmp(ea.argv[i], "-A") && !strcmp(ea.argv[i + 1], "198.19.0.10:9080");
        assert_int_equal(adm, 1);
        struct lab_buf db = {0};
        lab_gen_dns_yaml(t, &p, "/st", &db);
        assert_non_null(strstr(db.s, "health: \"http://198.19.0.10:9080/healthz\""));
        assert_non_null(strstr(db.s, "admin: \"198.19.0.14:5380\""));
        lab_buf_free(&db);
    }
    assert_int_equal(p.nroutes, 6);
    assert_string_equal(p.routes[0].dst, "198.18.12.0/23");
    assert_string_equal(p.routes[0].via, "198.18.0.2");
    assert_string_equal(p.region_net[2], "198.18.14.0/23");
    /* Every address on a link is unique. */
    for (size_t i = 0; i < p.nlinks; i++)
        for (size_t j = 0; j < p.nlinks; j++) {
            const char *x[2] = {p.links[i].addr_a, p.links[i].addr_b}, *y[2] = {p.links[j].addr_a, p.links[j].addr_b};
            for (int u = 0; u < 2; u++)
                for (int v = 0; v < 2; v++)
                    if (*x[u] && (i != j || u != v)) assert_string_not_equal(x[u], y[v]);
        }
    cdn_conf_free(c);
}

static void test_plan_loopback_and_configs(void **state)
{
    cdn_conf_t *c;
    struct lab_topo *t = load_shipped("default.yaml", &c);
    assert_non_null(t);
    static struct lab_plan p;
    char msg[128];
    assert_int_equal(lab_plan_make(t, LAB_LOOPBACK, "cdnlab-x", 77, &p, msg, sizeof(msg)), 0);
    assert_int_equal(p.nlinks, 0);
    assert_int_equal(p.nrelays, 0);
    assert_int_equal(lab_plan_find_name(&p, "r-eu"), -1);
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 0)].addr, "127.77.1.100");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 1)].addr, "127.77.2.100");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_EDGE, 3)].addr, "127.77.2.101");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_CLIENT, 1)].addr, "127.77.2.10");
    assert_string_equal(p.nodes[lab_plan_find(&p, LAB_DNS, 0)].ns, "");
    assert_string_equal(p.client_net[2], "127.77.3.0/24");

    struct lab_buf b = {0};
    lab_gen_dns_yaml(t, &p, "/tmp/st", &b);
    assert_false(b.oom);
    assert_non_null(strstr(b.s, "listen: [\"127.77.1.101:5353\"]"));
    assert_non_null(strstr(b.s, "subnets: [\"127.77.1.0/24\"]"));
    assert_non_null(strstr(b.s, "distance: {us: 40, ap: 80}"));
    assert_non_null(strstr(b.s, "health: \"http://127.77.1.100:9080/healthz\""));
    assert_null(strstr(b.s, "name: shield")); /* clients are never sent to a shield */
    assert_null(strstr(b.s, "127.77.2.101"));
    assert_non_null(strstr(b.s, "{name: img, ttl: 20, doubt_ttl: 5, answers: 2}"));
    /* It is valid YAML. */
    cdn_conf_err_t err;
    cdn_conf_t *d = cdn_conf_load_string("dns.yaml", b.s, b.len, &err);
    if (!d) fprintf(stderr, "%s\n%s", err.msg, b.s);
    assert_non_null(d);
    cdn_conf_free(d);
    lab_buf_free(&b);

    struct lab_argv a;
    lab_cmd_edge(t, &p, lab_plan_find(&p, LAB_EDGE, 2), "/b", "/st", &a);
    assert_string_equal(a.argv[0], "/b/cdn-edge");
    assert_string_equal(a.argv[2], "127.77.3.100:8080");
    int found = 0, parents = 0;
    for (int i = 0; a.argv[i]; i++) {
        if (!strcmp(a.argv[i], "-b")) found = !strcmp(a.argv[i + 1], "http://127.77.2.102:8000");
        if (!strcmp(a.argv[i], "--parent")) parents += !strcmp(a.argv[i + 1], "http://127.77.2.101:8080");
    }
    assert_true(found);
    assert_int_equal(parents, 1); /* ap1's misses go to the shield */
    lab_cmd_edge(t, &p, lab_plan_find(&p, LAB_EDGE, 3), "/b", "/st", &a);
    for (int i = 0; a.argv[i]; i++) assert_string_not_equal(a.argv[i], "--parent"); /* the shield asks the origin */
    lab_cmd_lb(t, &p, lab_plan_find(&p, LAB_LB, 0), "/b", "/st", &a);
    assert_string_equal(a.argv[a.argc - 1], "http://127.77.2.105:8081");
    assert_string_equal(a.argv[a.argc - 2], "-b");
    lab_cmd_app(t, &p, lab_plan_find(&p, LAB_APP, 0), "/b", "/st", &a);
    assert_string_equal(a.argv[2], "127.77.2.103:8081");
    cdn_conf_free(c);
}

/* Children pick the parents of the nearest region that has any (all of them, in file order), or
 * the ones they name. */
static void test_parents(void **state)
{
    static const char text[] =
        "regions:\n  eu: {delay: {us: 40ms, ap: 80ms}}\n  us: {delay: {ap: 60ms}}\n  ap: {}\n"
        "edges:\n  - {name: eu1, region: eu}\n  - {name: ap1, region: ap}\n  - {name: ap2, region: ap, parents: [pus]}\n"
        "  - {name: peu, region: eu, parent: true}\n  - {name: pus, region: us, parent: true}\n"
        "  - {name: pus2, region: us, parent: true}\n";
    cdn_conf_t *c;
    cdn_conf_err_t err;
    struct lab_topo *t = lab_topo_load_string("p.yaml", text, strlen(text), &c, &err);
    if (!t) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(t);
    assert_int_equal(t->nparents, 3);
    assert_int_equal(t->edge_nparents[0], 1); /* eu1: peu, same region */
    assert_int_equal(t->edge_parents[0][0], 3);
    assert_int_equal(t->edge_nparents[1], 2); /* ap1: us (60 ms) beats eu (80 ms): both of us's */
    assert_int_equal(t->edge_parents[1][0], 4);
    assert_int_equal(t->edge_parents[1][1], 5);
    assert_int_equal(t->edge_nparents[2], 1); /* ap2 names pus */
    assert_int_equal(t->edge_parents[2][0], 4);
    assert_int_equal(t->edge_nparents[4], 0);
    static struct lab_plan p;
    char msg[128];
    assert_int_equal(lab_plan_make(t, LAB_NETNS, "x", 0, &p, msg, sizeof(msg)), 0);
    struct lab_argv a;
    lab_cmd_edge(t, &p, lab_plan_find(&p, LAB_EDGE, 1), "/b", "/st", &a);
    int np = 0;
    for (int i = 0; a.argv[i]; i++)
        if (!strcmp(a.argv[i], "--parent")) {
            assert_string_equal(a.argv[i + 1], np ? "http://198.18.13.6:8080" : "http://198.18.13.2:8080");
            np++;
        }
    assert_int_equal(np, 2);
    cdn_conf_free(c);
}

/* db: the servers' regions, their nodes after the apps, the apps' -c shop-db.yaml; bad regions. */
static void test_db(void **state)
{
    cdn_conf_t *c;
    struct lab_topo *t = load_shipped("db.yaml", &c);
    assert_non_null(t);
    assert_int_equal(t->db_servers, 3);
    assert_int_equal(t->db_region[0], 1); /* us */
    assert_int_equal(t->db_region[1], 1);
    assert_int_equal(t->db_region[2], 0); /* eu: behind the WAN */
    assert_int_equal(t->db.ryw_ms, 5000);
    static struct lab_plan p;
    char msg[128];
    assert_int_equal(lab_plan_make(t, LAB_NETNS, "x", 0, &p, msg, sizeof(msg)), 0);
    int pr = lab_plan_find(&p, LAB_DB, 0), r2 = lab_plan_find(&p, LAB_DB, 2);
    assert_true(pr >= 0 && r2 >= 0);
    assert_string_equal(p.nodes[pr].name, "db-primary");
    assert_string_equal(p.nodes[pr].ns, "x-db-primary");
    assert_string_equal(p.nodes[pr].addr, "198.18.13.26"); /* after us1, shield, lb and 3 apps */
    assert_string_equal(p.nodes[r2].name, "db-r2");
    assert_string_equal(p.nodes[r2].addr, "198.18.11.10"); /* after eu1 and dns */
    struct lab_argv a;
    lab_cmd_app(t, &p, lab_plan_find(&p, LAB_APP, 0), "/b", "/st", &a);
    int conf = 0, db = 0;
    for (int i = 0; a.argv[i]; i++) {
        conf += !strcmp(a.argv[i], "-c") && !strcmp(a.argv[i + 1], "/st/shop-db.yaml");
        db += !strcmp(a.argv[i], "--db");
    }
    assert_int_equal(conf, 1);
    assert_int_equal(db, 0);
    cdn_conf_free(c);
    /* without db: the SQLite file, no database nodes */
    t = load_shipped("default.yaml", &c);
    assert_non_null(t);
    assert_int_equal(t->db_servers, 0);
    cdn_conf_free(c);
    static const char *const bad[] = {
        "regions: {eu: {}}\nedges: [{name: e, region: eu}]\ndb: {primary: mars}\n",
        "regions: {eu: {}}\nedges: [{name: e, region: eu}]\ndb: {primary: eu, replicas: [eu, moon]}\n",
        "regions: {eu: {}}\nedges: [{name: e, region: eu}]\ndb: {replicas: [eu]}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cdn_conf_err_t err;
        assert_null(lab_topo_load_string("d.yaml", bad[i], strlen(bad[i]), &c, &err));
        assert_non_null(strstr(err.msg, "d.yaml:3:"));
    }
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default), cmocka_unit_test(test_global), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_plan_netns), cmocka_unit_test(test_plan_loopback_and_configs),
        cmocka_unit_test(test_parents), cmocka_unit_test(test_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
