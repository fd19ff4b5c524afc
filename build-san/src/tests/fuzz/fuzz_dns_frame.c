/* libFuzzer harness for cdn-dns's TCP framing (dns/frame.c): the first byte picks how the rest is
 * cut into reads; the messages taken out read by read, as the server does, must be exactly those
 * taken out of the whole stream at once, and end the same way (a bad length, or the same bytes
 * left over). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/frame.h"

struct run {
    size_t nmsg, off[1024], len[1024];  /* where each message is in the stream */
    int bad;
    size_t left;                        /* bytes buffered at the end, not yet a frame */
};

static void check(long n, const uint8_t *buf, size_t len, const uint8_t *msg, size_t msglen)
{
    if (n < 3 || (size_t)n > len || msg != buf + 2 || msglen != (size_t)n - 2) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t pick = data[0];
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    static struct run whole;
    memset(&whole, 0, sizeof(whole));
    const uint8_t *msg;
    size_t msglen, pos = 0;
    long f;
    while ((f = cdns_frame_next(s + pos, n - pos, &msg, &msglen)) > 0 && whole.nmsg < 1024) {
        check(f, s + pos, n - pos, msg, msglen);
        whole.off[whole.nmsg] = (size_t)(msg - s);
        whole.len[whole.nmsg++] = msglen;
        pos += (size_t)f;
    }
    if (whole.nmsg == 1024) return 0;   /* too many to compare; the checks above ran */
    whole.bad = f == CDNS_FRAME_BAD;
    whole.left = n - pos;

    /* the same stream in reads of 1..16 bytes (a pattern from the first byte) into a buffer that
     * keeps what is not yet a whole frame, as h2o's input buffer does */
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    size_t have = 0, in = 0, k = 0, seen = 0;
    int bad = 0;
    uint32_t r = pick * 2654435761u + 1;
    while (in < n && !bad) {
        r = r * 1103515245u + 12345u;
        size_t chunk = 1 + (r >> 16) % (pick & 1 ? 16 : 3);
        if (chunk > n - in) chunk = n - in;
        memcpy(buf + have, s + in, chunk);
        have += chunk;
        in += chunk;
        size_t used = 0;
        while ((f = cdns_frame_next(buf + used, have - used, &msg, &msglen)) > 0) {
            check(f, buf + used, have - used, msg, msglen);
            if (k >= whole.nmsg || msglen != whole.len[k] || memcmp(msg, s + whole.off[k], msglen)) abort();
            k++;
            used += (size_t)f;
        }
        if (f == CDNS_FRAME_BAD) bad = 1;
        memmove(buf, buf + used, have - used);
        have -= used;
        seen += used;
    }
    free(buf);
    if (k != whole.nmsg || bad != whole.bad) abort();
    if (!bad && have != whole.left) abort();
    (void)seen;
    return 0;
}
