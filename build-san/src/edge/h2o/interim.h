/* edge/h2o/interim.h - forwarding an interim (1xx) response from upstream to a client.
 *
 * Owns: writing a 103 Early Hints (or another 1xx but 100/101) ahead of the final response with
 * h2o 2.2.5, which has no API for it (h2o 2.3 added h2o_send_informational). See interim.c for
 * how, per protocol (HTTP/2, HTTP/1.1 in clear and over TLS). */
#ifndef EDGE_INTERIM_H
#define EDGE_INTERIM_H

#include <h2o.h>

#include "edge/h2o/date_send.h"
#include "edge/http/freshness.h"

/* Sends status with headers h (hop-by-hop ones and those named by Connection are dropped) and
 * Via: via to the client of req, whose final response must not have started yet. *gate is the
 * request's slot for the output stream that holds its first send while a 1xx is written over
 * TLS (NULL at first; lives in the request's pool); slot is the worker's Date slot. Returns 1 if
 * it was sent, 0 if this client cannot get one now (HTTP/1.0, a closing h2 connection, a 1xx
 * still being written). */
int edge_interim_send(h2o_req_t *req, int status, const struct edge_hdr *h, size_t n, const char *via,
                      struct edge_date_slot *slot, void **gate);

#endif
