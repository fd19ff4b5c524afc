/* libFuzzer harness: the HTTP/1.1 engine's streaming chunked decoder (lib/httpc_h1.c,
 * h1c_chunk_next), on bytes an upstream sends. The input (after its first byte) is decoded twice:
 * whole, and as it would arrive in pieces (the first byte picks the piece sizes), consuming what
 * the decoder says as the engine does. Both must end the same way (done, bad framing, or more
 * needed) with the same body; every piece must lie inside the bytes it was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/httpc_h1.h"

enum { MORE = 0, DONE = 2, BAD = -1 };

/* Decodes in[0..len) offered in windows that grow by step(k) bytes at a time (0: all at once).
 * The body goes to out (at most len bytes); returns MORE, DONE or BAD. */
static int decode(const char *in, size_t len, const uint8_t *steps, size_t nsteps, char *out, size_t *outlen)
{
    struct h1c_chunked d;
    memset(&d, 0, sizeof(d));
    size_t pos = 0, avail = nsteps ? 0 : len, k = 0;
    *outlen = 0;
    for (;;) {
        if (nsteps && avail < len) {
            size_t add = steps[k++ % nsteps] % 7 + 1;
            avail = avail + add < len ? avail + add : len;
        }
        int rc;
        do {
            size_t skip = 0, n = 0;
            rc = h1c_chunk_next(&d, in + pos, avail - pos, &skip, &n);
            if (rc == BAD)
                return BAD;
            if (skip > avail - pos || (rc == 1 && (n == 0 || n > avail - pos - skip)))
                abort(); /* a piece outside the bytes given */
            if (rc == 1) {
                memcpy(out + *outlen, in + pos + skip, n);
                *outlen += n;
                pos += skip + n;
            } else {
                pos += skip;
            }
        } while (rc == 1 && pos < avail);
        if (rc == DONE)
            return DONE;
        if (avail == len)
            return MORE;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t *steps = data;
    size_t nsteps = data[0] % 4 + 1;
    if (nsteps >= size)
        return 0;
    const char *in = (const char *)data + nsteps;
    size_t len = size - nsteps;
    char *a = malloc(len + 1), *b = malloc(len + 1);
    if (a == NULL || b == NULL)
        abort();
    size_t la, lb;
    int ra = decode(in, len, steps, 0, a, &la);
    int rb = decode(in, len, steps, nsteps, b, &lb);
    if (ra != rb)
        abort(); /* whole and in pieces end differently */
    if (ra != BAD && (la != lb || memcmp(a, b, la) != 0))
        abort(); /* ... or decode different bodies */
    free(a);
    free(b);
    return 0;
}
