/* origin/lb/lb.h - shop-lb's internals shared by its source files and unit tests.
 *
 * algo.c: how a backend is chosen (smooth weighted round robin, least connections, a consistent
 * hash ring with virtual nodes); pure, tests/unit/t_shop_lb.c. The rest of the balancer's
 * internal API (pools, proxying, config, admin) is in lb/lbd.h. */
#ifndef ORIGIN_LB_H
#define ORIGIN_LB_H

#include <stddef.h>
#include <stdint.h>

/* ---------------- algo.c: backend choice ---------------- */

enum lb_algo { LB_RR, LB_LEASTCONN, LB_HASH_CLIENT, LB_HASH_URL };
extern const char *const lb_algo_names[]; /* NULL-terminated, in enum order */
int lb_algo_parse(const char *s);

/* What the algorithms need to know about a backend. The LB keeps one per backend. */
struct lb_member {
    const char *name;          /* stable identity, hashed onto the ring */
    unsigned weight;           /* configured, >= 1 */
    double eff_weight;         /* weight now (slow start ramps it); 0 = not eligible */
    int available;             /* up and not drained */
    unsigned active;           /* requests in flight */
    double current;            /* smooth WRR state */
};

/* Smooth weighted round robin (nginx's): index of the chosen member, -1 if none eligible.
 * Members whose bit is set in `exclude` (bit i = member i, i < 64) are skipped. */
int lb_pick_rr(struct lb_member *m, size_t n, uint64_t exclude);
/* Fewest active/eff_weight; ties go round-robin from *rotor. */
int lb_pick_leastconn(struct lb_member *m, size_t n, uint64_t exclude, unsigned *rotor);

/* Consistent hash ring with virtual nodes (weight * vnodes points per member). */
struct lb_ring_point {
    uint64_t hash;
    uint32_t member;
};
struct lb_ring {
    struct lb_ring_point *pts;
    size_t n;
};
/* Builds the ring for members[0..n) (all of them, available or not, so that a member going down
 * only moves its own keys). 0 or -1 (out of memory). */
int lb_ring_build(struct lb_ring *r, const struct lb_member *m, size_t n, unsigned vnodes);
void lb_ring_free(struct lb_ring *r);
/* The first available, non-excluded member clockwise from the key's hash; -1 if none. */
int lb_ring_pick(const struct lb_ring *r, const struct lb_member *m, size_t n,
                   uint64_t key_hash, uint64_t exclude);

#endif
