/* origin/shop/serve.c - shop-app's requests: the entry (error injection, the service-delay queue),
 * the dispatch by path, and the handlers: home, category and product pages, the product API,
 * search, images (a miss goes to render.c) and the cart. Every handler ends in one response
 * (respond.c); nothing here blocks the loop but the catalog's SQLite reads on the worker's own
 * read-only connection. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "origin/shop/app.h"

enum app_class app_classify(const char *p, size_t len)
{
#define PFX(lit) (len >= sizeof(lit) - 1 && memcmp(p, lit, sizeof(lit) - 1) == 0)
    if (len == 1 && p[0] == '/')
        return C_HOME;
    if (PFX("/img/"))
        return C_IMAGE;
    if (PFX("/p/"))
        return C_PRODUCT;
    if (PFX("/c/"))
        return C_CATEGORY;
    if (PFX("/api/search") || PFX("/search"))
        return C_SEARCH;
    if (PFX("/assets/"))
        return C_ASSET;
    if (PFX("/api/cart") || PFX("/cart"))
        return C_CART;
    if (PFX("/api/"))
        return C_API;
    if (PFX("/healthz"))
        return C_HEALTH;
    if (PFX("/metrics"))
        return C_METRICS;
    return C_OTHER;
#undef PFX
}

/* "/p/42" style ids: digits only, 1..UINT32_MAX; the length of the digits in *used. */
static int parse_id(const char *p, size_t len, uint32_t *id, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9' && i < 10)
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0 || v == 0 || v > UINT32_MAX || (p[0] == '0'))
        return -1;
    *id = (uint32_t)v;
    *used = i;
    return 0;
}

static h2o_iovec_t query_of(h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init("", 0);
    return h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
}

static shop_catalog_t *catalog_of(h2o_req_t *req) { return app_worker_of(req)->cat; }

/* ---------------- pages and API ---------------- */

static void on_home(h2o_req_t *req, const struct shop_rule *rule)
{
    struct shop_category cats[SHOP_NUM_CATEGORIES];
    struct shop_product featured[12];
    shop_catalog_t *cat = catalog_of(req);
    int nc = shop_catalog_categories(cat, cats, SHOP_NUM_CATEGORIES), nf = 0;
    for (int i = 0; i < nc && nf < 12; i++)
        if (shop_catalog_list(cat, cats[i].id, 0, 1, &featured[nf]) == 1)
            nf++;
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    shop_page_home(&b, &app.site, cats, nc, featured, nf);
    app_send_text(req, rule, "text/html; charset=utf-8", &b, "home", app.catalog_time);
}

/* ?page=N of a category: 1.., or 0 after a 400. */
static long page_of(h2o_req_t *req)
{
    char pg[16];
    h2o_iovec_t q = query_of(req);
    long page = 1;
    if (shop_query_get(q.base, q.len, "page", pg, sizeof(pg)) > 0) {
        char *end;
        page = strtol(pg, &end, 10);
        if (*end || page < 1 || page > 1000000) {
            app_send_error(req, 400, "Bad Request", "page must be a positive integer\n");
            return 0;
        }
    }
    return page;
}

static void on_category(h2o_req_t *req, const struct shop_rule *rule, const char *slug_p, size_t slug_len)
{
    char slug[64];
    struct shop_category cat;
    if (slug_len == 0 || slug_len >= sizeof(slug)) {
        app_send_error(req, 404, "Not Found", "no such category\n");
        return;
    }
    memcpy(slug, slug_p, slug_len);
    slug[slug_len] = '\0';
    int rc = shop_catalog_category_by_slug(catalog_of(req), slug, &cat);
    if (rc <= 0) {
        app_send_error(req, rc < 0 ? 500 : 404, rc < 0 ? "Internal Server Error" : "Not Found", "no such category\n");
        return;
    }
    long page = page_of(req);
    if (page == 0)
        return;
    uint32_t pages = (cat.count + SHOP_PAGE_SIZE - 1) / SHOP_PAGE_SIZE;
    if ((uint32_t)page > (pages ? pages : 1)) {
        app_send_error(req, 404, "Not Found", "no such page\n");
        return;
    }
    struct shop_product items[SHOP_PAGE_SIZE];
    int n = shop_catalog_list(catalog_of(req), cat.id, (uint32_t)(page - 1) * SHOP_PAGE_SIZE, SHOP_PAGE_SIZE, items);
    if (n < 0) {
        app_send_error(req, 500, "Internal Server Error", "catalog error\n");
        return;
    }
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    shop_page_category(&b, &app.site, &cat, (uint32_t)page, items, n);
    char sk[32];
    snprintf(sk, sizeof(sk), "category-%u", cat.id);
    app_send_text(req, rule, "text/html; charset=utf-8", &b, h2o_strdup(&req->pool, sk, SIZE_MAX).base, app.catalog_time);
}

static int load_product(h2o_req_t *req, uint32_t id, struct shop_product *p)
{
    int rc = shop_catalog_product(catalog_of(req), id, p);
    if (rc < 0)
        app_send_error(req, 500, "Internal Server Error", "catalog error\n");
    else if (rc == 0)
        app_send_error(req, 404, "Not Found", "no such product\n");
    return rc == 1 ? 0 : -1;
}

static const char *product_keys(h2o_req_t *req, const struct shop_product *p)
{
    char sk[64];
    snprintf(sk, sizeof(sk), "product-%u category-%u", p->id, p->category_id);
    return h2o_strdup(&req->pool, sk, SIZE_MAX).base;
}

static void on_product(h2o_req_t *req, const struct shop_rule *rule, uint32_t id, int json)
{
    struct shop_product *p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
    if (load_product(req, id, p) != 0)
        return;
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    if (json) {
        shop_json_product(&b, &app.site, p);
        app_send_text(req, rule, "application/json", &b, product_keys(req, p), p->updated_at);
    } else {
        shop_page_product(&b, &app.site, p);
        app_send_text(req, rule, "text/html; charset=utf-8", &b, product_keys(req, p), p->updated_at);
    }
}

static void on_image(h2o_req_t *req, const struct shop_rule *rule, uint32_t id, enum shop_img_size size,
                     enum shop_img_fmt fmt, int negotiated)
{
    struct shop_product *p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
    if (load_product(req, id, p) != 0)
        return;
    struct shop_image *img = shop_imgcache_lookup(app.images, id, size, fmt);
    if (img != NULL) {
        cdn_counter_inc(app.s_img_hits);
        app_send_image(req, rule, p, img, negotiated);
    } else
        app_render_submit(app_worker_of(req), req, p, size, fmt, negotiated); /* on a render thread, not on the loop */
}

static void on_search(h2o_req_t *req, const struct shop_rule *rule, int json)
{
    char q[256];
    h2o_iovec_t qs = query_of(req);
    int ql = shop_query_get(qs.base, qs.len, "q", q, sizeof(q));
    if (!json && ql < 0 && qs.len < sizeof(q)) /* absent (a too long one is still a 400) */
        q[0] = '\0', ql = 0;
    if (ql < 0) {
        app_send_error(req, 400, "Bad Request", "missing or too long q parameter\n");
        return;
    }
    struct shop_product *items = h2o_mem_alloc_pool(&req->pool, sizeof(*items) * SHOP_PAGE_SIZE);
    int n = *q ? shop_catalog_search(catalog_of(req), q, SHOP_PAGE_SIZE, items) : 0;
    if (n < 0) {
        app_send_error(req, 500, "Internal Server Error", "search failed\n");
        return;
    }
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    if (json) {
        shop_json_search(&b, &app.site, q, items, n);
        app_send_text(req, rule, "application/json", &b, "search", app.catalog_time);
    } else {
        shop_page_search(&b, &app.site, q, items, n);
        app_send_text(req, rule, "text/html; charset=utf-8", &b, "search", app.catalog_time);
    }
}

/* /assets/shop.<hash>.css|js: the name is the content, so any other hash is a 404. */
static int on_asset(h2o_req_t *req, const struct shop_rule *rule, const char *p, size_t len)
{
    const struct shop_asset *a = shop_asset_find(p, len);
    if (a == NULL)
        return -1;
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    shop_buf_add(&b, a->body, a->len);
    app_send_text(req, rule, a->ctype, &b, "assets", 0);
    return 0;
}

/* ---------------- the cart ---------------- */

/* A session id: 128 bits from the kernel's CSPRNG as 32 hex digits (plus NUL). A sid names a
 * user, so it must not be guessable from another one (it once was a splitmix64 stream: one cookie
 * gave away all the next ones). 0, or -1 if the kernel gave fewer bytes (no entropy yet). */
static int new_sid(char out[33])
{
    uint8_t r[16];
    ssize_t n;
    while ((n = getrandom(r, sizeof(r), 0)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof(r))
        return -1;
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return 0;
}

/* The cart from the "cart" cookie; whether a "sid" cookie came along (HTTP/2 may split cookies
 * over several headers: each is looked in). */
static int cart_read(h2o_req_t *req, struct shop_cart *cart)
{
    char v[1024];
    int sid = 0;
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        h2o_iovec_t c = req->headers.entries[i].value;
        if (shop_cookie_get(c.base, c.len, "cart", v, sizeof(v)) >= 0)
            shop_cart_parse(v, strlen(v), cart);
        if (shop_cookie_get(c.base, c.len, "sid", v, sizeof(v)) > 0)
            sid = 1;
    }
    app_db_cart_read(req, cart); /* PostgreSQL: the stored cart wins (db.h) */
    return sid;
}

/* What add=ID&qty=N makes of an item: N more than the cart had, at most 999. */
static uint32_t cart_qty(const struct shop_cart *cart, uint32_t id, uint32_t qty)
{
    for (size_t i = 0; i < cart->n; i++)
        if (cart->items[i].id == id)
            return cart->items[i].qty + qty > 999 ? 999 : cart->items[i].qty + qty;
    return qty;
}

/* A POST's add=ID&qty=N (N more of it) / remove=ID from the query or a form body. 1 changed, 0 not, -1 when an
 * error was sent. */
static int cart_apply(h2o_req_t *req, struct shop_cart *cart)
{
    h2o_iovec_t src[2] = {query_of(req), req->entity};
    int changed = 0;
    for (int k = 0; k < 2; k++) {
        char num[16];
        if (src[k].base == NULL)
            continue;
        unsigned long id, qty = 1;
        if (shop_query_get(src[k].base, src[k].len, "qty", num, sizeof(num)) > 0)
            qty = strtoul(num, NULL, 10);
        if (shop_query_get(src[k].base, src[k].len, "add", num, sizeof(num)) > 0 &&
            (id = strtoul(num, NULL, 10)) >= 1 && id <= UINT32_MAX && qty >= 1 && qty <= 999) {
            struct shop_product p;
            if (shop_catalog_product(catalog_of(req), (uint32_t)id, &p) != 1) {
                app_send_error(req, 404, "Not Found", "no such product\n");
                return -1;
            }
            if (shop_cart_set(cart, (uint32_t)id, cart_qty(cart, (uint32_t)id, (uint32_t)qty)) != 0) {
                app_send_error(req, 400, "Bad Request", "cart is full\n");
                return -1;
            }
            changed = 1;
        }
        if (shop_query_get(src[k].base, src[k].len, "remove", num, sizeof(num)) > 0 &&
            (id = strtoul(num, NULL, 10)) >= 1 && id <= UINT32_MAX) {
            shop_cart_set(cart, (uint32_t)id, 0);
            changed = 1;
        }
    }
    return changed;
}

/* Set-Cookie: a new sid on a first visit, the cart when it changed. -1 when an error was sent. */
static int cart_cookies(h2o_req_t *req, const struct shop_cart *cart, int has_sid, int changed)
{
    if (!has_sid) {
        char sid[33];
        if (new_sid(sid) != 0) {
            app_send_error(req, 503, "Service Unavailable", "no session id available\n");
            return -1;
        }
        char *sc = h2o_mem_alloc_pool(&req->pool, 96);
        snprintf(sc, 96, "sid=%s; Path=/; HttpOnly; SameSite=Lax", sid);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, sc, strlen(sc));
    }
    if (changed) {
        char cv[SHOP_CART_MAX * 24];
        shop_cart_format(cart, cv, sizeof(cv));
        char *sc = h2o_mem_alloc_pool(&req->pool, sizeof(cv) + 64);
        snprintf(sc, sizeof(cv) + 64, "cart=%s; Path=/; SameSite=Lax", cv);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, sc, strlen(sc));
    }
    return 0;
}

/* The cart lives in the "cart" cookie; a "sid" cookie names the user. Never cacheable. */
static void on_cart(h2o_req_t *req, const struct shop_rule *rule, int json)
{
    struct shop_cart cart = {0};
    int has_sid = cart_read(req, &cart), changed = 0;
    if (app_is_method(req, "POST")) {
        if ((changed = cart_apply(req, &cart)) < 0)
            return;
    } else if (!app_is_method(req, "GET") && !app_is_method(req, "HEAD")) {
        app_set_hdr(req, H2O_TOKEN_ALLOW, "GET, HEAD, POST");
        app_send_error(req, 405, "Method Not Allowed", "method not allowed\n");
        return;
    }
    struct shop_product *items = h2o_mem_alloc_pool(&req->pool, sizeof(*items) * (cart.n ? cart.n : 1));
    for (size_t i = 0; i < cart.n; i++)
        if (shop_catalog_product(catalog_of(req), cart.items[i].id, &items[i]) != 1)
            items[i].id = 0;
    if (cart_cookies(req, &cart, has_sid, changed) != 0)
        return;
    if (changed)
        app_db_cart_changed(req, &cart); /* PostgreSQL: written to the primary before the answer (db.h) */
    if (!json && app_is_method(req, "POST")) {
        /* a form's POST: back to where it says (a path of ours), else the cart; 303 so that a reload
         * of the next page is a GET, not the POST again */
        char back[256];
        h2o_iovec_t src[2] = {req->entity, query_of(req)};
        const char *to = "/cart";
        for (int k = 0; k < 2; k++) {
            int bl = src[k].base ? shop_query_get(src[k].base, src[k].len, "back", back, sizeof(back)) : -1;
            if (bl > 0 && shop_local_path_ok(back, (size_t)bl)) {
                to = h2o_strdup(&req->pool, back, (size_t)bl).base;
                break;
            }
        }
        app_common_headers(req);
        app_set_hdr(req, H2O_TOKEN_LOCATION, to);
        app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; charset=utf-8");
        app_set_hdr(req, H2O_TOKEN_CACHE_CONTROL, rule && rule->cache_control ? rule->cache_control : "private, no-store");
        req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
        app_send(req, 303, "See Other", H2O_STRLIT("see the cart\n"));
        return;
    }
    struct shop_buf b;
    shop_buf_init(&b, MAX_BODY);
    if (json)
        shop_json_cart(&b, items, &cart, (int)cart.n);
    else
        shop_page_cart(&b, &app.site, items, &cart, (int)cart.n);
    /* no validators on private answers */
    req->res.status = 200;
    req->res.reason = "OK";
    app_common_headers(req);
    app_set_hdr(req, H2O_TOKEN_CONTENT_TYPE, json ? "application/json" : "text/html; charset=utf-8");
    app_set_hdr(req, H2O_TOKEN_CACHE_CONTROL, rule && rule->cache_control ? rule->cache_control : "private, no-store");
    req->compress_hint = H2O_COMPRESS_HINT_DISABLE;
    if (b.failed)
        app_send_error(req, 500, "Internal Server Error", "response too large\n");
    else
        app_send(req, 200, "OK", b.p ? b.p : "", b.len);
    shop_buf_free(&b);
}

/* ---------------- dispatch ---------------- */

/* /img/<id>/<size>.png, .webp and .avif, or /img/<id>/<size> with the format chosen by Accept (the
 * first of AVIF and WebP the client names with a weight above 0, else PNG; Vary: Accept). 0 when
 * answered. */
static int route_image(h2o_req_t *req, const struct shop_rule *rule, const char *p, size_t len)
{
    uint32_t id;
    size_t used;
    if (parse_id(p + 5, len - 5, &id, &used) != 0)
        return -1;
    const char *s = p + 5 + used;
    size_t sl = len - 5 - used;
    if (sl < 2 || s[0] != '/')
        return -1;
    s++, sl--;
    int fmt = -1, negotiated = 0;
    for (int f = 0; f < SHOP_IMG_NFMTS; f++) {
        size_t el = strlen(shop_img_fmt_names[f]);
        if (sl > el + 1 && s[sl - el - 1] == '.' && memcmp(s + sl - el, shop_img_fmt_names[f], el) == 0) {
            fmt = f;
            sl -= el + 1;
            break;
        }
    }
    if (fmt < 0) {
        if (memchr(s, '.', sl) != NULL)
            return -1; /* another extension */
        h2o_iovec_t acc = app_req_header(req, H2O_TOKEN_ACCEPT);
        fmt = shop_accept_q(acc.base, acc.len, "image/avif") > 0   ? SHOP_IMG_AVIF
              : shop_accept_q(acc.base, acc.len, "image/webp") > 0 ? SHOP_IMG_WEBP
                                                                    : SHOP_IMG_PNG;
        negotiated = 1;
    }
    int size = shop_img_size_parse(s, sl);
    if (size < 0)
        return -1;
    on_image(req, rule, id, (enum shop_img_size)size, (enum shop_img_fmt)fmt, negotiated);
    return 0;
}

/* The handler of a path; 0 when answered, -1 for a 404. */
static int route(h2o_req_t *req, const struct shop_rule *rule, enum app_class cls, const char *p, size_t len)
{
    uint32_t id;
    size_t used;
    switch (cls) {
    case C_HOME: on_home(req, rule); return 0;
    case C_HEALTH:
        if (len != 8)
            return -1;
        app_on_health(req);
        return 0;
    case C_METRICS:
        if (len != 8)
            return -1;
        app_on_metrics(req, rule);
        return 0;
    case C_CATEGORY: on_category(req, rule, p + 3, len - 3); return 0;
    case C_PRODUCT:
        if (parse_id(p + 3, len - 3, &id, &used) != 0 || used != len - 3)
            return -1;
        on_product(req, rule, id, 0);
        return 0;
    case C_API:
        if (len <= 14 || memcmp(p, "/api/products/", 14) != 0 || parse_id(p + 14, len - 14, &id, &used) != 0 ||
            used != len - 14)
            return -1;
        on_product(req, rule, id, 1);
        return 0;
    case C_SEARCH:
        if (len == 11 && memcmp(p, "/api/search", 11) == 0)
            on_search(req, rule, 1);
        else if (len == 7 && memcmp(p, "/search", 7) == 0)
            on_search(req, rule, 0);
        else
            return -1;
        return 0;
    case C_ASSET: return on_asset(req, rule, p, len);
    case C_CART:
        if (!(len == 5 && memcmp(p, "/cart", 5) == 0) && !(len == 9 && memcmp(p, "/api/cart", 9) == 0))
            return -1;
        on_cart(req, rule, len == 9);
        return 0;
    case C_IMAGE: return route_image(req, rule, p, len);
    default: return -1;
    }
}

/* Dispatch after any service delay. */
static void serve(h2o_req_t *req)
{
    if (app_db_before(req, serve))
        return; /* PostgreSQL: serve() again once the request's rows are in (db.h) */
    const char *p = req->path_normalized.base;
    size_t len = req->path_normalized.len;
    const struct shop_rule *rule = shop_rules_match(app_rules_now(), p, len);
    enum app_class cls = app_classify(p, len);

    if (cls != C_CART && !app_is_method(req, "GET") && !app_is_method(req, "HEAD")) {
        app_set_hdr(req, H2O_TOKEN_ALLOW, "GET, HEAD");
        app_send_error(req, 405, "Method Not Allowed", "method not allowed\n");
        return;
    }
    if (route(req, rule, cls, p, len) != 0)
        app_send_error(req, 404, "Not Found", "not found\n");
}

/* ---------------- the service delay queue ---------------- */

struct delayed {
    h2o_linklist_t link;
    uint64_t due;
    h2o_req_t *req;
    struct app_worker *w;
};

static void on_delayed_dispose(void *p)
{
    struct delayed *d = p;
    if (h2o_linklist_is_linked(&d->link))
        h2o_linklist_unlink(&d->link); /* the client went away while we waited */
}

static void arm_delay_timer(struct app_worker *w)
{
    if (h2o_linklist_is_empty(&w->delayed)) {
        cdn_timer_stop(w->delay_timer);
        return;
    }
    struct delayed *head = H2O_STRUCT_FROM_MEMBER(struct delayed, link, w->delayed.next);
    uint64_t now = cdn_now_ms();
    cdn_timer_start(w->delay_timer, head->due > now ? head->due - now : 0);
}

static void on_delay_timer(cdn_timer_t *t, void *data)
{
    struct app_worker *w = data;
    uint64_t now = cdn_now_ms();
    (void)t;
    while (!h2o_linklist_is_empty(&w->delayed)) {
        struct delayed *d = H2O_STRUCT_FROM_MEMBER(struct delayed, link, w->delayed.next);
        if (d->due > now)
            break;
        h2o_linklist_unlink(&d->link);
        serve(d->req);
    }
    arm_delay_timer(w);
}

static void park(struct app_worker *w, h2o_req_t *req, uint64_t delay_ms)
{
    struct delayed *d = h2o_mem_alloc_shared(&req->pool, sizeof(*d), on_delayed_dispose);
    memset(d, 0, sizeof(*d));
    d->due = cdn_now_ms() + delay_ms;
    d->req = req;
    d->w = w;
    /* insert sorted, scanning from the tail: equal delays arrive in order */
    h2o_linklist_t *pos = w->delayed.prev;
    while (pos != &w->delayed && H2O_STRUCT_FROM_MEMBER(struct delayed, link, pos)->due > d->due)
        pos = pos->prev;
    h2o_linklist_insert(pos->next, &d->link);
    arm_delay_timer(w);
}

int app_delay_init(struct app_worker *w)
{
    h2o_linklist_init_anchor(&w->delayed);
    w->delay_timer = cdn_timer_new(w->loop, on_delay_timer, w);
    return w->delay_timer != NULL ? 0 : -1;
}

/* ---------------- the request entry ---------------- */

int app_on_req(h2o_handler_t *h, h2o_req_t *req)
{
    struct app_worker *w = app_worker_of(req);
    (void)h;
    cdn_worker_track(req);
    const struct shop_rule *rule = shop_rules_match(app_rules_now(), req->path_normalized.base, req->path_normalized.len);
    enum app_class cls = app_classify(req->path_normalized.base, req->path_normalized.len);
    int ops = cls == C_HEALTH || cls == C_METRICS; /* never slowed down or failed on purpose */
    double rate = rule && rule->error_rate > 0 ? rule->error_rate : app.conf.error_rate;
    uint64_t delay = rule && rule->delay_ms ? rule->delay_ms : app.conf.delay;
    if (!ops && rate > 0 && (shop_rand_next(&w->rng) >> 11) * (1.0 / 9007199254740992.0) < rate) {
        app_send_error(req, 500, "Internal Server Error", "injected error\n");
        return 0;
    }
    /* a key is claimed on arrival: a retry while this one waits out its delay is a 409 */
    if (app_idem_claim(req) == APP_IDEM_ANSWERED)
        return 0;
    if (!ops && delay > 0)
        park(w, req, delay);
    else
        serve(req);
    return 0;
}
