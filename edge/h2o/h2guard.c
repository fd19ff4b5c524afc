/* edge/h2o/h2guard.c - see h2guard.h.
 *
 * The GOAWAY is what h2o's own enqueue_goaway (static in lib/http2/connection.c) does: the frame
 * into the connection's write buffer through the exported encoder, a write requested, the state
 * set to HALF_CLOSED. h2o then ignores new HEADERS on the connection and closes it in its write
 * path once no stream is half-closed; the write is deferred to the loop, so doing this from a
 * request's dispose callback (inside h2o's frame handling) is safe. */
#include "config.h"

#include "edge/h2o/h2guard.h"

#include <string.h>

#include <h2o/http2.h>
#include <h2o/http2_internal.h>

int edge_h2guard_was_reset(h2o_req_t *req)
{
    /* h2o clears _generator when the final part of a response is sent; a request that never got
     * a response started has no status yet */
    return req->version >= 0x200 && (req->_generator != NULL || req->res.status == 0);
}

/* The slot of conn, emptied when it held another connection. */
static __typeof__(((struct edge_h2guard *)0)->slot[0]) *slot_of(struct edge_h2guard *g, uint64_t id)
{
    __typeof__(g->slot[0]) *s = &g->slot[id % EDGE_H2GUARD_SLOTS];
    if (s->conn_id != id) {
        memset(s, 0, sizeof(*s));
        s->conn_id = id;
    }
    return s;
}

static void goaway(h2o_http2_conn_t *conn, const char *why)
{
    h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
                                  h2o_iovec_init(why, strlen(why)));
    h2o_http2_conn_request_write(conn);
}

int edge_h2guard_reset(struct edge_h2guard *g, h2o_req_t *req, uint64_t now_ms)
{
    if (g->limit == 0 || req->version < 0x200)
        return 0;
    h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
    __typeof__(g->slot[0]) *s = slot_of(g, conn->super.id);
    if (now_ms - s->window_ms >= 1000) {
        s->window_ms = now_ms;
        s->n = 0;
    }
    if (++s->n <= g->limit || s->told || conn->state >= H2O_HTTP2_CONN_STATE_HALF_CLOSED)
        return 0;
    s->told = 1;
    goaway(conn, "too many streams reset");
    conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
    return 1;
}

/* Called from inside h2o's frame loop (parse_input): IS_CLOSING ends that loop after this frame,
 * and h2o's on_read then flushes the write requested above and closes the connection
 * (do_emit_writereq), as it does after a protocol error of its own. */
int edge_h2guard_empty(struct edge_h2guard *g, h2o_http2_conn_t *conn, uint64_t now_ms)
{
    if (g->empty_limit == 0 || conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING)
        return 0;
    __typeof__(g->slot[0]) *s = slot_of(g, conn->super.id);
    if (now_ms - s->empty_window_ms >= 1000) {
        s->empty_window_ms = now_ms;
        s->empty_n = 0;
    }
    if (++s->empty_n <= g->empty_limit)
        return 0;
    s->told = 1;
    if (conn->state == H2O_HTTP2_CONN_STATE_OPEN)
        goaway(conn, "too many empty frames");
    conn->state = H2O_HTTP2_CONN_STATE_IS_CLOSING;
    return 1;
}
