/* edge/vhost/vhconf.h - the vhost table from the config file and the command line (see vhconf.c). */
#ifndef EDGE_VHCONF_H
#define EDGE_VHCONF_H

#include "cdn/config.h"
#include "edge/vhost/vhost.h"

/* CDN_CT_CUSTOM decoder of the `vhosts:` map into a struct cdn_conf_list (opaque elements that
 * only edge_vhosts_build reads). */
int edge_vhconf_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err);

/* CDN_CT_CUSTOM decoder of a `rate_limit:` map into a struct edge_rl_conf (strings in the
 * document), or of `rate_limit: off` (on = 0):
 *   rate_limit: {rate: 100/s, burst: 200, key: client | header:X-Api-Key, path_prefix: /api/,
 *                name: api}
 * rate is N/s, N/m or N/h (N from 1 to 1e9); burst defaults to N; key to client; path_prefix to
 * "/"; name to "default". Errors at the offending node. */
int edge_rlconf_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err);

/* "http://h:p/" -> "http://h:p" (a copy when changed); -1 unless http:// or https://. */
int edge_url_base(const char *url, const char **out);

/* Builds vs from the decoded `vhosts:` list (or NULL), the default origin (or NULL) and the global
 * parents / parent_only / max_fetches / rate_limit (rl, or NULL: none; inherited by vhosts that
 * name none). The table owns copies
 * of all its strings. 0, or -1 with err set (and nothing left allocated). */
int edge_vhosts_build(struct edge_vhosts *vs, const struct cdn_conf_list *file_vhosts, const char *origin,
                      const char *const *parents, size_t nparents, int parent_only, unsigned max_fetches,
                      const struct edge_rl_conf *rl, char *err, size_t errlen);
/* Frees what edge_vhosts_build allocated. */
void edge_vhosts_free(struct edge_vhosts *vs);

#endif
