/* origin/shop/rules.c - which caching headers a response gets, by the longest matching path prefix.
 *
 * The defaults are what a real shop chooses for each class of response: images immutable for a
 * day, product pages and category listings cacheable at the edge for longer than in browsers
 * (s-maxage), search and HTML varying on Accept-Encoding, the cart private and never stored; the
 * YAML config replaces the whole set (`headers:`), and SIGHUP reloads it. Pure: no I/O. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include "origin/shop/shop.h"

#define PRODUCT_CC "public, max-age=60, s-maxage=300, stale-while-revalidate=30, stale-if-error=600"

static struct shop_rule default_rules[] = {
    {"/img/", "public, max-age=86400, immutable", NULL, NULL, 0, 0, 1},
    {"/p/", PRODUCT_CC, NULL, NULL, 0, 0, 1},
    {"/api/products/", PRODUCT_CC, NULL, NULL, 0, 0, 1},
    {"/c/", "public, max-age=30, s-maxage=120", "Accept-Encoding", NULL, 0, 0, 1},
    {"/assets/", "public, max-age=31536000, immutable", NULL, NULL, 0, 0, 1}, /* content-hashed names */
    {"/search", "public, max-age=30, s-maxage=60", "Accept-Encoding", NULL, 0, 0, 1},
    {"/api/search", "public, max-age=30, s-maxage=60", "Accept-Encoding", NULL, 0, 0, 1},
    {"/api/cart", "private, no-store", NULL, NULL, 0, 0, 1},
    {"/cart", "private, no-store", NULL, NULL, 0, 0, 1},
    {"/healthz", "no-store", NULL, NULL, 0, 0, 0},
    {"/metrics", "no-store", NULL, NULL, 0, 0, 1},
    {"/", "public, max-age=30, s-maxage=60", "Accept-Encoding", NULL, 0, 0, 1},
};

static struct shop_rules defaults = {
    default_rules, sizeof(default_rules) / sizeof(default_rules[0]),
    "public, max-age=10", /* 404s: short-lived, so a new product shows up soon */
    "no-store",           /* 5xx: never keep a failure */
};

const struct shop_rules *shop_rules_default(void) { return &defaults; }

static int by_len_desc(const void *a, const void *b)
{
    size_t la = strlen(((const struct shop_rule *)a)->prefix);
    size_t lb = strlen(((const struct shop_rule *)b)->prefix);
    return la < lb ? 1 : la > lb ? -1 : strcmp(((const struct shop_rule *)a)->prefix, ((const struct shop_rule *)b)->prefix);
}

void shop_rules_sort(struct shop_rules *r)
{
    if (r->n > 1)
        qsort(r->rules, r->n, sizeof(r->rules[0]), by_len_desc);
}

const struct shop_rule *shop_rules_match(const struct shop_rules *r, const char *path, size_t len)
{
    /* the longest match, whatever the order (sorted sets just find it sooner) */
    const struct shop_rule *best = NULL;
    size_t bestlen = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t pl = strlen(r->rules[i].prefix);
        if (pl <= len && memcmp(path, r->rules[i].prefix, pl) == 0 && (best == NULL || pl > bestlen)) {
            best = &r->rules[i];
            bestlen = pl;
        }
    }
    return best;
}
