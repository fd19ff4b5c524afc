/* lib/loop.c - what h2o 2.2.5's evloop lacks: one-shot timers of any length (a timerfd each),
 * watches on descriptors somebody else owns (curl's, c-ares'), and signals as loop events.
 *
 * Rules:
 * - A watch wraps dup(fd) in an h2o socket with H2O_SOCKET_FLAG_DONT_READ: h2o owns and closes the
 *   dup, the library keeps and closes the original (h2o 2.2.5 has no public call that stops
 *   watching a descriptor without closing it: h2o_socket_export asserts it is not writing).
 * - h2o's write notification is one-shot and cannot be cancelled: we re-arm it while write interest
 *   lasts and ignore a stale one that fires after interest was dropped.
 * - Every object here may be freed from inside its own callback: the callback runs with in_cb set,
 *   and a free during it only marks the object dead; the dispatcher frees it on the way out.
 * - Everything runs on the loop's thread; nothing blocks. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "cdn/loop.h"

#define TIMER_MAGIC 0x54494d52u  /* "TIMR" */
#define WATCH_MAGIC 0x57415443u  /* "WATC" */
#define SIGS_MAGIC 0x5349474eu   /* "SIGN" */

struct cdn_timer {
    uint32_t magic;
    h2o_evloop_t *loop;
    h2o_socket_t *sock;        /* wraps the timerfd (ours: closing the socket closes it) */
    h2o_timeout_entry_t zero;  /* linked in the loop's zero-delay queue for "next turn" */
    uint64_t deadline_ns;      /* when the callback is due (valid while active) */
    uint64_t armed_ns;         /* what the timerfd is set to; 0 = not armed */
    cdn_timer_cb cb;
    void *data;
    unsigned active : 1, in_cb : 1, dead : 1;
};

struct cdn_watch {
    uint32_t magic;
    h2o_socket_t *sock; /* wraps dup(fd) */
    int fd;             /* the owner's descriptor, passed back to the callback */
    int want;
    cdn_watch_cb cb;
    void *data;
    unsigned in_cb : 1, dead : 1;
};

struct cdn_signals {
    uint32_t magic;
    h2o_socket_t *sock; /* wraps the signalfd */
    cdn_signal_cb cb;
    void *data;
    unsigned in_cb : 1, dead : 1;
};

/* ---- time ---- */

uint64_t cdn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

double cdn_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- timers ----
 * timerfd_settime is the expensive part (half the CPU of a curl benchmark went there: curl moves
 * its timeout on almost every call). So the timerfd is lazy: it is re-armed only when a deadline
 * moves earlier; when it fires early (the deadline moved later) it is re-armed for the rest, and
 * stop leaves it armed (one spurious wake-up at most). "0 ms" skips the timerfd altogether: the
 * timer goes on a per-loop zero-delay h2o_timeout run after this turn's events. */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One zero-delay queue per loop, kept for the loop's life (an h2o_timeout_t may not be disposed
 * while h2o_evloop_run iterates the loop's timeouts). Per thread: a loop belongs to one thread. */
static __thread struct {
    h2o_evloop_t *loop;
    h2o_timeout_t zero;
} zq[4];

static h2o_timeout_t *zero_queue(h2o_evloop_t *loop)
{
    for (size_t i = 0; i < sizeof(zq) / sizeof(zq[0]); i++) {
        if (zq[i].loop == loop)
            return &zq[i].zero;
        if (zq[i].loop == NULL) {
            zq[i].loop = loop;
            h2o_timeout_init(loop, &zq[i].zero, 0);
            return &zq[i].zero;
        }
    }
    return NULL; /* more loops than slots on this thread: the timerfd serves */
}

void cdn_loop_dispose(h2o_evloop_t *loop)
{
    for (size_t i = 0; i < sizeof(zq) / sizeof(zq[0]); i++) {
        if (zq[i].loop == loop) {
            h2o_timeout_dispose(loop, &zq[i].zero);
            zq[i].loop = NULL;
        }
    }
}

static void timer_destroy(cdn_timer_t *t)
{
    if (h2o_timeout_is_linked(&t->zero))
        h2o_timeout_unlink(&t->zero);
    h2o_socket_close(t->sock); /* closes the timerfd; h2o frees the socket later */
    t->magic = 0;
    free(t);
}

static void timer_fire(cdn_timer_t *t)
{
    t->active = 0;
    if (h2o_timeout_is_linked(&t->zero))
        h2o_timeout_unlink(&t->zero);
    t->in_cb = 1;
    t->cb(t, t->data);
    t->in_cb = 0;
    if (t->dead)
        timer_destroy(t);
}

static void timerfd_arm(cdn_timer_t *t, uint64_t at_ns)
{
    struct itimerspec its = {{0, 0}, {(time_t)(at_ns / 1000000000u), (long)(at_ns % 1000000000u)}};
    timerfd_settime(h2o_socket_get_fd(t->sock), TFD_TIMER_ABSTIME, &its, NULL);
    t->armed_ns = at_ns;
}

static void on_timer_fd(h2o_socket_t *sock, const char *err)
{
    cdn_timer_t *t = sock->data;
    assert(t->magic == TIMER_MAGIC);
    uint64_t n;
    /* EAGAIN: re-armed after the fd became readable; nothing expired */
    if (read(h2o_socket_get_fd(sock), &n, sizeof(n)) != (ssize_t)sizeof(n))
        return;
    t->armed_ns = 0;
    if (!t->active || t->dead || h2o_timeout_is_linked(&t->zero))
        return;
    if (now_ns() < t->deadline_ns) { /* the deadline moved later since arming */
        timerfd_arm(t, t->deadline_ns);
        return;
    }
    timer_fire(t);
}

static void on_timer_zero(h2o_timeout_entry_t *entry)
{
    cdn_timer_t *t = H2O_STRUCT_FROM_MEMBER(cdn_timer_t, zero, entry);
    assert(t->magic == TIMER_MAGIC);
    if (t->active && !t->dead)
        timer_fire(t);
}

cdn_timer_t *cdn_timer_new(h2o_evloop_t *loop, cdn_timer_cb cb, void *data)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd == -1)
        return NULL;
    cdn_timer_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        close(fd);
        return NULL;
    }
    t->magic = TIMER_MAGIC;
    t->loop = loop;
    t->cb = cb;
    t->data = data;
    t->zero.cb = on_timer_zero;
    t->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    t->sock->data = t;
    h2o_socket_read_start(t->sock, on_timer_fd);
    return t;
}

void cdn_timer_start(cdn_timer_t *t, uint64_t ms)
{
    assert(t->magic == TIMER_MAGIC);
    h2o_timeout_t *zero;
    t->active = 1;
    t->deadline_ns = now_ns() + ms * 1000000u;
    /* 0 ms from inside the timer's own callback goes through the timerfd: relinking into the zero
     * queue while h2o runs it would fire again in the same pass, forever if asked again and again */
    if (ms == 0 && !t->in_cb && (zero = zero_queue(t->loop)) != NULL) {
        if (!h2o_timeout_is_linked(&t->zero))
            h2o_timeout_link(t->loop, zero, &t->zero);
        return;
    }
    if (h2o_timeout_is_linked(&t->zero))
        h2o_timeout_unlink(&t->zero);
    if (t->armed_ns == 0 || t->deadline_ns < t->armed_ns)
        timerfd_arm(t, t->deadline_ns);
}

void cdn_timer_stop(cdn_timer_t *t)
{
    assert(t->magic == TIMER_MAGIC);
    t->active = 0; /* the timerfd may stay armed: its wake-up finds nothing due */
    if (h2o_timeout_is_linked(&t->zero))
        h2o_timeout_unlink(&t->zero);
}

int cdn_timer_active(const cdn_timer_t *t)
{
    return t->active;
}

void cdn_timer_free(cdn_timer_t *t)
{
    if (t == NULL)
        return;
    assert(t->magic == TIMER_MAGIC);
    cdn_timer_stop(t);
    if (t->in_cb)
        t->dead = 1;
    else
        timer_destroy(t);
}

/* ---- watches ---- */

static void watch_destroy(cdn_watch_t *w)
{
    h2o_socket_close(w->sock); /* epoll DEL + close of the dup; the owner's fd stays open */
    w->magic = 0;
    free(w);
}

static void watch_arm_write(cdn_watch_t *w);

static void watch_dispatch(cdn_watch_t *w, int ev)
{
    w->in_cb = 1;
    w->cb(w, w->fd, ev, w->data);
    w->in_cb = 0;
    if (w->dead)
        watch_destroy(w);
}

static void on_watch_read(h2o_socket_t *sock, const char *err)
{
    cdn_watch_t *w = sock->data;
    assert(w->magic == WATCH_MAGIC);
    if (w->dead)
        return;
    if (!(w->want & CDN_WATCH_READ)) {
        h2o_socket_read_stop(sock); /* the lazy stop of cdn_watch_set: readable while unwanted */
        return;
    }
    watch_dispatch(w, CDN_WATCH_READ);
}

static void on_watch_write(h2o_socket_t *sock, const char *err)
{
    cdn_watch_t *w = sock->data;
    assert(w->magic == WATCH_MAGIC);
    if (w->dead || !(w->want & CDN_WATCH_WRITE))
        return; /* a stale one-shot notification: interest was dropped since it was armed */
    w->in_cb = 1;
    w->cb(w, w->fd, CDN_WATCH_WRITE, w->data);
    w->in_cb = 0;
    if (w->dead) {
        watch_destroy(w);
        return;
    }
    watch_arm_write(w); /* one-shot: re-arm while the interest lasts */
}

static void watch_arm_write(cdn_watch_t *w)
{
    if ((w->want & CDN_WATCH_WRITE) && !h2o_socket_is_writing(w->sock))
        h2o_socket_notify_write(w->sock, on_watch_write);
}

cdn_watch_t *cdn_watch_new(h2o_evloop_t *loop, int fd, cdn_watch_cb cb, void *data)
{
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dfd == -1)
        return NULL;
    cdn_watch_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        close(dfd);
        return NULL;
    }
    w->magic = WATCH_MAGIC;
    w->fd = fd;
    w->cb = cb;
    w->data = data;
    w->sock = h2o_evloop_socket_create(loop, dfd, H2O_SOCKET_FLAG_DONT_READ);
    w->sock->data = w;
    return w;
}

void cdn_watch_set(cdn_watch_t *w, int events)
{
    assert(w->magic == WATCH_MAGIC);
    if (w->dead)
        return;
    w->want = events;
    /* Read interest is dropped lazily: libcurl drops it at the end of every transfer and asks
     * again at the start of the next on the same connection, and each change was an epoll_ctl
     * (3.3 a request through shop-lb). The socket stays registered; if it becomes readable while
     * unwanted (the peer closed an idle connection), on_watch_read stops it then, once. */
    if ((events & CDN_WATCH_READ) && !h2o_socket_is_reading(w->sock))
        h2o_socket_read_start(w->sock, on_watch_read);
    /* Dropping write interest leaves a pending notify armed (h2o has no cancel); it is ignored. */
    watch_arm_write(w);
}

void cdn_watch_free(cdn_watch_t *w)
{
    if (w == NULL)
        return;
    assert(w->magic == WATCH_MAGIC);
    w->want = 0;
    if (w->in_cb)
        w->dead = 1;
    else
        watch_destroy(w);
}

/* ---- signals ---- */

static void signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

int cdn_signals_block(void)
{
    sigset_t set;
    signal_set(&set);
    signal(SIGPIPE, SIG_IGN); /* a peer closing mid-write is an EPIPE, not a death */
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : -1;
}

static void signals_destroy(cdn_signals_t *s)
{
    h2o_socket_close(s->sock);
    s->magic = 0;
    free(s);
}

static void on_signalfd(h2o_socket_t *sock, const char *err)
{
    cdn_signals_t *s = sock->data;
    assert(s->magic == SIGS_MAGIC);
    struct signalfd_siginfo si;
    s->in_cb = 1;
    while (!s->dead && read(h2o_socket_get_fd(sock), &si, sizeof(si)) == (ssize_t)sizeof(si))
        s->cb((int)si.ssi_signo, s->data);
    s->in_cb = 0;
    if (s->dead)
        signals_destroy(s);
}

cdn_signals_t *cdn_signals_watch(h2o_evloop_t *loop, cdn_signal_cb cb, void *data)
{
    sigset_t set;
    signal_set(&set);
    /* Blocking again is harmless and covers a caller that forgot cdn_signals_block(). */
    if (cdn_signals_block() != 0)
        return NULL;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1)
        return NULL;
    cdn_signals_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        return NULL;
    }
    s->magic = SIGS_MAGIC;
    s->cb = cb;
    s->data = data;
    s->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    s->sock->data = s;
    h2o_socket_read_start(s->sock, on_signalfd);
    return s;
}

void cdn_signals_free(cdn_signals_t *s)
{
    if (s == NULL)
        return;
    assert(s->magic == SIGS_MAGIC);
    if (s->in_cb)
        s->dead = 1;
    else
        signals_destroy(s);
}

/* ---- holding a client socket's read interest across a proxied request ---- */

struct read_hold {
    h2o_socket_t *sock;
    h2o_buffer_t *saved; /* the input the request's strings point into */
};

/* Bytes (or EOF, or an error) from the client while its request is served: reading stops as it
 * would have in h2o, with what came kept aside; h2o reads the error again when it resumes. */
static void on_hold_read(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_read_stop(sock);
}

static void on_hold_dispose(void *p)
{
    struct read_hold *h = p;
    h2o_socket_t *sock = h->sock;
    h2o_buffer_t *extra = sock->input;
    /* not reading, as h2o left it; it starts again in this same loop turn (no epoll_ctl) */
    if (sock->_cb.read == on_hold_read)
        h2o_socket_read_stop(sock);
    sock->input = h->saved;
    if (extra->size != 0) {
        h2o_iovec_t room = h2o_buffer_reserve(&sock->input, extra->size);
        if (room.base != NULL) {
            memcpy(room.base, extra->bytes, extra->size);
            sock->input->size += extra->size;
        } else {
            shutdown(h2o_socket_get_fd(sock), SHUT_RDWR); /* out of memory: the connection ends */
        }
    }
    h2o_buffer_dispose(&extra);
}

void cdn_req_hold_read(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->ssl != NULL || h2o_socket_is_reading(sock))
        return;
    struct read_hold *h = h2o_mem_alloc_shared(&req->pool, sizeof(*h), on_hold_dispose);
    h->sock = sock;
    h->saved = sock->input;
    h2o_buffer_init(&sock->input, &h2o_socket_buffer_prototype);
    h2o_socket_read_start(sock, on_hold_read);
}
