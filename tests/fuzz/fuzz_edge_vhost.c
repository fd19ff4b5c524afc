/* libFuzzer harness: Host / :authority normalisation and vhost matching (edge/vhost.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edge/vhost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[EDGE_HOST_MAX];
    int l = edge_host_normalize((const char *)data, size, out, sizeof(out));
    if (l >= 0 && ((size_t)l >= sizeof(out) || strlen(out) != (size_t)l))
        abort(); /* a result is always NUL-terminated and fits */
    static struct edge_vhost a = {.pattern = "a"}, b = {.pattern = "b"};
    static const struct edge_vhost *v[] = {&a, &b};
    static const char *names[] = {"img.shop.test", "*.shop.test"};
    struct edge_vhosts vs = {v, names, 2, NULL};
    const struct edge_vhost *m = edge_vhost_match(&vs, (const char *)data, size);
    if (m != NULL && m != &a && m != &b)
        abort();
    return 0;
}
