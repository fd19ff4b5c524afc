/* libFuzzer harness: lib/http.c (what cdn-edge and shop-lb use) against shop-app's own parsers
 * (origin/shop/http.c), which stay independent on purpose as the tests' oracle. Where both accept
 * an HTTP-date they must agree on the instant, and a date lib/http.c formats must read back the
 * same in both; for well-formed entity-tag lists built from the input, weak comparison must give
 * the same answer in both. A disagreement aborts. */
#include "config.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdn/http.h"
#include "origin/shop/shop.h"

/* A well-formed list "W/\"ab\", \"c\"" and one tag from the input bytes (tags of [a-z0-9]). */
static size_t make_tags(const uint8_t *d, size_t n, char *list, size_t cap, char *tag, size_t tcap)
{
    size_t o = 0, i = 0, t = 0;
    while (i < n && o + 40 < cap) {
        size_t len = d[i] % 6 + 1, weak = d[i] & 0x40;
        i++;
        if (o)
            list[o++] = ',', list[o++] = ' ';
        if (weak)
            list[o++] = 'W', list[o++] = '/';
        list[o++] = '"';
        for (size_t k = 0; k < len && i < n; k++, i++)
            list[o++] = "abcdefghijklmnopqrstuvwxyz0123456789"[d[i] % 36];
        list[o++] = '"';
    }
    list[o] = '\0';
    /* the tag: a copy of one of the list's members, or something else */
    if (n > 0 && (d[0] & 1) && o > 0) {
        const char *q = strchr(list, '"');
        const char *w = q > list + 1 && q[-1] == '/' ? q - 2 : q;
        const char *e = strchr(q + 1, '"');
        t = (size_t)(e - w) + 1 < tcap ? (size_t)(e - w) + 1 : 0;
        memcpy(tag, w, t);
    } else {
        static const char other[] = "\"zz9\"";
        t = sizeof(other) - 1;
        memcpy(tag, other, t);
    }
    tag[t] = '\0';
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t a;
    time_t b;
    int ra = cdn_http_date_parse((const char *)data, size, &a);
    int rb = shop_http_date_parse((const char *)data, size, &b);
    if (ra == 0 && rb == 0 && a != (int64_t)b)
        abort(); /* both read a date, and not the same one */
    if (ra == 0 && a >= 0 && a < 253402300800LL) { /* years 1970..9999: both must read what we write */
        char buf[64];
        cdn_http_date_fmt(a, buf);
        int64_t a2;
        time_t b2;
        if (cdn_http_date_parse(buf, strlen(buf), &a2) != 0 || a2 != a ||
            shop_http_date_parse(buf, strlen(buf), &b2) != 0 || (int64_t)b2 != a)
            abort();
    }
    char list[1024], tag[64];
    size_t ll = make_tags(data, size, list, sizeof(list), tag, sizeof(tag));
    size_t tl = strlen(tag);
    if (tl > 0 && cdn_etag_match_weak(list, ll, tag, tl) != shop_etag_match_weak(list, ll, tag, tl))
        abort();
    return 0;
}
