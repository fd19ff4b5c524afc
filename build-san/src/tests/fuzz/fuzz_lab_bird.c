/* libFuzzer harness: the reply parser of BIRD's control socket (lab_bird_reply_parse), which
 * cdn-lab and cdn-health run on whatever the socket sends. Checks: no crash, the text stays
 * NUL-terminated within its buffer, a complete reply has a code of four digits. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lab/lib/anycast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[64];
    int code = -1;
    int r = lab_bird_reply_parse((const char *)data, size, &code, out, sizeof(out));
    if (strnlen(out, sizeof(out)) >= sizeof(out)) abort();
    if (r == 1 && (code < 0 || code > 9999)) abort();
    if (r < -1 || r > 1) abort();
    r = lab_bird_reply_parse((const char *)data, size, &code, NULL, 0);
    return 0;
}
