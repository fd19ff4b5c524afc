/* dns/msg.c - the query parser: untrusted bytes in, a cdns_query or an error verdict out.
 * Everything is read through the bounds-checked cursor; the error is checked after each section. */
#include "config.h"

#include "dns/msg.h"

int cdns_ecs_parse(const uint8_t *p, size_t len, struct cdns_ecs *e)
{
    cdns_wire_t w;
    cdns_wire_init(&w, p, len);
    memset(e, 0, sizeof(*e));
    e->family = cdns_wire_u16(&w);
    e->source = cdns_wire_u8(&w);
    e->scope = cdns_wire_u8(&w);
    if (w.err) return -1;
    unsigned max = e->family == 1 ? 32 : e->family == 2 ? 128 : 0;
    if (max == 0 || e->source > max) return -1;   /* unknown family, prefix too long */
    if (e->scope != 0) return -1;                 /* a query carries scope 0 */
    size_t alen = (e->source + 7u) / 8u;
    if (len - 4 != alen) return -1;               /* address must be exactly the prefix's bytes */
    cdns_wire_read(&w, e->addr, alen);
    if (alen && (e->source % 8)) {
        uint8_t mask = (uint8_t)(0xFF >> (e->source % 8));
        if (e->addr[alen - 1] & mask) return -1;  /* host bits beyond the source prefix */
    }
    e->present = 1;
    return 0;
}

/* Skips one resource record; for OPT, decodes it into q. Returns -1 for FORMERR. */
static int read_rr(cdns_wire_t *w, struct cdns_query *q, int in_additional, int *nopt)
{
    uint8_t name[CDNS_NAME_MAX];
    size_t nl = cdns_name_read(w, name, 1);
    uint16_t type = cdns_wire_u16(w);
    uint16_t cls = cdns_wire_u16(w);
    uint32_t ttl = cdns_wire_u32(w);
    uint16_t rdlen = cdns_wire_u16(w);
    if (w->err || cdns_wire_avail(w) < rdlen) return -1;
    const uint8_t *rd = w->base + w->pos;
    cdns_wire_skip(w, rdlen);
    if (type != CDNS_T_OPT) return 0;
    if (!in_additional || nl != 1 || ++*nopt > 1) return -1;  /* OPT: once, in additional, root owner */
    q->edns = 1;
    q->udp_size = cls < 512 ? 512 : cls;
    q->rcode = (int)(ttl >> 24);  /* extended rcode bits from a query are ignored */
    q->edns_version = (uint8_t)(ttl >> 16);
    cdns_wire_t o;
    cdns_wire_init(&o, rd, rdlen);
    while (cdns_wire_avail(&o) > 0) {
        uint16_t code = cdns_wire_u16(&o), olen = cdns_wire_u16(&o);
        if (o.err || cdns_wire_avail(&o) < olen) return -1;
        if (code == CDNS_OPT_ECS) {
            if (q->ecs.present) return -1;
            if (cdns_ecs_parse(o.base + o.pos, olen, &q->ecs) != 0) return -1;
        }
        cdns_wire_skip(&o, olen);
    }
    return 0;
}

enum cdns_parse_result cdns_query_parse(const uint8_t *pkt, size_t len, struct cdns_query *q)
{
    cdns_wire_t w;
    memset(q, 0, sizeof(*q));
    q->udp_size = 512;
    if (len < CDNS_HDR_LEN) return CDNS_PARSE_DROP;
    cdns_wire_init(&w, pkt, len);
    q->id = cdns_wire_u16(&w);
    q->flags = cdns_wire_u16(&w);
    uint16_t qd = cdns_wire_u16(&w), an = cdns_wire_u16(&w), ns = cdns_wire_u16(&w),
             ar = cdns_wire_u16(&w);
    if (q->flags & CDNS_F_QR) return CDNS_PARSE_DROP;  /* never answer a response */
    q->opcode = (q->flags >> 11) & 0xF;

    if (qd == 1) {
        q->qname_len = cdns_name_read(&w, q->qname, 0);  /* no pointers in a query's question */
        q->qtype = cdns_wire_u16(&w);
        q->qclass = cdns_wire_u16(&w);
        if (!w.err) {
            q->has_question = 1;
            cdns_name_lower(q->lname, q->qname);
        }
    }
    if (q->opcode != 0) { q->rcode = CDNS_RC_NOTIMP; return CDNS_PARSE_ERROR; }
    if (qd != 1 || !q->has_question) { q->rcode = CDNS_RC_FORMERR; return CDNS_PARSE_ERROR; }

    int nopt = 0;
    unsigned total = (unsigned)an + ns + ar;
    for (unsigned i = 0; i < total; i++) {
        if (read_rr(&w, q, i >= (unsigned)an + ns, &nopt) != 0) {
            q->edns = 0;  /* FORMERR replies carry no OPT */
            q->ecs.present = 0;
            q->rcode = CDNS_RC_FORMERR;
            return CDNS_PARSE_ERROR;
        }
    }
    q->rcode = 0;
    if (q->edns && q->edns_version > 0) { q->rcode = CDNS_RC_BADVERS; return CDNS_PARSE_ERROR; }
    return CDNS_PARSE_OK;
}
