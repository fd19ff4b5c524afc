/* lib/proc.c - process chores every daemon shares: the version line, pid files and listening
 * sockets. Errors are returned as text for the caller to log; nothing here prints or exits. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ares.h>
#include <curl/curl.h>
#include <h2o.h>
#include <openssl/opensslv.h>
#include <yaml.h>

#include "cdn/proc.h"

void cdn_print_version(const char *prog)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    printf("%s %s (h2o %s, libcurl %s, c-ares %s, libyaml %s, %s)\n", prog, PACKAGE_VERSION, H2O_VERSION,
           cv->version, ares_version(NULL), yaml_get_version_string(), OPENSSL_VERSION_TEXT);
}

/* A pid file whose process is gone is stale and may be replaced; a live one is not. */
int cdn_pidfile_write(const char *path, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char buf[32];
            int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
            ssize_t w = write(fd, buf, (size_t)n);
            int saved = errno;
            close(fd);
            if (w != n) {
                unlink(path);
                snprintf(err, errlen, "pid file %s: write: %s", path, strerror(w < 0 ? saved : EIO));
                return -1;
            }
            return 0;
        }
        if (errno != EEXIST) {
            snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
            return -1;
        }
        FILE *f = fopen(path, "r");
        long pid = 0;
        if (f != NULL) {
            if (fscanf(f, "%ld", &pid) != 1)
                pid = 0;
            fclose(f);
        }
        if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
            snprintf(err, errlen, "pid file %s is held by running process %ld", path, pid);
            return -1;
        }
        unlink(path); /* stale: its process is gone */
    }
    snprintf(err, errlen, "pid file %s: could not replace a stale file", path);
    return -1;
}

void cdn_pidfile_remove(const char *path)
{
    if (path != NULL)
        unlink(path);
}

const char *cdn_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
    } else {
        snprintf(buf, len, "(family %d)", sa->sa_family);
    }
    return buf;
}

static int open_socket(const struct sockaddr *sa, socklen_t len, int type, int reuseport, char *err,
                       size_t errlen)
{
    char where[80];
    int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket %s: %s", cdn_addr_str(sa, where, sizeof(where)), strerror(errno));
        return -1;
    }
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, sa, len) != 0) {
        snprintf(err, errlen, "bind %s: %s", cdn_addr_str(sa, where, sizeof(where)), strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int cdn_listen_tcp(const struct sockaddr *sa, socklen_t len, int reuseport, char *err, size_t errlen)
{
    int fd = open_socket(sa, len, SOCK_STREAM, reuseport, err, errlen);
    if (fd < 0)
        return -1;
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (listen(fd, SOMAXCONN) != 0) {
        char where[80];
        snprintf(err, errlen, "listen %s: %s", cdn_addr_str(sa, where, sizeof(where)), strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int cdn_bind_udp(const struct sockaddr *sa, socklen_t len, int reuseport, char *err, size_t errlen)
{
    return open_socket(sa, len, SOCK_DGRAM, reuseport, err, errlen);
}
