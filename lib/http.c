/* lib/http.c - the HTTP toolkit shared by cdn-edge, cdn-dns, shop-lb and cdn-lab (see
 * cdn/http.h): SipHash-2-4 with the process's secret key or a fixed one, the reason-phrase
 * table, HTTP-date parse and format, entity-tag comparison, percent-decoding and the header
 * class table.
 *
 * Owns: the process's hash key, written once under pthread_once and read-only after that.
 * Everything else here is a pure function of its arguments. shop-app's own parsers
 * (origin/http.c) are kept apart on purpose: see the comment at their top. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cdn/http.h"

/* --- SipHash-2-4, from the description in section 2 of the paper --- */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                                 \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                     \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                     \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                                 \
    } while (0)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t cdn_siphash24(const uint8_t key[16], const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    size_t whole = n & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) { /* c = 2 compression rounds per 8-byte word */
        uint64_t m = le64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    /* the last word: the remaining bytes, little-endian, and the length mod 256 in the top byte */
    uint64_t b = (uint64_t)n << 56;
    for (size_t i = n - whole; i > 0; i--)
        b |= (uint64_t)p[whole + i - 1] << (8 * (i - 1));
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff; /* d = 4 finalization rounds */
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint8_t secret[16];
static pthread_once_t secret_once = PTHREAD_ONCE_INIT;

static void draw_secret(void)
{
    size_t got = 0;
    while (got < sizeof(secret)) {
        /* never blocks: before the kernel's pool is ready (early boot) /dev/urandom answers */
        ssize_t r = getrandom(secret + got, sizeof(secret) - got, GRND_NONBLOCK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == sizeof(secret))
        return;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        while (got < sizeof(secret)) {
            ssize_t r = read(fd, secret + got, sizeof(secret) - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        close(fd);
    }
    if (got == sizeof(secret))
        return;
    /* no kernel randomness (a seccomp sandbox without getrandom and /dev): the clock and the pid
     * are a poor key, but still one that a remote client does not know */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t a = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec, b = (uint64_t)getpid();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    b = b << 32 ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)&got;
    memcpy(secret, &a, 8);
    memcpy(secret + 8, &b, 8);
}

void cdn_hash_init(void) { pthread_once(&secret_once, draw_secret); }

uint64_t cdn_hash(const void *p, size_t n)
{
    pthread_once(&secret_once, draw_secret);
    return cdn_siphash24(secret, p, n);
}

uint64_t cdn_hash_u64(uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return cdn_hash(b, 8);
}

uint64_t cdn_hash_fixed(const void *p, size_t n)
{
    return cdn_siphash24((const uint8_t *)CDN_HASH_FIXED_KEY, p, n);
}

/* --- reason phrases --- */
const char *cdn_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    }
    return NULL;
}

/* --- HTTP-date --- */
/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int month_of(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(s, months[i], 3) == 0)
            return i + 1;
    return 0;
}

static int num(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int hms(const char *s, int *h, int *mi, int *se)
{
    if (num(s, 2, h) || s[2] != ':' || num(s + 3, 2, mi) || s[5] != ':' || num(s + 6, 2, se))
        return -1;
    return *h > 23 || *mi > 59 || *se > 60 ? -1 : 0;
}

void cdn_http_trim_ows(const char **v, size_t *len)
{
    const char *s = *v;
    size_t l = *len;
    while (l > 0 && (*s == ' ' || *s == '\t'))
        s++, l--;
    while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
        l--;
    *v = s;
    *len = l;
}

int cdn_http_date_parse(const char *s, size_t len, int64_t *t)
{
    char b[64];
    cdn_http_trim_ows(&s, &len);
    if (len >= sizeof(b) || len < 24)
        return -1;
    memcpy(b, s, len);
    b[len] = '\0'; /* a NUL inside the value ends it early: the length checks below then fail */
    int d, mo, y, h, mi, se;
    const char *c = strchr(b, ',');
    if (len == 29 && c == b + 3) { /* Sun, 06 Nov 1994 08:49:37 GMT */
        if (b[4] != ' ' || num(b + 5, 2, &d) || b[7] != ' ' || !(mo = month_of(b + 8)) ||
            b[11] != ' ' || num(b + 12, 4, &y) || b[16] != ' ' || hms(b + 17, &h, &mi, &se) ||
            strcmp(b + 25, " GMT") != 0)
            return -1;
    } else if (c != NULL && c > b + 5) { /* Sunday, 06-Nov-94 08:49:37 GMT */
        const char *p = c + 1;
        if (strlen(p) != 23 || p[0] != ' ' || num(p + 1, 2, &d) || p[3] != '-' ||
            !(mo = month_of(p + 4)) || p[7] != '-' || num(p + 8, 2, &y) || p[10] != ' ' ||
            hms(p + 11, &h, &mi, &se) || strcmp(p + 19, " GMT") != 0)
            return -1;
        y += y < 70 ? 2000 : 1900; /* RFC 9110 5.6.7: 50-years rule, simplified */
    } else if (len == 24 && c == NULL) { /* Sun Nov  6 08:49:37 1994 */
        if (b[3] != ' ' || !(mo = month_of(b + 4)) || b[7] != ' ')
            return -1;
        if (b[8] == ' ') {
            if (num(b + 9, 1, &d))
                return -1;
        } else if (num(b + 8, 2, &d)) {
            return -1;
        }
        if (b[10] != ' ' || hms(b + 11, &h, &mi, &se) || b[19] != ' ' || num(b + 20, 4, &y))
            return -1;
    } else {
        return -1;
    }
    if (d < 1 || d > 31)
        return -1;
    *t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

char *cdn_http_date_fmt(int64_t t, char *buf)
{
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400, secs = t - days * 86400;
    /* civil_from_days */
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0 || y > 9999)
        y = y < 0 ? 0 : 9999;
    snprintf(buf, CDN_HTTP_DATE_LEN + 1, "%s, %02u %s %04d %02d:%02d:%02d GMT", wd[((days % 7) + 7) % 7],
             d % 100, months[(m - 1) % 12], (int)y, (int)(secs / 3600) % 24, (int)(secs / 60 % 60),
             (int)(secs % 60));
    return buf;
}

/* --- field values --- */
int cdn_http_list_next(const char **p, const char *end, const char **tok, size_t *len)
{
    while (*p < end) {
        while (*p < end && (**p == ' ' || **p == '\t' || **p == ','))
            (*p)++;
        const char *b = *p;
        while (*p < end && **p != ',')
            (*p)++;
        const char *e = *p;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b) {
            *tok = b;
            *len = (size_t)(e - b);
            return 1;
        }
    }
    return 0;
}

int cdn_http_list_has(const char *s, size_t len, const char *tok, size_t tlen)
{
    const char *p = s, *m;
    size_t ml;
    while (cdn_http_list_next(&p, s + len, &m, &ml))
        if (ml == tlen && strncasecmp(m, tok, tlen) == 0)
            return 1;
    return 0;
}

/* --- entity-tags --- */
int cdn_etag_match_weak(const char *list, size_t ll, const char *e, size_t el)
{
    cdn_http_trim_ows(&e, &el);
    if (el > 2 && e[0] == 'W' && e[1] == '/') {
        e += 2;
        el -= 2;
    }
    const char *p = list, *end = list + ll;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        if (p < end && *p == '*')
            return 1;
        if (end - p > 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *b = p;
        if (p < end && *p == '"') {
            p++;
            while (p < end && *p != '"')
                p++;
            if (p < end)
                p++;
        } else {
            while (p < end && *p != ',')
                p++;
        }
        if ((size_t)(p - b) == el && memcmp(b, e, el) == 0)
            return 1;
        while (p < end && *p != ',')
            p++;
    }
    return 0;
}

int cdn_etag_eq_strong(const char *a, size_t al, const char *b, size_t bl)
{
    cdn_http_trim_ows(&a, &al);
    cdn_http_trim_ows(&b, &bl);
    return al >= 2 && a[0] == '"' && a[al - 1] == '"' && al == bl && memcmp(a, b, al) == 0;
}

/* --- percent-encoding --- */
int cdn_hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int cdn_url_unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

long cdn_pct_decode(const char *s, size_t n, char *out, size_t cap, unsigned flags)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], h, l;
        if (c == '%' && n - i >= 3 && (h = cdn_hexval(s[i + 1])) >= 0 && (l = cdn_hexval(s[i + 2])) >= 0) {
            c = h * 16 + l;
            i += 2;
        } else if (c == '+' && (flags & CDN_PCT_PLUS)) {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

size_t cdn_pct_normalize(const char *s, size_t n, char *out)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '%' && i + 2 < n && (h = cdn_hexval(s[i + 1])) >= 0 && (l = cdn_hexval(s[i + 2])) >= 0) {
            int c = h * 16 + l;
            if (cdn_url_unreserved(c)) {
                out[o++] = (char)c;
            } else {
                out[o++] = '%';
                out[o++] = hx[h];
                out[o++] = hx[l];
            }
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    return o;
}

/* --- classes of header fields --- */
unsigned cdn_http_hdr_class(const char *name, size_t len)
{
    /* lengths kept beside the names: this runs for every field of every proxied message, and a
     * strlen of each of the 26 names per field was 3% of shop-lb's CPU */
#define E(n, c) {n, sizeof(n) - 1, c}
    static const struct {
        const char *name;
        size_t len;
        unsigned cls;
    } t[] = {
        E("connection", CDN_HDR_HOP),
        E("keep-alive", CDN_HDR_HOP),
        E("te", CDN_HDR_HOP),
        E("trailer", CDN_HDR_HOP),
        E("transfer-encoding", CDN_HDR_HOP),
        E("upgrade", CDN_HDR_HOP),
        E("proxy-connection", CDN_HDR_HOP),
        E("proxy-authenticate", CDN_HDR_HOP),
        E("proxy-authorization", CDN_HDR_HOP),
        E("content-length", CDN_HDR_NO_FORWARD),
        E("expect", CDN_HDR_NO_FORWARD),
        E("set-cookie", CDN_HDR_NO_STORE),
        E("surrogate-key", CDN_HDR_NO_STORE),
        E("x-forwarded-host", CDN_HDR_REFLECTED),
        E("x-forwarded-proto", CDN_HDR_REFLECTED),
        E("x-forwarded-scheme", CDN_HDR_REFLECTED),
        E("x-forwarded-port", CDN_HDR_REFLECTED),
        E("x-forwarded-server", CDN_HDR_REFLECTED),
        E("x-host", CDN_HDR_REFLECTED),
        E("x-original-url", CDN_HDR_REFLECTED),
        E("x-rewrite-url", CDN_HDR_REFLECTED),
        E("x-original-host", CDN_HDR_REFLECTED),
        E("x-http-method-override", CDN_HDR_REFLECTED),
        E("x-http-method", CDN_HDR_REFLECTED),
        E("x-method-override", CDN_HDR_REFLECTED),
        E("forwarded", CDN_HDR_REFLECTED),
    };
#undef E
    if (len == 0)
        return 0;
    char c = (char)(name[0] | 0x20); /* the first letter, lowercased, rules out most names at once */
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i].len == len && t[i].name[0] == c && strncasecmp(t[i].name, name, len) == 0)
            return t[i].cls;
    return 0;
}

size_t cdn_fmt_u64(char *out, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do
        d[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = d[n - 1 - i];
    return n;
}

void cdn_hex64(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}
