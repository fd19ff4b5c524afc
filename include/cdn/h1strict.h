/* cdn/h1strict.h - strict HTTP/1.1 request framing (RFC 9112) in front of h2o 2.2.5's lenient
 * parser, for every h2o server of the project (cdn-edge, shop-lb, shop-app, admin listeners).
 *
 * h2o 2.2.5 parses HTTP/1 with picohttpparser and accepts what RFC 9112 says to refuse: two
 * different Content-Length values (the first wins), no Host or two (the last wins), both
 * Transfer-Encoding and Content-Length (the connection stays open: request smuggling), obs-fold
 * (dropped), and a chunk size of `1g` (read as 1). The raw bytes are gone by the time a handler
 * runs, so the check sits where h2o parses them: lib/h1hook.c defines phr_parse_request and
 * phr_decode_chunked in our executables, which the dynamic linker binds ahead of the copies in
 * libh2o-evloop.so (its calls to them go through the PLT). Plain and TLS connections both pass
 * there (h2o decrypts before it parses).
 *
 * Owns:
 * - cdn_h1_check_head: the pure check of one complete request head (request line, field lines,
 *   the empty line); NULL when it is acceptable, else the reason for the 400.
 * - cdn_h1_decode_chunked: a strict chunked decoder with picohttpparser's contract (decodes in
 *   place, -2 incomplete, -1 error, else the count of bytes after the message), its state kept in
 *   struct cdn_h1_chunked, laid out as picohttpparser's struct phr_chunked_decoder.
 * - The hook (h1hook.c): a head that fails the check reaches h2o as a request with one marker
 *   field and no body; cdn_h1strict_verdict finds it, and the program answers 400 and closes
 *   (cdn-edge in its own recv step, the others through cdn_h1strict_register's handler).
 *
 * What is refused (RFC 9112 sections): a field line starting with white space (obs-fold, 5.2),
 * white space before the colon (5.1), a control character or bare CR in a field value (5.5, 2.2),
 * an HTTP/1.1 request without exactly one Host, or any request with two (3.2), Content-Length
 * that is not 1*DIGIT or lines that disagree (6.3), Transfer-Encoding together with
 * Content-Length, on HTTP/1.0, or other than one `chunked` (6.1, 6.3), a request line that is not
 * method SP target SP HTTP/d.d (3); in a chunked body a size that is not 1*HEXDIG (at most 16),
 * an extension that is not `;name[=value]`, and a chunk or line not ended by CRLF (7.1).
 * Bare LF ends a line in the head (2.2 allows it); a chunked body needs CRLF. */
#ifndef CDN_H1STRICT_H
#define CDN_H1STRICT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The head buf[0..len) as phr_parse_request delimited it (ending with the empty line). */
const char *cdn_h1_check_head(const char *buf, size_t len);

/* Same size and layout as picohttpparser's struct phr_chunked_decoder (h2o zero-fills it and
 * sets consume_trailer); `state` 2 means "in chunk data" for phr_decode_chunked_is_in_data. */
struct cdn_h1_chunked {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char hex_count;
    char state;
};
ssize_t cdn_h1_decode_chunked(struct cdn_h1_chunked *d, char *buf, size_t *bufsz);
int cdn_h1_chunked_in_data(const struct cdn_h1_chunked *d);

/* The hook (h1hook.c). Needs h2o.h: declared with an opaque type to keep this header pure. */
struct st_h2o_req_t;
struct st_h2o_pathconf_t;
/* The reason a request was refused by the hook, or NULL (cheap: no scan of the fields). */
const char *cdn_h1strict_verdict(const struct st_h2o_req_t *req);
/* Adds, first in pc, a handler answering such requests 400 with Connection: close. */
void cdn_h1strict_register(struct st_h2o_pathconf_t *pc);
/* 1 when this process's h2o parses through the hook (the dynamic linker bound it). */
int cdn_h1strict_active(void);
/* Heads and chunked bodies refused since start, all threads. */
uint64_t cdn_h1strict_refused(void);

#endif
