/* edge/purge/cmd.h - purge commands: their text form (what the bus carries, what cdn-purge and the
 * admin's /purge send), their parsing into a normal form, and what a command covers.
 *
 * Text form (one line, fields separated by spaces or tabs; at most EDGE_PURGE_TEXT_MAX bytes):
 *
 *     [soft|hard] url    URL...      every variant of each URL
 *     [soft|hard] prefix HOST/PATH.. everything of HOST whose path starts with PATH (at a segment:
 *                                    "/p" and "/p/" both mean "/p/" and below)
 *     [soft|hard] tag    TAG...      every object whose Surrogate-Key names one of the tags
 *     [soft|hard] all    HOST...     everything of a host (vhost name)
 *
 * The mode defaults to hard (removed from both tiers); soft marks the objects stale (served under
 * stale-while-revalidate / stale-if-error while a refetch happens, else revalidated first).
 *
 * Normal form (what matching compares): a URL is "host/target" with the scheme and port dropped
 * (http and https, default port or not, are one object for a purge: the URL copied from a
 * browser purges what the edge stored under any listener), the host lowercased and the target
 * normalised as the cache key does (edge_key_primary: escapes, dot segments, the query policy);
 * a URL may also be written without a scheme ("img.shop.test/p/8"). A prefix is "host/path/", an
 * `all` is "host/". Pure; no allocation beyond the struct. */
#ifndef EDGE_PURGE_CMD_H
#define EDGE_PURGE_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "edge/http/cache_key.h"

#define EDGE_PURGE_TEXT_MAX 8192
#define EDGE_PURGE_ARGS_MAX 64
#define EDGE_PURGE_TAG_MAX 256

enum edge_purge_kind { EDGE_PURGE_URL, EDGE_PURGE_PREFIX, EDGE_PURGE_TAG, EDGE_PURGE_ALL };

struct edge_purge_cmd {
    enum edge_purge_kind kind;
    int soft;
    size_t nargs;
    const char *args[EDGE_PURGE_ARGS_MAX]; /* normal forms, NUL-terminated, into buf */
    size_t lens[EDGE_PURGE_ARGS_MAX];
    char buf[2 * EDGE_PURGE_TEXT_MAX + 4 * EDGE_PURGE_ARGS_MAX];
};

/* Parses one command. kc: the query policy of cache keys (NULL: none). 0, or -1 with a reason
 * ("unknown kind 'x'", "bad URL '...'") in err. */
int edge_purge_parse(const char *text, size_t len, const struct edge_key_conf *kc, struct edge_purge_cmd *out,
                     char *err, size_t errlen);
/* The command's normal text form ("hard url img.shop.test/p/8"), for logs and the ack stream.
 * Returns its length (truncated to cap-1). */
size_t edge_purge_format(const struct edge_purge_cmd *c, char *out, size_t cap);

/* The normal URL form of a stored object's primary key ("https://img.shop.test:8443/p/8?a=1" ->
 * "img.shop.test/p/8?a=1"). Its length, or -1 when pkey is not scheme://host/target or the form
 * does not fit cap. */
int edge_purge_url_form(const char *pkey, size_t plen, char *out, size_t cap);
/* Calls fn for each directory of a URL form's path, the host's root included: "h/a/b/c?q" gives
 * "h/", "h/a/", "h/a/b/". These are the tags a prefix or `all` purge finds objects by. */
void edge_purge_dirs(const char *form, size_t len, void (*fn)(const char *dir, size_t n, void *data), void *data);

/* What matching needs of a command (a command, or a compact copy the store remembers). */
struct edge_purge_view {
    enum edge_purge_kind kind;
    size_t nargs;
    const char *const *args;
    const size_t *lens;
};
static inline struct edge_purge_view edge_purge_view_of(const struct edge_purge_cmd *c)
{
    return (struct edge_purge_view){c->kind, c->nargs, c->args, c->lens};
}
/* 1 when the command covers an object with this primary key and these Surrogate-Key tags
 * (space-separated): what a fill in flight or a parent's copy is checked against. */
int edge_purge_matches(const struct edge_purge_view *c, const char *pkey, size_t plen, const char *tags,
                       size_t tags_len);

/* The bus's address: "redis://host:port[/db]" (or "host:port"; the port defaults to 6379) into
 * host and port. Credentials (user@) are refused. 0 or -1. */
int edge_purge_redis_url(const char *url, char *host, size_t cap, int *port);

#endif
