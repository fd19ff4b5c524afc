/* libFuzzer harness: the Accept normaliser of image routes (edge/http/accept.c). The input is one
 * Accept field; the first byte picks the offered formats. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edge/http/accept.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned offered = (data[0] & 7u) ? (data[0] & 7u) : EDGE_IMGFMT_DEFAULT;
    /* a private copy with nothing after it, so ASan sees any read past the end */
    size_t len = size - 1;
    char *v = malloc(len ? len : 1);
    if (v == NULL)
        return 0;
    memcpy(v, data + 1, len);
    for (int f = 0; f < EDGE_IMGFMT_N; f++) {
        int q = edge_accept_q(v, len, edge_imgfmt_mime[f], strlen(edge_imgfmt_mime[f]));
        if (q < -1 || q > 1000)
            abort();
    }
    struct edge_hdr h[2] = {{"accept", 6, v, len}, {"accept", 6, v, len / 2}};
    int present;
    enum edge_imgfmt f = edge_accept_image(h, 2, offered, &present);
    if ((unsigned)f >= EDGE_IMGFMT_N || !(offered & (1u << f)) || !present)
        abort(); /* always one of the offered formats */
    free(v);
    return 0;
}
