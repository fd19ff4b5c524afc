/* tests/unit/t_shop_catalog.c - the SQLite catalog: determinism, read-only access, queries. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "origin/shop/shop.h"

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/t_shop_catalog.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void t_deterministic(void **state)
{
    char a[300], b[300], c[300], err[256];
    snprintf(a, sizeof(a), "%s/a.db", dir);
    snprintf(b, sizeof(b), "%s/b.db", dir);
    snprintf(c, sizeof(c), "%s/c.db", dir);
    assert_int_equal(shop_catalog_generate(a, 2000, 7, err, sizeof(err)), 0);
    assert_int_equal(shop_catalog_generate(b, 2000, 7, err, sizeof(err)), 0);
    assert_int_equal(shop_catalog_generate(c, 2000, 8, err, sizeof(err)), 0);
    size_t la, lb, lc;
    char *da = slurp(a, &la), *db = slurp(b, &lb), *dc = slurp(c, &lc);
    assert_non_null(da);
    assert_true(la > 100000);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la); /* same seed: same bytes */
    assert_true(la != lc || memcmp(da, dc, la) != 0);
    free(da), free(db), free(dc);
    shop_catalog_t *ca = shop_catalog_open(a, err, sizeof(err)), *cc = shop_catalog_open(c, err, sizeof(err));
    assert_non_null(ca);
    assert_non_null(cc);
    assert_int_not_equal(shop_catalog_digest(ca), 0);
    assert_int_not_equal(shop_catalog_digest(ca), shop_catalog_digest(cc));
    shop_catalog_close(ca);
    shop_catalog_close(cc);
    /* no temp file left behind */
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s/a.db.tmp.%d", dir, (int)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
}

static void t_queries(void **state)
{
    char p[300], err[256];
    snprintf(p, sizeof(p), "%s/q.db", dir);
    assert_int_equal(shop_catalog_generate(p, 3000, 1, err, sizeof(err)), 0);
    shop_catalog_t *c = shop_catalog_open(p, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(shop_catalog_count(c), 3000);
    assert_true(shop_catalog_generated_at(c) > 1600000000);
    struct shop_category cats[64];
    int n = shop_catalog_categories(c, cats, 64);
    assert_int_equal(n, SHOP_NUM_CATEGORIES);
    uint32_t total = 0;
    for (int i = 0; i < n; i++)
        total += cats[i].count;
    assert_int_equal(total, 3000);
    assert_true(cats[0].count > cats[n - 1].count); /* popular categories first */
    struct shop_product pr;
    assert_int_equal(shop_catalog_product(c, 42, &pr), 1);
    assert_int_equal(pr.id, 42);
    assert_non_null(strstr(pr.name, " 42"));
    assert_true(pr.category_id >= 1 && pr.category_id <= SHOP_NUM_CATEGORIES);
    assert_true(strlen(pr.description) > 40);
    assert_int_equal(pr.price_cents % 100, 99);
    assert_int_equal(shop_catalog_product(c, 3001, &pr), 0);
    struct shop_category cat;
    assert_int_equal(shop_catalog_category_by_slug(c, "art-supplies", &cat), 1);
    assert_string_equal(cat.name, "Art Supplies");
    assert_int_equal(shop_catalog_category_by_slug(c, "nope", &cat), 0);
    assert_int_equal(shop_catalog_category_by_id(c, 1, &cat), 1);
    struct shop_product list[24];
    int k = shop_catalog_list(c, 1, 0, 24, list);
    assert_int_equal(k, 24);
    assert_true(list[0].id < list[1].id);
    int k2 = shop_catalog_list(c, 1, 24, 24, list);
    assert_true(k2 > 0);
    assert_int_equal(shop_catalog_list(c, 1, 100000, 24, list), 0);
    /* search: by a word that is in many names, and something absent; syntax characters are harmless */
    k = shop_catalog_search(c, "lamp", 24, list);
    assert_true(k > 0);
    for (int i = 0; i < k; i++)
        assert_non_null(strcasestr(list[i].name, "lamp"));
    assert_int_equal(shop_catalog_search(c, "zzzqqq", 24, list), 0);
    assert_true(shop_catalog_search(c, "\"lamp* OR (", 24, list) >= 0);
    assert_int_equal(shop_catalog_search(c, "", 24, list), 0);
    shop_catalog_close(c);
}

/* Copy: no sentence twice in one product text (issue 14). */
static void t_no_repeated_sentence(void **state)
{
    char p[300], err[256];
    snprintf(p, sizeof(p), "%s/s.db", dir);
    assert_int_equal(shop_catalog_generate(p, 2000, 5, err, sizeof(err)), 0);
    shop_catalog_t *c = shop_catalog_open(p, err, sizeof(err));
    assert_non_null(c);
    struct shop_product pr;
    int multi = 0;
    for (uint32_t id = 1; id <= 2000; id++) {
        assert_int_equal(shop_catalog_product(c, id, &pr), 1);
        char *sent[16];
        int n = 0;
        for (char *save = NULL, *t = strtok_r(pr.description, ".", &save); t != NULL && n < 16; t = strtok_r(NULL, ".", &save)) {
            while (*t == ' ')
                t++;
            for (int i = 0; i < n; i++)
                if (strcmp(sent[i], t) == 0)
                    fail_msg("product %u repeats \"%s\"", id, t);
            sent[n++] = t;
        }
        multi += n >= 4;
    }
    assert_true(multi > 100); /* still texts of several sentences */
    shop_catalog_close(c);
}

static void t_readonly(void **state)
{
    char p[300], err[256];
    snprintf(p, sizeof(p), "%s/r.db", dir);
    assert_int_equal(shop_catalog_generate(p, 100, 3, err, sizeof(err)), 0);
    shop_catalog_t *c = shop_catalog_open(p, err, sizeof(err));
    assert_non_null(c);
    shop_catalog_close(c);
    assert_null(shop_catalog_open("/nonexistent/x.db", err, sizeof(err)));
    assert_true(strlen(err) > 0);
    snprintf(p, sizeof(p), "%s/empty.db", dir);
    FILE *f = fopen(p, "w");
    fclose(f);
    assert_null(shop_catalog_open(p, err, sizeof(err)));
    assert_int_equal(shop_catalog_generate(p, 0, 1, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_deterministic), cmocka_unit_test(t_queries), cmocka_unit_test(t_readonly), cmocka_unit_test(t_no_repeated_sentence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
