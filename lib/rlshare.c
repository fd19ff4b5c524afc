/* lib/rlshare.c - GCRA limits shared through Redis (see cdn/rlshare.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "cdn/http.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/rlshare.h"

#define RETRY_MS 1000
#define KEY_MAX 160

/* KEYS[1] the key; ARGV[1] T, ARGV[2] burst * T, both in microseconds. The rule of
 * lib/ratelimit.c: admitted when max(TAT, now) + T - now <= burst * T, and then TAT becomes
 * max(TAT, now) + T. Returns {admitted, remaining, retry after, reset}, times in microseconds. */
static const char SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T = tonumber(ARGV[1])\n"
    "local tol = tonumber(ARGV[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
    "if tat < now then tat = now end\n"
    "local new = tat + T\n"
    "if new - now > tol then return {0, 0, new - now - tol, tat - now} end\n"
    "redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.floor((new - now) / 1000) + 1)\n"
    "return {1, math.floor((tol - (new - now)) / T), 0, new - now}\n";

struct cdn_rlshare {
    h2o_evloop_t *loop;
    char host[256];
    int port;
    char prefix[64];
    uint64_t timeout_ms;
    cdn_rl_t *local;
    redisAsyncContext *ac;
    int up, freeing, told_error;
    cdn_timer_t *retry;
    h2o_timeout_t timeout;
    char sha[41];
};

struct cdn_rlshare_check {
    h2o_timeout_entry_t te;
    cdn_rlshare_t *s;
    cdn_rlshare_cb cb;
    void *data;
    uint64_t h;
    struct cdn_rl_rate rate;
    int done;
};

/* ---- hiredis on the h2o loop, through cdn_watch ---- */

struct ev {
    redisAsyncContext *ac;
    cdn_watch_t *w;
    int events;
    int in_cb, dead; /* cleaned up by hiredis inside on_events: freed on the way out */
};

static void on_events(cdn_watch_t *w, int fd, int events, void *data)
{
    (void)w, (void)fd;
    struct ev *e = data;
    e->in_cb = 1;
    if (events & CDN_WATCH_READ)
        redisAsyncHandleRead(e->ac);
    if (!e->dead && (events & CDN_WATCH_WRITE))
        redisAsyncHandleWrite(e->ac);
    e->in_cb = 0;
    if (e->dead)
        free(e);
}

static void ev_set(void *p, int on, int bit)
{
    struct ev *e = p;
    int n = on ? e->events | bit : e->events & ~bit;
    if (n != e->events)
        cdn_watch_set(e->w, e->events = n);
}
static void ev_add_read(void *p) { ev_set(p, 1, CDN_WATCH_READ); }
static void ev_del_read(void *p) { ev_set(p, 0, CDN_WATCH_READ); }
static void ev_add_write(void *p) { ev_set(p, 1, CDN_WATCH_WRITE); }
static void ev_del_write(void *p) { ev_set(p, 0, CDN_WATCH_WRITE); }
static void ev_cleanup(void *p)
{
    struct ev *e = p;
    cdn_watch_free(e->w); /* safe inside its own callback */
    e->w = NULL;
    if (e->in_cb)
        e->dead = 1;
    else
        free(e);
}

static int ev_attach(h2o_evloop_t *loop, redisAsyncContext *ac)
{
    struct ev *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->w = cdn_watch_new(loop, ac->c.fd, on_events, e)) == NULL) {
        free(e);
        return -1;
    }
    e->ac = ac;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---- the connection ---- */

static void connect_now(cdn_rlshare_t *s);

static void on_retry(cdn_timer_t *t, void *data)
{
    (void)t;
    connect_now(data);
}

static void lost(cdn_rlshare_t *s, const char *why)
{
    if (!s->freeing && (s->up || !s->told_error))
        cdn_warn("rate limits: redis %s:%d %s: deciding locally, retrying every %d ms", s->host, s->port, why,
                 RETRY_MS);
    s->told_error = 1;
    s->ac = NULL;
    __atomic_store_n(&s->up, 0, __ATOMIC_RELAXED);
    if (!s->freeing)
        cdn_timer_start(s->retry, RETRY_MS);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    cdn_rlshare_t *s = ac->data;
    if (status != REDIS_OK) {
        lost(s, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    __atomic_store_n(&s->up, 1, __ATOMIC_RELAXED);
    s->told_error = 0;
    cdn_notice("rate limits: shared through redis %s:%d", s->host, s->port);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    cdn_rlshare_t *s = ac->data;
    (void)status;
    lost(s, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void connect_now(cdn_rlshare_t *s)
{
    redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
    if (ac == NULL || ac->err) {
        if (ac != NULL) {
            lost(s, ac->errstr);
            redisAsyncFree(ac);
        } else {
            lost(s, "out of memory");
        }
        return;
    }
    ac->data = s;
    if (ev_attach(s->loop, ac) < 0) {
        redisAsyncFree(ac);
        lost(s, "cannot watch the socket");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->ac = ac;
    /* queued now, sent first once connected: every EVALSHA on this connection finds the script */
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", SCRIPT);
}

/* ---- checks ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

const char *const cdn_rlshare_by_names[] = {"redis", "local-down", "local-timeout", "local-error", NULL};

static void decide_locally(cdn_rlshare_t *s, uint64_t h, const struct cdn_rl_rate *r, cdn_rlshare_cb cb, void *data,
                           enum cdn_rlshare_by by)
{
    struct cdn_rl_result res;
    cdn_rl_check_hash(s->local, h, r, now_ns(), &res);
    cb(data, &res, by);
}

static void finish(cdn_rlshare_check_t *q)
{
    q->done = 1;
    if (h2o_timeout_is_linked(&q->te))
        h2o_timeout_unlink(&q->te);
}

static void on_timeout(h2o_timeout_entry_t *te)
{
    cdn_rlshare_check_t *q = H2O_STRUCT_FROM_MEMBER(cdn_rlshare_check_t, te, te);
    finish(q); /* the reply still frees it */
    decide_locally(q->s, q->h, &q->rate, q->cb, q->data, CDN_RLSHARE_LOCAL_TIMEOUT);
}

static int int_at(const redisReply *r, size_t i, long long *out)
{
    if (r->element[i]->type != REDIS_REPLY_INTEGER)
        return -1;
    *out = r->element[i]->integer;
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    cdn_rlshare_check_t *q = privdata;
    const redisReply *r = reply;
    if (!q->done) {
        cdn_rlshare_t *s = q->s;
        long long v[4];
        finish(q);
        if (r == NULL) {
            decide_locally(s, q->h, &q->rate, q->cb, q->data, CDN_RLSHARE_LOCAL_DOWN);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 && int_at(r, 0, &v[0]) == 0 &&
                   int_at(r, 1, &v[1]) == 0 && int_at(r, 2, &v[2]) == 0 && int_at(r, 3, &v[3]) == 0 && v[1] >= 0 &&
                   v[2] >= 0 && v[3] >= 0) {
            struct cdn_rl_result res = {.allowed = v[0] == 1,
                                        .remaining = v[1] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[1],
                                        .retry_after_ns = (uint64_t)v[2] * 1000,
                                        .reset_ns = (uint64_t)v[3] * 1000};
            q->cb(q->data, &res, CDN_RLSHARE_REDIS);
        } else {
            if (!s->told_error)
                cdn_warn("rate limits: redis answered %s: deciding locally",
                         r->type == REDIS_REPLY_ERROR ? r->str : "something else than the script's array");
            s->told_error = 1;
            decide_locally(s, q->h, &q->rate, q->cb, q->data, CDN_RLSHARE_LOCAL_ERROR);
        }
    }
    free(q);
}

cdn_rlshare_check_t *cdn_rlshare_check(cdn_rlshare_t *s, const void *key, size_t len, const struct cdn_rl_rate *r,
                                       cdn_rlshare_cb cb, void *data)
{
    uint64_t h = cdn_hash(key, len);
    cdn_rlshare_check_t *q;
    if (!s->up || s->ac == NULL || (q = calloc(1, sizeof(*q))) == NULL) {
        decide_locally(s, h, r, cb, data, CDN_RLSHARE_LOCAL_DOWN);
        return NULL;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char k[KEY_MAX];
    size_t pl = strlen(s->prefix);
    memcpy(k, s->prefix, pl);
    EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 16; i++)
        snprintf(k + pl + 2 * i, 3, "%02x", md[i]);
    unsigned long long t_us = r->interval_ns / 1000 ? r->interval_ns / 1000 : 1;
    unsigned long long tol_us = r->tolerance_ns / 1000 ? r->tolerance_ns / 1000 : t_us;
    *q = (cdn_rlshare_check_t){.s = s, .cb = cb, .data = data, .h = h, .rate = *r};
    if (redisAsyncCommand(s->ac, on_reply, q, "EVALSHA %s 1 %s %llu %llu", s->sha, k, t_us, tol_us) != REDIS_OK) {
        free(q);
        decide_locally(s, h, r, cb, data, CDN_RLSHARE_LOCAL_DOWN);
        return NULL;
    }
    q->te.cb = on_timeout;
    h2o_timeout_link(s->loop, &s->timeout, &q->te);
    return q;
}

void cdn_rlshare_cancel(cdn_rlshare_check_t *q)
{
    if (q != NULL && !q->done)
        finish(q);
}

int cdn_rlshare_up(const cdn_rlshare_t *s)
{
    return __atomic_load_n(&s->up, __ATOMIC_RELAXED);
}

/* redis://HOST[:PORT][/] */
static int parse_url(cdn_rlshare_t *s, const char *url)
{
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *h = url + 8, *end = h + strcspn(h, "/"), *colon = memchr(h, ':', (size_t)(end - h));
    const char *he = colon ? colon : end;
    if (he == h || (size_t)(he - h) >= sizeof(s->host) || (*end == '/' && end[1] != '\0'))
        return -1;
    memcpy(s->host, h, (size_t)(he - h));
    s->host[he - h] = '\0';
    s->port = 6379;
    if (colon != NULL) {
        char *pe;
        long p = strtol(colon + 1, &pe, 10);
        if (pe != end || p < 1 || p > 65535)
            return -1;
        s->port = (int)p;
    }
    return 0;
}

cdn_rlshare_t *cdn_rlshare_new(h2o_evloop_t *loop, const char *url, const char *prefix, uint64_t timeout_ms,
                               cdn_rl_t *local, char *err, size_t errlen)
{
    cdn_rlshare_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (parse_url(s, url) < 0) {
        snprintf(err, errlen, "redis URL '%s': expected redis://HOST[:PORT]", url);
        free(s);
        return NULL;
    }
    if (strlen(prefix) >= sizeof(s->prefix) - 1) {
        snprintf(err, errlen, "key prefix too long");
        free(s);
        return NULL;
    }
    strcpy(s->prefix, prefix);
    s->loop = loop;
    s->local = local;
    s->timeout_ms = timeout_ms ? timeout_ms : 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(SCRIPT, sizeof(SCRIPT) - 1, md, &mdlen, EVP_sha1(), NULL);
    for (unsigned i = 0; i < 20; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    if ((s->retry = cdn_timer_new(loop, on_retry, s)) == NULL) {
        snprintf(err, errlen, "cannot create a timer");
        free(s);
        return NULL;
    }
    h2o_timeout_init(loop, &s->timeout, s->timeout_ms);
    connect_now(s);
    return s;
}

void cdn_rlshare_free(cdn_rlshare_t *s)
{
    if (s == NULL)
        return;
    s->freeing = 1;
    if (s->ac != NULL)
        redisAsyncFree(s->ac); /* each pending check's reply callback runs with NULL */
    s->ac = NULL;
    cdn_timer_free(s->retry);
    h2o_timeout_dispose(s->loop, &s->timeout);
    free(s);
}
