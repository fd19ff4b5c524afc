/* cdn/sdnotify.h - telling systemd where a daemon is (Type=notify units, sd_notify(3) from
 * libsystemd): ready once its listeners accept, reloading during a SIGHUP, stopping when a
 * graceful stop begins, and a one-line status. Without NOTIFY_SOCKET in the environment (not run
 * by systemd) every call does nothing. Any thread. */
#ifndef CDN_SDNOTIFY_H
#define CDN_SDNOTIFY_H

void cdn_sd_ready(void);
void cdn_sd_reloading(void);
void cdn_sd_stopping(void);
/* STATUS=... (printf format), shown by systemctl status. */
void cdn_sd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
