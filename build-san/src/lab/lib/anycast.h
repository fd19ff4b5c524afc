/* lab/lib/anycast.h - anycast routing in the lab: BIRD 2 configs generated from the plan,
 * a client for BIRD's control socket, and the health agent's rise/fall state machine.
 *
 * Routing design (lab/lib/bird.c): every node that routes runs its own BIRD. Region r's router is
 * AS 65001+r with router id = its client LAN address; edge i is AS 65101+i with router id = its
 * uplink address. An edge announces its anycast /32s (a static protocol `anycast`, started
 * disabled: the health agent enables it once the edge answers) to its router only. A router
 * imports those with local preference 2000, and its backbone peers' routes with 1000 - the one-way
 * delay in ms, so its own region wins and the nearest other region is the first backup; it
 * exports to the backbone only what it originates (its client LAN and host /30s, protocol `lan`)
 * and its own edges' /32s (no transit through a third region). The kernel protocol installs BGP
 * routes, which replace the static inter-region routes of the DNS-only lab.
 *
 * Files, all under STATEDIR/b/ (short: a unix socket path is at most 107 bytes):
 *   NODE.conf  NODE.ctl (control socket)  NODE.log  NODE.pid      NODE = r-eu, e-eu1, ... */
#ifndef LAB_ANYCAST_H
#define LAB_ANYCAST_H

#include <stddef.h>
#include "lab/lib/topo.h"

unsigned lab_bird_as(const struct lab_plan *p, int node);
/* BIRD's config for a router or edge node; statedir names the log file. */
void lab_gen_bird_conf(const struct lab_topo *t, const struct lab_plan *p, int node, enum lab_profile prof,
                       const char *statedir, struct lab_buf *b);
/* Command line: bird -f (foreground, so cdn-lab owns the pid) -c CONF -s CTL -P PID. */
void lab_cmd_bird(const struct lab_plan *p, int node, const char *statedir, struct lab_argv *a);
/* The health agent (cdn-health) for edge node `node`. */
void lab_cmd_health(const struct lab_topo *t, const struct lab_plan *p, int node, const char *statedir,
                    struct lab_argv *a);

/* --- BIRD's control socket (the protocol birdc speaks): "NNNN-text" continuation lines, a final
 * "NNNN text" line; codes 0xxx are success, 8xxx/9xxx errors, lines starting with ' ' continue. */
/* Sends one command, collects the reply text (codes stripped, one line each) into out.
 * Returns the final reply code (>= 0), or -1 with out holding why (cannot connect, timeout). */
int lab_bird_cmd(const char *ctl, const char *cmd, int timeout_ms, char *out, size_t outlen);
/* Parses a reply buffer (as read from the socket). Returns 1 and *code when the reply is complete,
 * 0 when more is needed, -1 when malformed. Text (codes stripped) is appended to out (bounded). */
int lab_bird_reply_parse(const char *buf, size_t len, int *code, char *out, size_t outlen);

/* --- the health agent's state machine: rise successes in a row announce, fall failures withdraw --- */
struct lab_hc {
    unsigned rise, fall;
    unsigned ok_run, bad_run;
    int up;       /* -1 unknown (start: withdrawn until `rise` successes), 0 down, 1 up */
};
void lab_hc_init(struct lab_hc *h, unsigned rise, unsigned fall);
/* Feeds one check result; returns +1 when it turns up, -1 when it turns down, else 0. */
int lab_hc_feed(struct lab_hc *h, int ok);

#endif
