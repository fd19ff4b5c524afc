/* origin/shop/pages.c - the storefront's HTML pages and JSON documents.
 *
 * Pure: catalog rows in, text out (no clock, no I/O), so the same catalog renders the same bytes on
 * every app server. Images are linked on the CDN hostname (site->img_base), pages and the API on
 * the same origin. Every string from the catalog or the request is escaped here. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "origin/shop/shop.h"

#define ADD(b, lit) shop_buf_add((b), (lit), sizeof(lit) - 1)

void shop_buf_init(struct shop_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void shop_buf_free(struct shop_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static int reserve(struct shop_buf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (b->len + more + 1 > b->max) {
        b->failed = 1;
        return -1;
    }
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) {
        b->failed = 1;
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

void shop_buf_add(struct shop_buf *b, const char *s, size_t len)
{
    if (reserve(b, len) != 0)
        return;
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void shop_buf_printf(struct shop_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void shop_buf_html(struct shop_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': ADD(b, "&lt;"); break;
        case '>': ADD(b, "&gt;"); break;
        case '&': ADD(b, "&amp;"); break;
        case '"': ADD(b, "&quot;"); break;
        case '\'': ADD(b, "&#39;"); break;
        default: shop_buf_add(b, s, 1);
        }
    }
}

void shop_buf_json(struct shop_buf *b, const char *s)
{
    ADD(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            shop_buf_add(b, e, 2);
        } else if (ch < 0x20)
            shop_buf_printf(b, "\\u%04x", ch);
        else
            shop_buf_add(b, s, 1);
    }
    ADD(b, "\"");
}

static void price(char *out, size_t cap, uint32_t cents) { snprintf(out, cap, "%u.%02u", cents / 100, cents % 100); }

static void head(struct shop_buf *b, const struct shop_site *s, const char *title)
{
    ADD(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    shop_buf_html(b, title);
    ADD(b, " - Lab Shop</title>\n");
    if (*s->img_base)
        shop_buf_printf(b, "<link rel=\"preconnect\" href=\"%s\">\n", s->img_base);
    shop_buf_printf(b, "<link rel=\"stylesheet\" href=\"%s\">\n<script src=\"%s\" defer></script>\n</head>\n<body>\n",
                    shop_asset_get(SHOP_ASSET_CSS)->path, shop_asset_get(SHOP_ASSET_JS)->path);
    ADD(b, "<header class=\"top\"><a class=\"brand\" href=\"/\">Lab Shop</a>"
           "<form class=\"search\" action=\"/search\" role=\"search\"><input name=\"q\" type=\"search\" "
           "placeholder=\"Search products\" aria-label=\"Search products\"><button>Search</button></form>"
           "<a class=\"cartlink\" href=\"/cart\">Cart<span class=\"count\" id=\"cart-count\"></span></a></header>\n"
           "<main>\n");
}

static void foot(struct shop_buf *b, const struct shop_site *s)
{
    ADD(b, "</main>\n<footer>served by ");
    shop_buf_html(b, s->name ? s->name : "shop-app");
    ADD(b, "</footer>\n</body></html>\n");
}

/* A responsive image: the widths in srcset, the browser picks by sizes and its pixel density; the
 * URLs name no format, so the image server answers WebP or PNG by the Accept of the browser
 * (Vary: Accept). */
static const unsigned srcset_w[] = {160, 320, 640, 1280};

static void picture(struct shop_buf *b, const struct shop_site *s, const struct shop_product *p, unsigned w,
                    unsigned maxw, const char *sizes)
{
    shop_buf_printf(b, "<img src=\"%s/img/%u/%u\" srcset=\"", s->img_base, p->id, w);
    for (size_t i = 0; i < sizeof(srcset_w) / sizeof(srcset_w[0]) && srcset_w[i] <= maxw; i++)
        shop_buf_printf(b, "%s%s/img/%u/%u %uw", i ? ", " : "", s->img_base, p->id, srcset_w[i], srcset_w[i]);
    shop_buf_printf(b, "\" sizes=\"%s\" width=\"%u\" height=\"%u\" alt=\"", sizes, w, w);
    shop_buf_html(b, p->name);
    ADD(b, "\">");
}

static void card(struct shop_buf *b, const struct shop_site *s, const struct shop_product *p)
{
    char pr[32];
    price(pr, sizeof(pr), p->price_cents);
    shop_buf_printf(b, "<li class=\"card\"><a href=\"/p/%u\">", p->id);
    picture(b, s, p, 320, 640, "(max-width: 700px) 45vw, 12rem");
    ADD(b, "<span class=\"name\">");
    shop_buf_html(b, p->name);
    shop_buf_printf(b, "</span><span class=\"price\">$%s</span></a></li>\n", pr);
}

static void grid(struct shop_buf *b, const struct shop_site *s, const struct shop_product *items, int n)
{
    ADD(b, "<ul class=\"grid\">\n");
    for (int i = 0; i < n; i++)
        card(b, s, &items[i]);
    ADD(b, "</ul>\n");
}

/* Products first (what a visitor sees without scrolling), the categories as a compact list after. */
void shop_page_home(struct shop_buf *b, const struct shop_site *s, const struct shop_category *cats, int ncats,
                    const struct shop_product *featured, int nfeatured)
{
    head(b, s, "Home");
    ADD(b, "<h1>Featured products</h1>\n");
    grid(b, s, featured, nfeatured);
    ADD(b, "<h2>Shop by category</h2>\n<ul class=\"cats\">\n");
    for (int i = 0; i < ncats; i++) {
        shop_buf_printf(b, "<li><a href=\"/c/%s\">", cats[i].slug);
        shop_buf_html(b, cats[i].name);
        shop_buf_printf(b, "</a> (%u)</li>\n", cats[i].count);
    }
    ADD(b, "</ul>\n");
    foot(b, s);
}

void shop_page_category(struct shop_buf *b, const struct shop_site *s, const struct shop_category *cat,
                        uint32_t page, const struct shop_product *items, int n)
{
    char title[128];
    uint32_t pages = (cat->count + SHOP_PAGE_SIZE - 1) / SHOP_PAGE_SIZE;
    snprintf(title, sizeof(title), "%s (page %u of %u)", cat->name, page, pages ? pages : 1);
    head(b, s, title);
    ADD(b, "<h1>");
    shop_buf_html(b, title);
    ADD(b, "</h1>\n");
    grid(b, s, items, n);
    ADD(b, "<nav class=\"pager\">");
    if (page > 1)
        shop_buf_printf(b, "<a rel=\"prev\" href=\"/c/%s?page=%u\">previous</a> ", cat->slug, page - 1);
    if (page < pages)
        shop_buf_printf(b, "<a rel=\"next\" href=\"/c/%s?page=%u\">next</a>", cat->slug, page + 1);
    ADD(b, "</nav>\n");
    foot(b, s);
}

void shop_page_product(struct shop_buf *b, const struct shop_site *s, const struct shop_product *p)
{
    char pr[32];
    price(pr, sizeof(pr), p->price_cents);
    head(b, s, p->name);
    shop_buf_printf(b, "<nav class=\"crumbs\"><a href=\"/\">Home</a> / <a href=\"/c/%s\">", p->category_slug);
    shop_buf_html(b, p->category_name);
    ADD(b, "</a></nav>\n<div class=\"product\">\n");
    picture(b, s, p, 640, 1280, "(max-width: 700px) 100vw, 640px");
    ADD(b, "\n");
    ADD(b, "<div><h1>");
    shop_buf_html(b, p->name);
    shop_buf_printf(b, "</h1>\n<p class=\"price\">$%s</p>\n<p>", pr);
    shop_buf_html(b, p->description);
    if (p->stock > 0)
        shop_buf_printf(b, "</p>\n<p>%u in stock</p>\n", p->stock);
    else
        ADD(b, "</p>\n<p>Out of stock</p>\n");
    /* a plain form: works without the script; the answer is a 303 to the cart */
    shop_buf_printf(b, "<form class=\"buy\" method=\"post\" action=\"/cart\"><input type=\"hidden\" name=\"add\" value=\"%u\">"
                       "<button>Add to cart</button></form>\n</div>\n</div>\n", p->id);
    foot(b, s);
}

void shop_page_cart(struct shop_buf *b, const struct shop_site *s, const struct shop_product *items,
                    const struct shop_cart *cart, int n)
{
    uint64_t total = 0;
    int shown = 0;
    head(b, s, "Your cart");
    ADD(b, "<h1>Your cart</h1>\n");
    for (int i = 0; i < n; i++) {
        if (items[i].id == 0)
            continue;
        if (shown++ == 0)
            ADD(b, "<table class=\"cart\">\n<tr><th>Product</th><th>Quantity</th><th>Price</th><th></th></tr>\n");
        char pr[32];
        price(pr, sizeof(pr), items[i].price_cents);
        shop_buf_printf(b, "<tr class=\"item\"><td><a href=\"/p/%u\">", items[i].id);
        shop_buf_html(b, items[i].name);
        shop_buf_printf(b, "</a></td><td class=\"qty\">%u</td><td>$%s</td>"
                           "<td><form method=\"post\" action=\"/cart\"><input type=\"hidden\" name=\"remove\" value=\"%u\">"
                           "<button>Remove</button></form></td></tr>\n",
                        cart->items[i].qty, pr, items[i].id);
        total += (uint64_t)items[i].price_cents * cart->items[i].qty;
    }
    if (shown)
        ADD(b, "</table>\n");
    else
        ADD(b, "<p>Your cart is empty.</p>\n");
    shop_buf_printf(b, "<p>Total: <span class=\"price\">$%llu.%02u</span></p>\n", (unsigned long long)(total / 100),
                    (unsigned)(total % 100));
    foot(b, s);
}

void shop_page_search(struct shop_buf *b, const struct shop_site *s, const char *q, const struct shop_product *items,
                      int n)
{
    head(b, s, *q ? q : "Search");
    if (*q) {
        ADD(b, "<h1>Results for &ldquo;");
        shop_buf_html(b, q);
        shop_buf_printf(b, "&rdquo; (%d)</h1>\n", n);
        if (n > 0)
            grid(b, s, items, n);
        else
            ADD(b, "<p>Nothing found. Try another word.</p>\n");
    } else
        ADD(b, "<h1>Search</h1>\n<p>Type a word in the box above.</p>\n");
    foot(b, s);
}

static void json_product_fields(struct shop_buf *b, const struct shop_site *s, const struct shop_product *p)
{
    char pr[32];
    price(pr, sizeof(pr), p->price_cents);
    shop_buf_printf(b, "{\"id\":%u,\"name\":", p->id);
    shop_buf_json(b, p->name);
    shop_buf_printf(b, ",\"price\":\"%s\",\"price_cents\":%u,\"stock\":%u,\"url\":\"/p/%u\",\"thumb\":\"%s/img/%u/thumb.png\"",
                    pr, p->price_cents, p->stock, p->id, s->img_base, p->id);
}

void shop_json_product(struct shop_buf *b, const struct shop_site *s, const struct shop_product *p)
{
    json_product_fields(b, s, p);
    shop_buf_printf(b, ",\"category\":{\"id\":%u,\"slug\":", p->category_id);
    shop_buf_json(b, p->category_slug);
    ADD(b, ",\"name\":");
    shop_buf_json(b, p->category_name);
    ADD(b, "},\"description\":");
    shop_buf_json(b, p->description);
    shop_buf_printf(b, ",\"images\":{\"thumb\":\"%s/img/%u/thumb.png\",\"medium\":\"%s/img/%u/medium.png\","
                       "\"large\":\"%s/img/%u/large.png\"},\"updated_at\":%lld}\n",
                    s->img_base, p->id, s->img_base, p->id, s->img_base, p->id, (long long)p->updated_at);
}

void shop_json_search(struct shop_buf *b, const struct shop_site *s, const char *q, const struct shop_product *items,
                      int n)
{
    ADD(b, "{\"q\":");
    shop_buf_json(b, q);
    shop_buf_printf(b, ",\"count\":%d,\"results\":[", n);
    for (int i = 0; i < n; i++) {
        if (i)
            ADD(b, ",");
        json_product_fields(b, s, &items[i]);
        ADD(b, "}");
    }
    ADD(b, "]}\n");
}

void shop_json_cart(struct shop_buf *b, const struct shop_product *items, const struct shop_cart *cart, int n)
{
    uint64_t total = 0;
    int first = 1;
    ADD(b, "{\"items\":[");
    for (int i = 0; i < n; i++) {
        if (items[i].id == 0)
            continue;
        shop_buf_printf(b, "%s{\"id\":%u,\"qty\":%u,\"name\":", first ? "" : ",", items[i].id, cart->items[i].qty);
        shop_buf_json(b, items[i].name);
        shop_buf_printf(b, ",\"price_cents\":%u}", items[i].price_cents);
        total += (uint64_t)items[i].price_cents * cart->items[i].qty;
        first = 0;
    }
    shop_buf_printf(b, "],\"total_cents\":%llu}\n", (unsigned long long)total);
}
