/* lib/sdnotify.c - see cdn/sdnotify.h. RELOADING=1 carries MONOTONIC_USEC, as systemd 253's
 * Type=notify-reload asks, and older versions ignore. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "cdn/sdnotify.h"

void cdn_sd_ready(void)
{
    sd_notify(0, "READY=1");
}

void cdn_sd_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

void cdn_sd_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

void cdn_sd_status(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sd_notifyf(0, "STATUS=%s", buf);
}
