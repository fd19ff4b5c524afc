/* dns/main.c - cdn-dns: command line, config test, logging, pid file; the rest is server.c. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/proc.h"
#include "dns/conf.h"
#include "dns/server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: cdn-dns -c FILE [-t] [-p PIDFILE]\n"
            "Authoritative geo DNS for the CDN: answers each client with its nearest healthy edge.\n"
            "\n"
            "  -c, --config FILE   configuration (YAML; see docs/DNS.md)\n"
            "  -t, --test          check the configuration and exit (errors as file:line:col: what)\n"
            "  -p, --pid-file FILE write the pid there (overrides pid_file)\n"
            "  -V, --version       print the version and exit\n"
            "  -h, --help          this text\n"
            "\n"
            "Signals: SIGHUP reloads zones and topology (the running config stays on error),\n"
            "SIGTERM/SIGINT stop gracefully (exit 0).\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
        {"pid-file", required_argument, NULL, 'p'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *pidfile = NULL;
    int test = 0, ch;
    while ((ch = getopt_long(argc, argv, "c:tp:Vh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 't': test = 1; break;
        case 'p': pidfile = optarg; break;
        case 'V': cdn_print_version("cdn-dns"); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!path || optind != argc) { usage(stderr); return 2; }

    struct cdns_conf conf;
    cdn_conf_err_t cerr;
    if (cdns_conf_load(path, &conf, &cerr) != 0) {
        fprintf(stderr, "%s\n", cerr.msg);
        return 1;
    }
    if (test) {
        printf("%s: configuration ok (%zu zones, %zu regions, %zu edges)\n", path, conf.view->nzones,
               conf.view->nregions, conf.view->nedges);
        cdns_conf_free(&conf);
        return 0;
    }
    if (cdn_signals_block() != 0) { fprintf(stderr, "cannot block signals\n"); return 1; }
    if (cdn_log_open("cdn-dns", conf.log_file, (enum cdn_log_level)conf.log_level) != 0) {
        fprintf(stderr, "cannot open log %s\n", conf.log_file ? conf.log_file : "-");
        return 1;
    }
    char err[512];
    if (pidfile) { free((void *)conf.pid_file); conf.pid_file = strdup(pidfile); }
    if (conf.pid_file && cdn_pidfile_write(conf.pid_file, err, sizeof(err)) != 0) {
        cdn_err("%s", err);
        return 1;
    }
    const char *pf = conf.pid_file ? strdup(conf.pid_file) : NULL;
    struct cdns_server *s = cdns_server_start(&conf, path, err, sizeof(err));
    if (!s) {
        cdn_err("%s", err);
        if (pf) cdn_pidfile_remove(pf);
        return 1;
    }
    int rc = cdns_server_run(s);
    cdns_server_free(s);
    free((void *)pf);
    cdn_notice("stopped");
    return rc;
}
