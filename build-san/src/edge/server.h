/* edge/server.h - what cdn-edge adds to the daemon runtime (cdn/daemon.h): the per-worker
 * callbacks (struct cdn_daemon_opts, data = the struct edge_server), the store with its temporary
 * folder, the vhost tables a reload replaced, the expiry sweep. Rules and threads at the top of
 * server.c. */
#ifndef EDGE_SERVER_H
#define EDGE_SERVER_H

#include "cdn/daemon.h"
#include "cdn/loop.h"
#include "edge/conf.h"
#include "edge/edge.h"

/* on_worker_init: the worker's struct edge_worker (cw->data) on the daemon's context. */
int edge_on_worker_init(struct cdn_worker *cw, void *data, char *err, size_t errlen);
/* on_worker_start: the request handler's thread-local worker. */
void edge_on_worker_start(struct cdn_worker *cw, void *data);
/* busy: upstream transfers in flight (a graceful stop lets them finish). */
size_t edge_on_worker_busy(struct cdn_worker *cw, void *data);
/* on_worker_exit: after the stop barrier, frees the worker's state and closes idle connections. */
void edge_on_worker_exit(struct cdn_worker *cw, void *data);

/* The store in set->dir, or in a fresh temporary folder (removed by edge_server_store_close). NULL
 * with err set. */
struct edge_store *edge_server_store_open(const struct edge_settings *set, char *err, size_t errlen);
/* Where the store is. */
const char *edge_server_store_dir(const struct edge_settings *set);
/* Closes the store (NULL is fine: only the temporary folder goes) after its queued writes. */
void edge_server_store_close(struct edge_store *st);

/* SIGHUP: swaps nv in (taking it); the old table is kept until edge_server_vhosts_free. 0, or -1
 * when out of memory (nv freed, logged). */
int edge_server_vhosts_swap(struct edge_server *srv, struct edge_vhosts *nv);
/* At exit: the running table and every replaced one. */
void edge_server_vhosts_free(struct edge_server *srv);

/* The expiry sweep timer's callback (data: the struct edge_server); re-arms itself. */
void edge_server_on_sweep(cdn_timer_t *t, void *data);

#endif
