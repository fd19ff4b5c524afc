/* origin/shop/images.c - product images drawn from the product id alone (PNG and WebP, seven widths),
 * and the cache that keeps them.
 *
 * Determinism: every pixel comes from a splitmix64 stream seeded with (id, size); the PNG is
 * written with fixed libpng settings and no time chunk, so every app server makes the same bytes
 * and therefore the same ETag (a hash of the bytes). Sizes are realistic because the picture has
 * a gradient, shapes and a fine texture (a flat picture would compress to almost nothing).
 *
 * The cache: a hash table + LRU list under one mutex, bounded by bytes. Entries are refcounted:
 * a response holds a reference until h2o has sent the last byte, so eviction never frees bytes
 * in flight (the last release frees). Rendering happens outside the lock; two threads that miss
 * at once may both render, and the second insert keeps the first copy. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>
#include <webp/encode.h>
#include <avif/avif.h>
#include "origin/shop/shop.h"

const char *const shop_img_size_names[SHOP_IMG_NSIZES] = {"thumb", "160", "320", "medium", "640", "large", "1280"};
const unsigned shop_img_size_px[SHOP_IMG_NSIZES] = {150, 160, 320, 600, 640, 1200, 1280};
const char *const shop_img_fmt_names[SHOP_IMG_NFMTS] = {"png", "webp", "avif"};
const char *const shop_img_fmt_mime[SHOP_IMG_NFMTS] = {"image/png", "image/webp", "image/avif"};

int shop_img_size_parse(const char *s, size_t len)
{
    for (int i = 0; i < SHOP_IMG_NSIZES; i++)
        if (strlen(shop_img_size_names[i]) == len && memcmp(s, shop_img_size_names[i], len) == 0)
            return i;
    return -1;
}

struct rgb {
    int r, g, b;
};

static struct rgb hsv(double h, double s, double v)
{
    double c = v * s, x = c * (1 - __builtin_fabs(__builtin_fmod(h / 60.0, 2) - 1)), m = v - c;
    double r = 0, g = 0, b = 0;
    if (h < 60) r = c, g = x;
    else if (h < 120) r = x, g = c;
    else if (h < 180) g = c, b = x;
    else if (h < 240) g = x, b = c;
    else if (h < 300) r = x, b = c;
    else r = c, b = x;
    return (struct rgb){(int)((r + m) * 255), (int)((g + m) * 255), (int)((b + m) * 255)};
}

struct shape {
    int kind; /* 0 circle, 1 rectangle, 2 ring */
    double cx, cy, a, b; /* in units of the image side (0..1) */
    struct rgb col;
};

struct sink {
    uint8_t *buf;
    size_t len, cap;
    int failed;
};

static void on_png_write(png_structp png, png_bytep data, png_size_t len)
{
    struct sink *s = png_get_io_ptr(png);
    if (s->failed)
        return;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->len + len)
            cap *= 2;
        uint8_t *nb = realloc(s->buf, cap);
        if (nb == NULL) {
            s->failed = 1;
            return;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
}

static void on_png_flush(png_structp png) { (void)png; }

static uint8_t clamp8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* WebP: lossy, fixed settings (one thread, method 2: fast enough to render on a miss). */
static int encode_webp(const uint8_t *rows, unsigned W, unsigned H, uint8_t **out, size_t *outlen)
{
    WebPConfig cfg;
    WebPPicture pic;
    WebPMemoryWriter wr;
    if (!WebPConfigPreset(&cfg, WEBP_PRESET_PHOTO, 80) || !WebPPictureInit(&pic))
        return -1;
    cfg.method = 2;
    cfg.thread_level = 0;
    pic.width = (int)W;
    pic.height = (int)H;
    if (!WebPPictureImportRGB(&pic, rows, (int)W * 3))
        return -1;
    WebPMemoryWriterInit(&wr);
    pic.writer = WebPMemoryWrite;
    pic.custom_ptr = &wr;
    int ok = WebPEncode(&cfg, &pic);
    WebPPictureFree(&pic);
    if (!ok || wr.size == 0) {
        WebPMemoryWriterClear(&wr);
        return -1;
    }
    uint8_t *b = malloc(wr.size); /* ours, freed with free() like a PNG's */
    if (b != NULL)
        memcpy(b, wr.mem, wr.size);
    *out = b;
    *outlen = wr.size;
    WebPMemoryWriterClear(&wr);
    return b != NULL ? 0 : -1;
}

/* AVIF: libavif over libaom at its fastest speed (a 640 px picture in about 20 ms here), fixed
 * quantizers, one thread, so the bytes are the same everywhere. */
static int encode_avif(const uint8_t *rows, unsigned W, unsigned H, uint8_t **out, size_t *outlen)
{
    avifImage *im = avifImageCreate((uint32_t)W, (uint32_t)H, 8, AVIF_PIXEL_FORMAT_YUV420);
    avifEncoder *enc = avifEncoderCreate();
    avifRWData o = AVIF_DATA_EMPTY;
    int rc = -1;
    if (im == NULL || enc == NULL)
        goto done;
    avifRGBImage rgb;
    avifRGBImageSetDefaults(&rgb, im);
    rgb.format = AVIF_RGB_FORMAT_RGB;
    rgb.pixels = (uint8_t *)rows;
    rgb.rowBytes = W * 3;
    if (avifImageRGBToYUV(im, &rgb) != AVIF_RESULT_OK)
        goto done;
    enc->speed = AVIF_SPEED_FASTEST;
    enc->maxThreads = 1;
    enc->minQuantizer = 20;
    enc->maxQuantizer = 40;
    if (avifEncoderWrite(enc, im, &o) != AVIF_RESULT_OK || o.size == 0)
        goto done;
    if ((*out = malloc(o.size)) != NULL) { /* ours, freed with free() like the others */
        memcpy(*out, o.data, o.size);
        *outlen = o.size;
        rc = 0;
    }
done:
    avifRWDataFree(&o);
    if (enc != NULL)
        avifEncoderDestroy(enc);
    if (im != NULL)
        avifImageDestroy(im);
    return rc;
}

int shop_image_render(uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt, uint8_t **out, size_t *outlen)
{
    if ((unsigned)size >= SHOP_IMG_NSIZES || (unsigned)fmt >= SHOP_IMG_NFMTS)
        return -1;
    const unsigned W = shop_img_size_px[size], H = W;
    /* the composition depends only on the id, so the three sizes show the same picture */
    uint64_t rng = 0x1a2b3c4d5e6f7788ULL ^ ((uint64_t)id * 0x9E3779B97F4A7C15ULL);
    double hue = shop_rand_below(&rng, 360);
    struct rgb c0 = hsv(hue, 0.35 + shop_rand_below(&rng, 40) / 100.0, 0.95);
    struct rgb c1 = hsv(__builtin_fmod(hue + 40 + shop_rand_below(&rng, 80), 360), 0.6, 0.55);
    struct shape shapes[8];
    int nshapes = 3 + (int)shop_rand_below(&rng, 6);
    for (int i = 0; i < nshapes; i++) {
        shapes[i].kind = (int)shop_rand_below(&rng, 3);
        shapes[i].cx = shop_rand_below(&rng, 1000) / 1000.0;
        shapes[i].cy = shop_rand_below(&rng, 1000) / 1000.0;
        shapes[i].a = 0.05 + shop_rand_below(&rng, 250) / 1000.0;
        shapes[i].b = 0.05 + shop_rand_below(&rng, 250) / 1000.0;
        shapes[i].col = hsv(shop_rand_below(&rng, 360), 0.5 + shop_rand_below(&rng, 50) / 100.0,
                            0.4 + shop_rand_below(&rng, 60) / 100.0);
    }
    /* texture: the stream is reseeded per size so each size is deterministic on its own */
    uint64_t noise = rng ^ ((uint64_t)size << 56);
    int amp = 6;
    unsigned blk = W / 300 ? W / 300 : 1;
    uint64_t grain[64]; /* one row of blocks: up to 32 * 64 = 2048 blocks */

    uint8_t *rows = malloc((size_t)W * H * 3);
    if (rows == NULL)
        return -1;
    for (unsigned y = 0; y < H; y++) {
        double fy = (y + 0.5) / H;
        uint8_t *row = rows + (size_t)y * W * 3;
        uint64_t n = 0;
        if (y % blk == 0)
            for (unsigned i = 0; i <= (W / blk) / 32 && i < 64; i++)
                grain[i] = shop_rand_next(&noise);
        for (unsigned x = 0; x < W; x++) {
            double fx = (x + 0.5) / W, t = (fx + fy) / 2;
            struct rgb p = {(int)(c0.r + (c1.r - c0.r) * t), (int)(c0.g + (c1.g - c0.g) * t),
                            (int)(c0.b + (c1.b - c0.b) * t)};
            for (int i = 0; i < nshapes; i++) {
                const struct shape *s = &shapes[i];
                double dx = fx - s->cx, dy = fy - s->cy;
                int in;
                if (s->kind == 0)
                    in = dx * dx + dy * dy < s->a * s->a;
                else if (s->kind == 1)
                    in = __builtin_fabs(dx) < s->a && __builtin_fabs(dy) < s->b / 2;
                else {
                    double d2 = dx * dx + dy * dy;
                    in = d2 < s->a * s->a && d2 > s->a * s->a * 0.6;
                }
                if (in)
                    p = s->col;
            }
            /* fine grain in blocks that scale with the picture (like a photo's sensor noise
             * at any resolution): 2 bits per block, so a large image stays a few hundred KB */
            unsigned bx = x / blk;
            if ((bx & 31) == 0 && x % blk == 0)
                n = grain[bx >> 5];
            int g = (int)((n >> ((bx & 31) * 2)) & 3) * amp / 3 - amp / 2;
            row[x * 3] = clamp8(p.r + g);
            row[x * 3 + 1] = clamp8(p.g + g);
            row[x * 3 + 2] = clamp8(p.b + g);
        }
    }

    if (fmt == SHOP_IMG_WEBP || fmt == SHOP_IMG_AVIF) {
        int rc = fmt == SHOP_IMG_WEBP ? encode_webp(rows, W, H, out, outlen) : encode_avif(rows, W, H, out, outlen);
        free(rows);
        return rc;
    }
    struct sink sink = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(sink.buf);
        return -1;
    }
    png_set_write_fn(png, &sink, on_png_write, on_png_flush);
    png_set_IHDR(png, info, W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 4);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB | PNG_FILTER_UP);
    png_write_info(png, info);
    for (unsigned y = 0; y < H; y++)
        png_write_row(png, rows + (size_t)y * W * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (sink.failed) {
        free(sink.buf);
        return -1;
    }
    *out = sink.buf;
    *outlen = sink.len;
    return 0;
}

/* ---------------- the cache ---------------- */

#define NBUCKETS 4096

struct shop_imgcache {
    pthread_mutex_t mu;
    size_t max_bytes, bytes, count;
    struct shop_image *buckets[NBUCKETS];
    struct shop_image lru; /* sentinel: lru.lru_next is the most recent */
};

shop_imgcache_t *shop_imgcache_new(size_t max_bytes)
{
    shop_imgcache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    c->lru.lru_next = c->lru.lru_prev = &c->lru;
    return c;
}

static unsigned bucket_of(uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt)
{
    return ((id * SHOP_IMG_NSIZES + (unsigned)size) * SHOP_IMG_NFMTS + (unsigned)fmt) % NBUCKETS;
}

static void lru_unlink(struct shop_image *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push_front(shop_imgcache_t *c, struct shop_image *e)
{
    e->lru_next = c->lru.lru_next;
    e->lru_prev = &c->lru;
    c->lru.lru_next->lru_prev = e;
    c->lru.lru_next = e;
}

static void image_free(struct shop_image *img)
{
    free(img->data);
    free(img);
}

void shop_image_release(struct shop_image *img)
{
    if (img != NULL && __atomic_sub_fetch(&img->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
        image_free(img);
}

/* Removes an entry from the table and list; the cache's reference is dropped. Under the lock. */
static void evict(shop_imgcache_t *c, struct shop_image *e)
{
    struct shop_image **pp = &c->buckets[bucket_of(e->id, e->size, e->fmt)];
    while (*pp != e)
        pp = &(*pp)->hash_next;
    *pp = e->hash_next;
    lru_unlink(e);
    c->bytes -= e->len;
    c->count--;
    shop_image_release(e);
}

void shop_imgcache_free(shop_imgcache_t *c)
{
    if (c == NULL)
        return;
    while (c->lru.lru_prev != &c->lru)
        evict(c, c->lru.lru_prev);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct shop_image *lookup(shop_imgcache_t *c, uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt)
{
    for (struct shop_image *e = c->buckets[bucket_of(id, size, fmt)]; e != NULL; e = e->hash_next)
        if (e->id == id && e->size == size && e->fmt == fmt)
            return e;
    return NULL;
}

struct shop_image *shop_imgcache_get(shop_imgcache_t *c, uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt,
                                     int *hit)
{
    pthread_mutex_lock(&c->mu);
    struct shop_image *e = lookup(c, id, size, fmt);
    if (e != NULL) {
        lru_unlink(e);
        lru_push_front(c, e);
        __atomic_add_fetch(&e->refcnt, 1, __ATOMIC_ACQ_REL);
        pthread_mutex_unlock(&c->mu);
        *hit = 1;
        return e;
    }
    pthread_mutex_unlock(&c->mu);
    *hit = 0;

    struct shop_image *img = calloc(1, sizeof(*img));
    if (img == NULL)
        return NULL;
    if (shop_image_render(id, size, fmt, &img->data, &img->len) != 0) {
        free(img);
        return NULL;
    }
    img->id = id;
    img->size = size;
    img->fmt = fmt;
    snprintf(img->etag, sizeof(img->etag), "\"%016llx\"", (unsigned long long)shop_hash64(img->data, img->len));
    img->refcnt = 1; /* the caller's */
    if (img->len > c->max_bytes)
        return img; /* too big to keep: served once, freed on release */

    pthread_mutex_lock(&c->mu);
    if ((e = lookup(c, id, size, fmt)) != NULL) { /* another thread rendered it meanwhile */
        __atomic_add_fetch(&e->refcnt, 1, __ATOMIC_ACQ_REL);
        pthread_mutex_unlock(&c->mu);
        shop_image_release(img);
        return e;
    }
    while (c->bytes + img->len > c->max_bytes && c->lru.lru_prev != &c->lru)
        evict(c, c->lru.lru_prev);
    img->refcnt++; /* the cache's */
    unsigned b = bucket_of(id, size, fmt);
    img->hash_next = c->buckets[b];
    c->buckets[b] = img;
    lru_push_front(c, img);
    c->bytes += img->len;
    c->count++;
    pthread_mutex_unlock(&c->mu);
    return img;
}

struct shop_image *shop_imgcache_lookup(shop_imgcache_t *c, uint32_t id, enum shop_img_size size, enum shop_img_fmt fmt)
{
    pthread_mutex_lock(&c->mu);
    struct shop_image *e = lookup(c, id, size, fmt);
    if (e != NULL) {
        lru_unlink(e);
        lru_push_front(c, e);
        __atomic_add_fetch(&e->refcnt, 1, __ATOMIC_ACQ_REL);
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}

size_t shop_imgcache_bytes(shop_imgcache_t *c)
{
    pthread_mutex_lock(&c->mu);
    size_t b = c->bytes;
    pthread_mutex_unlock(&c->mu);
    return b;
}

size_t shop_imgcache_count(shop_imgcache_t *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}
