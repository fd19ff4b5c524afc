/* edge/http/freshness.h - RFC 9111 decisions for a shared cache, as pure functions of headers and `now`.
 *
 * Owns: storability (section 3), freshness lifetime (4.2.1, 4.2.2 heuristics), Age (4.2.3),
 * and whether a stored response may answer a request (4.2.4, 5.2.1 request directives, RFC 5861
 * stale-while-revalidate / stale-if-error), with RFC 9213 targeted fields (CDN-Cache-Control and a
 * configurable edge-specific one) taking precedence over Cache-Control and Expires.
 * No clock is read here: callers pass times in seconds since the epoch. */
#ifndef EDGE_FRESHNESS_H
#define EDGE_FRESHNESS_H

#include <stddef.h>
#include <stdint.h>

#include "edge/http/cc.h"

/* A header as seen by the pure code: not NUL-terminated, names case-insensitive. */
struct edge_hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Index of the first header named name at or after from, or -1. */
int edge_hdr_find(const struct edge_hdr *h, size_t n, const char *name, size_t from);
/* Is token (case-insensitive) an element of the comma list in any header named name? */
int edge_hdr_has_token(const struct edge_hdr *h, size_t n, const char *name, const char *token);
/* Hop-by-hop: the fixed list (CDN_HDR_HOP in cdn/http.h: Connection, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-*) or a name listed in a Connection header of h. Such headers are neither stored nor
 * forwarded (RFC 9110 7.6.1). */
int edge_hdr_is_hop(const struct edge_hdr *h, size_t n, const char *name, size_t name_len);

/* The next four are the edge's names for lib/http.c's (cdn_etag_match_weak, cdn_http_trim_ows,
 * cdn_http_date_parse, cdn_http_date_fmt), kept so that callers with an edge_hdr stay short.
 * Does the entity-tag list (If-None-Match, or one ETag) name etag? Weak comparison (RFC 9110
 * 13.1.2: W/ prefixes ignored); "*" names any; etag NULL never matches. */
int edge_etag_match(const char *list, size_t ll, const struct edge_hdr *etag);
/* Strips optional whitespace (SP, HTAB) from both ends of the value (*v, *len). */
void edge_trim_ows(const char **v, size_t *len);
/* HTTP-date (IMF-fixdate, RFC 850, asctime). 0 with *t set, or -1. */
int edge_http_date_parse(const char *s, size_t len, int64_t *t);
/* IMF-fixdate into buf (at least 30 bytes); returns buf. */
char *edge_http_date_fmt(int64_t t, char *buf);
/* The Date to send with response headers h, as IMF-fixdate in out (30 bytes): the first Date
 * verbatim when it is one, reformatted when it is a valid obsolete HTTP-date; otherwise fallback
 * (RFC 9110 6.6.1: a cache adds the time it received the response), or nothing when fallback < 0.
 * Returns 1 if out was set, else 0. */
int edge_date_pick(const struct edge_hdr *h, size_t n, int64_t fallback, char *out);

struct edge_fresh_conf {
    const char *edge_cc_name;  /* e.g. "Edge-Cache-Control"; NULL: only CDN-Cache-Control */
    double heuristic_fraction; /* of (Date - Last-Modified); 0.1 */
    int64_t heuristic_max;     /* cap in seconds; 86400 */
    int store_set_cookie;      /* store Set-Cookie responses without public/s-maxage (no) */
};
void edge_fresh_conf_default(struct edge_fresh_conf *c);

struct edge_resp_meta {
    int status;
    struct edge_cc cc;        /* the directives that govern this cache */
    int targeted;             /* cc came from a targeted field (Cache-Control/Expires ignored) */
    int64_t date;             /* -1: absent or invalid */
    int expires_present, expires_invalid;
    int64_t expires;
    int64_t last_modified;    /* -1 */
    int64_t age;              /* upstream Age; 0 when absent or malformed */
    int vary_star;            /* Vary contains "*" anywhere in its list */
    int has_set_cookie;
};
void edge_resp_analyze(const struct edge_hdr *h, size_t n, int status,
                       const struct edge_fresh_conf *conf, struct edge_resp_meta *m);

struct edge_req_meta {
    int method;               /* EDGE_M_* */
    int has_authorization;
    int has_conditional;      /* If-None-Match / If-Modified-Since */
    struct edge_cc cc;        /* Cache-Control, with Pragma: no-cache folded in when it is absent */
};
enum { EDGE_M_GET, EDGE_M_HEAD, EDGE_M_POST, EDGE_M_PUT, EDGE_M_DELETE, EDGE_M_OPTIONS,
       EDGE_M_OTHER_SAFE, EDGE_M_OTHER };
int edge_method_parse(const char *m, size_t len);
/* Methods whose success invalidates the URL (RFC 9111 4.4): everything not known to be safe. */
int edge_method_unsafe(int m);
void edge_req_analyze(int method, const struct edge_hdr *h, size_t n, struct edge_req_meta *m);

/* Storability for a shared cache. 0 = storable, else an EDGE_NS_* reason. */
enum { EDGE_STORE_OK = 0, EDGE_NS_METHOD, EDGE_NS_STATUS, EDGE_NS_NO_STORE, EDGE_NS_PRIVATE,
       EDGE_NS_AUTH, EDGE_NS_SET_COOKIE, EDGE_NS_VARY_STAR, EDGE_NS_NO_FRESHNESS };
int edge_storable(const struct edge_req_meta *rq, const struct edge_resp_meta *rs,
                  const struct edge_fresh_conf *conf);
const char *edge_ns_reason(int r);
int edge_heuristic_status(int status);

/* Freshness lifetime in seconds (>= 0). *heuristic set when it came from Last-Modified. */
int64_t edge_freshness_lifetime(const struct edge_resp_meta *m, int64_t response_time,
                                const struct edge_fresh_conf *conf, int *heuristic);
/* corrected_initial_age of RFC 9111 4.2.3. date < 0 means no Date. */
int64_t edge_initial_age(int64_t age_value, int64_t date, int64_t request_time, int64_t response_time);
static inline int64_t edge_current_age(int64_t initial_age, int64_t response_time, int64_t now)
{
    int64_t resident = now - response_time;
    return initial_age + (resident > 0 ? resident : 0);
}

/* What a stored object needs for later decisions (serialized with it). */
enum {
    EDGE_F_REVALIDATE = 1,  /* must-revalidate, proxy-revalidate or s-maxage: never serve stale */
    EDGE_F_NO_CACHE = 2,    /* response no-cache: stored, but validated before each use */
    EDGE_F_AUTH_OK = 4,     /* may answer requests with Authorization (public/s-maxage/must-reval.) */
    EDGE_F_HEURISTIC = 8,
};
struct edge_fresh {
    int64_t response_time;  /* when received or last validated */
    int64_t initial_age;    /* corrected_initial_age at response_time */
    int64_t lifetime;
    int64_t swr, sie;       /* -1: none */
    unsigned flags;
};
/* Fills f from an analysed response received between request_time and response_time. */
void edge_fresh_from_resp(struct edge_fresh *f, const struct edge_resp_meta *m, int64_t request_time,
                          int64_t response_time, const struct edge_fresh_conf *conf);

enum edge_use {
    EDGE_USE_FRESH,     /* serve */
    EDGE_USE_STALE,     /* stale but the request's max-stale accepts it: serve */
    EDGE_USE_SWR,       /* serve stale now, revalidate in the background */
    EDGE_USE_VALIDATE,  /* ask the origin first (conditional request) */
};
struct edge_verdict {
    enum edge_use use;
    int64_t age;            /* current age, for the Age header */
    int64_t ttl;            /* lifetime - age (negative when stale) */
    int stale_if_error;     /* if validation fails (error, 5xx), the stale object may be served */
};
void edge_decide(const struct edge_fresh *f, const struct edge_req_meta *rq, int64_t now,
                 struct edge_verdict *v);

#endif
