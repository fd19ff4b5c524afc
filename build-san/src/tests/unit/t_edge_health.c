/* Unit test of the parent health rule (edge_health_step) and of edge_parent_pick skipping a
 * parent that its health check marked down. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "edge/vhost/vhost.h"

static void rise_fall(void **state)
{
    struct cdn_risefall st = EDGE_HEALTH_STATE_INIT; /* parents start up */
    assert_int_equal(edge_health_step(&st, 1, 2, 3), 0); /* up stays up */
    assert_int_equal(edge_health_step(&st, 0, 2, 3), 0);
    assert_int_equal(edge_health_step(&st, 0, 2, 3), 0);
    assert_int_equal(edge_health_step(&st, 1, 2, 3), 0); /* a success resets the failures */
    assert_int_equal(edge_health_step(&st, 0, 2, 3), 0);
    assert_int_equal(edge_health_step(&st, 0, 2, 3), 0);
    assert_int_equal(edge_health_step(&st, 0, 2, 3), -1); /* third in a row: down */
    assert_int_equal(st.up, 0);
    assert_int_equal(edge_health_step(&st, 0, 2, 3), 0);
    assert_int_equal(edge_health_step(&st, 1, 2, 3), 0);
    assert_int_equal(edge_health_step(&st, 0, 2, 3), 0); /* a failure resets the successes */
    assert_int_equal(edge_health_step(&st, 1, 2, 3), 0);
    assert_int_equal(edge_health_step(&st, 1, 2, 3), 1); /* second in a row: up */
    assert_int_equal(st.up, 1);
    struct cdn_risefall z = EDGE_HEALTH_STATE_INIT;
    assert_int_equal(edge_health_step(&z, 0, 0, 0), -1); /* 0 counts as 1 */
    assert_int_equal(edge_health_step(&z, 1, 0, 0), 1);
}

static void pick_skips_checked_down(void **state)
{
    struct edge_parent p[2];
    edge_parent_init(&p[0], "http://127.0.0.1:9001");
    edge_parent_init(&p[1], "http://127.0.0.1:9002");
    int home = edge_parent_pick(p, 2, 42, 1000, 0);
    assert_true(home == 0 || home == 1);
    p[home].check_down = 1;
    assert_int_equal(edge_parent_pick(p, 2, 42, 1000, 0), 1 - home);
    p[1 - home].check_down = 1;
    assert_int_equal(edge_parent_pick(p, 2, 42, 1000, 0), -1);
    p[home].check_down = 0;
    assert_int_equal(edge_parent_pick(p, 2, 42, 1000, 0), home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(rise_fall), cmocka_unit_test(pick_skips_checked_down)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
