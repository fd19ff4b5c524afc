/* libFuzzer harness: the Range and Content-Range parsers (edge/http/range.c); the first byte picks the
 * object size for Range. */
#include <stdint.h>
#include <stdlib.h>

#include "edge/http/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const uint64_t sizes[] = {0, 1, 100, 1000, 1u << 20, UINT64_MAX / 2};
    uint64_t osize = sizes[data[0] % 6], f, l;
    if (edge_range_parse((const char *)data + 1, size - 1, osize, &f, &l) == EDGE_RANGE_OK &&
        (f > l || l >= osize))
        abort(); /* a satisfiable range always lies inside the object */
    uint64_t t;
    if (edge_content_range_parse((const char *)data + 1, size - 1, &f, &l, &t) == 0 &&
        (f != UINT64_MAX || l != UINT64_MAX) && (f > l || l >= t))
        abort(); /* an accepted Content-Range always lies inside its total */
    return 0;
}
