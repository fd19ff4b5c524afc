/* cdn/daemon.h - the runtime every HTTP daemon shares: worker threads with an h2o loop each, their
 * listeners, signals, graceful stop, reload lifetime and the access-log entry of a request.
 *
 * Owns: the workers (loop, h2o context, accept context, listening socket), the signal watch, the
 * reclaim timer and the epoch registry that frees what a reload replaced.
 * Rules:
 * - Worker 0 is the thread that calls cdn_daemon_run (the main thread): it also runs the signal
 *   watch, the reload callback and anything the program puts on cdn_daemon_main_loop (admin
 *   listener, health checks). Workers 1..n-1 are threads of their own.
 * - Listening: one address (opts.listen), or up to CDN_DAEMON_MAX_LISTENERS (opts.listeners), each
 *   cleartext or TLS with its own SSL_CTX. Per address: one socket per worker with SO_REUSEPORT
 *   when opts.reuseport and threads > 1 (the kernel spreads connections), else one socket shared
 *   by every worker. At most CDN_DAEMON_ACCEPTS_PER_WAKEUP connections are accepted per wakeup
 *   and listener; the rest come next turn.
 * - Signals: SIGTERM/SIGINT stop (once); SIGHUP reopens the error log, calls on_reopen, then
 *   on_reload; SIGUSR1 reopens logs only. cdn_daemon_new blocks the signals in the calling
 *   thread, so threads created after it (workers, the program's own) never see them.
 * - Graceful stop: every worker closes its listener, asks its connections to finish (HTTP/2
 *   GOAWAY, HTTP/1 closes after the response) and runs until its requests in flight
 *   (cdn_worker_track) are done, and opts.busy (if any) says 0, or drain_ms has passed.
 * - Reload lifetime: each worker's loop turn is one epoch (cdn/epoch.h). Configuration replaced by
 *   a reload goes to cdn_daemon_retire and is freed once every worker has finished the turn it
 *   was in: handlers may use configuration pointers within a callback, never across turns.
 * Threads: cdn_daemon_new makes workers 1..n-1's threads; each makes its own loop, context,
 * listener sockets and per-worker state (h2o 2.2.5 ties a socket's buffers to the thread that
 * makes it: a socket read on another thread corrupted the heap) and waits for cdn_daemon_run. A
 * finished worker thread stays parked until the process exits (h2o 2.2.5 keeps recycled memory
 * in thread-locals that a thread exit would leak). */
#ifndef CDN_DAEMON_H
#define CDN_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <h2o.h>

#include "cdn/log.h"

#define CDN_DAEMON_MAX_THREADS 64          /* one metrics slot each (CDN_METRICS_MAX_THREADS) */
#define CDN_DAEMON_ACCEPTS_PER_WAKEUP 16
#define CDN_DAEMON_DRAIN_MS 10000          /* drain deadline when opts.drain_ms is 0 */
#define CDN_DAEMON_MAX_LISTENERS 8

typedef struct cdn_daemon cdn_daemon_t;

/* One worker: its loop and everything that belongs to it. */
struct cdn_worker {
    unsigned id;                /* 0 .. threads-1 */
    cdn_daemon_t *d;
    h2o_evloop_t *loop;
    h2o_context_t ctx;          /* req->conn->ctx of its requests (see cdn_worker_of) */
    h2o_accept_ctx_t actx[CDN_DAEMON_MAX_LISTENERS];    /* one per listening address */
    h2o_socket_t *listener[CDN_DAEMON_MAX_LISTENERS];
    size_t inflight;            /* requests counted by cdn_worker_track, not yet disposed */
    void *data;                 /* the program's per-worker state */
};

/* One listening address of several (opts.listeners). */
struct cdn_daemon_listener {
    const struct sockaddr *addr;
    socklen_t len;
    SSL_CTX *ssl_ctx;                   /* TLS (with the program's ALPN); NULL: cleartext (h2c) */
};

struct cdn_daemon_opts {
    const char *prog;                   /* for log lines */
    unsigned threads;                   /* 1 .. CDN_DAEMON_MAX_THREADS (0 counts as 1) */
    const struct sockaddr *listen;      /* where to listen */
    socklen_t listen_len;
    int reuseport;                      /* one SO_REUSEPORT socket per worker */
    h2o_globalconf_t *h2o;              /* the program's hosts, paths and handlers */
    h2o_hostconf_t **hosts;             /* what the listener serves; NULL: h2o->hosts */
    SSL_CTX *ssl_ctx;                   /* TLS on the listener; NULL: cleartext (h2c) */
    /* Several addresses instead of listen/listen_len/ssl_ctx (used when nlisteners > 0; at most
     * CDN_DAEMON_MAX_LISTENERS). The array is copied. */
    const struct cdn_daemon_listener *listeners;
    size_t nlisteners;
    uint64_t drain_ms;                  /* graceful stop deadline; 0: CDN_DAEMON_DRAIN_MS */
    /* In cdn_daemon_new, for each worker, on the worker's own thread (worker 0: the caller's),
     * one worker at a time, once its loop and context exist: 0, or -1 with err set
     * (cdn_daemon_new then fails). */
    int (*on_worker_init)(struct cdn_worker *w, void *data, char *err, size_t errlen);
    /* The worker's own thread, before its loop first runs (thread-local setup); may be NULL. */
    void (*on_worker_start)(struct cdn_worker *w, void *data);
    /* The worker's own thread, after each loop turn once stopping: work of the program's own that
     * the drain waits for besides tracked requests (e.g. upstream transfers); 0: none. May be NULL. */
    size_t (*busy)(struct cdn_worker *w, void *data);
    /* The worker's own thread, after its drain. */
    void (*on_worker_exit)(struct cdn_worker *w, void *data);
    void (*on_reload)(void *data);      /* SIGHUP, main thread */
    void (*on_reopen)(void *data);      /* SIGHUP and SIGUSR1: reopen the program's own logs */
    void *data;
};

/* Sets up the workers and their listeners and watches the signals; nothing runs yet. NULL with
 * err set ("bind 127.0.0.1:80: Permission denied"). */
cdn_daemon_t *cdn_daemon_new(const struct cdn_daemon_opts *o, char *err, size_t errlen);
/* Starts workers 1..n-1, runs worker 0 here; returns 0 once every worker has drained. */
int cdn_daemon_run(cdn_daemon_t *d);
/* Asks for a graceful stop (what SIGTERM does); any thread. */
void cdn_daemon_stop(cdn_daemon_t *d);
int cdn_daemon_stopping(const cdn_daemon_t *d);
/* After cdn_daemon_run: frees what the parked workers no longer use (retired objects, signals). */
void cdn_daemon_free(cdn_daemon_t *d);

unsigned cdn_daemon_nworkers(const cdn_daemon_t *d);
struct cdn_worker *cdn_daemon_worker(cdn_daemon_t *d, unsigned i);
/* Worker 0's loop: the admin listener, health checks and timers of the main thread go there. */
h2o_evloop_t *cdn_daemon_main_loop(cdn_daemon_t *d);

/* Main thread only. Frees p with free_fn once no worker can still see it. 0, or -1 when out of
 * memory (p is then freed at cdn_daemon_free). */
int cdn_daemon_retire(cdn_daemon_t *d, void *p, void (*free_fn)(void *p));
/* Retired objects not freed yet (tests and /metrics). */
size_t cdn_daemon_retired(const cdn_daemon_t *d);

/* The worker whose listener accepted req's connection (NULL for a request of another context,
 * e.g. the admin listener's). */
struct cdn_worker *cdn_worker_of(h2o_req_t *req);
/* Counts req in its worker's inflight until the request's pool is disposed: a graceful stop waits
 * for it. */
void cdn_worker_track(h2o_req_t *req);

/* The access-log entry of a finished request: time, peer (IPv4 and IPv6), host, method, target,
 * protocol, status, bytes, referer, user agent, duration, X-Request-Id (the response's, else the
 * request's). Strings are copied into req->pool; peer is the caller's buffer for the address.
 * upstream, cache_status and step are left NULL for the caller. */
void cdn_alog_entry_from_req(h2o_req_t *req, struct cdn_alog_entry *e, char peer[CDN_PEER_TEXT_MAX]);

#endif
