/* edge/http/cache_key.h - cache keys: the primary key (scheme, host, normalised path and query) and
 * the secondary key of a variant (the request header values a stored response's Vary names).
 *
 * Pure; writes into caller buffers and fails (-1) rather than truncate, so two different URLs
 * never collapse into one key by accident. */
#ifndef EDGE_CACHE_KEY_H
#define EDGE_CACHE_KEY_H

#include <stddef.h>

#include "edge/http/freshness.h"

#define EDGE_KEY_MAX 8192

struct edge_key_conf {
    const char *const *drop_params; /* NULL-terminated names; "utm_*" drops by prefix */
    int sort_params;                /* sort query parameters (stable) */
    int ignore_query;               /* key without the query at all */
};

/* target: the request-target in origin-form ("/a/../b?x=1"). Returns the key length, or -1 when
 * it does not fit cap (or the target is not origin-form). out is NUL-terminated. */
int edge_key_primary(const struct edge_key_conf *c, const char *scheme, const char *host,
                     size_t host_len, const char *target, size_t target_len, char *out, size_t cap);

/* The normalised Vary list of a response: lowercase field names, sorted, deduplicated, joined by
 * ','. Returns its length (0: no Vary), or -1 for "Vary: *" anywhere (never matches) or too long. */
int edge_vary_normalize(const struct edge_hdr *h, size_t n, char *out, size_t cap);

/* The secondary key for a request under a normalised Vary list: "name=value\n" per field, values
 * normalised (whitespace trimmed and collapsed, several lines joined by ", "; Accept-Encoding
 * lowercased and its elements sorted). An absent header is "name!\n", distinct from an empty one.
 * Returns the length or -1 if too long. */
int edge_vary_key(const char *vary, size_t vary_len, const struct edge_hdr *req, size_t n,
                  char *out, size_t cap);

#endif
