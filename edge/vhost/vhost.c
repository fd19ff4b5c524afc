/* edge/vhost/vhost.c - vhost matching and rendezvous parent selection (see vhost.h). */
#include "config.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cdn/http.h"
#include "edge/vhost/vhost.h"

static int host_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
}

int edge_host_normalize(const char *a, size_t len, char *out, size_t cap)
{
    size_t hl = len, o = 0;
    if (len > 0 && a[0] == '[') {
        /* [v6]:port: the host ends at the bracket */
        const char *rb = memchr(a, ']', len);
        if (rb == NULL)
            return -1;
        hl = (size_t)(rb - a) + 1;
        if (hl < len && a[hl] != ':')
            return -1;
        if (hl + 1 > cap)
            return -1;
        for (size_t i = 0; i < hl; i++) {
            unsigned char ch = (unsigned char)a[i];
            if (ch >= 'A' && ch <= 'Z')
                ch = (unsigned char)(ch - 'A' + 'a');
            if (!(i == 0 || i == hl - 1 || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || ch == ':' ||
                  ch == '.'))
                return -1;
            out[o++] = (char)ch;
        }
        out[o] = '\0';
        return (int)o;
    }
    const char *colon = memchr(a, ':', len);
    if (colon != NULL) {
        hl = (size_t)(colon - a);
        for (size_t i = hl + 1; i < len; i++)
            if (a[i] < '0' || a[i] > '9')
                return -1;
    }
    if (hl > 0 && a[hl - 1] == '.')
        hl--;
    if (hl == 0 || hl + 1 > cap)
        return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char ch = (unsigned char)a[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        if (!host_char(ch))
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (int)o;
}

static int sub_delim(unsigned char c) { return c != 0 && strchr("!$&'()*+,;=", c) != NULL; }

static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c; }

/* "[...]" at a (len bytes, brackets included), lowercased into out; 0 or -1 */
static int ip_literal(const char *a, size_t len, char *out)
{
    char in[64];
    if (len < 4 || len - 2 >= sizeof(in) || memchr(a, '\0', len) != NULL) /* in[] is read as a string */
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)lower((unsigned char)a[i]);
    memcpy(in, out + 1, len - 2);
    in[len - 2] = '\0';
    if (in[0] == 'v') { /* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
        size_t i = 1;
        while (cdn_hexval((unsigned char)in[i]) >= 0)
            i++;
        if (i == 1 || in[i] != '.' || in[i + 1] == '\0')
            return -1;
        for (i++; in[i]; i++)
            if (!cdn_url_unreserved((unsigned char)in[i]) && !sub_delim((unsigned char)in[i]) && in[i] != ':')
                return -1;
        return 0;
    }
    struct in6_addr a6;
    return inet_pton(AF_INET6, in, &a6) == 1 ? 0 : -1;
}

int edge_authority_normalize(const char *a, size_t len, unsigned default_port, char *out, size_t cap)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t hl, o = 0;
    if (len == 0 || cap < 2)
        return -1;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', len);
        if (rb == NULL)
            return -1;
        hl = (size_t)(rb - a) + 1;
        if (hl + 1 > cap || ip_literal(a, hl, out) < 0)
            return -1;
        o = hl;
    } else {
        const char *colon = memchr(a, ':', len);
        hl = colon ? (size_t)(colon - a) : len;
        for (size_t i = 0; i < hl; i++) {
            unsigned char c = (unsigned char)a[i];
            int h, l;
            if (o + 2 > cap) /* this byte and the NUL */
                return -1;
            if (c == '%') {
                if (i + 2 >= hl || (h = cdn_hexval((unsigned char)a[i + 1])) < 0 || (l = cdn_hexval((unsigned char)a[i + 2])) < 0)
                    return -1;
                c = (unsigned char)(h * 16 + l);
                i += 2;
                if (cdn_url_unreserved(c)) {
                    out[o++] = (char)lower(c);
                } else {
                    if (o + 4 > cap)
                        return -1;
                    out[o++] = '%';
                    out[o++] = hx[h];
                    out[o++] = hx[l];
                }
            } else if (cdn_url_unreserved(c) || sub_delim(c)) {
                out[o++] = (char)lower(c);
            } else {
                return -1;
            }
        }
        /* an empty label ("a..b", "a..", ".") names no host; one trailing dot names the same
         * host as none (checked in this order, so that the result is its own normal form) */
        if (o == 0 || out[0] == '.')
            return -1;
        for (size_t i = 1; i < o; i++)
            if (out[i] == '.' && out[i - 1] == '.')
                return -1;
        if (out[o - 1] == '.')
            o--;
    }
    if (hl < len) { /* ":" port */
        if (a[hl] != ':')
            return -1;
        unsigned long port = 0;
        size_t i = hl + 1;
        while (i < len && a[i] == '0')
            i++;
        size_t digits = 0;
        for (; i < len; i++, digits++) {
            if (a[i] < '0' || a[i] > '9' || digits >= 5)
                return -1;
            port = port * 10 + (unsigned long)(a[i] - '0');
        }
        if (port > 65535 || (port == 0 && len > hl + 1))
            return -1;
        if (port != 0 && port != default_port) {
            char pb[8];
            int pl = snprintf(pb, sizeof(pb), ":%lu", port);
            if (o + (size_t)pl + 1 > cap)
                return -1;
            memcpy(out + o, pb, (size_t)pl);
            o += (size_t)pl;
        }
    }
    out[o] = '\0';
    return (int)o;
}

int edge_vhost_pattern_ok(const char *p)
{
    char tmp[EDGE_HOST_MAX];
    if (strcmp(p, "*") == 0)
        return 0;
    if (p[0] == '*') {
        if (p[1] != '.' || p[2] == '\0')
            return -1;
        p += 2;
    }
    if (strchr(p, ':') != NULL || strchr(p, '*') != NULL)
        return -1;
    return edge_host_normalize(p, strlen(p), tmp, sizeof(tmp)) < 0 ? -1 : 0;
}

const struct edge_vhost *edge_vhost_match(const struct edge_vhosts *vs, const char *authority, size_t len)
{
    char h[EDGE_HOST_MAX];
    int hl = edge_host_normalize(authority, len, h, sizeof(h));
    if (hl < 0)
        return vs->dflt;
    const struct edge_vhost *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < vs->n; i++) {
        const char *p = vs->names[i];
        if (p[0] != '*') {
            if (strcmp(p, h) == 0)
                return vs->v[i];
            continue;
        }
        if (p[1] != '.')
            continue; /* "*": the default, kept apart */
        /* "*.shop.test" matches "a.shop.test" and "a.b.shop.test", not "shop.test" */
        size_t sl = strlen(p + 1); /* ".shop.test" */
        if ((size_t)hl > sl && memcmp(h + (size_t)hl - sl, p + 1, sl) == 0 && sl > best_len) {
            best = vs->v[i];
            best_len = sl;
        }
    }
    return best ? best : vs->dflt;
}

/* splitmix64: a good 64-bit mixer for combining two ids */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void edge_parent_init(struct edge_parent *p, const char *url)
{
    p->url = url;
    /* fixed key: every edge that lists this parent must rank it the same (rendezvous hashing) */
    p->id = cdn_hash_fixed(url, strlen(url));
    p->down_until_ms = 0;
    p->check_down = 0;
}

void edge_parent_order(const struct edge_parent *p, size_t n, uint64_t key_id, size_t *order)
{
    uint64_t w[EDGE_MAX_PARENTS];
    for (size_t i = 0; i < n && i < EDGE_MAX_PARENTS; i++) {
        w[i] = mix(key_id ^ mix(p[i].id));
        order[i] = i;
    }
    /* insertion sort by weight, highest first; ties by index keep it deterministic */
    for (size_t i = 1; i < n && i < EDGE_MAX_PARENTS; i++) {
        size_t k = order[i];
        size_t j = i;
        while (j > 0 && w[order[j - 1]] < w[k]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
}

int edge_parent_pick(const struct edge_parent *p, size_t n, uint64_t key_id, uint64_t now_ms, uint32_t tried)
{
    size_t order[EDGE_MAX_PARENTS];
    if (n > EDGE_MAX_PARENTS)
        n = EDGE_MAX_PARENTS;
    edge_parent_order(p, n, key_id, order);
    for (size_t i = 0; i < n; i++) {
        size_t k = order[i];
        uint64_t down = __atomic_load_n(&p[k].down_until_ms, __ATOMIC_RELAXED);
        if (!(tried & (1u << k)) && down <= now_ms && !__atomic_load_n(&p[k].check_down, __ATOMIC_RELAXED))
            return (int)k;
    }
    return -1;
}

void edge_parent_mark_down(struct edge_parent *p, uint64_t now_ms, uint64_t for_ms)
{
    __atomic_store_n(&p->down_until_ms, now_ms + for_ms, __ATOMIC_RELAXED);
}

int edge_health_step(struct cdn_risefall *st, int ok, unsigned rise, unsigned fall)
{
    int was = st->up, up = cdn_risefall_observe(st, ok, rise, fall);
    return up == was ? 0 : up ? 1 : -1;
}

/* --- networks (the purge ACL) --- */

int edge_net_parse(const char *s, struct edge_net *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t al = slash ? (size_t)(slash - s) : strlen(s);
    if (al == 0 || al >= sizeof(buf))
        return -1;
    memcpy(buf, s, al);
    buf[al] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max;
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    out->bits = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        unsigned b = 0;
        if (*p == '\0' || strlen(p) > 3)
            return -1;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            b = b * 10 + (unsigned)(*p - '0');
        }
        if (b > max)
            return -1;
        out->bits = b;
    }
    return 0;
}

static int prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & m) == (b[whole] & m);
}

int edge_net_match(const struct edge_net *nets, size_t n, const struct sockaddr *addr)
{
    uint8_t a[16];
    int fam;
    if (addr == NULL)
        return 0;
    if (addr->sa_family == AF_INET) {
        fam = AF_INET;
        memcpy(a, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    } else if (addr->sa_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(x)) {
            fam = AF_INET;
            memcpy(a, x->s6_addr + 12, 4);
        } else {
            fam = AF_INET6;
            memcpy(a, x->s6_addr, 16);
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (nets[i].family == fam && prefix_eq(nets[i].addr, a, nets[i].bits))
            return 1;
    return 0;
}
