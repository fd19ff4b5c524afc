/* dns/msg.h - a DNS query as the server sees it, and its parser.
 *
 * gdns_query_parse() is the one place untrusted bytes are decoded. It decides, before any zone is
 * looked at, whether the message is dropped (too short for a header, or a response), refused with
 * FORMERR / NOTIMP / BADVERS, or answerable. Rules (RFC 1035, RFC 6891 for EDNS, RFC 7871 for
 * ECS; tests/integration/dns_protocol.sh checks each): QDCOUNT must be 1; a question cut
 * short, two OPT records, an OPT not owned by the root, or a bad ECS option are FORMERR; an
 * unknown opcode is NOTIMP; an EDNS version above 0 is BADVERS; the TC bit of a query is ignored. */
#ifndef GDNS_MSG_H
#define GDNS_MSG_H

#include <stddef.h>
#include <stdint.h>
#include "wire.h"

enum {
    GDNS_T_A = 1, GDNS_T_NS = 2, GDNS_T_CNAME = 5, GDNS_T_SOA = 6, GDNS_T_PTR = 12,
    GDNS_T_HINFO = 13, GDNS_T_MX = 15, GDNS_T_TXT = 16, GDNS_T_AAAA = 28, GDNS_T_OPT = 41,
    GDNS_T_IXFR = 251, GDNS_T_AXFR = 252, GDNS_T_ANY = 255,
};
enum { GDNS_C_IN = 1, GDNS_C_ANY = 255 };
enum {
    GDNS_RC_NOERROR = 0, GDNS_RC_FORMERR = 1, GDNS_RC_SERVFAIL = 2, GDNS_RC_NXDOMAIN = 3,
    GDNS_RC_NOTIMP = 4, GDNS_RC_REFUSED = 5, GDNS_RC_BADVERS = 16,
};
#define GDNS_OPT_ECS 8
#define GDNS_HDR_LEN 12

/* header flag bits (the 16-bit word after the ID) */
#define GDNS_F_QR 0x8000
#define GDNS_F_AA 0x0400
#define GDNS_F_TC 0x0200
#define GDNS_F_RD 0x0100
#define GDNS_F_RA 0x0080
#define GDNS_F_CD 0x0010

struct gdns_ecs {
    int present;
    uint16_t family;       /* 1 = IPv4, 2 = IPv6 */
    uint8_t source, scope; /* prefix lengths */
    uint8_t addr[16];      /* the address, bits beyond source are zero */
};

enum gdns_parse_result {
    GDNS_PARSE_OK,       /* answer it */
    GDNS_PARSE_DROP,     /* no reply at all */
    GDNS_PARSE_ERROR,    /* reply with q->rcode (FORMERR, NOTIMP, BADVERS), no answer */
};

struct gdns_query {
    uint16_t id, flags;
    int opcode;
    int has_question;              /* the question parsed (echo it in error replies) */
    uint8_t qname[GDNS_NAME_MAX];  /* as received: the client's case */
    uint8_t lname[GDNS_NAME_MAX];  /* lowercased, for lookups */
    size_t qname_len;
    uint16_t qtype, qclass;
    int edns;                      /* exactly one valid OPT was present */
    uint16_t udp_size;             /* the client's advertised size (>= 512), 512 without EDNS */
    uint8_t edns_version;
    struct gdns_ecs ecs;
    int rcode;                     /* for GDNS_PARSE_ERROR */
};

enum gdns_parse_result gdns_query_parse(const uint8_t *pkt, size_t len, struct gdns_query *q);

/* Parses one ECS option body (RFC 7871 rules). 0 or -1 (FORMERR). */
int gdns_ecs_parse(const uint8_t *p, size_t len, struct gdns_ecs *e);

#endif
