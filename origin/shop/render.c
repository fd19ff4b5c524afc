/* origin/shop/render.c - image rendering off the loop. A cache miss goes to a render thread; the
 * finished job comes back to the worker through its eventfd.
 *
 * Rules:
 * - The request may be gone by then: its pool's dispose clears job->req (both run on the
 *   worker's thread, the render thread never touches req).
 * - Concurrent misses of one image render it once: the first job is the leader in the pending
 *   table, later ones wait on it and each gets its own reference to the result.
 * - app.render_mu guards the queue and the pending table; a worker's render_mu its done list. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "origin/shop/app.h"

struct render_job {
    struct render_job *next;
    struct app_worker *w;
    h2o_req_t *req;            /* NULL once the client went away */
    struct render_job **anchor; /* in the request's pool */
    const struct shop_product *p;
    uint32_t id;
    enum shop_img_size size;
    enum shop_img_fmt fmt;
    int negotiated;            /* the URL named no format: the answer varies on Accept */
    struct shop_image *img;
    struct render_job *waiters; /* leader only: the same image asked for while it renders */
    struct render_job *pending_next;
};

/* Renders in progress (leaders), so that concurrent misses for one image render it once. Under
 * app.render_mu. */
#define PENDING_BUCKETS 256
static struct render_job *pending[PENDING_BUCKETS];

static unsigned pending_bucket(uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt)
{
    return ((id * SHOP_IMG_NSIZES + (unsigned)size) * SHOP_IMG_NFMTS + (unsigned)fmt) % PENDING_BUCKETS;
}

static void on_job_anchor_dispose(void *p)
{
    struct render_job *job = *(struct render_job **)p;
    if (job != NULL)
        job->req = NULL;
}

/* A finished job (the leader and its waiters) back to the workers that asked. */
static void deliver(struct render_job *job, struct render_job *waiters, struct shop_image *img)
{
    job->img = img;
    job->waiters = NULL;
    for (struct render_job *j = job, *next; j != NULL; j = next) {
        next = j == job ? waiters : j->next;
        if (j != job) {
            if (img != NULL)
                __atomic_add_fetch(&img->refcnt, 1, __ATOMIC_ACQ_REL); /* each response holds one */
            j->img = img;
        }
        struct app_worker *w = j->w;
        pthread_mutex_lock(&w->render_mu);
        j->next = w->render_done;
        w->render_done = j;
        pthread_mutex_unlock(&w->render_mu);
        uint64_t one = 1;
        if (write(w->render_efd, &one, sizeof(one)) < 0) {
            /* the counter cannot overflow in practice; nothing else to do */
        }
    }
}

static void *render_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&app.render_mu);
        while (app.render_head == NULL)
            pthread_cond_wait(&app.render_cv, &app.render_mu);
        struct render_job *job = app.render_head;
        app.render_head = job->next;
        if (app.render_head == NULL)
            app.render_tail = &app.render_head;
        pthread_mutex_unlock(&app.render_mu);
        int hit;
        struct shop_image *img = shop_imgcache_get(app.images, job->id, job->size, job->fmt, &hit);
        if (img != NULL && !hit)
            cdn_counter_inc(app.s_renders); /* waiters of this render are not counted again */
        /* leave the pending table, taking the waiters along */
        pthread_mutex_lock(&app.render_mu);
        struct render_job **pp = &pending[pending_bucket(job->id, job->size, job->fmt)];
        while (*pp != NULL && *pp != job)
            pp = &(*pp)->pending_next;
        if (*pp == job)
            *pp = job->pending_next;
        struct render_job *waiters = job->waiters;
        pthread_mutex_unlock(&app.render_mu);
        deliver(job, waiters, img);
    }
    return NULL;
}

static void on_render_done(cdn_watch_t *watch, int fd, int events, void *data)
{
    struct app_worker *w = data;
    uint64_t n;
    (void)watch, (void)events;
    if (read(fd, &n, sizeof(n)) < 0) {
        /* EAGAIN: another wakeup already drained it */
    }
    pthread_mutex_lock(&w->render_mu);
    struct render_job *list = w->render_done;
    w->render_done = NULL;
    pthread_mutex_unlock(&w->render_mu);
    while (list != NULL) {
        struct render_job *job = list;
        list = job->next;
        if (job->req != NULL) {
            *job->anchor = NULL;
            /* the rule is matched again: a reload may have retired the one of the request's start */
            h2o_iovec_t path = job->req->path_normalized;
            app_send_image(job->req, shop_rules_match(app_rules_now(), path.base, path.len), job->p, job->img,
                           job->negotiated);
        } else
            shop_image_release(job->img);
        free(job);
    }
}

void app_render_submit(struct app_worker *w, h2o_req_t *req, const struct shop_product *p, enum shop_img_size size,
                       enum shop_img_fmt fmt, int negotiated)
{
    struct render_job *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        app_send_error(req, 503, "Service Unavailable", "out of memory\n");
        return;
    }
    job->w = w;
    job->req = req;
    job->p = p;
    job->id = p->id;
    job->size = size;
    job->fmt = fmt;
    job->negotiated = negotiated;
    job->anchor = h2o_mem_alloc_shared(&req->pool, sizeof(*job->anchor), on_job_anchor_dispose);
    *job->anchor = job;
    pthread_mutex_lock(&app.render_mu);
    unsigned b = pending_bucket(job->id, job->size, job->fmt);
    struct render_job *leader = pending[b];
    while (leader != NULL && (leader->id != job->id || leader->size != job->size || leader->fmt != job->fmt))
        leader = leader->pending_next;
    if (leader != NULL) {
        job->next = leader->waiters; /* rendered once, for everyone waiting */
        leader->waiters = job;
    } else {
        job->pending_next = pending[b];
        pending[b] = job;
        *app.render_tail = job;
        app.render_tail = &job->next;
        pthread_cond_signal(&app.render_cv);
    }
    pthread_mutex_unlock(&app.render_mu);
}

int app_render_worker_init(struct app_worker *w, char *err, size_t errlen)
{
    pthread_mutex_init(&w->render_mu, NULL);
    w->render_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->render_efd < 0 || (w->render_watch = cdn_watch_new(w->loop, w->render_efd, on_render_done, w)) == NULL) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        return -1;
    }
    cdn_watch_set(w->render_watch, CDN_WATCH_READ);
    return 0;
}

int app_render_start(unsigned threads)
{
    pthread_mutex_init(&app.render_mu, NULL);
    pthread_cond_init(&app.render_cv, NULL);
    app.render_tail = &app.render_head;
    for (unsigned i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, render_main, NULL) != 0)
            return -1;
        pthread_detach(t);
    }
    return 0;
}
