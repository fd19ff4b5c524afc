/* edge/h2o/interim.c - see interim.h.
 *
 * HTTP/2: the HEADERS frame of the 1xx goes into the connection's write buffer through the same
 * HPACK encoder and header table as every other response (h2o_hpack_flatten_response, exported
 * with http2_internal.h), on the stream the request came in on while it has sent nothing yet;
 * the final HEADERS follow in order. No END_STREAM: that comes with the final response.
 * HTTP/1.1 in clear: h2o writes a response head only when the response starts, and its socket
 * has nothing queued before that (a request is read only after the previous response went out),
 * so the 1xx block is written straight to the socket's descriptor; it is a few hundred bytes into
 * an empty send buffer.
 * HTTP/1.1 over TLS: the bytes must go through h2o's TLS state, so h2o_socket_write, whose
 * completion comes on a later turn of the loop, and h2o allows one write at a time. So a gate, an
 * output stream just above h2o's own (put in before the response starts, so h2o's filters go
 * above it), holds the response's first send until the 1xx is written, with the Date that send
 * would have carried (date_send.h). While the write is in flight the socket's data pointer is the
 * gate's (h2o reads nothing on an HTTP/1 connection while a request is processed) and h2o's is
 * put back in the completion callback.
 * HTTP/1.0 clients never get a 1xx (RFC 9110 15.2). */
#include "config.h"
#include "cdn/http.h"
#include "edge/h2o/interim.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <h2o/http2.h>
#include <h2o/http2_internal.h>

static const char *reason(int status)
{
    const char *r = cdn_http_reason(status);
    return r != NULL ? r : "Informational";
}

static int send_h2(h2o_req_t *req, int status, const struct edge_hdr *h, size_t n, const char *via)
{
    h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
    h2o_http2_stream_t *stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    if (conn->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING || stream->state != H2O_HTTP2_STREAM_STATE_SEND_HEADERS)
        return 0;
    h2o_res_t res = {.status = status, .reason = reason(status), .content_length = SIZE_MAX};
    for (size_t i = 0; i < n; i++) {
        if (edge_hdr_is_hop(h, n, h[i].name, h[i].name_len))
            continue;
        char *name = h2o_mem_alloc_pool(&req->pool, h[i].name_len);
        for (size_t k = 0; k < h[i].name_len; k++)
            name[k] = (char)((h[i].name[k] >= 'A' && h[i].name[k] <= 'Z') ? h[i].name[k] + 32 : h[i].name[k]);
        h2o_add_header_by_str(&req->pool, &res.headers, name, h[i].name_len, 1, NULL,
                              h2o_strdup(&req->pool, h[i].value, h[i].value_len).base, h[i].value_len);
    }
    h2o_add_header(&req->pool, &res.headers, H2O_TOKEN_VIA, NULL, via, strlen(via));
    h2o_timestamp_t ts;
    h2o_get_timestamp(conn->super.ctx, &req->pool, &ts);
    h2o_hpack_flatten_response(&conn->_write.buf, &conn->_output_header_table, stream->stream_id,
                               conn->peer_settings.max_frame_size, &res, &ts, &conn->super.ctx->globalconf->server_name,
                               SIZE_MAX);
    h2o_http2_conn_request_write(conn);
    return 1;
}

struct gate {
    h2o_ostream_t super;
    h2o_req_t *req;
    h2o_socket_t *sock;
    void *sock_data;                /* h2o's, back when the write is done */
    struct edge_date_slot *slot;
    int writing, held;              /* a 1xx is being written; a send waits for it */
    h2o_iovec_t *bufs;
    size_t bufcnt;
    h2o_send_state_t state;
    char date[H2O_TIMESTR_RFC1123_LEN + 1];
};

static void gate_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    struct gate *g = (struct gate *)self;
    if (!g->writing) {
        h2o_ostream_send_next(self, req, bufs, bufcnt, state);
        return;
    }
    /* h2o allows one send in flight: only the first can get here while the 1xx is written */
    g->held = 1;
    g->bufs = h2o_mem_alloc_pool(&req->pool, (bufcnt ? bufcnt : 1) * sizeof(*bufs));
    memcpy(g->bufs, bufs, bufcnt * sizeof(*bufs));
    g->bufcnt = bufcnt;
    g->state = state;
    /* the Date this head would carry now (the response's own one inside edge_date_send) */
    h2o_context_t *ctx = req->conn->ctx;
    h2o_get_timestamp(ctx, NULL, NULL);
    memcpy(g->date, ctx->_timestamp_cache.value->rfc1123, sizeof(g->date));
}

static void gate_written(h2o_socket_t *sock, const char *err)
{
    struct gate *g = sock->data;
    sock->data = g->sock_data;
    g->writing = 0;
    (void)err; /* a broken connection shows to h2o on its own write */
    if (g->held) {
        g->held = 0;
        edge_date_send_next(g->slot, &g->super, g->req, g->date, g->bufs, g->bufcnt, g->state);
    }
}

static int send_h1(h2o_req_t *req, int status, const struct edge_hdr *h, size_t n, const char *via,
                   struct edge_date_slot *slot, void **gatep)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    struct gate *g = *gatep;
    if (sock == NULL || req->version < 0x101 || h2o_socket_is_writing(sock) || (g != NULL && g->writing))
        return 0;
    size_t cap = 64 + strlen(via);
    for (size_t i = 0; i < n; i++)
        cap += h[i].name_len + h[i].value_len + 4;
    char *b = h2o_mem_alloc_pool(&req->pool, cap);
    size_t l = (size_t)snprintf(b, cap, "HTTP/1.1 %d %s\r\n", status, reason(status));
    for (size_t i = 0; i < n; i++) {
        if (edge_hdr_is_hop(h, n, h[i].name, h[i].name_len))
            continue;
        memcpy(b + l, h[i].name, h[i].name_len);
        l += h[i].name_len;
        memcpy(b + l, ": ", 2);
        memcpy(b + l + 2, h[i].value, h[i].value_len);
        l += 2 + h[i].value_len;
        memcpy(b + l, "\r\n", 2);
        l += 2;
    }
    l += (size_t)snprintf(b + l, cap - l, "Via: %s\r\n\r\n", via);
    if (sock->ssl != NULL) {
        if (g == NULL) {
            g = (struct gate *)h2o_add_ostream(req, sizeof(*g), &req->_ostr_top);
            g->super.do_send = gate_do_send;
            g->req = req;
            g->sock = sock;
            g->slot = slot;
            g->writing = g->held = 0;
            *gatep = g;
        }
        g->writing = 1;
        g->sock_data = sock->data;
        sock->data = g;
        h2o_iovec_t buf = h2o_iovec_init(b, l);
        h2o_socket_write(sock, &buf, 1, gate_written);
        return 1;
    }
    ssize_t w;
    do
        w = send(h2o_socket_get_fd(sock), b, l, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w > 0 && (size_t)w < l)
        req->http1_is_persistent = 0; /* cannot happen into an empty buffer; if it did, close after */
    return w == (ssize_t)l;
}

int edge_interim_send(h2o_req_t *req, int status, const struct edge_hdr *h, size_t n, const char *via,
                      struct edge_date_slot *slot, void **gate)
{
    if (status < 102 || status > 199)
        return 0;
    return req->version >= 0x200 ? send_h2(req, status, h, n, via) : send_h1(req, status, h, n, via, slot, gate);
}
