/* The Vulkan implementations against the reference (lavapipe on machines without a GPU):
 * odd row counts, one block, every token count, a shape past one workgroup's rows. Skipped,
 * with the reason, when the machine has no Vulkan device. */
#include "kbtest.h"

static void check_vk(const char *const *lines, int n)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.impl_re = "^vk";
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int passed = 0, skipped = 0;
    for (int i = 0; i < r.n; i++) {
        passed += r.v[i].status == KB_PASS;
        skipped += r.v[i].status == KB_SKIP;
    }
    if (passed == 0 && skipped > 0 && bad == 0) {
        print_message("no Vulkan device: %s\n", r.vk_status);
        kb_results_free(&r);
        kb_case_list_free(&cl);
        skip();
    }
    assert_int_equal(bad, 0);
    assert_true(passed > 0);
    kb_results_free(&r);
    kb_case_list_free(&cl);
}

static void test_vk_matvec_odd(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=1,3,7,33,65,257 cols=32,96,4128",
        "matvec_q8_0 rows=1,3,7,33,65,257 cols=32,96,4128",
    };
    check_vk(lines, 2);
}

static void test_vk_matvec_tokens(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=45 cols=128 tokens=1,2,3,5,8,13,16",
        "matvec_q8_0 rows=45 cols=128 tokens=1,2,3,5,8,13,16",
    };
    check_vk(lines, 2);
}

static void test_vk_matvec_model(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=1024 cols=4096 tokens=1,4",
        "matvec_q8_0 rows=4096 cols=1024",
    };
    check_vk(lines, 2);
}

static void test_vk_read(void **st)
{
    (void)st;
    static const char *const lines[] = {"read mib=1,5"};
    check_vk(lines, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vk_matvec_odd),
        cmocka_unit_test(test_vk_matvec_tokens),
        cmocka_unit_test(test_vk_matvec_model),
        cmocka_unit_test(test_vk_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
