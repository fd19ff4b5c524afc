/* libFuzzer harness: Host / :authority validation and normalisation and vhost matching (edge/vhost/vhost.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edge/vhost/vhost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[EDGE_HOST_MAX];
    int l = edge_host_normalize((const char *)data, size, out, sizeof(out));
    if (l >= 0 && ((size_t)l >= sizeof(out) || strlen(out) != (size_t)l))
        abort(); /* a result is always NUL-terminated and fits */
    /* the authority check: a valid result is a fixed point, and never holds a byte that could
     * end a host in a key or a header line */
    char n1[EDGE_HOST_MAX], n2[EDGE_HOST_MAX];
    int l1 = edge_authority_normalize((const char *)data, size, 80, n1, sizeof(n1));
    if (l1 >= 0) {
        if ((size_t)l1 >= sizeof(n1) || strlen(n1) != (size_t)l1 || strpbrk(n1, "/?#@ \t\r\n\\") != NULL)
            abort();
        int l2 = edge_authority_normalize(n1, (size_t)l1, 80, n2, sizeof(n2));
        if (l2 != l1 || memcmp(n1, n2, (size_t)l1) != 0)
            abort();
    }
    static struct edge_vhost a = {.pattern = "a"}, b = {.pattern = "b"};
    static const struct edge_vhost *v[] = {&a, &b};
    static const char *names[] = {"img.shop.test", "*.shop.test"};
    struct edge_vhosts vs = {v, names, 2, NULL};
    const struct edge_vhost *m = edge_vhost_match(&vs, (const char *)data, size);
    if (m != NULL && m != &a && m != &b)
        abort();
    return 0;
}
