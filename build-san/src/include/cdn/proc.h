/* cdn/proc.h - what every daemon does the same way: --version, --help text, pid files, the
 * listening sockets, and a graceful stop.
 *
 * Signals come through cdn/loop.h (cdn_signals_watch). The convention for every program:
 * SIGTERM/SIGINT stop accepting, finish what is in flight, exit 0; SIGHUP reloads where the
 * program supports it (and reopens logs everywhere). */
#ifndef CDN_PROC_H
#define CDN_PROC_H

#include <stdio.h>
#include <sys/socket.h>

/* "cdn-edge 0.1.0 (h2o 2.2.5, libcurl 7.88.1, c-ares 1.18.1, ...)" to stdout. */
void cdn_print_version(const char *prog);

/* Writes the pid to path (O_EXCL after checking that a stale file's pid is dead). 0 or -1 with
 * err set ("pid file x is held by running process 123"). */
int cdn_pidfile_write(const char *path, char *err, size_t errlen);
void cdn_pidfile_remove(const char *path);

/* A non-blocking listening TCP socket (SO_REUSEADDR, optionally SO_REUSEPORT) or a bound UDP
 * socket. -1 with err set ("bind 127.0.0.1:80: Permission denied"). */
int cdn_listen_tcp(const struct sockaddr *sa, socklen_t len, int reuseport, char *err, size_t errlen);
int cdn_bind_udp(const struct sockaddr *sa, socklen_t len, int reuseport, char *err, size_t errlen);
/* "127.0.0.1:8080" / "[::1]:53". buf of at least 64 bytes. */
const char *cdn_addr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
