/* edge/server.c - what cdn-edge adds to the daemon runtime (cdn/daemon.h): its per-worker state
 * and the callbacks that set it up and take it down, the store with its temporary folder, and the
 * expiry sweep.
 *
 * Rules:
 * - A worker's h2o context, loop and listeners are the daemon's (struct cdn_worker); its struct
 *   edge_worker (HTTP client, fetches in flight, feed receiver, fetch queue) is ours, made on the
 *   main thread by on_worker_init; edge_tls_worker (what the request handler reads) is set on the
 *   worker's own thread by on_worker_start.
 * - Vhost tables: SIGHUP swaps a new one in atomically; the old ones stay until exit.
 * - Graceful stop: a worker stops accepting and drains while its upstream transfers run (busy),
 *   at most graceful_timeout. Then every worker waits for the others (stop barrier) before any of
 *   them frees its state: no loop runs any more, so no owner publishes to a feed and no message
 *   reaches a queue that is going away. What was still in flight at the deadline is cancelled
 *   without callbacks (its fetch state is not freed).
 * Threads: on_worker_init on the main thread; the others on the worker's own thread. */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdn/loop.h"
#include "edge/req/req.h"
#include "edge/server.h"
#include "edge/vhost/vhconf.h"

#define BARRIER_SLACK_MS 2000 /* beyond the drain deadline: a worker that never came (no thread) */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned arrived;
} stop = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

int edge_on_worker_init(struct cdn_worker *cw, void *data, char *err, size_t errlen)
{
    struct edge_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->ctx = &cw->ctx;
    cw->data = w; /* kept until exit: the parked thread's h2o state points at it */
    return edge_worker_init(w, data, err, errlen);
}

void edge_on_worker_start(struct cdn_worker *cw, void *data) { edge_tls_worker = cw->data; }

size_t edge_on_worker_busy(struct cdn_worker *cw, void *data)
{
    return cdn_httpc_inflight(((struct edge_worker *)cw->data)->httpc);
}

/* Every worker has left its loop; 0, or -1 when one never came within the deadline. */
static int stop_barrier(cdn_daemon_t *d, uint64_t wait_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(wait_ms / 1000);
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&stop.mu);
    stop.arrived++;
    pthread_cond_broadcast(&stop.cv);
    while (stop.arrived < cdn_daemon_nworkers(d) && rc == 0)
        rc = pthread_cond_timedwait(&stop.cv, &stop.mu, &until);
    rc = stop.arrived < cdn_daemon_nworkers(d) ? -1 : 0;
    pthread_mutex_unlock(&stop.mu);
    return rc;
}

/* Idle keep-alive connections (clients, a child's health checks) are still open: expire their
 * timeouts now, which closes them (h2o 2.2.5 has no call that closes them all). */
static void close_idle(h2o_context_t *ctx)
{
    h2o_timeout_t *tos[] = {&ctx->zero_timeout, &ctx->one_sec_timeout, &ctx->hundred_ms_timeout,
                            &ctx->handshake_timeout, &ctx->http1.req_timeout, &ctx->http2.idle_timeout,
                            &ctx->http2.graceful_shutdown_timeout};
    for (int round = 0; round < 8 && !(h2o_linklist_is_empty(&ctx->http1._conns) &&
                                       h2o_linklist_is_empty(&ctx->http2._conns)); round++) {
        for (size_t i = 0; i < sizeof(tos) / sizeof(tos[0]); i++)
            h2o_timeout_run(ctx->loop, tos[i], UINT64_MAX / 2);
        h2o_evloop_run(ctx->loop, 0);
    }
    if (!h2o_linklist_is_empty(&ctx->http1._conns) || !h2o_linklist_is_empty(&ctx->http2._conns))
        cdn_warn("worker: connections still busy at exit; their memory is left to the OS");
}

void edge_on_worker_exit(struct cdn_worker *cw, void *data)
{
    struct edge_worker *w = cw->data;
    struct edge_server *srv = data;
    if (stop_barrier(cw->d, srv->conf.graceful_timeout_ms + BARRIER_SLACK_MS) < 0) {
        cdn_warn("worker %u: not every worker stopped; its state is left to the OS", cw->id);
        return;
    }
    edge_worker_dispose(w);
    cdn_httpc_free(w->httpc);
    w->httpc = NULL;
    h2o_multithread_unregister_receiver(w->ctx->queue, &w->recv);
    edge_idmap_free(&w->fetches);
    h2o_evloop_run(cw->loop, 0); /* frees the sockets closed above */
    close_idle(w->ctx);
}

/* --- the store --- */

static char tmpdir[PATH_MAX];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }

struct edge_store *edge_server_store_open(const struct edge_settings *set, char *err, size_t errlen)
{
    const char *dir = set->dir;
    if (dir == NULL) {
        const char *td = getenv("TMPDIR");
        if (td == NULL || *td == '\0')
            td = "/tmp";
        if ((size_t)snprintf(tmpdir, sizeof(tmpdir), "%s/cdn-edge.XXXXXX", td) >= sizeof(tmpdir)) {
            snprintf(err, errlen, "TMPDIR too long: %s", td);
            tmpdir[0] = '\0';
            return NULL;
        }
        if (mkdtemp(tmpdir) == NULL) {
            snprintf(err, errlen, "mkdtemp %s: %s", tmpdir, strerror(errno));
            tmpdir[0] = '\0';
            return NULL;
        }
        dir = tmpdir;
    }
    struct edge_store_conf sc = {.ram_bytes = set->ram_bytes, .disk_bytes = set->disk_bytes,
                                 .ram_policy = (enum edge_policy_kind)set->ram_policy, .dir = dir,
                                 .disk_admit = (enum edge_admit_kind)set->disk_admit};
    return edge_store_open(&sc, err, errlen);
}

const char *edge_server_store_dir(const struct edge_settings *set) { return set->dir ? set->dir : tmpdir; }

void edge_server_store_close(struct edge_store *st)
{
    if (st != NULL)
        edge_store_close(st); /* waits for queued writes */
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The expiry sweep runs on the main thread: the store is thread-safe and the pass takes the
 * RocksDB tier's lock in small steps, so no worker waits long. */
void edge_server_on_sweep(cdn_timer_t *t, void *data)
{
    struct edge_server *srv = data;
    size_t n = edge_store_expire(srv->store, (int64_t)time(NULL), (int64_t)srv->conf.expire_keep_s);
    if (n > 0) {
        cdn_counter_add(srv->m_expired, n);
        cdn_debug("expiry sweep: %zu objects removed", n);
    }
    cdn_timer_start(t, srv->conf.expire_sweep_ms);
}

/* --- vhost tables --- */

/* Tables replaced by a reload: fetches in flight may still point into them, across loop turns
 * (so not cdn_daemon_retire): they are freed at exit. */
static struct retired_vhosts {
    struct edge_vhosts *vs;
    struct retired_vhosts *next;
} *retired;

int edge_server_vhosts_swap(struct edge_server *srv, struct edge_vhosts *nv)
{
    struct retired_vhosts *r = malloc(sizeof(*r));
    if (r == NULL) {
        cdn_err("reload failed, keeping the running vhosts: out of memory");
        edge_vhosts_free(nv);
        free(nv);
        return -1;
    }
    r->vs = __atomic_exchange_n(&srv->conf.vhosts, nv, __ATOMIC_ACQ_REL);
    r->next = retired;
    retired = r;
    return 0;
}

void edge_server_vhosts_free(struct edge_server *srv)
{
    for (struct retired_vhosts *n; retired != NULL; retired = n) {
        n = retired->next;
        edge_vhosts_free(retired->vs);
        free(retired->vs);
        free(retired);
    }
    if (srv->conf.vhosts != NULL)
        edge_vhosts_free(srv->conf.vhosts);
    free(srv->conf.vhosts);
    srv->conf.vhosts = NULL;
}
