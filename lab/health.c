/* lab/health.c - cdn-health: the per-edge health agent that drives anycast routing.
 *
 * Runs in the edge's namespace. Every --interval it GETs the edge's /healthz (HTTP/1.0, whole
 * check bounded by --timeout); --rise successes in a row announce the anycast routes (`enable
 * anycast` on the edge's BIRD control socket), --fall failures withdraw them (`disable anycast`).
 * The BGP session stays up: only an UPDATE goes out. The wanted state is re-sent every second
 * (both commands are idempotent), so a BIRD that restarted (its static protocol starts disabled)
 * gets the routes back without waiting for a transition. Each transition is logged with the
 * CLOCK_MONOTONIC time, which cdn-lab's fault records and cdn-load's logs share. */
#include "config.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "anycast.h"

#define PROG "cdn-health"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One check: 1 healthy (HTTP 200), 0 not, with why. */
static int check(const struct sockaddr_in *sa, const char *host, const char *target, int timeout_ms, char *why,
                 size_t wl)
{
    double deadline = mono_ms() + timeout_ms;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, wl, "socket: %s", strerror(errno));
        return 0;
    }
    int ok = 0;
    char buf[512];
    size_t len = 0;
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) {
        snprintf(why, wl, "connect: %s", strerror(errno));
        goto out;
    }
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int left = (int)(deadline - mono_ms());
    if (left <= 0 || poll(&pf, 1, left) <= 0) {
        snprintf(why, wl, "connect: timeout");
        goto out;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) {
        snprintf(why, wl, "connect: %s", strerror(soerr));
        goto out;
    }
    int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: " PROG "\r\n\r\n", target, host);
    if (write(fd, buf, (size_t)n) != n) {
        snprintf(why, wl, "write: %s", strerror(errno));
        goto out;
    }
    while (len < 12) {
        pf.events = POLLIN;
        left = (int)(deadline - mono_ms());
        if (left <= 0 || poll(&pf, 1, left) <= 0) {
            snprintf(why, wl, "response: timeout");
            goto out;
        }
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0) {
            snprintf(why, wl, "response: %s", r < 0 ? strerror(errno) : "closed");
            goto out;
        }
        len += (size_t)r;
    }
    buf[len] = 0;
    ok = !strncmp(buf, "HTTP/1.", 7) && !strncmp(buf + 8, " 200", 4);
    if (!ok) snprintf(why, wl, "status: %.12s", buf);
out:
    close(fd);
    return ok;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: " PROG " -u http://ADDR:PORT/PATH -s BIRD.ctl [-p PROTOCOL] [-i MS] [-t MS] [-r N] [-f N]\n"
               "  -u  health URL (IPv4 address, HTTP)      -s  BIRD control socket\n"
               "  -p  BIRD protocol to enable/disable (default anycast)\n"
               "  -i  check interval ms (100)  -t  check timeout ms (200)  -r  rise (3)  -f  fall (3)\n"
               "  --help, --version\n");
}

int main(int argc, char **argv)
{
    const char *url = NULL, *ctl = NULL, *proto = "anycast";
    int interval = 100, timeout = 200;
    unsigned rise = 3, fall = 3;
    int c;
    static const struct option lo[] = {{"help", 0, NULL, 'h'}, {"version", 0, NULL, 'V'}, {NULL, 0, NULL, 0}};
    while ((c = getopt_long(argc, argv, "u:s:p:i:t:r:f:hV", lo, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; break;
        case 's': ctl = optarg; break;
        case 'p': proto = optarg; break;
        case 'i': interval = atoi(optarg); break;
        case 't': timeout = atoi(optarg); break;
        case 'r': rise = (unsigned)atoi(optarg); break;
        case 'f': fall = (unsigned)atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return 0;
        default: usage(stderr); return 2;
        }
    }
    char host[64], target[256] = "/";
    unsigned port = 80;
    if (!url || !ctl || interval < 10 || timeout < 10 ||
        sscanf(url, "http://%63[0-9.]:%u%255s", host, &port, target) < 2 || port > 65535) {
        usage(stderr);
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, PROG ": bad address in %s\n", url);
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct lab_hc hc;
    lab_hc_init(&hc, rise, fall);
    printf("%.3f start %s rise %u fall %u every %d ms (timeout %d ms), protocol %s on %s\n", mono_ms() / 1e3, url, rise,
           fall, interval, timeout, proto, ctl);
    double next_assert = 0;
    int applied = -2; /* what BIRD last confirmed */
    char why[160] = "", reply[512];
    while (!stop) {
        double t0 = mono_ms();
        int ok = check(&sa, host, target, timeout, why, sizeof(why));
        int tr = lab_hc_feed(&hc, ok);
        int want = hc.up == 1;
        if (tr)
            printf("%.3f %s (%s)\n", mono_ms() / 1e3, tr > 0 ? "announce" : "withdraw",
                   tr > 0 ? "healthy" : why);
        if (tr || want != applied || t0 >= next_assert) {
            char cmd[128];
            snprintf(cmd, sizeof(cmd), "%s %s", want ? "enable" : "disable", proto);
            int code = lab_bird_cmd(ctl, cmd, 1000, reply, sizeof(reply));
            for (size_t l = strlen(reply); l && (reply[l - 1] == '\n' || reply[l - 1] == ' '); l--) reply[l - 1] = 0;
            for (char *nl = strchr(reply, '\n'); nl; nl = strchr(nl, '\n')) *nl = ' ';
            if (code < 0 || code >= 8000) {
                if (applied != -3) printf("%.3f bird: %s: %s\n", mono_ms() / 1e3, cmd, reply[0] ? reply : "error");
                applied = -3; /* report once until it works again */
            } else {
                if (applied != want) printf("%.3f bird: %s: %s\n", mono_ms() / 1e3, cmd, reply);
                applied = want;
            }
            next_assert = t0 + 1000;
        }
        double left = t0 + interval - mono_ms();
        if (left > 0) usleep((useconds_t)(left * 1000));
    }
    printf("%.3f stop\n", mono_ms() / 1e3);
    return 0;
}
