/* dns/cache.c - precomputed answers for static names; the rules are in cache.h. The simple-query
 * check is deliberately narrower than the parser: anything it does not recognise takes the full
 * path, so the parser stays the one judge of malformed input. */
#include "config.h"

#include "dns/cache.h"

#include <string.h>

#include "cdn/http.h"

struct key {
    uint32_t hash;
    uint16_t qtype, qclass, udp_size;
    uint8_t edns, nlen;
    uint8_t lname[CDNS_NAME_MAX];
};

/* 1 if pkt is a simple query (see cache.h); fills k. */
static int simple(const uint8_t *p, size_t len, struct key *k)
{
    if (len < CDNS_HDR_LEN + 5) return 0;
    if ((p[2] & 0xF8) != 0) return 0;  /* QR clear, opcode 0 */
    if (p[4] != 0 || p[5] != 1 || p[6] | p[7] | p[8] | p[9] || p[10] != 0 || p[11] > 1) return 0;
    size_t pos = CDNS_HDR_LEN;
    for (;;) {
        if (pos >= len) return 0;
        uint8_t l = p[pos];
        if (l == 0) break;
        if (l > CDNS_LABEL_MAX || pos + 1 + l > len || pos + 1 + l - CDNS_HDR_LEN >= CDNS_NAME_MAX) return 0;
        k->lname[pos - CDNS_HDR_LEN] = l;
        for (size_t i = pos + 1; i <= pos + l; i++) {
            uint8_t c = p[i];
            if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
            k->lname[i - CDNS_HDR_LEN] = c;
        }
        pos += 1 + l;
    }
    k->lname[pos - CDNS_HDR_LEN] = 0;
    k->nlen = (uint8_t)(pos - CDNS_HDR_LEN + 1);
    pos++;
    if (len - pos < 4) return 0;
    k->qtype = (uint16_t)(p[pos] << 8 | p[pos + 1]);
    k->qclass = (uint16_t)(p[pos + 2] << 8 | p[pos + 3]);
    pos += 4;
    k->edns = p[11];
    k->udp_size = 512;
    if (k->edns) {
        /* root owner, type OPT, class = size, TTL = ext rcode (ignored), version 0, flags; no options */
        if (len - pos != 11 || p[pos] != 0 || p[pos + 1] != 0 || p[pos + 2] != CDNS_T_OPT) return 0;
        if (p[pos + 6] != 0 || p[pos + 9] != 0 || p[pos + 10] != 0) return 0;
        uint16_t sz = (uint16_t)(p[pos + 3] << 8 | p[pos + 4]);
        k->udp_size = sz < 512 ? 512 : sz;
    } else if (pos != len) {
        return 0;
    }
    /* the process's random hash key: nobody can pick names that evict each other's slot */
    uint8_t b[CDNS_NAME_MAX + 5];
    memcpy(b, k->lname, k->nlen);
    b[k->nlen] = (uint8_t)(k->qtype >> 8);
    b[k->nlen + 1] = (uint8_t)k->qtype;
    b[k->nlen + 2] = (uint8_t)(k->qclass >> 8);
    b[k->nlen + 3] = (uint8_t)k->qclass;
    b[k->nlen + 4] = k->edns;
    k->hash = (uint32_t)cdn_hash(b, (size_t)k->nlen + 5);
    return 1;
}

/* The size limit cdns_respond() applies to this UDP query. */
static size_t limit_of(const struct cdns_view *v, const struct cdns_req *rq, const struct key *k, size_t cap)
{
    size_t l = k->udp_size;
    if (k->edns && l > v->set.udp_max) l = v->set.udp_max;
    if (l < 512) l = 512;
    if (rq->amp_limit && rq->amp_limit < l) l = rq->amp_limit;
    return l < cap ? l : cap;
}

size_t cdns_respond_cached(struct cdns_cache *c, const struct cdns_view *v, const struct cdns_req *rq,
                           uint8_t *out, size_t cap, struct cdns_result *res)
{
    struct key k;
    if (rq->tcp || cap < 512 || !simple(rq->pkt, rq->len, &k)) return cdns_respond(v, rq, out, cap, res);
    struct cdns_cache_entry *e = &c->e[k.hash % CDNS_CACHE_SLOTS];
    if (e->serial == v->serial && e->hash == k.hash && e->qtype == k.qtype && e->qclass == k.qclass &&
        e->edns == k.edns && e->nlen == k.nlen && !memcmp(e->lname, k.lname, k.nlen) &&
        e->len <= limit_of(v, rq, &k, cap)) {
        c->hits++;
        memcpy(out, e->resp, e->len);
        out[0] = rq->pkt[0];
        out[1] = rq->pkt[1];
        out[2] |= rq->pkt[2] & (CDNS_F_RD >> 8);
        out[3] |= rq->pkt[3] & CDNS_F_CD;
        memcpy(out + CDNS_HDR_LEN, rq->pkt + CDNS_HDR_LEN, k.nlen);  /* the client's case */
        memset(res, 0, sizeof(*res));
        res->rcode = e->rcode;
        res->aa = e->aa;
        res->qtype = k.qtype;
        res->region = -1;
        res->qend = CDNS_HDR_LEN + k.nlen + 4u;
        return e->len;
    }
    c->misses++;
    size_t n = cdns_respond(v, rq, out, cap, res);
    if (n == 0 || n > CDNS_CACHE_RESP || res->cdn || res->truncated || !res->aa ||
        (res->rcode != CDNS_RC_NOERROR && res->rcode != CDNS_RC_NXDOMAIN))
        return n;
    *e = (struct cdns_cache_entry){.serial = v->serial, .hash = k.hash, .qtype = k.qtype, .qclass = k.qclass,
                                   .edns = k.edns, .nlen = k.nlen, .aa = (uint8_t)res->aa,
                                   .rcode = (uint8_t)res->rcode, .len = (uint16_t)n};
    memcpy(e->lname, k.lname, k.nlen);
    memcpy(e->resp, out, n);
    e->resp[0] = e->resp[1] = 0;
    e->resp[2] &= (uint8_t)~(CDNS_F_RD >> 8);
    e->resp[3] &= (uint8_t)~CDNS_F_CD;
    return n;
}
