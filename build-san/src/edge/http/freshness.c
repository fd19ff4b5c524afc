/* edge/http/freshness.c - RFC 9111 for a shared cache: storability, freshness, Age, reuse decisions.
 *
 * Rules: pure (times are passed in), total (malformed headers take the conservative reading:
 * an invalid Expires is "already expired", a malformed Age is ignored, conflicting max-age is 0),
 * and targeted fields (RFC 9213) replace Cache-Control and Expires for this cache when one of
 * them has a valid non-empty value. */
#include "config.h"
#include <string.h>
#include <strings.h>

#include "cdn/http.h"
#include "edge/http/freshness.h"

static int name_eq(const struct edge_hdr *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

int edge_hdr_find(const struct edge_hdr *h, size_t n, const char *name, size_t from)
{
    size_t len = strlen(name);
    for (size_t i = from; i < n; i++)
        if (name_eq(&h[i], name, len))
            return (int)i;
    return -1;
}

int edge_hdr_has_token(const struct edge_hdr *h, size_t n, const char *name, const char *token)
{
    for (int i = edge_hdr_find(h, n, name, 0); i >= 0; i = edge_hdr_find(h, n, name, (size_t)i + 1))
        if (cdn_http_list_has(h[i].value, h[i].value_len, token, strlen(token)))
            return 1;
    return 0;
}

int edge_hdr_is_hop(const struct edge_hdr *h, size_t n, const char *name, size_t len)
{
    if (cdn_http_hdr_class(name, len) & CDN_HDR_HOP)
        return 1;
    for (int i = edge_hdr_find(h, n, "connection", 0); i >= 0;
         i = edge_hdr_find(h, n, "connection", (size_t)i + 1))
        if (cdn_http_list_has(h[i].value, h[i].value_len, name, len))
            return 1;
    return 0;
}

/* --- HTTP-date (lib/http.c) --- */
void edge_trim_ows(const char **v, size_t *len) { cdn_http_trim_ows(v, len); }

int edge_http_date_parse(const char *s, size_t len, int64_t *t) { return cdn_http_date_parse(s, len, t); }

char *edge_http_date_fmt(int64_t t, char *buf) { return cdn_http_date_fmt(t, buf); }

int edge_date_pick(const struct edge_hdr *h, size_t n, int64_t fallback, char *out)
{
    int i = edge_hdr_find(h, n, "date", 0);
    int64_t t;
    if (i >= 0 && edge_http_date_parse(h[i].value, h[i].value_len, &t) == 0) {
        const char *v = h[i].value;
        size_t l = h[i].value_len;
        edge_trim_ows(&v, &l);
        if (l == 29 && v[3] == ',') {
            memcpy(out, v, 29);
            out[29] = '\0';
        } else {
            edge_http_date_fmt(t, out);
        }
        return 1;
    }
    if (fallback < 0)
        return 0;
    edge_http_date_fmt(fallback, out);
    return 1;
}

/* --- entity-tags --- */
int edge_etag_match(const char *list, size_t ll, const struct edge_hdr *etag)
{
    return etag != NULL && cdn_etag_match_weak(list, ll, etag->value, etag->value_len);
}

/* --- analysis --- */
void edge_fresh_conf_default(struct edge_fresh_conf *c)
{
    c->edge_cc_name = NULL;
    c->heuristic_fraction = 0.1;
    c->heuristic_max = 86400;
    c->store_set_cookie = 0;
}

static int64_t first_date(const struct edge_hdr *h, size_t n, const char *name, int *present)
{
    int i = edge_hdr_find(h, n, name, 0);
    int64_t t;
    if (present)
        *present = i >= 0;
    if (i < 0 || edge_http_date_parse(h[i].value, h[i].value_len, &t) < 0)
        return -1;
    return t;
}

/* Age (RFC 9111 5.1): a list (one field "7200, 0" or several fields) counts by its first member;
 * a first member that is not a delta-seconds means the field is ignored. */
static int64_t parse_age(const struct edge_hdr *h, size_t n)
{
    int i = edge_hdr_find(h, n, "age", 0);
    if (i < 0)
        return 0;
    const char *s = h[i].value;
    size_t len = h[i].value_len;
    const char *comma = memchr(s, ',', len);
    if (comma != NULL)
        len = (size_t)(comma - s);
    edge_trim_ows(&s, &len);
    int64_t v = edge_delta_seconds(s, len);
    return v < 0 ? 0 : v;
}

/* RFC 9213: the first targeted field (in target-list order) with a valid, non-empty value. */
static int targeted(const struct edge_hdr *h, size_t n, const char *name, struct edge_cc *out)
{
    if (name == NULL || edge_hdr_find(h, n, name, 0) < 0)
        return 0;
    struct edge_cc cc;
    edge_cc_init(&cc);
    for (int i = edge_hdr_find(h, n, name, 0); i >= 0; i = edge_hdr_find(h, n, name, (size_t)i + 1))
        if (edge_cc_parse(&cc, h[i].value, h[i].value_len, 1) < 0)
            return 0;
    if (cc.ndirs == 0)
        return 0;
    *out = cc;
    return 1;
}

void edge_resp_analyze(const struct edge_hdr *h, size_t n, int status,
                       const struct edge_fresh_conf *conf, struct edge_resp_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->status = status;
    edge_cc_init(&m->cc);
    m->targeted = targeted(h, n, conf->edge_cc_name, &m->cc) ||
                  targeted(h, n, "cdn-cache-control", &m->cc);
    if (!m->targeted) {
        for (int i = edge_hdr_find(h, n, "cache-control", 0); i >= 0;
             i = edge_hdr_find(h, n, "cache-control", (size_t)i + 1))
            edge_cc_parse(&m->cc, h[i].value, h[i].value_len, 0);
        m->expires = first_date(h, n, "expires", &m->expires_present);
        m->expires_invalid = m->expires_present && m->expires < 0;
    }
    m->date = first_date(h, n, "date", NULL);
    m->last_modified = first_date(h, n, "last-modified", NULL);
    m->age = parse_age(h, n);
    m->vary_star = edge_hdr_has_token(h, n, "vary", "*");
    m->has_set_cookie = edge_hdr_find(h, n, "set-cookie", 0) >= 0;
}

int edge_method_parse(const char *m, size_t len)
{
    static const struct { const char *n; int v; } t[] = {
        {"GET", EDGE_M_GET}, {"HEAD", EDGE_M_HEAD}, {"POST", EDGE_M_POST}, {"PUT", EDGE_M_PUT},
        {"DELETE", EDGE_M_DELETE}, {"OPTIONS", EDGE_M_OPTIONS}, {"TRACE", EDGE_M_OTHER_SAFE},
        {"PURGE", EDGE_M_OTHER}, {"PATCH", EDGE_M_OTHER},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strlen(t[i].n) == len && memcmp(t[i].n, m, len) == 0) /* methods are case-sensitive */
            return t[i].v;
    return EDGE_M_OTHER;
}

int edge_method_unsafe(int m)
{
    return !(m == EDGE_M_GET || m == EDGE_M_HEAD || m == EDGE_M_OPTIONS || m == EDGE_M_OTHER_SAFE);
}

void edge_req_analyze(int method, const struct edge_hdr *h, size_t n, struct edge_req_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->method = method;
    m->has_authorization = edge_hdr_find(h, n, "authorization", 0) >= 0;
    m->has_conditional = edge_hdr_find(h, n, "if-none-match", 0) >= 0 ||
                         edge_hdr_find(h, n, "if-modified-since", 0) >= 0;
    edge_cc_init(&m->cc);
    int ncc = 0;
    for (int i = edge_hdr_find(h, n, "cache-control", 0); i >= 0;
         i = edge_hdr_find(h, n, "cache-control", (size_t)i + 1), ncc++)
        edge_cc_parse(&m->cc, h[i].value, h[i].value_len, 0);
    /* RFC 9111 5.4: Pragma: no-cache counts only when Cache-Control is absent. */
    if (ncc == 0 && edge_hdr_has_token(h, n, "pragma", "no-cache"))
        m->cc.flags |= EDGE_CC_NO_CACHE;
}

int edge_heuristic_status(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return 1;
    }
    return 0;
}

/* Status codes whose semantics this cache knows (for must-understand). */
static int understood_status(int s)
{
    return edge_heuristic_status(s) || s == 302 || s == 303 || s == 307 || s == 400 || s == 403 ||
           s == 500 || s == 502 || s == 503 || s == 504;
}

int edge_storable(const struct edge_req_meta *rq, const struct edge_resp_meta *rs,
                  const struct edge_fresh_conf *conf)
{
    const struct edge_cc *cc = &rs->cc;
    if (rq->method != EDGE_M_GET)
        return EDGE_NS_METHOD;
    /* final, not partial, not a 304; 1xx are never stored */
    if (rs->status < 200 || rs->status == 206 || rs->status == 304 || rs->status > 599)
        return EDGE_NS_STATUS;
    if (cc->flags & EDGE_CC_MUST_UNDERSTAND) {
        if (!understood_status(rs->status))
            return EDGE_NS_STATUS;
    } else if (cc->flags & EDGE_CC_NO_STORE) {
        return EDGE_NS_NO_STORE;
    }
    if (rq->cc.flags & EDGE_CC_NO_STORE)
        return EDGE_NS_NO_STORE;
    if (cc->flags & EDGE_CC_PRIVATE)
        return EDGE_NS_PRIVATE;
    if (rq->has_authorization &&
        !(cc->flags & (EDGE_CC_PUBLIC | EDGE_CC_MUST_REVALIDATE)) && cc->s_maxage < 0)
        return EDGE_NS_AUTH;
    if (rs->vary_star)
        return EDGE_NS_VARY_STAR;
    if (rs->has_set_cookie && !conf->store_set_cookie && !(cc->flags & EDGE_CC_PUBLIC) &&
        cc->s_maxage < 0)
        return EDGE_NS_SET_COOKIE;
    if (!(cc->flags & EDGE_CC_PUBLIC) && cc->s_maxage < 0 && cc->max_age < 0 &&
        !rs->expires_present && !edge_heuristic_status(rs->status))
        return EDGE_NS_NO_FRESHNESS;
    return EDGE_STORE_OK;
}

const char *edge_ns_reason(int r)
{
    static const char *const s[] = {"storable", "method", "status", "no-store", "private",
                                    "authorization", "set-cookie", "vary-star", "no-freshness"};
    return r >= 0 && r <= EDGE_NS_NO_FRESHNESS ? s[r] : "?";
}

int64_t edge_freshness_lifetime(const struct edge_resp_meta *m, int64_t response_time,
                                const struct edge_fresh_conf *conf, int *heuristic)
{
    *heuristic = 0;
    if (m->cc.s_maxage >= 0)
        return m->cc.s_maxage;
    if (m->cc.max_age >= 0)
        return m->cc.max_age;
    if (m->expires_present) {
        if (m->expires_invalid)
            return 0;
        int64_t d = m->date >= 0 ? m->date : response_time;
        return m->expires > d ? m->expires - d : 0;
    }
    /* heuristics only where allowed: heuristically cacheable status or public */
    if (!edge_heuristic_status(m->status) && !(m->cc.flags & EDGE_CC_PUBLIC))
        return 0;
    if (m->last_modified < 0)
        return 0;
    int64_t d = m->date >= 0 ? m->date : response_time;
    if (d <= m->last_modified)
        return 0;
    int64_t h = (int64_t)((double)(d - m->last_modified) * conf->heuristic_fraction);
    if (h > conf->heuristic_max)
        h = conf->heuristic_max;
    *heuristic = h > 0;
    return h;
}

int64_t edge_initial_age(int64_t age_value, int64_t date, int64_t request_time, int64_t response_time)
{
    int64_t apparent = date >= 0 && response_time > date ? response_time - date : 0;
    int64_t delay = response_time > request_time ? response_time - request_time : 0;
    int64_t corrected = age_value + delay;
    return apparent > corrected ? apparent : corrected;
}

void edge_fresh_from_resp(struct edge_fresh *f, const struct edge_resp_meta *m, int64_t request_time,
                          int64_t response_time, const struct edge_fresh_conf *conf)
{
    int heur;
    memset(f, 0, sizeof(*f));
    f->response_time = response_time;
    f->initial_age = edge_initial_age(m->age, m->date, request_time, response_time);
    f->lifetime = edge_freshness_lifetime(m, response_time, conf, &heur);
    f->swr = m->cc.swr;
    f->sie = m->cc.sie;
    if (heur)
        f->flags |= EDGE_F_HEURISTIC;
    /* s-maxage implies proxy-revalidate for a shared cache (RFC 9111 5.2.2.10) */
    if (m->cc.flags & (EDGE_CC_MUST_REVALIDATE | EDGE_CC_PROXY_REVALIDATE) || m->cc.s_maxage >= 0)
        f->flags |= EDGE_F_REVALIDATE;
    if (m->cc.flags & EDGE_CC_NO_CACHE)
        f->flags |= EDGE_F_NO_CACHE;
    if (m->cc.flags & (EDGE_CC_PUBLIC | EDGE_CC_MUST_REVALIDATE) || m->cc.s_maxage >= 0)
        f->flags |= EDGE_F_AUTH_OK;
}

void edge_decide(const struct edge_fresh *f, const struct edge_req_meta *rq, int64_t now,
                 struct edge_verdict *v)
{
    const struct edge_cc *rc = &rq->cc;
    int64_t age = edge_current_age(f->initial_age, f->response_time, now);
    int64_t staleness = age - f->lifetime;
    int fresh = staleness < 0;
    int may_stale = !(f->flags & (EDGE_F_REVALIDATE | EDGE_F_NO_CACHE));
    v->age = age;
    v->ttl = f->lifetime - age;
    int64_t sie = f->sie > rc->sie ? f->sie : rc->sie;
    v->stale_if_error = may_stale && sie >= 0 && (staleness < 0 || staleness <= sie);
    v->use = EDGE_USE_VALIDATE;
    if ((rc->flags & (EDGE_CC_NO_CACHE | EDGE_CC_NO_CACHE_FIELDS)) || (f->flags & EDGE_F_NO_CACHE))
        return;
    if (rc->max_age >= 0 && age > rc->max_age)
        return;
    if (fresh) {
        if (rc->min_fresh >= 0 && f->lifetime - age < rc->min_fresh)
            return;
        v->use = EDGE_USE_FRESH;
        return;
    }
    if (!may_stale)
        return;
    if ((rc->flags & EDGE_CC_MAX_STALE_ANY) || (rc->max_stale >= 0 && staleness <= rc->max_stale)) {
        v->use = EDGE_USE_STALE;
        return;
    }
    if (f->swr >= 0 && staleness <= f->swr)
        v->use = EDGE_USE_SWR;
}
