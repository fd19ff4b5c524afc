/* origin/lb/algo.c - how shop-lb chooses a backend: smooth weighted round robin, least
 * connections, and a consistent hash ring with virtual nodes.
 *
 * Pure: the caller keeps the members' state (availability, slow-start weight, requests in
 * flight) and passes it in; nothing here reads a clock. A member is eligible when it is available
 * and its bit is not set in `exclude` (the backends a retry already tried).
 *
 * The ring holds every member, available or not: when one goes down its keys go to the next
 * point clockwise and nobody else's keys move; when it comes back they return. Adding a member
 * only takes keys from the others (about 1/N of them). tests/unit/t_shop_lb.c measures both. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "origin/lb/lb.h"
#include "origin/shop/shop.h"

const char *const lb_algo_names[] = {"rr", "leastconn", "hash-client", "hash-url", NULL};

int lb_algo_parse(const char *s)
{
    for (int i = 0; lb_algo_names[i] != NULL; i++)
        if (strcmp(s, lb_algo_names[i]) == 0)
            return i;
    return -1;
}

static int eligible(const struct lb_member *m, size_t i, uint64_t exclude)
{
    return m[i].available && m[i].eff_weight > 0 && !(i < 64 && (exclude >> i) & 1);
}

int lb_pick_rr(struct lb_member *m, size_t n, uint64_t exclude)
{
    double total = 0;
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!eligible(m, i, exclude))
            continue;
        m[i].current += m[i].eff_weight;
        total += m[i].eff_weight;
        if (best < 0 || m[i].current > m[best].current)
            best = (int)i;
    }
    if (best >= 0)
        m[best].current -= total;
    return best;
}

int lb_pick_leastconn(struct lb_member *m, size_t n, uint64_t exclude, unsigned *rotor)
{
    int best = -1;
    double best_load = 0;
    if (n == 0)
        return -1;
    unsigned start = *rotor % n;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!eligible(m, i, exclude))
            continue;
        /* +1: a member with no requests but a tiny slow-start weight is not "infinitely free" */
        double load = (m[i].active + 1) / m[i].eff_weight;
        if (best < 0 || load < best_load) {
            best = (int)i;
            best_load = load;
        }
    }
    (*rotor)++;
    return best;
}

static int by_hash(const void *a, const void *b)
{
    const struct lb_ring_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->member < y->member ? -1 : x->member > y->member;
}

int lb_ring_build(struct lb_ring *r, const struct lb_member *m, size_t n, unsigned vnodes)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (size_t)(m[i].weight ? m[i].weight : 1) * vnodes;
    struct lb_ring_point *pts = total ? malloc(total * sizeof(*pts)) : NULL;
    if (total && pts == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned nv = (m[i].weight ? m[i].weight : 1) * vnodes;
        for (unsigned v = 0; v < nv; v++) {
            char key[300];
            int len = snprintf(key, sizeof(key), "%s#%u", m[i].name, v);
            pts[k].hash = shop_hash64(key, (size_t)len < sizeof(key) ? (size_t)len : sizeof(key) - 1);
            pts[k].member = (uint32_t)i;
            k++;
        }
    }
    if (total)
        qsort(pts, total, sizeof(*pts), by_hash);
    r->pts = pts;
    r->n = total;
    return 0;
}

void lb_ring_free(struct lb_ring *r)
{
    free(r->pts);
    r->pts = NULL;
    r->n = 0;
}

int lb_ring_pick(const struct lb_ring *r, const struct lb_member *m, size_t n,
                   uint64_t key_hash, uint64_t exclude)
{
    if (r->n == 0)
        return -1;
    /* first point with hash >= key */
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->pts[mid].hash < key_hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < r->n; k++) {
        uint32_t i = r->pts[(lo + k) % r->n].member;
        /* the ring ignores slow start (eff_weight) so a returning member gets its keys back */
        if (i < n && m[i].available && !(i < 64 && (exclude >> i) & 1))
            return (int)i;
    }
    return -1;
}
