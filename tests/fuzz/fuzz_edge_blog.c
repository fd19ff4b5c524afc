/* libFuzzer harness: the disk tier's body log read back from a damaged disk (edge/store/blog.c).
 * The input is a segment file's bytes. Opening the folder, scanning the segment and reading every
 * record the scan reports must stay inside the file and never fail for a record the scan
 * accepted; a meta found inside goes through the object decoder as the tier would. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edge/store/blog.h"
#include "edge/store/obj.h"

struct seen {
    struct edge_blog *b;
    size_t size, n;
};

static void each(const struct edge_blog_loc *loc, uint64_t id, void *data)
{
    struct seen *s = data;
    const uint8_t *meta, *body;
    size_t ml, bl;
    const char *why;
    if (loc->seg != 1 || loc->off + loc->len > s->size || loc->len < EDGE_BLOG_HDR)
        abort(); /* the scan reported a record outside the file */
    void *buf = malloc(loc->len);
    int fd = edge_blog_pin(s->b, loc->seg);
    if (fd < 0 || edge_blog_read(fd, loc, id, buf, &meta, &ml, &body, &bl) < 0 ||
        meta + ml + bl != (const uint8_t *)buf + loc->len)
        abort(); /* a record the scan accepted must read back whole */
    edge_blog_unpin(s->b, loc->seg);
    struct edge_obj *o = edge_obj_decode(meta, ml, &why);
    if (o != NULL) {
        edge_obj_adopt_body(o, buf, body, bl); /* takes buf whatever the result */
        edge_obj_release(o);
    } else {
        free(buf);
    }
    s->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    static char dir[64];
    char path[PATH_MAX], err[256];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/fuzz_edge_blog.XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    snprintf(path, sizeof(path), "%s/00000001.seg", dir);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (size > 0 && fwrite(in, 1, size, f) != size) || fclose(f) != 0)
        abort();
    struct edge_blog *b = edge_blog_open(dir, 1 << 20, err, sizeof(err));
    if (b == NULL)
        abort();
    struct seen s = {b, size, 0};
    edge_blog_scan(b, 1, each, &s);
    struct edge_blog_loc past = {size, EDGE_BLOG_HDR, 1};
    if (edge_blog_valid(b, &past))
        abort(); /* a location past the end is never valid */
    edge_blog_drop(b, 1);
    edge_blog_close(b);
    unlink(path);
    return 0;
}
