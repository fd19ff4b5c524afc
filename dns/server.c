/* dns/server.c - sockets, workers, the admin port, reloads and health probes of cdn-dns.
 * See server.h for the threading and reload rules.
 *
 * UDP: one thread per (worker, listen address) that blocks in recvmmsg(MSG_WAITFORONE) on its own
 * SO_REUSEPORT socket, answers up to BATCH datagrams and sends them with one sendmmsg (the model of
 * gdnsd and knot: no epoll_wait and no EAGAIN round per batch; that was ~10% of the CPU per query
 * under load). SO_RCVTIMEO wakes it every STOP_POLL_MS to see the stop flag.
 * TCP: the worker's own thread and h2o evloop; each message has a 2-byte length (frame.h); every
 * complete message in the input buffer is answered (pipelining), the answers are written in one
 * h2o_socket_write while reading pauses.
 * TCP slots (the model of knot and NSD; one client must not be able to hold them all):
 * - one timer per connection, never restarted by a byte: tcp_idle_ms from accept or the last
 *   answer until a query begins, then tcp_msg_ms to complete it (and again to write the answer);
 *   a client sending a byte a second is closed when its message is late, not kept forever;
 * - at most tcp_max_per_addr connections per client address (IPv6: per /64) and worker: one
 *   more is closed at once (a per-worker chained hash of the connections by address);
 * - at most tcp_max_conns per worker: when full, the connection least recently answered (or
 *   accepted) that is not writing is closed for the newcomer. conns_list is kept in that order:
 *   a connection moves to its tail when an answer has been written.
 * Abuse: RRL per subnet for UDP answers (slip = empty TC=1 reply); an unknown UDP client (no TCP
 * from its subnet lately) never gets more than amplification_factor x its query's size. */
#include "config.h"

#include "dns/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sched.h>
#include <linux/filter.h>

#include <h2o.h>

#include "dns/answer.h"
#include "dns/cache.h"
#include "dns/frame.h"
#include "cdn/sdnotify.h"
#include "cdn/admin.h"
#include "cdn/epoch.h"
#include "cdn/http.h"
#include "cdn/httpc.h"
#include "cdn/log.h"
#include "cdn/loop.h"
#include "cdn/metrics.h"
#include "cdn/proc.h"
#include "dns/rrl.h"

#define BATCH 32
#define STOP_POLL_MS 200
#define UDP_BUF 4096    /* a UDP query or answer; udp_max_size is capped at this (config) */
#define TCP_BUF 65535

struct view_metrics {             /* per view: series for its regions and edges */
    cdn_series_t **region;
    cdn_series_t **edge;
    cdn_series_t **edge_up;
};

struct worker;

struct udp_sock {                 /* one UDP thread */
    struct worker *w;
    int fd;
    int cpu;                      /* the CPU its thread is bound to (udp_steer: cpu), or -1 */
    pthread_t th;
    int started;
    unsigned reader;              /* its counter in s->epoch: inside while a batch is answered */
    struct cdns_rrl *rrl;         /* token buckets of this thread */
    struct cdns_cache *cache;     /* precomputed static answers of this thread */
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_storage peers[BATCH];
    uint8_t (*in)[UDP_BUF];
    uint8_t (*out)[UDP_BUF];
};

struct tcp_listener {
    struct worker *w;
    h2o_socket_t *sock;
};

struct tcp_conn {
    struct worker *w;
    h2o_socket_t *sock;
    h2o_linklist_t link;          /* in worker.conns_list, least recently answered first */
    h2o_linklist_t by_addr;       /* in worker.addr_buckets[addr_bucket(key)] */
    h2o_timeout_entry_t timer;    /* in worker.idle_timeout or worker.msg_timeout */
    int in_msg;                   /* the timer is the message deadline */
    int family;
    uint8_t addr[16];
    uint8_t key[16];              /* addr, IPv6 cut to its /64: what the per-address cap counts */
    uint8_t *out;
    size_t outlen, outcap;
    int writing;
};

struct worker {
    struct cdns_server *s;
    int id;
    pthread_t th;
    h2o_evloop_t *loop;
    struct udp_sock udp[CDNS_MAX_LISTEN];
    struct tcp_listener tcp[CDNS_MAX_LISTEN];
    int nudp, ntcp;
    unsigned reader;              /* the TCP thread's counter in s->epoch */
    h2o_timeout_t idle_timeout;
    h2o_timeout_t msg_timeout;
    unsigned conns;
    h2o_linklist_t conns_list;
    h2o_linklist_t *addr_buckets;  /* a power of two of them */
    size_t addr_mask;
    uint8_t tcpbuf[TCP_BUF];
};

struct probe {
    struct cdns_server *s;
    int edge;
    cdn_timer_t *timer;
    cdn_httpc_req_t *req;
};

struct cdns_server {
    struct cdns_conf conf;           /* settings; conf.view is NULL (the view lives below) */
    const char *conf_path;
    _Atomic(struct cdns_view *) view;
    struct worker *w;
    unsigned nworkers;
    cdn_epoch_t *epoch;              /* a reader per thread that reads the view (TCP and UDP threads) */
    unsigned nreaders;
    struct cdns_known *known;        /* subnets that spoke TCP lately (amplification guard) */
    _Atomic int stop;
    /* main loop */
    h2o_evloop_t *loop;
    cdn_admin_t *admin;
    cdn_signals_t *sig;
    cdn_timer_t *reclaim;
    cdn_httpc_t *httpc;
    struct probe *probes;
    size_t nprobes;
    int exit_code;
    int running;
    /* metrics */
    cdn_metrics_t *m;
    cdn_metric_t *f_queries, *f_rcode, *f_region, *f_edge, *f_edge_up, *f_rrl, *f_reload;
    cdn_series_t *s_udp, *s_tcp, *s_rcode[24], *s_trunc, *s_slip, *s_drop, *s_fallback, *s_reload_ok, *s_reload_err;
    cdn_metric_t *f_trunc, *f_fallback, *f_retired;
    cdn_series_t *s_retired;
};

static const char *rcode_name(int rc)
{
    static const char *n[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
    if (rc >= 0 && rc < 6) return n[rc];
    if (rc == CDNS_RC_BADVERS) return "BADVERS";
    return "OTHER";
}

/* --- answering (worker threads) --- */
static void addr_of(const struct sockaddr_storage *ss, int *family, uint8_t *addr)
{
    if (ss->ss_family == AF_INET) {
        *family = 1;
        memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) { *family = 1; memcpy(addr, a->s6_addr + 12, 4); }
        else { *family = 2; memcpy(addr, a->s6_addr, 16); }
    } else {
        *family = 0;
    }
}

static void count(struct cdns_server *s, const struct cdns_view *v, const struct cdns_result *r)
{
    if (r->rcode >= 0) cdn_counter_inc(s->s_rcode[r->rcode < 24 ? r->rcode : 23]);
    if (r->truncated) cdn_counter_inc(s->s_trunc);
    if (r->cdn) {
        const struct view_metrics *vm = v->user;
        if (vm && r->region >= 0) cdn_counter_inc(vm->region[r->region]);
        if (vm) for (int i = 0; i < r->npick; i++) cdn_counter_inc(vm->edge[r->edge[i]]);
        if (r->fallback) cdn_counter_inc(s->s_fallback);
    }
}

/* Answers one batch of n datagrams in u->msgs and sends the replies. */
static void udp_batch(struct udp_sock *u, int n)
{
    struct cdns_server *s = u->w->s;
    cdn_epoch_enter(s->epoch, u->reader);
    const struct cdns_view *v = atomic_load_explicit(&s->view, memory_order_acquire);
    uint64_t now = cdn_now_ms();
    size_t cap = v->set.udp_max < UDP_BUF ? v->set.udp_max : UDP_BUF;
    if (cap < 512) cap = 512;
    int out = 0;
    for (int i = 0; i < n; i++) {
        if (u->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;  /* larger than any query we take */
        struct cdns_req rq = {.pkt = u->in[i], .len = u->msgs[i].msg_len, .tcp = 0, .now_ms = now};
        addr_of(&u->peers[i], &rq.family, rq.addr);
        if (v->set.amp_factor && !cdns_known_check(s->known, &v->set, rq.family, rq.addr, now))
            rq.amp_limit = v->set.amp_factor * (unsigned)rq.len;
        struct cdns_result res;
        cdn_counter_inc(s->s_udp);
        size_t len = cdns_respond_cached(u->cache, v, &rq, u->out[out], cap, &res);
        if (len == 0) continue;
        switch (cdns_rrl_check(u->rrl, &v->set, rq.family, rq.addr, now)) {
        case CDNS_RRL_DROP: cdn_counter_inc(s->s_drop); continue;
        case CDNS_RRL_SLIP: cdn_counter_inc(s->s_slip); len = cdns_slip(u->out[out], len, &res); res.truncated = 1; break;
        case CDNS_RRL_PASS: break;
        }
        count(s, v, &res);
        /* reuse slot `out` of the message array for the reply */
        u->iov[out] = (struct iovec){u->out[out], len};
        if (out != i) u->peers[out] = u->peers[i];
        u->msgs[out].msg_hdr = (struct msghdr){.msg_name = &u->peers[out], .msg_namelen = u->msgs[i].msg_hdr.msg_namelen,
                                               .msg_iov = &u->iov[out], .msg_iovlen = 1};
        out++;
    }
    cdn_epoch_leave(s->epoch, u->reader);
    for (int sent = 0; sent < out;) {
        int k = sendmmsg(u->fd, u->msgs + sent, (unsigned)(out - sent), MSG_DONTWAIT);
        if (k <= 0) break;  /* a full socket buffer drops, as UDP would */
        sent += k;
    }
}

static void *udp_main(void *arg)
{
    struct udp_sock *u = arg;
    if (u->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(u->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  /* best effort: steering still spreads */
    }
    while (!atomic_load_explicit(&u->w->s->stop, memory_order_relaxed)) {
        for (int i = 0; i < BATCH; i++) {
            u->iov[i] = (struct iovec){u->in[i], UDP_BUF};
            u->msgs[i].msg_hdr = (struct msghdr){.msg_name = &u->peers[i], .msg_namelen = sizeof(u->peers[i]),
                                                 .msg_iov = &u->iov[i], .msg_iovlen = 1};
        }
        /* blocks for the first datagram (at most STOP_POLL_MS), then takes what is queued */
        int n = recvmmsg(u->fd, u->msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n > 0) udp_batch(u, n);
    }
    return NULL;
}

static void tcp_close(struct tcp_conn *c)
{
    if (h2o_timeout_is_linked(&c->timer)) h2o_timeout_unlink(&c->timer);
    h2o_linklist_unlink(&c->link);
    h2o_linklist_unlink(&c->by_addr);
    h2o_socket_close(c->sock);
    c->w->conns--;
    free(c->out);
    free(c);
}

static void on_tcp_timeout(h2o_timeout_entry_t *e)
{
    struct tcp_conn *c = H2O_STRUCT_FROM_MEMBER(struct tcp_conn, timer, e);
    tcp_close(c);
}

/* Starts c's one timer afresh: the idle wait, or the deadline of a message (in_msg). Called on
 * accept, when a message begins and around each answer; never for a byte of the same message. */
static void arm(struct tcp_conn *c, int in_msg)
{
    if (h2o_timeout_is_linked(&c->timer)) h2o_timeout_unlink(&c->timer);
    c->in_msg = in_msg;
    h2o_timeout_link(c->w->loop, in_msg ? &c->w->msg_timeout : &c->w->idle_timeout, &c->timer);
}

static void on_tcp_read(h2o_socket_t *sock, const char *err);

static void on_tcp_written(h2o_socket_t *sock, const char *err)
{
    struct tcp_conn *c = sock->data;
    c->writing = 0;
    c->outlen = 0;
    if (err) { tcp_close(c); return; }
    /* answered: now the most recently used, the last one a full table closes */
    h2o_linklist_unlink(&c->link);
    h2o_linklist_insert(&c->w->conns_list, &c->link);
    /* a query begun before the answer went out has tcp_msg_ms from now to be complete */
    arm(c, sock->input->size > 0);
    h2o_socket_read_start(sock, on_tcp_read);
    if (sock->input->size >= 2) on_tcp_read(sock, NULL);  /* pipelined queries still buffered */
}

static void on_tcp_read(h2o_socket_t *sock, const char *err)
{
    struct tcp_conn *c = sock->data;
    struct worker *w = c->w;
    struct cdns_server *s = w->s;
    if (err) { tcp_close(c); return; }
    cdn_epoch_enter(s->epoch, w->reader);
    const struct cdns_view *v = atomic_load_explicit(&s->view, memory_order_acquire);
    uint64_t now = cdn_now_ms();
    int bad = 0;
    while (c->outlen < 256 * 1024) {
        const uint8_t *q;
        size_t ql;
        long fl = cdns_frame_next((const uint8_t *)sock->input->bytes, sock->input->size, &q, &ql);
        if (fl == CDNS_FRAME_BAD) { bad = 1; break; }
        if (fl == CDNS_FRAME_MORE) break;
        struct cdns_req rq = {.pkt = q, .len = ql, .tcp = 1, .now_ms = now, .family = c->family};
        memcpy(rq.addr, c->addr, 16);
        struct cdns_result res;
        cdn_counter_inc(s->s_tcp);
        size_t len = cdns_respond(v, &rq, w->tcpbuf, sizeof(w->tcpbuf), &res);
        h2o_buffer_consume(&sock->input, (size_t)fl);
        if (len == 0) continue;
        count(s, v, &res);
        cdns_known_mark(s->known, &v->set, c->family, c->addr, now);
        if (c->outcap - c->outlen < len + 2) {
            size_t cap = c->outcap ? c->outcap : 4096;
            while (cap - c->outlen < len + 2) cap *= 2;
            uint8_t *o = realloc(c->out, cap);
            if (!o) { bad = 1; break; }
            c->out = o;
            c->outcap = cap;
        }
        c->out[c->outlen] = (uint8_t)(len >> 8);
        c->out[c->outlen + 1] = (uint8_t)len;
        memcpy(c->out + c->outlen + 2, w->tcpbuf, len);
        c->outlen += len + 2;
    }
    cdn_epoch_leave(s->epoch, w->reader);
    if (c->outlen && !c->writing) {
        c->writing = 1;
        arm(c, 1);  /* a client that does not read its answers is closed too */
        h2o_socket_read_stop(sock);  /* the write completes before more input is taken */
        h2o_iovec_t buf = h2o_iovec_init(c->out, c->outlen);
        h2o_socket_write(sock, &buf, 1, on_tcp_written);
        return;
    }
    if (bad) { tcp_close(c); return; }
    if (sock->input->size > 0 && !c->in_msg) arm(c, 1);  /* a query has begun: its deadline runs */
}

static size_t addr_bucket(const struct worker *w, int family, const uint8_t *key)
{
    /* the process's random hash key: an attacker cannot aim many addresses at one bucket */
    uint8_t b[17];
    b[0] = (uint8_t)family;
    memcpy(b + 1, key, 16);
    return (size_t)cdn_hash(b, sizeof(b)) & w->addr_mask;
}

/* Connections of this worker from the client (family, key), counted up to `stop`. */
static unsigned addr_count(struct worker *w, int family, const uint8_t *key, unsigned stop)
{
    h2o_linklist_t *b = &w->addr_buckets[addr_bucket(w, family, key)];
    unsigned n = 0;
    for (h2o_linklist_t *l = b->next; l != b && n < stop; l = l->next) {
        struct tcp_conn *o = H2O_STRUCT_FROM_MEMBER(struct tcp_conn, by_addr, l);
        if (o->family == family && !memcmp(o->key, key, 16)) n++;
    }
    return n;
}

/* Closes the connection least recently answered (or accepted) that is not writing: 0, or -1 if
 * every one is writing. A client with a query half sent counts as idle: it had its chance. */
static int evict_oldest(struct worker *w)
{
    for (h2o_linklist_t *l = w->conns_list.next; l != &w->conns_list; l = l->next) {
        struct tcp_conn *o = H2O_STRUCT_FROM_MEMBER(struct tcp_conn, link, l);
        if (!o->writing) { tcp_close(o); return 0; }
    }
    return -1;
}

static void on_tcp_accept(h2o_socket_t *listener, const char *err)
{
    struct tcp_listener *l = listener->data;
    struct worker *w = l->w;
    const struct cdns_conf *conf = &w->s->conf;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock) return;
        struct sockaddr_storage ss;
        socklen_t sl = (socklen_t)h2o_socket_getpeername(sock, (struct sockaddr *)&ss);
        if (sl == 0) ss.ss_family = AF_UNSPEC;
        int family;
        uint8_t addr[16] = {0}, key[16];
        addr_of(&ss, &family, addr);
        memcpy(key, addr, 16);
        if (family == 2) memset(key + 8, 0, 8);  /* one IPv6 client has a whole /64 */
        /* the cap first: an address at its cap must not close others' connections */
        if (conf->tcp_max_per_addr && addr_count(w, family, key, conf->tcp_max_per_addr) >= conf->tcp_max_per_addr) {
            h2o_socket_close(sock);
            continue;
        }
        if (w->conns >= conf->tcp_max_conns && evict_oldest(w) != 0) { h2o_socket_close(sock); continue; }
        struct tcp_conn *c = calloc(1, sizeof(*c));
        if (!c) { h2o_socket_close(sock); continue; }
        c->w = w;
        c->sock = sock;
        c->timer.cb = on_tcp_timeout;
        c->family = family;
        memcpy(c->addr, addr, 16);
        memcpy(c->key, key, 16);
        sock->data = c;
        w->conns++;
        h2o_linklist_insert(&w->conns_list, &c->link);
        h2o_linklist_insert(&w->addr_buckets[addr_bucket(w, family, key)], &c->by_addr);
        arm(c, 0);
        h2o_socket_read_start(sock, on_tcp_read);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* h2o keeps freed socket buffers in a per-thread bin that is lost when the thread ends; TCP
     * buffers are few here, so free them right away instead (no leak at exit) */
    h2o_socket_buffer_prototype.allocator.max = 0;
    while (!atomic_load(&w->s->stop)) h2o_evloop_run(w->loop, 200);
    /* stopping: close every socket on this thread, let the loop finish the closes, free it */
    while (!h2o_linklist_is_empty(&w->conns_list))
        tcp_close(H2O_STRUCT_FROM_MEMBER(struct tcp_conn, link, w->conns_list.next));
    for (int i = 0; i < w->ntcp; i++) h2o_socket_close(w->tcp[i].sock);
    h2o_timeout_dispose(w->loop, &w->idle_timeout);
    h2o_timeout_dispose(w->loop, &w->msg_timeout);
    h2o_evloop_run(w->loop, 0);
    h2o_evloop_destroy(w->loop);
    w->loop = NULL;
    return NULL;
}

static int worker_init(struct cdns_server *s, struct worker *w, char *err, size_t errlen)
{
    w->s = s;
    w->loop = h2o_evloop_create();
    h2o_linklist_init_anchor(&w->conns_list);
    h2o_timeout_init(w->loop, &w->idle_timeout, s->conf.tcp_idle_ms ? s->conf.tcp_idle_ms : 10000);
    h2o_timeout_init(w->loop, &w->msg_timeout, s->conf.tcp_msg_ms ? s->conf.tcp_msg_ms : 2000);
    size_t nb = 64;
    while (nb < s->conf.tcp_max_conns && nb < 65536) nb *= 2;
    w->addr_buckets = malloc(nb * sizeof(*w->addr_buckets));
    if (!w->addr_buckets) { snprintf(err, errlen, "out of memory"); return -1; }
    for (size_t i = 0; i < nb; i++) h2o_linklist_init_anchor(&w->addr_buckets[i]);
    w->addr_mask = nb - 1;
    int reuse = s->nworkers > 1;
    for (int i = 0; i < s->conf.nlisten; i++) {
        const struct cdn_conf_addr *a = &s->conf.listen[i];
        int fd = cdn_bind_udp((const struct sockaddr *)&a->ss, a->len, reuse, err, errlen);
        if (fd < 0) return -1;
        struct udp_sock *u = &w->udp[w->nudp++];
        u->w = w;
        u->fd = fd;
        u->cpu = -1;
        int sz = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        struct timeval tv = {0, STOP_POLL_MS * 1000};
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
            snprintf(err, errlen, "UDP socket options: %s", strerror(errno));
            return -1;
        }
        u->rrl = cdns_rrl_new(65536);
        u->in = malloc(BATCH * sizeof(*u->in));
        u->out = malloc(BATCH * sizeof(*u->out));
        u->cache = calloc(1, sizeof(*u->cache));
        if (!u->rrl || !u->in || !u->out || !u->cache) { snprintf(err, errlen, "out of memory"); return -1; }
        int tfd = cdn_listen_tcp((const struct sockaddr *)&a->ss, a->len, reuse, err, errlen);
        if (tfd < 0) return -1;
        w->tcp[w->ntcp].w = w;
        w->tcp[w->ntcp].sock = h2o_evloop_socket_create(w->loop, tfd, H2O_SOCKET_FLAG_DONT_READ);
        w->tcp[w->ntcp].sock->data = &w->tcp[w->ntcp];
        h2o_socket_read_start(w->tcp[w->ntcp].sock, on_tcp_accept);
        w->ntcp++;
    }
    return 0;
}

/* --- views: metrics, health carry-over, reclamation (main thread) --- */
static void view_metrics(struct cdns_server *s, struct cdns_view *v)
{
    struct view_metrics *vm = cdns_view_alloc(v, sizeof(*vm));
    vm->region = cdns_view_alloc(v, (v->nregions + 1) * sizeof(cdn_series_t *));
    vm->edge = cdns_view_alloc(v, (v->nedges + 1) * sizeof(cdn_series_t *));
    vm->edge_up = cdns_view_alloc(v, (v->nedges + 1) * sizeof(cdn_series_t *));
    for (size_t i = 0; i < v->nregions; i++)
        vm->region[i] = cdn_metric_series(s->f_region, (const char *[]){v->regions[i].name});
    for (size_t i = 0; i < v->nedges; i++) {
        vm->edge[i] = cdn_metric_series(s->f_edge, (const char *[]){v->edges[i].name});
        vm->edge_up[i] = cdn_metric_series(s->f_edge_up, (const char *[]){v->edges[i].name});
    }
    v->user = vm;
}

static void carry_health(const struct cdns_view *old, struct cdns_view *nv)
{
    for (size_t i = 0; i < nv->nedges; i++)
        for (size_t j = 0; j < old->nedges; j++)
            if (!strcmp(nv->edges[i].name, old->edges[j].name) && nv->edges[i].health_url && old->edges[j].health_url &&
                !strcmp(nv->edges[i].health_url, old->edges[j].health_url))
                atomic_store(&nv->health[i], atomic_load(&old->health[j]));
}

static void on_reclaim(cdn_timer_t *t, void *data)
{
    struct cdns_server *s = data;
    size_t waiting = cdn_epoch_reclaim(s->epoch);
    cdn_gauge_set(s->s_retired, (double)waiting);
    if (waiting) cdn_timer_start(t, 50);
}

static void view_free(void *v) { cdns_view_free(v); }

static void probes_stop(struct cdns_server *s);
static void probes_start(struct cdns_server *s);

static void install(struct cdns_server *s, struct cdns_view *nv)
{
    struct cdns_view *old = atomic_load(&s->view);
    view_metrics(s, nv);
    if (old) carry_health(old, nv);
    probes_stop(s);
    atomic_store_explicit(&s->view, nv, memory_order_seq_cst);
    probes_start(s);
    if (!old) return;
    /* freed by on_reclaim once no worker thread can still be answering from it */
    if (cdn_epoch_retire(s->epoch, old, view_free) != 0) {
        cdn_err("out of memory: the replaced view is never freed");
        return;
    }
    cdn_gauge_add(s->s_retired, 1);
    /* not re-armed when pending: reloads closer than 50 ms apart would put reclamation off until
     * they stop */
    if (!cdn_timer_active(s->reclaim)) cdn_timer_start(s->reclaim, 50);
}

static void reload(struct cdns_server *s)
{
    struct cdns_conf nc;
    cdn_conf_err_t err;
    if (cdns_conf_load(s->conf_path, &nc, &err) != 0) {
        cdn_err("reload failed, keeping the running configuration: %s", err.msg);
        cdn_counter_inc(s->s_reload_err);
        return;
    }
    struct cdns_view *v = nc.view;
    nc.view = NULL;
    cdns_conf_free(&nc);
    install(s, v);
    cdn_counter_inc(s->s_reload_ok);
    cdn_notice("reloaded %s: %zu zones, %zu regions, %zu edges", s->conf_path, v->nzones, v->nregions, v->nedges);
}

/* --- health probes (main thread) --- */
static void probe_set(struct cdns_server *s, int edge, int ok)
{
    struct cdns_view *v = atomic_load(&s->view);
    struct cdns_health h;
    cdns_health_unpack(atomic_load(&v->health[edge]), &h);
    int changed = cdns_health_step(&h, ok, cdn_now_ms(), v->set.hc_rise, v->set.hc_fall);
    atomic_store(&v->health[edge], cdns_health_pack(&h));
    if (changed) cdn_notice("edge %s is %s", v->edges[edge].name, h.rf.up ? "up" : "down");
}

static void on_probe_timer(cdn_timer_t *t, void *data);

static void on_probe_done(const char *errstr, int status, const void *body, size_t len,
                          const struct cdn_httpc_info *info, void *data)
{
    struct probe *p = data;
    struct cdns_server *s = p->s;
    p->req = NULL;
    int ok = !errstr && status >= 200 && status < 300;
    if (!ok) cdn_debug("probe %s: %s", atomic_load(&s->view)->edges[p->edge].health_url, errstr ? errstr : "bad status");
    probe_set(s, p->edge, ok);
}

static void on_probe_timer(cdn_timer_t *t, void *data)
{
    struct probe *p = data;
    struct cdns_server *s = p->s;
    struct cdns_view *v = atomic_load(&s->view);
    cdn_timer_start(t, v->set.hc_interval_ms);
    if (p->req) return;  /* the previous probe is still running (its timeout counts as a failure) */
    struct cdn_httpc_request rq = {.url = v->edges[p->edge].health_url, .timeout_ms = v->set.hc_timeout_ms};
    p->req = cdn_httpc_fetch(s->httpc, &rq, on_probe_done, p);
    if (!p->req) probe_set(s, p->edge, 0);
}

static void probes_stop(struct cdns_server *s)
{
    for (size_t i = 0; i < s->nprobes; i++) {
        if (s->probes[i].req) cdn_httpc_cancel(s->probes[i].req);
        cdn_timer_free(s->probes[i].timer);
    }
    free(s->probes);
    s->probes = NULL;
    s->nprobes = 0;
}

static void probes_start(struct cdns_server *s)
{
    struct cdns_view *v = atomic_load(&s->view);
    if (!s->httpc) return;
    s->probes = calloc(v->nedges ? v->nedges : 1, sizeof(*s->probes));
    for (size_t i = 0; i < v->nedges; i++) {
        if (!v->edges[i].health_url) continue;
        struct probe *p = &s->probes[s->nprobes++];
        p->s = s;
        p->edge = (int)i;
        p->timer = cdn_timer_new(s->loop, on_probe_timer, p);
        cdn_timer_start(p->timer, 0);
    }
}

/* --- admin HTTP --- */
static void on_before_metrics(void *data)
{
    struct cdns_server *s = data;
    struct cdns_view *v = atomic_load(&s->view);
    const struct view_metrics *vm = v->user;
    for (size_t i = 0; i < v->nedges; i++) {
        struct cdns_health h;
        cdns_health_unpack(atomic_load(&v->health[i]), &h);
        cdn_gauge_set(vm->edge_up[i], h.rf.up ? 1 : 0);
    }
}

/* --- signals --- */
static void on_signal(int signo, void *data)
{
    struct cdns_server *s = data;
    if (signo == SIGHUP) {
        cdn_log_reopen();
        cdn_sd_reloading();
        reload(s);
        cdn_sd_ready();
    } else if (signo == SIGTERM || signo == SIGINT) {
        cdn_notice("signal %d: stopping", signo);
        cdn_sd_stopping();
        s->running = 0;
    }
}

/* --- life cycle --- */
static int metrics_init(struct cdns_server *s)
{
    s->m = cdn_metrics_new();
    if (!s->m || cdn_metrics_add_process(s->m, "cdn_dns") != 0) return -1;
    s->f_queries = cdn_metrics_counter(s->m, "cdn_dns_queries_total", "Queries received", (const char *[]){"transport", NULL});
    s->f_rcode = cdn_metrics_counter(s->m, "cdn_dns_responses_total", "Responses sent by rcode", (const char *[]){"rcode", NULL});
    s->f_region = cdn_metrics_counter(s->m, "cdn_dns_region_answers_total", "CDN answers per client region", (const char *[]){"region", NULL});
    s->f_edge = cdn_metrics_counter(s->m, "cdn_dns_edge_answers_total", "CDN answers per edge given", (const char *[]){"edge", NULL});
    s->f_edge_up = cdn_metrics_gauge(s->m, "cdn_dns_edge_up", "Edge health (1 up, 0 down)", (const char *[]){"edge", NULL});
    s->f_rrl = cdn_metrics_counter(s->m, "cdn_dns_rrl_total", "Rate-limited answers", (const char *[]){"action", NULL});
    s->f_reload = cdn_metrics_counter(s->m, "cdn_dns_reloads_total", "Configuration reloads", (const char *[]){"result", NULL});
    s->f_trunc = cdn_metrics_counter(s->m, "cdn_dns_truncated_total", "Responses sent with TC=1", NULL);
    s->f_fallback = cdn_metrics_counter(s->m, "cdn_dns_fallback_total", "CDN answers given while every edge was down", NULL);
    s->f_retired = cdn_metrics_gauge(s->m, "cdn_dns_views_retired", "Views replaced by a reload and not freed yet",
                                     NULL);
    if (!s->f_queries || !s->f_rcode || !s->f_region || !s->f_edge || !s->f_edge_up || !s->f_rrl || !s->f_reload ||
        !s->f_trunc || !s->f_fallback || !s->f_retired)
        return -1;
    s->s_udp = cdn_metric_series(s->f_queries, (const char *[]){"udp"});
    s->s_tcp = cdn_metric_series(s->f_queries, (const char *[]){"tcp"});
    for (int i = 0; i < 24; i++) s->s_rcode[i] = cdn_metric_series(s->f_rcode, (const char *[]){rcode_name(i)});
    s->s_slip = cdn_metric_series(s->f_rrl, (const char *[]){"slip"});
    s->s_drop = cdn_metric_series(s->f_rrl, (const char *[]){"drop"});
    s->s_reload_ok = cdn_metric_series(s->f_reload, (const char *[]){"ok"});
    s->s_reload_err = cdn_metric_series(s->f_reload, (const char *[]){"error"});
    s->s_trunc = cdn_metric_plain(s->f_trunc);
    s->s_fallback = cdn_metric_plain(s->f_fallback);
    s->s_retired = cdn_metric_plain(s->f_retired);
    return 0;
}

/* udp_steer: cpu. A datagram goes to the SO_REUSEPORT socket of worker (receiving CPU mod workers),
 * and worker i's UDP thread runs on CPU i mod CPUs: a query is answered on the CPU that took it
 * in, with no cross-CPU wakeup and the socket's data in that CPU's cache (on loopback and veth the
 * receiving CPU is the sender's). The kernel's default spreads by a hash of the addresses, which
 * can put two busy clients on one worker while the other idles. Worker sockets join each group in
 * worker order (worker_init), so the program's result is the worker index. */
static int steer_by_cpu(struct cdns_server *s, char *err, size_t errlen)
{
    struct sock_filter code[] = {
        {BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)(SKF_AD_OFF + SKF_AD_CPU)},
        {BPF_ALU | BPF_MOD | BPF_K, 0, 0, s->nworkers},
        {BPF_RET | BPF_A, 0, 0, 0},
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    for (int k = 0; k < s->w[0].nudp; k++)
        if (setsockopt(s->w[0].udp[k].fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) != 0) {
            snprintf(err, errlen, "udp_steer cpu: SO_ATTACH_REUSEPORT_CBPF: %s", strerror(errno));
            return -1;
        }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    for (unsigned i = 0; i < s->nworkers; i++)
        for (int k = 0; k < s->w[i].nudp; k++)
            s->w[i].udp[k].cpu = (int)(i % (unsigned)(ncpu > 0 ? ncpu : 1));
    return 0;
}

struct cdns_server *cdns_server_start(struct cdns_conf *conf, const char *conf_path, char *err, size_t errlen)
{
    struct cdns_server *s = calloc(1, sizeof(*s));
    if (!s) { snprintf(err, errlen, "out of memory"); return NULL; }
    struct cdns_view *v = conf->view;
    conf->view = NULL;
    s->conf = *conf;
    memset(conf, 0, sizeof(*conf));  /* we own the strings now */
    s->conf_path = conf_path;
    s->nworkers = s->conf.workers ? s->conf.workers : 1;
    s->loop = h2o_evloop_create();
    if (metrics_init(s) != 0) { snprintf(err, errlen, "metrics registry"); cdns_view_free(v); return NULL; }
    s->reclaim = cdn_timer_new(s->loop, on_reclaim, s);
    s->httpc = cdn_httpc_new(s->loop, &(struct cdn_httpc_opts){.connect_timeout_ms = 1000, .max_body = 65536},
                             err, errlen);
    if (!s->httpc) { cdns_view_free(v); return NULL; }
    s->w = calloc(s->nworkers, sizeof(*s->w));
    s->epoch = cdn_epoch_new(s->nworkers * (1 + (unsigned)s->conf.nlisten));
    s->known = cdns_known_new(65536);
    if (!s->w || !s->epoch || !s->known) { snprintf(err, errlen, "out of memory"); cdns_view_free(v); return NULL; }
    for (unsigned i = 0; i < s->nworkers; i++) {
        s->w[i].id = (int)i;
        if (worker_init(s, &s->w[i], err, errlen) != 0) { cdns_view_free(v); return NULL; }
        s->w[i].reader = s->nreaders++;
        for (int k = 0; k < s->w[i].nudp; k++) s->w[i].udp[k].reader = s->nreaders++;
    }
    if (s->nworkers > 1 && s->conf.udp_steer_cpu && steer_by_cpu(s, err, errlen) != 0) { cdns_view_free(v); return NULL; }
    install(s, v);
    if (s->conf.admin.len) {
        struct cdn_admin_opts o = {.addr = (const struct sockaddr *)&s->conf.admin.ss, .addr_len = s->conf.admin.len,
                                   .metrics = s->m, .before_metrics = on_before_metrics, .data = s};
        if (!(s->admin = cdn_admin_start(s->loop, &o, err, errlen))) return NULL;
    }
    s->sig = cdn_signals_watch(s->loop, on_signal, s);
    if (!s->sig) { snprintf(err, errlen, "cannot watch signals"); return NULL; }
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct worker *w = &s->w[i];
        int rc = pthread_create(&w->th, NULL, worker_main, w);
        for (int k = 0; k < w->nudp && rc == 0; k++)
            if ((rc = pthread_create(&w->udp[k].th, NULL, udp_main, &w->udp[k])) == 0) w->udp[k].started = 1;
        if (rc != 0) {
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            return NULL;
        }
    }
    return s;
}

int cdns_server_run(struct cdns_server *s)
{
    char buf[64];
    s->running = 1;
    for (int i = 0; i < s->conf.nlisten; i++)
        cdn_notice("listening on %s (udp+tcp), %u worker(s)",
                   cdn_addr_str((const struct sockaddr *)&s->conf.listen[i].ss, buf, sizeof(buf)), s->nworkers);
    cdn_sd_ready(); /* the sockets were bound in cdns_server_new */
    while (s->running) h2o_evloop_run(s->loop, 1000);
    atomic_store(&s->stop, 1);
    for (unsigned i = 0; i < s->nworkers; i++) {
        pthread_join(s->w[i].th, NULL);
        for (int k = 0; k < s->w[i].nudp; k++)
            if (s->w[i].udp[k].started) pthread_join(s->w[i].udp[k].th, NULL);
    }
    return 0;
}

void cdns_server_free(struct cdns_server *s)
{
    /* runs after cdns_server_run: the workers have closed their sockets and freed their loops */
    if (!s) return;
    probes_stop(s);
    cdn_epoch_free(s->epoch);  /* frees the views still retired: no thread reads any more */
    for (unsigned i = 0; i < s->nworkers; i++) {
        free(s->w[i].addr_buckets);  /* empty: the worker closed its connections */
        for (int k = 0; k < s->w[i].nudp; k++) {
            struct udp_sock *u = &s->w[i].udp[k];
            close(u->fd);
            cdns_rrl_free(u->rrl);
            free(u->in);
            free(u->out);
            free(u->cache);
        }
    }
    cdns_known_free(s->known);
    if (s->conf.pid_file) cdn_pidfile_remove(s->conf.pid_file);
    cdn_httpc_free(s->httpc);
    cdn_timer_free(s->reclaim);
    cdn_signals_free(s->sig);
    cdn_admin_free(s->admin);
    h2o_evloop_run(s->loop, 0);
    cdn_loop_dispose(s->loop);
    h2o_evloop_destroy(s->loop);
    cdn_metrics_free(s->m);
    cdns_view_free(atomic_load(&s->view));
    cdns_conf_free(&s->conf);
    free(s->w);
    free(s);
}
