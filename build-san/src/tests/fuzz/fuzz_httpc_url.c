/* libFuzzer harness: lib/httpc.c's quick URL split (parse_url_fast) against curl_url(), which it
 * stands in for: a URL the quick path accepts must be accepted by curl too, with the same scheme
 * and port and a host naming the same thing (equal ignoring case, or the same IPv6 address; curl
 * rewrites IPv6 literals). httpc.c is included for its static functions. */
#include "../../lib/httpc.c"

static int same_host(const char *a, const char *b)
{
    if (strcasecmp(a, b) == 0)
        return 1;
    size_t la = strlen(a), lb = strlen(b);
    if (la < 2 || lb < 2 || a[0] != '[' || b[0] != '[' || la > 64 || lb > 64)
        return 0;
    char ta[64], tb[64];
    unsigned char x[16], y[16];
    memcpy(ta, a + 1, la - 2);
    ta[la - 2] = '\0';
    memcpy(tb, b + 1, lb - 2);
    tb[lb - 2] = '\0';
    return inet_pton(AF_INET6, ta, x) == 1 && inet_pton(AF_INET6, tb, y) == 1 && memcmp(x, y, 16) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char url[2048], h1[256], h2[256];
    int s1, s2;
    long p1, p2;
    if (size >= sizeof(url) || memchr(data, '\0', size) != NULL)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0';
    pthread_once(&curl_once, curl_init_once);
    if (parse_url_fast(url, &s1, h1, sizeof(h1), &p1) != 0)
        return 0;
    if (parse_url_curl(url, &s2, h2, sizeof(h2), &p2) != 0) {
        fprintf(stderr, "quick path accepted what curl refuses: \"%s\"\n", url);
        abort();
    }
    if (s1 != s2 || p1 != p2 || !same_host(h1, h2)) {
        fprintf(stderr, "\"%s\": quick %d %s %ld, curl %d %s %ld\n", url, s1, h1, p1, s2, h2, p2);
        abort();
    }
    return 0;
}
