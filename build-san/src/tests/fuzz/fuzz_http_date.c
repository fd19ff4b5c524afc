/* libFuzzer harness: lib/http.c's HTTP-date parser over arbitrary bytes. What it accepts must
 * format back to an IMF-fixdate that parses to the same instant (but for the leap second of
 * 9999-12-31, which formats as the clamped year 9999). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t t, u;
    char buf[CDN_HTTP_DATE_LEN + 1];
    if (cdn_http_date_parse((const char *)data, size, &t) < 0)
        return 0;
    if (strlen(cdn_http_date_fmt(t, buf)) != CDN_HTTP_DATE_LEN)
        abort();
    if (t < 253402300800 && (cdn_http_date_parse(buf, CDN_HTTP_DATE_LEN, &u) < 0 || u != t))
        abort();
    return 0;
}
