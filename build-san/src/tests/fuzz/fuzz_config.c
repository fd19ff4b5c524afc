/* libFuzzer harness: the YAML loader and schema decoder (lib/config.c). Arbitrary bytes are
 * loaded, then decoded against a nested schema using every field type; the node API is walked
 * too. Checks: no crash, no leak, every error carries a message, and errors with a position
 * start with "name:line:col: ". */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/config.h"

struct item {
    const char *name;
    struct cdn_conf_addr addr;
    long long weight;
    struct cdn_conf_list tags;
};

struct sub {
    const char *s;
    double d;
    unsigned u;
};

struct top {
    const char *name;
    long long i;
    unsigned u;
    double d;
    int b, e;
    uint64_t dur, size;
    struct cdn_conf_addr addr;
    struct sub sub;
    struct cdn_conf_list list, strs, map;
    int custom;
};

static const char *const colors[] = {"red", "green", "blue", NULL};

static const cdn_conf_field_t sub_fields[] = {
    {.key = "s", .type = CDN_CT_STR, .off = offsetof(struct sub, s)},
    {.key = "d", .type = CDN_CT_DOUBLE, .off = offsetof(struct sub, d), .dmin = -1, .dmax = 1},
    {.key = "u", .type = CDN_CT_UINT, .off = offsetof(struct sub, u)},
    {NULL},
};

static const cdn_conf_field_t item_fields[] = {
    {.key = "addr", .type = CDN_CT_ADDR, .off = offsetof(struct item, addr), .flags = CDN_CF_REQUIRED,
     .addr_default_host = "::1"},
    {.key = "weight", .type = CDN_CT_INT, .off = offsetof(struct item, weight), .min = 1, .max = 100},
    {.key = "tags", .type = CDN_CT_STRLIST, .off = offsetof(struct item, tags)},
    {NULL},
};
static const struct item item_defaults = {.weight = 1};

static int on_custom(cdn_conf_t *c, const cdn_conf_node_t *n, void *out, cdn_conf_err_t *err)
{
    /* A custom decoder exercising the node API on whatever it is given. */
    *(int *)out = (int)cdn_conf_len(n);
    for (size_t i = 0; i < cdn_conf_len(n); i++) {
        const cdn_conf_node_t *k = cdn_conf_key(n, i), *v = cdn_conf_value(n, i), *it = cdn_conf_item(n, i);
        if (k != NULL && cdn_conf_scalar(k) == NULL)
            abort(); /* keys are always scalars */
        if (v != NULL && cdn_conf_get(n, cdn_conf_scalar(k)) == NULL)
            abort();
        if (it != NULL && cdn_conf_line(it) < 1)
            abort();
    }
    return cdn_conf_is_null(n) ? cdn_conf_fail(c, n, err, "null") : 0;
}

static const cdn_conf_field_t top_fields[] = {
    {.key = "name", .type = CDN_CT_STR, .off = offsetof(struct top, name)},
    {.key = "i", .type = CDN_CT_INT, .off = offsetof(struct top, i)},
    {.key = "u", .type = CDN_CT_UINT, .off = offsetof(struct top, u), .min = 1, .max = 65535},
    {.key = "d", .type = CDN_CT_DOUBLE, .off = offsetof(struct top, d)},
    {.key = "b", .type = CDN_CT_BOOL, .off = offsetof(struct top, b)},
    {.key = "e", .type = CDN_CT_ENUM, .off = offsetof(struct top, e), .enum_names = colors},
    {.key = "dur", .type = CDN_CT_DURATION, .off = offsetof(struct top, dur)},
    {.key = "size", .type = CDN_CT_SIZE, .off = offsetof(struct top, size)},
    {.key = "addr", .type = CDN_CT_ADDR, .off = offsetof(struct top, addr)},
    {.key = "sub", .type = CDN_CT_STRUCT, .off = offsetof(struct top, sub), .sub = sub_fields},
    {.key = "list", .type = CDN_CT_LIST, .off = offsetof(struct top, list), .sub = item_fields,
     .sub_size = sizeof(struct item), .sub_defaults = &item_defaults},
    {.key = "strs", .type = CDN_CT_STRLIST, .off = offsetof(struct top, strs)},
    {.key = "map", .type = CDN_CT_MAP, .off = offsetof(struct top, map), .sub = item_fields,
     .sub_size = sizeof(struct item), .sub_defaults = &item_defaults},
    {.key = "custom", .type = CDN_CT_CUSTOM, .off = offsetof(struct top, custom), .custom = on_custom},
    {NULL},
};

static void check_err(const cdn_conf_err_t *err)
{
    if (err->msg[0] == '\0')
        abort();
    if (err->line > 0) {
        char pre[300];
        snprintf(pre, sizeof(pre), "fuzz:%d:%d: ", err->line, err->col);
        if (strncmp(err->msg, pre, strlen(pre)) != 0 || err->col < 1)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cdn_conf_err_t err;
    memset(&err, 0, sizeof(err));
    cdn_conf_t *c = cdn_conf_load_string("fuzz", (const char *)data, size, &err);
    if (c == NULL) {
        check_err(&err);
        return 0;
    }
    const cdn_conf_node_t *root = cdn_conf_root(c);
    if (root == NULL || cdn_conf_kind(root) != CDN_CONF_MAP)
        abort();
    struct top t = {.u = 80, .e = 1};
    memset(&err, 0, sizeof(err));
    if (cdn_conf_decode(c, root, top_fields, &t, &err) != 0) {
        check_err(&err);
    } else {
        /* Decoded lists are readable in full. */
        struct item *items = t.list.items;
        for (size_t i = 0; i < t.list.n; i++)
            if (items[i].weight < 1 || items[i].weight > 100 || items[i].addr.text == NULL)
                abort();
        for (size_t i = 0; i < t.strs.n; i++)
            if (((const char **)t.strs.items)[i] == NULL)
                abort();
        items = t.map.items;
        for (size_t i = 0; i < t.map.n; i++)
            if (items[i].name == NULL)
                abort();
        if (t.u < 1 || t.u > 65535)
            abort();
    }
    cdn_conf_free(c);
    return 0;
}
