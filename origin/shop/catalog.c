/* origin/shop/catalog.c - the shop's catalog in SQLite: generated deterministically from (size, seed),
 * then opened read-only by every app server (one connection per thread).
 *
 * Determinism: the content comes only from a splitmix64 stream seeded with the seed, rows are
 * inserted in id order in one transaction with fixed pragmas, and nothing reads the clock, so the
 * same (n, seed) with the same SQLite gives the same file bytes (tests/unit/t_shop_catalog.c).
 * The file is written under a temporary name and renamed, so an app that finds it sees it whole.
 *
 * Queries run on the loop's thread: they are point lookups and short range scans on a read-only
 * file that the page cache holds, microseconds each. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "origin/shop/shop.h"

struct shop_catalog {
    const struct shop_catalog_ops *ops; /* set: a view answered by ops (shop_catalog_wrap), no SQLite */
    void *ops_data;
    sqlite3 *db;
    sqlite3_stmt *st_product, *st_cat_slug, *st_cat_id, *st_cats, *st_list, *st_search;
    int has_fts;
    uint32_t count;
    int64_t generated_at;
};

static const char *const cat_names[SHOP_NUM_CATEGORIES] = {
    "Kitchen", "Garden", "Books", "Music", "Movies", "Toys", "Games", "Sports", "Outdoor", "Camping",
    "Cycling", "Running", "Fitness", "Shoes", "Bags", "Watches", "Jewelry", "Beauty", "Health", "Baby",
    "Pets", "Office", "Stationery", "Art Supplies", "Crafts", "Lighting", "Furniture", "Bedding", "Bath", "Decor",
    "Tools", "Hardware", "Paint", "Electrical", "Plumbing", "Automotive", "Phones", "Laptops", "Tablets", "Cameras",
    "Audio", "Television", "Networking", "Storage", "Printers", "Coffee", "Tea", "Snacks", "Pantry", "Gifts"};

static const char *const adjectives[] = {
    "Classic", "Modern", "Compact", "Deluxe", "Rustic", "Sleek", "Vintage", "Portable", "Heavy-Duty", "Eco",
    "Premium", "Essential", "Smart", "Ultra", "Cozy", "Bold", "Minimal", "Handmade", "Nordic", "Urban",
    "Travel", "Pro", "Mini", "Grand", "Silent", "Rapid", "Gentle", "Bright", "Everyday", "Signature"};
static const char *const materials[] = {
    "Oak", "Steel", "Bamboo", "Linen", "Cotton", "Leather", "Ceramic", "Glass", "Copper", "Walnut",
    "Wool", "Carbon", "Titanium", "Marble", "Canvas", "Silicone", "Aluminium", "Cork", "Slate", "Denim"};
static const char *const nouns[] = {
    "Lamp", "Chair", "Mug", "Backpack", "Kettle", "Speaker", "Notebook", "Jacket", "Bottle", "Blanket",
    "Clock", "Headphones", "Planter", "Knife", "Pan", "Tent", "Helmet", "Charger", "Frame", "Vase",
    "Stool", "Wallet", "Scarf", "Grinder", "Tripod", "Keyboard", "Rack", "Basket", "Candle", "Cushion"};
static const char *const phrases[] = {
    "Built to last for years of daily use.",
    "Designed in small batches by people who care.",
    "A customer favourite since the day it launched.",
    "Easy to clean and simple to store.",
    "Looks as good on the shelf as it works in the hand.",
    "Tested in the lab and in the field.",
    "Ships in recyclable packaging.",
    "Backed by a two-year warranty.",
    "Pairs well with the rest of the collection.",
    "Light enough to take anywhere.",
    "Quiet, efficient and made to be repaired.",
    "A thoughtful gift for almost anyone.",
    "Finished by hand, so no two are quite alike.",
    "Our most popular size, now in new colours.",
    "Precision made with tight tolerances.",
    "Comfortable from the very first day."};

#define N(a) (sizeof(a) / sizeof((a)[0]))
/* A fixed epoch for Last-Modified: the seed moves it, the clock never does. */
#define BASE_TIME INT64_C(1700000000)

static void slugify(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 1 < cap; in++) {
        char ch = *in;
        if (ch >= 'A' && ch <= 'Z')
            out[o++] = (char)(ch - 'A' + 'a');
        else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
            out[o++] = ch;
        else if (o > 0 && out[o - 1] != '-')
            out[o++] = '-';
    }
    out[o] = '\0';
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s (in: %.60s)", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int shop_catalog_generate(const char *path, uint32_t nproducts, uint64_t seed, char *err, size_t errlen)
{
    char tmp[4096];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (nproducts == 0 || nproducts > 10000000) {
        snprintf(err, errlen, "product count must be 1..10000000");
        return -1;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp)) {
        snprintf(err, errlen, "path too long");
        return -1;
    }
    unlink(tmp);
    if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", tmp, db ? sqlite3_errmsg(db) : "cannot open");
        goto out;
    }
    int fts = sqlite3_compileoption_used("ENABLE_FTS5");
    if (exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;", err, errlen) ||
        exec(db, "BEGIN;"
                 "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                 "CREATE TABLE categories(id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL);"
                 "CREATE TABLE products(id INTEGER PRIMARY KEY, category_id INTEGER NOT NULL, name TEXT NOT NULL,"
                 " price_cents INTEGER NOT NULL, stock INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
                 " description TEXT NOT NULL);"
                 "CREATE INDEX products_by_category ON products(category_id, id);",
             err, errlen))
        goto out;
    if (fts && exec(db, "CREATE VIRTUAL TABLE products_fts USING fts5(name, description, content='products',"
                        " content_rowid='id');", err, errlen))
        goto out;

    uint64_t rng = seed ^ 0x5eed5eed5eedULL;
    int64_t generated_at = BASE_TIME + (int64_t)(seed % 1000) * 86400;
    if (sqlite3_prepare_v2(db, "INSERT INTO categories VALUES(?,?,?)", -1, &st, NULL) != SQLITE_OK)
        goto sqlerr;
    for (int i = 0; i < SHOP_NUM_CATEGORIES; i++) {
        char slug[64];
        slugify(cat_names[i], slug, sizeof(slug));
        sqlite3_bind_int(st, 1, i + 1);
        sqlite3_bind_text(st, 2, slug, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, cat_names[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto sqlerr;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(db, "INSERT INTO products VALUES(?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
        goto sqlerr;
    for (uint32_t id = 1; id <= nproducts; id++) {
        char name[128], desc[1024];
        /* popular categories get more products (a skew like a real shop's) */
        uint32_t r = shop_rand_below(&rng, SHOP_NUM_CATEGORIES * (SHOP_NUM_CATEGORIES + 1) / 2);
        uint32_t cat = 0;
        for (uint32_t acc = SHOP_NUM_CATEGORIES; r >= acc && cat + 1 < SHOP_NUM_CATEGORIES; acc += SHOP_NUM_CATEGORIES - cat)
            cat++;
        const char *a = adjectives[shop_rand_below(&rng, N(adjectives))];
        const char *m = materials[shop_rand_below(&rng, N(materials))];
        const char *n = nouns[shop_rand_below(&rng, N(nouns))];
        snprintf(name, sizeof(name), "%s %s %s %u", a, m, n, id);
        int o = snprintf(desc, sizeof(desc), "The %s %s %s from our %s range.", a, m, n, cat_names[cat]);
        /* distinct phrases: a partial shuffle of their indexes (no sentence twice in one text) */
        uint8_t pick[N(phrases)];
        for (uint8_t i = 0; i < N(phrases); i++)
            pick[i] = i;
        int sentences = 2 + (int)shop_rand_below(&rng, 5);
        for (int s = 0; s < sentences && (size_t)s < N(phrases) && o < (int)sizeof(desc) - 80; s++) {
            uint32_t j = (uint32_t)s + shop_rand_below(&rng, (uint32_t)(N(phrases) - (size_t)s));
            uint8_t t = pick[s];
            pick[s] = pick[j], pick[j] = t;
            o += snprintf(desc + o, sizeof(desc) - (size_t)o, " %s", phrases[pick[s]]);
        }
        uint32_t price = 199 + shop_rand_below(&rng, 50000);
        price = price / 100 * 100 + 99; /* shop prices end in .99 */
        uint32_t stock = shop_rand_below(&rng, 10) == 0 ? 0 : shop_rand_below(&rng, 500);
        int64_t updated = generated_at - (int64_t)shop_rand_below(&rng, 365 * 86400);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, cat + 1);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, price);
        sqlite3_bind_int64(st, 5, stock);
        sqlite3_bind_int64(st, 6, updated);
        sqlite3_bind_text(st, 7, desc, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto sqlerr;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (fts && exec(db, "INSERT INTO products_fts(products_fts) VALUES('rebuild');", err, errlen))
        goto out;
    char meta[512];
    snprintf(meta, sizeof(meta),
             "INSERT INTO meta VALUES('count','%u'),('seed','%llu'),('generated_at','%lld'),('fts','%d');"
             "COMMIT;",
             nproducts, (unsigned long long)seed, (long long)generated_at, fts ? 1 : 0);
    if (exec(db, meta, err, errlen))
        goto out;
    if (sqlite3_close(db) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite close: %s", sqlite3_errmsg(db));
        db = NULL;
        goto out;
    }
    db = NULL;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename %s -> %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;
sqlerr:
    snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(db));
out:
    if (st != NULL)
        sqlite3_finalize(st);
    if (db != NULL)
        sqlite3_close(db);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int prep(shop_catalog_t *c, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(c->db));
        return -1;
    }
    return 0;
}

#define PRODUCT_COLS "p.id, p.category_id, p.name, p.price_cents, p.stock, p.updated_at, p.description, c.slug, c.name"

shop_catalog_t *shop_catalog_open(const char *path, char *err, size_t errlen)
{
    shop_catalog_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, c->db ? sqlite3_errmsg(c->db) : "cannot open");
        goto fail;
    }
    sqlite3_stmt *st;
    if (prep(c, "SELECT key, value FROM meta", &st, err, errlen))
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "count") == 0)
            c->count = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "generated_at") == 0)
            c->generated_at = strtoll(v, NULL, 10);
        else if (strcmp(k, "fts") == 0)
            c->has_fts = atoi(v) && sqlite3_compileoption_used("ENABLE_FTS5");
    }
    sqlite3_finalize(st);
    if (c->count == 0) {
        snprintf(err, errlen, "%s: not a shop catalog (no products)", path);
        goto fail;
    }
    if (prep(c, "SELECT " PRODUCT_COLS " FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = ?",
             &c->st_product, err, errlen) ||
        prep(c, "SELECT c.id, c.slug, c.name, (SELECT count(*) FROM products p WHERE p.category_id = c.id)"
                " FROM categories c WHERE c.slug = ?", &c->st_cat_slug, err, errlen) ||
        prep(c, "SELECT c.id, c.slug, c.name, (SELECT count(*) FROM products p WHERE p.category_id = c.id)"
                " FROM categories c WHERE c.id = ?", &c->st_cat_id, err, errlen) ||
        prep(c, "SELECT c.id, c.slug, c.name, (SELECT count(*) FROM products p WHERE p.category_id = c.id)"
                " FROM categories c ORDER BY c.id", &c->st_cats, err, errlen) ||
        prep(c, "SELECT " PRODUCT_COLS " FROM products p JOIN categories c ON c.id = p.category_id"
                " WHERE p.category_id = ? ORDER BY p.id LIMIT ? OFFSET ?", &c->st_list, err, errlen))
        goto fail;
    if (c->has_fts) {
        if (prep(c, "SELECT " PRODUCT_COLS " FROM products_fts f JOIN products p ON p.id = f.rowid"
                    " JOIN categories c ON c.id = p.category_id WHERE products_fts MATCH ? ORDER BY rank LIMIT ?",
                 &c->st_search, err, errlen))
            goto fail;
    } else if (prep(c, "SELECT " PRODUCT_COLS " FROM products p JOIN categories c ON c.id = p.category_id"
                       " WHERE p.name LIKE ? ESCAPE '\\' ORDER BY p.id LIMIT ?", &c->st_search, err, errlen))
        goto fail;
    return c;
fail:
    shop_catalog_close(c);
    return NULL;
}

shop_catalog_t *shop_catalog_wrap(const struct shop_catalog_ops *ops, void *data, uint32_t count, int64_t generated_at)
{
    shop_catalog_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ops = ops;
    c->ops_data = data;
    c->count = count;
    c->generated_at = generated_at;
    c->has_fts = 1;
    return c;
}

void shop_catalog_close(shop_catalog_t *c)
{
    if (c == NULL)
        return;
    sqlite3_finalize(c->st_product);
    sqlite3_finalize(c->st_cat_slug);
    sqlite3_finalize(c->st_cat_id);
    sqlite3_finalize(c->st_cats);
    sqlite3_finalize(c->st_list);
    sqlite3_finalize(c->st_search);
    sqlite3_close(c->db);
    free(c);
}

uint32_t shop_catalog_count(shop_catalog_t *c) { return c->count; }
int64_t shop_catalog_generated_at(shop_catalog_t *c) { return c->generated_at; }
int shop_catalog_has_fts(shop_catalog_t *c) { return c->has_fts; }

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", s ? s : "");
}

static void row_product(sqlite3_stmt *st, struct shop_product *p)
{
    p->id = (uint32_t)sqlite3_column_int64(st, 0);
    p->category_id = (uint32_t)sqlite3_column_int64(st, 1);
    copy_col(st, 2, p->name, sizeof(p->name));
    p->price_cents = (uint32_t)sqlite3_column_int64(st, 3);
    p->stock = (uint32_t)sqlite3_column_int64(st, 4);
    p->updated_at = sqlite3_column_int64(st, 5);
    copy_col(st, 6, p->description, sizeof(p->description));
    copy_col(st, 7, p->category_slug, sizeof(p->category_slug));
    copy_col(st, 8, p->category_name, sizeof(p->category_name));
}

static void row_category(sqlite3_stmt *st, struct shop_category *cat)
{
    cat->id = (uint32_t)sqlite3_column_int64(st, 0);
    copy_col(st, 1, cat->slug, sizeof(cat->slug));
    copy_col(st, 2, cat->name, sizeof(cat->name));
    cat->count = (uint32_t)sqlite3_column_int64(st, 3);
}

int shop_catalog_product(shop_catalog_t *c, uint32_t id, struct shop_product *p)
{
    if (c->ops)
        return c->ops->product(c->ops_data, id, p);
    sqlite3_stmt *st = c->st_product;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        row_product(st, p);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int one_category(sqlite3_stmt *st, struct shop_category *cat)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        row_category(st, cat);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int shop_catalog_category_by_slug(shop_catalog_t *c, const char *slug, struct shop_category *cat)
{
    if (c->ops)
        return c->ops->category_by_slug(c->ops_data, slug, cat);
    sqlite3_bind_text(c->st_cat_slug, 1, slug, -1, SQLITE_TRANSIENT);
    return one_category(c->st_cat_slug, cat);
}

int shop_catalog_category_by_id(shop_catalog_t *c, uint32_t id, struct shop_category *cat)
{
    if (c->ops)
        return c->ops->category_by_id(c->ops_data, id, cat);
    sqlite3_bind_int64(c->st_cat_id, 1, id);
    return one_category(c->st_cat_id, cat);
}

int shop_catalog_categories(shop_catalog_t *c, struct shop_category *out, int cap)
{
    if (c->ops)
        return c->ops->categories(c->ops_data, out, cap);
    int n = 0, rc;
    while (n < cap && (rc = sqlite3_step(c->st_cats)) == SQLITE_ROW)
        row_category(c->st_cats, &out[n++]);
    sqlite3_reset(c->st_cats);
    return n;
}

static int many_products(sqlite3_stmt *st, uint32_t limit, struct shop_product *out)
{
    int n = 0, rc = SQLITE_DONE;
    while ((uint32_t)n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
        row_product(st, &out[n++]);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

int shop_catalog_list(shop_catalog_t *c, uint32_t category_id, uint32_t offset, uint32_t limit,
                      struct shop_product *out)
{
    if (c->ops)
        return c->ops->list(c->ops_data, category_id, offset, limit, out);
    sqlite3_bind_int64(c->st_list, 1, category_id);
    sqlite3_bind_int64(c->st_list, 2, limit);
    sqlite3_bind_int64(c->st_list, 3, offset);
    return many_products(c->st_list, limit, out);
}

int shop_catalog_search(shop_catalog_t *c, const char *q, uint32_t limit, struct shop_product *out)
{
    if (c->ops)
        return c->ops->search(c->ops_data, q, limit, out);
    char pat[512];
    size_t o = 0;
    if (c->has_fts) {
        /* every word as a quoted prefix term: user input never reaches FTS5's query syntax */
        const char *p = q;
        while (*p) {
            while (*p && !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (unsigned char)*p >= 0x80))
                p++;
            if (!*p)
                break;
            if (o + 8 >= sizeof(pat))
                break;
            pat[o++] = '"';
            while (*p && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (unsigned char)*p >= 0x80) && o + 5 < sizeof(pat))
                pat[o++] = *p++;
            pat[o++] = '"';
            pat[o++] = '*';
            pat[o++] = ' ';
        }
        if (o == 0)
            return 0;
        pat[o - 1] = '\0';
    } else {
        pat[o++] = '%';
        for (const char *p = q; *p && o + 3 < sizeof(pat); p++) {
            if (*p == '%' || *p == '_' || *p == '\\')
                pat[o++] = '\\';
            pat[o++] = *p;
        }
        pat[o++] = '%';
        pat[o] = '\0';
    }
    sqlite3_bind_text(c->st_search, 1, pat, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(c->st_search, 2, limit);
    return many_products(c->st_search, limit, out);
}

uint64_t shop_catalog_digest(shop_catalog_t *c)
{
    if (c->ops)
        return 0;
    uint64_t h = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT id, category_id, name, price_cents, stock, updated_at, description"
                                  " FROM products ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char row[1400];
        int n = snprintf(row, sizeof(row), "%lld|%lld|%s|%lld|%lld|%lld|%s|", sqlite3_column_int64(st, 0),
                         sqlite3_column_int64(st, 1), sqlite3_column_text(st, 2), sqlite3_column_int64(st, 3),
                         sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5), sqlite3_column_text(st, 6));
        h = shop_hash64(row, (size_t)n < sizeof(row) ? (size_t)n : sizeof(row)) ^ (h * 31);
    }
    sqlite3_finalize(st);
    return h;
}
