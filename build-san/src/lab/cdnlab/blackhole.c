/* lab/cdnlab/blackhole.c - a silent blackhole for `cdn-lab fault blackhole`: a two-instruction eBPF
 * program (return TC_ACT_SHOT) attached as a direct-action cls_bpf filter on ingress and egress
 * of an interface's clsact qdisc. The carrier stays up, so only BGP's hold timer or BFD notices.
 *
 * Why like this: the lab's kernel has no netfilter tools, no netem qdisc and no gact or police
 * action (tc answers "Failed to load TC action module"), but cls_bpf direct-action works. Loading the program with bpf(2) and attaching it over rtnetlink
 * needs no clang, no object file and no bpffs; the filter holds the program after we close it.
 * The caller adds the clsact qdisc first (`tc qdisc add dev IF clsact`) and removes it to undo.
 * Must run in the interface's network namespace. */
#include "config.h"
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int lab_blackhole_attach(const char *ifname, char *err, size_t errlen);

static int load_drop(char *err, size_t errlen)
{
    struct bpf_insn prog[2] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_SHOT}, /* r0 = TC_ACT_SHOT */
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_SCHED_CLS;
    a.insns = (uintptr_t)prog;
    a.insn_cnt = 2;
    a.license = (uintptr_t) "GPL";
    int fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
    if (fd < 0) snprintf(err, errlen, "bpf(BPF_PROG_LOAD): %s", strerror(errno));
    return fd;
}

static void put_attr(struct nlmsghdr *n, size_t cap, unsigned short type, const void *data, size_t len)
{
    struct rtattr *ra = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
    if (NLMSG_ALIGN(n->nlmsg_len) + RTA_SPACE(len) > cap) return;
    ra->rta_type = type;
    ra->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len) memcpy(RTA_DATA(ra), data, len);
    n->nlmsg_len = (unsigned)(NLMSG_ALIGN(n->nlmsg_len) + RTA_SPACE(len));
}

static int attach(int nl, int ifindex, unsigned parent_min, int prog, char *err, size_t errlen)
{
    union {
        struct nlmsghdr n;
        char buf[512];
    } req;
    memset(&req, 0, sizeof(req));
    req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
    req.n.nlmsg_type = RTM_NEWTFILTER;
    req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    req.n.nlmsg_seq = parent_min;
    struct tcmsg *t = NLMSG_DATA(&req.n);
    t->tcm_family = AF_UNSPEC;
    t->tcm_ifindex = ifindex;
    t->tcm_parent = TC_H_MAKE(TC_H_CLSACT, parent_min);
    t->tcm_info = TC_H_MAKE(1u << 16, htons(ETH_P_ALL)); /* priority 1, every protocol */
    put_attr(&req.n, sizeof(req), TCA_KIND, "bpf", 4);
    struct rtattr *opts = (struct rtattr *)((char *)&req.n + NLMSG_ALIGN(req.n.nlmsg_len));
    put_attr(&req.n, sizeof(req), TCA_OPTIONS, NULL, 0);
    unsigned fd = (unsigned)prog, flags = TCA_BPF_FLAG_ACT_DIRECT;
    put_attr(&req.n, sizeof(req), TCA_BPF_FD, &fd, sizeof(fd));
    put_attr(&req.n, sizeof(req), TCA_BPF_NAME, "cdnlab-drop", 12);
    put_attr(&req.n, sizeof(req), TCA_BPF_FLAGS, &flags, sizeof(flags));
    opts->rta_len = (unsigned short)((char *)&req.n + req.n.nlmsg_len - (char *)opts);
    if (send(nl, &req, req.n.nlmsg_len, 0) < 0) {
        snprintf(err, errlen, "netlink send: %s", strerror(errno));
        return -1;
    }
    char ack[1024];
    ssize_t r = recv(nl, ack, sizeof(ack), 0);
    struct nlmsghdr *h = (struct nlmsghdr *)ack;
    if (r < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR) {
        snprintf(err, errlen, "netlink: no acknowledgement");
        return -1;
    }
    struct nlmsgerr *e = NLMSG_DATA(h);
    if (e->error) {
        snprintf(err, errlen, "attaching the %s filter: %s", parent_min == TC_H_MIN_INGRESS ? "ingress" : "egress",
                 strerror(-e->error));
        return -1;
    }
    return 0;
}

int lab_blackhole_attach(const char *ifname, char *err, size_t errlen)
{
    int ifindex = (int)if_nametoindex(ifname);
    if (!ifindex) {
        snprintf(err, errlen, "no interface %s", ifname);
        return -1;
    }
    int prog = load_drop(err, errlen);
    if (prog < 0) return -1;
    int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int rc = -1;
    if (nl < 0) snprintf(err, errlen, "netlink socket: %s", strerror(errno));
    else if (attach(nl, ifindex, TC_H_MIN_INGRESS, prog, err, errlen) == 0 &&
             attach(nl, ifindex, TC_H_MIN_EGRESS, prog, err, errlen) == 0)
        rc = 0;
    if (nl >= 0) close(nl);
    close(prog);
    return rc;
}
