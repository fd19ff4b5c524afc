/* edge/fetch/resil.c - the breaker table and its metrics (see resil.h). The fast-stale deadline
 * lives with the fetch (fetch.c), the failure decisions in decide.c. */
#include "config.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/log.h"
#include "cdn/loop.h"
#include "edge/fetch/resil.h"

#define MAX_UPSTREAMS 1024
#define HANG_SLACK_MS 50   /* edge_brk_hung_now: timer vs clock (below) */ /* distinct upstream URLs with a breaker (reloads may add some) */

struct edge_brk {
    char *url;
    pthread_mutex_t mu;
    struct cdn_breaker b;
    cdn_series_t *m_state, *m_refused, *m_to[3], *m_hung;
};

static const struct edge_resil_conf *conf;
static cdn_metric_t *m_state, *m_refused, *m_trans, *m_hung;
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct edge_brk *table[MAX_UPSTREAMS];
static size_t ntable;
static pthread_mutex_t budget_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cdn_retry_budget budget;
static cdn_series_t *m_retries, *m_exhausted, *m_shed_queue, *m_shed_memory;
static uint64_t fill_bytes; /* atomics */

static double g_fill(void *data)
{
    (void)data;
    return (double)__atomic_load_n(&fill_bytes, __ATOMIC_RELAXED);
}

void edge_resil_init(const struct edge_resil_conf *c, cdn_metrics_t *m, cdn_series_t **stale_slow,
                     cdn_series_t **brk_stale, cdn_series_t **brk_503)
{
    static const char *const up_l[] = {"upstream", NULL}, *const tr_l[] = {"upstream", "to", NULL};
    conf = c;
    if (m == NULL)
        return;
    *stale_slow = cdn_metric_plain(cdn_metrics_counter(m, "edge_stale_slow_total",
        "Requests answered with a stale copy because the upstream had not answered within stale_first_byte_timeout", NULL));
    *brk_stale = cdn_metric_plain(cdn_metrics_counter(m, "edge_breaker_stale_total",
        "Requests answered with a stale copy (stale-if-error or grace) because the origin's breaker was open", NULL));
    *brk_503 = cdn_metric_plain(cdn_metrics_counter(m, "edge_breaker_503_total",
        "Requests answered 503 with Retry-After because the origin's breaker was open and no stale copy could serve", NULL));
    m_retries = cdn_metric_plain(cdn_metrics_counter(m, "edge_retries_total",
        "Requests sent again to the next upstream (another parent, or the origin) after one failed", NULL));
    m_exhausted = cdn_metric_plain(cdn_metrics_counter(m, "edge_retry_budget_exhausted_total",
        "Retries to the next upstream not made: the retry budget was spent (the failure was answered)", NULL));
    static const char *const why_l[] = {"why", NULL};
    cdn_metric_t *shed = cdn_metrics_counter(m, "edge_shed_total",
        "Misses answered 503 (or stale) without asking upstream: the fetch queue was full or the fill memory spent", why_l);
    m_shed_queue = cdn_metric_series(shed, (const char *const[]){"queue", NULL});
    m_shed_memory = cdn_metric_series(shed, (const char *const[]){"memory", NULL});
    cdn_metrics_gauge_fn(m, "edge_fill_bytes", "Body bytes held by fetches in flight (fill_memory bounds them)", g_fill, NULL);
    m_state = cdn_metrics_gauge(m, "edge_breaker_state", "Circuit breaker of each upstream: 0 closed, 1 open, 2 half-open", up_l);
    m_refused = cdn_metrics_counter(m, "edge_breaker_refused_total", "Requests not sent to an upstream because its breaker was open", up_l);
    m_trans = cdn_metrics_counter(m, "edge_breaker_transitions_total", "Circuit breaker transitions, by upstream and new state", tr_l);
    m_hung = cdn_metrics_counter(m, "edge_breaker_hung_total",
        "Requests counted as failures because they had no head after breaker.first_byte while nothing came from the upstream", up_l);
}

void edge_resil_free(void)
{
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < ntable; i++) {
        pthread_mutex_destroy(&table[i]->mu);
        free(table[i]->url);
        free(table[i]);
        table[i] = NULL;
    }
    ntable = 0;
    pthread_mutex_unlock(&table_mu);
}

struct edge_brk *edge_brk_of(const char *url)
{
    if (conf == NULL || !cdn_breaker_on(&conf->breaker) || url == NULL)
        return NULL;
    struct edge_brk *e = NULL;
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < ntable && e == NULL; i++)
        if (strcmp(table[i]->url, url) == 0)
            e = table[i];
    if (e == NULL && ntable < MAX_UPSTREAMS && (e = calloc(1, sizeof(*e))) != NULL) {
        if ((e->url = strdup(url)) == NULL) {
            free(e);
            e = NULL;
        } else {
            pthread_mutex_init(&e->mu, NULL);
            cdn_breaker_init(&e->b);
            const char *v[] = {url, NULL};
            if (m_state != NULL) {
                e->m_state = cdn_metric_series(m_state, v);
                e->m_refused = cdn_metric_series(m_refused, v);
                e->m_hung = cdn_metric_series(m_hung, v);
                static const char *const to[3] = {"closed", "open", "half-open"};
                for (int k = 0; k < 3; k++)
                    e->m_to[k] = cdn_metric_series(m_trans, (const char *const[]){url, to[k], NULL});
            }
            table[ntable++] = e;
        }
    }
    pthread_mutex_unlock(&table_mu);
    return e;
}

/* After a change of state (under e->mu): the gauge, the counter, one log line. */
static void moved(struct edge_brk *e, enum cdn_breaker_state from, const char *why)
{
    enum cdn_breaker_state to = e->b.state;
    if (to == from)
        return;
    if (e->m_state != NULL) {
        cdn_gauge_set(e->m_state, to == CDN_BREAKER_OPEN ? 1 : to == CDN_BREAKER_HALF_OPEN ? 2 : 0);
        cdn_counter_inc(e->m_to[to]);
    }
    if (to == CDN_BREAKER_OPEN)
        cdn_warn("breaker %s: %s -> open for %llu ms (%s)", e->url, cdn_breaker_state_name(from),
                 (unsigned long long)conf->breaker.open_ms,
                 from == CDN_BREAKER_HALF_OPEN ? "a probe failed" : "too many failures");
    else
        cdn_notice("breaker %s: %s -> %s%s%s%s", e->url, cdn_breaker_state_name(from), cdn_breaker_state_name(to),
                   why ? " (" : "", why ? why : "", why ? ")" : "");
}

int edge_brk_allow(struct edge_brk *e, int *probe, uint64_t *retry_ms)
{
    uint64_t now = cdn_now_ms();
    pthread_mutex_lock(&e->mu);
    enum cdn_breaker_state from = e->b.state;
    int ok = cdn_breaker_allow(&e->b, &conf->breaker, now, probe);
    moved(e, from, NULL);
    *retry_ms = ok ? 0 : cdn_breaker_retry_in(&e->b, &conf->breaker, now);
    if (!ok && *retry_ms == 0)
        *retry_ms = 1000; /* half-open with every probe out: about a probe's time */
    pthread_mutex_unlock(&e->mu);
    if (!ok && e->m_refused != NULL)
        cdn_counter_inc(e->m_refused);
    return ok;
}

void edge_brk_report(struct edge_brk *e, int ok, int probe, int answered, uint64_t sent_at)
{
    uint64_t now = cdn_now_ms();
    pthread_mutex_lock(&e->mu);
    enum cdn_breaker_state from = e->b.state;
    if (answered)
        cdn_breaker_answered(&e->b, now, now > sent_at ? now - sent_at : 0);
    cdn_breaker_report(&e->b, &conf->breaker, ok, probe, now);
    moved(e, from, NULL);
    pthread_mutex_unlock(&e->mu);
}

int edge_brk_hung_now(struct edge_brk *e, uint64_t sent_at)
{
    uint64_t now = cdn_now_ms();
    pthread_mutex_lock(&e->mu);
    uint64_t after = cdn_breaker_hang_after(&e->b, now, conf->brk_first_byte_ms);
    /* the deadline's timer runs on the loop's cached clock, which may lag this one by a loop
     * turn at the send: without some slack a request past first_byte could be looked at again a
     * whole period later */
    uint64_t t = now + HANG_SLACK_MS;
    int hung = t >= sent_at + after && cdn_breaker_silent(&e->b, t, after);
    pthread_mutex_unlock(&e->mu);
    return hung;
}

void edge_brk_hung(struct edge_brk *e, int probe)
{
    if (e->m_hung != NULL)
        cdn_counter_inc(e->m_hung);
    edge_brk_report(e, 0, probe, 0, 0);
}

void edge_brk_late(struct edge_brk *e, int ok, uint64_t sent_at)
{
    uint64_t now = cdn_now_ms();
    uint64_t ttfb = now > sent_at ? now - sent_at : 0;
    pthread_mutex_lock(&e->mu);
    enum cdn_breaker_state from = e->b.state;
    if (ok)
        cdn_breaker_alive(&e->b, now, ttfb);
    else
        cdn_breaker_answered(&e->b, now, ttfb);
    moved(e, from, "a request counted as hung was answered: the upstream is slow, not dead");
    pthread_mutex_unlock(&e->mu);
}

void edge_brk_release(struct edge_brk *e, int probe)
{
    pthread_mutex_lock(&e->mu);
    cdn_breaker_release(&e->b, probe);
    pthread_mutex_unlock(&e->mu);
}

int edge_brk_is_bad(struct edge_brk *e)
{
    pthread_mutex_lock(&e->mu);
    int bad = e->b.state != CDN_BREAKER_CLOSED;
    pthread_mutex_unlock(&e->mu);
    return bad;
}

const char *edge_brk_url(const struct edge_brk *e) { return e->url; }

void edge_retry_note_request(void)
{
    if (conf == NULL || conf->retry_budget.ratio <= 0)
        return;
    pthread_mutex_lock(&budget_mu);
    cdn_retry_budget_request(&budget, &conf->retry_budget, cdn_now_ms());
    pthread_mutex_unlock(&budget_mu);
}

int edge_retry_allow(void)
{
    int ok = 1;
    if (conf != NULL && conf->retry_budget.ratio > 0) {
        pthread_mutex_lock(&budget_mu);
        ok = cdn_retry_budget_allow(&budget, &conf->retry_budget, cdn_now_ms());
        pthread_mutex_unlock(&budget_mu);
    }
    if (ok && m_retries != NULL)
        cdn_counter_inc(m_retries);
    if (!ok && m_exhausted != NULL)
        cdn_counter_inc(m_exhausted);
    return ok;
}

uint64_t edge_fill_bytes(void) { return __atomic_load_n(&fill_bytes, __ATOMIC_RELAXED); }

void edge_fill_add(int64_t delta)
{
    __atomic_add_fetch(&fill_bytes, (uint64_t)delta, __ATOMIC_RELAXED);
}

void edge_shed_count(const char *why)
{
    cdn_series_t *sr = strcmp(why, "memory") == 0 ? m_shed_memory : m_shed_queue;
    if (sr != NULL)
        cdn_counter_inc(sr);
}
