/* edge/h2o/abort.c - see abort.h. */
#include "config.h"

#include "edge/h2o/abort.h"

#include <sys/socket.h>

#include <h2o/http2.h>
#include <h2o/http2_internal.h>

void edge_h2o_abort_response(h2o_req_t *req)
{
    if (req->version >= 0x200) {
        h2o_http2_conn_t *conn = (h2o_http2_conn_t *)req->conn;
        h2o_http2_stream_t *stream = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
        if (conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING) {
            h2o_http2_encode_rst_stream_frame(&conn->_write.buf, stream->stream_id, -H2O_HTTP2_ERROR_CANCEL);
            h2o_http2_conn_request_write(conn);
        }
        h2o_http2_stream_reset(conn, stream);
        return;
    }
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    int fd;
    if (sock != NULL && (fd = h2o_socket_get_fd(sock)) >= 0)
        shutdown(fd, SHUT_RDWR);
}
