/* edge/store/policy.c - LRU, S3-FIFO, SIEVE, lfu-size and adaptive over ids and sizes (see policy.h).
 *
 * Rules: nodes live in one array (indexes, not pointers, so the array can grow); an idmap finds a
 * node by id; each queue is a doubly linked list, head = newest. Invariant: bytes = sum of the
 * sizes of resident nodes <= capacity after every insert returns. SIEVE keeps its hand on a node
 * of the main queue (or NIL: start at the tail); dropping that node moves the hand to the next newer.
 *
 * S3-FIFO follows libCacheSim's S3FIFO.c (the paper authors' reference; its published miss counts
 * are reproduced exactly, see docs/CACHESIM.md). Ghost entries are nodes too, in their own queue
 * and their own idmap, so a ghost hit unlinks in O(1) and the ghost is bounded in bytes (90% of
 * the capacity) like the cache itself: never more entries than the cache could hold. An id is
 * never resident and in the ghost at once (insert takes it out of the ghost first).
 *
 * lfu-size keeps the resident ids in main (no order is used) and the frequency of every id: a
 * count-min sketch of misses plus each resident's hits (in the node, added to the sketch when it
 * leaves), aged by halving. Its victim is the lowest frequency / size^(1/4) of 16 residents drawn at
 * random from the node array; a missed id comes in only if it scores above each victim it pushes
 * out (TinyLFU's admission, per size). A hit only bumps the node's counter.
 *
 * Adaptive is S3-FIFO's queues and ghost with a mode, S3-FIFO, LRU or lfu-size, and a sketch kept
 * in every mode (misses only, so the hit path gains a counter), so that lfu-size starts warm. In
 * LRU mode new ids and hits go to main's head, small only drains, and the victim is the less
 * recent of the two tails (each node's stamp is the access clock of its last access); in S3-FIFO
 * mode it is S3-FIFO, with the counters and queues as the other modes left them; entering
 * lfu-size mode drops the ghost. The mode is chosen by miniature simulation (Waldspurger et al.,
 * ATC'17; the MiniSim of Einziger et al., Middleware'18): the ids whose keyed hash falls in 1/R of
 * the space (R = 2^rate_log2) are also replayed through metadata-only caches of cap / R running
 * the policies *not* running. Every period they are scored on the same sampled requests against
 * this cache's hits on them (at full size). A mini takes over if it scores better (object + byte
 * hit ratio) by SWITCH_MARGIN and is better in each of the two by SWITCH_GAIN; then fresh minis of
 * the others start (hysteresis for free: they must warm up before they can win). R grows with the
 * cache and with the minis (lfu-size's holds more, smaller ids), so each mini holds at most about
 * 2 x MINI_IDS / 2 ids and costs a bounded few hundred kB; when R grows, the minis drop the ids
 * no longer sampled and halve, without a restart. The minis are edge_policy objects of their own,
 * never adaptive (no recursion deeper).
 *
 * adaptive2 (the previous default, kept for comparison) is the same with two modes (S3-FIFO, LRU),
 * one mini of MINI_IDS..2 x MINI_IDS ids, no sketch, the score alone, and restarts on rate growth. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edge/store/idmap.h"
#include "edge/store/policy.h"

#define NIL UINT32_MAX
enum { Q_SMALL, Q_MAIN, Q_GHOST, NQ, Q_FREE = NQ };
/* adaptive's modes: the policy its queues follow */
enum { MODE_S3FIFO, MODE_LRU, MODE_LFU, NMODES };
/* S3-FIFO: small-queue hits needed to move to main when the id reaches the small queue's tail
 * (libCacheSim's move-to-main-threshold=2; 1 was the paper's first version, S3-FIFOv0 / QDLP) */
#define S3_MOVE_TO_MAIN 2
#define FREQ_MAX 3 /* 2-bit counter */
/* adaptive: the sampling rate halves whenever the cache holds more than 2 x MINI_IDS ids per
 * sampled one, so the miniature cache holds about MINI_IDS..2 x MINI_IDS ids. The scores are
 * compared, then halved, every SCORE_PER_ID x (ids in the mini) + SCORE_MIN sampled
 * requests: enough for each simulated id to come back a few times, and never fewer than 8192, so
 * that the noise of a hit ratio (about 0.5 / sqrt(8192) = 0.0055) stays below the differences that
 * matter. The other policy must score better by SWITCH_MARGIN (relative) to take over. */
#define MINI_IDS ((size_t)512)
#define SCORE_PER_ID 8
#define SCORE_MIN 8192
#define SWITCH_MARGIN 0.002
/* adaptive (three modes): two minis, one per policy not running, of MINI_IDS / 2 ids each: the
 * sampling rate halves whenever the cache holds more than MINI_IDS per sampled id or a mini more
 * than MINI_IDS ids (lfu-size's mini holds more, smaller objects than the cache), and it starts at
 * 1/2, so that the two minis together are never larger than adaptive2's one. A mini takes over
 * only if it scores better by the margin AND its object hit ratio and its byte hit ratio are each
 * at least SWITCH_GAIN above the running policy's: a policy may not buy one measure with the
 * other, and a switch must promise more than it costs (the cache's contents must change over;
 * with 0.002, zipf0.8_ohw20 at 10% switched to lfu-size and ended 0.004 behind S3-FIFO in bytes,
 * docs/CACHESIM.md). */
#define SWITCH_GAIN 0.004
/* ... and decides every SCORE3_PER_ID x (ids in the larger mini) + SCORE3_MIN sampled lookups:
 * four times as often as adaptive2, because the comparison is paired (the same requests) and must
 * clear the margin in both measures, and because lfu-size's gain grows with its history: a
 * decision that comes late leaves little time to reap it */
#define SCORE3_PER_ID 4
#define SCORE3_MIN 2048
/* lfu-size: a victim is the resident with the lowest frequency / size^LFU_ALPHA among LFU_SAMPLES
 * drawn at random; a missed id is admitted only if it scores above the victim. An id's frequency is
 * its count in a count-min sketch (CMS_ROWS rows of 4-bit counters, CMS_WIDTH_PER_ID x the ids
 * held, rounded up to a power of two, conservative update) plus, while it is resident, its hits
 * (16 bits in the node, added to the sketch when it leaves). The sketch counts misses only, so
 * that a hit only bumps a counter in the node it touches anyway. Every 2^CMS_AGE_LOG2 x width
 * lookups the sketch's counts halve, so that they follow popularity as it changes (TinyLFU's
 * reset); a node's hits halve as often, lazily, by the age of its last access. On independent requests,
 * frequency / size is what maximises object hits and frequency alone byte hits; LFU_ALPHA = 1/4
 * leans towards small objects without giving up byte hits (1/2 gave up 0.9-1.3 points of byte
 * hit ratio to S3-FIFO on zipf0.8 at 1% and 10%, docs/CACHESIM.md). The code takes sqrt(sqrt()). */
#define LFU_ALPHA 0.25
#define LFU_SAMPLES 16
#define CMS_ROWS 4
#define CMS_MAX 15 /* 4-bit counters */
#define CMS_WIDTH_PER_ID 2
#define CMS_AGE_LOG2 3 /* counts halve every 2^3 x width lookups */

struct node {
    uint64_t id, size;
    uint32_t prev, next;
    uint32_t stamp; /* adaptive: access clock of the last access (fits in what was padding) */
    uint8_t q, freq; /* q: Q_* or Q_FREE */
    uint16_t n;      /* adaptive, lfu-size: hits since it came in, halved when the sketch ages */
};
_Static_assert(sizeof(void *) != 8 || sizeof(struct node) == 32, "a node is 32 bytes on 64-bit");

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
    uint64_t *vals; /* the owner's value of each node (edge_policy_set_val), NULL until it sets one */
    uint32_t hand; /* SIEVE */
    struct edge_idmap map;
    struct queue q[NQ];
    /* S3-FIFO: queue sizes in bytes; warm = nothing evicted yet */
    uint64_t small_cap, main_cap, ghost_cap;
    int warm;
    struct edge_idmap ghost; /* id -> node index of a Q_GHOST node */
    /* adaptive: the mode, the access clock, the miniature simulations and their scores */
    int mode;      /* MODE_*: what runs (lfu-size: always MODE_LFU; others: MODE_S3FIFO) */
    int nmodes;    /* adaptive: 3; adaptive2: 2 (S3-FIFO and LRU) */
    size_t mini_ids;
    uint32_t clock;
    struct edge_policy *mini[NMODES - 1]; /* the policies not running, cap >> rate_log2 */
    int mini_mode[NMODES - 1], nmini;
    unsigned rate_log2;          /* ids whose hash is 0 modulo 2^rate_log2 are simulated */
    uint64_t seed;
    /* sampled requests: [0] this cache, [1 + k] mini k; halved every period */
    double hits[NMODES], hit_bytes[NMODES], reqs, req_bytes;
    uint64_t n_sampled;
    /* lfu-size (and adaptive in that mode): the frequency sketch, victim sampling */
    uint8_t *cms;
    size_t cms_w, cms_ops;
    unsigned cms_log2; /* log2(cms_w) */
    uint64_t rng;
};

int edge_policy_kind_parse(const char *s)
{
    if (strcmp(s, "lru") == 0)
        return EDGE_POLICY_LRU;
    if (strcmp(s, "s3fifo") == 0 || strcmp(s, "s3-fifo") == 0)
        return EDGE_POLICY_S3FIFO;
    if (strcmp(s, "sieve") == 0)
        return EDGE_POLICY_SIEVE;
    if (strcmp(s, "adaptive") == 0)
        return EDGE_POLICY_ADAPTIVE;
    if (strcmp(s, "lfu-size") == 0)
        return EDGE_POLICY_LFU_SIZE;
    if (strcmp(s, "adaptive2") == 0)
        return EDGE_POLICY_ADAPTIVE2;
    return -1;
}

const char *edge_policy_kind_name(enum edge_policy_kind k)
{
    switch (k) {
    case EDGE_POLICY_LRU: return "lru";
    case EDGE_POLICY_SIEVE: return "sieve";
    case EDGE_POLICY_ADAPTIVE: return "adaptive";
    case EDGE_POLICY_LFU_SIZE: return "lfu-size";
    case EDGE_POLICY_ADAPTIVE2: return "adaptive2";
    default: return "s3fifo";
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int cms_fit(struct edge_policy *p);

/* floor(10%) and floor(90%) without overflow: libCacheSim's (int64_t)(size * 0.1) and
 * (int64_t)(size * 0.9) give the same for every size below 2^53 */
static void set_cap(struct edge_policy *p, uint64_t capacity)
{
    p->cap = capacity;
    p->small_cap = capacity / 10;
    p->main_cap = capacity - p->small_cap;
    p->ghost_cap = capacity / 10 * 9 + capacity % 10 * 9 / 10;
}
static void cms_add(struct edge_policy *p, uint64_t id, unsigned k);
static unsigned node_hits(const struct edge_policy *p, const struct node *n);

static int is_adaptive(const struct edge_policy *p)
{
    return p->kind == EDGE_POLICY_ADAPTIVE || p->kind == EDGE_POLICY_ADAPTIVE2;
}

static const enum edge_policy_kind mode_kind[NMODES] = {EDGE_POLICY_S3FIFO, EDGE_POLICY_LRU, EDGE_POLICY_LFU_SIZE};

static void minis_free(struct edge_policy *p)
{
    for (int k = 0; k < p->nmini; k++)
        edge_policy_free(p->mini[k]);
    p->nmini = 0;
}

/* New empty minis of the policies not running, at the current rate; the scores restart. -1 out of
 * memory (then there are none, and the mode stays as it is). */
static int mini_reset(struct edge_policy *p)
{
    minis_free(p);
    for (int k = 0; k < NMODES; k++)
        p->hits[k] = p->hit_bytes[k] = 0;
    p->reqs = p->req_bytes = 0;
    p->n_sampled = 0;
    uint64_t c = p->cap >> p->rate_log2;
    for (int m = 0; m < p->nmodes; m++) {
        if (m == p->mode)
            continue;
        struct edge_policy *mp = edge_policy_new(mode_kind[m], c ? c : 1);
        if (mp == NULL) {
            minis_free(p);
            return -1;
        }
        p->mini_mode[p->nmini] = m;
        p->mini[p->nmini++] = mp;
    }
    return 0;
}

void edge_policy_seed(struct edge_policy *p, uint64_t seed) { p->seed = seed; }

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
    /* floor(10%) and floor(90%) without overflow: libCacheSim's (int64_t)(size * 0.1) and
     * (int64_t)(size * 0.9) give the same for every size below 2^53 */
    set_cap(p, capacity);
    p->warm = 1;
    p->mode = kind == EDGE_POLICY_LFU_SIZE ? MODE_LFU : MODE_S3FIFO;
    if ((kind == EDGE_POLICY_LFU_SIZE || kind == EDGE_POLICY_ADAPTIVE) && cms_fit(p) < 0) {
        edge_policy_free(p);
        return NULL;
    }
    p->nmodes = kind == EDGE_POLICY_ADAPTIVE ? 3 : 2;
    p->mini_ids = kind == EDGE_POLICY_ADAPTIVE ? MINI_IDS / 2 : MINI_IDS;
    /* two minis: each at most half the cache, so that the two together are no larger than one */
    p->rate_log2 = kind == EDGE_POLICY_ADAPTIVE ? 1 : 0;
    if (edge_idmap_init(&p->map, 64) < 0 || edge_idmap_init(&p->ghost, 64) < 0 ||
        (is_adaptive(p) && mini_reset(p) < 0)) {
        edge_policy_free(p);
        return NULL;
    }
    return p;
}

void edge_policy_free(struct edge_policy *p)
{
    if (p == NULL)
        return;
    minis_free(p);
    free(p->cms);
    edge_idmap_free(&p->map);
    edge_idmap_free(&p->ghost);
    free(p->nodes);
    free(p->vals);
    free(p);
}

static uint32_t node_alloc(struct edge_policy *p)
{
    if (p->free_head != NIL) {
        uint32_t i = p->free_head;
        p->free_head = p->nodes[i].next;
        return i;
    }
    if (p->nnodes == p->nalloc) {
        uint32_t na = p->nalloc ? p->nalloc * 2 : 64;
        if (na <= p->nalloc || na == NIL)
            return NIL;
        struct node *nn = realloc(p->nodes, na * sizeof(*nn));
        if (nn == NULL)
            return NIL;
        p->nodes = nn;
        if (p->vals) {
            uint64_t *nv = realloc(p->vals, na * sizeof(*nv));
            if (nv == NULL)
                return NIL; /* nalloc stays: the larger nodes array is just not used yet */
            p->vals = nv;
        }
        p->nalloc = na;
    }
    return p->nnodes++;
}

static void node_free(struct edge_policy *p, uint32_t i)
{
    p->nodes[i].next = p->free_head;
    p->nodes[i].q = Q_FREE;
    p->free_head = i;
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

/* Moves a node to the head of a queue (reinsertion, promotion) */
static void requeue(struct edge_policy *p, uint32_t i, int qi, uint8_t freq)
{
    unlink_node(p, i);
    p->nodes[i].freq = freq;
    push_head(p, i, qi);
}

static void drop(struct edge_policy *p, uint32_t i)
{
    if (p->hand == i)
        p->hand = p->nodes[i].prev;
    unlink_node(p, i);
    p->bytes -= p->nodes[i].size;
    edge_idmap_del(&p->map, p->nodes[i].id);
    edge_idmap_shrink(&p->map);
    node_free(p, i);
}

static void ghost_drop(struct edge_policy *p, uint32_t i)
{
    unlink_node(p, i);
    edge_idmap_del(&p->ghost, p->nodes[i].id);
    edge_idmap_shrink(&p->ghost);
    node_free(p, i);
}

/* Remembers an id the small queue evicted, oldest ghosts out first. Best effort: without memory
 * the id is just forgotten (a later return then starts in small again). */
static void ghost_add(struct edge_policy *p, uint64_t id, uint64_t size)
{
    if (size > p->ghost_cap || edge_idmap_get(&p->ghost, id, NULL))
        return;
    while (p->q[Q_GHOST].bytes + size > p->ghost_cap)
        ghost_drop(p, p->q[Q_GHOST].tail);
    uint32_t i = node_alloc(p);
    if (i == NIL)
        return;
    if (edge_idmap_put(&p->ghost, id, i) < 0) {
        node_free(p, i);
        return;
    }
    p->nodes[i] = (struct node){.id = id, .size = size};
    push_head(p, i, Q_GHOST);
}

/* A victim leaves: evict runs first, while it is still resident (edge_policy_get gives its value),
 * then it is dropped, and remembered in the ghost if to_ghost. */
static void evict_node(struct edge_policy *p, uint32_t i, int to_ghost, edge_evict_cb evict, void *data)
{
    uint64_t id = p->nodes[i].id, size = p->nodes[i].size;
    unsigned hits = p->cms ? node_hits(p, &p->nodes[i]) : 0;
    if (evict)
        evict(id, data);
    drop(p, i);
    if (hits)
        cms_add(p, id, hits); /* its hits while resident join its history */
    if (to_ghost)
        ghost_add(p, id, size);
}

static int evict_s3fifo(struct edge_policy *p, edge_evict_cb evict, void *data)
{
    struct queue *sq = &p->q[Q_SMALL], *mq = &p->q[Q_MAIN];
    if (sq->n == 0 && mq->n == 0)
        return 0;
    p->warm = 0;
    if (mq->n > 0 && (mq->bytes > p->main_cap || sq->bytes == 0)) {
        for (;;) { /* main: FIFO with reinsertion, a 2-bit CLOCK */
            uint32_t t = mq->tail;
            if (p->nodes[t].freq > 0) {
                requeue(p, t, Q_MAIN, (uint8_t)(p->nodes[t].freq - 1));
                continue;
            }
            evict_node(p, t, 0, evict, data);
            return 1;
        }
    }
    /* small: ids hit often enough move to main (which may overflow it: the next call evicts
     * there); the first other one leaves for the ghost */
    for (uint32_t t; (t = sq->tail) != NIL;) {
        if (p->nodes[t].freq >= S3_MOVE_TO_MAIN) {
            requeue(p, t, Q_MAIN, 0);
            continue;
        }
        evict_node(p, t, 1, evict, data);
        return 1;
    }
    return 1; /* all moved to main */
}

/* adaptive in LRU mode: the least recent of small's and main's oldest (small only drains: new ids
 * and hits go to main) */
static int evict_lru_mode(struct edge_policy *p, edge_evict_cb evict, void *data)
{
    uint32_t s = p->q[Q_SMALL].tail, m = p->q[Q_MAIN].tail;
    if (s == NIL && m == NIL)
        return 0;
    p->warm = 0;
    uint32_t v = m == NIL || (s != NIL && (int32_t)(p->nodes[s].stamp - p->nodes[m].stamp) < 0) ? s : m;
    evict_node(p, v, p->nodes[v].q == Q_SMALL, evict, data);
    return 1;
}

/* lfu-size's count-min sketch: widened when the ids held outgrow it; -1 out of memory (then the
 * old one stays). */
static int cms_fit(struct edge_policy *p)
{
    size_t w = 256;
    while (w < CMS_WIDTH_PER_ID * p->map.n)
        w *= 2;
    if (w <= p->cms_w)
        return 0;
    uint8_t *c = calloc(CMS_ROWS * w / 2, 1);
    if (c == NULL)
        return -1;
    /* The counts carry over: an id's counter in a row of the wider sketch starts as the one it had
     * (its index modulo the old width), so no estimate drops. Emptying it instead cost adaptive
     * its history when it switched to lfu-size and the cache then held more (smaller) ids:
     * CloudPhysics at 5% went from S3-FIFO's 0.947 to 0.955 of bytes missed, now 0.940. */
    for (size_t r = 0; p->cms && r < CMS_ROWS; r++)
        for (size_t i = 0; i < w; i++) {
            size_t o = r * p->cms_w + (i & (p->cms_w - 1)), n = r * w + i;
            unsigned v = (p->cms[o >> 1] >> ((o & 1) * 4)) & 15u;
            c[n >> 1] = (uint8_t)(c[n >> 1] | (v << ((n & 1) * 4)));
        }
    if (p->cms == NULL)
        p->cms_ops = 0;
    free(p->cms);
    p->cms = c;
    p->cms_w = w;
    for (p->cms_log2 = 0; ((size_t)1 << p->cms_log2) < w; p->cms_log2++)
        ;
    return 0;
}

/* the index of row r's counter for an id's two hashes (each row takes 32 bits of them); counters
 * are 4 bits, two to a byte */
static size_t cms_idx(const struct edge_policy *p, const uint64_t h[2], int r)
{
    return (size_t)r * p->cms_w + ((h[r >> 1] >> (32 * (r & 1))) & (p->cms_w - 1));
}

static unsigned cms_get(const struct edge_policy *p, size_t i) { return (p->cms[i >> 1] >> ((i & 1) * 4)) & 15u; }

static void cms_set(struct edge_policy *p, size_t i, unsigned v)
{
    unsigned sh = (unsigned)(i & 1) * 4;
    p->cms[i >> 1] = (uint8_t)((p->cms[i >> 1] & ~(15u << sh)) | (v << sh));
}

static unsigned cms_est(const struct edge_policy *p, uint64_t id)
{
    if (p->cms == NULL)
        return 0;
    uint64_t h[2] = {mix64(id ^ 0x9e3779b97f4a7c15ULL), mix64(id ^ 0xc2b2ae3d27d4eb4fULL)};
    unsigned m = CMS_MAX;
    for (int r = 0; r < CMS_ROWS; r++) {
        unsigned c = cms_get(p, cms_idx(p, h, r));
        if (c < m)
            m = c;
    }
    return m;
}

/* k more requests of id: the smallest counters grow (conservative update), saturating */
static void cms_add(struct edge_policy *p, uint64_t id, unsigned k)
{
    if (p->cms == NULL)
        return;
    uint64_t h[2] = {mix64(id ^ 0x9e3779b97f4a7c15ULL), mix64(id ^ 0xc2b2ae3d27d4eb4fULL)};
    unsigned m = cms_est(p, id), to = m + k < CMS_MAX ? m + k : CMS_MAX;
    for (int r = 0; r < CMS_ROWS; r++) {
        size_t i = cms_idx(p, h, r);
        if (cms_get(p, i) < to)
            cms_set(p, i, to);
    }
}

/* Every 2^CMS_AGE_LOG2 x width lookups, the sketch's counts halve (TinyLFU's reset, so that the
 * counts follow popularity as it changes): O(width) then, amortised O(1). */
static void cms_age(struct edge_policy *p)
{
    for (size_t k = 0; k < CMS_ROWS * p->cms_w / 2; k++)
        p->cms[k] = (uint8_t)((p->cms[k] >> 1) & 0x77);
    p->cms_ops = 0;
}

/* A resident's hits, halved once for every 2^CMS_AGE_LOG2 x width ticks of the access clock since
 * its last access: the same aging as the sketch's, done lazily (no sweep over the nodes). */
static unsigned node_hits(const struct edge_policy *p, const struct node *n)
{
    uint32_t halvings = (uint32_t)(p->clock - n->stamp) >> (p->cms_log2 + CMS_AGE_LOG2);
    return halvings >= 16 ? 0 : (unsigned)n->n >> halvings;
}

/* requests of id per size^LFU_ALPHA: its history in the sketch plus hits (resident) */
static double lfu_score(const struct edge_policy *p, uint64_t id, uint64_t size, unsigned hits)
{
    return (double)(cms_est(p, id) + hits) / sqrt(sqrt((double)(size ? size : 1)));
}

/* The resident with the lowest score among LFU_SAMPLES drawn at random from the node array (ghost
 * and free slots are skipped, at most 8 x LFU_SAMPLES draws); NIL if none is resident. */
static uint32_t lfu_victim(struct edge_policy *p, double *score)
{
    uint32_t best = NIL;
    double bs = 0;
    if (p->map.n == 0)
        return NIL;
    for (int k = 0, tries = 0; k < LFU_SAMPLES && tries < 8 * LFU_SAMPLES; tries++) {
        p->rng += 0x9e3779b97f4a7c15ULL;
        uint32_t i = (uint32_t)(mix64(p->rng) % p->nnodes);
        const struct node *n = &p->nodes[i];
        if (n->q != Q_SMALL && n->q != Q_MAIN)
            continue;
        k++;
        double sc = lfu_score(p, n->id, n->size, node_hits(p, n));
        if (best == NIL || sc < bs)
            best = i, bs = sc;
    }
    if (best == NIL) /* the draws found only ghosts and free slots */
        best = p->q[Q_MAIN].tail != NIL ? p->q[Q_MAIN].tail : p->q[Q_SMALL].tail;
    *score = best == NIL ? 0 : lfu_score(p, p->nodes[best].id, p->nodes[best].size, node_hits(p, &p->nodes[best]));
    return best;
}

/* One victim out (S3-FIFO may first move survivors around). Returns 0 if nothing is left. */
static int evict_one(struct edge_policy *p, edge_evict_cb evict, void *data)
{
    if (p->mode == MODE_LFU) {
        double sc;
        uint32_t v = lfu_victim(p, &sc);
        if (v == NIL)
            return 0;
        evict_node(p, v, 0, evict, data);
        return 1;
    }
    if (is_adaptive(p) && p->mode == MODE_LRU)
        return evict_lru_mode(p, evict, data);
    if (p->kind == EDGE_POLICY_LRU) {
        uint32_t t = p->q[Q_MAIN].tail;
        if (t == NIL)
            return 0;
        evict_node(p, t, 0, evict, data);
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
        p->hand = h; /* drop moves it on */
        evict_node(p, h, 0, evict, data);
        return 1;
    }
    return evict_s3fifo(p, evict, data);
}

static int sampled(const struct edge_policy *p, uint64_t id)
{
    return (mix64(id ^ p->seed) & ((1ULL << p->rate_log2) - 1)) == 0;
}

static uint64_t size_of(const struct edge_policy *p, uint64_t id)
{
    uint64_t v;
    return edge_idmap_get(&p->map, id, &v) ? p->nodes[v].size : 0;
}

/* Score = object hit ratio + byte hit ratio of the recent sampled requests (the mix adaptive
 * optimises: one point of either counts the same). The mini's policy takes over if it scores
 * better by the margin; otherwise the old evidence halves. */
static void set_mode(struct edge_policy *p, int mode)
{
    p->mode = mode;
    if (mode == MODE_LFU)
        while (p->q[Q_GHOST].tail != NIL) /* lfu-size keeps no ghost */
            ghost_drop(p, p->q[Q_GHOST].tail);
}

static void mini_decide(struct edge_policy *p)
{
    double oh[NMODES], bh[NMODES];
    int best = 0;
    for (int k = 0; k <= p->nmini; k++) {
        oh[k] = p->hits[k] / (p->reqs > 0 ? p->reqs : 1);
        bh[k] = p->hit_bytes[k] / (p->req_bytes > 0 ? p->req_bytes : 1);
        if (k == 0)
            continue;
        int guard_ok = p->kind == EDGE_POLICY_ADAPTIVE2 || (oh[k] >= oh[0] + SWITCH_GAIN && bh[k] >= bh[0] + SWITCH_GAIN);
        if (guard_ok && oh[k] + bh[k] > (oh[0] + bh[0]) * (1 + SWITCH_MARGIN) && (best == 0 || oh[k] + bh[k] > oh[best] + bh[best]))
            best = k;
    }
    if (best) {
        set_mode(p, p->mini_mode[best - 1]);
        mini_reset(p);
        return;
    }
    for (int k = 0; k < NMODES; k++) {
        p->hits[k] /= 2;
        p->hit_bytes[k] /= 2;
    }
    p->reqs /= 2;
    p->req_bytes /= 2;
}

/* A lookup of a sampled id: size is this cache's size of id, 0 if it is not resident (a miss: then
 * insert feeds the mini, which may admit it by its own rules). */
/* adaptive: the scores count only once this cache has evicted something. While it fills, it
 * keeps everything, and the minis (filled sooner or later by chance) differ in how a cache fills,
 * not in how it keeps: a decision on that (CloudPhysics at 30%: LRU, 0.71 objects missed instead
 * of S3-FIFO's 0.63) can come too late in a short trace to be undone. */
static int scoring(const struct edge_policy *p) { return p->kind == EDGE_POLICY_ADAPTIVE2 || !p->warm; }

static void mini_lookup(struct edge_policy *p, uint64_t id, uint64_t size)
{
    int sc = scoring(p);
    if (sc) {
        p->reqs += 1;
        p->req_bytes += (double)size;
        if (size) {
            p->hits[0] += 1;
            p->hit_bytes[0] += (double)size;
        }
    }
    size_t n = 0;
    for (int k = 0; k < p->nmini; k++) {
        struct edge_policy *m = p->mini[k];
        if (edge_policy_hit(m, id)) {
            if (sc) {
                p->hits[1 + k] += 1;
                p->hit_bytes[1 + k] += (double)size_of(m, id);
            }
        } else if (size && size <= edge_policy_max_size(m)) {
            edge_policy_insert(m, id, size, NULL, NULL);
        }
        if (m->map.n > n)
            n = m->map.n;
    }
    if (!sc)
        return;
    uint64_t period = p->kind == EDGE_POLICY_ADAPTIVE2 ? SCORE_PER_ID * (uint64_t)n + SCORE_MIN
                                                       : SCORE3_PER_ID * (uint64_t)n + SCORE3_MIN;
    if (++p->n_sampled >= period) {
        mini_decide(p);
        p->n_sampled = 0;
    }
}

int edge_policy_hit(struct edge_policy *p, uint64_t id)
{
    uint64_t v;
    int in = edge_idmap_get(&p->map, id, &v);
    if (p->nmini && sampled(p, id))
        mini_lookup(p, id, in ? p->nodes[v].size : 0);
    if (p->cms) { /* the frequency of requests: misses in the sketch, hits in the node */
        if (++p->cms_ops >= p->cms_w << CMS_AGE_LOG2)
            cms_age(p);
        if (!in) {
            cms_add(p, id, 1);
        } else {
            unsigned h = node_hits(p, &p->nodes[v]) + 1;
            p->nodes[v].n = (uint16_t)(h < UINT16_MAX ? h : UINT16_MAX);
        }
    }
    if (!in)
        return 0;
    uint32_t i = (uint32_t)v;
    if (is_adaptive(p)) {
        p->nodes[i].stamp = ++p->clock;
        if (p->nodes[i].freq < FREQ_MAX)
            p->nodes[i].freq++;
        if (p->mode == MODE_LRU)
            requeue(p, i, Q_MAIN, p->nodes[i].freq);
    } else if (p->kind == EDGE_POLICY_LFU_SIZE) {
        p->nodes[i].stamp = ++p->clock; /* counted above; the stamp ages the count */
    } else if (p->kind == EDGE_POLICY_LRU) {
        unlink_node(p, i);
        push_head(p, i, Q_MAIN);
    } else if (p->kind == EDGE_POLICY_SIEVE) {
        p->nodes[i].freq = 1;
    } else if (p->nodes[i].freq < FREQ_MAX) {
        p->nodes[i].freq++;
    }
    return 1;
}

int edge_policy_contains(const struct edge_policy *p, uint64_t id) { return edge_idmap_get(&p->map, id, NULL); }

int edge_policy_get(const struct edge_policy *p, uint64_t id, uint64_t *val)
{
    uint64_t v;
    if (!edge_idmap_get(&p->map, id, &v))
        return 0;
    *val = p->vals ? p->vals[v] : 0;
    return 1;
}

int edge_policy_set_val(struct edge_policy *p, uint64_t id, uint64_t val)
{
    uint64_t v;
    if (!edge_idmap_get(&p->map, id, &v))
        return -1;
    if (p->vals == NULL && (p->vals = calloc(p->nalloc, sizeof(*p->vals))) == NULL)
        return -1;
    p->vals[v] = val;
    return 0;
}

void edge_policy_each(const struct edge_policy *p, void (*fn)(uint64_t id, uint64_t val, void *data), void *data)
{
    static const int resident[] = {Q_SMALL, Q_MAIN};
    for (size_t k = 0; k < sizeof(resident) / sizeof(resident[0]); k++)
        for (uint32_t i = p->q[resident[k]].head, next; i != NIL; i = next) {
            next = p->nodes[i].next;
            fn(p->nodes[i].id, p->vals ? p->vals[i] : 0, data);
        }
}

static int remove_id(struct edge_policy *p, uint64_t id)
{
    uint64_t v;
    if (!edge_idmap_get(&p->map, id, &v))
        return 0;
    drop(p, (uint32_t)v);
    return 1;
}

int edge_policy_remove(struct edge_policy *p, uint64_t id)
{
    int had = remove_id(p, id);
    if (had && p->nmini && sampled(p, id)) /* a purge or expiry: the minis must not keep it either */
        for (int k = 0; k < p->nmini; k++)
            remove_id(p->mini[k], id);
    return had;
}

uint64_t edge_policy_max_size(const struct edge_policy *p)
{
    if (p->kind != EDGE_POLICY_S3FIFO && (!is_adaptive(p) || p->mode != MODE_S3FIFO))
        return p->cap;
    return p->small_cap ? p->small_cap - 1 : 0;
}

/* adaptive: the sampling rate has just halved. Each mini keeps what it knows of the ids still
 * sampled (the others leave it, resident or ghost) and halves its capacity, as if it had run at the
 * new rate from the start: no restart, so no warm-up, and the scores go on. */
static void minis_rescale(struct edge_policy *p)
{
    for (int k = 0; k < p->nmini; k++) {
        struct edge_policy *m = p->mini[k];
        for (uint32_t i = 0; i < m->nnodes; i++) {
            uint8_t q = m->nodes[i].q;
            if (q == Q_FREE || sampled(p, m->nodes[i].id))
                continue;
            if (q == Q_GHOST)
                ghost_drop(m, i);
            else
                drop(m, i);
        }
        uint64_t c = p->cap >> p->rate_log2;
        set_cap(m, c ? c : 1);
        while (m->q[Q_GHOST].bytes > m->ghost_cap)
            ghost_drop(m, m->q[Q_GHOST].tail);
        while (m->bytes > m->cap && evict_one(m, NULL, NULL))
            ;
    }
}

/* adaptive: a missed sampled id enters the mini (by its own size rule), and the sampling rate
 * halves when the cache holds more than twice MINI_IDS per sampled id */
static void mini_insert(struct edge_policy *p, uint64_t id, uint64_t size)
{
    size_t mn = 0; /* adaptive: lfu-size's mini may hold many more (smaller) ids than the cache */
    for (int k = 0; p->kind == EDGE_POLICY_ADAPTIVE && k < p->nmini; k++)
        if (p->mini[k]->map.n > mn)
            mn = p->mini[k]->map.n;
    if ((p->map.n > (p->mini_ids << 1 << p->rate_log2) || mn >= 2 * p->mini_ids) && p->rate_log2 < 30) {
        p->rate_log2++;
        if (p->kind == EDGE_POLICY_ADAPTIVE2)
            mini_reset(p);
        else
            minis_rescale(p);
    }
    if (p->nmini == 0 || !sampled(p, id))
        return;
    if (scoring(p))
        p->req_bytes += (double)size;
    for (int k = 0; k < p->nmini; k++)
        if (!edge_policy_contains(p->mini[k], id) && size <= edge_policy_max_size(p->mini[k]))
            edge_policy_insert(p->mini[k], id, size, NULL, NULL);
}

int edge_policy_insert(struct edge_policy *p, uint64_t id, uint64_t size, edge_evict_cb evict, void *data)
{
    if (id == 0)
        return -1;
    if (is_adaptive(p) && !edge_policy_contains(p, id))
        mini_insert(p, id, size);
    if (p->cms)
        cms_fit(p);
    if (size > edge_policy_max_size(p))
        return -1;
    /* an update is a remove and a fresh insert (the object changed) */
    int was = remove_id(p, id);
    int qi = Q_MAIN;
    if (p->mode == MODE_LFU) {
        /* admission: the id must score above each victim it pushes out */
        if (p->bytes + size > p->cap) {
            double c = lfu_score(p, id, size, 0), vs;
            uint32_t v;
            while (p->bytes + size > p->cap && (v = lfu_victim(p, &vs)) != NIL) {
                if (!(c > vs))
                    return 1;
                evict_node(p, v, 0, evict, data);
            }
        }
    } else if (is_adaptive(p) && p->mode == MODE_LRU) {
        uint64_t g;
        if (edge_idmap_get(&p->ghost, id, &g))
            ghost_drop(p, (uint32_t)g);
    } else if ((p->kind == EDGE_POLICY_S3FIFO || is_adaptive(p)) && !was) {
        uint64_t g;
        /* out of the ghost before evicting, which may push it out of the ghost */
        if (edge_idmap_get(&p->ghost, id, &g))
            ghost_drop(p, (uint32_t)g);
        else
            qi = Q_SMALL;
    }
    while (p->bytes + size > p->cap)
        if (!evict_one(p, evict, data))
            break;
    /* warm-up (libCacheSim's S3FIFO.c, not S3-FIFOv0): until the first eviction, what does not
     * fit in small fills main, so that the cache is full before anything leaves */
    if (qi == Q_SMALL && p->warm && p->q[Q_SMALL].bytes >= p->small_cap)
        qi = Q_MAIN;
    uint32_t i = node_alloc(p);
    if (i == NIL)
        return -1;
    if (edge_idmap_put(&p->map, id, i) < 0) {
        node_free(p, i);
        return -1;
    }
    p->nodes[i] = (struct node){.id = id, .size = size, .freq = 0, .stamp = ++p->clock};
    if (p->vals)
        p->vals[i] = 0;
    p->bytes += size;
    push_head(p, i, qi);
    return 0;
}

const char *edge_policy_running(const struct edge_policy *p)
{
    if (is_adaptive(p))
        return edge_policy_kind_name(mode_kind[p->mode]);
    return edge_policy_kind_name(p->kind);
}

size_t edge_policy_meta_bytes(const struct edge_policy *p)
{
    size_t b = sizeof(*p) + (size_t)p->nalloc * sizeof(struct node) + (p->map.cap + p->ghost.cap) * 2 * sizeof(uint64_t);
    if (p->vals)
        b += (size_t)p->nalloc * sizeof(uint64_t);
    b += CMS_ROWS * p->cms_w / 2;
    for (int k = 0; k < p->nmini; k++)
        b += edge_policy_meta_bytes(p->mini[k]);
    return b;
}

uint64_t edge_policy_bytes(const struct edge_policy *p) { return p->bytes; }
uint64_t edge_policy_capacity(const struct edge_policy *p) { return p->cap; }
size_t edge_policy_count(const struct edge_policy *p) { return p->map.n; }
