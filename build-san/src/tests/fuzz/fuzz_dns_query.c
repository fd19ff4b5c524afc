/* libFuzzer harness for the cdn-dns query parser and answer builder: any bytes are parsed as a
 * query and answered from a small zone (static names, a CDN name with ECS) into bounded UDP and
 * TCP buffers; the response must stay within its limit and parse back as a DNS header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/answer.h"

static struct cdns_view *view(void)
{
    static struct cdns_view *v;
    char err[256];
    if (v) return v;
    v = cdns_view_new();
    struct cdns_zone *z = cdns_view_add_zone(v, "shop.test", err, sizeof(err));
    const char *recs[] = {"@ SOA ns1 hostmaster 1 3600 600 86400 30", "@ NS ns1", "ns1 A 127.0.0.1",
                          "www 300 A 127.0.10.1", "alias CNAME www", "loop1 CNAME loop2", "loop2 CNAME loop1",
                          "v6 AAAA ::1", "mx MX 5 www", "t TXT \"a\" \"b\""};
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        if (cdns_zone_add_text(v, z, recs[i], 60, err, sizeof(err)) != 0) abort();
    for (int i = 0; i < 30; i++)
        cdns_zone_add_text(v, z, "big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789\"", 60, err, sizeof(err));
    int eu = cdns_view_add_region(v, "eu", err, sizeof(err)), us = cdns_view_add_region(v, "us", err, sizeof(err));
    cdns_view_add_subnet(v, eu, "127.0.1.0/24", err, sizeof(err));
    cdns_view_add_subnet(v, us, "10.2.0.0/16", err, sizeof(err));
    cdns_view_add_subnet(v, us, "2001:db8::/32", err, sizeof(err));
    cdns_view_set_distance(v, eu, us, 10);
    const char *a[] = {"127.0.20.1", "::1"}, *b[] = {"127.0.20.2"};
    cdns_view_add_edge(v, "e1", eu, a, 2, "http://127.0.20.1/healthz", err, sizeof(err));
    cdns_view_add_edge(v, "e2", us, b, 1, NULL, err, sizeof(err));
    struct cdns_cdn c = {.ttl = 30, .doubt_ttl = 5, .count = 2};
    cdns_zone_add_cdn(v, z, "img", &c, err, sizeof(err));
    if (cdns_view_finish(v, err, sizeof(err)) != 0) abort();
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[65535];
    struct cdns_result res;
    struct cdns_query q;
    cdns_query_parse(data, size, &q);
    for (int tcp = 0; tcp < 2; tcp++) {
        struct cdns_req rq = {.pkt = data, .len = size, .family = 1, .addr = {127, 0, 1, 9}, .tcp = tcp,
                              .amp_limit = tcp ? 0 : (unsigned)(size * 3), .now_ms = 12345};
        size_t cap = tcp ? sizeof(out) : 1232;
        size_t n = cdns_respond(view(), &rq, out, cap, &res);
        if (n > cap) abort();
        if (n && n < 12) abort();
        if (n) {
            size_t s = cdns_slip(out, n, &res);
            if (s > n) abort();
        }
    }
    return 0;
}
