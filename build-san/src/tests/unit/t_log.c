/* Unit tests for lib/log.c and lib/alog.c: exact combined and JSON lines (escaping, nulls, time
 * zones, truncation), the access-log file writer with reopen after rotation, and the error log:
 * line format, level filtering, escaping, reopen, whole lines under concurrent writers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cdn/log.h"

static char dir[256];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static struct cdn_alog_entry sample(void)
{
    struct cdn_alog_entry e = {
        .start = {1764103429, 123456}, /* 2025-11-25T20:43:49.123456Z */
        .remote_addr = "127.0.0.1",
        .host = "shop.example",
        .method = "GET",
        .target = "/p/42?x=1",
        .protocol = "HTTP/1.1",
        .status = 200,
        .bytes_sent = 5120,
        .referer = "http://shop.example/",
        .user_agent = "curl/7.88.1",
        .duration_us = 1234,
        .cache_status = "edge; hit",
        .upstream = "127.0.0.1:9001",
        .request_id = "abc-1",
    };
    return e;
}

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static void combined_exact(void **state)
{
    char buf[1024];
    struct cdn_alog_entry e = sample();
    set_tz("UTC");
    size_t n = cdn_alog_format(CDN_ALOG_COMBINED, &e, buf, sizeof(buf));
    const char *want = "127.0.0.1 - - [25/Nov/2025:20:43:49 +0000] \"GET /p/42?x=1 HTTP/1.1\" 200 5120 "
                       "\"http://shop.example/\" \"curl/7.88.1\"\n";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));

    /* Local time with its offset; "-" for missing values and an empty body. */
    set_tz("CET-1");
    e.referer = NULL;
    e.user_agent = "";
    e.bytes_sent = 0;
    e.status = 304;
    cdn_alog_format(CDN_ALOG_COMBINED, &e, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1 - - [25/Nov/2025:21:43:49 +0100] \"GET /p/42?x=1 HTTP/1.1\" 304 - \"-\" \"-\"\n");
    set_tz("XYZ+5:30"); /* west of Greenwich, half-hour offset */
    e.start.tv_sec = 1767225600;    /* 2026-01-01T00:00:00Z */
    cdn_alog_format(CDN_ALOG_COMBINED, &e, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1 - - [31/Dec/2025:18:30:00 -0530] \"GET /p/42?x=1 HTTP/1.1\" 304 - \"-\" \"-\"\n");

    /* No request line at all. */
    set_tz("UTC");
    struct cdn_alog_entry empty = {.start = {0, 0}, .status = 400};
    cdn_alog_format(CDN_ALOG_COMBINED, &empty, buf, sizeof(buf));
    assert_string_equal(buf, "- - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 - \"-\" \"-\"\n");
}

static void combined_escaping(void **state)
{
    char buf[1024];
    struct cdn_alog_entry e = sample();
    set_tz("UTC");
    e.target = "/a\"b\\c\n\x01\x7f\xc3\xa9";
    e.user_agent = "evil\" \"injected";
    e.referer = "\t";
    cdn_alog_format(CDN_ALOG_COMBINED, &e, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1 - - [25/Nov/2025:20:43:49 +0000] \"GET /a\\\"b\\\\c\\x0A\\x01\\x7F\\xC3\\xA9 HTTP/1.1\" "
                             "200 5120 \"\\x09\" \"evil\\\" \\\"injected\"\n");
}

static void json_exact(void **state)
{
    char buf[2048];
    struct cdn_alog_entry e = sample();
    size_t n = cdn_alog_format(CDN_ALOG_JSON, &e, buf, sizeof(buf));
    const char *want = "{\"ts\":\"2025-11-25T20:43:49.123Z\",\"remote\":\"127.0.0.1\",\"host\":\"shop.example\","
                       "\"method\":\"GET\",\"target\":\"/p/42?x=1\",\"proto\":\"HTTP/1.1\",\"status\":200,"
                       "\"bytes\":5120,\"referer\":\"http://shop.example/\",\"ua\":\"curl/7.88.1\","
                       "\"duration_ms\":1.234,\"cache_status\":\"edge; hit\",\"upstream\":\"127.0.0.1:9001\","
                       "\"request_id\":\"abc-1\"}\n";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));

    struct cdn_alog_entry z = {.start = {0, 999999}, .status = 0, .duration_us = 5000000};
    cdn_alog_format(CDN_ALOG_JSON, &z, buf, sizeof(buf));
    assert_string_equal(buf, "{\"ts\":\"1970-01-01T00:00:00.999Z\",\"remote\":null,\"host\":null,\"method\":null,"
                             "\"target\":null,\"proto\":null,\"status\":0,\"bytes\":0,\"referer\":null,\"ua\":null,"
                             "\"duration_ms\":5000.000,\"cache_status\":null,\"upstream\":null,\"request_id\":null}\n");
}

static void json_escaping(void **state)
{
    char buf[2048];
    struct cdn_alog_entry z = {.start = {0, 0}};
    /* Quotes, backslash, the short escapes, other controls, DEL, valid UTF-8 (2, 3, 4 bytes) kept,
     * invalid bytes (lone continuation, overlong, surrogate, truncated) replaced. */
    z.target = "\"\\\n\r\t\b\f\x01\x1f\x7f" "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" "|\x80|\xc0\xaf|\xed\xa0\x80|\xe2\x82";
    cdn_alog_format(CDN_ALOG_JSON, &z, buf, sizeof(buf));
    const char *t = strstr(buf, "\"target\":");
    assert_non_null(t);
    const char *want = "\"target\":\"\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                       "|\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\",";
    assert_int_equal(strncmp(t, want, strlen(want)), 0);
}

static void truncation_and_parse(void **state)
{
    struct cdn_alog_entry e = sample();
    char full[2048], small[40];
    size_t n = cdn_alog_format(CDN_ALOG_JSON, &e, full, sizeof(full));
    memset(small, 'x', sizeof(small));
    assert_int_equal(cdn_alog_format(CDN_ALOG_JSON, &e, small, sizeof(small)), n); /* needed length */
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_int_equal(strncmp(small, full, sizeof(small) - 1), 0);
    assert_int_equal(cdn_alog_format(CDN_ALOG_COMBINED, &e, NULL, 0), strlen("127.0.0.1 - - [25/Nov/2025:20:43:49 +0000] \"GET /p/42?x=1 HTTP/1.1\" 200 5120 \"http://shop.example/\" \"curl/7.88.1\"\n"));
    assert_int_equal(cdn_alog_format_parse("combined"), CDN_ALOG_COMBINED);
    assert_int_equal(cdn_alog_format_parse("json"), CDN_ALOG_JSON);
    assert_int_equal(cdn_alog_format_parse("clf"), -1);
    assert_int_equal(cdn_alog_format_parse(NULL), -1);
    assert_int_equal(cdn_log_level_parse("debug"), CDN_LOG_DEBUG);
    assert_int_equal(cdn_log_level_parse("INFO"), CDN_LOG_INFO);
    assert_int_equal(cdn_log_level_parse("notice"), CDN_LOG_NOTICE);
    assert_int_equal(cdn_log_level_parse("warn"), CDN_LOG_WARN);
    assert_int_equal(cdn_log_level_parse("warning"), CDN_LOG_WARN);
    assert_int_equal(cdn_log_level_parse("error"), CDN_LOG_ERR);
    assert_int_equal(cdn_log_level_parse("loud"), -1);
    assert_string_equal(cdn_log_level_name(CDN_LOG_NOTICE), "notice");
    assert_string_equal(cdn_log_level_name(CDN_LOG_ERR), "error");
}

static void alog_file_and_reopen(void **state)
{
    char path[300], rotated[300], want[8192];
    snprintf(path, sizeof(path), "%s/access.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/access.log.1", dir);
    cdn_alog_t *a = cdn_alog_open(path, CDN_ALOG_JSON);
    assert_non_null(a);
    struct cdn_alog_entry e = sample();
    cdn_alog_write(a, &e);
    e.status = 404;
    cdn_alog_write(a, &e);
    /* A line longer than the writer's stack buffer goes out whole too. */
    static char longua[6000];
    memset(longua, 'u', sizeof(longua) - 1);
    e.user_agent = longua;
    cdn_alog_write(a, &e);
    size_t o = 0;
    e = sample();
    o += cdn_alog_format(CDN_ALOG_JSON, &e, want + o, sizeof(want) - o);
    e.status = 404;
    o += cdn_alog_format(CDN_ALOG_JSON, &e, want + o, sizeof(want) - o);
    e.user_agent = longua;
    o += cdn_alog_format(CDN_ALOG_JSON, &e, want + o, sizeof(want) - o);
    assert_true(o < sizeof(want));
    assert_string_equal(slurp(path), want);

    /* Rotation: rename, reopen, the next line lands in a new file. */
    assert_int_equal(rename(path, rotated), 0);
    e = sample();
    e.status = 500;
    assert_int_equal(cdn_alog_reopen(a), 0);
    cdn_alog_write(a, &e);
    cdn_alog_format(CDN_ALOG_JSON, &e, want, sizeof(want));
    assert_string_equal(slurp(path), want);
    cdn_alog_close(a);
    unlink(path);
    unlink(rotated);

    errno = 0;
    assert_null(cdn_alog_open("/nonexistent/dir/access.log", CDN_ALOG_COMBINED));
    assert_int_equal(errno, ENOENT);
}

static const char *LINE_RE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z t_log\\[[0-9]+\\] "
                             "(debug|info|notice|warn|error): ";

static void error_log(void **state)
{
    char path[300], rotated[300], prefix[64];
    snprintf(path, sizeof(path), "%s/error.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/error.log.1", dir);
    assert_int_equal(cdn_log_open("/usr/sbin/t_log", path, CDN_LOG_INFO), 0);
    assert_int_equal(cdn_log_get_level(), CDN_LOG_INFO);
    cdn_debug("hidden %d", 1);
    cdn_info("shown %d", 2);
    cdn_notice("multi\nline\x01 msg");
    cdn_log_set_level(CDN_LOG_ERR);
    cdn_warn("hidden");
    cdn_err("boom: %s", "disk full");
    char *text = slurp(path);

    regex_t re;
    assert_int_equal(regcomp(&re, LINE_RE, REG_EXTENDED | REG_NEWLINE), 0);
    snprintf(prefix, sizeof(prefix), " t_log[%ld] ", (long)getpid());
    const char *want[] = {"info: shown 2", "notice: multi\\nline\\x01 msg", "error: boom: disk full"};
    char *line = text;
    for (size_t i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_int_equal(regexec(&re, line, 0, NULL, 0), 0);
        assert_non_null(strstr(line, prefix));
        const char *msg = strstr(line, "] ") + 2;
        assert_string_equal(msg, want[i]);
        line = nl + 1;
    }
    assert_string_equal(line, "");

    /* Rotation. */
    assert_int_equal(rename(path, rotated), 0);
    assert_int_equal(cdn_log_reopen(), 0);
    cdn_err("after rotation");
    text = slurp(path);
    assert_non_null(strstr(text, "error: after rotation\n"));
    assert_null(strstr(slurp(rotated), "after rotation"));

    /* An over-long message is cut, still one line. */
    static char big[10000];
    memset(big, 'b', sizeof(big) - 1);
    assert_int_equal(truncate(path, 0), 0);
    cdn_err("%s", big);
    text = slurp(path);
    size_t len = strlen(text);
    assert_true(len <= 4096);
    assert_int_equal(strchr(text, '\n') - text, (long)len - 1);
    assert_int_equal(strcmp(text + len - 5, "b...\n"), 0);

    /* A failed open keeps the current log. */
    assert_int_equal(cdn_log_open("t_log", "/nonexistent/dir/x.log", CDN_LOG_INFO), -1);
    cdn_err("still here");
    assert_non_null(strstr(slurp(path), "error: still here\n"));
    regfree(&re);
    unlink(rotated);
}

#define THREADS 4
#define LINES 2000

static void *log_worker(void *arg)
{
    for (int i = 0; i < LINES; i++)
        cdn_err("thread %ld line %d %s", (long)(intptr_t)arg, i, "padding-padding-padding-padding-padding");
    return NULL;
}

static void error_log_threads(void **state)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/threads.log", dir);
    assert_int_equal(cdn_log_open("t_log", path, CDN_LOG_INFO), 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_worker, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9T:.Z-]{24} t_log\\[[0-9]+\\] error: thread [0-3] line [0-9]+ padding-padding-padding-padding-padding$",
                             REG_EXTENDED | REG_NOSUB), 0);
    char *text = slurp(path);
    int good = 0, bad = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        regexec(&re, line, 0, NULL, 0) == 0 ? good++ : bad++;
    regfree(&re);
    assert_int_equal(good, THREADS * LINES);
    assert_int_equal(bad, 0);
    /* Back to stderr so later output does not land in the temp dir. */
    assert_int_equal(cdn_log_open("t_log", "-", CDN_LOG_INFO), 0);
    unlink(path);
}

static int setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/t_log.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/error.log", dir);
    unlink(path);
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(combined_exact),   cmocka_unit_test(combined_escaping),
        cmocka_unit_test(json_exact),       cmocka_unit_test(json_escaping),
        cmocka_unit_test(truncation_and_parse), cmocka_unit_test(alog_file_and_reopen),
        cmocka_unit_test(error_log),        cmocka_unit_test(error_log_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
