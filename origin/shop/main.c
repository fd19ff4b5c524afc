/* origin/shop/main.c - shop-app: the sample storefront's app server (h2o, HTTP/1.1 and h2c).
 * Command line, config, catalog and reload in conf.c, requests in serve.c, responses in
 * respond.c, image rendering off the loop in render.c, Idempotency-Key in idem.c, metrics,
 * /healthz and /metrics in admin.c; the rules of the whole are in app.h, workers and signals in cdn/daemon.h. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cdn/h1strict.h"
#include "cdn/proc.h"
#include "origin/shop/app.h"

struct app app;

/* Main thread, in cdn_daemon_new: a worker's own state on its loop. */
static int on_worker_init(struct cdn_worker *cw, void *data, char *err, size_t errlen)
{
    struct app_worker *w = &app.workers[cw->id];
    (void)data;
    cw->data = w;
    w->cw = cw;
    w->idx = (int)cw->id;
    w->rng = 0xC0FFEEULL + (uint64_t)w->idx * 7919 + (uint64_t)getpid();
    w->loop = cw->loop;
    h2o_linklist_init_anchor(&w->idem_claims);
    if (app_delay_init(w) != 0) {
        snprintf(err, errlen, "cannot create a timer");
        return -1;
    }
    if (app_render_worker_init(w, err, errlen) != 0)
        return -1;
    return app_db_worker_init(w, err, errlen); /* its catalog: SQLite or PostgreSQL (db.h) */
}

/* The worker's thread, after its drain. */
static void on_worker_exit(struct cdn_worker *cw, void *data)
{
    struct app_worker *w = cw->data;
    (void)data;
    app_db_worker_exit(w);
}

static void on_reopen(void *data)
{
    (void)data;
    if (app.alog != NULL)
        cdn_alog_reopen(app.alog);
}

/* h2o: one host, one path, our handler + gzip filter + logger; then the workers until a stop. */
static int serve(const char *abuf)
{
    char err[512];
    h2o_config_init(&app.h2o);
    app.h2o.server_name = h2o_iovec_init(H2O_STRLIT(PROG));
    app.h2o.max_request_entity_size = 1u << 20; /* the shop takes small forms only (h2o: 413 above) */
    h2o_hostconf_t *hc = h2o_config_register_host(&app.h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    cdn_h1strict_register(pc);
    h2o_create_handler(pc, sizeof(h2o_handler_t))->on_req = app_on_req;
    h2o_compress_register(pc, &(h2o_compress_args_t){.min_size = 150, .gzip = {1}, .brotli = {-1}});
    h2o_create_logger(pc, sizeof(h2o_logger_t))->log_access = app_on_log_access;

    struct cdn_daemon_opts dopts = {.prog = PROG, .threads = app.conf.threads, .listen = (struct sockaddr *)&app.conf.listen.ss,
                                    .listen_len = app.conf.listen.len, .reuseport = 1, .h2o = &app.h2o,
                                    .drain_ms = app.conf.graceful_timeout, .on_worker_init = on_worker_init,
                                    .on_worker_exit = on_worker_exit, .on_reload = app_reload, .on_reopen = on_reopen};
    app.nworkers = (int)app.conf.threads;
    if ((app.d = cdn_daemon_new(&dopts, err, sizeof(err))) == NULL) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    if (app_render_start(app.conf.render_threads) != 0) {
        fprintf(stderr, PROG ": cannot start render threads\n");
        return 1;
    }
    cdn_notice("listening on %s (%d thread%s, catalog %s: %u products, images on %s)", abuf, app.nworkers,
               app.nworkers > 1 ? "s" : "", app.conf.db, app.conf.products, *app.site.img_base ? app.site.img_base : "this host");
    int rc = cdn_daemon_run(app.d);
    cdn_daemon_free(app.d);
    cdn_notice("stopped");
    return rc;
}

int main(int argc, char **argv)
{
    char err[512], abuf[64];
    int rc = app_cmdline_parse(argc, argv, &app.cmdline);
    if (rc != 0)
        return rc - 1;
    if ((rc = app_conf_load(&app.cmdline, &app.conf, &app.cdoc, err, sizeof(err))) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return rc;
    }
    /* a config test writes nothing: not even the error log (its messages go to stderr) */
    if (cdn_log_open(PROG, app.cmdline.test ? NULL : app.conf.error_log,
                     (enum cdn_log_level)cdn_log_level_parse(app.conf.log_level)) != 0) {
        fprintf(stderr, PROG ": cannot open error log %s: %s\n", app.conf.error_log, strerror(errno));
        return 1;
    }
    if ((rc = app_catalog_prepare()) >= 0)
        return rc;

    app.rules_buf = app_conf_rules(&app.conf);
    app.rules = &app.rules_buf;
    cdn_addr_str((struct sockaddr *)&app.conf.listen.ss, abuf, sizeof(abuf));
    snprintf(app.name, sizeof(app.name), "%s", app.conf.name ? app.conf.name : abuf);
    app.site.img_base = app.conf.cdn_host ? app.conf.cdn_host : "";
    app.site.name = app.name;
    app.images = shop_imgcache_new((size_t)app.conf.image_cache);
    if (app.images == NULL || app_metrics_init() != 0 || app_db_metrics_init() != 0 ||
        (app.conf.idempotency_keys > 0 &&
         (app.idem = app_idem_new(app.conf.idempotency_keys, app.conf.idempotency_ttl, app.conf.idempotency_bytes)) == NULL)) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    if (app.conf.access_log != NULL &&
        (app.alog = cdn_alog_open(app.conf.access_log, (enum cdn_alog_format)app.conf.access_log_format)) == NULL) {
        fprintf(stderr, PROG ": cannot open access log %s: %s\n", app.conf.access_log, strerror(errno));
        return 1;
    }
    if (app.conf.pid_file != NULL && cdn_pidfile_write(app.conf.pid_file, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    rc = serve(abuf);
    if (app.conf.pid_file)
        cdn_pidfile_remove(app.conf.pid_file);
    if (app.alog)
        cdn_alog_close(app.alog);
    return rc;
}
