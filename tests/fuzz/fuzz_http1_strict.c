/* libFuzzer harness: lib/h1strict.c, the strict HTTP/1.1 head check and chunked decoder.
 * First byte even: a request head. h2o's own picohttpparser (libh2o-evloop) delimits it as in the
 * server; whatever the strict check accepts must satisfy, by picohttpparser's independent reading
 * of the same bytes, the rules the check exists for: no obs-fold, exactly one Host on HTTP/1.1 (at
 * most one on 1.0), Content-Length values all equal, never with Transfer-Encoding.
 * First byte odd: a chunked body, decoded in one call and again split in two calls at a point the
 * second byte chooses: both give the same verdict and the same bytes, never more than came in. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cdn/h1strict.h"

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

static int name_is(const struct phr_header *h, const char *lit)
{
    size_t n = strlen(lit);
    if (h->name == NULL || h->name_len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((h->name[i] | 0x20) != lit[i])
            return 0;
    return 1;
}

/* a field value without the optional white space around it (RFC 9110 5.5) */
static void trim(const char **v, size_t *n)
{
    while (*n && (**v == ' ' || **v == '\t'))
        (*v)++, (*n)--;
    while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
        (*n)--;
}

static void head(const uint8_t *data, size_t size)
{
    const char *m, *p;
    size_t ml, pl, nh = 100;
    int minor;
    struct phr_header hs[100];
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    int r = phr_parse_request(buf, size, &m, &ml, &p, &pl, &minor, hs, &nh, 0);
    if (r > 0 && cdn_h1_check_head(buf, (size_t)r) == NULL) {
        unsigned hosts = 0, cls = 0, tes = 0;
        unsigned long long cl = 0;
        for (size_t i = 0; i < nh; i++) {
            if (hs[i].name == NULL)
                abort(); /* obs-fold accepted */
            hosts += name_is(&hs[i], "host");
            tes += name_is(&hs[i], "transfer-encoding");
            if (name_is(&hs[i], "content-length")) {
                const char *v = hs[i].value;
                size_t vl = hs[i].value_len;
                trim(&v, &vl);
                unsigned long long x = 0;
                for (size_t k = 0; k < vl; k++) {
                    if (v[k] < '0' || v[k] > '9' || k >= 19)
                        abort(); /* a length that is not 1*DIGIT accepted */
                    x = x * 10 + (unsigned)(v[k] - '0');
                }
                if (vl == 0 || (cls++ && x != cl))
                    abort(); /* two lengths accepted */
                cl = x;
            }
        }
        if (hosts > 1 || (minor >= 1 && hosts != 1) || (tes && cls) || tes > 1)
            abort();
    }
    free(buf);
}

static ssize_t decode(const uint8_t *data, size_t size, size_t split, char *out, size_t *outlen)
{
    struct cdn_h1_chunked d = {0, 1, 0, 0};
    char *a = malloc(size ? size : 1);
    memcpy(a, data, size);
    size_t n1 = split, n2 = size - split;
    ssize_t r = cdn_h1_decode_chunked(&d, a, &n1);
    if (n1 > split)
        abort();
    memcpy(out, a, n1);
    *outlen = n1;
    if (r == -2 && n2 != 0) {
        memcpy(a, data + split, n2);
        r = cdn_h1_decode_chunked(&d, a, &n2);
        if (n2 > size - split)
            abort();
        memcpy(out + *outlen, a, n2);
        *outlen += n2;
    } else if (r >= 0) {
        r += (ssize_t)n2; /* the bytes of the second part are left over too */
    }
    free(a);
    return r;
}

static void chunked(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    size_t split = data[0] % (size);
    data++, size--;
    if (split > size)
        split = size;
    char *o1 = malloc(size + 1), *o2 = malloc(size + 1);
    size_t l1, l2;
    ssize_t r1 = decode(data, size, size, o1, &l1);
    ssize_t r2 = decode(data, size, split, o2, &l2);
    /* an error may be found in the first part before the end is seen in one go: both say -1 then */
    if (r1 != r2 || (r1 != -1 && (l1 != l2 || memcmp(o1, o2, l1) != 0)))
        abort();
    if (l1 > size)
        abort();
    free(o1);
    free(o2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        chunked(data + 1, size - 1);
    else
        head(data + 1, size - 1);
    return 0;
}
