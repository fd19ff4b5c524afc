/* edge/store/idmap.c - see idmap.h. Load factor kept <= 0.5 (and, for owners that call
 * edge_idmap_shrink after deletes, above 1/8).
 *
 * Ids are hashes of keys that clients choose, and some are computed with a published key (cache
 * key ids must be stable, see edge_key_id): an id's slot is therefore a hash of the id under the
 * process's random key, so nobody can choose keys whose ids pile into one probe run. */
#include "config.h"
#include <stdlib.h>

#include "cdn/http.h"
#include "edge/store/idmap.h"

static size_t slot(const struct edge_idmap *m, uint64_t id) { return (size_t)cdn_hash_u64(id) & (m->cap - 1); }

int edge_idmap_init(struct edge_idmap *m, size_t initial)
{
    size_t cap = 16;
    while (cap < initial * 2)
        cap *= 2;
    m->ids = calloc(cap, sizeof(uint64_t));
    m->vals = calloc(cap, sizeof(uint64_t));
    m->cap = cap;
    m->n = 0;
    if (m->ids == NULL || m->vals == NULL) {
        edge_idmap_free(m);
        return -1;
    }
    return 0;
}

void edge_idmap_free(struct edge_idmap *m)
{
    free(m->ids);
    free(m->vals);
    m->ids = m->vals = NULL;
    m->cap = m->n = 0;
}

int edge_idmap_get(const struct edge_idmap *m, uint64_t id, uint64_t *val)
{
    if (m->cap == 0)
        return 0;
    for (size_t i = slot(m, id);; i = (i + 1) & (m->cap - 1)) {
        if (m->ids[i] == 0)
            return 0;
        if (m->ids[i] == id) {
            if (val)
                *val = m->vals[i];
            return 1;
        }
    }
}

/* Rehashes into a table for `want` ids (twice as many slots or more, a power of two) */
static int rehash(struct edge_idmap *m, size_t want)
{
    struct edge_idmap nm;
    if (edge_idmap_init(&nm, want) < 0)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->ids[i] != 0)
            edge_idmap_put(&nm, m->ids[i], m->vals[i]);
    edge_idmap_free(m);
    *m = nm;
    return 0;
}

int edge_idmap_put(struct edge_idmap *m, uint64_t id, uint64_t val)
{
    if ((m->n + 1) * 2 > m->cap && rehash(m, m->cap) < 0)
        return -1;
    for (size_t i = slot(m, id);; i = (i + 1) & (m->cap - 1)) {
        if (m->ids[i] == id) {
            m->vals[i] = val;
            return 0;
        }
        if (m->ids[i] == 0) {
            m->ids[i] = id;
            m->vals[i] = val;
            m->n++;
            return 0;
        }
    }
}

int edge_idmap_del(struct edge_idmap *m, uint64_t id)
{
    if (m->cap == 0)
        return 0;
    size_t i = slot(m, id);
    for (;; i = (i + 1) & (m->cap - 1)) {
        if (m->ids[i] == 0)
            return 0;
        if (m->ids[i] == id)
            break;
    }
    /* backward shift: move later members of the probe run into the hole */
    size_t hole = i;
    for (size_t j = (i + 1) & (m->cap - 1); m->ids[j] != 0; j = (j + 1) & (m->cap - 1)) {
        size_t home = slot(m, m->ids[j]);
        /* can j's entry move to hole? only if home is not in (hole, j] cyclically */
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            m->ids[hole] = m->ids[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->ids[hole] = 0;
    m->vals[hole] = 0;
    m->n--;
    return 1;
}

void edge_idmap_shrink(struct edge_idmap *m)
{
    if (m->cap > 64 && m->n * 8 < m->cap)
        rehash(m, m->cap / 4); /* best effort: without memory it stays as it is */
}
