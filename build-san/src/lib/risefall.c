/* lib/risefall.c - the rise/fall rule of health checks (see cdn/risefall.h). */
#include "config.h"

#include "cdn/risefall.h"

int cdn_risefall_observe(struct cdn_risefall *st, int ok, unsigned rise, unsigned fall)
{
    int first = !st->seen;
    st->seen = 1;
    if (ok) {
        st->fail_run = 0;
        if (st->ok_run < UINT16_MAX)
            st->ok_run++;
        if (!st->up && (first || st->ok_run >= (rise ? rise : 1)))
            st->up = 1;
    } else {
        st->ok_run = 0;
        if (st->fail_run < UINT16_MAX)
            st->fail_run++;
        if (st->up && st->fail_run >= (fall ? fall : 1))
            st->up = 0;
    }
    return st->up;
}
