/* origin/lb/main.c - shop-lb: the L7 load balancer and API gateway in front of the shop-apps.
 * Command line and config in conf.c, pools and health in pool.c, proxying in proxy.c, the admin
 * listener in admin.c; the rules of the whole are in lbd.h, workers and signals in cdn/daemon.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cdn/h1strict.h"
#include "cdn/proc.h"
#include "cdn/rlshare.h"
#include "origin/lb/lbd.h"
#include "origin/shop/shop.h"

static struct cdn_httpc_opts httpc_opts(void)
{
    /* GET/HEAD to the apps on the HTTP/1.1 engine (docs/HTTPC.md: about half libcurl's CPU per
     * request); POSTs, and everything with upstream_engine: curl, on libcurl */
    return (struct cdn_httpc_opts){.connect_timeout_ms = lb.conf.timeouts.connect,
                                   .timeout_ms = lb.conf.timeouts.total, .max_body = UINT64_MAX / 2,
                                   .h1_engine = !lb.conf.upstream_curl};
}

static int on_worker_init(struct cdn_worker *cw, void *data, char *err, size_t errlen)
{
    struct lb_worker *w = &lb.workers[cw->id];
    struct cdn_httpc_opts o = httpc_opts();
    char id[16];
    (void)data;
    cw->data = w;
    w->cw = cw;
    w->loop = cw->loop;
    if ((w->httpc = cdn_httpc_new(w->loop, &o, err, errlen)) == NULL)
        return -1;
    h2o_timeout_init(w->loop, &w->fb_timeout, lb.conf.timeouts.first_byte);
    h2o_timeout_init(w->loop, &w->idle_timeout, lb.conf.timeouts.idle);
    if (lb.conf.timeouts.hedge > 0) {
        h2o_timeout_init(w->loop, &w->hedge_timeout, lb.conf.timeouts.hedge);
        w->hedge_on = 1;
    }
    snprintf(id, sizeof(id), "%u", cw->id);
    w->s_requests = cdn_metric_series(lb.m_thread_requests, (const char *[]){id, NULL});
    if (lb.conf.rate_limit.redis != NULL) {
        cdn_rlshare_t *r = cdn_rlshare_new(w->loop, lb.conf.rate_limit.redis, "shop-lb:rl:", lb.conf.rate_limit.redis_timeout,
                                           lb.rl_local, err, errlen);
        if (r == NULL)
            return -1;
        __atomic_store_n(&w->rls, r, __ATOMIC_RELEASE);
    }
    return 0;
}

/* The worker's own thread, after its drain: its Redis connection goes (checks still waiting are
 * decided by the local table, their requests long answered or gone). */
static void on_worker_exit(struct cdn_worker *cw, void *data)
{
    struct lb_worker *w = &lb.workers[cw->id];
    (void)data;
    cdn_rlshare_t *r = w->rls;
    __atomic_store_n(&w->rls, NULL, __ATOMIC_RELEASE);
    cdn_rlshare_free(r);
}

/* Pools and routes from the config (one thread yet: no lock needed), or the quick mode's pool. */
static int make_pools(char *err, size_t errlen)
{
    if (lb.cmdline.conf_path != NULL && lb_sync_config(&lb.conf, err, errlen) != 0)
        return -1;
    return lb_quick_pool(&lb.cmdline, err, errlen);
}

/* -t: the pools are built on a loop that never runs, nothing listens. */
static int config_test(void)
{
    char err[512];
    struct cdn_httpc_opts o = httpc_opts();
    lb.loop = h2o_evloop_create();
    if ((lb.httpc = cdn_httpc_new(lb.loop, &o, err, sizeof(err))) == NULL || make_pools(err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    printf(PROG ": configuration ok (%zu pools, %zu routes)\n", lb.npools, lb.nroutes);
    return 0;
}

static int serve(void)
{
    char err[512], abuf[64];
    h2o_config_init(&lb.h2o);
    lb.h2o.server_name = h2o_iovec_init(H2O_STRLIT(PROG));
    lb.h2o.max_request_entity_size = 64u << 20; /* bodies are buffered before they go upstream */
    h2o_pathconf_t *pc = h2o_config_register_path(h2o_config_register_host(&lb.h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535), "/", 0);
    cdn_h1strict_register(pc);
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = lb_on_proxy_req;
    h2o_create_logger(pc, sizeof(h2o_logger_t))->log_access = lb_on_log_access;
    struct cdn_daemon_opts o = {.prog = PROG, .threads = lb.conf.threads, .listen = (struct sockaddr *)&lb.conf.listen.ss,
                                .listen_len = lb.conf.listen.len, .reuseport = 1, .h2o = &lb.h2o,
                                .drain_ms = lb.conf.graceful_timeout, .on_worker_init = on_worker_init, .on_worker_exit = on_worker_exit,
                                .on_reload = lb_reload};
    cdn_admin_t *admin = NULL;
    if ((lb.rl_local = cdn_rl_new(CDN_RL_KEYS_DEFAULT)) == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    if ((lb.d = cdn_daemon_new(&o, err, sizeof(err))) == NULL)
        goto fail;
    lb.loop = cdn_daemon_main_loop(lb.d);
    lb.httpc = lb.workers[0].httpc;
    if (make_pools(err, sizeof(err)) != 0 || (lb.conf.admin.len > 0 && (admin = lb_admin_start(err, sizeof(err))) == NULL))
        goto fail;
    cdn_notice("listening on %s, %u thread(s), %zu pool(s), health checks %s",
               cdn_addr_str((struct sockaddr *)&lb.conf.listen.ss, abuf, sizeof(abuf)), cdn_daemon_nworkers(lb.d),
               lb.npools, lb.conf.health.enabled ? "on" : "off");
    int rc = cdn_daemon_run(lb.d);
    cdn_admin_free(admin);
    cdn_daemon_free(lb.d);
    cdn_notice("stopped");
    return rc;
fail:
    fprintf(stderr, PROG ": %s\n", err);
    return 1;
}

int main(int argc, char **argv)
{
    char err[512];
    int rc = lb_cmdline_parse(argc, argv, &lb.cmdline);
    if (rc != 0)
        return rc - 1;
    if (lb_conf_load(&lb.cmdline, &lb.conf, &lb.doc0, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    if (cdn_log_open(PROG, lb.conf.error_log, (enum cdn_log_level)cdn_log_level_parse(lb.conf.log_level)) != 0) {
        fprintf(stderr, PROG ": cannot open error log: %s\n", strerror(errno));
        return 1;
    }
    lb.rid_salt = shop_hash64(&(uint64_t){(uint64_t)getpid() ^ cdn_now_ms()}, 8);
    if (lb_metrics_init() != 0) {
        fprintf(stderr, PROG ": cannot set up metrics\n");
        return 1;
    }
    if (lb.cmdline.test)
        return config_test();
    if (lb.conf.access_log && (lb.alog = cdn_alog_open(lb.conf.access_log, (enum cdn_alog_format)lb.conf.access_log_format)) == NULL) {
        fprintf(stderr, PROG ": cannot open access log %s: %s\n", lb.conf.access_log, strerror(errno));
        return 1;
    }
    if (lb.conf.pid_file && cdn_pidfile_write(lb.conf.pid_file, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    rc = serve();
    if (lb.conf.pid_file)
        cdn_pidfile_remove(lb.conf.pid_file);
    if (lb.alog)
        cdn_alog_close(lb.alog);
    return rc;
}
