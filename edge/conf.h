/* edge/conf.h - cdn-edge's settings: the built-in defaults, then the command line, then the file
 * (-c) over both, into struct edge_settings (what the process needs: listeners, tiers, admin,
 * parents, health checks) and struct edge_conf (what the request path reads). The file is read
 * again on SIGHUP, decoded over the same defaults and command line, for a new vhost table.
 *
 * Rules:
 * - Precedence: a key the file sets wins over its option (as it always has for cdn-edge), except
 *   the parents (--parent and parents: add up), sort_params (either turns it on) and, on reload,
 *   origin (the file's, else -b).
 * - Strings of the first file point into its document, which lives until edge_conf_free (at
 *   exit). A reload's document is freed at once: the vhost table copies what it keeps.
 * - Errors name file:line:col where the document has the node; the exit status is 1 for a bad
 *   file, 2 for a bad command line.
 * Threads: main thread only. */
#ifndef EDGE_CONF_H
#define EDGE_CONF_H

#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "cdn/config.h"
#include "cdn/daemon.h"
#include "edge/edge.h"
#include "edge/purge/bus.h"
#include "edge/purge/cmd.h"
#include "edge/vhost/health.h"

#define EDGE_MAX_LISTEN CDN_DAEMON_MAX_LISTENERS
#define EDGE_GRACEFUL_TIMEOUT_MS 5000  /* edge_conf.graceful_timeout_ms by default */

struct edge_listen {
    struct sockaddr_storage ss;
    socklen_t len;
    int tls;
};

struct edge_settings {
    struct edge_listen listen[EDGE_MAX_LISTEN];
    int nlisten;
    struct sockaddr_storage admin;
    socklen_t admin_len;         /* 0: no admin listener */
    const char *cert, *key, *dir, *pid_file, *access_log;
    uint64_t ram_bytes, disk_bytes;
    int ram_policy;
    int disk_admit; /* enum edge_admit_kind */
    int test_only;
    const char *parents[EDGE_MAX_PARENTS + 1];
    size_t nparents;
    int parent_only;
    unsigned max_fetches;
    struct cdn_conf_list file_vhosts;
    struct edge_rl_conf rate_limit; /* the file's global rate_limit (strings in its document) */
    const char *config;          /* -c FILE, re-read on SIGHUP */
    const cdn_conf_node_t *cert_node, *key_node; /* where the file set cert / key (for errors) */
    struct {                     /* the command line's share, before the file (for reloads) */
        const char *origin;
        size_t nparents;
        int parent_only;
        unsigned max_fetches;
    } cli;
    struct edge_health_conf health;
    char admin_token_err[300];   /* why admin_token_file did not load */
    struct edge_bus_conf bus;    /* purge_bus: / --purge-bus URL (redis NULL: no bus) */
};

/* Defaults, then argv, into *s and *c; opens the error log at the level asked. Returns -1 to go
 * on, or the status to exit with (0 after --help or --version, 2 for a bad option). */
int edge_cmdline_parse(int argc, char **argv, struct edge_settings *s, struct edge_conf *c);
/* The file (with -c) over the command line, the checks, the vhost table (c->vhosts) and the TLS
 * context of the TLS listeners (*tls, NULL without one). Returns -1 to go on, or the status to
 * exit with, the error written to stderr. */
int edge_conf_load(struct edge_settings *s, struct edge_conf *c, SSL_CTX **tls);
/* SIGHUP: the file again, as a new vhost table (origin, vhosts, parents, parent_only,
 * max_fetches, rate_limit); each other key whose value changed is logged as needing a restart. NULL when the
 * file does not load or build (logged; the caller keeps its table). */
struct edge_vhosts *edge_conf_reload(const struct edge_settings *s);
/* At exit: the first file's document. */
void edge_conf_free(void);

#endif
