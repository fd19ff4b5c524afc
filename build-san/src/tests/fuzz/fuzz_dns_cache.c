/* libFuzzer harness for cdn-dns's answer cache (dns/cache.c): differential. Any bytes are answered
 * by cdns_respond() and by cdns_respond_cached() (twice: a miss that stores, then maybe a hit);
 * the bytes and the result fields must be identical. The cache lives across inputs, so an entry
 * stored for one query is hit by later ones with another ID, flags, case or size limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/cache.h"

static struct cdns_view *view(void)
{
    static struct cdns_view *v;
    char err[256];
    if (v) return v;
    v = cdns_view_new();
    struct cdns_zone *z = cdns_view_add_zone(v, "shop.test", err, sizeof(err));
    const char *recs[] = {"@ SOA ns1 hostmaster 1 3600 600 86400 30", "@ NS ns1", "ns1 A 127.0.0.1",
                          "www 300 A 127.0.10.1", "alias CNAME www", "cdnalias CNAME img", "v6 AAAA ::1",
                          "mx MX 5 www", "t TXT \"a\" \"b\"", "a.b.c.d A 127.0.0.9"};
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        if (cdns_zone_add_text(v, z, recs[i], 60, err, sizeof(err)) != 0) abort();
    for (int i = 0; i < 12; i++)  /* ~ 900 bytes: over 512 (never cached) and over small limits */
        cdns_zone_add_text(v, z, "big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789\"", 60, err, sizeof(err));
    for (int i = 0; i < 4; i++)   /* ~ 330 bytes: cached, but over some amplification limits */
        cdns_zone_add_text(v, z, "mid TXT \"0123456789012345678901234567890123456789012345678901234567890123456789\"", 60, err, sizeof(err));
    int eu = cdns_view_add_region(v, "eu", err, sizeof(err)), us = cdns_view_add_region(v, "us", err, sizeof(err));
    cdns_view_add_subnet(v, eu, "127.0.1.0/24", err, sizeof(err));
    cdns_view_add_subnet(v, us, "10.2.0.0/16", err, sizeof(err));
    cdns_view_set_distance(v, eu, us, 10);
    const char *a[] = {"127.0.20.1", "::1"}, *b[] = {"127.0.20.2"};
    cdns_view_add_edge(v, "e1", eu, a, 2, NULL, err, sizeof(err));
    cdns_view_add_edge(v, "e2", us, b, 1, NULL, err, sizeof(err));
    struct cdns_cdn c = {.ttl = 30, .doubt_ttl = 5, .count = 1};
    cdns_zone_add_cdn(v, z, "img", &c, err, sizeof(err));
    if (cdns_view_finish(v, err, sizeof(err)) != 0) abort();
    return v;
}

static void same(const struct cdns_result *a, const struct cdns_result *b)
{
    if (a->rcode != b->rcode || a->truncated != b->truncated || a->aa != b->aa || a->qtype != b->qtype ||
        a->cdn != b->cdn || a->region != b->region || a->qend != b->qend)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cdns_cache cache;
    static uint8_t want[4096], got[4096];
    struct cdns_result rw, rg;
    for (int amp = 0; amp < 3; amp++) {
        const uint8_t src[3][4] = {{127, 0, 1, 9}, {10, 2, 0, 1}, {127, 0, 9, 9}};
        struct cdns_req rq = {.pkt = data, .len = size, .family = 1, .tcp = 0, .now_ms = 12345,
                              .amp_limit = amp == 0 ? 0 : (unsigned)(size * (amp == 1 ? 3 : 10))};
        memcpy(rq.addr, src[amp], 4);
        size_t cap = amp == 2 ? 4096 : 1232;
        size_t n = cdns_respond(view(), &rq, want, cap, &rw);
        for (int round = 0; round < 2; round++) {
            memset(got, 0xAA, sizeof(got));
            size_t m = cdns_respond_cached(&cache, view(), &rq, got, cap, &rg);
            if (m != n || memcmp(want, got, n) != 0) abort();
            same(&rw, &rg);
        }
    }
    return 0;
}
