/* dns/frame.h - DNS messages over TCP: each is a 2-byte big-endian length, then that many bytes
 * (RFC 1035 4.2.2, RFC 7766). The reassembly is a pure function of the bytes buffered so far, so
 * that the server (server.c) and the fuzz harness (tests/fuzz/fuzz_dns_frame.c) share it.
 *
 * Rules: a length of 0 is malformed (no DNS message is empty) and the connection is closed; a
 * length too short for a header is still a frame (the responder drops or answers it). */
#ifndef CDNS_FRAME_H
#define CDNS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum { CDNS_FRAME_MORE = 0, CDNS_FRAME_BAD = -1 };

/* Looks at the first frame of buf[0..len): its size (2 + message length > 2) with *msg and
 * *msglen set to the message inside it; CDNS_FRAME_MORE if the frame is not all there yet (len
 * may be 0); CDNS_FRAME_BAD for a length of 0. */
long cdns_frame_next(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msglen);

#endif
