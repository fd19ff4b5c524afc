/* lib/h1hook.c - the strict HTTP/1 check hooked into h2o 2.2.5's parser (cdn/h1strict.h).
 *
 * libh2o-evloop.so calls picohttpparser's phr_parse_request and phr_decode_chunked through its
 * PLT, so the definitions below, linked into each executable that uses this object, are the ones
 * the dynamic linker binds (symbol interposition; cdn_h1strict_active checks that it happened).
 * phr_parse_request still parses with h2o's own copy (found with RTLD_NEXT) and then checks the
 * same bytes with cdn_h1_check_head; phr_decode_chunked is replaced by the strict decoder.
 *
 * A refused head is handed to h2o as a request with a single marker field and no body: h2o then
 * reads no body (the framing is what is in doubt) and calls the handlers at once, and the first
 * of them answers 400 with Connection: close (h2o closes after it). The marker's name has a space
 * in it, which no HTTP/1 client can send (a field name is a token); minor version 0 turns
 * keep-alive off in h2o as well. */
#define _GNU_SOURCE
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>

#include "cdn/h1strict.h"

/* picohttpparser's types (the layout h2o 2.2.5 was built with) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
struct phr_chunked_decoder;

typedef int (*parse_request_fn)(const char *, size_t, const char **, size_t *, const char **, size_t *, int *,
                                struct phr_header *, size_t *, size_t);

#define MARK "cdn strict refused"
/* h2o lowercases field names in place: the marker's name must be writable, one per thread */
static __thread char mark_name[] = MARK;
static uint64_t refused; /* atomic */

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);
int phr_decode_chunked_is_in_data(struct phr_chunked_decoder *decoder);

static parse_request_fn real_parse_request(void)
{
    static parse_request_fn fn; /* atomic */
    parse_request_fn f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = (parse_request_fn)dlsym(RTLD_NEXT, "phr_parse_request");
        if (f == NULL) {
            fprintf(stderr, "h1strict: no phr_parse_request after ours (%s)\n", dlerror());
            abort();
        }
        __atomic_store_n(&fn, f, __ATOMIC_RELEASE);
    }
    return f;
}

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len)
{
    size_t cap = *num_headers;
    int r = real_parse_request()(buf, len, method, method_len, path, path_len, minor_version, headers, num_headers,
                                 last_len);
    if (r <= 0 || cap == 0)
        return r;
    const char *why = cdn_h1_check_head(buf, (size_t)r);
    if (why != NULL) {
        __atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
        headers[0] = (struct phr_header){mark_name, sizeof(MARK) - 1, why, strlen(why)};
        *num_headers = 1;
        *minor_version = 0;
    }
    return r;
}

ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz)
{
    ssize_t r = cdn_h1_decode_chunked((struct cdn_h1_chunked *)(void *)decoder, buf, bufsz);
    if (r == -1)
        __atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
    return r;
}

int phr_decode_chunked_is_in_data(struct phr_chunked_decoder *decoder)
{
    return cdn_h1_chunked_in_data((struct cdn_h1_chunked *)(void *)decoder);
}

const char *cdn_h1strict_verdict(const h2o_req_t *req)
{
    if (req->version >= 0x200 || req->headers.size != 1)
        return NULL;
    const h2o_header_t *h = &req->headers.entries[0];
    if (h->name->len != sizeof(MARK) - 1 || memcmp(h->name->base, MARK, sizeof(MARK) - 1) != 0)
        return NULL;
    return h->value.base; /* one of cdn_h1_check_head's reasons: a C string */
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    const char *why = cdn_h1strict_verdict(req);
    if (why == NULL)
        return -1;
    req->http1_is_persistent = 0;
    h2o_send_error_generic(req, 400, "Bad Request", why, H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
    return 0;
}

void cdn_h1strict_register(h2o_pathconf_t *pc)
{
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = on_req;
}

int cdn_h1strict_active(void)
{
    return dlsym(RTLD_DEFAULT, "phr_parse_request") == (void *)phr_parse_request &&
           dlsym(RTLD_DEFAULT, "phr_decode_chunked") == (void *)phr_decode_chunked;
}

uint64_t cdn_h1strict_refused(void)
{
    return __atomic_load_n(&refused, __ATOMIC_RELAXED);
}
