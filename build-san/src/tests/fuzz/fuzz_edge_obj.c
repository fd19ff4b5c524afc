/* libFuzzer harness: the stored-object meta format (edge/store/obj.c). A decoded object must re-encode
 * to exactly the input (the format has one encoding). The CRC is recomputed first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edge/store/obj.h"

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    const char *why;
    if (size < 8)
        return 0;
    /* fix up the trailing CRC so that the fuzzer explores the fields, not the checksum */
    uint8_t *data = malloc(size);
    memcpy(data, in, size);
    uint32_t c = edge_crc32(data, size - 4);
    for (int i = 0; i < 4; i++)
        data[size - 4 + i] = (uint8_t)(c >> (8 * i));
    struct edge_obj *o = edge_obj_decode(data, size, &why);
    if (o == NULL) {
        free(data);
        return 0;
    }
    size_t len;
    uint8_t *again = edge_obj_encode(o, &len);
    if (again == NULL || len != size || memcmp(again, data, size) != 0)
        abort();
    free(again);
    edge_obj_attach_body(o, data, size);
    edge_obj_release(o);
    free(data);
    return 0;
}
