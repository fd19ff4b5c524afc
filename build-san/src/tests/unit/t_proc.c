/* Unit tests for lib/proc.c: pid files (fresh, held, stale), listeners and their errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdn/proc.h"

static char dir[] = "/tmp/t_proc.XXXXXX";

static void pidfile_fresh_held_stale(void **state)
{
    char path[256], err[256];
    snprintf(path, sizeof(path), "%s/x.pid", dir);
    assert_int_equal(cdn_pidfile_write(path, err, sizeof(err)), 0);
    FILE *f = fopen(path, "r");
    long pid = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    assert_int_equal(pid, (long)getpid());

    /* Held by a live process (us): refused, and the message says by whom. */
    assert_int_equal(cdn_pidfile_write(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "held by running process"));

    /* Stale: a pid that has exited is replaced. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    f = fopen(path, "w");
    fprintf(f, "%ld\n", (long)child);
    fclose(f);
    assert_int_equal(cdn_pidfile_write(path, err, sizeof(err)), 0);
    cdn_pidfile_remove(path);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void pidfile_bad_dir(void **state)
{
    char err[256];
    assert_int_equal(cdn_pidfile_write("/nonexistent-dir/x.pid", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/x.pid"));
}

static void listen_and_conflict(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    char err[256], buf[64];
    int fd = cdn_listen_tcp((void *)&sin, sizeof(sin), 0, err, sizeof(err));
    assert_true(fd >= 0);
    socklen_t len = sizeof(sin);
    getsockname(fd, (void *)&sin, &len);
    assert_true(ntohs(sin.sin_port) != 0);
    /* The same address again, without SO_REUSEPORT: a clear error naming it. */
    int fd2 = cdn_listen_tcp((void *)&sin, sizeof(sin), 0, err, sizeof(err));
    assert_int_equal(fd2, -1);
    char want[80];
    snprintf(want, sizeof(want), "bind %s: Address already in use", cdn_addr_str((void *)&sin, buf, sizeof(buf)));
    assert_string_equal(err, want);
    close(fd);

    int u = cdn_bind_udp((void *)&sin, sizeof(sin), 0, err, sizeof(err));
    assert_true(u >= 0);
    close(u);
}

static void addr_strings(void **state)
{
    char buf[64];
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_string_equal(cdn_addr_str((void *)&sin, buf, sizeof(buf)), "127.0.0.1:8080");
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
    inet_pton(AF_INET6, "::1", &s6.sin6_addr);
    assert_string_equal(cdn_addr_str((void *)&s6, buf, sizeof(buf)), "[::1]:53");
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pidfile_fresh_held_stale),
        cmocka_unit_test(pidfile_bad_dir),
        cmocka_unit_test(listen_and_conflict),
        cmocka_unit_test(addr_strings),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
