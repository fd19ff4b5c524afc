/* edge/h2o/date_send.c - see date_send.h.
 *
 * How: both of h2o 2.2.5's response-head writers take the Date from h2o_get_timestamp(ctx), an
 * inline function (h2o.h) that returns ctx->_timestamp_cache.value unless the loop's clock moved
 * since the cache was filled, and they run synchronously inside the first h2o_send of a response
 * (http1.c finalostream_send -> flatten_headers; http2/stream.c finalostream_send -> send_headers
 * -> h2o_hpack_flatten_response, which copies exactly H2O_TIMESTR_RFC1123_LEN bytes). So: refresh
 * the cache for this loop tick, put a string of our own in its place for the duration of that
 * call, and put the real one back. The cache's refcounting is kept (h2o links whatever it hands
 * out to the request's pool), and nothing else reads the cache during the call. The layout this
 * relies on is the one in the h2o.h we compile against, which is the packaged library's; the
 * edge tests check the Date on HTTP/1.1, h2c and h2 over TLS, so a different h2o shows at once. */
#include "config.h"
#include "edge/h2o/date_send.h"

#include <string.h>

/* A shared string with this Date, reused while consecutive responses carry the same one (a hot
 * object): the slot keeps one reference, each request's pool takes another through h2o. */
static h2o_timestamp_string_t *date_ts(struct edge_date_slot *slot, h2o_context_t *ctx, const char *date)
{
    if (slot->ts != NULL && memcmp(slot->ts->rfc1123, date, H2O_TIMESTR_RFC1123_LEN) == 0)
        return slot->ts;
    h2o_timestamp_string_t *ts = h2o_mem_alloc_shared(NULL, sizeof(*ts), NULL);
    memcpy(ts->rfc1123, date, H2O_TIMESTR_RFC1123_LEN);
    ts->rfc1123[H2O_TIMESTR_RFC1123_LEN] = '\0';
    /* the log form is the request's time, not the response's Date: keep h2o's */
    memcpy(ts->log, ctx->_timestamp_cache.value->log, sizeof(ts->log));
    if (slot->ts != NULL)
        h2o_mem_release_shared(slot->ts);
    slot->ts = ts;
    return ts;
}

/* h2o_send(req, ...) when self is NULL, else h2o_ostream_send_next(self, req, ...), with date
 * showing in the context's timestamp cache for the call. */
static void send_dated(struct edge_date_slot *slot, h2o_ostream_t *self, h2o_req_t *req, const char *date,
                       h2o_iovec_t *bufs, size_t n, h2o_send_state_t state)
{
    h2o_context_t *ctx = req->conn->ctx;
    h2o_timestamp_string_t *own = NULL;
    if (date != NULL && strlen(date) == H2O_TIMESTR_RFC1123_LEN) {
        h2o_get_timestamp(ctx, NULL, NULL); /* now current for this tick: h2o will not refill it */
        own = ctx->_timestamp_cache.value;
        ctx->_timestamp_cache.value = date_ts(slot, ctx, date);
    }
    if (self == NULL)
        h2o_send(req, bufs, n, state);
    else
        h2o_ostream_send_next(self, req, bufs, n, state);
    if (own != NULL)
        ctx->_timestamp_cache.value = own;
}

void edge_date_send(struct edge_date_slot *slot, h2o_req_t *req, const char *date, h2o_iovec_t *bufs, size_t n,
                    h2o_send_state_t state)
{
    send_dated(slot, NULL, req, date, bufs, n, state);
}

void edge_date_send_next(struct edge_date_slot *slot, h2o_ostream_t *self, h2o_req_t *req, const char *date,
                         h2o_iovec_t *bufs, size_t n, h2o_send_state_t state)
{
    send_dated(slot, self, req, date, bufs, n, state);
}

void edge_date_slot_dispose(struct edge_date_slot *slot)
{
    if (slot->ts != NULL)
        h2o_mem_release_shared(slot->ts);
    slot->ts = NULL;
}
