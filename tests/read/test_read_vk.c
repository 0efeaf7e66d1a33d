/* The Vulkan read yardstick against the reference sum (lavapipe without a GPU). */
#include "kbtest.h"

static void test_read_vk(void **st)
{
    (void)st;
    static const char *const lines[] = {"read mib=1,5"};
    kbt_check_vk("^vk$", lines, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_vk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
