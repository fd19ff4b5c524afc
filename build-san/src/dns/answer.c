/* dns/answer.c - the authoritative answer: lookup plan first (which records go in which section),
 * then one pass that writes them with name compression into a buffer capped at the transport's
 * limit; if they do not fit, the records are dropped and TC is set (the OPT always fits, space for
 * it is held back). */
#include "config.h"

#include "dns/answer.h"

#include <stdatomic.h>

#define MAX_RRS 512
#define MAX_CHASE 8

struct rr {
    const uint8_t *owner;  /* lowercased wire name; compression points it at the question */
    uint16_t type;
    uint32_t ttl;
    const uint8_t *rd;
    uint16_t rdlen;
};

struct plan {
    struct rr an[MAX_RRS];
    int nan;
    struct rr ns[4];
    int nns;
    int overflow;          /* more records than MAX_RRS: send truncated */
};

static void add(struct plan *p, const uint8_t *owner, uint16_t type, uint32_t ttl, const uint8_t *rd,
                uint16_t rdlen)
{
    if (p->nan == MAX_RRS) { p->overflow = 1; return; }
    p->an[p->nan++] = (struct rr){owner, type, ttl, rd, rdlen};
}

static void add_set(struct plan *p, const uint8_t *owner, const struct cdns_rrset *r)
{
    for (unsigned i = 0; i < r->n; i++) add(p, owner, r->type, r->ttl, r->rd[i].data, r->rd[i].len);
}

static void add_soa(struct plan *p, const struct cdns_zone *z)
{
    p->ns[0] = (struct rr){z->apex, CDNS_T_SOA, z->neg_ttl, z->soa->rd[0].data, z->soa->rd[0].len};
    p->nns = 1;
}

/* Writes RDATA; names inside the well-known types are compressed (RFC 3597 section 4). */
static void put_rdata(cdns_wire_t *w, struct cdns_compr *c, const struct rr *r)
{
    cdns_wire_t in;
    uint8_t name[CDNS_NAME_MAX];
    cdns_wire_init(&in, r->rd, r->rdlen);
    switch (r->type) {
    case CDNS_T_NS: case CDNS_T_CNAME: case CDNS_T_PTR:
        cdns_name_read(&in, name, 0);
        cdns_name_write(w, c, name);
        break;
    case CDNS_T_MX:
        cdns_wire_put_u16(w, cdns_wire_u16(&in));
        cdns_name_read(&in, name, 0);
        cdns_name_write(w, c, name);
        break;
    case CDNS_T_SOA:
        cdns_name_read(&in, name, 0);
        cdns_name_write(w, c, name);
        cdns_name_read(&in, name, 0);
        cdns_name_write(w, c, name);
        cdns_wire_put(w, r->rd + in.pos, r->rdlen - in.pos);
        break;
    default:
        cdns_wire_put(w, r->rd, r->rdlen);
    }
}

static void put_rr(cdns_wire_t *w, struct cdns_compr *c, const struct rr *r)
{
    cdns_name_write(w, c, r->owner);
    cdns_wire_put_u16(w, r->type);
    cdns_wire_put_u16(w, CDNS_C_IN);
    cdns_wire_put_u32(w, r->ttl);
    size_t at = w->pos;
    cdns_wire_put_u16(w, 0);
    put_rdata(w, c, r);
    if (!w->err) cdns_wire_patch_u16(w, at, (uint16_t)(w->pos - at - 2));
}

static size_t opt_size(const struct cdns_query *q)
{
    if (!q->edns) return 0;
    return 11 + (q->ecs.present ? 4 + 4 + (q->ecs.source + 7u) / 8u : 0);
}

static void put_opt(cdns_wire_t *w, const struct cdns_view *v, const struct cdns_query *q, int rcode,
                    unsigned scope)
{
    cdns_wire_put_u8(w, 0);
    cdns_wire_put_u16(w, CDNS_T_OPT);
    cdns_wire_put_u16(w, (uint16_t)v->set.udp_max);
    cdns_wire_put_u32(w, (uint32_t)(rcode >> 4) << 24);  /* version 0, DO clear: no DNSSEC here */
    if (!q->ecs.present) { cdns_wire_put_u16(w, 0); return; }
    size_t alen = (q->ecs.source + 7u) / 8u;
    cdns_wire_put_u16(w, (uint16_t)(4 + 4 + alen));
    cdns_wire_put_u16(w, CDNS_OPT_ECS);
    cdns_wire_put_u16(w, (uint16_t)(4 + alen));
    cdns_wire_put_u16(w, q->ecs.family);
    cdns_wire_put_u8(w, q->ecs.source);
    cdns_wire_put_u8(w, (uint8_t)scope);
    cdns_wire_put(w, q->ecs.addr, alen);
}

/* The A/AAAA records of a CDN name for this client. */
static void cdn_answer(const struct cdns_view *v, const struct cdns_req *rq, const struct cdns_query *q,
                       const struct cdns_node *n, uint16_t type, struct plan *p, struct cdns_result *res,
                       unsigned *scope)
{
    int fam;
    const uint8_t *addr;
    unsigned bits;
    if (q->ecs.present) { fam = q->ecs.family; addr = q->ecs.addr; bits = q->ecs.source; }
    else { fam = rq->family; addr = rq->addr; bits = fam == 1 ? 32 : 128; }
    int region = fam ? cdns_geo_lookup(v, fam, addr, bits, scope) : -1;
    if (region < 0) region = v->default_region;
    struct cdns_health h[256];
    size_t ne = v->nedges < 256 ? v->nedges : 256;
    for (size_t i = 0; i < ne; i++)
        cdns_health_unpack(atomic_load_explicit(&v->health[i], memory_order_relaxed), &h[i]);
    struct cdns_pick pk;
    int family = type == CDNS_T_AAAA ? 2 : 1;
    cdns_select(v, n->cdn, region, family, h, rq->now_ms, &pk);
    res->cdn = 1;
    res->region = region;
    res->fallback = pk.fallback;
    res->npick = pk.n;
    for (int i = 0; i < pk.n; i++) res->edge[i] = pk.edge[i];
    int fbn = family == 1 ? v->fb_n4 : v->fb_n6;
    if (pk.fallback && fbn) {
        for (int i = 0; i < fbn; i++)
            add(p, n->name, type, pk.ttl, family == 1 ? v->fb4[i] : v->fb6[i], family == 1 ? 4 : 16);
        return;
    }
    for (int i = 0; i < pk.n; i++) {
        const struct cdns_edge *e = &v->edges[pk.edge[i]];
        int na = family == 1 ? e->n4 : e->n6;
        for (int k = 0; k < na; k++)
            add(p, n->name, type, pk.ttl, family == 1 ? e->v4[k] : e->v6[k], family == 1 ? 4 : 16);
    }
}

/* Fills the plan; returns the rcode. */
static int lookup(const struct cdns_view *v, const struct cdns_req *rq, const struct cdns_query *q,
                  const struct cdns_zone *z, struct plan *p, struct cdns_result *res, unsigned *scope)
{
    const uint8_t *cur = q->lname;
    uint16_t qt = q->qtype;
    for (int hop = 0; hop <= MAX_CHASE; hop++) {
        const struct cdns_node *n = cdns_zone_find(z, cur);
        if (!n) { add_soa(p, z); return CDNS_RC_NXDOMAIN; }
        const struct cdns_rrset *cn = cdns_node_rrset(n, CDNS_T_CNAME);
        if (cn && qt != CDNS_T_CNAME) {
            add_set(p, n->name, cn);
            if (qt == CDNS_T_ANY) return CDNS_RC_NOERROR;  /* RFC 8482: one RRset */
            const uint8_t *target = cn->rd[0].data;
            if (!cdns_name_is_sub(target, z->apex)) return CDNS_RC_NOERROR;  /* the client chases */
            cur = target;
            continue;
        }
        if (n->cdn && (qt == CDNS_T_A || qt == CDNS_T_AAAA || qt == CDNS_T_ANY)) {
            cdn_answer(v, rq, q, n, qt == CDNS_T_AAAA ? CDNS_T_AAAA : CDNS_T_A, p, res, scope);
            if (p->nan == 0 && qt == CDNS_T_ANY)
                cdn_answer(v, rq, q, n, CDNS_T_AAAA, p, res, scope);
            if (p->nan == 0) add_soa(p, z);
            return CDNS_RC_NOERROR;
        }
        const struct cdns_rrset *r = NULL;
        if (qt == CDNS_T_ANY) r = n->rrsets;  /* RFC 8482: a single RRset, the first one */
        else r = cdns_node_rrset(n, qt);
        if (!r) { add_soa(p, z); return CDNS_RC_NOERROR; }  /* NODATA */
        add_set(p, n->name, r);
        return CDNS_RC_NOERROR;
    }
    return CDNS_RC_NOERROR;  /* a CNAME chain longer than we follow: what we have */
}

size_t cdns_respond(const struct cdns_view *v, const struct cdns_req *rq, uint8_t *out, size_t cap,
                    struct cdns_result *res)
{
    struct cdns_query q;
    memset(res, 0, sizeof(*res));
    res->region = -1;
    enum cdns_parse_result pr = cdns_query_parse(rq->pkt, rq->len, &q);
    if (pr == CDNS_PARSE_DROP || cap < 512) { res->rcode = -1; return 0; }
    res->qtype = q.qtype;

    size_t limit = cap;
    if (!rq->tcp) {
        size_t l = q.edns ? q.udp_size : 512;
        if (q.edns && l > v->set.udp_max) l = v->set.udp_max;
        if (l < 512) l = 512;
        if (rq->amp_limit && rq->amp_limit < l) l = rq->amp_limit;
        if (l < limit) limit = l;
    } else if (limit > 65535) {
        limit = 65535;
    }

    struct plan p;
    p.nan = p.nns = p.overflow = 0;
    int rcode = q.rcode, aa = 0;
    unsigned scope = 0;
    if (pr == CDNS_PARSE_OK) {
        const struct cdns_zone *z = NULL;
        if (q.qclass != CDNS_C_IN && q.qclass != CDNS_C_ANY) rcode = CDNS_RC_REFUSED;
        else if (q.qtype == CDNS_T_AXFR || q.qtype == CDNS_T_IXFR) rcode = CDNS_RC_REFUSED;
        else if (!(z = cdns_view_find_zone(v, q.lname))) rcode = CDNS_RC_REFUSED;
        else { aa = 1; rcode = lookup(v, rq, &q, z, &p, res, &scope); }
    }
    res->rcode = rcode;
    res->aa = aa;

    cdns_wire_t w;
    struct cdns_compr c = {.n = 0};
    cdns_wire_init(&w, out, limit);
    uint16_t flags = CDNS_F_QR | (uint16_t)(q.opcode << 11) | (q.flags & (CDNS_F_RD | CDNS_F_CD)) |
                     (aa ? CDNS_F_AA : 0) | (uint16_t)(rcode & 0xF);
    cdns_wire_put_u16(&w, q.id);
    cdns_wire_put_u16(&w, flags);
    cdns_wire_put_u16(&w, q.has_question ? 1 : 0);
    cdns_wire_put_u16(&w, 0);
    cdns_wire_put_u16(&w, 0);
    cdns_wire_put_u16(&w, 0);
    if (q.has_question) {
        cdns_name_write(&w, NULL, q.qname);  /* as received: the client's case */
        cdns_compr_add(&c, &w, CDNS_HDR_LEN);
        cdns_wire_put_u16(&w, q.qtype);
        cdns_wire_put_u16(&w, q.qclass);
    }
    if (w.err) { res->rcode = -1; return 0; }  /* cannot happen with cap >= 512 */
    size_t qend = w.pos;
    res->qend = q.has_question ? qend : 0;
    size_t optsz = opt_size(&q);
    w.len = limit - optsz;

    int nan = 0, nns = 0, tc = p.overflow;
    for (int i = 0; i < p.nan && !tc; i++) { put_rr(&w, &c, &p.an[i]); if (w.err) tc = 1; else nan++; }
    for (int i = 0; i < p.nns && !tc; i++) { put_rr(&w, &c, &p.ns[i]); if (w.err) tc = 1; else nns++; }
    if (tc) {
        /* nothing partial: the client retries over TCP */
        w.pos = qend;
        w.err = 0;
        nan = nns = 0;
        out[2] |= CDNS_F_TC >> 8;
        res->truncated = 1;
    }
    w.len = limit;
    int nar = 0;
    if (q.edns) { put_opt(&w, v, &q, rcode, scope); nar = 1; }
    if (w.err) { res->rcode = -1; return 0; }
    cdns_wire_patch_u16(&w, 6, (uint16_t)nan);
    cdns_wire_patch_u16(&w, 8, (uint16_t)nns);
    cdns_wire_patch_u16(&w, 10, (uint16_t)nar);
    return w.pos;
}

size_t cdns_slip(uint8_t *resp, size_t len, const struct cdns_result *res)
{
    size_t end = res->qend ? res->qend : CDNS_HDR_LEN;
    if (len < end) return len;
    resp[2] |= CDNS_F_TC >> 8;
    memset(resp + 6, 0, 6);
    return end;
}
