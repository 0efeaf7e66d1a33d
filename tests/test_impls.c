/* Every registered CPU implementation against the reference, on random inputs and odd shapes:
 * rows not a multiple of any tile, one row, one block, token counts 1..16, uneven thread splits.
 * New implementations are covered by registering them; nothing to add here. */
#include "kbtest.h"

static void check_lines(const char *const *lines, int n)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kbt_check_options(&o);
    o.no_vulkan = 1; /* Vulkan has its own test (test_vulkan) */
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int checked = 0;
    for (int i = 0; i < r.n; i++)
        checked += r.v[i].status == KB_PASS;
    assert_true(checked > 0);
    assert_int_equal(bad, 0);
    kb_results_free(&r);
    kb_case_list_free(&cl);
}

static void test_matvec_odd_shapes(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=1,2,3,5,7,8,9,15,16,17,31,33,63,65 cols=32,64,96,4128",
        "matvec_q8_0 rows=1,2,3,5,7,8,9,15,16,17,31,33,63,65 cols=32,64,96,4128",
    };
    check_lines(lines, 2);
}

static void test_matvec_tokens(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=37,300 cols=256 tokens=1,2,3,4,5,7,8,9,15,16",
        "matvec_q8_0 rows=37,300 cols=256 tokens=1,2,3,4,5,7,8,9,15,16",
    };
    check_lines(lines, 2);
}

static void test_matvec_model_shapes(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_q4_0 rows=1024 cols=4096 tokens=1,16",
        "matvec_q4_0 rows=4096 cols=14336",
        "matvec_q8_0 rows=1024 cols=4096 tokens=1,16",
        "matvec_q8_0 rows=4096 cols=14336",
    };
    check_lines(lines, 4);
}

static void test_read(void **st)
{
    (void)st;
    static const char *const lines[] = {"read mib=1,3,17"};
    check_lines(lines, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matvec_odd_shapes),
        cmocka_unit_test(test_matvec_tokens),
        cmocka_unit_test(test_matvec_model_shapes),
        cmocka_unit_test(test_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
