/* cdn/log.h - the error log and the access log.
 *
 * Owns: the process-wide error log (levels, one line per event, to stderr or a file, reopened on
 * SIGHUP) and access-log writers (combined or JSON lines). Writes are one write(2) per line on an
 * O_APPEND descriptor, so lines from several threads never interleave. */
#ifndef CDN_LOG_H
#define CDN_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

enum cdn_log_level { CDN_LOG_DEBUG, CDN_LOG_INFO, CDN_LOG_NOTICE, CDN_LOG_WARN, CDN_LOG_ERR };

/* Opens the error log. path NULL or "-" means stderr. prog names the program in every line.
 * Returns 0, or -1 with errno set (the previous log stays in use). */
int cdn_log_open(const char *prog, const char *path, enum cdn_log_level min);
/* Reopens the file after rotation (SIGHUP). */
int cdn_log_reopen(void);
void cdn_log_set_level(enum cdn_log_level min);
enum cdn_log_level cdn_log_get_level(void);
/* "debug", "info", "notice", "warn", "error" -> level; -1 if unknown. */
int cdn_log_level_parse(const char *s);
const char *cdn_log_level_name(enum cdn_log_level l);

/* One line: "2026-11-25T20:43:49.123Z prog[pid] level: message". */
void cdn_log(enum cdn_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define cdn_debug(...) cdn_log(CDN_LOG_DEBUG, __VA_ARGS__)
#define cdn_info(...) cdn_log(CDN_LOG_INFO, __VA_ARGS__)
#define cdn_notice(...) cdn_log(CDN_LOG_NOTICE, __VA_ARGS__)
#define cdn_warn(...) cdn_log(CDN_LOG_WARN, __VA_ARGS__)
#define cdn_err(...) cdn_log(CDN_LOG_ERR, __VA_ARGS__)

/* --- access log --- */
enum cdn_alog_format { CDN_ALOG_COMBINED, CDN_ALOG_JSON };

/* What one request leaves behind. Any string may be NULL (written as "-" or omitted/null). */
struct cdn_alog_entry {
    struct timeval start;     /* when the request arrived */
    const char *remote_addr;  /* "127.0.0.1" */
    const char *host;         /* Host / :authority */
    const char *method;
    const char *target;       /* path and query as received */
    const char *protocol;     /* "HTTP/1.1", "HTTP/2" */
    int status;
    uint64_t bytes_sent;      /* body bytes */
    const char *referer;
    const char *user_agent;
    uint64_t duration_us;     /* start to last byte */
    const char *cache_status; /* Cache-Status value, JSON only */
    const char *upstream;     /* backend/origin that answered, JSON only */
    const char *request_id;   /* X-Request-Id, JSON only */
    const char *step;         /* the step the request ended in (cdn-edge: hit, miss, pass, deliver,
                                 synth, ...), JSON only; NULL: left out */
};

typedef struct cdn_alog cdn_alog_t;

/* path "-" means stdout. Returns NULL with errno set. */
cdn_alog_t *cdn_alog_open(const char *path, enum cdn_alog_format fmt);
int cdn_alog_reopen(cdn_alog_t *a);
void cdn_alog_write(cdn_alog_t *a, const struct cdn_alog_entry *e);
void cdn_alog_close(cdn_alog_t *a);
/* Formats one line (with '\n') into buf; returns the length it needed (like snprintf), so a
 * result >= cap means truncated. Pure: the unit tests call it directly. */
size_t cdn_alog_format(enum cdn_alog_format fmt, const struct cdn_alog_entry *e, char *buf, size_t cap);
/* "combined" / "json" -> format; -1 if unknown. */
int cdn_alog_format_parse(const char *s);

/* A peer's address as the access log writes it: "192.0.2.1", "2001:db8::1" (an IPv4-mapped IPv6
 * address as its IPv4 text), "-" for anything else or NULL. buf holds CDN_PEER_TEXT_MAX bytes;
 * returns buf. */
#define CDN_PEER_TEXT_MAX 64
struct sockaddr;
const char *cdn_peer_text(const struct sockaddr *sa, char *buf);

#endif
