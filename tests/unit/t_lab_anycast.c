/* Unit tests for the anycast parts of the lab: the anycast topology section (defaults, errors with
 * their line), the plan without static backbone routes, the BIRD configs (AS numbers, router ids,
 * neighbours, local preference by delay, timer profiles), cdn-dns records per routing mode, the
 * BIRD control-socket reply parser and the health agent's rise/fall machine. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/anycast.h"
#include "lab/lib/failover.h"
#include <math.h>

static struct lab_topo *load_shipped(const char *name, cdn_conf_t **c)
{
    char path[1024];
    cdn_conf_err_t err;
    const char *s = getenv("top_srcdir");
    snprintf(path, sizeof(path), "%s/lab/topologies/%s", s ? s : ".", name);
    struct lab_topo *t = lab_topo_load(path, c, &err);
    if (!t) fprintf(stderr, "%s\n", err.msg);
    return t;
}

static void test_topology(void **state)
{
    cdn_conf_t *c;
    struct lab_topo *t = load_shipped("anycast.yaml", &c);
    assert_non_null(t);
    assert_int_equal(t->anycast.addresses.n, 1);
    assert_string_equal(lab_topo_anycast_addr(t, 1), "198.19.255.1");
    assert_int_equal(t->profile, LAB_PROF_TUNED);
    assert_int_equal(t->routing[0], LAB_ROUTE_BOTH);
    assert_int_equal(t->anycast.health.rise, 3);
    cdn_conf_free(c);
    t = load_shipped("default.yaml", &c); /* no anycast section: DNS only */
    assert_int_equal(t->anycast.addresses.n, 0);
    assert_int_equal(t->routing[0], LAB_ROUTE_DNS);
    cdn_conf_free(c);

    static const char *const bad[][2] = {
        {"anycast: {addresses: [10.0.0.1]}\n", "t.yaml:3:22: anycast address '10.0.0.1': expected 198.19.255.1 to 198.19.255.254"},
        {"anycast: {profile: fast}\n", "t.yaml:3:20: profile: expected realistic, tuned or bfd"},
        {"anycast: {routing: {cdn: anycast}}\n", "t.yaml:3:20: routing: 'cdn' is not one of the hostnames"},
        {"anycast: {routing: {img: bgp}}\n", "t.yaml:3:26: routing: expected dns, anycast or both"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), "regions:\n  eu: {}\n%sedges:\n  - {name: a, region: eu}\n", bad[i][0]);
        cdn_conf_err_t err;
        assert_null(lab_topo_load_string("t.yaml", text, strlen(text), &c, &err));
        assert_string_equal(err.msg, bad[i][1]);
    }
    /* anycast section with defaults: one address, tuned, every name by anycast */
    const char *ok = "regions:\n  eu: {}\nanycast: {}\nedges:\n  - {name: a, region: eu}\n";
    cdn_conf_err_t err;
    t = lab_topo_load_string("t.yaml", ok, strlen(ok), &c, &err);
    assert_non_null(t);
    assert_string_equal(lab_topo_anycast_addr(t, 0), "198.19.255.1");
    assert_int_equal(t->routing[1], LAB_ROUTE_ANYCAST);
    cdn_conf_free(c);
}

static void test_plan_and_bird(void **state)
{
    cdn_conf_t *c;
    struct lab_topo *t = load_shipped("anycast.yaml", &c);
    static struct lab_plan p;
    char msg[128];
    assert_int_equal(lab_plan_make(t, LAB_NETNS, "x", 0, &p, msg, sizeof(msg)), 0);
    assert_true(p.anycast);
    assert_int_equal(p.nroutes, 0); /* BGP carries the region prefixes */
    int reu = lab_plan_find(&p, LAB_ROUTER, lab_topo_region(t, "eu")), eu1 = lab_plan_find(&p, LAB_EDGE, 0);
    assert_int_equal(lab_bird_as(&p, reu), 65001);
    assert_int_equal(lab_bird_as(&p, eu1), 65101);

    struct lab_buf b = {0};
    lab_gen_bird_conf(t, &p, eu1, LAB_PROF_TUNED, "/st", &b);
    assert_false(b.oom);
    assert_non_null(strstr(b.s, "router id 198.18.11.2;"));
    assert_non_null(strstr(b.s, "route 198.19.255.1/32 via \"lo\";"));
    assert_non_null(strstr(b.s, "  disabled;\n")); /* until the health agent says so */
    assert_non_null(strstr(b.s, "local 198.18.11.2 as 65101;\n  neighbor 198.18.11.1 as 65001;"));
    assert_non_null(strstr(b.s, "hold time 3; keepalive time 1;"));
    assert_null(strstr(b.s, "bfd"));
    assert_non_null(strstr(b.s, "log \"/st/b/e-eu1.log\" all;"));
    lab_buf_free(&b);

    lab_gen_bird_conf(t, &p, reu, LAB_PROF_BFD, "/st", &b);
    assert_non_null(strstr(b.s, "router id 198.18.10.1;"));
    assert_non_null(strstr(b.s, "protocol bgp e_eu1 {\n  local 198.18.11.1 as 65001;\n  neighbor 198.18.11.2 as 65101;"));
    assert_non_null(strstr(b.s, "bgp_local_pref = 2000"));
    /* backbone: us is 40 ms away, ap 80 ms: the nearer one is preferred */
    assert_non_null(strstr(b.s, "protocol bgp bb_us {\n  local 198.18.0.1 as 65001;\n  neighbor 198.18.0.2 as 65002;"));
    assert_non_null(strstr(b.s, "bgp_local_pref = 960;"));
    assert_non_null(strstr(b.s, "neighbor 198.18.0.6 as 65003;"));
    assert_non_null(strstr(b.s, "bgp_local_pref = 920;"));
    assert_non_null(strstr(b.s, "bfd on;"));
    assert_non_null(strstr(b.s, "protocol bfd { interface \"*\" { interval 100 ms; multiplier 3; }; }"));
    assert_non_null(strstr(b.s, "protocol direct lan { ipv4; interface \"cli\", \"h*\"; }"));
    lab_buf_free(&b);

    lab_gen_bird_conf(t, &p, reu, LAB_PROF_REALISTIC, "/st", &b);
    assert_null(strstr(b.s, "hold time")); /* BIRD's defaults */
    lab_buf_free(&b);

    struct lab_argv a;
    lab_cmd_edge(t, &p, eu1, "/b", "/st", &a);
    int any = 0;
    for (int i = 0; a.argv[i]; i++) any += !strcmp(a.argv[i], "198.19.255.1:8080") || !strcmp(a.argv[i], "198.19.255.1:8443");
    assert_int_equal(any, 2);
    lab_cmd_bird(&p, reu, "/st", &a);
    assert_string_equal(a.argv[1], "-f");
    assert_string_equal(a.argv[5], "/st/b/r-eu.ctl");
    lab_cmd_health(t, &p, eu1, "/st", &a);
    assert_string_equal(a.argv[2], "http://198.19.0.10:9080/healthz"); /* the admin, on the management network */

    /* cdn-dns: both -> NAME by DNS, NAME-any a static A record */
    lab_gen_dns_yaml(t, &p, "/st", &b);
    assert_non_null(strstr(b.s, "- \"img-any 20 A 198.19.255.1\""));
    assert_non_null(strstr(b.s, "{name: img, ttl: 20"));
    cdn_conf_err_t err;
    cdn_conf_t *d = cdn_conf_load_string("dns.yaml", b.s, b.len, &err);
    assert_non_null(d);
    cdn_conf_free(d);
    lab_buf_free(&b);
    /* loopback mode: no BGP, static routes stay, anycast twins fall back to DNS steering */
    assert_int_equal(lab_plan_make(t, LAB_LOOPBACK, "x", 77, &p, msg, sizeof(msg)), 0);
    assert_false(p.anycast);
    lab_gen_dns_yaml(t, &p, "/st", &b);
    assert_null(strstr(b.s, "198.19.255.1"));
    assert_non_null(strstr(b.s, "{name: img-any, ttl: 20"));
    lab_buf_free(&b);
    cdn_conf_free(c);
}

static void test_bird_reply(void **state)
{
    char out[256];
    int code = -1;
    const char *r1 = "1002-eu1  BGP  ---  up  01:00  Established\n BGP state: Established\n0000 \n";
    assert_int_equal(lab_bird_reply_parse(r1, strlen(r1), &code, out, sizeof(out)), 1);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "Established\nBGP state"));
    assert_int_equal(lab_bird_reply_parse(r1, 20, &code, out, sizeof(out)), 0);            /* partial */
    assert_int_equal(lab_bird_reply_parse("0001 BIRD 2.0.12 ready.\n", 24, &code, NULL, 0), 1);
    assert_int_equal(code, 1);
    assert_int_equal(lab_bird_reply_parse("8003 No protocols match\n", 24, &code, out, sizeof(out)), 1);
    assert_int_equal(code, 8003);
    assert_int_equal(lab_bird_reply_parse("80x3 bad\n", 9, &code, out, sizeof(out)), -1);
    assert_int_equal(lab_bird_reply_parse("12\n", 3, &code, out, sizeof(out)), -1);
    char tiny[4];
    assert_int_equal(lab_bird_reply_parse(r1, strlen(r1), &code, tiny, sizeof(tiny)), 1); /* bounded */
    assert_int_equal(strlen(tiny), 3);
}

static void test_health_fsm(void **state)
{
    struct lab_hc h;
    lab_hc_init(&h, 3, 2);
    assert_int_equal(lab_hc_feed(&h, 1), 0);
    assert_int_equal(lab_hc_feed(&h, 1), 0);
    assert_int_equal(lab_hc_feed(&h, 1), 1); /* third success: announce */
    assert_int_equal(lab_hc_feed(&h, 1), 0);
    assert_int_equal(lab_hc_feed(&h, 0), 0);
    assert_int_equal(lab_hc_feed(&h, 1), 0); /* a single failure is forgiven */
    assert_int_equal(lab_hc_feed(&h, 0), 0);
    assert_int_equal(lab_hc_feed(&h, 0), -1); /* second in a row: withdraw */
    assert_int_equal(lab_hc_feed(&h, 0), 0);
    assert_int_equal(lab_hc_feed(&h, 1), 0);
    assert_int_equal(lab_hc_feed(&h, 1), 0);
    assert_int_equal(lab_hc_feed(&h, 1), 1);
    lab_hc_init(&h, 1, 1); /* never healthy: never announced */
    assert_int_equal(lab_hc_feed(&h, 0), 0);
    assert_int_equal(h.up, 0);
    assert_int_equal(lab_hc_feed(&h, 1), 1);
}

static struct lab_logrec rec(double t, const char *edge, int status, const char *cache)
{
    struct lab_logrec r = {.t = t, .latency_ms = 10, .status = status, .phase = 'm'};
    snprintf(r.edge, sizeof(r.edge), "%s", edge);
    snprintf(r.cache, sizeof(r.cache), "%s", cache);
    return r;
}

static void test_failover(void **state)
{
    /* eu1 serves hits until t=20 (fault), two failures, us1 from 20.5 (cold, then warm), undo at
     * 25, eu1 again from 25.3 */
    struct lab_logrec r[] = {
        rec(12, "eu1", 200, "hit"), rec(15, "eu1", 200, "hit"), rec(19, "eu1", 200, "miss"), rec(19.9, "eu1", 200, "hit"),
        rec(20.2, "198.19.255.1", 0, "error"), rec(20.4, "198.19.255.1", 0, "error"), rec(20.5, "us1", 200, "miss"),
        rec(21, "us1", 200, "miss"), rec(22, "us1", 200, "hit"), rec(24, "us1", 200, "hit"), rec(25.1, "us1", 200, "hit"),
        rec(25.3, "eu1", 200, "hit"), rec(26, "us1", 503, "-"),
    };
    struct lab_fo_result o;
    lab_failover_analyse(r, sizeof(r) / sizeof(r[0]), "eu1", "198.18.11.2", 20, 25, &o);
    assert_string_equal(o.next_edge, "us1");
    assert_true(fabs(o.failover_s - 0.5) < 1e-9);
    assert_true(fabs(o.return_s - 0.3) < 1e-9);
    assert_int_equal(o.failed, 2);          /* the 503 after the return is not counted */
    assert_int_equal(o.n_before, 4);
    assert_true(fabs(o.hit_before - 0.75) < 1e-9);
    assert_int_equal(o.n_next_5s, 5);       /* 20.5 .. 25.1 (before 25.5) */
    assert_true(fabs(o.hit_next_5s - 0.6) < 1e-9);
    assert_true(fabs(o.hit_next_all - 0.6) < 1e-9); /* until the return at 25.3 */
    assert_true(fabs(o.last_dead_s + 1) < 1e-9); /* anycast: nothing went to eu1 by name after the fault */
    /* DNS: clients keep trying eu1's address until their cached answer expires */
    struct lab_logrec d[] = {
        rec(19, "eu1", 200, "hit"), rec(20.1, "198.18.11.2", 0, "error"), rec(27.5, "198.18.11.2", 0, "error"),
        rec(28, "eu2", 200, "miss"),
    };
    lab_failover_analyse(d, 4, "eu1", "198.18.11.2", 20, -1, &o);
    assert_true(fabs(o.failover_s - 8) < 1e-9);
    assert_true(fabs(o.last_dead_s - 7.5) < 1e-9);
    assert_true(o.return_s < 0);
    assert_int_equal(o.failed, 2);
    lab_failover_analyse(d, 0, "eu1", NULL, 20, -1, &o); /* empty log */
    assert_true(o.failover_s < 0 && isnan(o.hit_before));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topology), cmocka_unit_test(test_plan_and_bird), cmocka_unit_test(test_bird_reply),
        cmocka_unit_test(test_health_fsm), cmocka_unit_test(test_failover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
