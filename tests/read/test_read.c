/* The read yardstick: every CPU implementation (threads 1, 2, 3) against the reference sum, on
 * sizes that are not a multiple of any unroll (1, 3, 17 MiB). */
#include "kbtest.h"

static void test_read_cpu(void **st)
{
    (void)st;
    static const char *const lines[] = {"read mib=1,3,17"};
    kbt_check_cpu(NULL, lines, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
