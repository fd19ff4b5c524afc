/* edge/main.c - cdn-edge: settings in conf.c, the admin listener and metrics in admin.c, the
 * per-worker state, the store and the expiry sweep in server.c; workers, listeners (plain: HTTP/1.1
 * and h2c; TLS with ALPN h2), signals and graceful stop in cdn/daemon.h. Worker 0 is the main
 * thread: it also runs the admin listener, the expiry sweep, the parents' health checks and the
 * SIGHUP reload.
 *
 * Quick mode: cdn-edge -a 127.0.0.1:8080 -b http://127.0.0.1:8000 [-d DIR] [--tls ADDR --cert F --key F]
 * Without -d the RocksDB tier lives in a fresh temporary folder removed at exit. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/http.h"
#include "cdn/proc.h"
#include "edge/admin.h"
#include "edge/purge/bus.h"
#include "edge/server.h"

static struct edge_server srv;
static struct edge_settings set;
static struct edge_health *health;
static cdn_daemon_t *daemon_; /* static: reachable (for LeakSanitizer) until exit */

static void on_reload(void *data)
{
    struct edge_vhosts *nv = edge_conf_reload(&set);
    if (nv != NULL && edge_server_vhosts_swap(&srv, nv) == 0 && health != NULL)
        edge_health_set(health, nv);
}

static void on_reopen(void *data)
{
    if (srv.alog)
        cdn_alog_reopen(srv.alog);
}

/* The daemon, the admin listener, the sweep and the health checks; runs until stopped. */
static int serve(SSL_CTX *tls, char *err, size_t errlen)
{
    static h2o_globalconf_t h2o;
    struct cdn_daemon_listener ls[EDGE_MAX_LISTEN];
    for (int i = 0; i < set.nlisten; i++)
        ls[i] = (struct cdn_daemon_listener){(struct sockaddr *)&set.listen[i].ss, set.listen[i].len,
                                            set.listen[i].tls ? tls : NULL};
    h2o_config_init(&h2o);
    h2o.server_name = h2o_iovec_init(NULL, 0); /* the origin's Server passes through instead */
    edge_handler_register(h2o_config_register_host(&h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535), &srv);
    struct cdn_daemon_opts o = {.prog = "cdn-edge", .threads = (unsigned)srv.conf.workers, .listeners = ls,
                                .nlisteners = (size_t)set.nlisten, .reuseport = 1, .h2o = &h2o,
                                .drain_ms = srv.conf.graceful_timeout_ms ? srv.conf.graceful_timeout_ms : 1,
                                .on_worker_init = edge_on_worker_init, .on_worker_start = edge_on_worker_start,
                                .busy = edge_on_worker_busy, .on_worker_exit = edge_on_worker_exit,
                                .on_reload = on_reload, .on_reopen = on_reopen, .data = &srv};
    cdn_admin_t *admin = NULL;
    cdn_timer_t *sweep = NULL;
    /* purge_bus start: wait (the default): no listener until the purges this edge missed while it
     * was down are applied, so that it never serves a hit a purge it had not seen covers */
    if (srv.bus != NULL && !set.bus.serve_early && edge_bus_wait_ready(srv.bus) < 0) {
        cdn_notice("stopped while waiting for the purge bus");
        return 0;
    }
    if ((daemon_ = cdn_daemon_new(&o, err, errlen)) == NULL)
        return 1;
    h2o_evloop_t *loop = cdn_daemon_main_loop(daemon_);
    char e[256];
    if (set.admin_len > 0 &&
        (admin = edge_admin_start(loop, &srv, (struct sockaddr *)&set.admin, set.admin_len, e, sizeof(e))) == NULL) {
        snprintf(err, errlen, "admin: %s", e);
        return 1;
    }
    if (srv.conf.expire_sweep_ms > 0 && (sweep = cdn_timer_new(loop, edge_server_on_sweep, &srv)) != NULL)
        cdn_timer_start(sweep, srv.conf.expire_sweep_ms);
    if (set.health.interval_ms > 0) {
        set.health.cache_name = srv.cache_name;
        set.health.edge_key = srv.conf.edge_key;
        if ((health = edge_health_new(loop, &set.health, srv.m_check_down, e, sizeof(e))) == NULL) {
            snprintf(err, errlen, "parent checks: %s", e);
            return 1;
        }
        edge_health_set(health, srv.conf.vhosts);
    }
    char a0[64];
    cdn_notice("serving %zu vhost names%s on %s (%d workers, store %s)", srv.conf.vhosts->n,
               srv.conf.vhosts->dflt ? " and a default" : "",
               cdn_addr_str((struct sockaddr *)&set.listen[0].ss, a0, sizeof(a0)), srv.conf.workers,
               edge_server_store_dir(&set));
    int rc = cdn_daemon_run(daemon_);
    if (rc != 0)
        snprintf(err, errlen, "cannot start every worker thread");
    cdn_admin_free(admin);
    cdn_timer_free(sweep);
    edge_health_free(health);
    health = NULL;
    cdn_daemon_free(daemon_);
    return rc;
}

/* What comes before the daemon: signals blocked (RocksDB's threads inherit the mask), the store,
 * metrics, access log and pid file. 0 or -1 with err set. */
static int prepare(int *pid_written, char *err, size_t errlen)
{
    snprintf(srv.cache_name, sizeof(srv.cache_name), "cdn-edge-%s", srv.conf.name);
    snprintf(srv.via, sizeof(srv.via), "1.1 cdn-edge-%s", srv.conf.name);
    cdn_hash_init(); /* the keyed hash's secret, before any worker hashes a key */
    if (cdn_signals_block() < 0) {
        snprintf(err, errlen, "cannot block signals");
        return -1;
    }
    if ((srv.store = edge_server_store_open(&set, err, errlen)) == NULL)
        return -1;
    if ((srv.rl = cdn_rl_new(srv.conf.rate_limit_keys)) == NULL) {
        snprintf(err, errlen, "out of memory (rate_limit_keys)");
        return -1;
    }
    edge_server_metrics_init(&srv);
    edge_resil_init(&srv.conf.resil, srv.metrics, &srv.m_stale_slow, &srv.m_brk_stale, &srv.m_brk_503);
    if (set.access_log && (srv.alog = cdn_alog_open(set.access_log, CDN_ALOG_JSON)) == NULL) {
        snprintf(err, errlen, "access log %s: %s", set.access_log, strerror(errno));
        return -1;
    }
    if (set.bus.redis != NULL) {
        if (set.bus.name == NULL)
            set.bus.name = srv.conf.name;
        if ((srv.bus = edge_bus_start(&set.bus, srv.store, &srv.conf.key, srv.metrics, err, errlen)) == NULL)
            return -1;
    }
    if (set.pid_file && cdn_pidfile_write(set.pid_file, err, errlen) < 0)
        return -1;
    *pid_written = set.pid_file != NULL;
    return 0;
}

int main(int argc, char **argv)
{
    char err[512];
    SSL_CTX *tls = NULL;
    int pid_written = 0, rc = edge_cmdline_parse(argc, argv, &set, &srv.conf);
    if (rc < 0)
        rc = edge_conf_load(&set, &srv.conf, &tls);
    if (rc < 0 && set.test_only) {
        printf("cdn-edge: configuration ok\n");
        rc = 0;
    }
    if (rc < 0) {
        rc = prepare(&pid_written, err, sizeof(err)) < 0 ? 1 : serve(tls, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "cdn-edge: %s\n", err);
        edge_bus_stop(srv.bus); /* before the store it writes to */
        srv.bus = NULL;
        edge_server_store_close(srv.store);
        if (srv.alog)
            cdn_alog_close(srv.alog);
        cdn_metrics_free(srv.metrics);
        cdn_rl_free(srv.rl);
        edge_handler_global_free();
        edge_resil_free();
        if (pid_written)
            cdn_pidfile_remove(set.pid_file);
        cdn_notice("stopped");
    }
    edge_server_vhosts_free(&srv);
    edge_conf_free();
    SSL_CTX_free(tls);
    return rc;
}
