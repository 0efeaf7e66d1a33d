/* The Vulkan implementations against the reference (lavapipe on machines without a GPU):
 * odd row counts, one block, every token count, a shape past one workgroup's rows. Skipped,
 * with the reason, when the machine has no Vulkan device. */
#include "kbtest.h"

static void test_vk_matvec_odd(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=1,3,7,33,65,257 cols=32,96,4128",
        "matvec_q8_0 rows=1,3,7,33,65,257 cols=32,96,4128",
    };
    kbt_check_vk("^vk", lines, 2);
}

static void test_vk_matvec_tokens(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=45 cols=128 tokens=1,2,3,5,8,13,16",
        "matvec_q8_0 rows=45 cols=128 tokens=1,2,3,5,8,13,16",
    };
    kbt_check_vk("^vk", lines, 2);
}

static void test_vk_matvec_model(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=1024 cols=4096 tokens=1,4",
        "matvec_q8_0 rows=4096 cols=1024",
    };
    kbt_check_vk("^vk", lines, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vk_matvec_odd),
        cmocka_unit_test(test_vk_matvec_tokens),
        cmocka_unit_test(test_vk_matvec_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
