/* edge/vhost/vhost.h - virtual hosts and parent (shield) selection.
 *
 * A vhost maps CDN hostnames (exact "img.shop.test", wildcard "*.shop.test" = any name below
 * shop.test, and "*" = the default) to one origin URL and optionally to parent edges. Matching:
 * exact first, then the longest wildcard suffix, then the default; the Host / :authority is
 * normalised first (lowercase, port and a trailing dot removed).
 *
 * Parents: rendezvous (highest random weight) hashing of the cache key over the vhost's parents,
 * so each key has one home parent and losing a parent moves only that parent's keys. A parent that
 * refused a connection is skipped until its `down_until_ms` (shared by all threads, atomic), and
 * one the active health check found down (`check_down`) until the check finds it up again.
 *
 * Pure except for the parents' down marks; functions that depend on time take `now_ms`. */
#ifndef EDGE_VHOST_H
#define EDGE_VHOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cdn/ratelimit.h"
#include "cdn/risefall.h"

#define EDGE_MAX_PARENTS 16
#define EDGE_HOST_MAX 256

struct edge_parent {
    const char *url;                /* "http://127.0.0.1:9001" (no trailing slash) */
    uint64_t id;                    /* hash of url: its rendezvous identity */
    uint64_t down_until_ms;         /* atomic; 0 = up */
    int check_down;                 /* atomic; set by the active health check (health.h) */
};

/* A vhost's rate_limit (docs/EDGE.md "Rate limiting"): GCRA per client key, for the paths under
 * path_prefix. Off when on == 0. In the vhost table the strings are owned copies. */
struct edge_rl_conf {
    int on;                         /* 1: limit; 0: off; -1 (in a file vhost only): inherit */
    struct cdn_rl_rate rate;
    const char *name;               /* the policy's name in RateLimit-Policy / RateLimit */
    const char *header;             /* key: header:NAME (lowercase); NULL: the client's address
                                       (IPv4, or the /64 of an IPv6 one) */
    const char *path_prefix;        /* limited paths; "/" for every one */
};

/* A network in an ACL: family AF_INET or AF_INET6, the address bytes (4 or 16), the prefix
 * length. */
struct edge_net {
    int family;
    uint8_t addr[16];
    unsigned bits;
};
#define EDGE_PURGE_NETS_MAX 16

/* A vhost's `purge:` (docs/EDGE.md "Purge"): the PURGE method on the public listeners. Off unless
 * the vhost sets it, and then only from the listed networks *and* with the bearer token. */
struct edge_purge_acl {
    int on;
    struct edge_net nets[EDGE_PURGE_NETS_MAX];
    size_t nnets;
    char *token;                    /* owned; never NULL when on */
};

struct edge_vhost {
    const char *pattern;            /* "img.shop.test", "*.shop.test" or "*" */
    const char *origin;             /* "http://127.0.0.1:8000" (no trailing slash) */
    struct edge_parent *parents;
    size_t nparents;
    int parent_only;                /* never fetch from the origin directly */
    unsigned max_fetches;           /* concurrent requests to the origin, 0 = no limit */
    int origin_inflight;            /* atomic: requests to the origin now (all workers) */
    char **forward;                 /* forward_headers: lowercase names of the reflected class
                                       (X-Forwarded-Host, Forwarded...) a client's value of which
                                       is passed upstream; the rest of that class is dropped */
    size_t nforward;
    struct edge_rl_conf rl;         /* rate_limit: its own, else the global one */
    struct edge_purge_acl purge;    /* PURGE on the public listeners (off by default) */
};

struct edge_vhosts {
    const struct edge_vhost **v;    /* every name pattern (several may share one vhost) */
    const char **names;             /* normalised patterns, parallel to v */
    size_t n;
    const struct edge_vhost *dflt;  /* "*" or NULL */
};

/* Lowercases the host part of an authority ("Img.Shop.Test:8080" -> "img.shop.test"), drops the
 * port and one trailing dot. Bracketed IPv6 literals keep their brackets. -1 if empty, too long
 * for cap, or containing bytes not allowed in a host name. */
int edge_host_normalize(const char *authority, size_t len, char *out, size_t cap);

/* Validates a request's authority (Host / :authority) as RFC 9110 7.2 / RFC 3986 3.2.2-3.2.3 say:
 * uri-host [":" port], where uri-host is a reg-name (unreserved, sub-delims, pct-encoded), an
 * IP-literal ([IPv6] or [vX.future]) or an IPv4 address, and port is at most 65535. No userinfo,
 * no path, no whitespace. Writes the form every key and vhost lookup uses: the host lowercased,
 * percent-encoded unreserved bytes decoded and other escapes uppercased, one trailing dot dropped,
 * the port without leading zeros and dropped when it is default_port (80 for http, 443 for https)
 * or empty. -1 when invalid (the request gets 400) or longer than cap-1. Pure. */
int edge_authority_normalize(const char *authority, size_t len, unsigned default_port, char *out, size_t cap);

/* "10.0.0.0/8", "127.0.0.1" (a /32), "::1/128". 0, or -1 when it is not a network. Pure. */
int edge_net_parse(const char *s, struct edge_net *out);
/* 1 when addr (an AF_INET or AF_INET6 sockaddr; a v4-mapped v6 address counts as v4) is in one of
 * the networks. Pure. */
int edge_net_match(const struct edge_net *nets, size_t n, const struct sockaddr *addr);

/* The vhost for an authority, or NULL (no match and no default). */
const struct edge_vhost *edge_vhost_match(const struct edge_vhosts *vs, const char *authority, size_t len);

/* A pattern as written in the config: 0 if valid ("*", "*.suffix" or a host name). */
int edge_vhost_pattern_ok(const char *pattern);

/* Sets id from url. */
void edge_parent_init(struct edge_parent *p, const char *url);

/* Rendezvous order of the parents for a key hash: order[0] is the key's home parent. */
void edge_parent_order(const struct edge_parent *p, size_t n, uint64_t key_id, size_t *order);

/* The first parent in rendezvous order that is up at now_ms (neither marked down nor down by its
 * health check) and not in tried (bit i = parent i already tried for this request), or -1. */
int edge_parent_pick(const struct edge_parent *p, size_t n, uint64_t key_id, uint64_t now_ms, uint32_t tried);

/* A parent's active health check (health.h): the rule of cdn/risefall.h (`fall` failures in a
 * row mark an up parent down, `rise` successes in a row mark a down one up, 0 counts as 1).
 * Parents start up: a new state is EDGE_HEALTH_STATE_INIT. Returns +1 when this result marks the
 * parent up, -1 when it marks it down, 0 otherwise. */
#define EDGE_HEALTH_STATE_INIT ((struct cdn_risefall){.up = 1})
int edge_health_step(struct cdn_risefall *st, int ok, unsigned rise, unsigned fall);

/* Marks a parent down until now_ms + for_ms (thread-safe). */
void edge_parent_mark_down(struct edge_parent *p, uint64_t now_ms, uint64_t for_ms);

#endif
