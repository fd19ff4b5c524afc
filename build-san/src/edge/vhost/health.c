/* edge/vhost/health.c - active health checks of parent edges (see health.h).
 *
 * Rules: everything runs on the loop given to edge_health_new; a target is one distinct parent
 * URL with the list of edge_parent entries (one per vhost) that share its state; at most one
 * check per target is in flight (`hr`); swapping tables cancels those (no callback follows). */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/httpc.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "edge/vhost/health.h"

#define HEALTH_MAGIC 0x484c5448u

struct target {
    uint32_t magic;
    struct edge_health *h;
    char *url;                   /* url + path */
    struct cdn_risefall st;     /* EDGE_HEALTH_STATE_INIT: parents start up */
    struct edge_parent **ps;
    size_t nps;
    cdn_httpc_req_t *hr;
};

struct edge_health {
    struct edge_health_conf conf;
    char *path, *loop_hdr, *key_hdr;
    cdn_httpc_t *httpc;
    cdn_timer_t *timer;
    cdn_series_t *m_down;
    struct target *t;
    size_t nt;
};

static void mark(struct target *t)
{
    for (size_t i = 0; i < t->nps; i++)
        __atomic_store_n(&t->ps[i]->check_down, !t->st.up, __ATOMIC_RELAXED);
}

static void on_check(const char *errstr, int status, const void *body, size_t len,
                     const struct cdn_httpc_info *info, void *data)
{
    struct target *t = data;
    if (t->magic != HEALTH_MAGIC)
        return;
    t->hr = NULL;
    int ok = errstr == NULL && status >= 200 && status < 400;
    int r = edge_health_step(&t->st, ok, t->h->conf.rise, t->h->conf.fall);
    if (r == 0)
        return;
    mark(t);
    if (r < 0) {
        cdn_counter_inc(t->h->m_down);
        char why[64];
        snprintf(why, sizeof(why), "status %d", status);
        cdn_warn("parent check %s: %s, %u in a row: parent down", t->url, errstr ? errstr : why, t->st.fail_run);
    } else {
        cdn_notice("parent check %s: ok %u in a row: parent up", t->url, t->st.ok_run);
    }
}

static void on_timer(cdn_timer_t *tm, void *data)
{
    struct edge_health *h = data;
    const char *hdrs[] = {h->loop_hdr, h->key_hdr, NULL};
    for (size_t i = 0; i < h->nt; i++) {
        struct target *t = &h->t[i];
        if (t->hr != NULL)
            continue; /* the last one has not answered yet: its timeout will */
        struct cdn_httpc_request rq = {.url = t->url, .headers = hdrs,
                                       .timeout_ms = h->conf.timeout_ms ? h->conf.timeout_ms : h->conf.interval_ms};
        t->hr = cdn_httpc_fetch(h->httpc, &rq, on_check, t);
    }
    cdn_timer_start(tm, h->conf.interval_ms);
}

static void targets_free(struct edge_health *h)
{
    for (size_t i = 0; i < h->nt; i++) {
        if (h->t[i].hr != NULL)
            cdn_httpc_cancel(h->t[i].hr);
        h->t[i].magic = 0;
        free(h->t[i].url);
        free(h->t[i].ps);
    }
    free(h->t);
    h->t = NULL;
    h->nt = 0;
}

struct edge_health *edge_health_new(h2o_evloop_t *loop, const struct edge_health_conf *c, cdn_series_t *m_down,
                                    char *err, size_t errlen)
{
    struct edge_health *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->conf = *c;
    h->m_down = m_down;
    h->path = strdup(c->path && *c->path ? c->path : "/healthz");
    size_t ll = strlen(c->cache_name) + 16;
    h->loop_hdr = malloc(ll);
    if (c->edge_key != NULL && (h->key_hdr = malloc(strlen(c->edge_key) + 16)) != NULL)
        snprintf(h->key_hdr, strlen(c->edge_key) + 16, "CDN-Edge-Key: %s", c->edge_key);
    if (h->path == NULL || h->loop_hdr == NULL || (c->edge_key != NULL && h->key_hdr == NULL)) {
        snprintf(err, errlen, "out of memory");
        edge_health_free(h);
        return NULL;
    }
    snprintf(h->loop_hdr, ll, "CDN-Loop: %s", c->cache_name);
    h->conf.path = h->path;
    struct cdn_httpc_opts o = {.connect_timeout_ms = h->conf.timeout_ms ? h->conf.timeout_ms : c->interval_ms,
                               .timeout_ms = h->conf.timeout_ms ? h->conf.timeout_ms : c->interval_ms};
    if ((h->httpc = cdn_httpc_new(loop, &o, err, errlen)) == NULL ||
        (h->timer = cdn_timer_new(loop, on_timer, h)) == NULL) {
        edge_health_free(h);
        return NULL;
    }
    cdn_timer_start(h->timer, c->interval_ms);
    return h;
}

void edge_health_set(struct edge_health *h, const struct edge_vhosts *vs)
{
    /* distinct parent URLs over every vhost (a vhost may be listed under several names) */
    size_t cap = 0, nt = 0;
    struct target *t = NULL;
    for (size_t v = 0; v <= vs->n; v++) {
        const struct edge_vhost *vh = v < vs->n ? vs->v[v] : vs->dflt;
        if (vh == NULL)
            continue;
        int seen = 0;
        for (size_t k = 0; k < v && !seen; k++)
            seen = vs->v[k] == vh;
        if (seen)
            continue;
        for (size_t p = 0; p < vh->nparents; p++) {
            struct edge_parent *ep = &vh->parents[p];
            size_t ul = strlen(ep->url) + strlen(h->path) + 1;
            char *url = malloc(ul);
            if (url == NULL)
                continue;
            snprintf(url, ul, "%s%s", ep->url, h->path);
            size_t i = 0;
            while (i < nt && strcmp(t[i].url, url) != 0)
                i++;
            if (i == nt) {
                if (nt == cap) {
                    size_t nc = cap ? cap * 2 : 8;
                    struct target *n2 = realloc(t, nc * sizeof(*n2));
                    if (n2 == NULL) {
                        free(url);
                        continue;
                    }
                    t = n2;
                    cap = nc;
                }
                t[nt++] = (struct target){.magic = HEALTH_MAGIC, .h = h, .url = url, .st = EDGE_HEALTH_STATE_INIT};
                url = NULL;
                /* keep the state a URL had in the old table */
                for (size_t o = 0; o < h->nt; o++)
                    if (strcmp(h->t[o].url, t[i].url) == 0)
                        t[i].st = h->t[o].st;
            }
            free(url);
            struct edge_parent **np = realloc(t[i].ps, (t[i].nps + 1) * sizeof(*np));
            if (np == NULL)
                continue;
            t[i].ps = np;
            t[i].ps[t[i].nps++] = ep;
        }
    }
    targets_free(h);
    h->t = t;
    h->nt = nt;
    for (size_t i = 0; i < nt; i++)
        mark(&t[i]);
}

void edge_health_free(struct edge_health *h)
{
    if (h == NULL)
        return;
    targets_free(h);
    if (h->timer != NULL)
        cdn_timer_free(h->timer);
    cdn_httpc_free(h->httpc);
    free(h->path);
    free(h->loop_hdr);
    free(h->key_hdr);
    free(h);
}
