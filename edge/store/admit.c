/* edge/store/admit.c - disk-tier admission (see admit.h). */
#include "config.h"
#include <stdlib.h>
#include <string.h>

#include "edge/store/admit.h"

#define MIN_WINDOW 4096
#define BITS_PER_ID 8
#define NHASH 3

struct edge_admit {
    enum edge_admit_kind kind;
    uint64_t seed;
    uint64_t *gen[2]; /* [0] current, [1] previous; nbits each (a power of two) */
    size_t nbits, added, window;
};

int edge_admit_kind_parse(const char *s)
{
    if (strcmp(s, "all") == 0)
        return EDGE_ADMIT_ALL;
    if (strcmp(s, "second-hit") == 0)
        return EDGE_ADMIT_SECOND_HIT;
    return -1;
}

const char *edge_admit_kind_name(enum edge_admit_kind k) { return k == EDGE_ADMIT_SECOND_HIT ? "second-hit" : "all"; }

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Filters of at least window ids (both generations cleared). 0, or -1 out of memory. */
static int filters(struct edge_admit *a, size_t window)
{
    size_t nbits = 64;
    while (nbits < window * BITS_PER_ID)
        nbits *= 2;
    uint64_t *g0 = calloc(nbits / 64, sizeof(uint64_t)), *g1 = calloc(nbits / 64, sizeof(uint64_t));
    if (g0 == NULL || g1 == NULL) {
        free(g0);
        free(g1);
        return -1;
    }
    free(a->gen[0]);
    free(a->gen[1]);
    a->gen[0] = g0;
    a->gen[1] = g1;
    a->nbits = nbits;
    a->window = window;
    a->added = 0;
    return 0;
}

struct edge_admit *edge_admit_new(enum edge_admit_kind kind, uint64_t seed)
{
    struct edge_admit *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->kind = kind;
    a->seed = seed;
    if (kind == EDGE_ADMIT_SECOND_HIT && filters(a, MIN_WINDOW) < 0) {
        free(a);
        return NULL;
    }
    return a;
}

void edge_admit_free(struct edge_admit *a)
{
    if (a == NULL)
        return;
    free(a->gen[0]);
    free(a->gen[1]);
    free(a);
}

/* The generations turn: previous = current, current = cleared; at a new size if window moved
 * by more than a factor of two (then both start empty). */
static void turn(struct edge_admit *a, size_t window)
{
    if ((window > a->window * 2 || window * 2 < a->window) && filters(a, window) == 0)
        return;
    uint64_t *t = a->gen[1];
    a->gen[1] = a->gen[0];
    a->gen[0] = t;
    memset(a->gen[0], 0, a->nbits / 8);
    a->added = 0;
}

static void bits(const struct edge_admit *a, uint64_t id, uint64_t bit[NHASH])
{
    uint64_t h = mix64(id ^ a->seed), h2 = mix64(h) | 1;
    for (int k = 0; k < NHASH; k++)
        bit[k] = (h + (uint64_t)k * h2) & (a->nbits - 1);
}

static int has(const struct edge_admit *a, int g, const uint64_t bit[NHASH])
{
    for (int k = 0; k < NHASH; k++)
        if (!(a->gen[g][bit[k] / 64] >> (bit[k] % 64) & 1))
            return 0;
    return 1;
}

int edge_admit_miss(struct edge_admit *a, uint64_t id, size_t window, int room)
{
    if (a->kind == EDGE_ADMIT_ALL)
        return 1;
    if (window < MIN_WINDOW)
        window = MIN_WINDOW;
    uint64_t bit[NHASH];
    bits(a, id, bit);
    int cur = has(a, 0, bit), seen = cur || has(a, 1, bit);
    if (!cur) {
        if (a->added >= a->window) {
            turn(a, window);
            bits(a, id, bit); /* the filters may have a new size */
        }
        for (int k = 0; k < NHASH; k++)
            a->gen[0][bit[k] / 64] |= 1ULL << (bit[k] % 64);
        a->added++;
    }
    return seen || room;
}

size_t edge_admit_bytes(const struct edge_admit *a) { return sizeof(*a) + 2 * a->nbits / 8; }
