/* lab/lib/birdctl.c - talking to BIRD over its control socket (what birdc does), and the health
 * agent's rise/fall state machine. See anycast.h. */
#include "config.h"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lab/lib/anycast.h"

static void append(char *out, size_t outlen, const char *s, size_t n)
{
    if (!out || !outlen) return;
    size_t have = strnlen(out, outlen - 1);
    if (n > outlen - 1 - have) n = outlen - 1 - have;
    memcpy(out + have, s, n);
    out[have + n] = 0;
}

int lab_bird_reply_parse(const char *buf, size_t len, int *code, char *out, size_t outlen)
{
    if (out && outlen) *out = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) return 0; /* a partial line: need more */
        size_t ll = (size_t)(nl - (buf + pos));
        const char *l = buf + pos;
        pos += ll + 1;
        if (ll >= 1 && l[0] == ' ') { /* continuation of the previous code */
            append(out, outlen, l + 1, ll - 1);
            append(out, outlen, "\n", 1);
            continue;
        }
        if (ll < 5) return -1;
        int c = 0;
        for (int i = 0; i < 4; i++) {
            if (l[i] < '0' || l[i] > '9') return -1;
            c = c * 10 + (l[i] - '0');
        }
        if (l[4] != '-' && l[4] != ' ') return -1;
        append(out, outlen, l + 5, ll - 5);
        append(out, outlen, "\n", 1);
        if (l[4] == ' ') {
            *code = c;
            return 1;
        }
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Reads until a complete reply; 1 with *code, or -1 (timeout, closed, malformed). */
static int read_reply(int fd, double deadline, char *buf, size_t cap, int *code, char *out, size_t outlen)
{
    size_t len = 0;
    for (;;) {
        int r = lab_bird_reply_parse(buf, len, code, out, outlen);
        if (r != 0) return r;
        if (len + 1 >= cap) return -1; /* a reply bigger than we read: not for us */
        int left = (int)(deadline - now_ms());
        if (left <= 0) return -1;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, left) <= 0) return -1;
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0) return -1;
        len += (size_t)n;
    }
}

int lab_bird_cmd(const char *ctl, const char *cmd, int timeout_ms, char *out, size_t outlen)
{
    char buf[65536];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (out && outlen) *out = 0;
    if (strlen(ctl) >= sizeof(sa.sun_path)) {
        snprintf(out, outlen, "control socket path too long: %s", ctl);
        return -1;
    }
    memcpy(sa.sun_path, ctl, strlen(ctl) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(out, outlen, "connect %s: %s", ctl, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    double deadline = now_ms() + timeout_ms;
    int code = -1;
    if (read_reply(fd, deadline, buf, sizeof(buf), &code, NULL, 0) < 0 || code != 1) { /* "0001 BIRD x ready." */
        snprintf(out, outlen, "%s: no greeting", ctl);
        close(fd);
        return -1;
    }
    char line[512];
    int n = snprintf(line, sizeof(line), "%s\n", cmd);
    if (n <= 0 || (size_t)n >= sizeof(line) || write(fd, line, (size_t)n) != n) {
        snprintf(out, outlen, "%s: write failed", ctl);
        close(fd);
        return -1;
    }
    int r = read_reply(fd, deadline, buf, sizeof(buf), &code, out, outlen);
    close(fd);
    if (r < 0) {
        snprintf(out, outlen, "%s: no complete reply to '%s'", ctl, cmd);
        return -1;
    }
    return code;
}

void lab_hc_init(struct lab_hc *h, unsigned rise, unsigned fall)
{
    memset(h, 0, sizeof(*h));
    h->rise = rise ? rise : 1;
    h->fall = fall ? fall : 1;
    h->up = -1;
}

int lab_hc_feed(struct lab_hc *h, int ok)
{
    if (ok) {
        h->bad_run = 0;
        if (h->ok_run < h->rise) h->ok_run++;
        if (h->up != 1 && h->ok_run >= h->rise) {
            h->up = 1;
            return 1;
        }
    } else {
        h->ok_run = 0;
        if (h->bad_run < h->fall) h->bad_run++;
        if (h->up == 1 && h->bad_run >= h->fall) {
            h->up = 0;
            return -1;
        }
        if (h->up == -1 && h->bad_run >= h->fall) h->up = 0; /* never came up: stays withdrawn */
    }
    return 0;
}
