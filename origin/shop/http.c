/* origin/shop/http.c - parsers of request header values that come from the network: Range,
 * If-None-Match / If-Range entity tags, HTTP dates, Cookie, query strings, and the cart cookie.
 *
 * Rules: every parser walks a (pointer, length) pair with bounds checks and never reads past it,
 * never allocates, and treats anything malformed as "absent" (RFC 9110: an invalid Range is
 * ignored, an unparseable date is ignored). libFuzzer harness: tests/fuzz/fuzz_shop_http.c.
 *
 * Independent on purpose: shop-app is the origin the edge's tests run against, so its dates,
 * entity-tags and percent-decoding are written apart from lib/http.c (which cdn-edge and shop-lb
 * use). A bug in the shared parser then shows as a disagreement between the two sides of an
 * integration test instead of being shared by both. Do not replace these with cdn/http.h.
 * shop_hash64 (FNV-1a plus a final mix) stays too: shop-app's ETags and shop-lb's hash ring must
 * be the same in every process, and the ring's input (a path, a client address) is the
 * client's choice whatever the hash. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "origin/shop/shop.h"

/* A bounds-checked cursor. */
struct cur {
    const char *p, *end;
};

static int at_end(const struct cur *c) { return c->p >= c->end; }
static int peek(const struct cur *c) { return c->p < c->end ? (unsigned char)*c->p : -1; }
static void skip_ows(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}
static int eat(struct cur *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}
/* Decimal digits into *out (capped: values over 2^62 fail). 1 if at least one digit. */
static int read_u64(struct cur *c, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (UINT64_C(1) << 62) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*c->p - '0');
        c->p++;
        n++;
    }
    *out = v;
    return n > 0;
}

enum shop_range_result shop_range_parse(const char *v, size_t len, uint64_t size, uint64_t *first,
                                        uint64_t *last)
{
    struct cur c = {v, v + len};
    skip_ows(&c);
    if ((size_t)(c.end - c.p) < 6 || strncasecmp(c.p, "bytes=", 6) != 0)
        return SHOP_RANGE_NONE;
    c.p += 6;
    skip_ows(&c);
    uint64_t a = 0, b = 0;
    int has_a, has_b;
    has_a = read_u64(&c, &a);
    if (!eat(&c, '-'))
        return SHOP_RANGE_NONE;
    has_b = read_u64(&c, &b);
    skip_ows(&c);
    if (!at_end(&c))
        return SHOP_RANGE_NONE; /* a list (",") or garbage: several ranges are answered 200 full */
    if (!has_a && !has_b)
        return SHOP_RANGE_NONE;
    if (has_a) {
        if (has_b && b < a)
            return SHOP_RANGE_NONE; /* invalid range-spec: ignore the header */
        if (a >= size)
            return SHOP_RANGE_UNSAT;
        *first = a;
        *last = (!has_b || b >= size) ? size - 1 : b;
        return SHOP_RANGE_OK;
    }
    /* suffix: the last b bytes */
    if (b == 0 || size == 0)
        return SHOP_RANGE_UNSAT;
    *first = b >= size ? 0 : size - b;
    *last = size - 1;
    return SHOP_RANGE_OK;
}

/* One entity-tag at the cursor: [W/]"opaque". Sets *weak and the opaque part (with quotes). */
static int read_etag(struct cur *c, int *weak, const char **tag, size_t *taglen)
{
    *weak = 0;
    if ((size_t)(c->end - c->p) >= 2 && c->p[0] == 'W' && c->p[1] == '/') {
        *weak = 1;
        c->p += 2;
    }
    const char *start = c->p;
    if (!eat(c, '"'))
        return 0;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x21 && ch != '\t')
            return 0;
        c->p++;
    }
    if (!eat(c, '"'))
        return 0;
    *tag = start;
    *taglen = (size_t)(c->p - start);
    return 1;
}

/* Our own tag without its W/ prefix. */
static void own_opaque(const char *etag, size_t len, const char **op, size_t *oplen, int *weak)
{
    *weak = 0;
    if (len >= 2 && etag[0] == 'W' && etag[1] == '/') {
        etag += 2;
        len -= 2;
        *weak = 1;
    }
    *op = etag;
    *oplen = len;
}

int shop_etag_match_weak(const char *v, size_t len, const char *etag, size_t etag_len)
{
    struct cur c = {v, v + len};
    const char *mine;
    size_t minelen;
    int mweak;
    own_opaque(etag, etag_len, &mine, &minelen, &mweak);
    skip_ows(&c);
    if (eat(&c, '*')) {
        skip_ows(&c);
        return at_end(&c);
    }
    for (;;) {
        skip_ows(&c);
        if (at_end(&c))
            return 0;
        if (peek(&c) == ',') { /* empty list elements are allowed */
            c.p++;
            continue;
        }
        int weak;
        const char *tag;
        size_t taglen;
        if (!read_etag(&c, &weak, &tag, &taglen))
            return 0;
        if (taglen == minelen && memcmp(tag, mine, taglen) == 0)
            return 1;
        skip_ows(&c);
        if (!at_end(&c) && !eat(&c, ','))
            return 0;
    }
}

int shop_etag_match_strong(const char *v, size_t len, const char *etag, size_t etag_len)
{
    struct cur c = {v, v + len};
    const char *mine;
    size_t minelen;
    int mweak, weak;
    const char *tag;
    size_t taglen;
    own_opaque(etag, etag_len, &mine, &minelen, &mweak);
    skip_ows(&c);
    if (!read_etag(&c, &weak, &tag, &taglen))
        return 0;
    skip_ows(&c);
    return at_end(&c) && !weak && !mweak && taglen == minelen && memcmp(tag, mine, taglen) == 0;
}

static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const wdays[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static int read_month(struct cur *c)
{
    if (c->end - c->p < 3)
        return -1;
    for (int i = 0; i < 12; i++)
        if (strncmp(c->p, months[i], 3) == 0) {
            c->p += 3;
            return i;
        }
    return -1;
}

static int read_fixed_int(struct cur *c, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        int ch = peek(c);
        if (ch < '0' || ch > '9')
            return 0;
        v = v * 10 + (ch - '0');
        c->p++;
    }
    *out = v;
    return 1;
}

static int read_hms(struct cur *c, int *h, int *m, int *s)
{
    return read_fixed_int(c, 2, h) && eat(c, ':') && read_fixed_int(c, 2, m) && eat(c, ':') &&
           read_fixed_int(c, 2, s);
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm; no timegm/TZ needed). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int shop_http_date_parse(const char *v, size_t len, time_t *out)
{
    struct cur c = {v, v + len};
    int day = 0, mon, year = 0, h, mi, s;
    skip_ows(&c);
    /* weekday name, any length up to the comma or space */
    const char *w = c.p;
    while (c.p < c.end && ((*c.p >= 'A' && *c.p <= 'Z') || (*c.p >= 'a' && *c.p <= 'z')))
        c.p++;
    if (c.p - w < 3)
        return -1;
    if (eat(&c, ',')) {
        if (!eat(&c, ' '))
            return -1;
        if (peek(&c) >= '0' && peek(&c) <= '9' && c.end - c.p > 2 && c.p[2] == ' ') {
            /* IMF-fixdate: 06 Nov 1994 08:49:37 GMT */
            if (!read_fixed_int(&c, 2, &day) || !eat(&c, ' ') || (mon = read_month(&c)) < 0 ||
                !eat(&c, ' ') || !read_fixed_int(&c, 4, &year))
                return -1;
        } else {
            /* RFC 850: 06-Nov-94 08:49:37 GMT */
            int yy;
            if (!read_fixed_int(&c, 2, &day) || !eat(&c, '-') || (mon = read_month(&c)) < 0 ||
                !eat(&c, '-') || !read_fixed_int(&c, 2, &yy))
                return -1;
            year = yy < 70 ? 2000 + yy : 1900 + yy;
        }
        if (!eat(&c, ' ') || !read_hms(&c, &h, &mi, &s) || !eat(&c, ' ') || c.end - c.p < 3 ||
            strncmp(c.p, "GMT", 3) != 0)
            return -1;
        c.p += 3;
    } else {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if (!eat(&c, ' ') || (mon = read_month(&c)) < 0 || !eat(&c, ' '))
            return -1;
        if (eat(&c, ' ')) {
            if (!read_fixed_int(&c, 1, &day))
                return -1;
        } else if (!read_fixed_int(&c, 2, &day))
            return -1;
        if (!eat(&c, ' ') || !read_hms(&c, &h, &mi, &s) || !eat(&c, ' ') || !read_fixed_int(&c, 4, &year))
            return -1;
    }
    skip_ows(&c);
    if (!at_end(&c) || day < 1 || day > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    int64_t t = days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + h * 3600 + mi * 60 + s;
    *out = (time_t)t;
    return 0;
}

void shop_http_date_format(time_t t, char buf[30])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int shop_cookie_get(const char *v, size_t len, const char *name, char *out, size_t cap)
{
    struct cur c = {v, v + len};
    size_t nlen = strlen(name);
    while (!at_end(&c)) {
        skip_ows(&c);
        const char *k = c.p;
        while (c.p < c.end && *c.p != '=' && *c.p != ';')
            c.p++;
        const char *kend = c.p;
        while (kend > k && (kend[-1] == ' ' || kend[-1] == '\t'))
            kend--;
        const char *val = c.p, *vend = c.p;
        if (eat(&c, '=')) {
            skip_ows(&c);
            val = c.p;
            while (c.p < c.end && *c.p != ';')
                c.p++;
            vend = c.p;
            while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            if (vend - val >= 2 && *val == '"' && vend[-1] == '"') {
                val++;
                vend--;
            }
        }
        eat(&c, ';');
        if ((size_t)(kend - k) == nlen && memcmp(k, name, nlen) == 0) {
            size_t vl = (size_t)(vend - val);
            if (cap == 0 || vl >= cap)
                return -1;
            memcpy(out, val, vl);
            out[vl] = '\0';
            return (int)vl;
        }
    }
    return -1;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int shop_query_get(const char *q, size_t len, const char *name, char *out, size_t cap)
{
    struct cur c = {q, q + len};
    size_t nlen = strlen(name);
    eat(&c, '?');
    while (!at_end(&c)) {
        const char *k = c.p;
        while (c.p < c.end && *c.p != '=' && *c.p != '&')
            c.p++;
        const char *kend = c.p;
        const char *val = c.p, *vend = c.p;
        if (eat(&c, '=')) {
            val = c.p;
            while (c.p < c.end && *c.p != '&')
                c.p++;
            vend = c.p;
        }
        eat(&c, '&');
        if ((size_t)(kend - k) != nlen || memcmp(k, name, nlen) != 0)
            continue;
        size_t o = 0;
        for (const char *p = val; p < vend; p++) {
            int ch = (unsigned char)*p;
            if (ch == '+')
                ch = ' ';
            else if (ch == '%' && vend - p >= 3 && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
                ch = hexval(p[1]) * 16 + hexval(p[2]);
                p += 2;
            }
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)ch;
        }
        if (cap == 0)
            return -1;
        out[o] = '\0';
        return (int)o;
    }
    return -1;
}

size_t shop_cart_parse(const char *v, size_t len, struct shop_cart *cart)
{
    struct cur c = {v, v + len};
    cart->n = 0;
    while (!at_end(&c)) {
        uint64_t id = 0, qty = 0;
        int ok = read_u64(&c, &id) && eat(&c, ':') && read_u64(&c, &qty);
        /* trailing garbage invalidates the item; skip to the next one whatever happened */
        if (c.p < c.end && *c.p != '.')
            ok = 0;
        while (c.p < c.end && *c.p != '.')
            c.p++;
        eat(&c, '.');
        if (ok && id >= 1 && id <= UINT32_MAX && qty >= 1 && qty <= 999)
            shop_cart_set(cart, (uint32_t)id, (uint32_t)qty);
    }
    return cart->n;
}

int shop_cart_set(struct shop_cart *cart, uint32_t id, uint32_t qty)
{
    for (size_t i = 0; i < cart->n; i++) {
        if (cart->items[i].id != id)
            continue;
        if (qty == 0) {
            memmove(&cart->items[i], &cart->items[i + 1], (cart->n - i - 1) * sizeof(cart->items[0]));
            cart->n--;
        } else
            cart->items[i].qty = qty;
        return 0;
    }
    if (qty == 0)
        return 0;
    if (cart->n >= SHOP_CART_MAX)
        return -1;
    cart->items[cart->n].id = id;
    cart->items[cart->n].qty = qty;
    cart->n++;
    return 0;
}

size_t shop_cart_format(const struct shop_cart *cart, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < cart->n; i++) {
        int n = snprintf(o < cap ? buf + o : NULL, o < cap ? cap - o : 0, "%s%u:%u", i ? "." : "",
                         cart->items[i].id, cart->items[i].qty);
        o += (size_t)n;
    }
    return o;
}

uint64_t shop_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    /* final avalanche (FNV alone clusters on a ring for similar keys) */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t shop_hash64_str(const char *s) { return shop_hash64(s, strlen(s)); }

int shop_local_path_ok(const char *v, size_t len)
{
    if (v == NULL || len == 0 || len > 255 || v[0] != '/')
        return 0;
    if (len > 1 && (v[1] == '/' || v[1] == '\\'))
        return 0; /* "//host" and "/\host" are another site to a browser */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '\\')
            return 0;
    }
    return 1;
}

/* Accept: a comma list of media ranges, each with ";name=value" parameters (a value a token or a
 * quoted-string, which may hold commas); "q" is the weight. One pass with a cursor; a member
 * whose weight is malformed is skipped, nothing else is refused. */
static size_t acc_ows(const char *v, size_t len, size_t i)
{
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    return i;
}

/* A quoted-string from v[i] == '"': the index after its closing quote (or len). */
static size_t skip_quoted(const char *v, size_t len, size_t i)
{
    for (i++; i < len && v[i] != '"'; i++)
        if (v[i] == '\\' && i + 1 < len)
            i++;
    return i < len ? i + 1 : len;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) over [s, e): 0..1000, or -1. */
static int parse_qvalue(const char *v, size_t s, size_t e)
{
    if (s >= e || (v[s] != '0' && v[s] != '1'))
        return -1;
    int q = (v[s] - '0') * 1000, scale = 100;
    size_t i = s + 1;
    if (i < e) {
        if (v[i++] != '.' || e - i > 3)
            return -1;
        for (; i < e; i++, scale /= 10) {
            if (v[i] < '0' || v[i] > '9')
                return -1;
            q += (v[i] - '0') * scale;
        }
    }
    return q <= 1000 ? q : -1;
}

int shop_accept_q(const char *v, size_t len, const char *type)
{
    size_t tl = strlen(type), i = 0;
    if (v == NULL)
        return -1;
    while (i < len) {
        i = acc_ows(v, len, i);
        size_t s = i;
        while (i < len && v[i] != ',' && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
            i++;
        size_t e = i;
        int q = 1000;
        while (i < len && v[i] != ',') {
            if (v[i] == '"') {
                i = skip_quoted(v, len, i);
                continue;
            }
            if (v[i] != ';') {
                i++;
                continue;
            }
            i = acc_ows(v, len, i + 1);
            size_t ns = i;
            while (i < len && v[i] != '=' && v[i] != ';' && v[i] != ',')
                i++;
            int is_q = i - ns == 1 && (v[ns] == 'q' || v[ns] == 'Q');
            if (i >= len || v[i] != '=')
                continue;
            size_t vs = ++i;
            if (i < len && v[i] == '"')
                i = skip_quoted(v, len, i);
            else
                while (i < len && v[i] != ';' && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
                    i++;
            if (is_q)
                q = parse_qvalue(v, vs, i);
        }
        if (i < len)
            i++; /* the comma */
        if (q >= 0 && e - s == tl && strncasecmp(v + s, type, tl) == 0)
            return q;
    }
    return -1;
}
