/* dns/conf.h - the cdn-dns YAML configuration (see docs/DNS.md for every key) read into a view
 * plus the process settings that a reload cannot change (addresses, workers, pid file). Errors
 * are "file:line:col: what" (cdn/config.h). */
#ifndef CDNS_CONF_H
#define CDNS_CONF_H

#include <stdint.h>
#include "cdn/config.h"
#include "dns/view.h"

#define CDNS_MAX_LISTEN 8

struct cdns_conf {
    struct cdns_view *view;     /* owned: hand it over (set to NULL) or cdns_conf_free frees it */
    struct cdn_conf_addr listen[CDNS_MAX_LISTEN];
    int nlisten;
    struct cdn_conf_addr admin; /* len 0: no admin port */
    unsigned workers;
    const char *pid_file;       /* copies, malloc'd */
    const char *log_file;
    int log_level;
    uint64_t tcp_idle_ms;       /* accept or last answer -> first byte of the next query */
    uint64_t tcp_msg_ms;        /* first byte of a query -> whole query; and writing an answer */
    unsigned tcp_max_conns;     /* per worker; a full table closes its oldest idle connection */
    unsigned tcp_max_per_addr;  /* per worker and client address (IPv6: /64); 0 = no cap */
    int udp_steer_cpu;          /* udp_steer: cpu (1) or hash (0, the kernel's SO_REUSEPORT default) */
};

/* 0, or -1 with err filled. */
int cdns_conf_load(const char *path, struct cdns_conf *out, cdn_conf_err_t *err);
int cdns_conf_load_string(const char *name, const char *text, struct cdns_conf *out, cdn_conf_err_t *err);
void cdns_conf_free(struct cdns_conf *c);

#endif
