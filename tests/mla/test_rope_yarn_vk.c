/* rope_yarn on Vulkan against the reference: the lines of test_rope_yarn (angles up to 2^20 rad:
 * the shader's exact reduction), random and outlier inputs. Lavapipe runs it here. */
#include "kbtest.h"

static const char *const lines[] = {
    "rope_yarn heads=1,3,128 rot=64 tokens=1,5 pos=0,1,4095,131071,1048000",
    "rope_yarn heads=9 rot=32,96,256 tokens=3 pos=77777 factor=1,40",
    "rope_yarn heads=128 rot=64 tokens=64 pos=1000000 label=deepseek-v3.q_pe",
    "rope_yarn heads=20 rot=64 tokens=2 pos=3,1048574",
};

static void test_vk(void **st)
{
    (void)st;
    kbt_check_vk("^vk$", lines, 4);
}

static void test_vk_outliers(void **st)
{
    (void)st;
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, 2);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.impl_re = "^vk$";
    o.inputs = KB_INPUTS_OUTLIERS;
    kb_results r = {0};
    const int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int passed = 0;
    for (int i = 0; i < r.n; i++)
        passed += r.v[i].status == KB_PASS;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
    if (passed == 0)
        skip(); /* no Vulkan device here */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vk),
        cmocka_unit_test(test_vk_outliers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
