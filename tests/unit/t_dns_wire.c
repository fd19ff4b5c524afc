/* Unit tests for dns/wire.c, dns/msg.c, dns/answer.c and dns/cache.c: the cursor, names and
 * compression, the query parser's FORMERR/NOTIMP/BADVERS rules, whole responses compared byte for
 * byte, and cached answers equal to fresh ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns/answer.h"
#include "dns/cache.h"
#include "dns/msg.h"
#include "dns/view.h"
#include "dns/wire.h"

/* --- helpers --- */
struct qopt {
    uint16_t id, flags, qdcount;
    int edns, two_opts;
    uint16_t udp;
    uint8_t version;
    int ecs;                 /* append an ECS option */
    uint16_t ecs_family;
    uint8_t ecs_source, ecs_scope;
    const uint8_t *ecs_addr;
    size_t ecs_alen;
};

static size_t build_query(uint8_t *buf, const char *name, uint16_t type, const struct qopt *o)
{
    cdns_wire_t w;
    uint8_t wn[CDNS_NAME_MAX];
    cdns_wire_init(&w, buf, 512);
    cdns_wire_put_u16(&w, o->id);
    cdns_wire_put_u16(&w, o->flags);
    cdns_wire_put_u16(&w, o->qdcount ? o->qdcount : 1);
    cdns_wire_put_u16(&w, 0);
    cdns_wire_put_u16(&w, 0);
    cdns_wire_put_u16(&w, (uint16_t)(o->edns ? (o->two_opts ? 2 : 1) : 0));
    for (int i = 0; i < (o->qdcount ? o->qdcount : 1); i++) {
        assert_true(cdns_name_from_text(wn, name, NULL) > 0);
        cdns_name_write(&w, NULL, wn);
        cdns_wire_put_u16(&w, type);
        cdns_wire_put_u16(&w, 1);
    }
    for (int k = 0; k < (o->edns ? (o->two_opts ? 2 : 1) : 0); k++) {
        cdns_wire_put_u8(&w, 0);
        cdns_wire_put_u16(&w, CDNS_T_OPT);
        cdns_wire_put_u16(&w, o->udp ? o->udp : 4096);
        cdns_wire_put_u32(&w, (uint32_t)o->version << 16);
        if (o->ecs) {
            cdns_wire_put_u16(&w, (uint16_t)(8 + o->ecs_alen));
            cdns_wire_put_u16(&w, CDNS_OPT_ECS);
            cdns_wire_put_u16(&w, (uint16_t)(4 + o->ecs_alen));
            cdns_wire_put_u16(&w, o->ecs_family);
            cdns_wire_put_u8(&w, o->ecs_source);
            cdns_wire_put_u8(&w, o->ecs_scope);
            cdns_wire_put(&w, o->ecs_addr, o->ecs_alen);
        } else {
            cdns_wire_put_u16(&w, 0);
        }
    }
    assert_false(w.err);
    return w.pos;
}

static struct cdns_view *test_view(void)
{
    char err[256];
    struct cdns_view *v = cdns_view_new();
    struct cdns_zone *z = cdns_view_add_zone(v, "shop.test", err, sizeof(err));
    assert_non_null(z);
    const char *recs[] = {
        "@ SOA ns1.shop.test. hostmaster.shop.test. 1 3600 600 86400 30",
        "@ NS ns1",
        "ns1 A 127.0.0.1",
        "www 300 A 127.0.10.1",
        "alias CNAME www",
        "out CNAME www.example.org.",
        "dangling CNAME nothere",
        "a.b.deep A 127.0.0.9",
        "v6 AAAA 2001:db8::1",
        "mx MX 10 ns1",
    };
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        assert_int_equal(cdns_zone_add_text(v, z, recs[i], 3600, err, sizeof(err)), 0);
    char txt[128];
    for (int i = 0; i < 30; i++) {
        snprintf(txt, sizeof(txt), "big TXT \"record %02d padding padding padding padding padding padding padding\"", i);
        assert_int_equal(cdns_zone_add_text(v, z, txt, 3600, err, sizeof(err)), 0);
    }
    int eu = cdns_view_add_region(v, "eu", err, sizeof(err)), us = cdns_view_add_region(v, "us", err, sizeof(err));
    assert_int_equal(cdns_view_add_subnet(v, eu, "127.0.1.0/24", err, sizeof(err)), 0);
    assert_int_equal(cdns_view_add_subnet(v, us, "127.0.2.0/24", err, sizeof(err)), 0);
    assert_int_equal(cdns_view_set_distance(v, eu, us, 100), 0);
    const char *a1[] = {"127.0.20.1"}, *a2[] = {"127.0.20.2"};
    assert_int_equal(cdns_view_add_edge(v, "e1", eu, a1, 1, NULL, err, sizeof(err)), 0);
    assert_int_equal(cdns_view_add_edge(v, "e2", us, a2, 1, NULL, err, sizeof(err)), 1);
    struct cdns_cdn cdn = {.ttl = 30, .doubt_ttl = 5, .count = 1};
    assert_int_equal(cdns_zone_add_cdn(v, z, "img", &cdn, err, sizeof(err)), 0);
    v->default_region = eu;
    assert_int_equal(cdns_view_finish(v, err, sizeof(err)), 0);
    return v;
}

static struct cdns_view *V;

static int setup(void **s) { V = test_view(); return 0; }
static int teardown(void **s) { cdns_view_free(V); return 0; }

static size_t respond(const uint8_t *q, size_t qlen, int tcp, uint8_t *out, size_t cap, struct cdns_result *res)
{
    struct cdns_req rq = {.pkt = q, .len = qlen, .family = 1, .addr = {127, 0, 0, 1}, .tcp = tcp, .now_ms = 1000};
    return cdns_respond(V, &rq, out, cap, res);
}

static uint16_t u16at(const uint8_t *p, size_t off) { return (uint16_t)(p[off] << 8 | p[off + 1]); }

/* --- cursor and names --- */
static void cursor_sticky_error(void **s)
{
    uint8_t b[3] = {1, 2, 3};
    cdns_wire_t w;
    cdns_wire_init(&w, b, sizeof(b));
    assert_int_equal(cdns_wire_u16(&w), 0x0102);
    assert_int_equal(cdns_wire_u16(&w), 0);  /* overrun */
    assert_true(w.err);
    assert_int_equal(cdns_wire_u8(&w), 0);   /* stays failed even though a byte is left */
    assert_int_equal(cdns_wire_avail(&w), 0);
}

static void name_read_pointers(void **s)
{
    /* "abc" at 0, then a pointer to it at 5; a forward pointer and a self loop fail */
    uint8_t m[] = {3, 'a', 'b', 'c', 0, 1, 'x', 0xC0, 0x00, 0xC0, 0x09};
    uint8_t n[CDNS_NAME_MAX];
    cdns_wire_t w;
    cdns_wire_init(&w, m, sizeof(m));
    w.pos = 5;
    assert_int_equal(cdns_name_read(&w, n, 1), 7);
    assert_memory_equal(n, "\1x\3abc\0", 7);
    assert_int_equal(w.pos, 9);
    cdns_wire_init(&w, m, sizeof(m));
    w.pos = 9;  /* points at itself */
    assert_int_equal(cdns_name_read(&w, n, 1), 0);
    assert_true(w.err);
    cdns_wire_init(&w, m, sizeof(m));
    w.pos = 5;
    assert_int_equal(cdns_name_read(&w, n, 0), 0);  /* pointers not allowed */
}

static void name_text_roundtrip(void **s)
{
    uint8_t n[CDNS_NAME_MAX], origin[CDNS_NAME_MAX];
    char buf[1024];
    assert_int_equal(cdns_name_from_text(origin, "shop.test.", NULL), 11);
    assert_int_equal(cdns_name_from_text(n, "www", origin), 15);
    assert_string_equal(cdns_name_to_text(n, buf, sizeof(buf)), "www.shop.test.");
    assert_int_equal(cdns_name_from_text(n, "@", origin), 11);
    assert_int_equal(cdns_name_from_text(n, "a..b", NULL), 0);
    char lab[70];
    memset(lab, 'a', 64);
    lab[64] = 0;
    assert_int_equal(cdns_name_from_text(n, lab, NULL), 0);  /* label > 63 */
    assert_true(cdns_name_is_sub((const uint8_t *)"\3www\4SHOP\4test", origin));
    assert_false(cdns_name_is_sub((const uint8_t *)"\4test", origin));
}

static void compression_reuses_suffix(void **s)
{
    uint8_t buf[128] = {0}, a[CDNS_NAME_MAX], b[CDNS_NAME_MAX];
    cdns_wire_t w;
    struct cdns_compr c = {.n = 0};
    cdns_wire_init(&w, buf, sizeof(buf));
    cdns_name_from_text(a, "WWW.Shop.Test", NULL);
    cdns_name_from_text(b, "ns1.shop.test", NULL);
    cdns_name_write(&w, &c, a);
    cdns_name_write(&w, &c, b);
    cdns_name_write(&w, &c, a);
    static const uint8_t want[] = {3, 'W', 'W', 'W', 4, 'S', 'h', 'o', 'p', 4, 'T', 'e', 's', 't', 0,
                                   3, 'n', 's', '1', 0xC0, 4,  /* ns1 + pointer to "Shop.Test" */
                                   0xC0, 0};                  /* the whole name again */
    assert_int_equal(w.pos, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}

/* --- parser rules --- */
static enum cdns_parse_result parse(const uint8_t *q, size_t len, struct cdns_query *out)
{
    return cdns_query_parse(q, len, out);
}

static void parse_plain_and_edns(void **s)
{
    uint8_t q[512];
    struct cdns_query pq;
    size_t n = build_query(q, "WwW.shop.test", CDNS_T_A, &(struct qopt){.id = 7, .flags = 0x0100});
    assert_int_equal(parse(q, n, &pq), CDNS_PARSE_OK);
    assert_int_equal(pq.id, 7);
    assert_int_equal(pq.qtype, CDNS_T_A);
    assert_false(pq.edns);
    assert_int_equal(pq.udp_size, 512);
    assert_memory_equal(pq.qname, "\3WwW", 4);
    assert_memory_equal(pq.lname, "\3www", 4);
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.edns = 1, .udp = 1400});
    assert_int_equal(parse(q, n, &pq), CDNS_PARSE_OK);
    assert_true(pq.edns);
    assert_int_equal(pq.udp_size, 1400);
}

static void parse_formerr_cases(void **s)
{
    uint8_t q[512];
    struct cdns_query pq;
    static const uint8_t a4[4] = {127, 0, 1, 0}, host[4] = {127, 0, 1, 1}, a3[3] = {127, 0, 1};
    struct { const char *what; struct qopt o; int rcode; } cases[] = {
        {"qdcount 2", {.qdcount = 2}, CDNS_RC_FORMERR},
        {"two OPT", {.edns = 1, .two_opts = 1}, CDNS_RC_FORMERR},
        {"ecs host bits", {.edns = 1, .ecs = 1, .ecs_family = 1, .ecs_source = 24, .ecs_addr = host, .ecs_alen = 4}, CDNS_RC_FORMERR},
        {"ecs host bits in the last byte", {.edns = 1, .ecs = 1, .ecs_family = 1, .ecs_source = 23, .ecs_addr = a3, .ecs_alen = 3}, CDNS_RC_FORMERR},
        {"ecs prefix > 32", {.edns = 1, .ecs = 1, .ecs_family = 1, .ecs_source = 33, .ecs_addr = a4, .ecs_alen = 4}, CDNS_RC_FORMERR},
        {"ecs family 3", {.edns = 1, .ecs = 1, .ecs_family = 3, .ecs_source = 24, .ecs_addr = a3, .ecs_alen = 3}, CDNS_RC_FORMERR},
        {"ecs scope in query", {.edns = 1, .ecs = 1, .ecs_family = 1, .ecs_source = 24, .ecs_scope = 24, .ecs_addr = a3, .ecs_alen = 3}, CDNS_RC_FORMERR},
        {"ecs address too long", {.edns = 1, .ecs = 1, .ecs_family = 1, .ecs_source = 24, .ecs_addr = a4, .ecs_alen = 4}, CDNS_RC_FORMERR},
        {"opcode 2", {.flags = 2 << 11}, CDNS_RC_NOTIMP},
        {"edns version 1", {.edns = 1, .version = 1}, CDNS_RC_BADVERS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = build_query(q, "www.shop.test", CDNS_T_A, &cases[i].o);
        enum cdns_parse_result r = parse(q, n, &pq);
        if (r != CDNS_PARSE_ERROR || pq.rcode != cases[i].rcode)
            fail_msg("%s: result %d rcode %d, expected rcode %d", cases[i].what, r, pq.rcode, cases[i].rcode);
    }
    /* a good ECS: 127.0.1.0/24 */
    size_t n = build_query(q, "www.shop.test", CDNS_T_A,
                           &(struct qopt){.edns = 1, .ecs = 1, .ecs_family = 1, .ecs_source = 24, .ecs_addr = a3, .ecs_alen = 3});
    assert_int_equal(parse(q, n, &pq), CDNS_PARSE_OK);
    assert_true(pq.ecs.present);
    assert_int_equal(pq.ecs.source, 24);
    /* cut short: every prefix of a valid query shorter than the question is FORMERR or dropped */
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){0});
    for (size_t l = 0; l < n; l++) {
        enum cdns_parse_result r = parse(q, l, &pq);
        if (l < 12) assert_int_equal(r, CDNS_PARSE_DROP);
        else { assert_int_equal(r, CDNS_PARSE_ERROR); assert_int_equal(pq.rcode, CDNS_RC_FORMERR); }
    }
    /* an OPT cut short is FORMERR too */
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.edns = 1});
    assert_int_equal(parse(q, n - 1, &pq), CDNS_PARSE_ERROR);
    /* a response is never answered; TC in a query is ignored */
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.flags = CDNS_F_QR});
    assert_int_equal(parse(q, n, &pq), CDNS_PARSE_DROP);
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.flags = CDNS_F_TC});
    assert_int_equal(parse(q, n, &pq), CDNS_PARSE_OK);
    /* qdcount 0 */
    static const uint8_t empty[12] = {0, 1, 0, 0};
    assert_int_equal(parse(empty, 12, &pq), CDNS_PARSE_ERROR);
    assert_int_equal(pq.rcode, CDNS_RC_FORMERR);
    /* a compression pointer in the question */
    static const uint8_t ptrq[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1};
    assert_int_equal(parse(ptrq, sizeof(ptrq), &pq), CDNS_PARSE_ERROR);
}

/* --- whole responses, byte for byte --- */
static void answer_a_exact_bytes(void **s)
{
    static const uint8_t q[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                3, 'W', 'w', 'W', 4, 's', 'h', 'o', 'p', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    static const uint8_t want[] = {0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0,
                                   3, 'W', 'w', 'W', 4, 's', 'h', 'o', 'p', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
                                   0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x01, 0x2C, 0, 4, 127, 0, 10, 1};
    uint8_t out[512];
    struct cdns_result res;
    size_t n = respond(q, sizeof(q), 0, out, sizeof(out), &res);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
}

static void answer_ns_compressed(void **s)
{
    static const uint8_t q[] = {0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                                4, 's', 'h', 'o', 'p', 4, 't', 'e', 's', 't', 0, 0, 2, 0, 1};
    static const uint8_t want_rr[] = {0xC0, 0x0C, 0, 2, 0, 1, 0, 0, 0x0E, 0x10, 0, 6, 3, 'n', 's', '1', 0xC0, 0x0C};
    uint8_t out[512];
    struct cdns_result res;
    size_t n = respond(q, sizeof(q), 0, out, sizeof(out), &res);
    assert_int_equal(n, sizeof(q) + sizeof(want_rr));
    assert_memory_equal(out + sizeof(q), want_rr, sizeof(want_rr));
    assert_int_equal(out[2], 0x84);  /* QR AA, RD not asked so not set */
    assert_int_equal(out[3], 0x00);  /* RA clear, NOERROR */
}

static void answer_negative_with_soa(void **s)
{
    uint8_t q[512], out[512];
    struct cdns_result res;
    /* NXDOMAIN */
    size_t n = build_query(q, "nope.shop.test", CDNS_T_A, &(struct qopt){.id = 1});
    size_t r = respond(q, n, 0, out, sizeof(out), &res);
    assert_true(r > n);
    assert_int_equal(out[3] & 0xF, CDNS_RC_NXDOMAIN);
    assert_int_equal(out[2] & 0x04, 0x04);  /* AA */
    assert_int_equal(u16at(out, 6), 0);
    assert_int_equal(u16at(out, 8), 1);
    /* the SOA: owner pointer to "shop.test" inside the question (offset 12 + 5), type 6, TTL 30 */
    assert_int_equal(u16at(out, n), 0xC011);
    assert_int_equal(u16at(out, n + 2), CDNS_T_SOA);
    assert_int_equal(u16at(out, n + 6), 0);
    assert_int_equal(u16at(out, n + 8), 30);
    /* NODATA */
    n = build_query(q, "www.shop.test", CDNS_T_TXT, &(struct qopt){0});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[3] & 0xF, 0);
    assert_int_equal(u16at(out, 6), 0);
    assert_int_equal(u16at(out, 8), 1);
    /* an empty non-terminal is NODATA, not NXDOMAIN */
    n = build_query(q, "b.deep.shop.test", CDNS_T_A, &(struct qopt){0});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[3] & 0xF, 0);
    assert_int_equal(u16at(out, 8), 1);
    /* a CNAME to a missing name: the CNAME, then NXDOMAIN with the SOA */
    n = build_query(q, "dangling.shop.test", CDNS_T_A, &(struct qopt){0});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[3] & 0xF, CDNS_RC_NXDOMAIN);
    assert_int_equal(u16at(out, 6), 1);
    assert_int_equal(u16at(out, 8), 1);
}

static void answer_refused_and_axfr(void **s)
{
    uint8_t q[512], out[512];
    struct cdns_result res;
    size_t n = build_query(q, "www.example.org", CDNS_T_A, &(struct qopt){.flags = CDNS_F_RD});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[2], 0x81);  /* QR RD, not AA */
    assert_int_equal(out[3], CDNS_RC_REFUSED);
    n = build_query(q, "shop.test", CDNS_T_AXFR, &(struct qopt){0});
    respond(q, n, 1, out, 65535, &res);
    assert_int_equal(out[3] & 0xF, CDNS_RC_REFUSED);
    assert_int_equal(u16at(out, 6), 0);
}

static void answer_cname_chase_and_any(void **s)
{
    uint8_t q[512], out[512];
    struct cdns_result res;
    size_t n = build_query(q, "alias.shop.test", CDNS_T_A, &(struct qopt){0});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(u16at(out, 6), 2);  /* CNAME + A */
    n = build_query(q, "out.shop.test", CDNS_T_A, &(struct qopt){0});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(u16at(out, 6), 1);  /* out of zone: only the CNAME */
    assert_int_equal(out[3] & 0xF, 0);
    n = build_query(q, "shop.test", CDNS_T_ANY, &(struct qopt){0});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[3] & 0xF, 0);
    assert_int_equal(u16at(out, 6), 1);  /* one RRset only (RFC 8482) */
}

static void answer_truncation(void **s)
{
    uint8_t q[512], out[65535];
    struct cdns_result res;
    size_t n = build_query(q, "big.shop.test", CDNS_T_TXT, &(struct qopt){0});
    size_t r = respond(q, n, 0, out, sizeof(out), &res);
    assert_true(out[2] & 0x02);  /* TC */
    assert_int_equal(u16at(out, 6), 0);
    assert_int_equal(r, n);  /* header + question */
    /* EDNS 4096: our cap is 1232, still too small; the OPT is kept */
    n = build_query(q, "big.shop.test", CDNS_T_TXT, &(struct qopt){.edns = 1, .udp = 4096});
    r = respond(q, n, 0, out, sizeof(out), &res);
    assert_true(out[2] & 0x02);
    assert_int_equal(u16at(out, 10), 1);
    assert_int_equal(u16at(out, r - 11 + 3), 1232);  /* advertised size */
    /* TCP: everything, with compressed owners (each TXT: pointer 2 + 10 + length 1 + 65 bytes) */
    r = respond(q, n, 1, out, sizeof(out), &res);
    assert_false(out[2] & 0x02);
    assert_int_equal(u16at(out, 6), 30);
    assert_int_equal(r, n + 30 * (2 + 10 + 1 + 65));
    /* a small answer with TC set in the query is answered normally */
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.flags = CDNS_F_TC});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[2] & 0x02, 0);
    assert_int_equal(u16at(out, 6), 1);
}

static void answer_amplification_guard(void **s)
{
    uint8_t q[512], out[2048];
    struct cdns_result res;
    size_t n = build_query(q, "ns1.shop.test", CDNS_T_A, &(struct qopt){.edns = 1});
    struct cdns_req rq = {.pkt = q, .len = n, .family = 1, .addr = {127, 0, 0, 1}, .amp_limit = (unsigned)n};
    size_t r = cdns_respond(V, &rq, out, sizeof(out), &res);
    assert_true(r <= n);
    assert_true(out[2] & 0x02);
    rq.amp_limit = (unsigned)(4 * n);
    r = cdns_respond(V, &rq, out, sizeof(out), &res);
    assert_false(out[2] & 0x02);
    assert_int_equal(u16at(out, 6), 1);
}

static void answer_badvers_formerr_notimp(void **s)
{
    uint8_t q[512], out[512];
    struct cdns_result res;
    size_t n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.edns = 1, .version = 1, .id = 5});
    size_t r = respond(q, n, 0, out, sizeof(out), &res);
    /* header rcode 0, OPT with extended rcode 1 (BADVERS = 16), version 0, no answer */
    assert_int_equal(out[3] & 0xF, 0);
    assert_int_equal(u16at(out, 6), 0);
    assert_int_equal(u16at(out, 10), 1);
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xD0, 1, 0, 0, 0, 0, 0};
    assert_int_equal(r, n);  /* same size as the query: question + an 11-byte OPT */
    assert_memory_equal(out + r - 11, opt, 11);
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.edns = 1, .two_opts = 1});
    r = respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[3] & 0xF, CDNS_RC_FORMERR);
    assert_int_equal(u16at(out, 4), 1);  /* question echoed */
    assert_int_equal(u16at(out, 10), 0);
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.flags = 5 << 11});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[3] & 0xF, CDNS_RC_NOTIMP);
    assert_int_equal((out[2] >> 3) & 0xF, 5);  /* opcode echoed */
    static const uint8_t shortq[5] = {1, 2, 3, 4, 5};
    assert_int_equal(respond(shortq, 5, 0, out, sizeof(out), &res), 0);
}

static size_t ecs_query(uint8_t *q, const char *name, uint8_t a, uint8_t b, uint8_t c, uint8_t src)
{
    uint8_t addr[4] = {a, b, c, 0};
    return build_query(q, name, CDNS_T_A, &(struct qopt){.edns = 1, .ecs = 1, .ecs_family = 1,
                                                          .ecs_source = src, .ecs_addr = addr,
                                                          .ecs_alen = (src + 7u) / 8u});
}

static void answer_cdn_ecs_scope(void **s)
{
    uint8_t q[512], out[512];
    struct cdns_result res;
    static const uint8_t e1[4] = {127, 0, 20, 1}, e2[4] = {127, 0, 20, 2};
    size_t n = ecs_query(q, "img.shop.test", 127, 0, 2, 24);
    size_t r = respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(u16at(out, 6), 1);
    assert_memory_equal(out + res.qend + 12, e2, 4);   /* answer sits between question and OPT */
    assert_int_equal(out[r - 4 - 3 + 2], 24);   /* ECS: family(2) source(1) scope(1) addr(3) */
    assert_int_equal(u16at(out, res.qend + 6 + 2), 30);  /* TTL 30 (not probed: never in doubt) */
    n = ecs_query(q, "img.shop.test", 127, 0, 1, 24);
    respond(q, n, 0, out, sizeof(out), &res);
    assert_memory_equal(out + res.qend + 12, e1, 4);
    assert_int_equal(res.region, 0);
    /* unknown subnet: default region eu, scope says how many bits decided that */
    n = ecs_query(q, "img.shop.test", 10, 9, 0, 16);
    r = respond(q, n, 0, out, sizeof(out), &res);
    assert_memory_equal(out + res.qend + 12, e1, 4);
    assert_int_equal(out[r - 2 - 1], 2);  /* 10 = 00001010 and 127 = 01111111 part at bit 1 */
    /* static names: scope 0 */
    n = ecs_query(q, "www.shop.test", 127, 0, 2, 24);
    r = respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[r - 3 - 1], 0);
    /* without ECS, the source address decides: 127.0.0.1 is in no coverage zone -> eu */
    n = build_query(q, "img.shop.test", CDNS_T_A, &(struct qopt){0});
    struct cdns_req rq = {.pkt = q, .len = n, .family = 1, .addr = {127, 0, 2, 5}};
    cdns_respond(V, &rq, out, sizeof(out), &res);
    assert_memory_equal(out + res.qend + 12, e2, 4);
    /* AAAA for a CDN name without IPv6 edges: NODATA with SOA */
    n = build_query(q, "img.shop.test", CDNS_T_AAAA, &(struct qopt){0});
    respond(q, n, 0, out, sizeof(out), &res);
    assert_int_equal(out[3] & 0xF, 0);
    assert_int_equal(u16at(out, 6), 0);
    assert_int_equal(u16at(out, 8), 1);
}

static void slip_keeps_question(void **s)
{
    uint8_t q[512], out[512];
    struct cdns_result res;
    size_t n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){0});
    size_t r = respond(q, n, 0, out, sizeof(out), &res);
    r = cdns_slip(out, r, &res);
    assert_int_equal(r, n);
    assert_true(out[2] & 0x02);
    assert_int_equal(u16at(out, 6), 0);
}

/* The cache gives the same bytes as cdns_respond, hits only what it may, and keys on the view. */
static size_t cached(struct cdns_cache *c, const struct cdns_view *v, const uint8_t *q, size_t qlen, unsigned amp,
                     uint8_t *out, struct cdns_result *res)
{
    struct cdns_req rq = {.pkt = q, .len = qlen, .family = 1, .addr = {127, 0, 1, 1}, .now_ms = 1000, .amp_limit = amp};
    uint8_t want[1232];
    struct cdns_result wr;
    size_t wn = cdns_respond(v, &rq, want, sizeof(want), &wr);
    size_t n = cdns_respond_cached(c, v, &rq, out, 1232, res);
    assert_int_equal(n, wn);
    assert_memory_equal(out, want, n);
    assert_int_equal(res->rcode, wr.rcode);
    assert_int_equal(res->qend, wr.qend);
    return n;
}

static void cache_hits_static_only(void **s)
{
    static struct cdns_cache c;
    uint8_t q[512], out[1232];
    struct cdns_result res;
    size_t n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.id = 1, .flags = CDNS_F_RD});
    cached(&c, V, q, n, 0, out, &res);
    assert_int_equal(c.misses, 1);
    /* another ID, RD clear, CD set, another case: a hit with those patched */
    n = build_query(q, "WWW.Shop.test", CDNS_T_A, &(struct qopt){.id = 0xBEEF, .flags = CDNS_F_CD});
    cached(&c, V, q, n, 0, out, &res);
    assert_int_equal(c.hits, 1);
    assert_memory_equal(out + 13, "WWW", 3);
    /* EDNS is part of the key; an ECS query always takes the full path */
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){.edns = 1, .udp = 1232});
    cached(&c, V, q, n, 0, out, &res);
    cached(&c, V, q, n, 0, out, &res);
    assert_int_equal(c.hits, 2);
    uint64_t h = c.hits, m = c.misses;
    n = ecs_query(q, "www.shop.test", 127, 0, 2, 24);
    cached(&c, V, q, n, 0, out, &res);
    cached(&c, V, q, n, 0, out, &res);
    assert_int_equal(c.hits, h);
    assert_int_equal(c.misses, m);
    /* NXDOMAIN is cached; CDN names never are */
    n = build_query(q, "nope.shop.test", CDNS_T_A, &(struct qopt){0});
    cached(&c, V, q, n, 0, out, &res);
    cached(&c, V, q, n, 0, out, &res);
    assert_int_equal(c.hits, h + 1);
    n = build_query(q, "img.shop.test", CDNS_T_A, &(struct qopt){0});
    cached(&c, V, q, n, 0, out, &res);
    cached(&c, V, q, n, 0, out, &res);
    assert_int_equal(c.hits, h + 1);
    assert_int_equal(res.cdn, 1);
    /* a cached answer larger than this query's amplification limit: full path, truncated */
    n = build_query(q, "mx.shop.test", CDNS_T_MX, &(struct qopt){0});
    size_t full = cached(&c, V, q, n, 0, out, &res);
    h = c.hits;
    size_t small = cached(&c, V, q, n, (unsigned)full - 1, out, &res);
    assert_int_equal(c.hits, h);
    assert_true(small < full);
    assert_true(res.truncated);
    /* a new view (a reload) never sees the old entries */
    struct cdns_view *v2 = test_view();
    n = build_query(q, "www.shop.test", CDNS_T_A, &(struct qopt){0});
    h = c.hits;
    cached(&c, v2, q, n, 0, out, &res);
    assert_int_equal(c.hits, h);
    cdns_view_free(v2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cursor_sticky_error),
        cmocka_unit_test(name_read_pointers),
        cmocka_unit_test(name_text_roundtrip),
        cmocka_unit_test(compression_reuses_suffix),
        cmocka_unit_test(parse_plain_and_edns),
        cmocka_unit_test(parse_formerr_cases),
        cmocka_unit_test(answer_a_exact_bytes),
        cmocka_unit_test(answer_ns_compressed),
        cmocka_unit_test(answer_negative_with_soa),
        cmocka_unit_test(answer_refused_and_axfr),
        cmocka_unit_test(answer_cname_chase_and_any),
        cmocka_unit_test(answer_truncation),
        cmocka_unit_test(answer_amplification_guard),
        cmocka_unit_test(answer_badvers_formerr_notimp),
        cmocka_unit_test(answer_cdn_ecs_scope),
        cmocka_unit_test(slip_keeps_question),
        cmocka_unit_test(cache_hits_static_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
