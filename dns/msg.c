/* dns/msg.c - the query parser: untrusted bytes in, a gdns_query or an error verdict out.
 * Everything is read through the bounds-checked cursor; the error is checked after each section. */
#include "msg.h"

int gdns_ecs_parse(const uint8_t *p, size_t len, struct gdns_ecs *e)
{
    gdns_wire_t w;
    gdns_wire_init(&w, p, len);
    memset(e, 0, sizeof(*e));
    e->family = gdns_wire_u16(&w);
    e->source = gdns_wire_u8(&w);
    e->scope = gdns_wire_u8(&w);
    if (w.err) return -1;
    unsigned max = e->family == 1 ? 32 : e->family == 2 ? 128 : 0;
    if (max == 0 || e->source > max) return -1;   /* unknown family, prefix too long */
    if (e->scope != 0) return -1;                 /* a query carries scope 0 */
    size_t alen = (e->source + 7u) / 8u;
    if (len - 4 != alen) return -1;               /* address must be exactly the prefix's bytes */
    gdns_wire_read(&w, e->addr, alen);
    if (alen && (e->source % 8)) {
        uint8_t mask = (uint8_t)(0xFF >> (e->source % 8));
        if (e->addr[alen - 1] & mask) return -1;  /* host bits beyond the source prefix */
    }
    e->present = 1;
    return 0;
}

/* Skips one resource record; for OPT, decodes it into q. Returns -1 for FORMERR. */
static int read_rr(gdns_wire_t *w, struct gdns_query *q, int in_additional, int *nopt)
{
    uint8_t name[GDNS_NAME_MAX];
    size_t nl = gdns_name_read(w, name, 1);
    uint16_t type = gdns_wire_u16(w);
    uint16_t cls = gdns_wire_u16(w);
    uint32_t ttl = gdns_wire_u32(w);
    uint16_t rdlen = gdns_wire_u16(w);
    if (w->err || gdns_wire_avail(w) < rdlen) return -1;
    const uint8_t *rd = w->base + w->pos;
    gdns_wire_skip(w, rdlen);
    if (type != GDNS_T_OPT) return 0;
    if (!in_additional || nl != 1 || ++*nopt > 1) return -1;  /* OPT: once, in additional, root owner */
    q->edns = 1;
    q->udp_size = cls < 512 ? 512 : cls;
    q->rcode = (int)(ttl >> 24);  /* extended rcode bits from a query are ignored */
    q->edns_version = (uint8_t)(ttl >> 16);
    gdns_wire_t o;
    gdns_wire_init(&o, rd, rdlen);
    while (gdns_wire_avail(&o) > 0) {
        uint16_t code = gdns_wire_u16(&o), olen = gdns_wire_u16(&o);
        if (o.err || gdns_wire_avail(&o) < olen) return -1;
        if (code == GDNS_OPT_ECS) {
            if (q->ecs.present) return -1;
            if (gdns_ecs_parse(o.base + o.pos, olen, &q->ecs) != 0) return -1;
        }
        gdns_wire_skip(&o, olen);
    }
    return 0;
}

enum gdns_parse_result gdns_query_parse(const uint8_t *pkt, size_t len, struct gdns_query *q)
{
    gdns_wire_t w;
    memset(q, 0, sizeof(*q));
    q->udp_size = 512;
    if (len < GDNS_HDR_LEN) return GDNS_PARSE_DROP;
    gdns_wire_init(&w, pkt, len);
    q->id = gdns_wire_u16(&w);
    q->flags = gdns_wire_u16(&w);
    uint16_t qd = gdns_wire_u16(&w), an = gdns_wire_u16(&w), ns = gdns_wire_u16(&w),
             ar = gdns_wire_u16(&w);
    if (q->flags & GDNS_F_QR) return GDNS_PARSE_DROP;  /* never answer a response */
    q->opcode = (q->flags >> 11) & 0xF;

    if (qd == 1) {
        q->qname_len = gdns_name_read(&w, q->qname, 0);  /* no pointers in a query's question */
        q->qtype = gdns_wire_u16(&w);
        q->qclass = gdns_wire_u16(&w);
        if (!w.err) {
            q->has_question = 1;
            gdns_name_lower(q->lname, q->qname);
        }
    }
    if (q->opcode != 0) { q->rcode = GDNS_RC_NOTIMP; return GDNS_PARSE_ERROR; }
    if (qd != 1 || !q->has_question) { q->rcode = GDNS_RC_FORMERR; return GDNS_PARSE_ERROR; }

    int nopt = 0;
    unsigned total = (unsigned)an + ns + ar;
    for (unsigned i = 0; i < total; i++) {
        if (read_rr(&w, q, i >= (unsigned)an + ns, &nopt) != 0) {
            q->edns = 0;  /* FORMERR replies carry no OPT */
            q->ecs.present = 0;
            q->rcode = GDNS_RC_FORMERR;
            return GDNS_PARSE_ERROR;
        }
    }
    q->rcode = 0;
    if (q->edns && q->edns_version > 0) { q->rcode = GDNS_RC_BADVERS; return GDNS_PARSE_ERROR; }
    return GDNS_PARSE_OK;
}
