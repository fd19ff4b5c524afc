/* edge/h2o/abort.h - ending one response that makes no progress, which h2o 2.2.5 has no call for.
 *
 * A client that stops reading (an HTTP/2 stream whose window it never opens, an HTTP/1 socket it
 * never drains) leaves h2o holding the response's data and never calling proceed: with h2o alone
 * the request, its fetch and its buffers live as long as the connection. The edge's send_timeout
 * (req/deliver.c) ends such a response with this:
 * - HTTP/2: RST_STREAM (CANCEL) for that stream and the stream closed (h2o_http2_stream_reset,
 *   as h2o does on a flow-control error); the connection and its other streams go on.
 * - HTTP/1.x: the socket shut down both ways; h2o's pending write then fails and h2o closes the
 *   connection its usual way (its request is disposed there).
 * Call it from a timer, never from inside one of h2o's callbacks for that request. */
#ifndef EDGE_H2O_ABORT_H
#define EDGE_H2O_ABORT_H

#include <h2o.h>

void edge_h2o_abort_response(h2o_req_t *req);

#endif
