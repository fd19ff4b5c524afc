/* lib/epoch.c - epoch-based reclamation of replaced configuration (see cdn/epoch.h).
 *
 * A reader's counter is odd while it is inside. retire() snapshots every counter; an object is
 * safe to free when, for each reader, the snapshot was even (outside then: it can only have
 * loaded the new pointer since) or the counter has changed (it left the turn in which it might
 * have loaded the old one). The same rule as cdn-dns's view swap (dns/server.c). */
#include "config.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "cdn/epoch.h"

struct retired {
    struct retired *next;
    void *p;
    void (*free_fn)(void *);
    uint64_t snap[];            /* one per reader */
};

struct cdn_epoch {
    unsigned n;
    struct retired *retired;    /* writer thread only */
    size_t nretired;
    struct {
        _Atomic uint64_t v;
        char pad[56];           /* one cache line per reader */
    } c[];
};

cdn_epoch_t *cdn_epoch_new(unsigned nreaders)
{
    cdn_epoch_t *e = calloc(1, sizeof(*e) + (size_t)nreaders * sizeof(e->c[0]));
    if (e == NULL)
        return NULL;
    e->n = nreaders;
    for (unsigned i = 0; i < nreaders; i++)
        atomic_init(&e->c[i].v, 0);
    return e;
}

void cdn_epoch_free(cdn_epoch_t *e)
{
    if (e == NULL)
        return;
    for (struct retired *r = e->retired, *next; r != NULL; r = next) {
        next = r->next;
        r->free_fn(r->p);
        free(r);
    }
    free(e);
}

void cdn_epoch_enter(cdn_epoch_t *e, unsigned reader)
{
    atomic_fetch_add_explicit(&e->c[reader].v, 1, memory_order_seq_cst);
}

void cdn_epoch_leave(cdn_epoch_t *e, unsigned reader)
{
    atomic_fetch_add_explicit(&e->c[reader].v, 1, memory_order_release);
}

int cdn_epoch_retire(cdn_epoch_t *e, void *p, void (*free_fn)(void *))
{
    struct retired *r = malloc(sizeof(*r) + (size_t)e->n * sizeof(uint64_t));
    if (r == NULL)
        return -1;
    r->p = p;
    r->free_fn = free_fn;
    /* the new pointer was published before this (seq_cst): a reader entering after the snapshot
     * sees it */
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = 0; i < e->n; i++)
        r->snap[i] = atomic_load(&e->c[i].v);
    r->next = e->retired;
    e->retired = r;
    e->nretired++;
    return 0;
}

size_t cdn_epoch_reclaim(cdn_epoch_t *e)
{
    struct retired **pp = &e->retired;
    while (*pp != NULL) {
        struct retired *r = *pp;
        int safe = 1;
        for (unsigned i = 0; i < e->n && safe; i++)
            if ((r->snap[i] & 1) && atomic_load(&e->c[i].v) == r->snap[i])
                safe = 0;
        if (safe) {
            *pp = r->next;
            r->free_fn(r->p);
            free(r);
            e->nretired--;
        } else {
            pp = &r->next;
        }
    }
    return e->nretired;
}
