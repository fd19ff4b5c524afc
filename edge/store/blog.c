/* edge/store/blog.c - the disk tier's body log (see blog.h).
 *
 * The segment table is an array sorted by number (new segments only ever come at the end), under
 * `mu`. A dropped segment is unlinked at once; its entry and descriptor stay while readers pin it.
 * Records are not aligned and carry no checksum of their own: the meta inside has its CRC-32 and
 * the body's XXH3-64, checked by the tier on every read, and the header is checked against the
 * location the index holds. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edge/store/blog.h"

#define MAGIC 0x314c4245u /* "EBL1" */
#define IOV_BATCH (IOV_MAX / 3) /* records per pwritev (3 iovecs each): more is EINVAL, and a
                                  * backlog of 500 records once made the tier read-only */

struct seg {
    uint32_t num;
    int fd;
    uint64_t size, live;
    int pins, dead;
};

struct edge_blog {
    pthread_mutex_t mu;
    char *dir;
    uint64_t seg_bytes;
    struct seg *segs;
    size_t n, cap;
    uint32_t next;  /* number of the next segment */
    int active;     /* index of the segment taking appends, or -1 (sealed: open a new one) */
};

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

static void seg_path(const struct edge_blog *b, uint32_t num, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%08u.seg", b->dir, num);
}

/* Index of seg num in the table, or -1 (mu held). */
static int find(const struct edge_blog *b, uint32_t num)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b->segs[mid].num < num) lo = mid + 1;
        else hi = mid;
    }
    return lo < b->n && b->segs[lo].num == num ? (int)lo : -1;
}

static int add(struct edge_blog *b, uint32_t num, int fd, uint64_t size)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct seg *s = realloc(b->segs, cap * sizeof(*s));
        if (s == NULL)
            return -1;
        b->segs = s;
        b->cap = cap;
    }
    size_t i = b->n;
    while (i > 0 && b->segs[i - 1].num > num) /* sorted; at open the folder's order is any */
        i--;
    memmove(&b->segs[i + 1], &b->segs[i], (b->n - i) * sizeof(*b->segs));
    b->segs[i] = (struct seg){num, fd, size, 0, 0, 0};
    b->n++;
    return (int)i;
}

static void remove_at(struct edge_blog *b, int i)
{
    close(b->segs[i].fd);
    memmove(&b->segs[i], &b->segs[i + 1], (b->n - (size_t)i - 1) * sizeof(*b->segs));
    b->n--;
    if (b->active > i)
        b->active--;
    else if (b->active == i)
        b->active = -1;
}

struct edge_blog *edge_blog_open(const char *dir, uint64_t seg_bytes, char *err, size_t errlen)
{
    struct edge_blog *b = calloc(1, sizeof(*b));
    if (b == NULL || (b->dir = strdup(dir)) == NULL) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    b->seg_bytes = seg_bytes;
    b->active = -1;
    b->next = 1;
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        edge_blog_close(b);
        return NULL;
    }
    DIR *dh = opendir(dir);
    if (dh == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
        edge_blog_close(b);
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        const char *nm = e->d_name;
        if (strlen(nm) != 12 || strcmp(nm + 8, ".seg") != 0 || strspn(nm, "0123456789") != 8)
            continue;
        uint32_t num = (uint32_t)strtoul(nm, NULL, 10);
        if (num == 0)
            continue;
        char path[PATH_MAX];
        seg_path(b, num, path, sizeof(path));
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || add(b, num, fd, (uint64_t)st.st_size) < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno ? errno : ENOMEM));
            if (fd >= 0)
                close(fd);
            closedir(dh);
            edge_blog_close(b);
            return NULL;
        }
        if (num >= b->next)
            b->next = num + 1;
    }
    closedir(dh);
    return b; /* appends go to a new segment: a crash may have left the last one torn */
}

void edge_blog_close(struct edge_blog *b)
{
    if (b == NULL)
        return;
    if (b->active >= 0)
        fdatasync(b->segs[b->active].fd);
    for (size_t i = 0; i < b->n; i++)
        close(b->segs[i].fd);
    free(b->segs);
    free(b->dir);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* The segment taking appends, opening a new one when there is none or it is full (mu held). */
static int active_seg(struct edge_blog *b)
{
    if (b->active >= 0 && b->segs[b->active].size < b->seg_bytes)
        return b->active;
    char path[PATH_MAX];
    seg_path(b, b->next, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int i = add(b, b->next, fd, 0);
    if (i < 0) {
        close(fd);
        unlink(path);
        return -ENOMEM;
    }
    b->next++;
    b->active = i;
    return i;
}

int edge_blog_append(struct edge_blog *b, struct edge_blog_rec *recs, size_t n)
{
    struct iovec iov[3 * IOV_BATCH];
    uint8_t (*hdr)[EDGE_BLOG_HDR] = malloc((n ? n : 1) * EDGE_BLOG_HDR);
    if (hdr == NULL)
        return -ENOMEM;
    int rc = 0;
    for (size_t done = 0; done < n && rc == 0;) {
        pthread_mutex_lock(&b->mu);
        int a = active_seg(b);
        if (a < 0) {
            pthread_mutex_unlock(&b->mu);
            rc = a;
            break;
        }
        uint32_t num = b->segs[a].num;
        int fd = b->segs[a].fd;
        uint64_t start = b->segs[a].size;
        pthread_mutex_unlock(&b->mu);
        /* records up to the segment's end (at least one) in one write */
        uint64_t off = start;
        size_t k = done, iv = 0;
        while (k < n && k - done < IOV_BATCH && (k == done || off < b->seg_bytes)) {
            struct edge_blog_rec *r = &recs[k];
            uint8_t *h = hdr[k];
            put32(h, MAGIC);
            put32(h + 4, (uint32_t)r->meta_len);
            put64(h + 8, r->id);
            put64(h + 16, r->body_len);
            iov[iv++] = (struct iovec){h, EDGE_BLOG_HDR};
            iov[iv++] = (struct iovec){(void *)r->meta, r->meta_len};
            if (r->body_len)
                iov[iv++] = (struct iovec){(void *)r->body, r->body_len};
            r->at = (struct edge_blog_loc){off, EDGE_BLOG_HDR + r->meta_len + r->body_len, num};
            off += r->at.len;
            k++;
        }
        /* pwritev may write less than asked (a signal, a full disk): go on from where it stopped */
        uint64_t want = off - start, wrote = 0;
        struct iovec *v = iov;
        int vn = (int)iv;
        while (wrote < want) {
            ssize_t w = pwritev(fd, v, vn, (off_t)(start + wrote));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = w < 0 ? -errno : -ENOSPC;
                break;
            }
            wrote += (uint64_t)w;
            size_t left = (size_t)w;
            while (vn > 0 && left >= v->iov_len) {
                left -= v->iov_len;
                v++;
                vn--;
            }
            if (vn > 0) {
                v->iov_base = (uint8_t *)v->iov_base + left;
                v->iov_len -= left;
            }
        }
        pthread_mutex_lock(&b->mu);
        int i = find(b, num);
        if (i >= 0) {
            if (rc == 0) {
                b->segs[i].size = off;
            } else {
                b->segs[i].size = start + wrote; /* what is there (the torn tail is never indexed) */
                if (b->active == i)
                    b->active = -1; /* sealed: the next append starts a new file */
            }
        }
        pthread_mutex_unlock(&b->mu);
        done = k;
    }
    free(hdr);
    return rc;
}

int edge_blog_pin(struct edge_blog *b, uint32_t seg)
{
    pthread_mutex_lock(&b->mu);
    int i = find(b, seg), fd = -1;
    if (i >= 0 && !b->segs[i].dead) {
        b->segs[i].pins++;
        fd = b->segs[i].fd; /* stays open until unpinned */
    }
    pthread_mutex_unlock(&b->mu);
    return fd;
}

void edge_blog_unpin(struct edge_blog *b, uint32_t seg)
{
    pthread_mutex_lock(&b->mu);
    int i = find(b, seg);
    if (i >= 0 && --b->segs[i].pins == 0 && b->segs[i].dead)
        remove_at(b, i);
    pthread_mutex_unlock(&b->mu);
}

int edge_blog_fd(struct edge_blog *b, uint32_t seg)
{
    pthread_mutex_lock(&b->mu);
    int i = find(b, seg);
    int fd = i >= 0 && !b->segs[i].dead ? b->segs[i].fd : -1;
    pthread_mutex_unlock(&b->mu);
    return fd;
}

int edge_blog_read(int fd, const struct edge_blog_loc *loc, uint64_t id, void *buf, const uint8_t **meta,
                   size_t *meta_len, const uint8_t **body, size_t *body_len)
{
    if (fd < 0 || loc->len < EDGE_BLOG_HDR)
        return -1;
    uint64_t got = 0;
    while (got < loc->len) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, loc->len - got, (off_t)(loc->off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (uint64_t)r;
    }
    const uint8_t *h = buf;
    uint64_t ml = get32(h + 4), bl = get64(h + 16);
    if (get32(h) != MAGIC || get64(h + 8) != id || bl > loc->len || EDGE_BLOG_HDR + ml + bl != loc->len)
        return -1;
    *meta = h + EDGE_BLOG_HDR;
    *meta_len = (size_t)ml;
    *body = h + EDGE_BLOG_HDR + ml;
    *body_len = (size_t)bl;
    return 0;
}

#define LOC_MAGIC 0x314c4345u /* "ECL1" */

void edge_blog_loc_put(uint8_t out[EDGE_BLOG_LOC_LEN], const struct edge_blog_loc *loc)
{
    put32(out, LOC_MAGIC);
    put32(out + 4, loc->seg);
    put64(out + 8, loc->off);
    put64(out + 16, loc->len);
}

int edge_blog_loc_get(const uint8_t *v, size_t len, struct edge_blog_loc *loc)
{
    if (len < EDGE_BLOG_LOC_LEN || get32(v) != LOC_MAGIC)
        return 0;
    *loc = (struct edge_blog_loc){get64(v + 8), get64(v + 16), get32(v + 4)};
    return 1;
}

int edge_blog_valid(struct edge_blog *b, const struct edge_blog_loc *loc)
{
    pthread_mutex_lock(&b->mu);
    int i = find(b, loc->seg);
    int ok = i >= 0 && !b->segs[i].dead && loc->len >= EDGE_BLOG_HDR && loc->off + loc->len >= loc->off &&
             loc->off + loc->len <= b->segs[i].size;
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void edge_blog_live(struct edge_blog *b, uint32_t seg, int64_t delta)
{
    pthread_mutex_lock(&b->mu);
    int i = find(b, seg);
    if (i >= 0)
        b->segs[i].live = (uint64_t)((int64_t)b->segs[i].live + delta);
    pthread_mutex_unlock(&b->mu);
}

void edge_blog_live_reset(struct edge_blog *b)
{
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n; i++)
        b->segs[i].live = 0;
    pthread_mutex_unlock(&b->mu);
}

uint64_t edge_blog_bytes(struct edge_blog *b)
{
    uint64_t t = 0;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n; i++)
        if (!b->segs[i].dead)
            t += b->segs[i].size;
    pthread_mutex_unlock(&b->mu);
    return t;
}

uint32_t edge_blog_victim(struct edge_blog *b, uint64_t limit)
{
    uint32_t best = 0;
    double share = 2;
    uint64_t total = 0;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n; i++)
        if (!b->segs[i].dead)
            total += b->segs[i].size;
    for (size_t i = 0; total > limit && i < b->n; i++) {
        const struct seg *s = &b->segs[i];
        if (s->dead || (int)i == b->active)
            continue;
        double sh = s->size ? (double)s->live / (double)s->size : 0;
        if (sh < share) {
            share = sh;
            best = s->num;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return best;
}

int edge_blog_scan(struct edge_blog *b, uint32_t seg,
                   void (*fn)(const struct edge_blog_loc *loc, uint64_t id, void *data), void *data)
{
    pthread_mutex_lock(&b->mu);
    int i = find(b, seg);
    int fd = i >= 0 && !b->segs[i].dead ? b->segs[i].fd : -1;
    uint64_t size = i >= 0 ? b->segs[i].size : 0;
    pthread_mutex_unlock(&b->mu); /* the scanning thread is the one that drops: fd stays */
    if (fd < 0)
        return -1;
    for (uint64_t off = 0; off < size;) {
        uint8_t h[EDGE_BLOG_HDR];
        if (off + EDGE_BLOG_HDR > size || pread(fd, h, EDGE_BLOG_HDR, (off_t)off) != EDGE_BLOG_HDR ||
            get32(h) != MAGIC)
            return -1;
        uint64_t ml = get32(h + 4), bl = get64(h + 16);
        if (bl > size || ml > size) /* checked alone first: their sum could wrap (found by fuzz_edge_blog) */
            return -1;
        uint64_t len = EDGE_BLOG_HDR + ml + bl;
        if (off + len > size)
            return -1;
        struct edge_blog_loc loc = {off, len, seg};
        fn(&loc, get64(h + 8), data);
        off += len;
    }
    return 0;
}

void edge_blog_drop(struct edge_blog *b, uint32_t seg)
{
    char path[PATH_MAX];
    seg_path(b, seg, path, sizeof(path));
    pthread_mutex_lock(&b->mu);
    int i = find(b, seg);
    if (i >= 0 && !b->segs[i].dead) {
        unlink(path);
        b->segs[i].dead = 1;
        if (b->active == i)
            b->active = -1;
        if (b->segs[i].pins == 0)
            remove_at(b, i);
    }
    pthread_mutex_unlock(&b->mu);
}

size_t edge_blog_drop_empty(struct edge_blog *b)
{
    size_t n = 0;
    for (;;) {
        uint32_t num = 0;
        pthread_mutex_lock(&b->mu);
        for (size_t i = 0; i < b->n && num == 0; i++)
            if (!b->segs[i].dead && (int)i != b->active && b->segs[i].live == 0)
                num = b->segs[i].num;
        pthread_mutex_unlock(&b->mu);
        if (num == 0)
            return n;
        edge_blog_drop(b, num);
        n++;
    }
}
