/* Unit tests for purge commands (edge/purge/cmd.c: parsing, normal forms, matching) and their
 * application by the store (store.c: by URL over every scheme and port, prefix, all, tag, soft,
 * and the refusal of a fill born before a purge that covers it). Times are passed in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge/purge/cmd.h"
#include "edge/store/obj.h"
#include "edge/store/store.h"

static struct edge_purge_cmd cmd;
static char err[200];

static int parse(const char *t) { return edge_purge_parse(t, strlen(t), NULL, &cmd, err, sizeof(err)); }

static void parse_forms(void **state)
{
    (void)state;
    /* every spelling of one URL a user may copy gives one normal form */
    static const char *const same[] = {
        "url https://img.shop.test/p/8",       "url http://img.shop.test/p/8",
        "url https://IMG.Shop.Test:443/p/8",   "url http://img.shop.test:80/p/8",
        "url https://img.shop.test:8443/p/8",  "hard url img.shop.test/p/8",
        "HARD URL https://img.shop.test/a/../p/%38", "url\thttps://img.shop.test./p/8#frag",
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        if (parse(same[i]) != 0)
            fail_msg("%s: %s", same[i], err);
        assert_int_equal(cmd.kind, EDGE_PURGE_URL);
        assert_int_equal(cmd.soft, 0);
        assert_int_equal(cmd.nargs, 1);
        assert_string_equal(cmd.args[0], "img.shop.test/p/8");
    }
    assert_int_equal(parse("soft url https://a.test/x?b=2&a=1 http://b.test"), 0);
    assert_int_equal(cmd.soft, 1);
    assert_int_equal(cmd.nargs, 2);
    assert_string_equal(cmd.args[0], "a.test/x?b=2&a=1");
    assert_string_equal(cmd.args[1], "b.test/");
    /* the query policy of the cache key applies */
    static const char *const drop[] = {"utm_*", NULL};
    struct edge_key_conf kc = {.drop_params = drop, .sort_params = 1};
    const char *t = "url https://a.test/x?utm_source=m&b=2&a=1";
    assert_int_equal(edge_purge_parse(t, strlen(t), &kc, &cmd, err, sizeof(err)), 0);
    assert_string_equal(cmd.args[0], "a.test/x?a=1&b=2");
    /* escapes are normalised before dropping and sorting (found by fuzz_edge_purge: the form of a
     * form was another form) */
    t = "url a.test/x?%6Eb=1&m=2&%75tm_medium=x";
    assert_int_equal(edge_purge_parse(t, strlen(t), &kc, &cmd, err, sizeof(err)), 0);
    assert_string_equal(cmd.args[0], "a.test/x?m=2&nb=1");
    /* prefixes end at a segment; `all` is the host's root */
    assert_int_equal(parse("prefix https://img.shop.test/p img.shop.test/q/ img.shop.test"), 0);
    assert_int_equal(cmd.kind, EDGE_PURGE_PREFIX);
    assert_string_equal(cmd.args[0], "img.shop.test/p/");
    assert_string_equal(cmd.args[1], "img.shop.test/q/");
    assert_string_equal(cmd.args[2], "img.shop.test/");
    assert_int_equal(parse("all img.shop.test https://WWW.shop.test:8443"), 0);
    assert_int_equal(cmd.kind, EDGE_PURGE_ALL);
    assert_string_equal(cmd.args[0], "img.shop.test/");
    assert_string_equal(cmd.args[1], "www.shop.test/");
    assert_int_equal(parse("soft tag p8 cat-2   img"), 0);
    assert_int_equal(cmd.kind, EDGE_PURGE_TAG);
    assert_int_equal(cmd.nargs, 3);
    assert_string_equal(cmd.args[2], "img");
    char out[256];
    edge_purge_format(&cmd, out, sizeof(out));
    assert_string_equal(out, "soft tag p8 cat-2 img");
    assert_int_equal(parse("all a.test"), 0);
    edge_purge_format(&cmd, out, sizeof(out));
    assert_string_equal(out, "hard all a.test");
}

static void parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "   ", "soft", "url", "tag", "ban url http://a/", "url ftp://a.test/x", "url http:///x",
"url http://[::1/x", "all a.test/x", "url http://a.test:99999/", "tag a\x01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i]) == 0)
            fail_msg("accepted '%s'", bad[i]);
    /* too many arguments, too long */
    char big[EDGE_PURGE_TEXT_MAX + 64];
    size_t o = (size_t)snprintf(big, sizeof(big), "tag");
    for (int i = 0; i < EDGE_PURGE_ARGS_MAX + 1; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, " t%d", i);
    assert_int_equal(parse(big), -1);
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "tag ", 4);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse(big), -1);
    char tag[EDGE_PURGE_TAG_MAX + 8];
    memset(tag, 'x', sizeof(tag) - 1);
    memcpy(tag, "tag ", 4);
    tag[sizeof(tag) - 1] = '\0';
    assert_int_equal(parse(tag), -1); /* a tag longer than EDGE_PURGE_TAG_MAX */
}

static void forms_and_matching(void **state)
{
    (void)state;
    char f[256];
    assert_int_equal(edge_purge_url_form("https://img.shop.test:8443/p/8?a=1", 34, f, sizeof(f)), 21);
    assert_string_equal(f, "img.shop.test/p/8?a=1");
    assert_int_equal(edge_purge_url_form("http://[::1]:8080/x", 19, f, sizeof(f)), 7);
    assert_string_equal(f, "[::1]/x");
    assert_int_equal(edge_purge_url_form("nonsense", 8, f, sizeof(f)), -1);

    struct edge_purge_view v;
    const char *k = "https://img.shop.test:8443/p/8/a.png?s=1";
    assert_int_equal(parse("url img.shop.test/p/8/a.png?s=1"), 0);
    v = edge_purge_view_of(&cmd);
    assert_true(edge_purge_matches(&v, k, strlen(k), "", 0));
    assert_int_equal(parse("url img.shop.test/p/8/a.png"), 0);
    v = edge_purge_view_of(&cmd);
    assert_false(edge_purge_matches(&v, k, strlen(k), "", 0)); /* another query: another URL */
    assert_int_equal(parse("prefix img.shop.test/p/8"), 0);
    v = edge_purge_view_of(&cmd);
    assert_true(edge_purge_matches(&v, k, strlen(k), "", 0));
    assert_int_equal(parse("prefix img.shop.test/p/80"), 0);
    v = edge_purge_view_of(&cmd);
    assert_false(edge_purge_matches(&v, k, strlen(k), "", 0)); /* at a segment, not "/p/8" + "0" */
    assert_int_equal(parse("prefix img.shop.test/p/8/a.png?s"), 0); /* the query is no prefix */
    v = edge_purge_view_of(&cmd);
    assert_false(edge_purge_matches(&v, k, strlen(k), "", 0));
    assert_int_equal(parse("all img.shop.test"), 0);
    v = edge_purge_view_of(&cmd);
    assert_true(edge_purge_matches(&v, k, strlen(k), "", 0));
    assert_int_equal(parse("all shop.test"), 0);
    v = edge_purge_view_of(&cmd);
    assert_false(edge_purge_matches(&v, k, strlen(k), "", 0));
    assert_int_equal(parse("tag x p8"), 0);
    v = edge_purge_view_of(&cmd);
    assert_true(edge_purge_matches(&v, k, strlen(k), "cat p8", 6));
    assert_false(edge_purge_matches(&v, k, strlen(k), "cat p88", 7));
    assert_false(edge_purge_matches(&v, k, strlen(k), "", 0));
}

static struct edge_obj *mk(const char *key, const char *tags, int64_t request_time, int64_t age)
{
    struct edge_hdr h[] = {{"Content-Type", 12, "text/plain", 10}, {"Surrogate-Key", 13, tags, strlen(tags)}};
    struct edge_fresh f = {.response_time = request_time, .initial_age = age, .lifetime = 60, .swr = -1,
                           .sie = -1};
    struct edge_obj *o = edge_obj_new(key, strlen(key), strlen(key), 200, h, tags[0] ? 2 : 1, "", 0, &f,
                                      request_time);
    assert_non_null(o);
    edge_obj_set_body(o, (uint8_t *)strdup("x"), 1);
    return o;
}

static int put(struct edge_store *s, const char *key, const char *tags, int64_t t, int64_t age)
{
    struct edge_obj *o = mk(key, tags, t, age);
    int r = edge_store_put(s, o);
    edge_obj_release(o);
    return r;
}

static int has(struct edge_store *s, const char *key)
{
    int tier, corrupt;
    struct edge_obj *o = edge_store_get(s, key, strlen(key), &tier, &corrupt);
    edge_obj_release(o);
    return o != NULL;
}

static size_t apply(struct edge_store *s, const char *text, int64_t now_ms)
{
    if (parse(text) != 0)
        fail_msg("%s: %s", text, err);
    return edge_store_purge(s, &cmd, now_ms);
}

static void store_purges(void **state)
{
    (void)state;
    struct edge_store_conf c = {.ram_bytes = 1 << 20, .ram_policy = EDGE_POLICY_LRU};
    struct edge_store *s = edge_store_open(&c, err, sizeof(err));
    assert_non_null(s);
    int64_t t = 1700000000; /* seconds; purges at t+100 s and later */
    /* one URL under two schemes and two ports: the browser's URL purges all four */
    const char *keys[] = {"http://img.shop.test/p/8", "https://img.shop.test/p/8", "http://img.shop.test:8080/p/8",
                          "https://img.shop.test:8443/p/8"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(put(s, keys[i], "p8 img", t, 0), 0);
    assert_int_equal(put(s, "https://img.shop.test/p/9", "p9 img", t, 0), 0);
    assert_int_equal(put(s, "https://img.shop.test/q/1", "q img", t, 0), 0);
    assert_int_equal(put(s, "https://www.shop.test/p/8", "www", t, 0), 0);
    assert_int_equal(apply(s, "url https://img.shop.test/p/8", (t + 100) * 1000), 4);
    for (int i = 0; i < 4; i++)
        assert_false(has(s, keys[i]));
    assert_true(has(s, "https://img.shop.test/p/9"));
    assert_true(has(s, "https://www.shop.test/p/8"));
    /* prefix: /p/ of img only */
    assert_int_equal(apply(s, "prefix img.shop.test/p/", (t + 101) * 1000), 1);
    assert_false(has(s, "https://img.shop.test/p/9"));
    assert_true(has(s, "https://img.shop.test/q/1"));
    /* soft: still there, marked */
    assert_int_equal(apply(s, "soft tag q", (t + 102) * 1000), 1);
    assert_true(has(s, "https://img.shop.test/q/1"));
    assert_true(edge_store_is_soft(s, "https://img.shop.test/q/1", 25));
    assert_false(edge_store_is_soft(s, "https://www.shop.test/p/8", 25));
    /* all of a vhost */
    assert_int_equal(apply(s, "all img.shop.test", (t + 103) * 1000), 1);
    assert_false(has(s, "https://img.shop.test/q/1"));
    assert_true(has(s, "https://www.shop.test/p/8"));
    assert_int_equal(apply(s, "tag www", (t + 104) * 1000), 1);
    assert_int_equal(apply(s, "tag www", (t + 104) * 1000), 0);

    /* fills born before a purge that covers them are refused: a fill in flight (request at t+103,
     * purge at t+104), a parent's copy with Age 30 fetched after the purge; one born a little
     * later than the purge's second is stored; one the purge does not cover is stored */
    uint64_t refused = edge_store_refused(s);
    assert_int_equal(put(s, "https://www.shop.test/p/8", "www", t + 103, 0), -1);
    assert_int_equal(put(s, "https://www.shop.test/p/8", "www", t + 110, 30), -1);
    assert_int_equal(put(s, "https://www.shop.test/p/8", "www", t + 105, 0), 0);
    assert_int_equal(put(s, "https://www.shop.test/other", "", t + 50, 0), 0);
    assert_int_equal(edge_store_refused(s), refused + 2);
    /* a fill that started in the purge's second: refused too (request times are whole seconds);
     * one with an Age of 1 s from the next second too (Age is rounded down) */
    apply(s, "tag www", (t + 130) * 1000 + 500);
    assert_int_equal(put(s, "https://www.shop.test/p/9", "www", t + 130, 0), -1);
    assert_int_equal(put(s, "https://www.shop.test/p/9", "www", t + 131, 0), 0);
    assert_int_equal(put(s, "https://www.shop.test/p/9", "www", t + 131, 1), -1);
    /* a parent's copy in its first second has Age 0 but an upstream Cache-Status: it too may have
     * been born up to a second before its request (found by lab/purge-trials: such a copy, born
     * 0.5 s before the purge and fetched 6 ms after it, in the next second, was stored) */
    {
        struct edge_hdr h[] = {{"Surrogate-Key", 13, "www", 3}, {"Cache-Status", 12, "cdn-edge-p; hit", 15}};
        struct edge_fresh f = {.response_time = t + 131, .lifetime = 60, .swr = -1, .sie = -1};
        struct edge_obj *o = edge_obj_new("https://www.shop.test/p/9", 25, 25, 200, h, 2, "", 0, &f, t + 131);
        assert_int_equal(edge_store_put(s, o), -1);
        edge_obj_release(o);
    }
    /* a soft mark ends when the object is replaced */
    assert_int_equal(put(s, "https://img.shop.test/q/2", "q", t + 140, 0), 0);
    assert_int_equal(apply(s, "soft url https://img.shop.test/q/2", (t + 150) * 1000), 1);
    assert_true(edge_store_is_soft(s, "https://img.shop.test/q/2", 25));
    assert_int_equal(put(s, "https://img.shop.test/q/2", "q", t + 155, 0), 0);
    assert_false(edge_store_is_soft(s, "https://img.shop.test/q/2", 25));
    edge_store_close(s);
}

/* purge_remember: a purge older than the window no longer refuses fills */
static void store_remember_window(void **state)
{
    (void)state;
    struct edge_store_conf c = {.ram_bytes = 1 << 20, .ram_policy = EDGE_POLICY_LRU, .purge_remember_ms = 5000};
    struct edge_store *s = edge_store_open(&c, err, sizeof(err));
    assert_non_null(s);
    int64_t t = 1700000000;
    apply(s, "url a.test/x", t * 1000);
    assert_int_equal(put(s, "http://a.test/x", "", t - 10, 0), -1);
    apply(s, "url b.test/y", (t + 10) * 1000); /* the first one leaves the window */
    assert_int_equal(put(s, "http://a.test/x", "", t - 10, 0), 0);
    edge_store_close(s);
}

/* A soft purge outlives a restart (its mark is on disk with the object), and holds only for the
 * copy it was made for: one stored after it is fresh after a restart too. A hard purge's delete
 * is on disk as before. */
static void store_soft_restart(void **state)
{
    (void)state;
    char dir[] = "/tmp/t_edge_soft.XXXXXX", cmd_rm[64];
    assert_non_null(mkdtemp(dir));
    struct edge_store_conf c = {.ram_bytes = 1 << 20, .disk_bytes = 64 << 20, .ram_policy = EDGE_POLICY_LRU, .dir = dir,
                                .disk_admit = EDGE_ADMIT_ALL};
    struct edge_store *s = edge_store_open(&c, err, sizeof(err));
    assert_non_null(s);
    int64_t t = 1700000000;
    assert_int_equal(put(s, "https://img.shop.test/q/1", "q", t, 0), 0);
    assert_int_equal(put(s, "https://img.shop.test/q/2", "q", t, 0), 0);
    assert_int_equal(put(s, "https://img.shop.test/r/1", "r", t, 0), 0);
    assert_int_equal(apply(s, "soft tag q", (t + 10) * 1000), 2);
    assert_int_equal(put(s, "https://img.shop.test/q/2", "q", t + 20, 0), 0); /* q/2 stored again */
    assert_false(edge_store_is_soft(s, "https://img.shop.test/q/2", 25));
    edge_store_close(s);

    s = edge_store_open(&c, err, sizeof(err));
    assert_non_null(s);
    assert_true(has(s, "https://img.shop.test/q/1"));
    assert_true(edge_store_is_soft(s, "https://img.shop.test/q/1", 25));  /* still marked */
    assert_false(edge_store_is_soft(s, "https://img.shop.test/q/2", 25)); /* the copy after the mark */
    assert_false(edge_store_is_soft(s, "https://img.shop.test/r/1", 25));
    /* a hard purge of q/1 takes its mark with it; r/1 soft, then restart again */
    assert_int_equal(apply(s, "url https://img.shop.test/q/1", (t + 30) * 1000), 1);
    assert_int_equal(apply(s, "soft url https://img.shop.test/r/1", (t + 31) * 1000), 1);
    edge_store_close(s);

    s = edge_store_open(&c, err, sizeof(err));
    assert_non_null(s);
    assert_false(has(s, "https://img.shop.test/q/1"));
    assert_true(edge_store_is_soft(s, "https://img.shop.test/r/1", 25));
    assert_false(edge_store_is_soft(s, "https://img.shop.test/q/2", 25));
    edge_store_close(s);
    snprintf(cmd_rm, sizeof(cmd_rm), "rm -rf %s", dir);
    assert_int_equal(system(cmd_rm), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_forms),  cmocka_unit_test(parse_errors),        cmocka_unit_test(forms_and_matching),
        cmocka_unit_test(store_purges), cmocka_unit_test(store_remember_window), cmocka_unit_test(store_soft_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
