/* cdn-dns seen by a c-ares client (lib/resolver.c, the one cdn-load and the edge use): the real
 * cdn-dns binary is started on a free port; queries bound to source addresses in each region's
 * subnet (ares_set_local_ip4 through cdn_resolver_opts.local_ip4) get that region's edge. Skipped
 * when the binary is not built. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <h2o.h>

#include "cdn/loop.h"
#include "cdn/resolver.h"

static pid_t server;
static int port;
static char dir[] = "/tmp/t_dns_resolve.XXXXXX";

struct res { int done; char addr[64]; char err[128]; };

static void on_resolved(const char *errstr, const struct cdn_addrs *a, void *data)
{
    struct res *r = data;
    r->done = 1;
    if (errstr) { snprintf(r->err, sizeof(r->err), "%s", errstr); return; }
    inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->addr[0])->sin_addr, r->addr, sizeof(r->addr));
}

/* Resolves name from source address src; "" on failure. */
static void resolve(h2o_evloop_t *loop, const char *src, const char *name, struct res *r)
{
    char servers[64], err[256];
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    struct cdn_resolver_opts o = {.servers = servers, .local_ip4 = src, .timeout_ms = 300, .tries = 1,
                                  .family = AF_INET};
    cdn_resolver_t *rs = cdn_resolver_new(loop, &o, err, sizeof(err));
    assert_non_null(rs);
    memset(r, 0, sizeof(*r));
    cdn_resolver_lookup(rs, name, on_resolved, r);
    uint64_t t0 = cdn_now_ms();
    while (!r->done && cdn_now_ms() - t0 < 3000) h2o_evloop_run(loop, 50);
    cdn_resolver_free(rs);
}

static int setup(void **state)
{
    const char *b = getenv("top_builddir");
    char bin[512], conf[512];
    snprintf(bin, sizeof(bin), "%s/dns/cdn-dns", b ? b : ".");
    if (access(bin, X_OK) != 0) return 0;  /* tests skip */
    assert_non_null(mkdtemp(dir));
    /* A port free for UDP and TCP, below the ephemeral range (ports the kernel hands out may be
     * taken by other tests' outgoing connections before cdn-dns binds). */
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    for (int tries = 0; tries < 1000 && port == 0; tries++) {
        int p = 10000 + rand() % 20000;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 .sin_port = htons((uint16_t)p)};
        int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0 && bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            port = p;
        close(u);
        close(t);
    }
    assert_int_not_equal(port, 0);
    snprintf(conf, sizeof(conf), "%s/dns.yaml", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "listen: 127.0.0.1:%d\nlog_level: warn\n"
            "regions:\n  eu: {subnets: [127.0.1.0/24], distance: {us: 100}}\n  us: {subnets: [127.0.2.0/24]}\n"
            "default_region: eu\n"
            "edges:\n  - {name: eu1, region: eu, addresses: [127.0.20.1]}\n"
            "  - {name: us1, region: us, addresses: [127.0.20.2]}\n"
            "zones:\n  - name: shop.test\n    soa: \"ns1 hm 1 3600 600 86400 30\"\n"
            "    records: [\"www A 127.0.10.1\"]\n    cdn: [{name: img, ttl: 30}]\n",
            port);
    fclose(f);
    server = fork();
    if (server == 0) {
        setpgid(0, 0);
        execl(bin, bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    return 0;
}

static int teardown(void **state)
{
    char path[600];
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    if (port) {
        snprintf(path, sizeof(path), "%s/dns.yaml", dir);
        unlink(path);
        rmdir(dir);
    }
    return 0;
}

static void region_by_source_address(void **s)
{
    if (server <= 0) skip();
    h2o_evloop_t *loop = h2o_evloop_create();
    struct res r;
    /* the server may still be starting: retry for a few seconds */
    for (int i = 0; i < 30; i++) {
        resolve(loop, "127.0.1.5", "www.shop.test", &r);
        if (r.addr[0]) break;
        usleep(100 * 1000);
    }
    assert_string_equal(r.addr, "127.0.10.1");
    resolve(loop, "127.0.1.5", "img.shop.test", &r);
    assert_string_equal(r.addr, "127.0.20.1");
    resolve(loop, "127.0.2.5", "img.shop.test", &r);
    assert_string_equal(r.addr, "127.0.20.2");
    resolve(loop, "127.0.9.5", "img.shop.test", &r);  /* unknown subnet: default region */
    assert_string_equal(r.addr, "127.0.20.1");
    resolve(loop, "127.0.2.5", "nope.shop.test", &r);
    assert_string_equal(r.addr, "");
    assert_true(r.err[0] != 0);
    h2o_evloop_run(loop, 0);
    cdn_loop_dispose(loop);
    h2o_evloop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(region_by_source_address)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
