/* dns/answer.h - one query in, one response out: the authoritative logic of cdn-dns.
 *
 * cdns_respond() is a pure function of (view, health words, query bytes, client address,
 * transport, now): no I/O, no allocation, bounded by the output buffer. It parses with
 * cdns_query_parse, finds the zone (REFUSED outside ours), chases CNAMEs inside the zone, answers
 * CDN names with cdns_select, puts the SOA in the authority section of NXDOMAIN/NODATA answers,
 * echoes ECS with the scope the answer really depended on, and truncates (TC=1, no records but the
 * OPT) when the answer does not fit the transport's limit. */
#ifndef CDNS_ANSWER_H
#define CDNS_ANSWER_H

#include <stddef.h>
#include <stdint.h>
#include "dns/msg.h"
#include "dns/view.h"

struct cdns_req {
    const uint8_t *pkt;
    size_t len;
    int family;            /* client source address: 1 = IPv4, 2 = IPv6, 0 = unknown */
    uint8_t addr[16];
    int tcp;
    unsigned amp_limit;    /* UDP, unknown client: at most this many bytes (0 = no guard) */
    uint64_t now_ms;
};

struct cdns_result {
    int rcode;             /* -1: dropped */
    int truncated;
    int aa;
    uint16_t qtype;
    int cdn;               /* a CDN name was answered */
    int region;            /* -1 if none */
    int fallback;
    int npick;
    int edge[CDNS_MAX_PICK];
    size_t qend;           /* offset just past the question in the response (0 = no question) */
};

/* Returns the response length (0 = send nothing). cap should be >= 512 (65535 for TCP). */
size_t cdns_respond(const struct cdns_view *v, const struct cdns_req *rq, uint8_t *out, size_t cap,
                    struct cdns_result *res);

/* Turns a response into a "slip" for rate limiting: header and question only, TC=1. */
size_t cdns_slip(uint8_t *resp, size_t len, const struct cdns_result *res);

#endif
