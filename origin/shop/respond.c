/* origin/shop/respond.c - shop-app's responses: request headers, common response headers, errors,
 * validators (304), caching headers by rule, text bodies with a weak ETag and gzip, and images
 * with ranges. Every answer but an image's goes out through app_send, whole. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "origin/shop/app.h"

h2o_iovec_t app_req_header(h2o_req_t *req, const h2o_token_t *tok)
{
    ssize_t i = h2o_find_header(&req->headers, tok, -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

h2o_iovec_t app_req_header_str(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i >= 0 ? req->headers.entries[i].value : h2o_iovec_init(NULL, 0);
}

int app_is_method(h2o_req_t *req, const char *m)
{
    return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

void app_set_hdr(h2o_req_t *req, const h2o_token_t *tok, const char *v)
{
    if (v != NULL && *v)
        h2o_set_header(&req->pool, &req->res.headers, tok, v, strlen(v), 1);
}

void app_set_hdr_str(h2o_req_t *req, const char *name, const char *v)
{
    if (v != NULL && *v)
        h2o_set_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, v, strlen(v), 1);
}

void app_common_headers(h2o_req_t *req)
{
    app_set_hdr_str(req, "x-served-by", app.name);
    h2o_iovec_t rid = app_req_header_str(req, "x-request-id");
    if (rid.base != NULL)
        h2o_set_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 1, rid.base, rid.len, 1);
}

void app_send(h2o_req_t *req, int status, const char *reason, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    if (app_db_hold(req, status, reason, body, len))
        return; /* a cart write to the database first (db.h) */
    req->res.content_length = len;
    app_idem_answer(req, body, len);
    h2o_send_inline(req, body, len); /* copies into the pool */
}

void app_send_error(h2o_req_t *req, int status, const char *reason, const char *msg)
{
    const struct shop_rules *r = app_rules_now();
    req->res.status = status;
    req->res.reason = reason;
    app_common_headers(req);
    app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; charset=utf-8");
    app_set_hdr(req, H2O_TOKEN_CACHE_CONTROL, status >= 500 ? r->server_error_cache_control : r->error_cache_control);
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    app_send(req, status, reason, msg, strlen(msg));
}

/* Validators: If-None-Match (weak) first; If-Modified-Since only when there is no INM. */
static int not_modified(h2o_req_t *req, const char *etag, int64_t last_modified)
{
    h2o_iovec_t inm = app_req_header(req, H2O_TOKEN_IF_NONE_MATCH);
    if (inm.base != NULL)
        return etag != NULL && shop_etag_match_weak(inm.base, inm.len, etag, strlen(etag));
    h2o_iovec_t ims = app_req_header(req, H2O_TOKEN_IF_MODIFIED_SINCE);
    time_t t;
    if (ims.base != NULL && last_modified > 0 && shop_http_date_parse(ims.base, ims.len, &t) == 0)
        return (int64_t)t >= last_modified;
    return 0;
}

static void send_304(h2o_req_t *req)
{
    static h2o_generator_t gen = {NULL, NULL};
    req->res.status = 304;
    req->res.reason = "Not Modified";
    req->res.content_length = SIZE_MAX;
    /* a 304 carries the validators and caching headers, no body or type */
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0)
        h2o_delete_header(&req->res.headers, ct);
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    h2o_start_response(req, &gen);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

static void set_cache_headers(h2o_req_t *req, const struct shop_rule *rule, const char *surrogate_key,
                              int64_t last_modified, const char *etag)
{
    if (rule != NULL) {
        app_set_hdr(req, H2O_TOKEN_CACHE_CONTROL, rule->cache_control);
        if (rule->vary)
            h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY, rule->vary, strlen(rule->vary));
        app_set_hdr_str(req, "surrogate-control", rule->surrogate_control);
    }
    app_set_hdr_str(req, "surrogate-key", surrogate_key);
    if (last_modified > 0) {
        char *d = h2o_mem_alloc_pool(&req->pool, 30);
        shop_http_date_format((time_t)last_modified, d);
        app_set_hdr(req, H2O_TOKEN_LAST_MODIFIED, d);
    }
    if (etag != NULL)
        app_set_hdr(req, H2O_TOKEN_ETAG, etag);
}

/* Weak ETag from the bytes (gzip may change the encoding, not the meaning). */
void app_send_text(h2o_req_t *req, const struct shop_rule *rule, const char *ctype, struct shop_buf *body,
                   const char *surrogate_key, int64_t last_modified)
{
    if (body->failed) {
        shop_buf_free(body);
        app_send_error(req, 500, "Internal Server Error", "response too large\n");
        return;
    }
    char *etag = h2o_mem_alloc_pool(&req->pool, 24);
    snprintf(etag, 24, "W/\"%016llx\"", (unsigned long long)shop_hash64(body->p, body->len));
    req->res.status = 200;
    req->res.reason = "OK";
    app_common_headers(req);
    app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, ctype);
    set_cache_headers(req, rule, surrogate_key, last_modified, etag);
    int gz = app.conf.gzip && (rule == NULL || rule->gzip);
    if (gz && (rule == NULL || rule->vary == NULL || strcasestr(rule->vary, "accept-encoding") == NULL))
        h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY, H2O_STRLIT("Accept-Encoding"));
    req->compress_hint = gz ? H2O_COMPRESS_HINT_AUTO : H2O_COMPRESS_HINT_DISABLE;
    if (not_modified(req, etag, last_modified)) {
        shop_buf_free(body);
        send_304(req);
        return;
    }
    app_send(req, 200, "OK", body->p ? body->p : "", body->len);
    shop_buf_free(body);
}

/* ---------------- images ---------------- */

static void on_image_dispose(void *p) { shop_image_release(*(struct shop_image **)p); }

/* Whether a Range applies: only to the representation the client has (If-Range). */
static int if_range_holds(h2o_req_t *req, const struct shop_product *p, const struct shop_image *img)
{
    h2o_iovec_t ifr = app_req_header(req, H2O_TOKEN_IF_RANGE);
    time_t t;
    if (ifr.base == NULL)
        return 1;
    if (ifr.len > 0 && (ifr.base[0] == '"' || ifr.base[0] == 'W'))
        return shop_etag_match_strong(ifr.base, ifr.len, img->etag, strlen(img->etag));
    return shop_http_date_parse(ifr.base, ifr.len, &t) == 0 && (int64_t)t == p->updated_at;
}

/* The Range of a GET or HEAD into [*first, *last] (206 headers set), or the whole image. -1 when
 * unsatisfiable: the 416 was sent. */
static int apply_range(h2o_req_t *req, const struct shop_product *p, const struct shop_image *img, uint64_t *first,
                       uint64_t *last)
{
    h2o_iovec_t range = app_req_header(req, H2O_TOKEN_RANGE);
    *first = 0, *last = img->len - 1;
    if (range.base == NULL || !(app_is_method(req, "GET") || app_is_method(req, "HEAD")) || !if_range_holds(req, p, img))
        return 0;
    switch (shop_range_parse(range.base, range.len, img->len, first, last)) {
    case SHOP_RANGE_NONE:
        *first = 0, *last = img->len - 1;
        return 0;
    case SHOP_RANGE_OK: {
        char *cr = h2o_mem_alloc_pool(&req->pool, 64);
        snprintf(cr, 64, "bytes %llu-%llu/%zu", (unsigned long long)*first, (unsigned long long)*last, img->len);
        app_set_hdr(req, H2O_TOKEN_CONTENT_RANGE, cr);
        req->res.status = 206;
        req->res.reason = "Partial Content";
        return 0;
    }
    case SHOP_RANGE_UNSAT: {
        char *cr = h2o_mem_alloc_pool(&req->pool, 48);
        snprintf(cr, 48, "bytes */%zu", img->len);
        app_set_hdr(req, H2O_TOKEN_CONTENT_RANGE, cr);
        app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain");
        app_send(req, 416, "Range Not Satisfiable", H2O_STRLIT("range not satisfiable\n"));
        return -1;
    }
    }
    return 0;
}

void app_send_image(h2o_req_t *req, const struct shop_rule *rule, const struct shop_product *p, struct shop_image *img,
                    int negotiated)
{
    if (img == NULL) {
        app_send_error(req, 500, "Internal Server Error", "image rendering failed\n");
        return;
    }
    struct shop_image **ref = h2o_mem_alloc_shared(&req->pool, sizeof(*ref), on_image_dispose);
    *ref = img;

    char sk[80];
    snprintf(sk, sizeof(sk), "product-%u category-%u image-%u", p->id, p->category_id, p->id);
    req->res.status = 200;
    req->res.reason = "OK";
    app_common_headers(req);
    app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, shop_img_fmt_mime[img->fmt]);
    app_set_hdr(req, H2O_TOKEN_ACCEPT_RANGES, "bytes");
    set_cache_headers(req, rule, h2o_strdup(&req->pool, sk, SIZE_MAX).base, p->updated_at, img->etag);
    if (negotiated) /* each format has its own bytes, so its own strong ETag */
        h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY, H2O_STRLIT("Accept"));
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    if (not_modified(req, img->etag, p->updated_at)) {
        send_304(req);
        return;
    }
    uint64_t first, last;
    if (apply_range(req, p, img, &first, &last) != 0)
        return;
    static h2o_generator_t gen = {NULL, NULL};
    h2o_iovec_t buf = h2o_iovec_init((char *)img->data + first, (size_t)(last - first + 1));
    req->res.content_length = buf.len;
    h2o_start_response(req, &gen);
    if (app_is_method(req, "HEAD"))
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}
