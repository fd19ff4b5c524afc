/* edge/store/tier_ram.c - the RAM tier (see tier_ram.h).
 *
 * Rules: the map holds one reference per stored object; the policy decides what leaves; the
 * evict callback runs under the lock and only drops the map's reference. A key hash collision
 * (two keys, one id) is a miss, never the wrong object: get compares the full key. */
#include "config.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"
#include "edge/store/idmap.h"
#include "edge/store/tier_ram.h"

struct edge_ram {
    pthread_mutex_t mu;
    struct edge_policy *pol;
    struct edge_idmap map; /* id -> struct edge_obj * */
};

/* The fixed-key hash, never the process's random one: ids are the RocksDB tier's keys on disk
 * (a restart must find its objects again: edge_rdb_open drops any whose id does not match), and
 * edge_parent_pick ranks parents by the id, so every edge must compute the same one to send a key
 * to the same parent. Tables of ids stay safe from crafted keys because edge/store/idmap.c places an
 * id by cdn_hash_u64 of it (random key); two keys with one id are a miss, never a wrong object. */
uint64_t edge_key_id(const char *key, size_t key_len)
{
    uint64_t id = cdn_hash_fixed(key, key_len);
    return id ? id : 1;
}

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
    if ((r->pol = edge_policy_new(kind, capacity)) == NULL || edge_idmap_init(&r->map, 1024) < 0) {
        edge_ram_free(r);
        return NULL;
    }
    return r;
}

void edge_ram_free(struct edge_ram *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->map.cap; i++)
        if (r->map.ids[i] != 0)
            edge_obj_release((struct edge_obj *)(uintptr_t)r->map.vals[i]);
    edge_idmap_free(&r->map);
    edge_policy_free(r->pol);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void on_evict(uint64_t id, void *data)
{
    struct edge_ram *r = data;
    uint64_t v;
    if (edge_idmap_get(&r->map, id, &v)) {
        edge_idmap_del(&r->map, id);
        edge_obj_release((struct edge_obj *)(uintptr_t)v);
    }
}

struct edge_obj *edge_ram_get(struct edge_ram *r, const char *key, size_t key_len)
{
    uint64_t id = edge_key_id(key, key_len), v;
    struct edge_obj *o = NULL;
    pthread_mutex_lock(&r->mu);
    if (edge_idmap_get(&r->map, id, &v)) {
        o = (struct edge_obj *)(uintptr_t)v;
        if (o->key_len == key_len && memcmp(o->key, key, key_len) == 0) {
            edge_obj_ref(o);
            edge_policy_hit(r->pol, id);
        } else {
            o = NULL;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return o;
}

int edge_ram_put(struct edge_ram *r, struct edge_obj *o)
{
    uint64_t id = edge_key_id(o->key, o->key_len);
    int rc = -1;
    pthread_mutex_lock(&r->mu);
    on_evict(id, r); /* drop an older object of this id first */
    edge_policy_remove(r->pol, id);
    if (edge_policy_insert(r->pol, id, edge_obj_charge(o), on_evict, r) == 0) {
        if (edge_idmap_put(&r->map, id, (uint64_t)(uintptr_t)edge_obj_ref(o)) == 0) {
            rc = 0;
        } else {
            edge_obj_release(o);
            edge_policy_remove(r->pol, id);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int edge_ram_del_id(struct edge_ram *r, uint64_t id)
{
    pthread_mutex_lock(&r->mu);
    int had = edge_policy_remove(r->pol, id);
    on_evict(id, r);
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
