/* lib/alog.c - access-log writers: Apache/nginx "combined" and JSON lines.
 *
 * Rules:
 * - cdn_alog_format() is pure (its only input besides the entry is the process time zone, for
 *   combined's local time) and snprintf-like: it returns the length it needed, so callers retry
 *   with a bigger buffer; cdn_alog_write() does, then hands the line to one write(2) on an
 *   O_APPEND descriptor (lines from several threads never interleave).
 * - Everything a client controls is escaped. Combined: " and \ get a backslash, bytes below 0x20
 *   and from 0x7f are \xHH (as Apache and nginx do). JSON: RFC 8259 escapes; invalid UTF-8 bytes
 *   become U+FFFD so every line is valid JSON.
 * - Reopen (SIGHUP after rotation) dup2()s the new file onto the same descriptor number, so a
 *   concurrent writer never writes to a closed descriptor. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cdn/log.h"

struct cdn_alog {
    int fd;
    enum cdn_alog_format fmt;
    char *path; /* NULL: stdout */
};

/* An snprintf-like appender: counts everything, stores what fits, keeps buf NUL-terminated. */
struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Combined-log escaping; NULL and "" are "-". */
static void put_clf(struct out *o, const char *s)
{
    if (s == NULL || *s == '\0') {
        put(o, "-", 1);
        return;
    }
    const char *run = s;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            continue;
        put(o, run, (size_t)(s - run));
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            put(o, e, 2);
        } else {
            putf(o, "\\x%02X", ch);
        }
        run = s + 1;
    }
    put(o, run, (size_t)(s - run));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid (overlong, surrogate, > U+10FFFF,
 * truncated). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string value, or null. */
static void put_json(struct out *o, const char *str)
{
    if (str == NULL) {
        puts_(o, "null");
        return;
    }
    put(o, "\"", 1);
    const unsigned char *s = (const unsigned char *)str, *run = s;
    while (*s) {
        unsigned char ch = *s;
        size_t n = 1;
        const char *rep = NULL;
        char tmp[8];
        if (ch == '"')
            rep = "\\\"";
        else if (ch == '\\')
            rep = "\\\\";
        else if (ch == '\n')
            rep = "\\n";
        else if (ch == '\r')
            rep = "\\r";
        else if (ch == '\t')
            rep = "\\t";
        else if (ch == '\b')
            rep = "\\b";
        else if (ch == '\f')
            rep = "\\f";
        else if (ch < 0x20 || ch == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
            rep = tmp;
        } else if (ch >= 0x80 && (n = utf8_len(s)) == 0) {
            rep = "\\ufffd";
            n = 1;
        }
        if (rep == NULL) {
            s += n;
            continue;
        }
        put(o, (const char *)run, (size_t)(s - run));
        puts_(o, rep);
        s += n;
        run = s;
    }
    put(o, (const char *)run, (size_t)(s - run));
    put(o, "\"", 1);
}

static void put_combined(struct out *o, const struct cdn_alog_entry *e)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t t = e->start.tv_sec;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    put_clf(o, e->remote_addr);
    putf(o, " - - [%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld] \"", tm.tm_mday, months[tm.tm_mon % 12],
         tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
    if (e->method == NULL && e->target == NULL && e->protocol == NULL) {
        put(o, "-", 1); /* no request line at all (e.g. a connection that never sent one) */
    } else {
        put_clf(o, e->method);
        put(o, " ", 1);
        put_clf(o, e->target);
        put(o, " ", 1);
        put_clf(o, e->protocol);
    }
    putf(o, "\" %d ", e->status);
    if (e->bytes_sent == 0)
        put(o, "-", 1); /* %b: "-" rather than 0 */
    else
        putf(o, "%llu", (unsigned long long)e->bytes_sent);
    put(o, " \"", 2);
    put_clf(o, e->referer);
    put(o, "\" \"", 3);
    put_clf(o, e->user_agent);
    put(o, "\"\n", 2);
}

static void put_jsonl(struct out *o, const struct cdn_alog_entry *e)
{
    struct tm tm;
    time_t t = e->start.tv_sec;
    gmtime_r(&t, &tm);
    putf(o, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"remote\":", tm.tm_year + 1900, tm.tm_mon + 1,
         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(e->start.tv_usec / 1000 % 1000));
    put_json(o, e->remote_addr);
    puts_(o, ",\"host\":");
    put_json(o, e->host);
    puts_(o, ",\"method\":");
    put_json(o, e->method);
    puts_(o, ",\"target\":");
    put_json(o, e->target);
    puts_(o, ",\"proto\":");
    put_json(o, e->protocol);
    putf(o, ",\"status\":%d,\"bytes\":%llu,\"referer\":", e->status, (unsigned long long)e->bytes_sent);
    put_json(o, e->referer);
    puts_(o, ",\"ua\":");
    put_json(o, e->user_agent);
    putf(o, ",\"duration_ms\":%llu.%03llu,\"cache_status\":", (unsigned long long)(e->duration_us / 1000),
         (unsigned long long)(e->duration_us % 1000));
    put_json(o, e->cache_status);
    puts_(o, ",\"upstream\":");
    put_json(o, e->upstream);
    puts_(o, ",\"request_id\":");
    put_json(o, e->request_id);
    if (e->step != NULL) {
        puts_(o, ",\"step\":");
        put_json(o, e->step);
    }
    puts_(o, "}\n");
}

size_t cdn_alog_format(enum cdn_alog_format fmt, const struct cdn_alog_entry *e, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0};
    if (fmt == CDN_ALOG_JSON)
        put_jsonl(&o, e);
    else
        put_combined(&o, e);
    if (cap > 0)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

int cdn_alog_format_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "combined") == 0)
        return CDN_ALOG_COMBINED;
    if (strcmp(s, "json") == 0)
        return CDN_ALOG_JSON;
    return -1;
}

cdn_alog_t *cdn_alog_open(const char *path, enum cdn_alog_format fmt)
{
    if (path == NULL) {
        errno = EINVAL;
        return NULL;
    }
    cdn_alog_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->fmt = fmt;
    if (strcmp(path, "-") == 0) {
        a->fd = 1;
        return a;
    }
    if ((a->path = strdup(path)) == NULL ||
        (a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        int saved = errno;
        free(a->path);
        free(a);
        errno = saved;
        return NULL;
    }
    return a;
}

int cdn_alog_reopen(cdn_alog_t *a)
{
    if (a == NULL || a->path == NULL)
        return 0;
    int fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int r = dup3(fd, a->fd, O_CLOEXEC);
    int saved = errno;
    close(fd);
    errno = saved;
    return r < 0 ? -1 : 0;
}

void cdn_alog_write(cdn_alog_t *a, const struct cdn_alog_entry *e)
{
    if (a == NULL || e == NULL)
        return;
    char stack[4096], *line = stack;
    size_t n = cdn_alog_format(a->fmt, e, stack, sizeof(stack));
    if (n >= sizeof(stack)) {
        if ((line = malloc(n + 1)) == NULL)
            return;
        cdn_alog_format(a->fmt, e, line, n + 1);
    }
    const char *p = line;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(a->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    if (line != stack)
        free(line);
}

void cdn_alog_close(cdn_alog_t *a)
{
    if (a == NULL)
        return;
    if (a->path != NULL)
        close(a->fd);
    free(a->path);
    free(a);
}

/* Dotted quad by hand: glibc's inet_ntop formats IPv4 with sprintf, and this runs for every
 * request (X-Forwarded-For, access logs). */
static void ipv4_text(const unsigned char *a, char *buf)
{
    char *p = buf;
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = '.';
    }
    p[-1] = '\0';
}

const char *cdn_peer_text(const struct sockaddr *sa, char *buf)
{
    memcpy(buf, "-", 2);
    if (sa == NULL)
        return buf;
    if (sa->sa_family == AF_INET) {
        ipv4_text((const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr, buf);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            ipv4_text(a->s6_addr + 12, buf);
        else
            inet_ntop(AF_INET6, a, buf, CDN_PEER_TEXT_MAX);
    }
    return buf;
}
