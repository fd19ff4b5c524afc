/* edge/vhost/vhconf.c - builds the vhost table (struct edge_vhosts) from the YAML `vhosts:` map, the
 * top-level `origin` / `parents` / `parent_only` and the command line (-b, --parent).
 *
 *   origin: http://127.0.0.1:8000        # the default vhost ("*") unless vhosts has one
 *   parents: [http://127.0.0.1:9001]     # inherited by every vhost that names none
 *   parent_only: false
 *   vhosts:
 *     img.shop.test: {origin: http://127.0.0.1:8000, aliases: ["*.img.shop.test"]}
 *     www.shop.test: {origin: http://127.0.0.1:8001, parents: [...], parent_only: true}
 *   rate_limit: {rate: 100/s, burst: 200, key: header:X-Api-Key, path_prefix: /api/}
 *                                        # also per vhost (its own, or `off`), else inherited
 *   vhosts: {img.shop.test: {..., purge: {allow: ["127.0.0.0/8"], token_file: /etc/cdn/purge.key}}}
 *                                        # PURGE on the public listeners: per vhost only, off
 *                                        # unless set, from those networks and with the token
 *
 * The table owns copies of every string it keeps (edge_vhosts_free releases it), so the config
 * document can go once the table is built (a SIGHUP reload builds a new one). */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/admin.h"
#include "edge/vhost/vhconf.h"

static int purge_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err);

struct file_vhost {
    const char *pattern; /* the map key: must stay first */
    const char *origin;
    struct cdn_conf_list aliases, parents, forward;
    int parent_only;     /* -1: inherit */
    long long max_fetches;  /* -1: inherit */
    struct edge_rl_conf rl; /* on -1: inherit */
    struct file_purge {
        struct cdn_conf_list allow;
        const char *token_file;
        const cdn_conf_node_t *at;
    } purge;
};

static const cdn_conf_field_t vhost_fields[] = {
    {"origin", CDN_CT_STR, offsetof(struct file_vhost, origin), CDN_CF_REQUIRED},
    {"aliases", CDN_CT_STRLIST, offsetof(struct file_vhost, aliases)},
    {"parents", CDN_CT_STRLIST, offsetof(struct file_vhost, parents)},
    {"parent_only", CDN_CT_BOOL, offsetof(struct file_vhost, parent_only)},
    {"max_fetches", CDN_CT_INT, offsetof(struct file_vhost, max_fetches), 0, 0, 1000000},
    {"forward_headers", CDN_CT_STRLIST, offsetof(struct file_vhost, forward)},
    {"rate_limit", CDN_CT_CUSTOM, offsetof(struct file_vhost, rl), 0, 0, 0, 0, 0, NULL, NULL, 0, edge_rlconf_decode},
    {"purge", CDN_CT_CUSTOM, offsetof(struct file_vhost, purge), 0, 0, 0, 0, 0, NULL, NULL, 0, purge_decode},
    {NULL},
};
static const struct file_vhost vhost_defaults = {.parent_only = -1, .max_fetches = -1, .rl = {.on = -1}};

/* --- purge: the PURGE method on the public listeners --- */

static const cdn_conf_field_t purge_fields[] = {
    {"allow", CDN_CT_STRLIST, offsetof(struct file_purge, allow), CDN_CF_REQUIRED},
    {"token_file", CDN_CT_STR, offsetof(struct file_purge, token_file), CDN_CF_REQUIRED},
    {NULL},
};

static int purge_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    struct file_purge *p = out;
    if (cdn_conf_kind(n) != CDN_CONF_MAP)
        return cdn_conf_fail(c, n, err, "expected a map {allow: [NETWORK, ...], token_file: FILE}");
    if (cdn_conf_decode(c, n, purge_fields, p, err) < 0)
        return -1;
    if (p->allow.n == 0 || p->allow.n > EDGE_PURGE_NETS_MAX)
        return cdn_conf_fail(c, cdn_conf_get(n, "allow"), err, "allow: 1 to %d networks", EDGE_PURGE_NETS_MAX);
    for (size_t i = 0; i < p->allow.n; i++) {
        struct edge_net net;
        const char *a = ((const char **)p->allow.items)[i];
        if (edge_net_parse(a, &net) < 0)
            return cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(n, "allow"), i), err,
                                 "'%s' is not a network (like 10.0.0.0/8, 127.0.0.1 or ::1/128)", a);
    }
    char tok[256], why[300];
    if (cdn_token_read(p->token_file, tok, sizeof(tok), why, sizeof(why)) < 0)
        return cdn_conf_fail(c, cdn_conf_get(n, "token_file"), err, "token_file %s", why);
    p->at = n;
    return 0;
}

/* The vhost's purge ACL from the file (networks parsed, token read). 0 or -1 (err set). */
static int purge_copy(struct edge_purge_acl *a, const struct file_purge *p, char *err, size_t errlen)
{
    if (p->allow.n == 0)
        return 0;
    char why[300], tok[256];
    for (size_t i = 0; i < p->allow.n && i < EDGE_PURGE_NETS_MAX; i++)
        if (edge_net_parse(((const char **)p->allow.items)[i], &a->nets[a->nnets]) == 0)
            a->nnets++;
    if (cdn_token_read(p->token_file, tok, sizeof(tok), why, sizeof(why)) < 0) {
        snprintf(err, errlen, "purge token_file %s", why);
        return -1;
    }
    if ((a->token = strdup(tok)) == NULL)
        return -1;
    a->on = 1;
    return 0;
}

/* --- rate_limit --- */

struct file_rl {
    const char *rate, *key, *path_prefix, *name;
    long long burst;
};

static const cdn_conf_field_t rl_fields[] = {
    {"rate", CDN_CT_STR, offsetof(struct file_rl, rate), CDN_CF_REQUIRED},
    {"burst", CDN_CT_INT, offsetof(struct file_rl, burst), 0, 1, 1000000000},
    {"key", CDN_CT_STR, offsetof(struct file_rl, key)},
    {"path_prefix", CDN_CT_STR, offsetof(struct file_rl, path_prefix)},
    {"name", CDN_CT_STR, offsetof(struct file_rl, name)},
    {NULL},
};

/* 1 for 1..64 bytes of letters, digits, '-', '_' and '.' (a policy name, a header name) */
static int word_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.'))
            return 0;
    return 1;
}

int edge_rlconf_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    struct edge_rl_conf *rl = out;
    if (cdn_conf_kind(n) == CDN_CONF_SCALAR) {
        const char *v = cdn_conf_scalar(n);
        if (v != NULL && (strcmp(v, "off") == 0 || strcmp(v, "false") == 0)) {
            *rl = (struct edge_rl_conf){.on = 0};
            return 0;
        }
    }
    if (cdn_conf_kind(n) != CDN_CONF_MAP)
        return cdn_conf_fail(c, n, err, "expected off or a map {rate: N/s, burst: N, key: client | "
                                        "header:NAME, path_prefix: /PATH, name: NAME}");
    struct file_rl f = {0};
    if (cdn_conf_decode(c, n, rl_fields, &f, err) < 0)
        return -1;
    uint32_t count;
    uint64_t period;
    if (cdn_rl_rate_parse(f.rate, &count, &period) < 0)
        return cdn_conf_fail(c, cdn_conf_get(n, "rate"), err, "rate '%s': expected N/s, N/m or N/h (N from 1 to 1e9)",
                             f.rate);
    *rl = (struct edge_rl_conf){.on = 1, .name = "default", .path_prefix = "/"};
    cdn_rl_rate_make(&rl->rate, count, period, f.burst ? (uint32_t)f.burst : count);
    if (f.key != NULL && strcmp(f.key, "client") != 0) {
        if (strncmp(f.key, "header:", 7) != 0 || !word_ok(f.key + 7))
            return cdn_conf_fail(c, cdn_conf_get(n, "key"), err,
                                 "key '%s': expected client or header:NAME (a header field name)", f.key);
        char *h = cdn_conf_strdup(c, f.key + 7);
        if (h == NULL)
            return cdn_conf_fail(c, n, err, "out of memory");
        for (char *q = h; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        rl->header = h;
    }
    if (f.path_prefix != NULL) {
        if (f.path_prefix[0] != '/')
            return cdn_conf_fail(c, cdn_conf_get(n, "path_prefix"), err, "path_prefix '%s' must start with /",
                                 f.path_prefix);
        rl->path_prefix = f.path_prefix;
    }
    if (f.name != NULL) {
        if (!word_ok(f.name))
            return cdn_conf_fail(c, cdn_conf_get(n, "name"), err,
                                 "name '%s': 1 to 64 letters, digits, '-', '_' or '.'", f.name);
        rl->name = f.name;
    }
    return 0;
}

/* An owned copy of rl (off when rl is NULL or off). 0 or -1 (out of memory). */
static int rl_copy(struct edge_rl_conf *dst, const struct edge_rl_conf *rl)
{
    *dst = (struct edge_rl_conf){.on = 0};
    if (rl == NULL || rl->on != 1)
        return 0;
    *dst = *rl;
    dst->name = strdup(rl->name);
    dst->path_prefix = strdup(rl->path_prefix);
    dst->header = rl->header ? strdup(rl->header) : NULL;
    if (dst->name == NULL || dst->path_prefix == NULL || (rl->header && dst->header == NULL))
        return -1;
    return 0;
}

/* Validates a URL in the document (the table normalises its own copy). */
static int url_ok(const char *u)
{
    const char *b;
    if (edge_url_base(u, &b) < 0)
        return -1;
    if (b != u)
        free((char *)b);
    return 0;
}

/* The names the vhosts claim so far, normalised as the table stores them, each with the node that
 * claimed it: a second claim is an error at its own node that names the first one's line. */
struct claims {
    const char **names;
    const cdn_conf_node_t **nodes;
    size_t n;
};

static int claim(cdn_conf_t *c, struct claims *cl, const char *pattern, const cdn_conf_node_t *at, cdn_conf_err_t *err)
{
    char h[EDGE_HOST_MAX], *name;
    if (strcmp(pattern, "*") == 0) {
        name = cdn_conf_strdup(c, "*");
    } else {
        const char *body = pattern[0] == '*' ? pattern + 2 : pattern;
        int hl = edge_host_normalize(body, strlen(body), h, sizeof(h));
        if (hl < 0)
            return cdn_conf_fail(c, at, err, "bad host pattern '%s'", pattern);
        name = cdn_conf_alloc(c, (size_t)hl + 3);
        if (name != NULL)
            snprintf(name, (size_t)hl + 3, "%s%s", pattern[0] == '*' ? "*." : "", h);
    }
    if (name == NULL)
        return cdn_conf_fail(c, at, err, "out of memory");
    for (size_t i = 0; i < cl->n; i++)
        if (strcmp(cl->names[i], name) == 0)
            return cdn_conf_fail(c, at, err, "'%s': host %s is named by two vhosts (first at line %d)", pattern,
                                 name, cdn_conf_line(cl->nodes[i]));
    cl->names[cl->n] = name;
    cl->nodes[cl->n++] = at;
    return 0;
}

int edge_vhconf_decode(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    if (cdn_conf_kind(n) != CDN_CONF_MAP)
        return cdn_conf_fail(c, n, err, "vhosts: expected a map of host name -> {origin: URL, ...}");
    struct cdn_conf_list *l = out;
    size_t cnt = cdn_conf_len(n);
    struct file_vhost *v = cdn_conf_alloc(c, (cnt ? cnt : 1) * sizeof(*v));
    if (v == NULL)
        return cdn_conf_fail(c, n, err, "out of memory");
    struct claims cl = {0};
    for (size_t i = 0; i < cnt; i++) {
        v[i] = vhost_defaults;
        const cdn_conf_node_t *k = cdn_conf_key(n, i), *val = cdn_conf_value(n, i);
        if (cdn_conf_str(c, k, &v[i].pattern, err) < 0)
            return -1;
        if (edge_vhost_pattern_ok(v[i].pattern) < 0)
            return cdn_conf_fail(c, k, err, "bad host pattern '%s' (a host name, *.suffix or *)", v[i].pattern);
        if (cdn_conf_kind(val) != CDN_CONF_MAP)
            return cdn_conf_fail(c, val, err, "expected a map with origin: URL");
        if (cdn_conf_decode(c, val, vhost_fields, &v[i], err) < 0)
            return -1;
        if (url_ok(v[i].origin) < 0)
            return cdn_conf_fail(c, cdn_conf_get(val, "origin"), err, "origin must be an http:// or https:// URL");
        for (size_t a = 0; a < v[i].aliases.n; a++)
            if (edge_vhost_pattern_ok(((const char **)v[i].aliases.items)[a]) < 0)
                return cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(val, "aliases"), a), err, "bad host pattern '%s'",
                                     ((const char **)v[i].aliases.items)[a]);
        if (v[i].parents.n > EDGE_MAX_PARENTS)
            return cdn_conf_fail(c, cdn_conf_get(val, "parents"), err, "at most %d parents", EDGE_MAX_PARENTS);
        for (size_t a = 0; a < v[i].parents.n; a++) {
            const char **pp = (const char **)v[i].parents.items;
            if (url_ok(pp[a]) < 0)
                return cdn_conf_fail(c, cdn_conf_item(cdn_conf_get(val, "parents"), a), err,
                                     "parent '%s' must be an http:// or https:// URL", pp[a]);
        }
    }
    /* then the names they claim: a host named twice is an error at its second claim */
    size_t total = cnt;
    for (size_t i = 0; i < cnt; i++)
        total += v[i].aliases.n;
    cl.names = cdn_conf_alloc(c, (total ? total : 1) * sizeof(*cl.names));
    cl.nodes = cdn_conf_alloc(c, (total ? total : 1) * sizeof(*cl.nodes));
    if (cl.names == NULL || cl.nodes == NULL)
        return cdn_conf_fail(c, n, err, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const cdn_conf_node_t *aliases = cdn_conf_get(cdn_conf_value(n, i), "aliases");
        if (claim(c, &cl, v[i].pattern, cdn_conf_key(n, i), err) < 0)
            return -1;
        for (size_t a = 0; a < v[i].aliases.n; a++)
            if (claim(c, &cl, ((const char **)v[i].aliases.items)[a], cdn_conf_item(aliases, a), err) < 0)
                return -1;
    }
    l->items = v;
    l->n = cnt;
    return 0;
}

int edge_url_base(const char *u, const char **out)
{
    size_t l = u ? strlen(u) : 0;
    if (l < 8 || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
        return -1;
    if (u[l - 1] == '/') {
        char *o = strdup(u);
        if (o == NULL)
            return -1;
        while (l > 8 && o[l - 1] == '/')
            o[--l] = '\0';
        u = o;
    }
    *out = u;
    return 0;
}

/* A malloc'd normalised copy of a URL (validated already), or NULL. */
static char *url_dup(const char *u)
{
    const char *b;
    if (edge_url_base(u, &b) < 0)
        return NULL;
    return b != u ? (char *)b : strdup(u);
}

static struct edge_parent *make_parents(const char *const *urls, size_t n)
{
    struct edge_parent *p = calloc(n ? n : 1, sizeof(*p));
    for (size_t i = 0; p && i < n; i++) {
        char *u = url_dup(urls[i]);
        if (u == NULL) {
            for (size_t k = 0; k < i; k++)
                free((char *)p[k].url);
            free(p);
            return NULL;
        }
        edge_parent_init(&p[i], u);
    }
    return p;
}

static void vhost_free(struct edge_vhost *v)
{
    for (size_t i = 0; i < v->nparents; i++)
        free((char *)v->parents[i].url);
    free(v->parents);
    free((char *)v->pattern);
    free((char *)v->origin);
    for (size_t i = 0; i < v->nforward; i++)
        free(v->forward[i]);
    free(v->forward);
    free((char *)v->rl.name);
    free((char *)v->rl.header);
    free((char *)v->rl.path_prefix);
    free(v->purge.token);
    free(v);
}

/* forward_headers: owned lowercase copies. 0 or -1 (out of memory). */
static int set_forward(struct edge_vhost *v, const struct cdn_conf_list *l)
{
    if (l == NULL || l->n == 0)
        return 0;
    if ((v->forward = calloc(l->n, sizeof(*v->forward))) == NULL)
        return -1;
    for (size_t i = 0; i < l->n; i++) {
        const char *n = ((const char **)l->items)[i];
        if ((v->forward[i] = strdup(n)) == NULL)
            return -1;
        v->nforward++;
        for (char *p = v->forward[i]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    return 0;
}

void edge_vhosts_free(struct edge_vhosts *vs)
{
    /* several names may share one vhost: free each vhost once (at its first name) */
    for (size_t i = 0; i < vs->n; i++) {
        int first = vs->v[i] != vs->dflt;
        for (size_t k = 0; first && k < i; k++)
            first = vs->v[k] != vs->v[i];
        if (first)
            vhost_free((struct edge_vhost *)vs->v[i]);
        free((char *)vs->names[i]);
    }
    if (vs->dflt != NULL)
        vhost_free((struct edge_vhost *)vs->dflt);
    free(vs->v);
    free(vs->names);
    memset(vs, 0, sizeof(*vs));
}

static int add_name(struct edge_vhosts *vs, size_t *cap, const char *pattern, const struct edge_vhost *v,
                    char *err, size_t errlen)
{
    if (strcmp(pattern, "*") == 0) {
        if (vs->dflt != NULL) {
            snprintf(err, errlen, "two default vhosts (\"*\")");
            return -1;
        }
        vs->dflt = v;
        return 0;
    }
    char h[EDGE_HOST_MAX];
    const char *body = pattern[0] == '*' ? pattern + 2 : pattern;
    int hl = edge_host_normalize(body, strlen(body), h, sizeof(h));
    if (hl < 0) {
        snprintf(err, errlen, "bad host pattern '%s'", pattern);
        return -1;
    }
    char *name = malloc((size_t)hl + 3);
    if (name == NULL)
        return -1;
    snprintf(name, (size_t)hl + 3, "%s%s", pattern[0] == '*' ? "*." : "", h);
    for (size_t i = 0; i < vs->n; i++)
        if (strcmp(vs->names[i], name) == 0) {
            snprintf(err, errlen, "host '%s' named by two vhosts", pattern);
            free(name);
            return -1;
        }
    if (vs->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        const struct edge_vhost **nv = realloc(vs->v, nc * sizeof(*nv));
        if (nv != NULL)
            vs->v = nv;
        const char **nn = nv ? realloc(vs->names, nc * sizeof(*nn)) : NULL;
        if (nn == NULL) {
            free(name);
            return -1;
        }
        vs->names = nn;
        *cap = nc;
    }
    vs->v[vs->n] = v;
    vs->names[vs->n++] = name;
    return 0;
}

static struct edge_vhost *vhost_new(const char *pattern, const char *origin, const char *const *parents,
                                    size_t nparents, int parent_only, unsigned max_fetches)
{
    struct edge_vhost *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return NULL;
    v->pattern = strdup(pattern);
    v->origin = url_dup(origin);
    v->parents = make_parents(parents, nparents);
    v->nparents = v->parents ? nparents : 0;
    v->parent_only = parent_only;
    v->max_fetches = max_fetches;
    if (v->pattern == NULL || v->origin == NULL || v->parents == NULL) {
        vhost_free(v);
        return NULL;
    }
    return v;
}

int edge_vhosts_build(struct edge_vhosts *vs, const struct cdn_conf_list *file_vhosts, const char *origin,
                      const char *const *parents, size_t nparents, int parent_only, unsigned max_fetches,
                      const struct edge_rl_conf *rl, char *err, size_t errlen)
{
    size_t cap = 0;
    memset(vs, 0, sizeof(*vs));
    snprintf(err, errlen, "out of memory");
    if (nparents > EDGE_MAX_PARENTS) {
        snprintf(err, errlen, "at most %d parents", EDGE_MAX_PARENTS);
        return -1;
    }
    for (size_t i = 0; i < nparents; i++)
        if (url_ok(parents[i]) < 0) {
            snprintf(err, errlen, "parent '%s' must be an http:// URL", parents[i]);
            return -1;
        }
    if (origin != NULL && url_ok(origin) < 0) {
        snprintf(err, errlen, "the origin must be an http:// or https:// URL");
        return -1;
    }
    const struct file_vhost *fv = file_vhosts ? file_vhosts->items : NULL;
    size_t nf = file_vhosts ? file_vhosts->n : 0;
    for (size_t i = 0; i < nf; i++) {
        int own = fv[i].parents.n > 0;
        struct edge_vhost *v = vhost_new(fv[i].pattern, fv[i].origin, own ? fv[i].parents.items : parents,
                                         own ? fv[i].parents.n : nparents,
                                         fv[i].parent_only >= 0 ? fv[i].parent_only : parent_only,
                                         fv[i].max_fetches >= 0 ? (unsigned)fv[i].max_fetches : max_fetches);
        const struct edge_rl_conf *vrl = fv[i].rl.on >= 0 ? &fv[i].rl : rl;
        if (v != NULL && (set_forward(v, &fv[i].forward) < 0 || rl_copy(&v->rl, vrl) < 0 ||
                          purge_copy(&v->purge, &fv[i].purge, err, errlen) < 0)) {
            vhost_free(v);
            v = NULL;
        }
        if (v == NULL)
            goto fail;
        size_t before = vs->n;
        const struct edge_vhost *dflt_before = vs->dflt;
        if (add_name(vs, &cap, fv[i].pattern, v, err, errlen) < 0) {
            vhost_free(v);
            goto fail;
        }
        for (size_t a = 0; a < fv[i].aliases.n; a++)
            if (add_name(vs, &cap, ((const char **)fv[i].aliases.items)[a], v, err, errlen) < 0) {
                /* unhook v's names before freeing it */
                while (vs->n > before)
                    free((char *)vs->names[--vs->n]);
                vs->dflt = dflt_before;
                vhost_free(v);
                goto fail;
            }
    }
    if (origin != NULL && vs->dflt == NULL) {
        struct edge_vhost *v = vhost_new("*", origin, parents, nparents, parent_only, max_fetches);
        if (v != NULL && rl_copy(&v->rl, rl) < 0) {
            vhost_free(v);
            v = NULL;
        }
        if (v == NULL)
            goto fail;
        vs->dflt = v;
    }
    if (vs->dflt == NULL && vs->n == 0) {
        snprintf(err, errlen, "need an origin (-b URL, origin: or vhosts:)");
        return -1;
    }
    return 0;
fail:
    edge_vhosts_free(vs);
    return -1;
}
