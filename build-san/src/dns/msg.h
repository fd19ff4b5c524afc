/* dns/msg.h - a DNS query as the server sees it, and its parser.
 *
 * cdns_query_parse() is the one place untrusted bytes are decoded. It decides, before any zone is
 * looked at, whether the message is dropped (too short for a header, or a response), refused with
 * FORMERR / NOTIMP / BADVERS, or answerable. Rules (RFC 1035, RFC 6891 for EDNS, RFC 7871 for
 * ECS; tests/integration/dns_protocol.sh checks each): QDCOUNT must be 1; a question cut
 * short, two OPT records, an OPT not owned by the root, or a bad ECS option are FORMERR; an
 * unknown opcode is NOTIMP; an EDNS version above 0 is BADVERS; the TC bit of a query is ignored. */
#ifndef CDNS_MSG_H
#define CDNS_MSG_H

#include <stddef.h>
#include <stdint.h>
#include "dns/wire.h"

enum {
    CDNS_T_A = 1, CDNS_T_NS = 2, CDNS_T_CNAME = 5, CDNS_T_SOA = 6, CDNS_T_PTR = 12,
    CDNS_T_HINFO = 13, CDNS_T_MX = 15, CDNS_T_TXT = 16, CDNS_T_AAAA = 28, CDNS_T_OPT = 41,
    CDNS_T_IXFR = 251, CDNS_T_AXFR = 252, CDNS_T_ANY = 255,
};
enum { CDNS_C_IN = 1, CDNS_C_ANY = 255 };
enum {
    CDNS_RC_NOERROR = 0, CDNS_RC_FORMERR = 1, CDNS_RC_SERVFAIL = 2, CDNS_RC_NXDOMAIN = 3,
    CDNS_RC_NOTIMP = 4, CDNS_RC_REFUSED = 5, CDNS_RC_BADVERS = 16,
};
#define CDNS_OPT_ECS 8
#define CDNS_HDR_LEN 12

/* header flag bits (the 16-bit word after the ID) */
#define CDNS_F_QR 0x8000
#define CDNS_F_AA 0x0400
#define CDNS_F_TC 0x0200
#define CDNS_F_RD 0x0100
#define CDNS_F_RA 0x0080
#define CDNS_F_CD 0x0010

struct cdns_ecs {
    int present;
    uint16_t family;       /* 1 = IPv4, 2 = IPv6 */
    uint8_t source, scope; /* prefix lengths */
    uint8_t addr[16];      /* the address, bits beyond source are zero */
};

enum cdns_parse_result {
    CDNS_PARSE_OK,       /* answer it */
    CDNS_PARSE_DROP,     /* no reply at all */
    CDNS_PARSE_ERROR,    /* reply with q->rcode (FORMERR, NOTIMP, BADVERS), no answer */
};

struct cdns_query {
    uint16_t id, flags;
    int opcode;
    int has_question;              /* the question parsed (echo it in error replies) */
    uint8_t qname[CDNS_NAME_MAX];  /* as received: the client's case */
    uint8_t lname[CDNS_NAME_MAX];  /* lowercased, for lookups */
    size_t qname_len;
    uint16_t qtype, qclass;
    int edns;                      /* exactly one valid OPT was present */
    uint16_t udp_size;             /* the client's advertised size (>= 512), 512 without EDNS */
    uint8_t edns_version;
    struct cdns_ecs ecs;
    int rcode;                     /* for CDNS_PARSE_ERROR */
};

enum cdns_parse_result cdns_query_parse(const uint8_t *pkt, size_t len, struct cdns_query *q);

/* Parses one ECS option body (RFC 7871 rules). 0 or -1 (FORMERR). */
int cdns_ecs_parse(const uint8_t *p, size_t len, struct cdns_ecs *e);

#endif
