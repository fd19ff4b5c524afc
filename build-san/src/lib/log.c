/* lib/log.c - the process-wide error log.
 *
 * Rules:
 * - One line per event, formatted on the caller's stack and handed to one write(2) on an O_APPEND
 *   descriptor, so lines from threads and processes sharing the file never interleave.
 * - The descriptor number never changes once it is a file: open/reopen dup2() the new file onto
 *   it, so a thread writing concurrently writes to the old or the new file, never to a closed or
 *   reused descriptor. Open/reopen (and the program name) are guarded by a mutex; writers only
 *   load the descriptor atomically.
 * - Control characters in messages are escaped (\n, \xHH): a message cannot forge a log line. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cdn/log.h"

#define LOG_LINE_MAX 4096

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int log_fd = 2;
static atomic_int log_min = CDN_LOG_INFO;
static char log_prog[64] = "cdn";
static char log_path[1024]; /* "" = stderr */

static const char *const level_names[] = {"debug", "info", "notice", "warn", "error"};

const char *cdn_log_level_name(enum cdn_log_level l)
{
    return (unsigned)l < sizeof(level_names) / sizeof(level_names[0]) ? level_names[l] : "?";
}

int cdn_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return CDN_LOG_WARN;
    if (strcasecmp(s, "err") == 0)
        return CDN_LOG_ERR;
    return -1;
}

void cdn_log_set_level(enum cdn_log_level min)
{
    atomic_store(&log_min, (int)min);
}

enum cdn_log_level cdn_log_get_level(void)
{
    return (enum cdn_log_level)atomic_load(&log_min);
}

/* Puts file (or stderr when path is empty) behind the log descriptor. Called with log_lock. */
static int install(const char *path)
{
    int cur = atomic_load(&log_fd);
    if (path[0] == '\0') {
        if (cur != 2 && dup2(2, cur) < 0)
            return -1;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (cur == 2) {
        atomic_store(&log_fd, fd); /* first file: from now on its number stays */
        return 0;
    }
    int r = dup3(fd, cur, O_CLOEXEC);
    int saved = errno;
    close(fd);
    errno = saved;
    return r < 0 ? -1 : 0;
}

int cdn_log_open(const char *prog, const char *path, enum cdn_log_level min)
{
    if (path != NULL && strcmp(path, "-") == 0)
        path = NULL;
    if (path != NULL && strlen(path) >= sizeof(log_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    pthread_mutex_lock(&log_lock);
    int r = install(path != NULL ? path : "");
    if (r == 0) {
        snprintf(log_path, sizeof(log_path), "%s", path != NULL ? path : "");
        if (prog != NULL) {
            const char *slash = strrchr(prog, '/');
            snprintf(log_prog, sizeof(log_prog), "%s", slash != NULL ? slash + 1 : prog);
        }
        atomic_store(&log_min, (int)min);
    }
    pthread_mutex_unlock(&log_lock);
    return r;
}

int cdn_log_reopen(void)
{
    pthread_mutex_lock(&log_lock);
    int r = log_path[0] != '\0' ? install(log_path) : 0;
    pthread_mutex_unlock(&log_lock);
    return r;
}

/* Writes all of buf with as few write(2) calls as the kernel allows (one, for a regular file). */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

/* "2026-11-25T20:43:49.123Z" */
static void iso8601(char out[64])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

void cdn_log(enum cdn_log_level l, const char *fmt, ...)
{
    if ((int)l < atomic_load_explicit(&log_min, memory_order_relaxed))
        return;
    char msg[LOG_LINE_MAX], line[LOG_LINE_MAX], ts[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    iso8601(ts);
    char prog[sizeof(log_prog)];
    pthread_mutex_lock(&log_lock);
    memcpy(prog, log_prog, sizeof(prog));
    pthread_mutex_unlock(&log_lock);

    size_t o = (size_t)snprintf(line, sizeof(line), "%s %s[%ld] %s: ", ts, prog, (long)getpid(),
                                cdn_log_level_name(l));
    /* Room for the escape of one byte (4), "..." (3) and the newline. */
    const size_t room = sizeof(line) - 8;
    int cut = (size_t)n >= sizeof(msg);
    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        if (o >= room) {
            cut = 1;
            break;
        }
        if (*p == '\n') {
            line[o++] = '\\';
            line[o++] = 'n';
        } else if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            o += (size_t)snprintf(line + o, sizeof(line) - o, "\\x%02x", *p);
        } else {
            line[o++] = (char)*p;
        }
    }
    if (cut) {
        memcpy(line + o, "...", 3);
        o += 3;
    }
    line[o++] = '\n';
    write_all(atomic_load_explicit(&log_fd, memory_order_relaxed), line, o);
}
