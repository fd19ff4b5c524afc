/* dns/cache.h - precomputed UDP answers for names whose answer does not depend on the client.
 *
 * One cache per UDP thread (no locks). A query is "simple" when it has a plain header (opcode 0,
 * QDCOUNT 1, no answer/authority records), an uncompressed question ending the packet or followed
 * only by an OPT with version 0 and no options (so no ECS). For a simple query the response is a
 * function of (lowercased qname, qtype, qclass, EDNS present, view) plus the bytes we patch on a
 * hit: the ID, the RD and CD bits and the qname in the client's case. Only authoritative NOERROR /
 * NXDOMAIN answers that were not truncated and are not CDN answers (those depend on the client,
 * health and time) are stored; a hit is used only if it fits this query's size limit (EDNS size,
 * amplification guard), otherwise the full path runs. Everything else goes through cdns_respond().
 * Entries are keyed on the view's serial, so a reload never serves an old answer. */
#ifndef CDNS_CACHE_H
#define CDNS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "dns/answer.h"

#define CDNS_CACHE_SLOTS 256   /* direct-mapped */
#define CDNS_CACHE_RESP 512    /* larger answers are not cached */

struct cdns_cache_entry {
    uint64_t serial;           /* view serial; 0 = empty */
    uint32_t hash;
    uint16_t qtype, qclass;
    uint8_t edns, nlen, aa, rcode;
    uint16_t len;
    uint8_t lname[CDNS_NAME_MAX];
    uint8_t resp[CDNS_CACHE_RESP];  /* ID 0, RD and CD clear */
};

struct cdns_cache {
    uint64_t hits, misses;
    struct cdns_cache_entry e[CDNS_CACHE_SLOTS];
};

/* cdns_respond() for UDP queries (rq->tcp must be 0), answered from the cache when it can be and
 * stored in it when it should be. Same result, byte for byte, as cdns_respond(). */
size_t cdns_respond_cached(struct cdns_cache *c, const struct cdns_view *v, const struct cdns_req *rq,
                           uint8_t *out, size_t cap, struct cdns_result *res);

#endif
