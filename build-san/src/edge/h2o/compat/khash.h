/* edge/h2o/compat/khash.h - just enough of klib's khash.h interface for <h2o/http2_internal.h>.
 *
 * Debian's libh2o-dev ships http2_internal.h (edge/h2o/interim.c needs its connection and stream
 * structs and h2o_hpack_flatten_response) but not the khash.h it includes. The header only holds a
 * pointer to the stream table (so no layout depends on the table's shape) and has one unused
 * inline function that looks streams up; this declares the names it uses, with the table laid out
 * as khash lays it out. Nothing here is called: the table belongs to h2o. */
#ifndef EDGE_COMPAT_KHASH_H
#define EDGE_COMPAT_KHASH_H

#include <stdint.h>

typedef uint32_t khint32_t;
typedef uint64_t khint64_t;
typedef khint32_t khint_t;
typedef khint_t khiter_t;

#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                                \
    typedef struct kh_##name##_s {                                                                                         \
        khint_t n_buckets, size, n_occupied, upper_bound;                                                                  \
        khint32_t *flags;                                                                                                  \
        khint64_t *keys;                                                                                                   \
        khval_t *vals;                                                                                                     \
    } kh_##name##_t;                                                                                                       \
    khint_t kh_get_##name(const kh_##name##_t *h, khint64_t key);

#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) kh_get_##name(h, k)
#define kh_end(h) ((h)->n_buckets)
#define kh_val(h, x) ((h)->vals[x])

#endif
