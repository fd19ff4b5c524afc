/* dns/server.h - the running cdn-dns: worker threads answering UDP and TCP, the main loop with
 * the admin HTTP port, health probes, signals and reloads.
 *
 * Threads: each worker has its own h2o evloop, its own SO_REUSEPORT UDP and TCP sockets per
 * listen address and its own RRL table; nothing is shared but the current view (an atomic
 * pointer) and the metrics (per-thread slots). The main thread owns everything else.
 *
 * Reload (SIGHUP): the new config is parsed completely first; on any error the old view stays and
 * the error is logged. Otherwise health states are carried over by edge name, the view pointer is
 * swapped, and the old view is freed once every worker has passed a quiescent point (cdn/epoch.h:
 * each UDP thread and each worker's TCP loop is a reader, inside around every batch of queries).
 * No socket is closed, so no query is dropped. Listen addresses and the worker count are not
 * reloadable. */
#ifndef CDNS_SERVER_H
#define CDNS_SERVER_H

#include "dns/conf.h"

struct cdns_server;

/* Binds every socket, starts the workers and health probes. NULL with err filled. Takes the
 * view out of conf (conf->view becomes NULL). */
struct cdns_server *cdns_server_start(struct cdns_conf *conf, const char *conf_path, char *err, size_t errlen);
/* Runs the main loop until SIGTERM/SIGINT; returns the exit code. */
int cdns_server_run(struct cdns_server *s);
void cdns_server_free(struct cdns_server *s);

#endif
