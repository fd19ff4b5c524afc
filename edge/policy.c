/* edge/policy.c - LRU, S3-FIFO and SIEVE over ids and sizes (see policy.h).
 *
 * Rules: nodes live in one array (indexes, not pointers, so the array can grow); an idmap finds a
 * node by id; each queue is a doubly linked list, head = newest. Invariant: bytes = sum of the
 * sizes of resident nodes <= capacity after every insert returns. SIEVE keeps its hand on a node
 * of the main queue (or NIL: start at the tail); dropping that node moves the hand to the next newer. */
#include "config.h"
#include <stdlib.h>
#include <string.h>

#include "edge/idmap.h"
#include "edge/policy.h"

#define NIL UINT32_MAX
enum { Q_SMALL, Q_MAIN, NQ };

struct node {
    uint64_t id, size;
    uint32_t prev, next;
    uint8_t q, freq;
};

struct queue {
    uint32_t head, tail;
    uint64_t bytes;
    size_t n;
};

struct edge_policy {
    enum edge_policy_kind kind;
    uint64_t cap, bytes;
    struct node *nodes;
    uint32_t nnodes, nalloc, free_head;
    uint32_t hand; /* SIEVE */
    struct edge_idmap map;
    struct queue q[NQ];
    /* S3-FIFO ghost: ring of ids; ghost map id -> sequence number of its newest ring entry */
    uint64_t *ring;
    size_t ring_cap, ring_head, ring_n;
    uint64_t seq;
    struct edge_idmap ghost;
};

int edge_policy_kind_parse(const char *s)
{
    if (strcmp(s, "lru") == 0)
        return EDGE_POLICY_LRU;
    if (strcmp(s, "s3fifo") == 0 || strcmp(s, "s3-fifo") == 0)
        return EDGE_POLICY_S3FIFO;
    if (strcmp(s, "sieve") == 0)
        return EDGE_POLICY_SIEVE;
    return -1;
}

const char *edge_policy_kind_name(enum edge_policy_kind k)
{
    return k == EDGE_POLICY_LRU ? "lru" : k == EDGE_POLICY_SIEVE ? "sieve" : "s3fifo";
}

struct edge_policy *edge_policy_new(enum edge_policy_kind kind, uint64_t capacity)
{
    struct edge_policy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->kind = kind;
    p->cap = capacity;
    p->free_head = p->hand = NIL;
    for (int i = 0; i < NQ; i++)
        p->q[i].head = p->q[i].tail = NIL;
    if (edge_idmap_init(&p->map, 64) < 0 || edge_idmap_init(&p->ghost, 64) < 0) {
        edge_policy_free(p);
        return NULL;
    }
    return p;
}

void edge_policy_free(struct edge_policy *p)
{
    if (p == NULL)
        return;
    edge_idmap_free(&p->map);
    edge_idmap_free(&p->ghost);
    free(p->nodes);
    free(p->ring);
    free(p);
}

static void unlink_node(struct edge_policy *p, uint32_t i)
{
    struct node *n = &p->nodes[i];
    struct queue *q = &p->q[n->q];
    if (n->prev != NIL) p->nodes[n->prev].next = n->next; else q->head = n->next;
    if (n->next != NIL) p->nodes[n->next].prev = n->prev; else q->tail = n->prev;
    q->bytes -= n->size;
    q->n--;
}

static void push_head(struct edge_policy *p, uint32_t i, int qi)
{
    struct node *n = &p->nodes[i];
    struct queue *q = &p->q[qi];
    n->q = (uint8_t)qi;
    n->prev = NIL;
    n->next = q->head;
    if (q->head != NIL) p->nodes[q->head].prev = i; else q->tail = i;
    q->head = i;
    q->bytes += n->size;
    q->n++;
}

static void drop(struct edge_policy *p, uint32_t i)
{
    if (p->hand == i)
        p->hand = p->nodes[i].prev;
    unlink_node(p, i);
    p->bytes -= p->nodes[i].size;
    edge_idmap_del(&p->map, p->nodes[i].id);
    p->nodes[i].next = p->free_head;
    p->free_head = i;
}

static void ghost_add(struct edge_policy *p, uint64_t id)
{
    size_t want = p->q[Q_MAIN].n + p->q[Q_SMALL].n + 16;
    if (p->ring_cap < want && p->ring_n == p->ring_cap) {
        size_t nc = p->ring_cap ? p->ring_cap * 2 : 64;
        uint64_t *nr = malloc(nc * sizeof(*nr));
        if (nr == NULL)
            return;
        for (size_t k = 0; k < p->ring_n; k++)
            nr[k] = p->ring[(p->ring_head + k) % p->ring_cap];
        free(p->ring);
        p->ring = nr;
        p->ring_cap = nc;
        p->ring_head = 0;
    }
    while (p->ring_n > 0 && (p->ring_n == p->ring_cap || p->ring_n >= want)) {
        uint64_t old = p->ring[p->ring_head];
        uint64_t s;
        if (edge_idmap_get(&p->ghost, old, &s) && s == p->seq - p->ring_n)
            edge_idmap_del(&p->ghost, old);
        p->ring_head = (p->ring_head + 1) % p->ring_cap;
        p->ring_n--;
    }
    if (p->ring_cap == 0)
        return;
    p->ring[(p->ring_head + p->ring_n) % p->ring_cap] = id;
    p->ring_n++;
    edge_idmap_put(&p->ghost, id, p->seq++);
}

/* One victim out (S3-FIFO may first move survivors around). Returns 0 if nothing is left. */
static int evict_one(struct edge_policy *p, edge_evict_cb evict, void *data)
{
    if (p->kind == EDGE_POLICY_LRU) {
        uint32_t t = p->q[Q_MAIN].tail;
        if (t == NIL)
            return 0;
        uint64_t id = p->nodes[t].id;
        drop(p, t);
        if (evict)
            evict(id, data);
        return 1;
    }
    if (p->kind == EDGE_POLICY_SIEVE) {
        uint32_t h = p->hand != NIL ? p->hand : p->q[Q_MAIN].tail;
        if (h == NIL)
            return 0;
        while (p->nodes[h].freq) { /* visited: spare it once, walk towards the newest, wrap */
            p->nodes[h].freq = 0;
            h = p->nodes[h].prev;
            if (h == NIL)
                h = p->q[Q_MAIN].tail;
        }
        uint64_t id = p->nodes[h].id;
        p->hand = h; /* drop moves it on */
        drop(p, h);
        if (evict)
            evict(id, data);
        return 1;
    }
    for (;;) {
        if (p->q[Q_SMALL].n == 0 && p->q[Q_MAIN].n == 0)
            return 0;
        if (p->q[Q_SMALL].n > 0 && (p->q[Q_SMALL].bytes >= p->cap / 10 || p->q[Q_MAIN].n == 0)) {
            uint32_t t = p->q[Q_SMALL].tail;
            if (p->nodes[t].freq > 0) { /* accessed while in small: promote */
                unlink_node(p, t);
                p->nodes[t].freq = 0;
                push_head(p, t, Q_MAIN);
                continue;
            }
            uint64_t id = p->nodes[t].id;
            drop(p, t);
            ghost_add(p, id);
            if (evict)
                evict(id, data);
            return 1;
        }
        uint32_t t = p->q[Q_MAIN].tail;
        if (p->nodes[t].freq > 0) { /* reinsert with one less */
            unlink_node(p, t);
            p->nodes[t].freq--;
            push_head(p, t, Q_MAIN);
            continue;
        }
        uint64_t id = p->nodes[t].id;
        drop(p, t);
        if (evict)
            evict(id, data);
        return 1;
    }
}

int edge_policy_hit(struct edge_policy *p, uint64_t id)
{
    uint64_t v;
    if (!edge_idmap_get(&p->map, id, &v))
        return 0;
    uint32_t i = (uint32_t)v;
    if (p->kind == EDGE_POLICY_LRU) {
        unlink_node(p, i);
        push_head(p, i, Q_MAIN);
    } else if (p->kind == EDGE_POLICY_SIEVE) {
        p->nodes[i].freq = 1;
    } else if (p->nodes[i].freq < 3) {
        p->nodes[i].freq++;
    }
    return 1;
}

int edge_policy_contains(const struct edge_policy *p, uint64_t id) { return edge_idmap_get(&p->map, id, NULL); }

int edge_policy_remove(struct edge_policy *p, uint64_t id)
{
    uint64_t v;
    if (!edge_idmap_get(&p->map, id, &v))
        return 0;
    drop(p, (uint32_t)v);
    return 1;
}

int edge_policy_insert(struct edge_policy *p, uint64_t id, uint64_t size, edge_evict_cb evict, void *data)
{
    if (size > p->cap || id == 0)
        return -1;
    /* an update is a remove and a fresh insert (the object changed) */
    int was = edge_policy_remove(p, id);
    while (p->bytes + size > p->cap)
        if (!evict_one(p, evict, data))
            break;
    uint32_t i;
    if (p->free_head != NIL) {
        i = p->free_head;
        p->free_head = p->nodes[i].next;
    } else {
        if (p->nnodes == p->nalloc) {
            uint32_t na = p->nalloc ? p->nalloc * 2 : 64;
            struct node *nn = realloc(p->nodes, na * sizeof(*nn));
            if (nn == NULL)
                return -1;
            p->nodes = nn;
            p->nalloc = na;
        }
        i = p->nnodes++;
    }
    if (edge_idmap_put(&p->map, id, i) < 0) {
        p->nodes[i].next = p->free_head;
        p->free_head = i;
        return -1;
    }
    p->nodes[i] = (struct node){.id = id, .size = size, .freq = 0};
    p->bytes += size;
    int qi = Q_MAIN;
    if (p->kind == EDGE_POLICY_S3FIFO && !was) {
        uint64_t s;
        if (edge_idmap_get(&p->ghost, id, &s)) {
            edge_idmap_del(&p->ghost, id);
        } else {
            qi = Q_SMALL;
        }
    }
    push_head(p, i, qi);
    return 0;
}

uint64_t edge_policy_bytes(const struct edge_policy *p) { return p->bytes; }
uint64_t edge_policy_capacity(const struct edge_policy *p) { return p->cap; }
size_t edge_policy_count(const struct edge_policy *p) { return p->map.n; }
