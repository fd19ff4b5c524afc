/* edge/http/cc.h - Cache-Control style directive lists (RFC 9111 section 5.2, RFC 9213).
 *
 * Owns: the parsed form of one Cache-Control / CDN-Cache-Control value. Pure: no allocation, no
 * clock. Parsing is total: a malformed element is skipped (and counted in `errors`), so a garbage
 * header can never make the cache more permissive than the well-formed part says. */
#ifndef EDGE_CC_H
#define EDGE_CC_H

#include <stddef.h>
#include <stdint.h>

enum {
    EDGE_CC_NO_STORE = 1 << 0,
    EDGE_CC_NO_CACHE = 1 << 1,       /* unqualified: revalidate every time */
    EDGE_CC_PRIVATE = 1 << 2,        /* unqualified: a shared cache does not store */
    EDGE_CC_PUBLIC = 1 << 3,
    EDGE_CC_MUST_REVALIDATE = 1 << 4,
    EDGE_CC_PROXY_REVALIDATE = 1 << 5,
    EDGE_CC_NO_TRANSFORM = 1 << 6,
    EDGE_CC_ONLY_IF_CACHED = 1 << 7,
    EDGE_CC_MUST_UNDERSTAND = 1 << 8,
    EDGE_CC_IMMUTABLE = 1 << 9,
    EDGE_CC_MAX_STALE_ANY = 1 << 10, /* request max-stale without a value */
    /* The qualified forms (RFC 9111 5.2.2.4, 5.2.2.7): private="f" / no-cache="f" name fields that
     * a shared cache does not store (private) or may not send without revalidating (no-cache);
     * the rest of the response is stored and reused. The names are in edge_cc.fields. A list too
     * long for it falls back to the unqualified directive, which is stricter. */
    EDGE_CC_PRIVATE_FIELDS = 1 << 11,
    EDGE_CC_NO_CACHE_FIELDS = 1 << 12,
};

/* RFC 9111 1.2.2: a delta-seconds too large to represent is taken as 2^31. */
#define EDGE_DELTA_MAX 2147483648LL

struct edge_cc {
    unsigned flags;
    /* -1 when absent. An invalid or conflicting value is 0 (RFC 9111 4.2.1: treat as stale). */
    int64_t max_age, s_maxage, max_stale, min_fresh, swr, sie;
    unsigned errors;   /* malformed elements skipped */
    unsigned ndirs;    /* well-formed directives seen (known or not) */
    char fields[160];  /* lowercase field names of the qualified private/no-cache, each ending in ',' */
};

void edge_cc_init(struct edge_cc *cc);
/* Adds the directives of one field line to cc (call once per header line; they combine).
 * strict: the syntax of RFC 9213 targeted fields (a Structured Fields dictionary: lowercase keys,
 * integer/token/string values, parameters ignored); any error makes the whole call fail with -1
 * and leaves cc untouched, because RFC 9213 says an invalid targeted field is ignored.
 * Non-strict returns 0, or -1 if some element was malformed (the rest is still applied). */
int edge_cc_parse(struct edge_cc *cc, const char *s, size_t len, int strict);

/* Does a qualified private="..." or no-cache="..." in cc name this field (case-insensitive)? */
int edge_cc_lists_field(const struct edge_cc *cc, const char *name, size_t len);

/* Parses a delta-seconds (1*DIGIT, capped at EDGE_DELTA_MAX). -1 if not one. */
int64_t edge_delta_seconds(const char *s, size_t len);

#endif
