/* lab/cdnlab/wanloss.c - packet loss in the lab's WAN relays (issue 19): `cdn-lab fault wan-loss PCT
 * [--link L] [--for D]` and the drill's wan-loss.
 *
 * How: every relay (`up` starts one cdn-wanrelay per pair of regions with a delay, named
 * wan-A-B, in the wan namespace) runs with --control STATE/wan-A-B.ctl. To set a loss this writes
 * "loss P" there and sends the relay SIGHUP; to undo it removes the file and sends SIGHUP again (the
 * relay goes back to its command line, which has no loss). The relay rewrites STATE/wan-A-B.stats
 * at once with each direction's "loss", and this waits until it shows the new value: a change that
 * did not take is an error, not a silent no-op. The queues are never dropped.
 *
 * Which links (--link): "origin" (the default) is every link with an end in the origin's region:
 * the paths of the other regions' edges to the shield and the origin. "all", a region (its link to
 * the origin's region; the origin's region itself: the default), or a pair "eu-us". A link without
 * delay has no relay and cannot lose packets; a lab on loopback has none at all.
 *
 * The loss applies to everything on those links, not only origin fetches: with the default
 * topology, also the us clients' DNS queries to cdn-dns in eu. */
#include "config.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lab/cdnlab/labctl.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void relay_name(size_t i, char *out, size_t n)
{
    snprintf(out, n, "wan-%s-%s", lab_topo_reg(L.topo, (size_t)L.plan.relays[i].ra)->name,
             lab_topo_reg(L.topo, (size_t)L.plan.relays[i].rb)->name);
}

static int relay_between(int a, int b)
{
    for (size_t i = 0; i < L.plan.nrelays; i++) {
        const struct lab_relay *r = &L.plan.relays[i];
        if ((r->ra == a && r->rb == b) || (r->ra == b && r->rb == a)) return (int)i;
    }
    return -1;
}

int lab_wan_relays(void)
{
    return L.mode == LAB_NETNS ? (int)L.plan.nrelays : 0;
}

int lab_wan_select(const char *link, int *sel, char *desc, size_t dn)
{
    if (!lab_wan_relays())
        lab_die("wan-loss: this lab has no WAN relay (there is one per pair of regions with a delay, in namespace mode only)");
    int o = L.topo->origin_region, n = 0;
    memset(sel, 0, sizeof(int) * LAB_WAN_MAX);
    if (!link || !strcmp(link, "origin") || lab_topo_region(L.topo, link) == o) {
        for (size_t i = 0; i < L.plan.nrelays; i++)
            if (L.plan.relays[i].ra == o || L.plan.relays[i].rb == o) sel[i] = 1;
    } else if (!strcmp(link, "all")) {
        for (size_t i = 0; i < L.plan.nrelays; i++) sel[i] = 1;
    } else if (lab_topo_region(L.topo, link) >= 0) {
        int k = relay_between(lab_topo_region(L.topo, link), o);
        if (k < 0) lab_die("wan-loss --link %s: no relay between %s and the origin's region (no delay there)", link, link);
        sel[k] = 1;
    } else {
        /* a pair A-B; a region's name may hold '-' itself: try every split */
        int k = -1;
        char buf[128];
        snprintf(buf, sizeof(buf), "%s", link);
        for (char *d = strchr(buf, '-'); d && k < 0; d = strchr(d + 1, '-')) {
            *d = 0;
            int a = lab_topo_region(L.topo, buf), b = lab_topo_region(L.topo, d + 1);
            *d = '-';
            if (a >= 0 && b >= 0 && a != b) k = relay_between(a, b);
        }
        if (k < 0) lab_die("wan-loss --link %s: not origin, all, a region or a pair of regions with a relay (eu-us)", link);
        sel[k] = 1;
    }
    *desc = 0;
    for (size_t i = 0; i < L.plan.nrelays; i++) {
        if (!sel[i]) continue;
        char nm[64];
        relay_name(i, nm, sizeof(nm));
        size_t l = strlen(desc);
        snprintf(desc + l, dn - l, "%s%s", n++ ? ", " : "", nm + 4);
    }
    if (!n) lab_die("wan-loss: no relay on the links to the origin's region (they have no delay)");
    return n;
}

/* The stats file's "loss" values (both directions) and the sum of its drop_loss; -1 without one. */
static int read_stats(const char *name, double loss[2], unsigned long long *drops)
{
    char p[PATH_MAX], buf[2048];
    lab_path(p, sizeof(p), "%s.stats", name);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    int nl = 0;
    *drops = 0;
    for (char *s = buf; (s = strstr(s, "\"drop_loss\":")); s++) *drops += strtoull(s + 12, NULL, 10);
    for (char *s = buf; nl < 2 && (s = strstr(s, "\"loss\":")); s++) loss[nl++] = strtod(s + 7, NULL);
    return nl == 2 ? 0 : -1;
}

/* 1 when the relay's command line has --control (a lab brought up by an older cdn-lab has not,
 * and SIGHUP would end its relays). */
static int has_control(pid_t pid)
{
    char p[64], buf[4097];
    snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (!strcmp(buf + i, "--control")) return 1;
    return 0;
}

int lab_wan_set_loss(const int *sel, double p, unsigned long long *drops)
{
    struct lab_proc_rec pr[256];
    size_t np = lab_read_procs(pr, 256);
    for (size_t i = 0; i < L.plan.nrelays; i++) {
        if (!sel[i]) continue;
        char nm[64], ctl[PATH_MAX], tmp[PATH_MAX + 8];
        relay_name(i, nm, sizeof(nm));
        const struct lab_proc_rec *me = NULL;
        for (size_t k = 0; k < np; k++)
            if (!strcmp(pr[k].name, nm)) me = &pr[k];
        if (!me || !lab_proc_alive(me->pid, me->start)) lab_die("wan-loss: relay %s is not running", nm);
        if (!has_control(me->pid))
            lab_die("wan-loss: relay %s runs without --control (a lab brought up by an older cdn-lab: down and up again)", nm);
        lab_path(ctl, sizeof(ctl), "%s.ctl", nm);
        if (p > 0) {
            snprintf(tmp, sizeof(tmp), "%s.tmp", ctl);
            FILE *f = fopen(tmp, "w");
            if (!f || fprintf(f, "# cdn-lab fault wan-loss\nloss %.6g\n", p) < 0 || fclose(f) != 0 || rename(tmp, ctl) != 0)
                lab_die("wan-loss: cannot write %s: %s", ctl, strerror(errno));
        } else if (unlink(ctl) != 0 && errno != ENOENT) {
            lab_die("wan-loss: cannot remove %s: %s", ctl, strerror(errno));
        }
        kill(me->pid, SIGHUP);
    }
    /* the relays rewrite their stats at once after SIGHUP: wait until every one shows p */
    int bad = 0;
    if (drops) *drops = 0;
    for (size_t i = 0; i < L.plan.nrelays; i++) {
        if (!sel[i]) continue;
        char nm[64];
        relay_name(i, nm, sizeof(nm));
        double l[2] = {NAN, NAN};
        unsigned long long d = 0;
        int took = 0;
        for (int t = 0; t < 60 && !took; t++) {
            took = read_stats(nm, l, &d) == 0 && fabs(l[0] - p) < 1e-9 && fabs(l[1] - p) < 1e-9;
            if (!took) usleep(50000);
        }
        if (!took) {
            fprintf(stderr, PROG ": wan-loss: relay %s did not take loss %g within 3 s (its stats: %g / %g)\n", nm, p,
                    l[0], l[1]);
            bad = 1;
        }
        if (drops) *drops += d;
    }
    return bad ? -1 : 0;
}

static volatile sig_atomic_t g_stop;
static void on_stop(int sig)
{
    g_stop = sig;
}

int lab_fault_wan_loss(double pct, const char *link, double for_s)
{
    int sel[LAB_WAN_MAX];
    char desc[512];
    lab_wan_select(link, sel, desc, sizeof(desc));
    /* Ctrl-C or SIGTERM during the hold ends it early, undone: the loss must not outlive us */
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    unsigned long long d0 = 0, d1 = 0;
    if (lab_wan_set_loss(sel, pct / 100.0, &d0) < 0) {
        lab_wan_set_loss(sel, 0, NULL);
        lab_die("wan-loss: not in place (undone)");
    }
    double t0 = mono_s();
    printf("wan-loss %g%% on %s for %.1f s\n", pct, desc, for_s);
    fflush(stdout);
    while (!g_stop && mono_s() < t0 + for_s) usleep(50000);
    int rc = lab_wan_set_loss(sel, 0, &d1) < 0;
    printf("wan-loss undone after %.1f s%s; %llu frames dropped for loss meanwhile%s\n", mono_s() - t0,
           g_stop ? " (interrupted)" : "", d1 - d0, rc ? " (a relay did NOT go back to no loss)" : "");
    return g_stop ? 128 + g_stop : rc;
}
