/* lab/health/cdn_health.c - cdn-health: the per-edge health agent that drives anycast routing.
 *
 * Runs in the edge's namespace. Every --interval it GETs the edge's /healthz (HTTP/1.0, whole
 * check bounded by --timeout); --rise successes in a row announce the anycast routes (`enable
 * anycast` on the edge's BIRD control socket), --fall failures withdraw them (`disable anycast`).
 * The BGP session stays up: only an UPDATE goes out. The wanted state is re-sent every second
 * (both commands are idempotent), so a BIRD that restarted (its static protocol starts disabled)
 * gets the routes back without waiting for a transition. Each transition is logged with the
 * CLOCK_MONOTONIC time, which cdn-lab's fault records and cdn-load's logs share.
 * Settings come from -c FILE (YAML: url, socket, protocol, interval, timeout, rise, fall; see
 * docs/LAB.md) and/or options, options winning; -t checks them and exits, like the other daemons. */
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

#include "lab/lib/anycast.h"
#include "cdn/config.h"

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
    fprintf(f, "Usage: " PROG " -u http://ADDR:PORT/PATH -s BIRD.ctl [-p PROTOCOL] [-i MS] [-T MS] [-r N] [-f N]\n"
               "       " PROG " -c FILE [-t] [options]\n"
               "  -u, --url URL       health URL (IPv4 address, HTTP)\n"
               "  -s, --socket FILE   BIRD control socket\n"
               "  -p, --protocol P    BIRD protocol to enable/disable (default anycast)\n"
               "  -i, --interval MS   check interval (100)      -T, --timeout MS  check timeout (200)\n"
               "  -r, --rise N        successes to announce (3)  -f, --fall N      failures to withdraw (3)\n"
               "  -c, --config FILE   YAML with the same keys: url, socket, protocol, interval, timeout, rise, fall\n"
               "  -t, --test          check the settings and exit\n"
               "  -h, --help, -V, --version\n");
}

struct hc_conf {
    const char *url, *socket, *protocol;
    uint64_t interval, timeout; /* ms */
    unsigned rise, fall;
};

static const cdn_conf_field_t conf_fields[] = {
    {"url", CDN_CT_STR, offsetof(struct hc_conf, url)},
    {"socket", CDN_CT_STR, offsetof(struct hc_conf, socket)},
    {"protocol", CDN_CT_STR, offsetof(struct hc_conf, protocol)},
    {"interval", CDN_CT_DURATION, offsetof(struct hc_conf, interval)},
    {"timeout", CDN_CT_DURATION, offsetof(struct hc_conf, timeout)},
    {"rise", CDN_CT_UINT, offsetof(struct hc_conf, rise), .min = 1, .max = 100},
    {"fall", CDN_CT_UINT, offsetof(struct hc_conf, fall), .min = 1, .max = 100},
    {NULL}};

/* The URL's parts; -1 when it is not http://IPV4:PORT/PATH. */
static int parse_url(const char *url, struct sockaddr_in *sa, char *host, size_t hl, char *target, size_t tl)
{
    char h[64], tg[256] = "/";
    unsigned port = 80;
    if (!url || sscanf(url, "http://%63[0-9.]:%u%255s", h, &port, tg) < 2 || port < 1 || port > 65535) return -1;
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, h, &sa->sin_addr) != 1) return -1;
    snprintf(host, hl, "%s", h);
    snprintf(target, tl, "%s", tg);
    return 0;
}

/* Settings from the file, checked with the file's line and column; 0 or -1 with err. */
static int load_conf(const char *path, struct hc_conf *hc, cdn_conf_t **c, cdn_conf_err_t *err)
{
    if (!(*c = cdn_conf_load_file(path, err))) return -1;
    const cdn_conf_node_t *root = cdn_conf_root(*c);
    if (cdn_conf_decode(*c, root, conf_fields, hc, err) < 0) return -1;
    struct sockaddr_in sa;
    char h[64], tg[256];
    if (hc->url && parse_url(hc->url, &sa, h, sizeof(h), tg, sizeof(tg)) < 0)
        return cdn_conf_fail(*c, cdn_conf_get(root, "url"), err, "url: expected http://IPV4:PORT/PATH");
    if (hc->interval < 10) return cdn_conf_fail(*c, cdn_conf_get(root, "interval"), err, "interval: at least 10ms");
    if (hc->timeout < 10) return cdn_conf_fail(*c, cdn_conf_get(root, "timeout"), err, "timeout: at least 10ms");
    return 0;
}

/* Probes the URL every interval and tells BIRD to enable or disable the protocol on each
 * transition (and again every second, so a restarted BIRD learns it), until SIGTERM/SIGINT. */
static void run(const struct hc_conf *hs, struct sockaddr_in *sa, const char *host, const char *target)
{
    const char *url = hs->url, *ctl = hs->socket, *proto = hs->protocol;
    int interval = (int)hs->interval, timeout = (int)hs->timeout;
    unsigned rise = hs->rise, fall = hs->fall;
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
        int ok = check(sa, host, target, timeout, why, sizeof(why));
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
}

int main(int argc, char **argv)
{
    struct hc_conf hs = {.protocol = "anycast", .interval = 100, .timeout = 200, .rise = 3, .fall = 3};
    const char *conf_path = NULL;
    int test = 0, c;
    static const char opts[] = "u:s:p:i:T:r:f:c:thV";
    static const struct option lo[] = {{"url", 1, NULL, 'u'},     {"socket", 1, NULL, 's'}, {"protocol", 1, NULL, 'p'},
                                       {"interval", 1, NULL, 'i'}, {"timeout", 1, NULL, 'T'}, {"rise", 1, NULL, 'r'},
                                       {"fall", 1, NULL, 'f'},     {"config", 1, NULL, 'c'}, {"test", 0, NULL, 't'},
                                       {"help", 0, NULL, 'h'},     {"version", 0, NULL, 'V'}, {NULL, 0, NULL, 0}};
    /* first pass: the file (and -t, --help, --version); second pass: options over the file */
    while ((c = getopt_long(argc, argv, opts, lo, NULL)) != -1) {
        switch (c) {
        case 'c': conf_path = optarg; break;
        case 't': test = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " " PACKAGE_VERSION "\n"); return 0;
        case '?': usage(stderr); return 2;
        default: break;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    cdn_conf_t *cf = NULL;
    cdn_conf_err_t err;
    if (conf_path && load_conf(conf_path, &hs, &cf, &err) < 0) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        cdn_conf_free(cf);
        return 1;
    }
    optind = 0; /* GNU getopt: a full re-scan */
    while ((c = getopt_long(argc, argv, opts, lo, NULL)) != -1) {
        switch (c) {
        case 'u': hs.url = optarg; break;
        case 's': hs.socket = optarg; break;
        case 'p': hs.protocol = optarg; break;
        case 'i': hs.interval = strtoull(optarg, NULL, 10); break;
        case 'T': hs.timeout = strtoull(optarg, NULL, 10); break;
        case 'r': hs.rise = (unsigned)atoi(optarg); break;
        case 'f': hs.fall = (unsigned)atoi(optarg); break;
        default: break;
        }
    }
    char host[64], target[256];
    struct sockaddr_in sa;
    const char *bad = !hs.url ? "no health URL (-u or url:)" : !hs.socket ? "no BIRD control socket (-s or socket:)"
                      : parse_url(hs.url, &sa, host, sizeof(host), target, sizeof(target)) < 0
                          ? "the URL must be http://IPV4:PORT/PATH"
                      : hs.interval < 10 || hs.timeout < 10 || hs.interval > 3600000 || hs.timeout > 3600000
                          ? "interval and timeout: 10 ms to 1 h"
                      : hs.rise < 1 || hs.fall < 1 || hs.rise > 100 || hs.fall > 100 ? "rise and fall: 1 to 100"
                                                                                         : NULL;
    if (bad) {
        fprintf(stderr, PROG ": %s\n", bad);
        if (!test) usage(stderr);
        cdn_conf_free(cf);
        return test ? 1 : 2;
    }
    if (test) {
        printf(PROG ": %s: configuration OK (%s every %llu ms, protocol %s on %s)\n", conf_path ? conf_path : "options",
               hs.url, (unsigned long long)hs.interval, hs.protocol, hs.socket);
        cdn_conf_free(cf);
        return 0;
    }
    run(&hs, &sa, host, target);
    printf("%.3f stop\n", mono_ms() / 1e3);
    cdn_conf_free(cf); /* the strings above may point into it */
    return 0;
}
