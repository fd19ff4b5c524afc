/* edge/store/tier_ram.c - the RAM tier (see tier_ram.h).
 *
 * Rules: the policy is the index: each resident id's value (edge_policy_set_val) is the object,
 * and holds one reference to it. The policy decides what leaves; the evict callback runs under the
 * lock, while the victim is still resident, and only drops that reference. A key hash collision
 * (two keys, one id) is a miss, never the wrong object: get compares the full key. */
#include "config.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"
#include "edge/store/tier_ram.h"

struct edge_ram {
    pthread_mutex_t mu;
    struct edge_policy *pol; /* id -> struct edge_obj * (the value), and the eviction order */
};

uint64_t edge_obj_charge(const struct edge_obj *o)
{
    uint64_t c = sizeof(*o) + o->body_len + o->key_len + o->vary_len + o->tags_len + 64;
    for (size_t i = 0; i < o->nhdrs; i++) /* the header, its lower-case name, its flags */
        c += sizeof(struct edge_hdr) + sizeof(char *) + 1 + 2 * o->hdrs[i].name_len + o->hdrs[i].value_len + 3;
    return c;
}

struct edge_ram *edge_ram_new(uint64_t capacity, enum edge_policy_kind kind)
{
    struct edge_ram *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    if ((r->pol = edge_policy_new(kind, capacity)) == NULL) {
        edge_ram_free(r);
        return NULL;
    }
    /* the adaptive policy samples ids by a hash: keyed by the process's secret, so nobody can pick
     * keys that all fall in (or out of) its sample */
    edge_policy_seed(r->pol, cdn_hash_u64(0x5eed));
    return r;
}

static void release_val(uint64_t id, uint64_t val, void *data)
{
    (void)id, (void)data;
    if (val)
        edge_obj_release((struct edge_obj *)(uintptr_t)val);
}

void edge_ram_free(struct edge_ram *r)
{
    if (r == NULL)
        return;
    if (r->pol)
        edge_policy_each(r->pol, release_val, NULL);
    edge_policy_free(r->pol);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* id is about to leave the policy: drop its object's reference */
static void on_evict(uint64_t id, void *data)
{
    struct edge_ram *r = data;
    uint64_t v;
    if (edge_policy_get(r->pol, id, &v))
        release_val(id, v, NULL);
}

struct edge_obj *edge_ram_get(struct edge_ram *r, const char *key, size_t key_len)
{
    uint64_t id = edge_key_id(key, key_len), v;
    struct edge_obj *o = NULL;
    pthread_mutex_lock(&r->mu);
    if (edge_policy_get(r->pol, id, &v) && v) {
        o = (struct edge_obj *)(uintptr_t)v;
        if (o->key_len == key_len && memcmp(o->key, key, key_len) == 0) {
            edge_obj_ref(o);
            edge_policy_hit(r->pol, id);
        } else {
            o = NULL;
        }
    } else {
        edge_policy_hit(r->pol, id); /* a miss: the adaptive policy's sample counts lookups, not hits */
    }
    pthread_mutex_unlock(&r->mu);
    return o;
}

int edge_ram_put(struct edge_ram *r, struct edge_obj *o)
{
    uint64_t id = o->id;
    int rc = -1;
    pthread_mutex_lock(&r->mu);
    on_evict(id, r); /* drop an older object of this id first */
    edge_policy_remove(r->pol, id);
    if (edge_policy_insert(r->pol, id, edge_obj_charge(o), on_evict, r) == 0) {
        if (edge_policy_set_val(r->pol, id, (uint64_t)(uintptr_t)o) == 0) {
            edge_obj_ref(o);
            rc = 0;
        } else {
            edge_policy_remove(r->pol, id);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int edge_ram_del_id(struct edge_ram *r, uint64_t id)
{
    pthread_mutex_lock(&r->mu);
    on_evict(id, r);
    int had = edge_policy_remove(r->pol, id);
    pthread_mutex_unlock(&r->mu);
    return had;
}

int edge_ram_has_id(struct edge_ram *r, uint64_t id)
{
    pthread_mutex_lock(&r->mu);
    int had = edge_policy_contains(r->pol, id);
    pthread_mutex_unlock(&r->mu);
    return had;
}

uint64_t edge_ram_bytes(struct edge_ram *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t b = edge_policy_bytes(r->pol);
    pthread_mutex_unlock(&r->mu);
    return b;
}

size_t edge_ram_count(struct edge_ram *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = edge_policy_count(r->pol);
    pthread_mutex_unlock(&r->mu);
    return n;
}
