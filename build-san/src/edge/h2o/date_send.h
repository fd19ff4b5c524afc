/* edge/h2o/date_send.h - the Date a client sees on a stored or forwarded response.
 *
 * Owns: getting the origin's Date onto the wire with h2o 2.2.5, which writes a Date of its own
 * into every response head (HTTP/1 flatten_headers and the HPACK encoder, no option to turn it
 * off) from the context's timestamp cache. RFC 9111 (and RFC 9110 6.6.1 for a proxy) want the
 * stored Date sent unchanged, so the first h2o_send of such a response runs with that cache
 * showing the response's Date; see date_send.c. One edge_date_slot per worker thread. */
#ifndef EDGE_DATE_SEND_H
#define EDGE_DATE_SEND_H

#include <h2o.h>

struct edge_date_slot {
    h2o_timestamp_string_t *ts; /* the last Date shown (h2o shared memory, our reference) */
};

/* h2o_send(req, bufs, n, state) where the response head, if this send writes it, carries date
 * (an IMF-fixdate of exactly 29 characters) as its Date. Call it for the first send of a response;
 * later sends may use h2o_send directly. */
void edge_date_send(struct edge_date_slot *slot, h2o_req_t *req, const char *date, h2o_iovec_t *bufs, size_t n,
                    h2o_send_state_t state);
/* The same for an output stream filter passing data on: h2o_ostream_send_next(self, ...) with
 * date showing (a filter that held the first send back, edge/h2o/interim.c). */
void edge_date_send_next(struct edge_date_slot *slot, h2o_ostream_t *self, h2o_req_t *req, const char *date,
                         h2o_iovec_t *bufs, size_t n, h2o_send_state_t state);
/* Drops the slot's reference (on the worker's thread, before its context goes). */
void edge_date_slot_dispose(struct edge_date_slot *slot);

#endif
