/* edge/purge/bus.c - the purge bus's threads (see bus.h).
 *
 * Two links to Redis, each a blocking hiredis context on a thread of its own:
 * - the reader (thread `run`): connect (retry every 500 ms while Redis is unreachable) -> XGROUP
 *   CREATE (BUSYGROUP: it exists) -> catch up (own pending entries from 0, then ">" without
 *   blocking until nothing is left; then `ready`) -> loop on XREADGROUP BLOCK, the acks of each
 *   batch written together with the next XREADGROUP. Its only wait is that read: the only time it
 *   is not listening is one round trip after a batch (or after a BLOCK timeout, every block_ms).
 * - the keeper (thread `keep`): once a second XINFO GROUPS (lag, pending) and, while the group has
 *   pending entries, XAUTOCLAIM of those idle longer than retry_after (retried or dead-lettered).
 *   Kept off the reader so that its round trips never leave a window in which a purge waits.
 * Any reply that is not one (the connection broke) drops that link's context and starts it again.
 * Rules: a link's context is used by its thread only; the main thread may shut its socket down
 * (under rc_mu) to stop it. Both threads apply purges to the store (thread-safe). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "cdn/admin.h"
#include "cdn/log.h"
#include "edge/purge/bus.h"
#include "edge/purge/cmd.h"

#define BUS_MAGIC 0x50425553u /* "PBUS" */
#define BATCH 500

/* One connection to Redis and what is owed on it. */
struct link {
    redisContext *rc;
    int npipe;                   /* replies owed for commands appended (acks of a batch) */
    struct edge_purge_cmd cmd;   /* scratch */
};

struct edge_bus {
    uint32_t magic;
    struct edge_bus_conf c;
    char host[256], stream[256], name[128], acks[300], dead[300], pass[256];
    int port;
    struct edge_store *store;
    const struct edge_key_conf *kc;
    pthread_t th, keeper;
    pthread_mutex_t rc_mu;       /* the links' rc pointers, for edge_bus_stop's shutdown */
    struct link rd, mt;          /* the reader's, the keeper's */
    int stop, ready, up;         /* atomics */
    int keeper_started;
    int64_t lag;                 /* atomic: entries of the stream not yet delivered to the group */
    uint64_t last_claim_ms;
    long long pending;           /* this group's pending entries, from the last XINFO GROUPS */
    cdn_series_t *m_recv, *m_applied, *m_failed, *m_dead, *m_lat;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The link's context is gone (an error): drop it; its loop connects again. */
static void drop(struct edge_bus *b, struct link *l, const char *why)
{
    if (l->rc != NULL && l == &b->rd && !__atomic_load_n(&b->stop, __ATOMIC_RELAXED))
        cdn_warn("purge bus: %s: %s", why, l->rc->errstr[0] ? l->rc->errstr : "no reply");
    pthread_mutex_lock(&b->rc_mu);
    if (l->rc != NULL)
        redisFree(l->rc);
    l->rc = NULL;
    l->npipe = 0;
    pthread_mutex_unlock(&b->rc_mu);
    if (l == &b->rd)
        __atomic_store_n(&b->up, 0, __ATOMIC_RELAXED);
}

static const redisReply *field(const redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING && strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    return NULL;
}

/* Sends the commands appended so far and reads n replies; -1 when one is missing or an error. */
static int replies(struct link *l, int n)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(l->rc, &r) != REDIS_OK || r == NULL)
            return -1;
        if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
            cdn_warn("purge bus: %s", ((redisReply *)r)->str);
            rc = -1;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* One stream entry, delivered for the `deliveries`-th time: applied and acked (with an entry on
 * the ack stream), or left pending (to be claimed again), or dead-lettered after max_deliveries.
 * The ack commands are appended, not sent: flush() sends a batch's at once. */
static void handle(struct edge_bus *b, struct link *l, const redisReply *e, long long deliveries)
{
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return; /* an entry deleted from the stream while pending (nil): nothing to do */
    const char *id = e->element[0]->str;
    const redisReply *fields = e->element[1], *cmd = field(fields, "cmd"), *t = field(fields, "t");
    char err[200];
    int ok;
    if (cmd == NULL) {
        snprintf(err, sizeof(err), "no cmd field");
        ok = 0;
    } else {
        ok = edge_purge_parse(cmd->str, cmd->len, b->kc, &l->cmd, err, sizeof(err)) == 0;
    }
    if (!ok) {
        cdn_counter_inc(b->m_failed);
        if (deliveries < (long long)b->c.max_deliveries) {
            cdn_warn("purge bus: entry %s (delivery %lld of %u): %s; left pending, retried after %llu ms", id,
                     deliveries, b->c.max_deliveries, err, (unsigned long long)b->c.retry_after_ms);
            return;
        }
        char dl[24];
        snprintf(dl, sizeof(dl), "%lld", deliveries);
        redisAppendCommand(l->rc, "XADD %s MAXLEN ~ 100000 * id %s edge %s cmd %b reason %s deliveries %s", b->dead, id,
                           b->name, cmd ? cmd->str : "", (size_t)(cmd ? cmd->len : 0), err, dl);
        redisAppendCommand(l->rc, "XACK %s %s %s", b->stream, b->name, id);
        cdn_counter_inc(b->m_dead);
        cdn_err("purge bus: entry %s dead-lettered to %s after %lld deliveries: %s", id, b->dead, deliveries, err);
        l->npipe += 2;
        return;
    }
    int64_t now = wall_ms();
    size_t n = edge_store_purge(b->store, &l->cmd, now);
    int64_t at = t ? strtoll(t->str, NULL, 10) : 0, lat = at > 0 && now >= at ? now - at : 0;
    cdn_counter_inc(b->m_applied);
    if (at > 0)
        cdn_histogram_observe(b->m_lat, (double)lat / 1000.0);
    char ts[24], ns[24], ls[24];
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    snprintf(ns, sizeof(ns), "%zu", n);
    snprintf(ls, sizeof(ls), "%lld", (long long)lat);
    redisAppendCommand(l->rc, "XACK %s %s %s", b->stream, b->name, id);
    redisAppendCommand(l->rc, "XADD %s MAXLEN ~ 100000 * id %s edge %s t_apply %s n %s lat_ms %s", b->acks, id, b->name,
                       ts, ns, ls);
    char text[256];
    edge_purge_format(&l->cmd, text, sizeof(text));
    cdn_log(CDN_LOG_DEBUG, "purge bus: %s applied: %s (%zu objects, %lld ms after it was published)", id, text, n,
            (long long)lat);
    l->npipe += 2;
}

/* The acks of a batch, sent in one write (pipelined): -1 when the connection broke. */
static int flush(struct link *l)
{
    int n = l->npipe;
    l->npipe = 0;
    return n > 0 && replies(l, n) < 0 && l->rc->err ? -1 : 0;
}

/* The entries of an XREADGROUP reply ([[stream, [entry...]]]), or NULL when none. */
static const redisReply *entries_of(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return NULL;
    const redisReply *s = r->element[0];
    if (s->type != REDIS_REPLY_ARRAY || s->elements < 2 || s->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    return s->element[1];
}

/* XREADGROUP from `from` (">" new entries, an id: own pending after it) without blocking, on the
 * reader's link. Handles each entry. Returns how many there were, or -1 when the connection
 * broke. *last gets the last id (for paging through pending entries). */
static int read_group(struct edge_bus *b, const char *from, char *last, size_t lastcap)
{
    struct link *l = &b->rd;
    redisReply *r = redisCommand(l->rc, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s %s", b->name, b->name, BATCH,
                                 b->stream, from);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        cdn_warn("purge bus: XREADGROUP: %s", r->str);
        int nogroup = strncmp(r->str, "NOGROUP", 7) == 0;
        freeReplyObject(r);
        return nogroup ? -1 : 0; /* the stream or group went away (Redis lost its data): start again */
    }
    const redisReply *es = entries_of(r);
    int n = es ? (int)es->elements : 0;
    int pending = strcmp(from, ">") != 0;
    for (int i = 0; i < n; i++) {
        if (!pending)
            cdn_counter_inc(b->m_recv);
        const redisReply *e = es->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements > 0 && e->element[0]->type == REDIS_REPLY_STRING)
            snprintf(last, lastcap, "%s", e->element[0]->str);
        /* a pending entry read again after a restart counts as one more delivery */
        handle(b, l, e, pending ? 2 : 1);
    }
    freeReplyObject(r);
    return flush(l) < 0 ? -1 : n;
}

/* XAUTOCLAIM of entries idle longer than retry_after: each is handled again, with its delivery
 * count from XPENDING, on the keeper's link. -1 when the connection broke. */
static int reclaim(struct edge_bus *b)
{
    struct link *l = &b->mt;
    redisReply *r = redisCommand(l->rc, "XAUTOCLAIM %s %s %s %llu 0-0 COUNT %d", b->stream, b->name, b->name,
                                 (unsigned long long)b->c.retry_after_ms, BATCH);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *es = r->element[1];
        for (size_t i = 0; i < es->elements; i++) {
            const redisReply *e = es->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            long long dl = 2;
            redisReply *p = redisCommand(l->rc, "XPENDING %s %s %s %s 1", b->stream, b->name, e->element[0]->str,
                                         e->element[0]->str);
            if (p == NULL) {
                freeReplyObject(r);
                return -1;
            }
            if (p->type == REDIS_REPLY_ARRAY && p->elements == 1 && p->element[0]->type == REDIS_REPLY_ARRAY &&
                p->element[0]->elements >= 4 && p->element[0]->element[3]->type == REDIS_REPLY_INTEGER)
                dl = p->element[0]->element[3]->integer;
            freeReplyObject(p);
            handle(b, l, e, dl);
            if (flush(l) < 0) {
                freeReplyObject(r);
                return -1;
            }
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        cdn_warn("purge bus: XAUTOCLAIM: %s", r->str);
    }
    freeReplyObject(r);
    return 0;
}

/* This group's lag and pending count from an XINFO GROUPS reply (Redis 7: "lag"; nil when Redis
 * cannot tell: -1). */
static void take_info(struct edge_bus *b, const redisReply *r)
{
    for (size_t g = 0; r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
        const redisReply *m = r->element[g];
        int mine = 0;
        long long lag = -1, pending = 0;
        for (size_t i = 0; m->type == REDIS_REPLY_ARRAY && i + 1 < m->elements; i += 2) {
            const redisReply *k = m->element[i], *v = m->element[i + 1];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING && strcmp(v->str, b->name) == 0)
                mine = 1;
            else if (strcmp(k->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                lag = v->integer;
            else if (strcmp(k->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = v->integer;
        }
        if (mine) {
            __atomic_store_n(&b->lag, (int64_t)lag, __ATOMIC_RELAXED);
            b->pending = pending;
        }
    }
}

/* One turn of the reader: the acks of the last batch and XREADGROUP BLOCK go out in one write, so
 * that the edge is listening again as soon as its acks leave (on a WAN link, waiting for the acks'
 * replies first would leave a round trip in which a new command waits for nobody). Then the
 * replies, in order. -1: the connection broke. */
static int steady(struct edge_bus *b)
{
    struct link *l = &b->rd;
    redisAppendCommand(l->rc, "XREADGROUP GROUP %s %s COUNT %d BLOCK %llu STREAMS %s >", b->name, b->name, BATCH,
                       (unsigned long long)b->c.block_ms, b->stream);
    if (flush(l) < 0)
        return -1;
    void *r = NULL;
    if (redisGetReply(l->rc, &r) != REDIS_OK || r == NULL)
        return -1;
    const redisReply *rr = r;
    if (rr->type == REDIS_REPLY_ERROR) {
        cdn_warn("purge bus: XREADGROUP: %s", rr->str);
        int nogroup = strncmp(rr->str, "NOGROUP", 7) == 0;
        freeReplyObject(r);
        return nogroup ? -1 : 0;
    }
    const redisReply *es = entries_of(rr);
    for (size_t i = 0; es != NULL && i < es->elements; i++) {
        cdn_counter_inc(b->m_recv);
        handle(b, l, es->element[i], 1); /* its acks go out with the next turn */
    }
    freeReplyObject(r);
    return 0;
}

/* Connects a link (AUTH when there is a password); the reader's also makes the group. 0 or -1. */
static int connect_link(struct edge_bus *b, struct link *l)
{
    struct timeval tv = {.tv_sec = 2};
    redisContext *rc = redisConnectWithTimeout(b->host, b->port, tv);
    if (rc == NULL || rc->err) {
        if (rc != NULL)
            redisFree(rc);
        return -1;
    }
    uint64_t t = (l == &b->rd ? b->c.block_ms : 0) + 3000;
    struct timeval rt = {.tv_sec = (time_t)(t / 1000), .tv_usec = (suseconds_t)(t % 1000) * 1000};
    redisSetTimeout(rc, rt);
    redisEnableKeepAlive(rc);
    pthread_mutex_lock(&b->rc_mu);
    l->rc = rc;
    pthread_mutex_unlock(&b->rc_mu);
    redisReply *r;
    if (b->pass[0]) {
        if ((r = redisCommand(rc, "AUTH %s", b->pass)) == NULL) {
            drop(b, l, "AUTH");
            return -1;
        }
        int bad = r->type == REDIS_REPLY_ERROR;
        if (bad && l == &b->rd)
            cdn_err("purge bus: AUTH: %s", r->str);
        freeReplyObject(r);
        if (bad) {
            drop(b, l, "AUTH");
            return -1;
        }
    }
    if (l != &b->rd)
        return 0;
    r = redisCommand(rc, "XGROUP CREATE %s %s $ MKSTREAM", b->stream, b->name);
    if (r == NULL) {
        drop(b, l, "XGROUP CREATE");
        return -1;
    }
    int ok = r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0;
    if (!ok)
        cdn_err("purge bus: XGROUP CREATE %s %s: %s", b->stream, b->name, r->str);
    else if (r->type != REDIS_REPLY_ERROR)
        cdn_notice("purge bus: made consumer group %s on %s (new edge: from now on)", b->name, b->stream);
    freeReplyObject(r);
    if (!ok) {
        drop(b, l, "XGROUP CREATE");
        return -1;
    }
    __atomic_store_n(&b->up, 1, __ATOMIC_RELAXED);
    return 0;
}

/* The backlog: own pending entries (after a crash mid-apply), then every new one, no blocking. */
static int catch_up(struct edge_bus *b)
{
    char last[64] = "0";
    int n, total = 0;
    while ((n = read_group(b, last, last, sizeof(last))) > 0)
        total += n;
    if (n < 0)
        return -1;
    while ((n = read_group(b, ">", last, sizeof(last))) > 0)
        total += n;
    if (n < 0)
        return -1;
    if (!__atomic_exchange_n(&b->ready, 1, __ATOMIC_RELEASE))
        cdn_notice("purge bus: caught up on %s (%d entries of backlog); serving hits", b->stream, total);
    return 0;
}

static int stopping(struct edge_bus *b) { return __atomic_load_n(&b->stop, __ATOMIC_RELAXED); }

static void nap(struct edge_bus *b, int ms)
{
    for (int i = 0; i < ms / 50 && !stopping(b); i++) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
}

/* The reader. */
static void *run(void *arg)
{
    struct edge_bus *b = arg;
    int logged = 0;
    while (!stopping(b)) {
        if (b->rd.rc == NULL) {
            if (connect_link(b, &b->rd) < 0) {
                if (!logged++)
                    cdn_warn("purge bus: cannot reach redis://%s:%d; retrying every 500 ms%s", b->host, b->port,
                             __atomic_load_n(&b->ready, __ATOMIC_RELAXED) ? "" : " (backlog not applied yet)");
                nap(b, 500);
                continue;
            }
            if (logged)
                cdn_notice("purge bus: connected to redis://%s:%d", b->host, b->port);
            logged = 0;
            if (catch_up(b) < 0) {
                drop(b, &b->rd, "catching up");
                continue;
            }
        }
        if (steady(b) < 0)
            drop(b, &b->rd, "XREADGROUP");
    }
    drop(b, &b->rd, "stopping");
    return NULL;
}

/* The keeper: the lag once a second, and retries while the group has pending entries. */
static void *keep(void *arg)
{
    struct edge_bus *b = arg;
    while (!stopping(b)) {
        nap(b, 1000);
        if (stopping(b) || (b->mt.rc == NULL && connect_link(b, &b->mt) < 0))
            continue;
        redisReply *r = redisCommand(b->mt.rc, "XINFO GROUPS %s", b->stream);
        if (r == NULL) {
            drop(b, &b->mt, "XINFO");
            continue;
        }
        take_info(b, r);
        freeReplyObject(r);
        uint64_t now = mono_ms();
        if (b->pending > 0 && __atomic_load_n(&b->ready, __ATOMIC_ACQUIRE) &&
            now - b->last_claim_ms >= b->c.retry_after_ms / 2) {
            b->last_claim_ms = now;
            if (reclaim(b) < 0)
                drop(b, &b->mt, "XAUTOCLAIM");
        }
    }
    drop(b, &b->mt, "stopping");
    return NULL;
}

static double g_ready(void *d) { return edge_bus_ready(d) ? 1.0 : 0.0; }
static double g_up(void *d) { return __atomic_load_n(&((struct edge_bus *)d)->up, __ATOMIC_RELAXED) ? 1.0 : 0.0; }
static double g_lag(void *d) { return (double)__atomic_load_n(&((struct edge_bus *)d)->lag, __ATOMIC_RELAXED); }

struct edge_bus *edge_bus_start(const struct edge_bus_conf *c, struct edge_store *store,
                                const struct edge_key_conf *kc, cdn_metrics_t *m, char *err, size_t errlen)
{
    struct edge_bus *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->magic = BUS_MAGIC;
    b->c = *c;
    if (edge_purge_redis_url(c->redis, b->host, sizeof(b->host), &b->port) < 0) {
        snprintf(err, errlen, "purge_bus: bad redis URL '%s' (redis://HOST:PORT)", c->redis);
        free(b);
        return NULL;
    }
    char why[300];
    if (c->auth_file != NULL && cdn_token_read(c->auth_file, b->pass, sizeof(b->pass), why, sizeof(why)) < 0) {
        snprintf(err, errlen, "purge_bus auth_file %s", why);
        free(b);
        return NULL;
    }
    b->c.auth_file = NULL; /* read: not kept */
    snprintf(b->stream, sizeof(b->stream), "%s", c->stream ? c->stream : "cdn:purge");
    snprintf(b->name, sizeof(b->name), "%s", c->name);
    snprintf(b->acks, sizeof(b->acks), "%s:acks", b->stream);
    snprintf(b->dead, sizeof(b->dead), "%s:dead", b->stream);
    b->c.retry_after_ms = c->retry_after_ms ? c->retry_after_ms : 5000;
    b->c.max_deliveries = c->max_deliveries ? c->max_deliveries : 5;
    b->c.block_ms = c->block_ms ? c->block_ms : 30000;
    b->store = store;
    b->kc = kc;
    b->lag = -1;
    pthread_mutex_init(&b->rc_mu, NULL);
    static const char *const rl[] = {"result", NULL};
    cdn_metric_t *f = cdn_metrics_counter(m, "edge_purge_commands_total",
                                          "Purge commands from the bus: received (new entries), applied, failed (left "
                                          "pending for a retry), dead (moved to the dead-letter stream)", rl);
    b->m_recv = cdn_metric_series(f, (const char *const[]){"received"});
    b->m_applied = cdn_metric_series(f, (const char *const[]){"applied"});
    b->m_failed = cdn_metric_series(f, (const char *const[]){"failed"});
    b->m_dead = cdn_metric_series(f, (const char *const[]){"dead"});
    b->m_lat = cdn_metric_plain(cdn_metrics_histogram(m, "edge_purge_apply_seconds",
                                                      "From a purge's publication to its application here",
                                                      NULL, cdn_metrics_latency_buckets, cdn_metrics_latency_nbuckets));
    cdn_metrics_gauge_fn(m, "edge_purge_bus_ready", "1 once the bus's backlog was applied after start", g_ready, b);
    cdn_metrics_gauge_fn(m, "edge_purge_bus_up", "1 while connected to the purge bus", g_up, b);
    cdn_metrics_gauge_fn(m, "edge_purge_stream_lag", "Entries of the purge stream not yet delivered to this edge's group (-1: unknown)", g_lag, b);
    if (pthread_create(&b->th, NULL, run, b) != 0) {
        snprintf(err, errlen, "cannot start the purge bus thread");
        free(b);
        return NULL;
    }
    if (pthread_create(&b->keeper, NULL, keep, b) != 0) {
        snprintf(err, errlen, "cannot start the purge bus keeper thread");
        edge_bus_stop(b);
        return NULL;
    }
    b->keeper_started = 1;
    return b;
}

int edge_bus_ready(const struct edge_bus *b) { return b == NULL || __atomic_load_n(&b->ready, __ATOMIC_ACQUIRE); }

int edge_bus_wait_ready(struct edge_bus *b)
{
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    uint64_t t0 = mono_ms(), said = t0;
    while (!edge_bus_ready(b)) {
        struct timespec ts = {0, 100 * 1000000};
        int sig = sigtimedwait(&ss, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return -1;
        if (mono_ms() - said >= 5000) {
            said = mono_ms();
            cdn_notice("purge bus: waiting %llu s for redis://%s:%d to apply the backlog before serving (purge_bus "
                       "start: serve to serve at once)", (unsigned long long)((said - t0) / 1000), b->host, b->port);
        }
    }
    return 0;
}

void edge_bus_stop(struct edge_bus *b)
{
    if (b == NULL)
        return;
    __atomic_store_n(&b->stop, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&b->rc_mu);
    if (b->rd.rc != NULL)
        shutdown(b->rd.rc->fd, SHUT_RDWR); /* wakes a blocked XREADGROUP */
    if (b->mt.rc != NULL)
        shutdown(b->mt.rc->fd, SHUT_RDWR);
    pthread_mutex_unlock(&b->rc_mu);
    pthread_join(b->th, NULL);
    if (b->keeper_started)
        pthread_join(b->keeper, NULL);
    pthread_mutex_destroy(&b->rc_mu);
    free(b);
}
