/* cdn/risefall.h - the one rise/fall rule of every health check (shop-lb's backends, cdn-edge's
 * parents, cdn-dns's edges).
 *
 * Rule: a target goes down after `fall` failed checks in a row and comes up after `rise` good
 * checks in a row (0 counts as 1). A target never observed before that passes its first check
 * comes up at once (no request waits `rise` intervals at start-up). Pure: no clock, no locks; the
 * caller keeps the state where it likes (under its own lock if threads share it). */
#ifndef CDN_RISEFALL_H
#define CDN_RISEFALL_H

#include <stdint.h>

struct cdn_risefall {
    uint8_t up;           /* counted as up; set the starting state before the first observation */
    uint8_t seen;         /* has had a check result yet */
    uint16_t ok_run;      /* good checks in a row (saturates) */
    uint16_t fail_run;    /* failed checks in a row (saturates) */
};

/* One check result. Returns the new state: 1 up, 0 down (compare with the old st->up to see a
 * change). */
int cdn_risefall_observe(struct cdn_risefall *st, int ok, unsigned rise, unsigned fall);

#endif
