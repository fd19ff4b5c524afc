/* edge/http/cc.c - the Cache-Control directive list parser (lenient, RFC 9111 5.2) and the strict
 * Structured Fields dictionary form used by targeted fields (RFC 9213 / RFC 8941).
 *
 * Rules: a bounds-checked cursor (p < end everywhere); a malformed element is skipped up to the
 * next comma outside a quoted string; conflicting or invalid delta-seconds become 0, i.e. stale. */
#include "config.h"
#include <string.h>
#include <strings.h>
#include <ctype.h>

#include "edge/http/cc.h"

void edge_cc_init(struct edge_cc *cc)
{
    memset(cc, 0, offsetof(struct edge_cc, fields)); /* every request parses one: the name list */
    cc->fields[0] = '\0';                            /* needs only its first byte cleared */
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = cc->swr = cc->sie = -1;
}

int64_t edge_delta_seconds(const char *s, size_t len)
{
    if (len == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v < EDGE_DELTA_MAX)
            v = v * 10 + (s[i] - '0');
    }
    return v > EDGE_DELTA_MAX ? EDGE_DELTA_MAX : v;
}

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Sets a delta-seconds slot: invalid -> 0, a second different value -> 0 (conflict = stale). */
static void set_delta(int64_t *slot, const char *v, size_t vlen, int has_value)
{
    int64_t d = has_value ? edge_delta_seconds(v, vlen) : -1;
    if (d < 0)
        d = 0;
    if (*slot >= 0 && *slot != d)
        d = 0;
    *slot = d;
}

#define NAME_IS(lit) (nlen == sizeof(lit) - 1 && strncasecmp(name, lit, nlen) == 0)

/* Appends the comma-separated field names of v to cc->fields; -1 if one is not a token or they
 * do not fit (the caller then takes the unqualified directive). */
static int add_fields(struct edge_cc *cc, const char *v, size_t vlen)
{
    size_t used = strlen(cc->fields), at = used;
    const char *p = v, *end = v + vlen;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        const char *nm = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        size_t l = (size_t)(p - nm);
        while (p < end && is_ows(*p))
            p++;
        if ((p < end && *p != ',') || (l == 0 && p < end))
            goto bad;
        if (l == 0)
            break;
        if (at + l + 2 > sizeof(cc->fields))
            goto bad;
        for (size_t i = 0; i < l; i++)
            cc->fields[at + i] = (char)tolower((unsigned char)nm[i]);
        cc->fields[at + l] = ',';
        at += l + 1;
        cc->fields[at] = '\0';
    }
    return 0;
bad:
    cc->fields[used] = '\0';
    return -1;
}

int edge_cc_lists_field(const struct edge_cc *cc, const char *name, size_t len)
{
    for (const char *p = cc->fields; *p;) {
        const char *e = strchr(p, ',');
        if ((size_t)(e - p) == len && strncasecmp(p, name, len) == 0)
            return 1;
        p = e + 1;
    }
    return 0;
}

static void apply(struct edge_cc *cc, const char *name, size_t nlen, const char *v, size_t vlen,
                  int has_value)
{
    if (has_value && (NAME_IS("private") || NAME_IS("no-cache"))) {
        int priv = NAME_IS("private");
        cc->ndirs++;
        if (add_fields(cc, v, vlen) == 0)
            cc->flags |= priv ? EDGE_CC_PRIVATE_FIELDS : EDGE_CC_NO_CACHE_FIELDS;
        else
            cc->flags |= priv ? EDGE_CC_PRIVATE : EDGE_CC_NO_CACHE;
        return;
    }
    static const struct { const char *n; unsigned f; } flags[] = {
        {"no-store", EDGE_CC_NO_STORE}, {"no-cache", EDGE_CC_NO_CACHE},
        {"private", EDGE_CC_PRIVATE}, {"public", EDGE_CC_PUBLIC},
        {"must-revalidate", EDGE_CC_MUST_REVALIDATE}, {"proxy-revalidate", EDGE_CC_PROXY_REVALIDATE},
        {"no-transform", EDGE_CC_NO_TRANSFORM}, {"only-if-cached", EDGE_CC_ONLY_IF_CACHED},
        {"must-understand", EDGE_CC_MUST_UNDERSTAND}, {"immutable", EDGE_CC_IMMUTABLE},
    };
    cc->ndirs++;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strlen(flags[i].n) == nlen && strncasecmp(flags[i].n, name, nlen) == 0) {
            cc->flags |= flags[i].f;
            return;
        }
    if (NAME_IS("max-age"))
        set_delta(&cc->max_age, v, vlen, has_value);
    else if (NAME_IS("s-maxage"))
        set_delta(&cc->s_maxage, v, vlen, has_value);
    else if (NAME_IS("min-fresh"))
        set_delta(&cc->min_fresh, v, vlen, has_value);
    else if (NAME_IS("stale-while-revalidate"))
        set_delta(&cc->swr, v, vlen, has_value);
    else if (NAME_IS("stale-if-error"))
        set_delta(&cc->sie, v, vlen, has_value);
    else if (NAME_IS("max-stale")) {
        if (!has_value)
            cc->flags |= EDGE_CC_MAX_STALE_ANY;
        else
            set_delta(&cc->max_stale, v, vlen, 1);
    }
    /* unknown directives are ignored (RFC 9111 5.2.3) */
}

/* Lenient: #( token [ "=" ( token / quoted-string ) ] ) with empty elements allowed. */
static int parse_lenient(struct edge_cc *cc, const char *p, const char *end)
{
    int bad = 0;
    char unq[256];
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        if (p == end)
            break;
        const char *name = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        size_t nlen = (size_t)(p - name);
        const char *v = NULL;
        size_t vlen = 0;
        int has_value = 0, ok = nlen > 0;
        while (ok && p < end && is_ows(*p))
            p++;
        if (ok && p < end && *p == '=') {
            p++;
            while (p < end && is_ows(*p))
                p++;
            has_value = 1;
            if (p < end && *p == '"') {
                /* quoted-string: unescape into unq (long values are not meaningful here) */
                p++;
                vlen = 0;
                ok = 0;
                while (p < end) {
                    char c = *p++;
                    if (c == '"') { ok = 1; break; }
                    if (c == '\\') {
                        if (p == end)
                            break;
                        c = *p++;
                    }
                    if (vlen < sizeof(unq))
                        unq[vlen++] = c;
                }
                v = unq;
            } else {
                v = p;
                while (p < end && is_tchar((unsigned char)*p))
                    p++;
                vlen = (size_t)(p - v);
            }
            while (ok && p < end && is_ows(*p))
                p++;
        }
        if (ok && p < end && *p != ',')
            ok = 0;
        if (ok) {
            apply(cc, name, nlen, v, vlen, has_value);
        } else {
            bad = 1;
            cc->errors++;
            /* resynchronise at the next comma outside quotes */
            int inq = 0;
            while (p < end && (inq || *p != ',')) {
                if (*p == '"')
                    inq = !inq;
                else if (*p == '\\' && inq && p + 1 < end)
                    p++;
                p++;
            }
        }
    }
    return bad ? -1 : 0;
}

/* Strict: an RFC 8941 dictionary. Values we use must be integers; others are parsed and ignored. */
static int sf_bare_item(const char **pp, const char *end, const char **v, size_t *vlen, int *is_int)
{
    const char *p = *pp;
    *is_int = 0;
    if (p == end)
        return -1;
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        const char *s = p;
        if (*p == '-')
            p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d || p - d > 15)
            return -1;
        if (p < end && *p == '.') { /* decimal */
            p++;
            const char *f = p;
            while (p < end && *p >= '0' && *p <= '9')
                p++;
            if (p == f || p - f > 3 || (f - 1) - d > 12)
                return -1;
        } else {
            *is_int = *s != '-';
        }
        *v = s;
        *vlen = (size_t)(p - s);
    } else if (*p == '"') {
        p++;
        *v = p;
        while (p < end && *p != '"') {
            if (*p == '\\') {
                if (p + 1 >= end || (p[1] != '"' && p[1] != '\\'))
                    return -1;
                p++;
            } else if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
                return -1;
            }
            p++;
        }
        if (p == end)
            return -1;
        *vlen = (size_t)(p - *v);
        p++;
    } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '*') {
        *v = p;
        while (p < end && (is_tchar((unsigned char)*p) || *p == ':' || *p == '/'))
            p++;
        *vlen = (size_t)(p - *v);
    } else if (*p == '?') {
        if (p + 1 >= end || (p[1] != '0' && p[1] != '1'))
            return -1;
        *v = p;
        *vlen = 2;
        p += 2;
    } else if (*p == ':') {
        p++;
        *v = p;
        while (p < end && *p != ':') {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '+' || *p == '/' || *p == '='))
                return -1;
            p++;
        }
        if (p == end)
            return -1;
        *vlen = (size_t)(p - *v);
        p++;
    } else {
        return -1;
    }
    *pp = p;
    return 0;
}

static int sf_key(const char **pp, const char *end, size_t *klen)
{
    const char *p = *pp, *s = p;
    if (p == end || !((*p >= 'a' && *p <= 'z') || *p == '*'))
        return -1;
    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                       *p == '-' || *p == '.' || *p == '*'))
        p++;
    *klen = (size_t)(p - s);
    *pp = p;
    return 0;
}

static int parse_strict(struct edge_cc *out, const char *p, const char *end)
{
    struct edge_cc cc = *out;
    while (p < end && *p == ' ')
        p++;
    while (p < end && end[-1] == ' ')
        end--;
    while (p < end) {
        const char *name = p, *v = NULL;
        size_t nlen, vlen = 0;
        int is_int = 0, has_value = 0;
        if (sf_key(&p, end, &nlen) < 0)
            return -1;
        if (p < end && *p == '=') {
            p++;
            if (sf_bare_item(&p, end, &v, &vlen, &is_int) < 0)
                return -1;
            has_value = 1;
        }
        while (p < end && *p == ';') { /* parameters: parsed, ignored */
            p++;
            while (p < end && *p == ' ')
                p++;
            size_t pk;
            const char *pv;
            size_t pvl;
            int pi;
            if (sf_key(&p, end, &pk) < 0)
                return -1;
            if (p < end && *p == '=') {
                p++;
                if (sf_bare_item(&p, end, &pv, &pvl, &pi) < 0)
                    return -1;
            }
        }
        if (has_value && vlen == 2 && v[0] == '?') {
            if (v[1] == '1')
                apply(&cc, name, nlen, NULL, 0, 0); /* boolean true = bare key */
            else
                cc.ndirs++;                          /* explicit false: not set */
        } else if (has_value && !is_int && v[0] != '"') {
            /* a token or decimal where an integer belongs: invalid -> stale (value 0) */
            apply(&cc, name, nlen, "x", 1, 1);
        } else if (has_value && v[0] == '"') {
            apply(&cc, name, nlen, "x", 1, 1);
        } else {
            apply(&cc, name, nlen, v, vlen, has_value);
        }
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            break;
        if (*p != ',')
            return -1;
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            return -1; /* trailing comma */
    }
    *out = cc;
    return 0;
}

int edge_cc_parse(struct edge_cc *cc, const char *s, size_t len, int strict)
{
    if (s == NULL)
        return 0;
    return strict ? parse_strict(cc, s, s + len) : parse_lenient(cc, s, s + len);
}
