/* edge/http/range.h - the Range request header (RFC 9110 14.2) against a stored representation.
 *
 * Policy: one satisfiable range gives 206; several ranges are answered with the whole object (200,
 * which RFC 9110 allows) unless none is satisfiable (416); a syntax error or another unit means
 * the header is ignored. */
#ifndef EDGE_RANGE_H
#define EDGE_RANGE_H

#include <stddef.h>
#include <stdint.h>

enum { EDGE_RANGE_NONE = 0, EDGE_RANGE_OK = 1, EDGE_RANGE_UNSAT = 2 };

/* first/last (inclusive) set for EDGE_RANGE_OK. */
int edge_range_parse(const char *s, size_t len, uint64_t size, uint64_t *first, uint64_t *last);

/* Content-Range of a response (RFC 9110 14.4): "bytes FIRST-LAST/TOTAL" (FIRST <= LAST < TOTAL)
 * or "bytes * /TOTAL" without the space (first = last = UINT64_MAX). A TOTAL of "*" (unknown) and
 * anything else: -1. */
int edge_content_range_parse(const char *s, size_t len, uint64_t *first, uint64_t *last, uint64_t *total);

#endif
