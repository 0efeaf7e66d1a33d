/* Every registered CPU mma implementation against the reference: shapes off every tile (M = 1,
 * sizes around the 16- and 32-token tiles and past the 8-tile M blocks; N around the 6- and
 * 12-row tiles and past the 192-row items; K = 32, the smallest legal, and past the 256- and
 * 512-long K blocks), few weight rows with many tokens (items split over M), a model shape,
 * every input distribution; threads 1, 2 and 3. New implementations are covered by registering
 * them. */
#include "kbtest.h"

static void test_mma_odd_shapes(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "mma_q8_0 M=1,2,15,16,17,31,33,65 N=1,5,11,12,13,25,193 K=32,544",
        "mma_q4_0 M=1,2,15,16,17,31,33,65 N=1,5,11,12,13,25,193 K=32,544",
        "mma_f16  M=1,2,15,16,17,31,33,65 N=1,5,11,12,13,25,193 K=32,544",
        "mma_bf16 M=1,2,15,16,17,31,33,65 N=1,5,11,12,13,25,193 K=32,544",
        "mma_a4   M=1,16,17,33 N=1,7,13,193 K=128,640 group=32,64,128",
        "mma_a4   M=5 N=11 K=32 group=32",
    };
    kbt_check_cpu(NULL, lines, 6);
}

static void test_mma_blocks(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "mma_q8_0 M=300 N=5,13,400 K=1056",
        "mma_q4_0 M=300 N=5,13,400 K=1056",
        "mma_a4   M=300 N=5,400 K=1152 group=128",
        "mma_f16  M=300 N=5,400 K=1056",
        "mma_bf16 M=300 N=5,400 K=1056",
    };
    kbt_check_cpu(NULL, lines, 5);
}

static void test_mma_model_shape(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "mma_q4_0 M=64 N=1024 K=4096",
        "mma_a4   M=64 N=1024 K=4096 group=64",
        "mma_f16  M=33 N=1024 K=4096",
    };
    kbt_check_cpu(NULL, lines, 3);
}

/* kbt_check_cpu with another input distribution. */
static void check_inputs(kb_inputs dist, const char *const *lines, int n)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kbt_check_options(&o);
    o.no_vulkan = 1;
    o.inputs = dist;
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int checked = 0;
    for (int i = 0; i < r.n; i++)
        checked += r.v[i].status == KB_PASS && r.v[i].impl && strcmp(r.v[i].impl->name, "ref") != 0;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
    assert_true(checked > 0);
}

static void test_mma_distributions(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "mma_q8_0 M=33 N=25 K=544", "mma_q4_0 M=33 N=25 K=544",
        "mma_a4 M=33 N=25 K=640 group=32,128", "mma_f16 M=33 N=25 K=544",
        "mma_bf16 M=33 N=25 K=544",
    };
    check_inputs(KB_INPUTS_EXTREME, lines, 5);
    check_inputs(KB_INPUTS_ZEROS, lines, 5);
    /* outlier channels: int8 activations meet their tolerance from K ~ 4096 (mma_cpu.h) */
    static const char *const model[] = {
        "mma_q8_0 M=33 N=25 K=4096", "mma_q4_0 M=33 N=25 K=4096",
        "mma_a4 M=33 N=25 K=4096 group=64", "mma_f16 M=33 N=25 K=4096",
        "mma_bf16 M=33 N=25 K=4096",
    };
    check_inputs(KB_INPUTS_OUTLIERS, model, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mma_odd_shapes),
        cmocka_unit_test(test_mma_blocks),
        cmocka_unit_test(test_mma_model_shape),
        cmocka_unit_test(test_mma_distributions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
