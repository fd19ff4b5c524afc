/* Unit tests for dns/conf.c: the shipped examples load, and each kind of mistake is reported at
 * the right place ("name:line:col: what"). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/conf.h"

static void examples_load(void **s)
{
    const char *top = getenv("top_srcdir");
    char path[1024];
    struct cdns_conf c;
    cdn_conf_err_t err;
    snprintf(path, sizeof(path), "%s/dns/examples/bench.yaml", top ? top : ".");
    if (cdns_conf_load(path, &c, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(c.nlisten, 1);
    assert_int_equal(c.view->nzones, 1);
    assert_int_equal(c.view->nregions, 2);
    assert_int_equal(c.view->nedges, 2);
    assert_int_equal(c.view->set.rrl_rate, 0);
    assert_int_equal(c.view->set.hc_interval_ms, 2000);
    /* big: 30 TXT records of 70 bytes */
    const struct cdns_zone *z = &c.view->zones[0];
    uint8_t n[CDNS_NAME_MAX];
    cdns_name_from_text(n, "big.shop.test", NULL);
    const struct cdns_node *node = cdns_zone_find(z, n);
    assert_non_null(node);
    const struct cdns_rrset *txt = cdns_node_rrset(node, 16);
    assert_non_null(txt);
    assert_int_equal(txt->n, 30);
    assert_int_equal(txt->rd[0].len, 71);
    assert_int_equal(z->neg_ttl, 30);
    cdns_conf_free(&c);
    snprintf(path, sizeof(path), "%s/dns/examples/lab.yaml", top ? top : ".");
    if (cdns_conf_load(path, &c, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(c.nlisten, 2);
    assert_int_equal(c.workers, 2);
    assert_int_equal(c.view->fb_n4, 1);
    cdns_conf_free(&c);
}

static const char base[] =
    "listen: 127.0.0.1:5399\n"                                   /* 1 */
    "regions:\n"                                                 /* 2 */
    "  eu: {subnets: [127.0.1.0/24], distance: {us: 10}}\n"      /* 3 */
    "  us: {subnets: [127.0.2.0/24]}\n"                          /* 4 */
    "edges:\n"                                                   /* 5 */
    "  - {name: e1, region: eu, addresses: [127.0.20.1]}\n"      /* 6 */
    "zones:\n"                                                   /* 7 */
    "  - name: shop.test\n"                                      /* 8 */
    "    soa: \"ns1 hm 1 2 3 4 5\"\n"                            /* 9 */
    "    records: [\"www A 1.2.3.4\"]\n"                         /* 10 */
    "    cdn: [{name: img}]\n";                                  /* 11 */

/* Replaces the first occurrence of `from` in base with `to` and loads it. */
static int try(const char *from, const char *to, cdn_conf_err_t *err)
{
    char text[4096];
    const char *p = strstr(base, from);
    assert_non_null(p);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(p - base), base, to, p + strlen(from));
    struct cdns_conf c;
    int rc = cdns_conf_load_string("t.yaml", text, &c, err);
    if (rc == 0) cdns_conf_free(&c);
    return rc;
}

static void errors_have_positions(void **s)
{
    cdn_conf_err_t err;
    assert_int_equal(try("", "", &err), 0);
    struct { const char *from, *to, *want; } t[] = {
        {"listen:", "lisen:", "t.yaml:1:1: unknown key 'lisen'"},
        {"127.0.2.0/24", "127.0.2.1/24", "t.yaml:4:18: '127.0.2.1/24' has host bits"},
        {"us: 10", "ap: 10", "t.yaml:3:44: unknown region 'ap'"},
        {"region: eu", "region: ap", "t.yaml:6:24: unknown region 'ap'"},
        {"1.2.3.4", "1.2.3", "t.yaml:10:15: bad IPv4 address"},
        {"{name: img}", "{name: img, ttl: -1}", "t.yaml:11:28: "},
        {"{name: img}", "{nme: img}", "t.yaml:11:12: unknown key 'nme'"},
        {"    soa: \"ns1 hm 1 2 3 4 5\"\n", "", "no SOA"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (try(t[i].from, t[i].to, &err) != -1 || !strstr(err.msg, t[i].want))
            fail_msg("case %zu: got '%s', expected '%s'", i, err.msg, t[i].want);
    }
}

/* The TCP limits: defaults (docs/DNS.md), the keys, and their errors. */
static void tcp_limits(void **s)
{
    struct cdns_conf c;
    cdn_conf_err_t err;
    if (cdns_conf_load_string("t.yaml", base, &c, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(c.tcp_idle_ms, 10000);
    assert_int_equal(c.tcp_msg_ms, 2000);
    assert_int_equal(c.tcp_max_conns, 512);
    assert_int_equal(c.tcp_max_per_addr, 32);
    cdns_conf_free(&c);
    char text[4096];
    snprintf(text, sizeof(text), "%s%s", base,
             "tcp_message_timeout: 500ms\ntcp_max_connections: 64\ntcp_max_connections_per_address: 0\n");
    if (cdns_conf_load_string("t.yaml", text, &c, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(c.tcp_msg_ms, 500);
    assert_int_equal(c.tcp_max_conns, 64);
    assert_int_equal(c.tcp_max_per_addr, 0);
    cdns_conf_free(&c);
    struct { const char *line, *want; } t[] = {
        {"tcp_message_timeout: 0s\n", "t.yaml:12:22: expected a duration above 0"},
        {"tcp_message_timeout: soon\n", "t.yaml:12:22: "},
        {"tcp_max_connections_per_address: -1\n", "t.yaml:12:34: "},
        {"tcp_max_connection_per_address: 8\n", "t.yaml:12:1: unknown key"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        memset(&err, 0, sizeof(err));
        snprintf(text, sizeof(text), "%s%s", base, t[i].line);
        int rc = cdns_conf_load_string("t.yaml", text, &c, &err);
        if (rc == 0) cdns_conf_free(&c);
        if (rc != -1 || !strstr(err.msg, t[i].want))
            fail_msg("case %zu: got '%s', expected '%s'", i, err.msg, t[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(examples_load),
        cmocka_unit_test(errors_have_positions),
        cmocka_unit_test(tcp_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
