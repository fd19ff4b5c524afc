/* cdn/resolver.h - asynchronous name resolution with c-ares on an h2o evloop.
 *
 * Owns: one c-ares channel per loop (per thread) and its socket watches and timer. Lookups never
 * block the loop. Debian's libcurl resolves with threads, not c-ares, so every name the project
 * fetches is resolved here and handed to curl as an address (see cdn/httpc.h).
 * Answers are cached per name until their TTL runs out (cap and floor configurable), so a lab
 * client honours the TTL that cdn-dns gave it. */
#ifndef CDN_RESOLVER_H
#define CDN_RESOLVER_H

#include <stdint.h>
#include <sys/socket.h>
#include <h2o.h>

#define CDN_RESOLVE_MAX_ADDRS 8

typedef struct cdn_resolver cdn_resolver_t;
typedef struct cdn_resolve cdn_resolve_t;

struct cdn_resolver_opts {
    const char *servers;   /* "127.0.0.1:5399,[::1]:53"; NULL = /etc/resolv.conf */
    const char *local_ip4; /* source address for queries ("127.0.1.10"), or NULL */
    int timeout_ms;        /* per try; 0 = 1000 */
    int tries;             /* 0 = 2 */
    int family;            /* AF_INET, AF_INET6 or AF_UNSPEC (0) */
    uint32_t cache_max_ttl;/* seconds; 0 = no cache */
    int use_hosts;         /* also read /etc/hosts (localhost and friends): 0 or 1 = on, -1 = off */
};

struct cdn_addrs {
    int n;
    struct sockaddr_storage addr[CDN_RESOLVE_MAX_ADDRS]; /* port 0 */
    uint32_t ttl[CDN_RESOLVE_MAX_ADDRS];                 /* seconds left; UINT32_MAX for an IP literal */
};

/* errstr NULL on success (addrs->n >= 1); else "name not found", "timed out", ...
 * addrs is valid only during the call. Never called after cdn_resolve_cancel(). */
typedef void (*cdn_resolve_cb)(const char *errstr, const struct cdn_addrs *addrs, void *data);

cdn_resolver_t *cdn_resolver_new(h2o_evloop_t *loop, const struct cdn_resolver_opts *opts,
                                 char *err, size_t errlen);
/* Outstanding lookups are called back with "resolver closed" first. */
void cdn_resolver_free(cdn_resolver_t *r);
/* An IP literal or a cached answer calls back before returning, and NULL is returned. Otherwise
 * returns a handle valid until the callback runs. */
cdn_resolve_t *cdn_resolver_lookup(cdn_resolver_t *r, const char *name, cdn_resolve_cb cb, void *data);
void cdn_resolve_cancel(cdn_resolve_t *q);
void cdn_resolver_flush_cache(cdn_resolver_t *r);

#endif
