/* Unit tests for the pure parts of the daemon runtime: the rise/fall rule (lib/risefall.c), the
 * epoch reclamation of replaced configuration (lib/epoch.c) and the peer text of the access log
 * (lib/alog.c: IPv4, IPv6, IPv4-mapped, unknown). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "cdn/epoch.h"
#include "cdn/log.h"
#include "cdn/risefall.h"

/* --- rise/fall: a sequence of results and the state after each --- */
static void test_risefall_table(void **st)
{
    static const struct {
        const char *name;
        int start_up, rise, fall;
        const char *results;    /* '+' good, '-' failed */
        const char *states;     /* 'U' up, 'D' down after each result */
    } cases[] = {
        {"new target: first pass brings it up", 0, 3, 2, "+", "U"},
        {"new target: a failure first, then rise", 0, 2, 2, "-++", "DDU"},
        {"up: fall failures take it down", 1, 2, 3, "--+--+---", "UUUUUUUUD"},
        {"down again needs rise in a row", 1, 2, 1, "-+-++", "DDDDU"},
        {"rise 0 and fall 0 count as 1", 1, 0, 0, "-+-+", "DUDU"},
        {"starts up, seen: passes keep it up", 1, 5, 5, "+++++", "UUUUU"},
        {"flapping below fall stays up", 1, 2, 2, "-+-+-+", "UUUUUU"},
    };
    (void)st;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cdn_risefall rf = {.up = (uint8_t)cases[i].start_up};
        for (size_t k = 0; cases[i].results[k]; k++) {
            int up = cdn_risefall_observe(&rf, cases[i].results[k] == '+', (unsigned)cases[i].rise, (unsigned)cases[i].fall);
            if (up != (cases[i].states[k] == 'U'))
                fail_msg("%s: step %zu: got %s", cases[i].name, k, up ? "up" : "down");
            assert_int_equal(up, rf.up);
        }
    }
}

static void test_risefall_saturates(void **st)
{
    (void)st;
    struct cdn_risefall rf = {.up = 1, .seen = 1};
    for (int i = 0; i < 70000; i++)
        cdn_risefall_observe(&rf, 1, 2, 2);
    assert_int_equal(rf.ok_run, UINT16_MAX);
    assert_int_equal(cdn_risefall_observe(&rf, 0, 2, 2), 1);
    assert_int_equal(cdn_risefall_observe(&rf, 0, 2, 2), 0);
}

/* --- epochs --- */
static int freed[8];
static void free_slot(void *p) { freed[(int *)p - freed] = 1; }

static void test_epoch_reclaim(void **st)
{
    (void)st;
    memset(freed, 0, sizeof(freed));
    cdn_epoch_t *e = cdn_epoch_new(3);
    assert_non_null(e);
    /* nobody inside: freed at the next reclaim */
    assert_int_equal(cdn_epoch_retire(e, &freed[0], free_slot), 0);
    assert_int_equal(cdn_epoch_reclaim(e), 0);
    assert_int_equal(freed[0], 1);
    /* reader 1 inside: waits until it leaves; reader 2 entering later does not hold it */
    cdn_epoch_enter(e, 1);
    assert_int_equal(cdn_epoch_retire(e, &freed[1], free_slot), 0);
    cdn_epoch_enter(e, 2);
    assert_int_equal(cdn_epoch_reclaim(e), 1);
    assert_int_equal(freed[1], 0);
    cdn_epoch_leave(e, 1);
    assert_int_equal(cdn_epoch_reclaim(e), 0);
    assert_int_equal(freed[1], 1);
    /* reader 2 is still inside; it left and came back: a new turn, so safe */
    assert_int_equal(cdn_epoch_retire(e, &freed[2], free_slot), 0);
    assert_int_equal(cdn_epoch_reclaim(e), 1);
    cdn_epoch_leave(e, 2);
    cdn_epoch_enter(e, 2);
    assert_int_equal(cdn_epoch_reclaim(e), 0);
    assert_int_equal(freed[2], 1);
    /* what is still retired at the end goes with the registry */
    assert_int_equal(cdn_epoch_retire(e, &freed[3], free_slot), 0);
    cdn_epoch_free(e);
    assert_int_equal(freed[3], 1);
}

static int nfreed;
static void count_free(void *p) { (void)p; nfreed++; }

static void test_epoch_many(void **st)
{
    (void)st;
    /* a hundred reloads while a reader turns: none is kept for long */
    cdn_epoch_t *e = cdn_epoch_new(1);
    static int objs[100];
    nfreed = 0;
    for (int i = 0; i < 100; i++) {
        cdn_epoch_enter(e, 0);
        assert_int_equal(cdn_epoch_retire(e, &objs[i], count_free), 0);
        cdn_epoch_leave(e, 0);
        assert_true(cdn_epoch_reclaim(e) <= 1);
    }
    assert_true(nfreed >= 99);
    cdn_epoch_free(e);
    assert_int_equal(nfreed, 100);
}

/* --- peer text --- */
static void test_peer_text(void **st)
{
    (void)st;
    char buf[CDN_PEER_TEXT_MAX];
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
    assert_string_equal(cdn_peer_text((struct sockaddr *)&v4, buf), "192.0.2.7");
    /* the hand-made dotted quad against inet_ntop: every digit count */
    static const char *const quads[] = {"0.0.0.0", "255.255.255.255", "10.0.99.100", "1.22.133.9", "127.0.0.1"};
    for (size_t i = 0; i < sizeof(quads) / sizeof(quads[0]); i++) {
        inet_pton(AF_INET, quads[i], &v4.sin_addr);
        assert_string_equal(cdn_peer_text((struct sockaddr *)&v4, buf), quads[i]);
    }
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
    assert_string_equal(cdn_peer_text((struct sockaddr *)&v6, buf), "2001:db8::1");
    inet_pton(AF_INET6, "::1", &v6.sin6_addr);
    assert_string_equal(cdn_peer_text((struct sockaddr *)&v6, buf), "::1");
    inet_pton(AF_INET6, "::ffff:198.51.100.9", &v6.sin6_addr);
    assert_string_equal(cdn_peer_text((struct sockaddr *)&v6, buf), "198.51.100.9");
    inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &v6.sin6_addr);
    assert_string_equal(cdn_peer_text((struct sockaddr *)&v6, buf), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_string_equal(cdn_peer_text((struct sockaddr *)&un, buf), "-");
    assert_string_equal(cdn_peer_text(NULL, buf), "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_risefall_table),
        cmocka_unit_test(test_risefall_saturates),
        cmocka_unit_test(test_epoch_reclaim),
        cmocka_unit_test(test_epoch_many),
        cmocka_unit_test(test_peer_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
