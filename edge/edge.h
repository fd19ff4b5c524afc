/* edge/edge.h - the server's shared types: configuration, the per-process server (store,
 * metrics), and the per-thread worker (h2o context, HTTP client, in-flight fetches).
 *
 * Threads: one worker per thread, each with its own loop; the store and the metrics are shared
 * and thread-safe; a fetch and its waiters belong to one worker, and other workers follow it
 * through its feed (edge/fetch/feed.h: collapsing across workers). */
#ifndef EDGE_EDGE_H
#define EDGE_EDGE_H

#include <stdint.h>
#include <h2o.h>
#include <h2o/multithread.h>

#include "cdn/daemon.h"
#include "cdn/httpc.h"
#include "cdn/log.h"
#include "cdn/metrics.h"
#include "edge/http/cache_key.h"
#include "edge/h2o/date_send.h"
#include "edge/h2o/h2guard.h"
#include "edge/http/freshness.h"
#include "edge/store/idmap.h"
#include "edge/store/store.h"
#include "edge/vhost/vhost.h"
#include "edge/fetch/resil.h"

/* Concurrent requests to one vhost's origin, all workers together, unless configured
 * (max_fetches): enough for a busy origin, few enough that a flood of misses (or of reset h2
 * streams) cannot open thousands of upstream connections and run out of descriptors. */
#define EDGE_MAX_FETCHES_DEFAULT 256
#define EDGE_H2_RESET_LIMIT_DEFAULT 100
#define EDGE_H2_EMPTY_LIMIT_DEFAULT 100
#define EDGE_SEND_TIMEOUT_MS_DEFAULT 30000

struct edge_conf {
    const char *name;            /* Cache-Status cache name suffix: "cdn-edge-<name>" */
    const char *origin;          /* the default vhost's origin (-b / top-level origin), or NULL */
    struct edge_vhosts *vhosts;  /* Host -> origin and parents; an atomic pointer that a SIGHUP
                                    reload swaps (old tables are kept until exit: fetches in
                                    flight point into them) */
    uint64_t parent_retry_ms;    /* a parent that refused is skipped this long */
    const char *served_by;       /* X-Served-By value, or NULL */
    struct edge_key_conf key;
    struct edge_fresh_conf fresh;
    uint64_t max_object;         /* larger responses are streamed, not stored */
    uint64_t range_fetch_above;  /* a Range miss on an object known to be larger is forwarded as a
                                    range and not stored; 0 = always fetch whole */
    uint64_t connect_timeout_ms, timeout_ms;
    int upstream_curl;           /* 1: every upstream request on libcurl; 0 (default): plain
                                    http:// GET/HEAD on cdn_httpc's HTTP/1.1 engine (docs/HTTPC.md) */
    uint64_t expire_sweep_ms;    /* expiry sweep period (0: none) */
    uint64_t expire_keep_s;      /* extra time the sweep leaves objects with a validator */
    int workers;
    uint64_t graceful_timeout_ms;/* how long a graceful stop waits for fetches in flight */
    const char *edge_key;        /* shared by the edges of one CDN: a request carrying it in
                                    CDN-Edge-Key (and naming an edge in CDN-Loop) is another edge's
                                    (internal answers); sent to parents; NULL: nobody is internal */
    unsigned h2_reset_limit;     /* HTTP/2 streams a client may reset per connection per second
                                    before GOAWAY (h2guard.h); 0 = no bound */
    uint64_t send_timeout_ms;    /* a response h2o has not taken for this long is ended (0: never) */
    unsigned h2_empty_limit;     /* empty HTTP/2 frames per connection per second before GOAWAY
                                    and close (h2guard.h); 0 = no bound */
    size_t rate_limit_keys;      /* slots of the rate limiter's table (rate_limit_keys) */
    const char *admin_token;     /* admin_token_file's token: the admin's state-changing endpoints
                                    (purge, drain) need it as a bearer token; NULL: they are off */
    int pass_errors_stale;       /* serve stale on 5xx too (stale-if-error) - always on */
    struct edge_resil_conf resil;/* fast stale, breakers (edge/fetch/resil.h) */
    const char *const *image_paths; /* Accept normalised under these prefixes (http/accept.h);
                                    NULL-terminated, NULL: nowhere */
    unsigned image_formats;      /* what the origin offers there: a mask of 1 << edge_imgfmt */
};

struct edge_server {
    struct edge_conf conf;
    struct edge_store *store;
    cdn_metrics_t *metrics;
    cdn_alog_t *alog;            /* access log or NULL */
    char cache_name[96];         /* "cdn-edge-<name>" */
    char via[128];               /* "1.1 cdn-edge-<name>" */
    /* m_req[result][tier]: result hit, miss, stale, revalidated, pass, error, purge;
     * tier ram, rocksdb, parent, origin, none (where the answer came from) */
    cdn_series_t *m_req[7][5], *m_fetch[2], *m_parent_down, *m_loop, *m_mirror, *m_bad_host, *m_bad_request, *m_h2_empty_goaway, *m_send_timeout;
    cdn_series_t *m_tier_hit[3], *m_origin, *m_origin_err, *m_collapsed, *m_bytes,
        *m_purged, *m_corrupt, *m_latency, *m_stored;
    cdn_series_t *m_hit_bytes;   /* body bytes sent from this edge's cache (hits and stale answers) */
    cdn_series_t *m_imgfmt[3];   /* edge_image_requests_total{format}: by enum edge_imgfmt */
    cdn_series_t *m_queued, *m_busy; /* fetches that waited for a max_fetches slot; 503s */
    cdn_series_t *m_expired;         /* objects removed by the expiry sweep */
    cdn_series_t *m_parent_5xx;      /* parent 5xx/508 answers passed over for the next upstream */
    cdn_series_t *m_check_down;      /* parents marked down by the active health check */
    cdn_series_t *m_interim;         /* interim (1xx) responses forwarded to clients */
    cdn_series_t *m_h2_resets, *m_h2_goaway; /* h2 streams reset before their response was
                                        complete; connections sent GOAWAY for it (h2guard.h) */
    cdn_series_t *m_orphan_drop;     /* queued fetches dropped: nobody waited for them any more */
    cdn_series_t *m_rl_limited;      /* requests refused with 429 by a rate_limit */
    cdn_series_t *m_purge_refused;   /* PURGE on a public listener refused (off, ACL, token) */
    cdn_series_t *m_backlog_hits;    /* hits served before the purge bus's backlog was applied */
    cdn_series_t *m_stale_slow, *m_brk_stale, *m_brk_503; /* resil.h: stale for a slow upstream;
                                        stale / 503 because a breaker was open */
    cdn_rl_t *rl;                    /* the rate limiter's table, shared by every worker and vhost
                                        (cdn/ratelimit.h); made at start, kept across reloads */
    struct edge_bus *bus;            /* the purge bus (edge/purge/bus.h), or NULL */
    int draining;                    /* admin POST /drain: /healthz answers 503 (health checkers
                                        move traffic away) while requests are still served;
                                        written by the admin thread, read by workers (atomics) */
};

struct edge_bus;

struct edge_worker {
    h2o_context_t *ctx;          /* the daemon worker's (cdn/daemon.h) */
    struct edge_server *srv;
    cdn_httpc_t *httpc;
    struct edge_idmap fetches;   /* key id -> struct fetch * (collapsible fetches in flight) */
    h2o_multithread_receiver_t recv; /* wakes up mirrors of other workers' fetches (feed.h) */
    h2o_linklist_t fetch_queue;  /* fetches waiting for an origin slot (max_fetches), FIFO */
    struct cdn_timer *queue_timer; /* polls the queue: slots freed by other workers, deadlines */
    int pumping;
    struct edge_date_slot date;  /* the Date last shown on a response head (date_send.h) */
    struct edge_h2guard h2guard; /* resets per HTTP/2 connection (h2guard.h) */
    h2o_linklist_t sending;      /* responses h2o has not taken yet, oldest send first */
    struct cdn_timer *send_timer;/* ends those older than send_timeout (req/deliver.c) */
    h2o_timeout_t fb_timeout;    /* stale_first_byte_timeout of fetches with a stale copy (resil.h) */
    unsigned queue_len;          /* fetches in fetch_queue (fetch_queue_max sheds beyond it) */
    h2o_linklist_t retry_wait;   /* fetches waiting out their retry backoff (the queue timer polls) */
    int fb_on;
    h2o_timeout_t brk_fb_timeout; /* breaker.first_byte: a request without a head counts as failed */
    int brk_fb_on;
};

/* Registers the public handler on a host config. */
void edge_handler_register(h2o_hostconf_t *hc, struct edge_server *srv);
/* Per-worker setup (w->ctx set), on the main thread for each worker. 0 or -1. */
int edge_worker_init(struct edge_worker *w, struct edge_server *srv, char *err, size_t errlen);
/* On the worker's thread after its loop stopped, before the context is disposed. */
void edge_worker_dispose(struct edge_worker *w);
/* The edge's metrics (edge/admin.c). */
void edge_server_metrics_init(struct edge_server *srv);
/* Frees the handler's process-wide state (at exit, after the workers). */
void edge_handler_global_free(void);

#endif
