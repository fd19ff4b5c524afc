/* edge/interim.c - see interim.h.
 *
 * HTTP/2: the HEADERS frame of the 1xx goes into the connection's write buffer through the same
 * HPACK encoder and header table as every other response (h2o_hpack_flatten_response, exported
 * with http2_internal.h), on the stream the request came in on while it has sent nothing yet;
 * the final HEADERS follow in order. No END_STREAM: that comes with the final response.
 * HTTP/1.1 in clear: h2o writes a response head only when the response starts, and its socket
 * has nothing queued before that (a request is read only after the previous response went out),
 * so the 1xx block is written straight to the socket's descriptor; it is a few hundred bytes into
 * an empty send buffer. An h2o_socket_write would leave a write in flight that the final
 * response could collide with. Over TLS the bytes would have to go through h2o's TLS state: not
 * sent. HTTP/1.0 clients never get a 1xx (RFC 9110 15.2). */
#include "edge/interim.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <h2o/http2.h>
#include <h2o/http2_internal.h>

static const char *reason(int status)
{
    switch (status) {
    case 102: return "Processing";
    case 103: return "Early Hints";
    default: return "Informational";
    }
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

static int send_h1(h2o_req_t *req, int status, const struct edge_hdr *h, size_t n, const char *via)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock == NULL || sock->ssl != NULL || req->version < 0x101 || h2o_socket_is_writing(sock))
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
    ssize_t w;
    do
        w = send(h2o_socket_get_fd(sock), b, l, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w > 0 && (size_t)w < l)
        req->http1_is_persistent = 0; /* cannot happen into an empty buffer; if it did, close after */
    return w == (ssize_t)l;
}

int edge_interim_send(h2o_req_t *req, int status, const struct edge_hdr *h, size_t n, const char *via)
{
    if (status < 102 || status > 199)
        return 0;
    return req->version >= 0x200 ? send_h2(req, status, h, n, via) : send_h1(req, status, h, n, via);
}
