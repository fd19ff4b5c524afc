/* Unit tests for lib/resolver.c against a real DNS answerer: a small UDP responder written here,
 * running on the same h2o loop as the resolver (127.0.0.1, a kernel-chosen port). It counts the
 * queries per name and remembers where the last one came from.
 *
 *   a.test      A 127.0.1.7 ttl 30          ttl0.test  A 127.0.1.8 ttl 0
 *   ttl1.test   A 127.0.1.9 ttl 1           multi.test A 127.0.1.10, 127.0.1.11 ttl 300
 *   silent.*    no reply                    anything else: NXDOMAIN (AAAA: NOERROR, no data) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cdn/loop.h"
#include "cdn/resolver.h"

static h2o_evloop_t *loop;

/* ---- the answerer ---- */

static struct {
    int fd;
    cdn_watch_t *w;
    char servers[64];
    int queries;
    char last_name[256];
    char last_src[64];
    struct {
        char name[64];
        int n;
    } counts[32];
} dns;

static int count_of(const char *name)
{
    for (int i = 0; i < 32; i++)
        if (strcmp(dns.counts[i].name, name) == 0)
            return dns.counts[i].n;
    return 0;
}

static void count_up(const char *name)
{
    for (int i = 0; i < 32; i++) {
        if (dns.counts[i].name[0] == '\0')
            snprintf(dns.counts[i].name, sizeof(dns.counts[i].name), "%s", name);
        if (strcmp(dns.counts[i].name, name) == 0) {
            dns.counts[i].n++;
            return;
        }
    }
}

static size_t put_a(uint8_t *p, const char *ip, uint32_t ttl)
{
    uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, ttl >> 24, ttl >> 16, ttl >> 8, ttl, 0, 4};
    memcpy(p, rr, sizeof(rr));
    inet_pton(AF_INET, ip, p + sizeof(rr));
    return sizeof(rr) + 4;
}

static void on_dns_query(cdn_watch_t *w, int fd, int events, void *data)
{
    uint8_t q[512], resp[1024];
    struct sockaddr_in from;
    socklen_t fromlen = sizeof(from);
    ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
    if (n < 12 + 5)
        return;
    /* qname as dotted text */
    char name[256] = "";
    size_t off = 12, nl = 0;
    while (off < (size_t)n && q[off] != 0) {
        size_t l = q[off++];
        if (off + l > (size_t)n || nl + l + 2 > sizeof(name))
            return;
        if (nl > 0)
            name[nl++] = '.';
        memcpy(name + nl, q + off, l);
        nl += l;
        name[nl] = '\0';
        off += l;
    }
    off++; /* root label */
    if (off + 4 > (size_t)n)
        return;
    int qtype = q[off] << 8 | q[off + 1];
    size_t qend = off + 4;
    dns.queries++;
    count_up(name);
    snprintf(dns.last_name, sizeof(dns.last_name), "%s", name);
    inet_ntop(AF_INET, &from.sin_addr, dns.last_src, sizeof(dns.last_src));
    if (strncmp(name, "silent", 6) == 0)
        return;

    memcpy(resp, q, qend);
    resp[2] = 0x81 | (q[2] & 0x01); /* QR, RD copied */
    resp[3] = 0x80;                 /* RA, NOERROR */
    resp[4] = 0, resp[5] = 1;       /* qdcount */
    resp[6] = resp[7] = resp[8] = resp[9] = resp[10] = resp[11] = 0;
    size_t len = qend, an = 0;
    int known = 1;
    if (strcmp(name, "a.test") == 0 && qtype == 1)
        len += put_a(resp + len, "127.0.1.7", 30), an = 1;
    else if (strcmp(name, "ttl0.test") == 0 && qtype == 1)
        len += put_a(resp + len, "127.0.1.8", 0), an = 1;
    else if (strcmp(name, "ttl1.test") == 0 && qtype == 1)
        len += put_a(resp + len, "127.0.1.9", 1), an = 1;
    else if (strcmp(name, "multi.test") == 0 && qtype == 1) {
        len += put_a(resp + len, "127.0.1.10", 300);
        len += put_a(resp + len, "127.0.1.11", 300);
        an = 2;
    } else if (strcmp(name, "a.test") != 0 && strcmp(name, "multi.test") != 0)
        known = 0;
    if (!known)
        resp[3] = 0x83; /* NXDOMAIN */
    resp[7] = (uint8_t)an;
    sendto(fd, resp, len, 0, (struct sockaddr *)&from, fromlen);
}

static int dns_setup(void **state)
{
    memset(&dns, 0, sizeof(dns));
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t len = sizeof(sin);
    dns.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (dns.fd < 0 || bind(dns.fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(dns.fd, (struct sockaddr *)&sin, &len) != 0)
        return -1;
    snprintf(dns.servers, sizeof(dns.servers), "127.0.0.1:%d", ntohs(sin.sin_port));
    dns.w = cdn_watch_new(loop, dns.fd, on_dns_query, NULL);
    cdn_watch_set(dns.w, CDN_WATCH_READ);
    return 0;
}

static int dns_teardown(void **state)
{
    cdn_watch_free(dns.w);
    close(dns.fd);
    return 0;
}

/* ---- helpers ---- */

struct result {
    int called;
    char err[128];
    struct cdn_addrs addrs;
    cdn_resolver_t *free_me; /* cdn_resolver_free() from inside the callback */
};

static void on_resolved(const char *err, const struct cdn_addrs *a, void *data)
{
    struct result *res = data;
    res->called++;
    snprintf(res->err, sizeof(res->err), "%s", err != NULL ? err : "");
    if (a != NULL)
        res->addrs = *a;
    if (res->free_me != NULL) {
        cdn_resolver_t *r = res->free_me;
        res->free_me = NULL;
        cdn_resolver_free(r);
    }
}

static int run_until(const int *flag)
{
    uint64_t deadline = cdn_now_ms() + 5000;
    while (!*flag && cdn_now_ms() < deadline)
        h2o_evloop_run(loop, 50);
    return *flag;
}

static const char *ip_of(const struct cdn_addrs *a, int i, char *buf)
{
    const struct sockaddr_storage *ss = &a->addr[i];
    if (ss->ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, 64);
    return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, 64);
}

static cdn_resolver_t *new_resolver(uint32_t cache_max_ttl, const char *local_ip4)
{
    char err[256] = "";
    struct cdn_resolver_opts o = {.servers = dns.servers, .timeout_ms = 100, .tries = 2,
                                  .family = AF_INET, .cache_max_ttl = cache_max_ttl, .local_ip4 = local_ip4};
    cdn_resolver_t *r = cdn_resolver_new(loop, &o, err, sizeof(err));
    if (r == NULL)
        print_error("cdn_resolver_new: %s\n", err);
    return r;
}

/* ---- tests ---- */

static void a_record_with_ttl(void **state)
{
    cdn_resolver_t *r = new_resolver(0, NULL);
    struct result res = {0};
    char ip[64];
    assert_non_null(cdn_resolver_lookup(r, "a.test", on_resolved, &res));
    assert_int_equal(res.called, 0); /* asynchronous */
    assert_true(run_until(&res.called));
    assert_string_equal(res.err, "");
    assert_int_equal(res.addrs.n, 1);
    assert_string_equal(ip_of(&res.addrs, 0, ip), "127.0.1.7");
    assert_int_equal(res.addrs.ttl[0], 30);
    assert_int_equal(((struct sockaddr_in *)&res.addrs.addr[0])->sin_port, 0);

    struct result m = {0};
    cdn_resolver_lookup(r, "MULTI.test.", on_resolved, &m); /* case and trailing dot folded */
    assert_true(run_until(&m.called));
    assert_int_equal(m.addrs.n, 2);
    assert_string_equal(ip_of(&m.addrs, 1, ip), "127.0.1.11");
    assert_string_equal(dns.last_name, "multi.test");
    cdn_resolver_free(r);
}

static void nxdomain(void **state)
{
    cdn_resolver_t *r = new_resolver(60, NULL);
    struct result res = {0};
    cdn_resolver_lookup(r, "nope.test", on_resolved, &res);
    assert_true(run_until(&res.called));
    assert_string_equal(res.err, "name not found");
    /* negative answers are not cached */
    int before = count_of("nope.test");
    res.called = 0;
    cdn_resolver_lookup(r, "nope.test", on_resolved, &res);
    assert_true(run_until(&res.called));
    assert_int_equal(count_of("nope.test"), before + 1);
    cdn_resolver_free(r);
}

static void no_reply_times_out(void **state)
{
    cdn_resolver_t *r = new_resolver(0, NULL);
    struct result res = {0};
    cdn_resolver_lookup(r, "silent1.test", on_resolved, &res);
    assert_true(run_until(&res.called));
    assert_string_equal(res.err, "timed out");
    assert_int_equal(count_of("silent1.test"), 2); /* tries = 2 */
    cdn_resolver_free(r);
}

static void cancel_never_calls_back(void **state)
{
    cdn_resolver_t *r = new_resolver(0, NULL);
    struct result c1 = {0}, c2 = {0}, later = {0};
    /* one that would be answered, one that would time out */
    cdn_resolve_t *q1 = cdn_resolver_lookup(r, "a.test", on_resolved, &c1);
    cdn_resolve_t *q2 = cdn_resolver_lookup(r, "silent2.test", on_resolved, &c2);
    assert_non_null(q1);
    assert_non_null(q2);
    cdn_resolve_cancel(q1);
    cdn_resolve_cancel(q2);
    /* issued after both, so it ends after both (same timeout) */
    cdn_resolver_lookup(r, "silent3.test", on_resolved, &later);
    assert_true(run_until(&later.called));
    assert_string_equal(later.err, "timed out");
    assert_true(count_of("silent2.test") >= 1);
    assert_int_equal(c1.called, 0);
    assert_int_equal(c2.called, 0);
    cdn_resolver_free(r);
}

static void free_calls_back_outstanding(void **state)
{
    cdn_resolver_t *r = new_resolver(0, NULL);
    struct result a = {0}, b = {0};
    assert_non_null(cdn_resolver_lookup(r, "silent4.test", on_resolved, &a));
    assert_non_null(cdn_resolver_lookup(r, "silent5.test", on_resolved, &b));
    cdn_resolver_free(r);
    assert_int_equal(a.called, 1);
    assert_int_equal(b.called, 1);
    assert_string_equal(a.err, "resolver closed");
    assert_string_equal(b.err, "resolver closed");

    /* freed from inside a callback while another lookup is outstanding */
    r = new_resolver(0, NULL);
    struct result first = {.free_me = r}, other = {0};
    cdn_resolver_lookup(r, "a.test", on_resolved, &first);
    cdn_resolver_lookup(r, "silent6.test", on_resolved, &other);
    assert_true(run_until(&first.called));
    assert_string_equal(first.err, "");
    assert_int_equal(other.called, 1);
    assert_string_equal(other.err, "resolver closed");
    h2o_evloop_run(loop, 1);
}

static void ip_literals(void **state)
{
    cdn_resolver_t *r = new_resolver(0, NULL);
    struct result res = {0};
    char ip[64];
    int before = dns.queries;
    assert_null(cdn_resolver_lookup(r, "127.0.0.5", on_resolved, &res));
    assert_int_equal(res.called, 1); /* before returning */
    assert_string_equal(ip_of(&res.addrs, 0, ip), "127.0.0.5");
    res.called = 0;
    assert_null(cdn_resolver_lookup(r, "[::1]", on_resolved, &res));
    assert_int_equal(res.called, 1);
    assert_int_equal(res.addrs.addr[0].ss_family, AF_INET6);
    assert_string_equal(ip_of(&res.addrs, 0, ip), "::1");
    res.called = 0;
    assert_null(cdn_resolver_lookup(r, "", on_resolved, &res));
    assert_string_equal(res.err, "bad name");
    assert_int_equal(dns.queries, before);
    cdn_resolver_free(r);
}

static void hosts_file(void **state)
{
    cdn_resolver_t *r = new_resolver(0, NULL);
    struct result res = {0};
    char ip[64];
    int before = dns.queries;
    cdn_resolver_lookup(r, "localhost", on_resolved, &res);
    assert_true(run_until(&res.called));
    assert_string_equal(res.err, "");
    assert_string_equal(ip_of(&res.addrs, 0, ip), "127.0.0.1");
    assert_int_equal(dns.queries, before);
    cdn_resolver_free(r);
}

static void cache_honours_ttl(void **state)
{
    cdn_resolver_t *r = new_resolver(60, NULL);
    struct result res = {0};
    cdn_resolver_lookup(r, "a.test", on_resolved, &res);
    assert_true(run_until(&res.called));
    int n = count_of("a.test");
    res.called = 0;
    assert_null(cdn_resolver_lookup(r, "a.test", on_resolved, &res)); /* hit: answered at once */
    assert_int_equal(res.called, 1);
    assert_true(res.addrs.ttl[0] <= 30 && res.addrs.ttl[0] >= 29);
    assert_int_equal(count_of("a.test"), n);

    /* ttl 0: never cached */
    res.called = 0;
    cdn_resolver_lookup(r, "ttl0.test", on_resolved, &res);
    assert_true(run_until(&res.called));
    res.called = 0;
    assert_non_null(cdn_resolver_lookup(r, "ttl0.test", on_resolved, &res));
    assert_true(run_until(&res.called));
    assert_int_equal(count_of("ttl0.test"), 2);

    /* ttl 1: cached, then asked again once it ran out (polled, bounded) */
    res.called = 0;
    cdn_resolver_lookup(r, "ttl1.test", on_resolved, &res);
    assert_true(run_until(&res.called));
    res.called = 0;
    assert_null(cdn_resolver_lookup(r, "ttl1.test", on_resolved, &res));
    assert_int_equal(count_of("ttl1.test"), 1);
    uint64_t deadline = cdn_now_ms() + 5000;
    while (count_of("ttl1.test") < 2 && cdn_now_ms() < deadline) {
        res.called = 0;
        if (cdn_resolver_lookup(r, "ttl1.test", on_resolved, &res) != NULL)
            run_until(&res.called);
        else
            h2o_evloop_run(loop, 50);
    }
    assert_int_equal(count_of("ttl1.test"), 2);

    /* flush empties it */
    n = count_of("a.test");
    cdn_resolver_flush_cache(r);
    res.called = 0;
    assert_non_null(cdn_resolver_lookup(r, "a.test", on_resolved, &res));
    assert_true(run_until(&res.called));
    assert_int_equal(count_of("a.test"), n + 1);
    cdn_resolver_free(r);

    /* cache_max_ttl caps a long TTL: a.test (30 s) is asked again after about 1 s */
    r = new_resolver(1, NULL);
    res.called = 0;
    cdn_resolver_lookup(r, "a.test", on_resolved, &res);
    assert_true(run_until(&res.called));
    n = count_of("a.test");
    deadline = cdn_now_ms() + 5000;
    while (count_of("a.test") == n && cdn_now_ms() < deadline) {
        res.called = 0;
        if (cdn_resolver_lookup(r, "a.test", on_resolved, &res) != NULL)
            run_until(&res.called);
        else
            h2o_evloop_run(loop, 50);
    }
    assert_int_equal(count_of("a.test"), n + 1);
    cdn_resolver_free(r);
}

static void local_source_address(void **state)
{
    cdn_resolver_t *r = new_resolver(0, "127.0.0.42");
    struct result res = {0};
    cdn_resolver_lookup(r, "a.test", on_resolved, &res);
    assert_true(run_until(&res.called));
    assert_string_equal(res.err, "");
    assert_string_equal(dns.last_src, "127.0.0.42");
    cdn_resolver_free(r);

    char err[256];
    struct cdn_resolver_opts bad = {.servers = dns.servers, .local_ip4 = "not-an-ip"};
    assert_null(cdn_resolver_new(loop, &bad, err, sizeof(err)));
    assert_non_null(strstr(err, "not-an-ip"));
    struct cdn_resolver_opts bad2 = {.servers = "what?"};
    assert_null(cdn_resolver_new(loop, &bad2, err, sizeof(err)));
    assert_non_null(strstr(err, "what?"));
}

static void many_at_once(void **state)
{
    cdn_resolver_t *r = new_resolver(0, NULL);
    struct result res[50] = {{0}};
    int done = 0;
    for (int i = 0; i < 50; i++)
        cdn_resolver_lookup(r, i % 2 ? "a.test" : "multi.test", on_resolved, &res[i]);
    uint64_t deadline = cdn_now_ms() + 5000;
    while (cdn_now_ms() < deadline) {
        done = 0;
        for (int i = 0; i < 50; i++)
            done += res[i].called;
        if (done == 50)
            break;
        h2o_evloop_run(loop, 50);
    }
    assert_int_equal(done, 50);
    for (int i = 0; i < 50; i++) {
        assert_string_equal(res[i].err, "");
        assert_int_equal(res[i].addrs.n, i % 2 ? 1 : 2);
    }
    cdn_resolver_free(r);
}

int main(void)
{
    loop = h2o_evloop_create();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_record_with_ttl),     cmocka_unit_test(nxdomain),
        cmocka_unit_test(no_reply_times_out),    cmocka_unit_test(cancel_never_calls_back),
        cmocka_unit_test(free_calls_back_outstanding), cmocka_unit_test(ip_literals),
        cmocka_unit_test(hosts_file),            cmocka_unit_test(cache_honours_ttl),
        cmocka_unit_test(local_source_address),  cmocka_unit_test(many_at_once),
    };
    return cmocka_run_group_tests(tests, dns_setup, dns_teardown);
}
