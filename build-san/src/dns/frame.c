/* dns/frame.c - the TCP length prefix (see frame.h). */
#include "config.h"

#include "dns/frame.h"

long cdns_frame_next(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msglen)
{
    if (len < 2) return CDNS_FRAME_MORE;
    size_t ml = (size_t)buf[0] << 8 | buf[1];
    if (ml == 0) return CDNS_FRAME_BAD;
    if (len - 2 < ml) return CDNS_FRAME_MORE;
    *msg = buf + 2;
    *msglen = ml;
    return (long)(2 + ml);
}
