/* edge/h2o/h2frames.c - the empty-frame count of h2guard.h, where h2o 2.2.5 reads frames.
 *
 * h2o decodes each HTTP/2 frame with h2o_http2_decode_frame(frame, src, ...), src being the
 * start of the connection's socket input, and then drops it with h2o_buffer_consume(&sock->input,
 * n); both calls go through libh2o-evloop's PLT, so these definitions in cdn-edge are the ones
 * bound (the same symbol interposition as lib/h1hook.c). The first notes that the frame at src
 * was empty; the second, if its buffer still starts at src, is consuming that very frame and
 * names the socket (the buffer pointer is &sock->input), whose data is the h2o_http2_conn_t.
 * Everything else passes straight to h2o's own functions. */
#define _GNU_SOURCE
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <h2o.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>

#include "cdn/loop.h"
#include "cdn/metrics.h"
#include "edge/h2o/h2guard.h"

static __thread struct edge_h2guard *tl_guard;
static __thread cdn_series_t *tl_closed;
static __thread const char *tl_empty_at; /* input position of the empty frame just decoded */

typedef ssize_t (*decode_frame_fn)(h2o_http2_frame_t *, const uint8_t *, size_t, const h2o_http2_settings_t *,
                                   const char **);
typedef void (*consume_fn)(h2o_buffer_t **, size_t);

static void *real(const char *name, void **cache)
{
    void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        if ((f = dlsym(RTLD_NEXT, name)) == NULL) {
            fprintf(stderr, "h2frames: no %s after ours (%s)\n", name, dlerror());
            abort();
        }
        __atomic_store_n(cache, f, __ATOMIC_RELEASE);
    }
    return f;
}

void edge_h2frames_bind(struct edge_h2guard *g, void *closed_counter)
{
    tl_guard = g;
    tl_closed = closed_counter;
}

ssize_t h2o_http2_decode_frame(h2o_http2_frame_t *frame, const uint8_t *src, size_t len,
                               const h2o_http2_settings_t *host_settings, const char **err_desc)
{
    static void *fn;
    ssize_t r = ((decode_frame_fn)real("h2o_http2_decode_frame", &fn))(frame, src, len, host_settings, err_desc);
    if (r > 0 && tl_guard != NULL && frame->length == 0 &&
        ((frame->type == H2O_HTTP2_FRAME_TYPE_DATA && !(frame->flags & H2O_HTTP2_FRAME_FLAG_END_STREAM)) ||
         ((frame->type == H2O_HTTP2_FRAME_TYPE_HEADERS || frame->type == H2O_HTTP2_FRAME_TYPE_CONTINUATION) &&
          !(frame->flags & H2O_HTTP2_FRAME_FLAG_END_HEADERS))))
        tl_empty_at = (const char *)src;
    return r;
}

void h2o_buffer_consume(h2o_buffer_t **inbuf, size_t delta)
{
    static void *fn;
    const char *at = tl_empty_at;
    if (at != NULL) {
        tl_empty_at = NULL;
        if (*inbuf != NULL && (*inbuf)->bytes == at) {
            h2o_socket_t *sock = H2O_STRUCT_FROM_MEMBER(h2o_socket_t, input, inbuf);
            h2o_http2_conn_t *conn = sock->data;
            if (conn != NULL && conn->sock == sock && edge_h2guard_empty(tl_guard, conn, cdn_now_ms()) &&
                tl_closed != NULL)
                cdn_counter_inc(tl_closed);
        }
    }
    ((consume_fn)real("h2o_buffer_consume", &fn))(inbuf, delta);
}
