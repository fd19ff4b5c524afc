/* origin/shop/shop.h - internals of shop-app shared by its source files and unit tests (shop-lb
 * also takes shop_hash64, shop_buf and shop_query_get from here).
 *
 * Pure parts (no loop, no I/O) live in: http.c (parsers of untrusted header values: Range,
 * If-None-Match, HTTP dates, cookies, query strings), rules.c (caching headers per path prefix),
 * pages.c (HTML and JSON). catalog.c owns the SQLite catalog (generate + read-only queries),
 * images.c the PNG renderer and the bounded image cache. The server itself is app.h and the
 * files it names. */
#ifndef SHOP_H
#define SHOP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---------------- http.c: parsers of request header values (untrusted input) ---------------- */

/* Range against a representation of `size` bytes (RFC 9110 14.2). */
enum shop_range_result {
    SHOP_RANGE_NONE,   /* no usable Range (absent, malformed, not "bytes", several ranges): 200 full */
    SHOP_RANGE_OK,     /* one satisfiable range: 206 with [*first, *last] (inclusive) */
    SHOP_RANGE_UNSAT,  /* syntactically valid, nothing satisfiable: 416 */
};
enum shop_range_result shop_range_parse(const char *v, size_t len, uint64_t size, uint64_t *first,
                                        uint64_t *last);

/* If-None-Match (weak comparison, lists, "*") against our entity tag (quoted, maybe W/).
 * 1 = matches (answer 304), 0 = does not. */
int shop_etag_match_weak(const char *v, size_t len, const char *etag, size_t etag_len);
/* If-Range / If-Match style strong comparison of a single tag: 1 when equal and both strong. */
int shop_etag_match_strong(const char *v, size_t len, const char *etag, size_t etag_len);

/* HTTP-date (IMF-fixdate, RFC 850 and asctime forms) -> time_t. 0 or -1 if malformed. */
int shop_http_date_parse(const char *v, size_t len, time_t *out);
/* IMF-fixdate, 29 chars + NUL. */
void shop_http_date_format(time_t t, char buf[30]);

/* Cookie header: the value of cookie `name` (first occurrence), copied into out (NUL-terminated).
 * Returns its length, or -1 when absent or longer than cap-1. */
int shop_cookie_get(const char *v, size_t len, const char *name, char *out, size_t cap);
/* Query string "a=1&q=red+shoe": the percent-decoded value of `name`, as shop_cookie_get. */
int shop_query_get(const char *q, size_t len, const char *name, char *out, size_t cap);

/* A form's "back" field: 1 when it is a path on this site that a redirect may name (one "/"
 * first, not "//" or "/\\", visible ASCII only, at most 255 bytes), else 0. */
int shop_local_path_ok(const char *v, size_t len);

/* Accept (RFC 9110 12.5.1): the q-value (0..1000) that the field gives the media type `type`
 * ("image/webp") by name, exactly (wildcards do not count: a browser that decodes WebP names
 * it); -1 when the field does not name it. Malformed members are skipped. */
int shop_accept_q(const char *v, size_t len, const char *type);

/* The cart lives in a cookie "cart=ID:QTY.ID:QTY..." (so any app server behind the LB sees it). */
#define SHOP_CART_MAX 32
struct shop_cart_item {
    uint32_t id;
    uint32_t qty;
};
struct shop_cart {
    size_t n;
    struct shop_cart_item items[SHOP_CART_MAX];
};
/* Parses a cart cookie value; malformed items are dropped. Returns the number of items. */
size_t shop_cart_parse(const char *v, size_t len, struct shop_cart *cart);
/* qty 0 removes; returns -1 when the cart is full. */
int shop_cart_set(struct shop_cart *cart, uint32_t id, uint32_t qty);
/* Serialises; returns the length (like snprintf). */
size_t shop_cart_format(const struct shop_cart *cart, char *buf, size_t cap);

/* 64-bit FNV-1a (image ETags, hash ring keys). */
uint64_t shop_hash64(const void *data, size_t len);
uint64_t shop_hash64_str(const char *s);
/* A small deterministic PRNG (splitmix64). */
static inline uint64_t shop_rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* Uniform in [0, n). */
static inline uint32_t shop_rand_below(uint64_t *state, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(shop_rand_next(state) % n);
}

/* ---------------- rules.c: response header rules by path prefix ---------------- */

struct shop_rule {
    const char *prefix;        /* longest matching prefix wins; "/" catches everything */
    const char *cache_control; /* NULL: none */
    const char *vary;          /* NULL: none (Accept-Encoding is added for gzip-able text anyway) */
    const char *surrogate_control;
    uint64_t delay_ms;         /* service delay for requests under this prefix */
    double error_rate;         /* 0..1: fraction answered 500 */
    int gzip;                  /* 1: text may be gzipped (default), 0: never */
};

struct shop_rules {
    struct shop_rule *rules;   /* sorted by descending prefix length */
    size_t n;
    const char *error_cache_control;      /* 4xx (short-lived) */
    const char *server_error_cache_control; /* 5xx */
};

/* The built-in rules (one per class of response: images, products, categories, search, cart,
 * health, metrics, the rest; see origin/rules.c). Static storage. */
const struct shop_rules *shop_rules_default(void);
/* Sorts rules in place (longest prefix first). */
void shop_rules_sort(struct shop_rules *r);
/* The rule for a path (never NULL when the set has a "/" rule; else may be NULL). */
const struct shop_rule *shop_rules_match(const struct shop_rules *r, const char *path, size_t len);

/* ---------------- catalog.c: the SQLite catalog ---------------- */

#define SHOP_DEFAULT_PRODUCTS 10000
#define SHOP_DEFAULT_SEED 1
#define SHOP_NUM_CATEGORIES 50

struct shop_product {
    uint32_t id;
    uint32_t category_id;
    char name[128];
    char category_slug[64];
    char category_name[64];
    uint32_t price_cents;
    uint32_t stock;
    int64_t updated_at;        /* Last-Modified of the product's page and images */
    char description[1024];
};

struct shop_category {
    uint32_t id;
    char slug[64];
    char name[64];
    uint32_t count;
};

typedef struct shop_catalog shop_catalog_t;

/* Writes the catalog to path (atomically: a temp file renamed). Same (n, seed) -> same bytes.
 * 0 or -1 with err set. */
int shop_catalog_generate(const char *path, uint32_t nproducts, uint64_t seed, char *err, size_t errlen);
/* Opens read-only (one per thread). NULL with err set. */
shop_catalog_t *shop_catalog_open(const char *path, char *err, size_t errlen);
void shop_catalog_close(shop_catalog_t *c);
uint32_t shop_catalog_count(shop_catalog_t *c);
int64_t shop_catalog_generated_at(shop_catalog_t *c);
int shop_catalog_has_fts(shop_catalog_t *c);
/* 1 found, 0 not found, -1 error. */
int shop_catalog_product(shop_catalog_t *c, uint32_t id, struct shop_product *p);
int shop_catalog_category_by_slug(shop_catalog_t *c, const char *slug, struct shop_category *cat);
int shop_catalog_category_by_id(shop_catalog_t *c, uint32_t id, struct shop_category *cat);
/* All categories, up to cap; returns how many. */
int shop_catalog_categories(shop_catalog_t *c, struct shop_category *out, int cap);
/* Products of a category ordered by id, `limit` from `offset`; returns how many (or -1). */
int shop_catalog_list(shop_catalog_t *c, uint32_t category_id, uint32_t offset, uint32_t limit,
                      struct shop_product *out);
/* Search (FTS5 when present, else LIKE), up to limit results; returns how many (or -1). */
int shop_catalog_search(shop_catalog_t *c, const char *q, uint32_t limit, struct shop_product *out);
/* A digest of the catalog's content (for tests: same seed -> same digest). */
uint64_t shop_catalog_digest(shop_catalog_t *c);
/* A catalog answered by someone else (shop-app's PostgreSQL view, origin/shop/db.h): the query
 * functions above call these with data; count and date are fixed. NULL when out of memory. */
struct shop_catalog_ops {
    int (*product)(void *data, uint32_t id, struct shop_product *p);
    int (*category_by_slug)(void *data, const char *slug, struct shop_category *cat);
    int (*category_by_id)(void *data, uint32_t id, struct shop_category *cat);
    int (*categories)(void *data, struct shop_category *out, int cap);
    int (*list)(void *data, uint32_t category_id, uint32_t offset, uint32_t limit, struct shop_product *out);
    int (*search)(void *data, const char *q, uint32_t limit, struct shop_product *out);
};
shop_catalog_t *shop_catalog_wrap(const struct shop_catalog_ops *ops, void *data, uint32_t count, int64_t generated_at);

/* ---------------- image.c: deterministic product images ---------------- */

/* Sizes by width (square pictures), in increasing order. thumb/medium/large are the first URLs'
 * names (/img/42/medium.png); the numbered ones are the srcset widths. */
enum shop_img_size { SHOP_IMG_THUMB, SHOP_IMG_W160, SHOP_IMG_W320, SHOP_IMG_MEDIUM, SHOP_IMG_W640, SHOP_IMG_LARGE,
                     SHOP_IMG_W1280, SHOP_IMG_NSIZES };
extern const char *const shop_img_size_names[SHOP_IMG_NSIZES];
extern const unsigned shop_img_size_px[SHOP_IMG_NSIZES];
/* "thumb"/"medium"/"large"/"160"/"320"/"640"/"1280" -> size, -1 if unknown. */
int shop_img_size_parse(const char *s, size_t len);

enum shop_img_fmt { SHOP_IMG_PNG, SHOP_IMG_WEBP, SHOP_IMG_AVIF, SHOP_IMG_NFMTS };
extern const char *const shop_img_fmt_names[SHOP_IMG_NFMTS]; /* "png", "webp", "avif": the URL's extension */
extern const char *const shop_img_fmt_mime[SHOP_IMG_NFMTS];  /* "image/png", "image/webp", "image/avif" */

/* Renders (product id, size) in a format: malloc'd bytes in *out. 0 or -1. The same picture in
 * every size and format; PNG with fixed libpng settings, WebP lossy (quality 80, method 2,
 * single-threaded), AVIF (libavif with libaom, speed 10, quantizers 20-40, YUV 4:2:0, one
 * thread): the same bytes on every app server. */
int shop_image_render(uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt, uint8_t **out, size_t *outlen);

/* A rendered image shared by the cache and the responses sending it (refcounted). */
struct shop_image {
    uint32_t id;
    enum shop_img_size size;
    enum shop_img_fmt fmt;
    uint8_t *data;
    size_t len;
    char etag[24];              /* "\"<16 hex>\"" */
    int refcnt;                 /* atomic */
    struct shop_image *lru_prev, *lru_next, *hash_next;
};
typedef struct shop_imgcache shop_imgcache_t;
/* Thread-safe, bounded by bytes (evicts least recently used). */
shop_imgcache_t *shop_imgcache_new(size_t max_bytes);
void shop_imgcache_free(shop_imgcache_t *c);
/* A referenced image (render on miss); release with shop_image_release. NULL on render failure.
 * *hit tells whether it came from the cache. */
struct shop_image *shop_imgcache_get(shop_imgcache_t *c, uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt,
                                     int *hit);
void shop_image_release(struct shop_image *img);
/* A referenced image if cached (never renders), else NULL. */
struct shop_image *shop_imgcache_lookup(shop_imgcache_t *c, uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt);
size_t shop_imgcache_bytes(shop_imgcache_t *c);
size_t shop_imgcache_count(shop_imgcache_t *c);

/* ---------------- pages.c: HTML and JSON bodies (pure: data in, text out) ---------------- */

/* A growable text buffer with a hard cap; on overflow or out of memory it sets failed and stops. */
struct shop_buf {
    char *p;
    size_t len, cap, max;
    int failed;
};
void shop_buf_init(struct shop_buf *b, size_t max);
void shop_buf_free(struct shop_buf *b);
void shop_buf_add(struct shop_buf *b, const char *s, size_t len);
void shop_buf_printf(struct shop_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void shop_buf_html(struct shop_buf *b, const char *s);  /* HTML-escaped */
void shop_buf_json(struct shop_buf *b, const char *s);  /* a JSON string, quotes included */

#define SHOP_PAGE_SIZE 24

struct shop_site {
    const char *img_base;      /* "https://img.shop.test" or "" for same-origin */
    const char *name;          /* app instance name, shown in the footer */
};

/* ---------------- assets.c: the stylesheet and the script, under content-hashed names ---------------- */

enum shop_asset_kind { SHOP_ASSET_CSS, SHOP_ASSET_JS, SHOP_NASSETS };
struct shop_asset {
    const char *path;          /* "/assets/shop.<16 hex of the bytes>.css" */
    const char *ctype;
    const char *body;
    size_t len;
};
const struct shop_asset *shop_asset_get(enum shop_asset_kind k);
/* The asset served at path, or NULL (another hash is another, unknown, name: 404). */
const struct shop_asset *shop_asset_find(const char *path, size_t len);

void shop_page_home(struct shop_buf *b, const struct shop_site *s, const struct shop_category *cats, int ncats,
                    const struct shop_product *featured, int nfeatured);
void shop_page_category(struct shop_buf *b, const struct shop_site *s, const struct shop_category *cat,
                        uint32_t page, const struct shop_product *items, int n);
void shop_page_product(struct shop_buf *b, const struct shop_site *s, const struct shop_product *p);
void shop_page_cart(struct shop_buf *b, const struct shop_site *s, const struct shop_product *items,
                    const struct shop_cart *cart, int n);
/* Search results as a page (q may be empty: the form alone). */
void shop_page_search(struct shop_buf *b, const struct shop_site *s, const char *q, const struct shop_product *items,
                      int n);
void shop_json_product(struct shop_buf *b, const struct shop_site *s, const struct shop_product *p);
void shop_json_search(struct shop_buf *b, const struct shop_site *s, const char *q, const struct shop_product *items,
                      int n);
void shop_json_cart(struct shop_buf *b, const struct shop_product *items, const struct shop_cart *cart, int n);

#endif
