/* edge/admin.h - cdn-edge's admin listener: cdn/admin.h's /healthz (503 "draining" while
 * draining) and /metrics, plus /purge?url=URL|tag=TAG, /drain (GET shows, POST starts, DELETE
 * ends) and /undrain (POST). The edge's metrics are made by edge_server_metrics_init (edge.h),
 * in admin.c too. */
#ifndef EDGE_ADMIN_H
#define EDGE_ADMIN_H

#include <sys/socket.h>

#include "cdn/admin.h"
#include "edge/edge.h"

/* Listens on addr and serves on loop (the main thread's). NULL with err set. */
cdn_admin_t *edge_admin_start(h2o_evloop_t *loop, struct edge_server *s, const struct sockaddr *addr, socklen_t len,
                              char *err, size_t errlen);

#endif
