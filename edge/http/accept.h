/* edge/http/accept.h - Accept normalised on image routes (docs/EDGE.md "Image formats").
 *
 * An image server that picks the format by Accept answers `Vary: Accept`, and browsers send many
 * different Accept strings (one per browser and version, and per kind of request). Keyed as they
 * come, one picture would be stored once per Accept string. On the paths named by `image_paths`
 * the edge replaces the request's Accept by the one media type the client will get, before the
 * cache key is built and before the request goes upstream: one stored variant per format, and
 * the origin is asked exactly what the key stands for.
 *
 * The choice: the first of the offered formats, in the order AVIF, WebP, PNG, that the field
 * names with a weight above 0; else the fallback, the last offered (PNG by default). A wildcard
 * (image/\*, \*\/\*) does not count: a browser that decodes WebP names it, and `*` is what
 * clients that decode only the classic formats send. Pure: no server, no allocation. */
#ifndef EDGE_HTTP_ACCEPT_H
#define EDGE_HTTP_ACCEPT_H

#include <stddef.h>
#include "edge/http/freshness.h"

enum edge_imgfmt { EDGE_IMGFMT_AVIF, EDGE_IMGFMT_WEBP, EDGE_IMGFMT_PNG, EDGE_IMGFMT_N };
extern const char *const edge_imgfmt_name[EDGE_IMGFMT_N]; /* "avif", "webp", "png" */
extern const char *const edge_imgfmt_mime[EDGE_IMGFMT_N]; /* "image/avif", ... */
/* What shop-app offers: WebP and PNG. */
#define EDGE_IMGFMT_DEFAULT ((1u << EDGE_IMGFMT_WEBP) | (1u << EDGE_IMGFMT_PNG))

/* The weight (0..1000) the field gives the media type [type, type + tlen) by name (case-blind),
 * or -1 when it does not name it. Members with a malformed weight are skipped; quoted parameter
 * values may hold commas. */
int edge_accept_q(const char *v, size_t len, const char *type, size_t tlen);

/* The fallback of a set of offered formats (a mask of 1 << enum edge_imgfmt; not 0): the last. */
enum edge_imgfmt edge_imgfmt_fallback(unsigned offered);

/* The format for the Accept fields among h[0..n) (several fields are one list): the first offered
 * one some field names with q > 0, else the fallback. *present tells whether any Accept came. */
enum edge_imgfmt edge_accept_image(const struct edge_hdr *h, size_t n, unsigned offered, int *present);

/* 1 when path starts with one of the NULL-terminated prefixes (NULL: none). */
int edge_image_path(const char *const *prefixes, const char *path, size_t len);

/* "webp" -> EDGE_IMGFMT_WEBP (case-blind), -1 if unknown. */
int edge_imgfmt_parse(const char *s);

#endif
