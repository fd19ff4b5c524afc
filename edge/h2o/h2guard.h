/* edge/h2o/h2guard.h - a bound on HTTP/2 stream resets per connection (the rapid-reset attack,
 * CVE-2023-44487), which h2o 2.2.5 does not have.
 *
 * A client that opens a stream and resets it before its response is complete makes the edge do
 * the work of a request (a lookup, often an upstream fetch) for the price of two frames. One
 * connection sent 49,000 such pairs in 2 s. The guard counts these resets per connection in a
 * one-second window; past `limit` in a window the connection gets GOAWAY with ENHANCE_YOUR_CALM
 * (RFC 9113 5.4.1, error 0xb) and h2o closes it once its open streams are gone (new streams on it
 * are ignored from then on). Browsers cancel streams too (a page left while images load), but
 * not hundreds a second on one connection.
 *
 * Owns: a fixed table per worker, indexed by connection id (h2o numbers connections in order), so
 * memory does not grow with the number of connections; a slot taken by a newer connection
 * forgets the older one's count (that one needs 1024 newer connections open at once).
 * Threads: one guard per worker, its thread only. */
#ifndef EDGE_H2GUARD_H
#define EDGE_H2GUARD_H

#include <stdint.h>

#include <h2o.h>

#define EDGE_H2GUARD_SLOTS 1024

struct edge_h2guard {
    unsigned limit;       /* resets per connection per second; 0 = no bound */
    unsigned empty_limit; /* empty frames per connection per second; 0 = no bound */
    struct {
        uint64_t conn_id;
        uint64_t window_ms, empty_window_ms;
        uint32_t n, empty_n;
        int told;   /* GOAWAY sent */
    } slot[EDGE_H2GUARD_SLOTS];
};

/* A request of an HTTP/2 connection went away before its response was complete (the client
 * reset it). Returns 1 when this reset made the guard send GOAWAY, else 0. Call it from the
 * request's dispose callback (the connection is still there). */
int edge_h2guard_reset(struct edge_h2guard *g, h2o_req_t *req, uint64_t now_ms);

/* 1 when req came on HTTP/2 and was disposed before its response was complete. */
int edge_h2guard_was_reset(h2o_req_t *req);

/* Empty frames (CVE-2019-9518 class): a DATA frame with no payload and no END_STREAM, or a
 * HEADERS / CONTINUATION frame with no payload and no END_HEADERS, moves nothing forward and
 * costs the server a frame's work for 9 bytes. Past empty_limit in a one-second window the
 * connection gets GOAWAY (ENHANCE_YOUR_CALM) and is closed at once: unlike a reset stream, the
 * stream such a flood rides on may never end by itself. h2o 2.2.5 parses frames out of reach
 * of a handler; h2frames.c counts them where h2o decodes them. Returns 1 when it closed conn. */
struct st_h2o_http2_conn_t;
int edge_h2guard_empty(struct edge_h2guard *g, struct st_h2o_http2_conn_t *conn, uint64_t now_ms);

/* Binds the calling worker thread's guard (and the counter of connections it closes) to the
 * frame hook of h2frames.c; threads without one count nothing. */
void edge_h2frames_bind(struct edge_h2guard *g, void *closed_counter);

#endif
