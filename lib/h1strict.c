/* lib/h1strict.c - the strict HTTP/1.1 request head check and chunked decoder (cdn/h1strict.h).
 * Pure: no allocation, no I/O, no h2o. */
#include "config.h"

#include <string.h>

#include "cdn/h1strict.h"

/* RFC 9110 5.6.2 tchar */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB (RFC 9110 5.5; obs-text allowed) */
static int is_field_char(unsigned char c)
{
    return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

static int lc_eq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    if (alen != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

/* The end of the line starting at p: the index of its LF (a CR must come right before it) or -1
 * when a bare CR or no LF is found before end. *vend is where the content ends (before CR). */
static const char *line_end(const char *p, const char *end, const char **vend)
{
    for (const char *q = p; q < end; q++) {
        if (*q == '\n') {
            *vend = q;
            return q;
        }
        if (*q == '\r') {
            if (q + 1 < end && q[1] == '\n') {
                *vend = q;
                return q + 1;
            }
            return NULL;
        }
    }
    return NULL;
}

/* A Content-Length value: 1*DIGIT, at most 19 digits (RFC 9110 8.6: a list of one repeated value
 * is allowed, but h2o reads only a plain number, so a list is refused). */
static int parse_cl(const char *v, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

const char *cdn_h1_check_head(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len, *vend, *eol;

    /* RFC 9112 2.2: empty lines before the request line are ignored */
    while (p < end && (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')))
        p += *p == '\n' ? 1 : 2;
    if ((eol = line_end(p, end, &vend)) == NULL)
        return "bare CR or unterminated request line";
    /* request-line = method SP request-target SP HTTP-version */
    const char *q = p;
    while (q < vend && is_tchar((unsigned char)*q))
        q++;
    if (q == p || q == vend || *q != ' ')
        return "malformed request line: method";
    const char *t = ++q;
    while (q < vend && (unsigned char)*q > 0x20 && *q != 0x7f)
        q++;
    if (q == t || q == vend || *q != ' ')
        return "malformed request line: request target";
    q++;
    if (vend - q != 8 || memcmp(q, "HTTP/1.", 7) != 0 || q[7] < '0' || q[7] > '9')
        return "malformed request line: HTTP version";
    int minor = q[7] - '0';

    unsigned hosts = 0, cls = 0, tes = 0;
    uint64_t cl = 0;
    int te_chunked = 0;
    for (p = eol + 1; p < end; p = eol + 1) {
        if ((eol = line_end(p, end, &vend)) == NULL)
            return "bare CR or unterminated field line";
        if (vend == p)
            break; /* the empty line: end of the head */
        if (*p == ' ' || *p == '\t')
            return "obsolete line folding (obs-fold) in a field";
        const char *n = p;
        while (n < vend && is_tchar((unsigned char)*n))
            n++;
        if (n == p)
            return "malformed field name";
        if (n == vend || *n != ':')
            return (n < vend && (*n == ' ' || *n == '\t')) ? "white space between a field name and its colon"
                                                         : "malformed field name";
        size_t nlen = (size_t)(n - p);
        const char *v = n + 1;
        for (const char *c = v; c < vend; c++)
            if (!is_field_char((unsigned char)*c))
                return "control character in a field value";
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = vend;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (lc_eq(p, nlen, "host")) {
            hosts++;
        } else if (lc_eq(p, nlen, "content-length")) {
            uint64_t x;
            if (parse_cl(v, (size_t)(ve - v), &x) < 0)
                return "invalid Content-Length";
            if (cls++ != 0 && x != cl)
                return "conflicting Content-Length values";
            cl = x;
        } else if (lc_eq(p, nlen, "transfer-encoding")) {
            tes++;
            te_chunked = lc_eq(v, (size_t)(ve - v), "chunked");
        }
    }
    if (p >= end)
        return "unterminated head";
    if (hosts > 1)
        return "more than one Host field";
    if (hosts == 0 && minor >= 1)
        return "HTTP/1.1 request without Host";
    if (tes != 0) {
        if (minor == 0)
            return "Transfer-Encoding in an HTTP/1.0 request";
        if (cls != 0)
            return "both Transfer-Encoding and Content-Length";
        if (tes != 1 || !te_chunked)
            return "Transfer-Encoding other than a single chunked";
    }
    return NULL;
}

/* Decoder states. 2 is "in chunk data" as in picohttpparser (phr_decode_chunked_is_in_data). */
enum {
    CK_SIZE = 0,       /* hex digits of chunk-size */
    CK_SIZE_BWS = 1,   /* white space after the size: only ';' or CR may follow */
    CK_DATA = 2,
    CK_DATA_CR = 3,    /* CR after chunk data */
    CK_DATA_LF = 4,
    CK_SIZE_LF = 5,    /* LF ending the size line */
    CK_EXT = 6,        /* after ';' */
    CK_EXT_Q = 7,      /* in a quoted-string */
    CK_EXT_QE = 8,     /* after a backslash in it */
    CK_TR_HEAD = 9,    /* start of a trailer line (or the final CRLF) */
    CK_TR_LINE = 10,
    CK_TR_LF = 11,
    CK_END_LF = 12,
};

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t cdn_h1_decode_chunked(struct cdn_h1_chunked *d, char *buf, size_t *bufsz_)
{
    size_t dst = 0, src = 0, bufsz = *bufsz_;
    ssize_t ret = -2;

    while (src < bufsz || d->state == CK_DATA) {
        if (d->state == CK_DATA) {
            size_t avail = bufsz - src, take = avail < d->bytes_left_in_chunk ? avail : d->bytes_left_in_chunk;
            if (take == 0 && d->bytes_left_in_chunk != 0)
                break;
            if (dst != src)
                memmove(buf + dst, buf + src, take);
            src += take;
            dst += take;
            d->bytes_left_in_chunk -= take;
            if (d->bytes_left_in_chunk == 0)
                d->state = CK_DATA_CR;
            continue;
        }
        unsigned char c = (unsigned char)buf[src++];
        switch (d->state) {
        case CK_SIZE: {
            int v = hexval(c);
            if (v >= 0) {
                if (d->hex_count == (char)(sizeof(size_t) * 2))
                    goto Error;
                d->bytes_left_in_chunk = d->bytes_left_in_chunk * 16 + (size_t)v;
                d->hex_count++;
                break;
            }
            if (d->hex_count == 0)
                goto Error;
            if (c == '\r')
                d->state = CK_SIZE_LF;
            else if (c == ';')
                d->state = CK_EXT;
            else if (c == ' ' || c == '\t')
                d->state = CK_SIZE_BWS;
            else
                goto Error;
            break;
        }
        case CK_SIZE_BWS:
            if (c == ';')
                d->state = CK_EXT;
            else if (c == '\r')
                d->state = CK_SIZE_LF;
            else if (c != ' ' && c != '\t')
                goto Error;
            break;
        case CK_EXT:
            if (c == '"')
                d->state = CK_EXT_Q;
            else if (c == '\r')
                d->state = CK_SIZE_LF;
            else if (!is_tchar(c) && c != '=' && c != ';' && c != ' ' && c != '\t')
                goto Error;
            break;
        case CK_EXT_Q:
            if (c == '"')
                d->state = CK_EXT;
            else if (c == '\\')
                d->state = CK_EXT_QE;
            else if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
                goto Error;
            break;
        case CK_EXT_QE:
            if (!(c == '\t' || (c >= 0x20 && c != 0x7f)))
                goto Error;
            d->state = CK_EXT_Q;
            break;
        case CK_SIZE_LF:
            if (c != '\n')
                goto Error;
            d->hex_count = 0;
            if (d->bytes_left_in_chunk != 0) {
                d->state = CK_DATA;
            } else if (d->consume_trailer) {
                d->state = CK_TR_HEAD;
            } else {
                goto Complete;
            }
            break;
        case CK_DATA_CR:
            if (c != '\r')
                goto Error;
            d->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (c != '\n')
                goto Error;
            d->state = CK_SIZE;
            break;
        case CK_TR_HEAD:
            if (c == '\r')
                d->state = CK_END_LF;
            else if (is_tchar(c))
                d->state = CK_TR_LINE;
            else
                goto Error; /* obs-fold or garbage */
            break;
        case CK_TR_LINE:
            if (c == '\r')
                d->state = CK_TR_LF;
            else if (!is_field_char(c) && c != ':')
                goto Error;
            break;
        case CK_TR_LF:
            if (c != '\n')
                goto Error;
            d->state = CK_TR_HEAD;
            break;
        case CK_END_LF:
            if (c != '\n')
                goto Error;
            goto Complete;
        default:
            goto Error;
        }
    }
    goto Exit;
Complete:
    ret = (ssize_t)(bufsz - src);
    d->state = CK_SIZE; /* a finished decoder is not reused, but keep it well defined */
    goto Exit;
Error:
    ret = -1;
Exit:
    if (dst != src)
        memmove(buf + dst, buf + src, bufsz - src);
    *bufsz_ = dst;
    return ret;
}

int cdn_h1_chunked_in_data(const struct cdn_h1_chunked *d)
{
    return d->state == CK_DATA;
}
