/* lab/cachesim/offline.c - offline references for cdn-cachesim (see cachesim.h): they know the
 * future, so they bound what an online policy can reach on a trace.
 *
 * - belady: on a miss the object is admitted unless it is never requested again; while the bytes
 *   exceed the capacity, the resident object requested farthest in the future leaves (it may be
 *   the one just admitted: then it was bypassed). Optimal for objects of one size; with sizes it
 *   ignores them, so it is a strong reference for byte misses.
 * - belady-size (as libCacheSim's BeladySize): the victim is the one with the largest
 *   (distance to its next request) x size among 64 resident objects drawn at random (a fixed
 *   seed, so runs repeat). Evicting a large far object frees room for many small near ones: a
 *   strong reference for object misses.
 * Neither is the exact optimum with variable sizes (that is NP-hard); the table reports the gap
 * to the better of the two for each metric.
 *
 * Rules: the next-request index of every record comes from one backward pass (lab_sim_next).
 * belady keeps a max-heap of (next, node) with lazy deletion: an entry whose next no longer
 * matches its node's is stale and skipped. Both are O(log n) (belady) or O(64) (belady-size)
 * per eviction. */
#include "config.h"
#include <stdlib.h>
#include <string.h>

#include "edge/store/idmap.h"
#include "lab/cachesim/cachesim.h"

#define NEVER UINT32_MAX
#define SAMPLES 64

static inline uint64_t sim_id(uint64_t id) { return id ? id : UINT64_MAX; }

int lab_sim_next(const struct lab_trace *t, uint32_t **next)
{
    *next = NULL;
    if (t->n >= NEVER)
        return -1;
    uint32_t *nx = malloc((t->n ? t->n : 1) * sizeof(*nx));
    struct edge_idmap m;
    if (nx == NULL || edge_idmap_init(&m, 1024) < 0) {
        free(nx);
        return -1;
    }
    for (size_t i = t->n; i-- > 0;) {
        uint64_t id = sim_id(t->r[i].id), v;
        nx[i] = edge_idmap_get(&m, id, &v) ? (uint32_t)v : NEVER;
        if (edge_idmap_put(&m, id, i) < 0) {
            edge_idmap_free(&m);
            free(nx);
            return -1;
        }
    }
    edge_idmap_free(&m);
    *next = nx;
    return 0;
}

struct onode {
    uint64_t id, size;
    uint32_t next; /* index of its next request, NEVER if none */
    uint32_t pos;  /* belady-size: its place in res[] */
};

struct hent {
    uint32_t next, node;
};

struct off {
    struct onode *nodes;
    uint32_t nn, free_head;
    struct edge_idmap map; /* id -> node */
    struct hent *heap;     /* belady: max-heap on next */
    size_t nh, hcap;
    uint32_t *res; /* belady-size: resident nodes, for sampling */
    size_t nres;
    uint64_t bytes, rng;
};

static int heap_push(struct off *o, uint32_t next, uint32_t node)
{
    if (o->nh == o->hcap) {
        size_t nc = o->hcap ? o->hcap * 2 : 1024;
        struct hent *h = realloc(o->heap, nc * sizeof(*h));
        if (h == NULL)
            return -1;
        o->heap = h;
        o->hcap = nc;
    }
    size_t i = o->nh++;
    while (i > 0 && o->heap[(i - 1) / 2].next < next) {
        o->heap[i] = o->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    o->heap[i] = (struct hent){next, node};
    return 0;
}

static struct hent heap_pop(struct off *o)
{
    struct hent top = o->heap[0], last = o->heap[--o->nh];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= o->nh)
            break;
        if (c + 1 < o->nh && o->heap[c + 1].next > o->heap[c].next)
            c++;
        if (o->heap[c].next <= last.next)
            break;
        o->heap[i] = o->heap[c];
        i = c;
    }
    if (o->nh)
        o->heap[i] = last;
    return top;
}

static uint64_t rnd(struct off *o)
{
    o->rng ^= o->rng << 13;
    o->rng ^= o->rng >> 7;
    o->rng ^= o->rng << 17;
    return o->rng;
}

static void evict_node(struct off *o, uint32_t n, int sized)
{
    struct onode *d = &o->nodes[n];
    o->bytes -= d->size;
    edge_idmap_del(&o->map, d->id);
    if (sized) {
        uint32_t last = o->res[--o->nres];
        o->res[d->pos] = last;
        o->nodes[last].pos = d->pos;
    }
    d->pos = o->free_head;
    o->free_head = n;
}

/* The next victim, or NEVER if nothing is resident */
static uint32_t victim(struct off *o, int sized, uint32_t now)
{
    if (!sized) {
        while (o->nh > 0) {
            struct hent h = heap_pop(o);
            struct onode *d = &o->nodes[h.node];
            uint64_t v;
            /* stale: the node moved on to a later request, or left and was reused */
            if (d->next == h.next && edge_idmap_get(&o->map, d->id, &v) && v == h.node)
                return h.node;
        }
        return NEVER;
    }
    if (o->nres == 0)
        return NEVER;
    uint32_t best = NEVER;
    double bv = -1;
    for (int k = 0; k < SAMPLES; k++) {
        uint32_t n = o->res[rnd(o) % o->nres];
        const struct onode *d = &o->nodes[n];
        double dist = d->next == NEVER ? 1e18 : (double)(d->next - now);
        double v = dist * (double)d->size;
        if (v > bv) {
            bv = v;
            best = n;
        }
    }
    return best;
}

int lab_sim_offline(const struct lab_trace *t, const uint32_t *next, int sized, uint64_t cap,
                    struct lab_sim_result *res)
{
    memset(res, 0, sizeof(*res));
    struct off o = {.free_head = NEVER, .rng = 0x9e3779b97f4a7c15ULL};
    int rc = -1;
    if (edge_idmap_init(&o.map, 1024) < 0)
        return -1;
    o.nodes = malloc((t->n ? t->n : 1) * sizeof(*o.nodes));
    o.res = sized ? malloc((t->n ? t->n : 1) * sizeof(*o.res)) : NULL;
    if (o.nodes == NULL || (sized && o.res == NULL))
        goto out;
    for (size_t i = 0; i < t->n; i++) {
        const struct lab_trace_rec *r = &t->r[i];
        uint64_t id = sim_id(r->id), v;
        res->reqs++;
        res->req_bytes += r->size;
        if (edge_idmap_get(&o.map, id, &v)) {
            o.nodes[v].next = next[i];
            /* (NEVER is the largest next: such an object is the first to leave) */
            if (!sized && heap_push(&o, next[i], (uint32_t)v) < 0)
                goto out;
            continue;
        }
        res->misses++;
        res->miss_bytes += r->size;
        if (next[i] == NEVER || r->size > cap)
            continue; /* never requested again: not admitted */
        uint32_t n;
        if (o.free_head != NEVER) {
            n = o.free_head;
            o.free_head = o.nodes[n].pos;
        } else {
            n = o.nn++;
        }
        o.nodes[n] = (struct onode){.id = id, .size = r->size, .next = next[i]};
        if (edge_idmap_put(&o.map, id, n) < 0)
            goto out;
        o.bytes += r->size;
        if (sized) {
            o.nodes[n].pos = (uint32_t)o.nres;
            o.res[o.nres++] = n;
        } else if (heap_push(&o, next[i], n) < 0) {
            goto out;
        }
        while (o.bytes > cap) {
            uint32_t vn = victim(&o, sized, (uint32_t)i);
            if (vn == NEVER)
                break;
            evict_node(&o, vn, sized);
        }
    }
    rc = 0;
out:
    edge_idmap_free(&o.map);
    free(o.nodes);
    free(o.res);
    free(o.heap);
    return rc;
}
