/* libFuzzer harness: the Range header parser (edge/range.c); the first byte picks the size. */
#include <stdint.h>
#include <stdlib.h>

#include "edge/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const uint64_t sizes[] = {0, 1, 100, 1000, 1u << 20, UINT64_MAX / 2};
    uint64_t osize = sizes[data[0] % 6], f, l;
    if (edge_range_parse((const char *)data + 1, size - 1, osize, &f, &l) == EDGE_RANGE_OK &&
        (f > l || l >= osize))
        abort(); /* a satisfiable range always lies inside the object */
    return 0;
}
