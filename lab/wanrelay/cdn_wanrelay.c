/* lab/wanrelay/cdn_wanrelay.c - cdn-wanrelay: a layer-2 "bump in the wire" that delays frames, for kernels
 * without netem.
 *
 * Owns: two AF_PACKET sockets, one per interface (both in the relay's own namespace, no addresses
 * on them), and one delay line (lab/wanrelay/wanq.c) per direction. Every frame read on A is written to B
 * after the A->B delay, and the other way round; addresses, ARP and BGP across the link are
 * unchanged. One thread, one epoll loop: the sockets, a timerfd armed (absolute) for the earliest
 * release, and a signalfd. Frames are read with recvmmsg and written with sendmmsg in batches.
 *
 * Checksums: the veth peers hand over frames whose checksum is not yet computed (CHECKSUM_PARTIAL)
 * and, with TSO, 64 KB super-frames. PACKET_VNET_HDR carries that state (a virtio_net_hdr) in front
 * of each frame from the reading socket to the writing one, so the receiver finishes the checksum
 * and segments as needed; no `ethtool -K tx off` is required. --no-vnet-hdr turns this off (then
 * the senders need `ethtool -K VETH tx off`, or the receiver drops their frames: ARP works,
 * UDP and TCP do not).
 *
 * Stats go to stderr on SIGUSR1 and at exit, and to --stats FILE (one JSON line, rewritten every
 * second) for `cdn-lab status`.
 *
 * Run-time loss (`cdn-lab fault wan-loss`): --control FILE names a small file of "loss P",
 * "loss-ab P", "loss-ba P" lines, read at start and again on SIGHUP. Each read starts from the
 * command line's loss, so a missing or empty file means "back to --loss". Only the drop probability
 * of frames arriving from then on changes: the queues, their frames and the counters stay. A file
 * that does not parse changes nothing (the reason on stderr). After a SIGHUP the stats file is
 * rewritten at once, with each direction's "loss", so a caller can see the change took. */
#include "config.h"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <ctype.h>
#include <time.h>
#include <unistd.h>

#include "lab/wanrelay/wanq.h"

#define PROG "cdn-wanrelay"
#define BATCH 32
#define FRAME_MAX (65536 + 256)

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

struct side {
    const char *ifname;
    int ifindex, fd;
    int want_out;         /* EPOLLOUT armed: the socket buffer was full */
    struct lab_wanq q;    /* frames waiting to be written to this side */
    uint64_t send_err;
};

struct relay {
    struct side s[2];
    int ep, tfd, sfd, vnet;
    uint64_t armed_at;
    unsigned char *rxbuf; /* BATCH frames */
    const char *stats_path;
    uint64_t last_stats;
    const char *control_path; /* --control: run-time loss, read at start and on SIGHUP */
    double loss0[2];          /* the command line's loss per queue (s[i].q), the base of every read */
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_side(struct side *sd, int vnet, char *err, size_t errlen)
{
    sd->ifindex = (int)if_nametoindex(sd->ifname);
    if (!sd->ifindex) {
        snprintf(err, errlen, "interface %s: %s", sd->ifname, strerror(errno));
        return -1;
    }
    sd->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (sd->fd < 0) {
        snprintf(err, errlen, "AF_PACKET socket: %s (needs CAP_NET_RAW)", strerror(errno));
        return -1;
    }
    int one = 1, big = 8 << 20;
    if (vnet && setsockopt(sd->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0) {
        snprintf(err, errlen, "PACKET_VNET_HDR on %s: %s", sd->ifname, strerror(errno));
        return -1;
    }
    /* Our own writes show up as outgoing frames on the same socket: never relay them back. */
    (void)setsockopt(sd->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    if (setsockopt(sd->fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
        (void)setsockopt(sd->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (setsockopt(sd->fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0)
        (void)setsockopt(sd->fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = sd->ifindex};
    if (bind(sd->fd, (struct sockaddr *)&ll, sizeof(ll)) < 0) {
        snprintf(err, errlen, "bind %s: %s", sd->ifname, strerror(errno));
        return -1;
    }
    /* Frames for the far side's MAC must reach us too. */
    struct packet_mreq mr = {.mr_ifindex = sd->ifindex, .mr_type = PACKET_MR_PROMISC};
    if (setsockopt(sd->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
        snprintf(err, errlen, "promiscuous %s: %s", sd->ifname, strerror(errno));
        return -1;
    }
    return 0;
}

static void set_out(struct relay *r, struct side *sd, int on)
{
    if (sd->want_out == on) return;
    sd->want_out = on;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = sd};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, sd->fd, &ev);
}

/* Writes what is due to side sd; stops at a full socket buffer (EPOLLOUT resumes). */
static void flush(struct relay *r, struct side *sd, uint64_t now)
{
    struct lab_wanq_item it[BATCH];
    struct mmsghdr mm[BATCH];
    struct iovec iov[BATCH][2];
    for (;;) {
        size_t n = lab_wanq_peek_batch(&sd->q, now, it, BATCH);
        if (!n) break;
        for (size_t i = 0; i < n; i++) {
            int k = 0;
            if (it[i].meta_len) iov[i][k++] = (struct iovec){(void *)it[i].meta, it[i].meta_len};
            iov[i][k++] = (struct iovec){(void *)it[i].frame, it[i].len};
            mm[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = iov[i], .msg_iovlen = (size_t)k}};
        }
        int sent = sendmmsg(sd->fd, mm, (unsigned)n, MSG_DONTWAIT);
        if (sent > 0) {
            lab_wanq_pop_n(&sd->q, (size_t)sent);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
            set_out(r, sd, 1);
            return;
        }
        if (errno == EINTR) continue;
        /* Link down, bad frame: drop it rather than wedge the line. */
        sd->send_err++;
        lab_wanq_pop(&sd->q);
    }
    set_out(r, sd, 0);
}

/* Reads a batch from side `from` into the other side's queue. */
static void on_readable(struct relay *r, struct side *from, struct side *to)
{
    struct mmsghdr mm[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_ll ll[BATCH];
    size_t hl = r->vnet ? sizeof(struct virtio_net_hdr) : 0;
    for (int rounds = 0; rounds < 8; rounds++) { /* bounded: let the other side and timer run */
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){r->rxbuf + (size_t)i * FRAME_MAX, FRAME_MAX};
            mm[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &ll[i], .msg_namelen = sizeof(ll[i]),
                                                 .msg_iov = &iov[i], .msg_iovlen = 1}};
        }
        int n = recvmmsg(from->fd, mm, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) break;
        uint64_t now = mono_ns();
        for (int i = 0; i < n; i++) {
            if (ll[i].sll_pkttype == PACKET_OUTGOING) continue;
            if (mm[i].msg_hdr.msg_flags & MSG_TRUNC) {
                to->q.st.drop_big++;
                continue;
            }
            size_t len = mm[i].msg_len;
            if (len < hl + 14) continue;
            const unsigned char *p = iov[i].iov_base;
            lab_wanq_push(&to->q, now, p, hl, p + hl, len - hl);
        }
        if (n < BATCH) break;
    }
}

static void write_stats(struct relay *r, FILE *f, int json)
{
    for (int i = 0; i < 2; i++) {
        const struct lab_wanq_stats *st = &r->s[1 - i].q.st; /* frames read on side i */
        if (json)
            fprintf(f, "%s{\"from\":\"%s\",\"to\":\"%s\",\"in_frames\":%" PRIu64 ",\"in_bytes\":%" PRIu64
                       ",\"out_frames\":%" PRIu64 ",\"out_bytes\":%" PRIu64 ",\"drop_full\":%" PRIu64
                       ",\"drop_loss\":%" PRIu64 ",\"drop_big\":%" PRIu64 ",\"queued\":%zu,\"send_err\":%" PRIu64 ",\"loss\":%g}%s",
                    i ? "," : "[", r->s[i].ifname, r->s[1 - i].ifname, st->in_frames, st->in_bytes,
                    st->out_frames, st->out_bytes, st->drop_full, st->drop_loss, st->drop_big,
                    r->s[1 - i].q.frames, r->s[1 - i].send_err, r->s[1 - i].q.cfg.loss, i ? "]\n" : "");
        else
            fprintf(f, PROG ": %s->%s in %" PRIu64 " frames %" PRIu64 " B, out %" PRIu64 " frames, dropped full %" PRIu64
                       " loss %" PRIu64 " big %" PRIu64 ", send errors %" PRIu64 ", queued %zu, loss probability %g\n",
                    r->s[i].ifname, r->s[1 - i].ifname, st->in_frames, st->in_bytes, st->out_frames,
                    st->drop_full, st->drop_loss, st->drop_big, r->s[1 - i].send_err, r->s[1 - i].q.frames,
                    r->s[1 - i].q.cfg.loss);
    }
}

static void dump_stats_file(struct relay *r)
{
    if (!r->stats_path) return;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", r->stats_path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    write_stats(r, f, 1);
    if (fclose(f) == 0) rename(tmp, r->stats_path);
}

/* --control FILE: "loss P" (both ways), "loss-ab P", "loss-ba P" (P 0..1), '#' comments. Each read
 * starts from the command line's loss; a missing file is that alone. 0, or -1 (nothing changed)
 * after saying why. */
static int read_control(struct relay *r)
{
    double l[2] = {r->loss0[0], r->loss0[1]}; /* per queue: l[1] is A->B */
    FILE *f = fopen(r->control_path, "r");
    if (!f && errno != ENOENT) {
        fprintf(stderr, PROG ": control file %s: %s\n", r->control_path, strerror(errno));
        return -1;
    }
    char line[256];
    int ln = 0, bad = 0;
    while (f && fgets(line, sizeof(line), f)) {
        ln++;
        char *p = line, key[16], *end;
        while (isspace((unsigned char)*p)) p++;
        if (!*p || *p == '#') continue;
        size_t k = 0;
        while (*p && !isspace((unsigned char)*p) && k < sizeof(key) - 1) key[k++] = *p++;
        key[k] = 0;
        double v = strtod(p, &end);
        while (isspace((unsigned char)*end)) end++;
        if (end == p || (*end && *end != '#') || !(v >= 0 && v <= 1)) {
            bad = ln;
            break;
        }
        if (!strcmp(key, "loss")) l[0] = l[1] = v;
        else if (!strcmp(key, "loss-ab")) l[1] = v;
        else if (!strcmp(key, "loss-ba")) l[0] = v;
        else {
            bad = ln;
            break;
        }
    }
    if (f) fclose(f);
    if (bad) {
        fprintf(stderr, PROG ": control file %s:%d: expected \"loss|loss-ab|loss-ba P\" with P 0..1; loss unchanged\n",
                r->control_path, bad);
        return -1;
    }
    for (int i = 0; i < 2; i++) lab_wanq_set_loss(&r->s[i].q, l[i]);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [options] IFACE_A IFACE_B\n"
            "Relays every Ethernet frame between two interfaces after a one-way delay (a WAN link\n"
            "for kernels without netem). Run it as root in a namespace that holds both interfaces.\n\n"
            "  -d, --delay D          one-way delay each way (25ms, 300us, 0.1s; bare = ms; default 0)\n"
            "      --delay-ba D       delay from B to A when it differs\n"
            "  -r, --rate R           bottleneck rate each way (100mbit, 1gbit; default unlimited)\n"
            "  -l, --loss P           drop probability 0..1 (default 0)\n"
            "      --control FILE     run-time loss: lines \"loss P\", \"loss-ab P\", \"loss-ba P\" (0..1),\n"
            "                         read at start and on SIGHUP, each time from --loss (no file: --loss);\n"
            "                         the queues stay, the stats file is rewritten at once\n"
            "  -q, --queue N          frames queued per direction before tail drop (default 4096)\n"
            "  -Q, --queue-bytes B    bytes queued per direction (default 16777216)\n"
            "      --seed N           loss PRNG seed (default 1)\n"
            "      --no-vnet-hdr      plain frames (the senders then need `ethtool -K IF tx off`)\n"
            "  -s, --stats FILE       JSON counters, rewritten every second\n"
            "  -p, --pid-file FILE    write the pid there\n"
            "  -h, --help\n"
            "Signals: TERM/INT exit (counters to stderr), USR1 prints counters, HUP rereads --control.\n"
            "Example: echo 'loss 0.05' >FILE; kill -HUP PID (5%% of new frames dropped each way);\n"
            "         rm FILE; kill -HUP PID (back to --loss).\n");
}

/* The command line: A->B shaping in *cab (B->A is the same but for --delay-ba and the seed), the
 * rest in r. -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct relay *r, struct lab_wanq_cfg *cab, uint64_t *dba,
                      const char **pidfile)
{
    enum { O_DBA = 256, O_SEED, O_NOVNET, O_CONTROL };
    static const struct option lo[] = {
        {"delay", required_argument, NULL, 'd'}, {"delay-ba", required_argument, NULL, O_DBA},
        {"rate", required_argument, NULL, 'r'}, {"loss", required_argument, NULL, 'l'},
        {"queue", required_argument, NULL, 'q'}, {"queue-bytes", required_argument, NULL, 'Q'},
        {"seed", required_argument, NULL, O_SEED}, {"no-vnet-hdr", no_argument, NULL, O_NOVNET},
        {"control", required_argument, NULL, O_CONTROL},
        {"stats", required_argument, NULL, 's'}, {"pid-file", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "d:r:l:q:Q:s:p:h", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            if (lab_parse_delay_ns(optarg, &cab->delay_ns) < 0) goto bad;
            break;
        case O_DBA:
            if (lab_parse_delay_ns(optarg, dba) < 0) goto bad;
            break;
        case 'r':
            if (lab_parse_rate_bps(optarg, &cab->rate_bps) < 0) goto bad;
            break;
        case 'l':
            cab->loss = strtod(optarg, &end);
            if (*end || !(cab->loss >= 0 && cab->loss <= 1)) goto bad;
            break;
        case 'q':
            cab->max_frames = strtoul(optarg, &end, 10);
            if (*end || !cab->max_frames) goto bad;
            break;
        case 'Q':
            cab->max_bytes = strtoul(optarg, &end, 10);
            if (*end || cab->max_bytes < 2 * FRAME_MAX) goto bad;
            break;
        case O_SEED: cab->seed = strtoull(optarg, NULL, 10); break;
        case O_NOVNET: r->vnet = 0; break;
        case O_CONTROL: r->control_path = optarg; break;
        case 's': r->stats_path = optarg; break;
        case 'p': *pidfile = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        bad:
            fprintf(stderr, PROG ": bad value for -%c: %s\n", c < 256 ? c : 'd', optarg);
            return 2;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* The queues, both sides' sockets, the signal and timer fds and the epoll set; 0, or -1 after
 * saying why. */
static int setup(struct relay *r, const struct lab_wanq_cfg *cab, const struct lab_wanq_cfg *cba)
{
    /* s[i].q holds frames to be written to side i: s[1].q is A->B. */
    char err[256];
    if (lab_wanq_init(&r->s[1].q, cab) < 0 || lab_wanq_init(&r->s[0].q, cba) < 0 ||
        !(r->rxbuf = malloc((size_t)BATCH * FRAME_MAX))) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    for (int i = 0; i < 2; i++)
        if (open_side(&r->s[i], r->vnet, err, sizeof(err)) < 0) {
            fprintf(stderr, PROG ": %s\n", err);
            return -1;
        }
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* release frames within microseconds, not 50 us */
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGUSR1);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);
    r->sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    r->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    if (r->sfd < 0 || r->tfd < 0 || r->ep < 0) {
        perror(PROG);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    for (int i = 0; i < 2; i++) {
        ev.data.ptr = &r->s[i];
        epoll_ctl(r->ep, EPOLL_CTL_ADD, r->s[i].fd, &ev);
    }
    ev.data.ptr = &r->tfd;
    epoll_ctl(r->ep, EPOLL_CTL_ADD, r->tfd, &ev);
    ev.data.ptr = &r->sfd;
    epoll_ctl(r->ep, EPOLL_CTL_ADD, r->sfd, &ev);
    return 0;
}

/* Arms the timer for the earliest frame not waiting on a full socket buffer. */
static void arm_timer(struct relay *r)
{
    uint64_t t = UINT64_MAX;
    for (int i = 0; i < 2; i++)
        if (!r->s[i].want_out && lab_wanq_next(&r->s[i].q) < t) t = lab_wanq_next(&r->s[i].q);
    if (t == r->armed_at) return;
    struct itimerspec its = {0};
    if (t != UINT64_MAX) {
        its.it_value.tv_sec = (time_t)(t / 1000000000ull);
        its.it_value.tv_nsec = (long)(t % 1000000000ull);
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    r->armed_at = t;
}

/* The loop, until SIGTERM or SIGINT (SIGUSR1: counters on stderr; SIGHUP: --control reread). */
static void run(struct relay *r)
{
    int running = 1;
    while (running) {
        struct epoll_event evs[8];
        int n = epoll_wait(r->ep, evs, 8, 1000);
        if (n < 0 && errno != EINTR) {
            perror(PROG ": epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &r->sfd) {
                struct signalfd_siginfo si;
                while (read(r->sfd, &si, sizeof(si)) == sizeof(si)) {
                    if (si.ssi_signo == SIGUSR1) {
                        write_stats(r, stderr, 0);
                    } else if (si.ssi_signo == SIGHUP) {
                        if (r->control_path && read_control(r) == 0)
                            fprintf(stderr, PROG ": loss %s->%s %g, %s->%s %g\n", r->s[0].ifname, r->s[1].ifname,
                                    r->s[1].q.cfg.loss, r->s[1].ifname, r->s[0].ifname, r->s[0].q.cfg.loss);
                        dump_stats_file(r);
                    } else {
                        running = 0;
                    }
                }
            } else if (p == &r->tfd) {
                uint64_t x;
                while (read(r->tfd, &x, sizeof(x)) > 0) {}
                r->armed_at = UINT64_MAX;
            } else {
                struct side *sd = p;
                if (evs[i].events & EPOLLIN) on_readable(r, sd, &r->s[sd == &r->s[0]]);
                if (evs[i].events & EPOLLOUT) set_out(r, sd, 0);
            }
        }
        uint64_t now = mono_ns();
        for (int i = 0; i < 2; i++)
            if (!r->s[i].want_out) flush(r, &r->s[i], now);
        arm_timer(r);
        if (r->stats_path && now - r->last_stats >= 1000000000ull) {
            dump_stats_file(r);
            r->last_stats = now;
        }
    }
}

int main(int argc, char **argv)
{
    struct lab_wanq_cfg cab = {0}, cba;
    uint64_t dba = UINT64_MAX;
    const char *pidfile = NULL;
    struct relay r = {.vnet = 1, .armed_at = UINT64_MAX};
    int rc = parse_opts(argc, argv, &r, &cab, &dba, &pidfile);
    if (rc >= 0) return rc;
    cba = cab;
    if (dba != UINT64_MAX) cba.delay_ns = dba;
    cba.seed = cab.seed + 1;
    r.s[0].ifname = argv[optind];
    r.s[1].ifname = argv[optind + 1];
    if (setup(&r, &cab, &cba) < 0) return 1;
    r.loss0[1] = cab.loss;
    r.loss0[0] = cba.loss;
    if (r.control_path && read_control(&r) < 0) return 2;
    if (pidfile) {
        FILE *f = fopen(pidfile, "w");
        if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
            fprintf(stderr, PROG ": pid file %s: %s\n", pidfile, strerror(errno));
            return 1;
        }
    }
    fprintf(stderr, PROG ": relaying %s <-> %s, delay %.3f/%.3f ms, rate %" PRIu64 " bit/s, loss %g%s\n",
            r.s[0].ifname, r.s[1].ifname, cab.delay_ns / 1e6, cba.delay_ns / 1e6, cab.rate_bps, r.s[1].q.cfg.loss,
            r.vnet ? "" : " (no vnet header)");
    run(&r);
    write_stats(&r, stderr, 0);
    dump_stats_file(&r);
    if (pidfile) unlink(pidfile);
    return 0;
}
