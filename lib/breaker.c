/* lib/breaker.c - see cdn/breaker.h. Pure: every decision is a function of the breaker, its
 * configuration and `now`. */
#include "config.h"
#include "cdn/breaker.h"

void cdn_breaker_init(struct cdn_breaker *b)
{
    *b = (struct cdn_breaker){.state = CDN_BREAKER_CLOSED};
}

/* The ratio's window: two halves; a half older than one window is dropped. */
static void roll(struct cdn_breaker *b, const struct cdn_breaker_conf *c, uint64_t now)
{
    uint64_t half = c->window_ms / 2 ? c->window_ms / 2 : 1;
    if (now < b->win_start + half)
        return;
    if (now < b->win_start + 2 * half) {
        b->win_req[1] = b->win_req[0];
        b->win_fail[1] = b->win_fail[0];
        b->win_start += half;
    } else {
        b->win_req[1] = b->win_fail[1] = 0;
        b->win_start = now;
    }
    b->win_req[0] = b->win_fail[0] = 0;
}

static void open_now(struct cdn_breaker *b, uint64_t now)
{
    b->state = CDN_BREAKER_OPEN;
    b->opened_at = now;
    b->probes_out = b->probes_ok = 0;
    b->consecutive = 0;
    b->win_req[0] = b->win_req[1] = b->win_fail[0] = b->win_fail[1] = 0;
    b->win_start = now;
    b->opens++;
}

int cdn_breaker_allow(struct cdn_breaker *b, const struct cdn_breaker_conf *c, uint64_t now, int *probe)
{
    *probe = 0;
    if (!cdn_breaker_on(c))
        return 1;
    if (b->state == CDN_BREAKER_OPEN) {
        if (now < b->opened_at + c->open_ms)
            return 0;
        b->state = CDN_BREAKER_HALF_OPEN;
        b->probes_out = b->probes_ok = 0;
    }
    if (b->state == CDN_BREAKER_HALF_OPEN) {
        unsigned max = c->probes ? c->probes : 1;
        if (b->probes_out >= max)
            return 0;
        b->probes_out++;
        *probe = 1;
    }
    return 1;
}

enum cdn_breaker_state cdn_breaker_report(struct cdn_breaker *b, const struct cdn_breaker_conf *c, int ok, int probe,
                                          uint64_t now)
{
    if (!cdn_breaker_on(c))
        return b->state;
    if (probe && b->probes_out > 0)
        b->probes_out--;
    switch (b->state) {
    case CDN_BREAKER_HALF_OPEN:
        if (!probe)
            break; /* let through before it opened: its outcome is old news */
        if (!ok) {
            open_now(b, now);
        } else if (++b->probes_ok >= (c->probes ? c->probes : 1)) {
            b->state = CDN_BREAKER_CLOSED;
            b->consecutive = 0;
            b->win_req[0] = b->win_req[1] = b->win_fail[0] = b->win_fail[1] = 0;
            b->win_start = now;
            b->closes++;
        }
        break;
    case CDN_BREAKER_OPEN:
        break; /* requests that were in flight when it opened */
    case CDN_BREAKER_CLOSED:
        roll(b, c, now);
        b->win_req[0]++;
        if (ok) {
            b->consecutive = 0;
            break;
        }
        b->win_fail[0]++;
        b->consecutive++;
        unsigned req = b->win_req[0] + b->win_req[1], fail = b->win_fail[0] + b->win_fail[1];
        if ((c->failures > 0 && b->consecutive >= c->failures) ||
            (c->ratio > 0 && req >= (c->min_requests ? c->min_requests : 1) && (double)fail >= c->ratio * req))
            open_now(b, now);
        break;
    }
    return b->state;
}

static void ttfb_roll(struct cdn_breaker *b, uint64_t now)
{
    const uint64_t half = CDN_BREAKER_TTFB_WINDOW_MS / 2;
    if (now < b->ttfb_start + half)
        return;
    b->ttfb_max[1] = now < b->ttfb_start + 2 * half ? b->ttfb_max[0] : 0;
    b->ttfb_max[0] = 0;
    b->ttfb_start = now;
}

void cdn_breaker_answered(struct cdn_breaker *b, uint64_t now, uint64_t ttfb_ms)
{
    if (now > b->last_answer)
        b->last_answer = now;
    ttfb_roll(b, now);
    if (ttfb_ms > b->ttfb_max[0])
        b->ttfb_max[0] = ttfb_ms;
}

uint64_t cdn_breaker_hang_after(struct cdn_breaker *b, uint64_t now, uint64_t first_byte_ms)
{
    ttfb_roll(b, now);
    uint64_t slowest = b->ttfb_max[0] > b->ttfb_max[1] ? b->ttfb_max[0] : b->ttfb_max[1];
    return 2 * slowest > first_byte_ms ? 2 * slowest : first_byte_ms;
}

int cdn_breaker_silent(const struct cdn_breaker *b, uint64_t now, uint64_t ms)
{
    return b->last_answer == 0 || now >= b->last_answer + ms;
}

enum cdn_breaker_state cdn_breaker_alive(struct cdn_breaker *b, uint64_t now, uint64_t ttfb_ms)
{
    cdn_breaker_answered(b, now, ttfb_ms);
    if (b->state == CDN_BREAKER_CLOSED)
        return b->state;
    b->state = CDN_BREAKER_CLOSED;
    b->consecutive = 0;
    b->probes_out = b->probes_ok = 0;
    b->win_req[0] = b->win_req[1] = b->win_fail[0] = b->win_fail[1] = 0;
    b->win_start = now;
    b->closes++;
    return b->state;
}

void cdn_breaker_release(struct cdn_breaker *b, int probe)
{
    if (probe && b->probes_out > 0)
        b->probes_out--;
}

uint64_t cdn_breaker_retry_in(const struct cdn_breaker *b, const struct cdn_breaker_conf *c, uint64_t now)
{
    if (b->state != CDN_BREAKER_OPEN)
        return 0;
    uint64_t at = b->opened_at + c->open_ms;
    return at > now ? at - now : 0;
}

const char *cdn_breaker_state_name(enum cdn_breaker_state s)
{
    return s == CDN_BREAKER_OPEN ? "open" : s == CDN_BREAKER_HALF_OPEN ? "half-open" : "closed";
}

/* --- retry budget --- */

static void budget_roll(struct cdn_retry_budget *b, const struct cdn_retry_budget_conf *c, uint64_t now)
{
    uint64_t half = c->window_ms / 2 ? c->window_ms / 2 : 1;
    if (now < b->win_start + half)
        return;
    if (now < b->win_start + 2 * half) {
        b->req[1] = b->req[0];
        b->retries[1] = b->retries[0];
        b->win_start += half;
    } else {
        b->req[1] = b->retries[1] = 0;
        b->win_start = now;
    }
    b->req[0] = b->retries[0] = 0;
}

void cdn_retry_budget_request(struct cdn_retry_budget *b, const struct cdn_retry_budget_conf *c, uint64_t now)
{
    if (c->ratio <= 0)
        return;
    budget_roll(b, c, now);
    b->req[0]++;
}

int cdn_retry_budget_allow(struct cdn_retry_budget *b, const struct cdn_retry_budget_conf *c, uint64_t now)
{
    if (c->ratio <= 0)
        return 1;
    budget_roll(b, c, now);
    double allowed = c->min + c->ratio * (double)(b->req[0] + b->req[1]);
    if ((double)(b->retries[0] + b->retries[1]) + 1 > allowed)
        return 0;
    b->retries[0]++;
    return 1;
}
