/* lib/daemon.c - workers, listeners, signals, graceful stop and reload lifetime of an HTTP daemon
 * (see cdn/daemon.h for the rules).
 *
 * Threads: d->stopping is written by the main thread (signal) or cdn_daemon_stop (any thread) and
 * read by every worker after each loop turn; d->done counts drained workers. Everything else of
 * a worker is touched only by its own thread once cdn_daemon_run has started it. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdn/daemon.h"
#include "cdn/epoch.h"
#include "cdn/loop.h"
#include "cdn/proc.h"
#include "cdn/sdnotify.h"

#define RECLAIM_MS 50
#define TURN_MS 100       /* a worker looks at the stop flag at least this often */

struct slot {             /* a worker and its thread */
    struct cdn_worker w;
    pthread_t th;
    int fd[CDN_DAEMON_MAX_LISTENERS]; /* listening sockets (dups of worker 0's when shared) */
};

struct cdn_daemon {
    struct cdn_daemon_opts o;
    unsigned n;
    struct slot *s;
    struct cdn_daemon_listener ls[CDN_DAEMON_MAX_LISTENERS];
    size_t nls;
    cdn_signals_t *sig;
    cdn_epoch_t *epoch;
    cdn_timer_t *reclaim;
    int stopping;         /* atomic */
    unsigned done;        /* atomic: workers drained */
    /* worker threads are made by cdn_daemon_new, set themselves up and wait for cdn_daemon_run */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int setup_rc;         /* under mu: -1 while the thread being made sets up, then its result */
    int go;               /* under mu: 1 run, -1 give up (a failed start) */
    unsigned nthreads;    /* threads made (workers 1..nthreads) */
    char *err;            /* the setup's error message buffer (cdn_daemon_new's) */
    size_t errlen;
};

static __thread struct cdn_worker *current; /* the worker this thread runs */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_accept_ctx_t *actx = listener->data;
    h2o_socket_t *sock;
    for (int i = 0; i < CDN_DAEMON_ACCEPTS_PER_WAKEUP && (sock = h2o_evloop_socket_accept(listener)) != NULL; i++)
        h2o_accept(actx, sock);
}

static void on_signal(int signo, void *data)
{
    cdn_daemon_t *d = data;
    if (signo == SIGHUP || signo == SIGUSR1) {
        cdn_log_reopen();
        if (d->o.on_reopen != NULL)
            d->o.on_reopen(d->o.data);
        if (signo == SIGHUP && d->o.on_reload != NULL) {
            cdn_sd_reloading();
            d->o.on_reload(d->o.data);
            cdn_sd_ready();
        }
        else if (signo == SIGUSR1)
            cdn_notice("SIGUSR1: logs reopened");
    } else if (signo == SIGTERM || signo == SIGINT) {
        if (!cdn_daemon_stopping(d)) {
            cdn_notice("signal %d: stopping (finishing requests in flight)", signo);
            cdn_sd_stopping();
        }
        cdn_daemon_stop(d);
    }
}

static void on_reclaim(cdn_timer_t *t, void *data)
{
    cdn_daemon_t *d = data;
    if (cdn_epoch_reclaim(d->epoch) > 0)
        cdn_timer_start(t, RECLAIM_MS);
}

static int open_listeners(cdn_daemon_t *d, char *err, size_t errlen)
{
    int each = d->o.reuseport && d->n > 1;
    for (size_t l = 0; l < d->nls; l++)
        for (unsigned i = 0; i < d->n; i++) {
            if (i == 0 || each)
                d->s[i].fd[l] = cdn_listen_tcp(d->ls[l].addr, d->ls[l].len, each, err, errlen);
            else if ((d->s[i].fd[l] = dup(d->s[0].fd[l])) < 0)
                snprintf(err, errlen, "dup: %s", strerror(errno));
            if (d->s[i].fd[l] < 0)
                return -1;
        }
    return 0;
}

static void worker_run(struct cdn_worker *w);

/* A worker's loop, h2o context, listener sockets and the program's per-worker state, made on the
 * thread that will run them: h2o 2.2.5 gives a socket the buffer prototype (and recycle lists) of
 * the thread that makes it, and a socket made on one thread and read on another (each context's
 * message queue, for one) allocated and freed its buffers on another thread's list, racing with
 * that thread: heap corruption under cross-worker collapsing (40 parallel clients of cold objects
 * on 4 workers crashed cdn-edge within tens of rounds; edge_collapse.sh failed 1 run in 8). */
static int worker_setup(cdn_daemon_t *d, unsigned i)
{
    const struct cdn_daemon_opts *o = &d->o;
    struct cdn_worker *w = &d->s[i].w;
    w->id = i;
    w->d = d;
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, o->h2o);
    for (size_t l = 0; l < d->nls; l++) {
        w->actx[l] = (h2o_accept_ctx_t){.ctx = &w->ctx, .hosts = o->hosts ? o->hosts : o->h2o->hosts,
                                        .ssl_ctx = d->ls[l].ssl_ctx};
        w->listener[l] = h2o_evloop_socket_create(w->loop, d->s[i].fd[l], H2O_SOCKET_FLAG_DONT_READ);
        d->s[i].fd[l] = -1; /* the socket owns it */
        w->listener[l]->data = &w->actx[l];
        h2o_socket_read_start(w->listener[l], on_accept);
    }
    if (o->on_worker_init != NULL && o->on_worker_init(w, o->data, d->err, d->errlen) != 0)
        return -1;
    return 0;
}

static void *worker_thread(void *arg)
{
    struct cdn_worker *w = arg;
    cdn_daemon_t *d = w->d;
    int rc = worker_setup(d, w->id);
    pthread_mutex_lock(&d->mu);
    d->setup_rc = rc != 0;
    pthread_cond_broadcast(&d->cv);
    while (d->go == 0)
        pthread_cond_wait(&d->cv, &d->mu);
    int go = d->go;
    pthread_mutex_unlock(&d->mu);
    if (rc != 0 || go < 0)
        return NULL;
    worker_run(w);
    __atomic_add_fetch(&d->done, 1, __ATOMIC_RELEASE);
    for (;;)
        pause(); /* every signal is blocked here: only exit() ends it */
    return NULL;
}

/* glibc's malloc gives blocks from 128 KiB up by mmap (a threshold that moves up only after such
 * a block is freed) and returns a heap top of 128 KiB free with brk: a server that allocates and
 * frees a 123 KB buffer per response paid a system call and a fresh zeroed page per 4 KiB each
 * time (shop-lb proxying an image: 158 us CPU per request, 108 with the thresholds below). Fixed
 * thresholds, set before the worker threads make their arenas: blocks below 4 MiB come from the
 * heap, and up to 16 MiB free at an arena's top stays (per arena). GLIBC_TUNABLES wins when it
 * sets malloc tunables. */
static void malloc_tune(void)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if (t != NULL && strstr(t, "glibc.malloc.") != NULL)
        return;
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

cdn_daemon_t *cdn_daemon_new(const struct cdn_daemon_opts *o, char *err, size_t errlen)
{
    malloc_tune();
    cdn_daemon_t *d = calloc(1, sizeof(*d));
    unsigned n = o->threads ? o->threads : 1;
    if (n > CDN_DAEMON_MAX_THREADS) {
        snprintf(err, errlen, "at most %d threads", CDN_DAEMON_MAX_THREADS);
        free(d);
        return NULL;
    }
    if (d == NULL || (d->s = calloc(n, sizeof(*d->s))) == NULL || (d->epoch = cdn_epoch_new(n)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    d->o = *o;
    d->n = n;
    for (unsigned i = 0; i < n; i++)
        for (size_t l = 0; l < CDN_DAEMON_MAX_LISTENERS; l++)
            d->s[i].fd[l] = -1;
    if (d->o.drain_ms == 0)
        d->o.drain_ms = CDN_DAEMON_DRAIN_MS;
    if (o->nlisteners > CDN_DAEMON_MAX_LISTENERS) {
        snprintf(err, errlen, "at most %d listeners", CDN_DAEMON_MAX_LISTENERS);
        goto fail;
    }
    d->nls = o->nlisteners > 0 ? o->nlisteners : 1;
    if (o->nlisteners > 0)
        memcpy(d->ls, o->listeners, o->nlisteners * sizeof(d->ls[0]));
    else
        d->ls[0] = (struct cdn_daemon_listener){o->listen, o->listen_len, o->ssl_ctx};
    d->o.listeners = NULL; /* d->ls is the copy */
    if (cdn_signals_block() != 0) {
        snprintf(err, errlen, "cannot block signals");
        goto fail;
    }
    if (open_listeners(d, err, errlen) != 0)
        goto fail;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->err = err;
    d->errlen = errlen;
    /* worker 0 on this thread; each other worker on its own, made now, one at a time (so that the
     * on_worker_init hooks never run at once), set up there and parked until cdn_daemon_run */
    if (worker_setup(d, 0) != 0)
        goto fail;
    for (unsigned i = 1; i < n; i++) {
        d->s[i].w.id = i; /* read by the new thread */
        d->s[i].w.d = d;
        pthread_mutex_lock(&d->mu);
        d->setup_rc = -1;
        int made = pthread_create(&d->s[i].th, NULL, worker_thread, &d->s[i].w) == 0;
        if (made) {
            d->nthreads = i;
            while (d->setup_rc == -1)
                pthread_cond_wait(&d->cv, &d->mu);
        }
        int rc = made ? d->setup_rc : 1;
        pthread_mutex_unlock(&d->mu);
        if (!made)
            snprintf(err, errlen, "cannot start worker thread %u", i);
        if (rc != 0)
            goto fail;
    }
    d->reclaim = cdn_timer_new(d->s[0].w.loop, on_reclaim, d);
    d->sig = cdn_signals_watch(d->s[0].w.loop, on_signal, d);
    if (d->reclaim == NULL || d->sig == NULL) {
        snprintf(err, errlen, "cannot watch signals");
        goto fail;
    }
    return d;
fail:
    if (d != NULL && d->nthreads > 0) { /* the parked workers give up */
        pthread_mutex_lock(&d->mu);
        d->go = -1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        for (unsigned i = 1; i <= d->nthreads; i++)
            pthread_join(d->s[i].th, NULL);
    }
    /* a failed start ends the process: close the listeners so that the port is free at once */
    if (d != NULL && d->s != NULL)
        for (unsigned i = 0; i < n; i++)
            for (size_t l = 0; l < CDN_DAEMON_MAX_LISTENERS; l++) {
                if (d->s[i].fd[l] >= 0)
                    close(d->s[i].fd[l]);
                if (d->s[i].w.listener[l] != NULL)
                    h2o_socket_close(d->s[i].w.listener[l]);
            }
    return NULL;
}

/* Runs a worker's loop until a stop was asked and its requests in flight are done (at most
 * drain_ms). Each turn is one epoch. */
static void worker_run(struct cdn_worker *w)
{
    cdn_daemon_t *d = w->d;
    int closing = 0;
    current = w;
    uint64_t deadline = 0;
    if (d->o.on_worker_start != NULL)
        d->o.on_worker_start(w, d->o.data);
    for (;;) {
        cdn_epoch_enter(d->epoch, w->id);
        h2o_evloop_run(w->loop, TURN_MS);
        cdn_epoch_leave(d->epoch, w->id);
        if (!closing && cdn_daemon_stopping(d)) {
            closing = 1;
            for (size_t l = 0; l < d->nls; l++) {
                h2o_socket_read_stop(w->listener[l]);
                h2o_socket_close(w->listener[l]);
                w->listener[l] = NULL;
            }
            h2o_context_request_shutdown(&w->ctx);
            deadline = cdn_now_ms() + d->o.drain_ms;
        }
        if (closing && ((w->inflight == 0 && (d->o.busy == NULL || d->o.busy(w, d->o.data) == 0)) ||
                        cdn_now_ms() >= deadline))
            break;
    }
    if (w->inflight > 0)
        cdn_warn("worker %u: drain deadline passed with %zu request(s) in flight", w->id, w->inflight);
    if (d->o.on_worker_exit != NULL)
        d->o.on_worker_exit(w, d->o.data);
}


int cdn_daemon_run(cdn_daemon_t *d)
{
    unsigned started = 1 + d->nthreads; /* every worker thread was made and set up by cdn_daemon_new */
    pthread_mutex_lock(&d->mu);
    d->go = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    /* the listeners were bound in cdn_daemon_new: connections are accepted from here on */
    cdn_sd_status("%s: %u worker(s)", d->o.prog ? d->o.prog : "daemon", d->n);
    cdn_sd_ready();
    worker_run(&d->s[0].w);
    while (__atomic_load_n(&d->done, __ATOMIC_ACQUIRE) < started - 1)
        usleep(10000); /* each worker is done within its own drain deadline */
    return started == d->n ? 0 : 1;
}

void cdn_daemon_stop(cdn_daemon_t *d) { __atomic_store_n(&d->stopping, 1, __ATOMIC_RELEASE); }
int cdn_daemon_stopping(const cdn_daemon_t *d) { return __atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE); }
unsigned cdn_daemon_nworkers(const cdn_daemon_t *d) { return d->n; }
struct cdn_worker *cdn_daemon_worker(cdn_daemon_t *d, unsigned i) { return i < d->n ? &d->s[i].w : NULL; }
h2o_evloop_t *cdn_daemon_main_loop(cdn_daemon_t *d) { return d->s[0].w.loop; }

void cdn_daemon_free(cdn_daemon_t *d)
{
    if (d == NULL)
        return;
    cdn_signals_free(d->sig);
    cdn_timer_free(d->reclaim);
    cdn_epoch_free(d->epoch); /* the workers have stopped: everything retired goes */
    /* the workers' loops and contexts stay: their parked threads' thread-locals point into them */
}

int cdn_daemon_retire(cdn_daemon_t *d, void *p, void (*free_fn)(void *))
{
    if (cdn_epoch_retire(d->epoch, p, free_fn) != 0)
        return -1;
    cdn_timer_start(d->reclaim, RECLAIM_MS);
    return 0;
}

size_t cdn_daemon_retired(const cdn_daemon_t *d) { return cdn_epoch_reclaim(d->epoch); }

struct cdn_worker *cdn_worker_of(h2o_req_t *req)
{
    /* a request of another context (the admin listener's, on worker 0's thread) has no worker */
    return current != NULL && req->conn->ctx == &current->ctx ? current : NULL;
}

static void on_tracked_dispose(void *p)
{
    struct cdn_worker *w = *(struct cdn_worker **)p;
    w->inflight--;
}

void cdn_worker_track(h2o_req_t *req)
{
    struct cdn_worker *w = cdn_worker_of(req);
    if (w == NULL)
        return;
    struct cdn_worker **ref = h2o_mem_alloc_shared(&req->pool, sizeof(*ref), on_tracked_dispose);
    *ref = w;
    w->inflight++;
}

static const char *dup_iov(h2o_req_t *req, h2o_iovec_t v) { return h2o_strdup(&req->pool, v.base, v.len).base; }

static const char *find_hdr(h2o_req_t *req, const h2o_headers_t *h, const h2o_token_t *tok)
{
    ssize_t i = h2o_find_header(h, tok, -1);
    return i >= 0 ? dup_iov(req, h->entries[i].value) : NULL;
}

void cdn_alog_entry_from_req(h2o_req_t *req, struct cdn_alog_entry *e, char peer[CDN_PEER_TEXT_MAX])
{
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    cdn_peer_text(sl > 0 ? (struct sockaddr *)&ss : NULL, peer);
    struct timeval end;
    gettimeofday(&end, NULL);
    const struct timeval *b = &req->timestamps.request_begin_at;
    int64_t us = (int64_t)(end.tv_sec - b->tv_sec) * 1000000 + (end.tv_usec - b->tv_usec);
    ssize_t ri = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    const h2o_headers_t *rh = &req->res.headers;
    if (ri < 0) {
        ri = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
        rh = &req->headers;
    }
    *e = (struct cdn_alog_entry){
        .start = *b,
        .remote_addr = peer,
        .host = dup_iov(req, req->input.authority),
        .method = dup_iov(req, req->method),
        .target = dup_iov(req, req->input.path),
        .protocol = req->version >= 0x200 ? "HTTP/2" : req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1",
        .status = req->res.status,
        .bytes_sent = req->bytes_sent,
        .referer = find_hdr(req, &req->headers, H2O_TOKEN_REFERER),
        .user_agent = find_hdr(req, &req->headers, H2O_TOKEN_USER_AGENT),
        .duration_us = us > 0 ? (uint64_t)us : 0,
        .request_id = ri >= 0 ? dup_iov(req, rh->entries[ri].value) : NULL,
    };
}
