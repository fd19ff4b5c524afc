/* edge/fetch/queue.c - max_fetches: origin slots (process-wide per vhost) and the worker's FIFO of
 * fetches that wait for one. A slot is held from the origin request's start to its end (done or
 * cancelled); a queued fetch waits at most the connect timeout, then fails with 503. Slots freed
 * by this worker are handed on at once; the poll timer notices slots freed by other workers. */
#include "config.h"
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edge/req/req.h"

/* --- max_fetches: origin slots (process-wide per vhost) and the worker's FIFO of fetches that
 * wait for one. A slot is held from the origin request's start to its end (done or cancelled);
 * a queued fetch waits at most the connect timeout, then fails with 503. Slots freed by this
 * worker are handed on at once; the poll timer notices slots freed by other workers. */
int fetch_slot_get(struct fetch *f)
{
    struct edge_vhost *vh = (struct edge_vhost *)f->vh;
    int n = __atomic_add_fetch(&vh->origin_inflight, 1, __ATOMIC_ACQ_REL);
    if ((unsigned)n > vh->max_fetches) {
        __atomic_sub_fetch(&vh->origin_inflight, 1, __ATOMIC_ACQ_REL);
        return -1;
    }
    f->slot = 1;
    return 0;
}

void fetch_queue_unlink(struct fetch *f)
{
    if (f->queued) {
        h2o_linklist_unlink(&f->qlink);
        f->queued = 0;
        f->w->queue_len--;
    }
}

void fetch_slot_put(struct fetch *f)
{
    if (!f->slot)
        return;
    f->slot = 0;
    __atomic_sub_fetch(&((struct edge_vhost *)f->vh)->origin_inflight, 1, __ATOMIC_ACQ_REL);
    fetch_queue_pump(f->w);
}

/* Sends queued fetches in order while slots are free; fails those past their deadline and drops
 * those nobody waits for any more. */
void fetch_queue_pump(struct edge_worker *w)
{
    if (w->pumping++)
        return; /* a send below may finish a fetch and come back here: the outer loop goes on */
    uint64_t now = cdn_now_ms();
    h2o_linklist_t *node = w->fetch_queue.next;
    while (node != &w->fetch_queue) {
        struct fetch *f = H2O_STRUCT_FROM_MEMBER(struct fetch, qlink, node);
        node = node->next;
        struct edge_server *s = w->srv;
        if (!f->collapsible && f->owner == NULL) {
            fetch_queue_unlink(f); /* the client left: nothing to send */
            fetch_end(f, CDN_HTTPC_ABORTED, "cancelled");
            continue;
        }
        if (now >= f->q_deadline) {
            fetch_queue_unlink(f);
            f->busy = 1;
            cdn_counter_inc(s->m_busy);
            char why[160];
            snprintf(why, sizeof(why), "origin busy: all %u fetch slots (max_fetches) in use for %llu ms",
                     f->vh->max_fetches, (unsigned long long)(now - f->q_since));
            fetch_end(f, CDN_HTTPC_INTERNAL, why);
            continue;
        }
        if (fetch_slot_get(f) < 0)
            continue; /* another vhost's fetch further on may still have a slot */
        fetch_queue_unlink(f);
        node = w->fetch_queue.next; /* the send may change the queue: start over */
        if (fetch_send(f, f->collapsible ? NULL : f->owner->req->entity.base,
                       f->collapsible ? 0 : f->owner->req->entity.len) < 0 && !fetch_is_over(f))
            fetch_end(f, CDN_HTTPC_INTERNAL, "cannot start the upstream request");
    }
    w->pumping = 0;
    if ((!h2o_linklist_is_empty(&w->fetch_queue) || !h2o_linklist_is_empty(&w->retry_wait)) &&
        !cdn_timer_active(w->queue_timer))
        cdn_timer_start(w->queue_timer, QUEUE_POLL_MS);
}

void fetch_on_queue_timer(cdn_timer_t *t, void *data)
{
    fetch_queue_pump(data);
    fetch_retry_pump(data);
}
