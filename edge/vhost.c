/* edge/vhost.c - vhost matching and rendezvous parent selection (see vhost.h). */
#include "config.h"
#include <string.h>

#include "edge/vhost.h"

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
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)url; *s; s++)
        h = (h ^ *s) * 1099511628211ULL;
    p->url = url;
    p->id = h;
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

int edge_health_step(struct edge_health_state *st, int ok, unsigned rise, unsigned fall)
{
    if (ok) {
        st->bad = 0;
        if (st->good < UINT32_MAX)
            st->good++;
        if (st->down && st->good >= (rise ? rise : 1)) {
            st->down = 0;
            return 1;
        }
    } else {
        st->good = 0;
        if (st->bad < UINT32_MAX)
            st->bad++;
        if (!st->down && st->bad >= (fall ? fall : 1)) {
            st->down = 1;
            return -1;
        }
    }
    return 0;
}
