/* rope_yarn: the CPU implementations against the reference at small and huge
 * positions (angles up to 2^20 rad, where an unreduced f32 sin would be off by far more than
 * the tolerance), q_pe (128 heads) and k_pe (1 head) shapes, factor 1 (no YaRN), several
 * tokens, outlier inputs; the YaRN frequencies; shape errors. */
#include <math.h>
#include <stdlib.h>

#include "kbtest.h"
#include "rope_yarn.h"

static const char *const lines[] = {
    "rope_yarn heads=1,3,128 rot=64 tokens=1,5 pos=0,1,4095,131071,1048000",
    "rope_yarn heads=9 rot=32,96,256 tokens=3 pos=77777 factor=1,40",
    "rope_yarn heads=128 rot=64 tokens=64 pos=1000000 label=deepseek-v3.q_pe",
};
#define NL (int)(sizeof lines / sizeof lines[0])
/* (test_rope_yarn_vk runs the same lines on the Vulkan implementation) */

static void test_cpu(void **st)
{
    (void)st;
    kbt_check_cpu(NULL, lines, NL);
}

static void test_outliers(void **st)
{
    (void)st;
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, 2);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.no_vulkan = 1; /* the Vulkan implementation: test_rope_yarn_vk */
    o.inputs = KB_INPUTS_OUTLIERS;
    kb_results r = {0};
    const int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
}

/* The frequencies: DeepSeek-V3 (rot 64, factor 40) keeps the fastest rotations, divides the
 * slowest by the factor, and ramps between; mscale = 0.1 ln 40 + 1. */
static void test_frequencies(void **st)
{
    (void)st;
    const char *line = "rope_yarn heads=1 rot=64 tokens=1 pos=0 factor=40";
    kb_case_list cl = {0};
    kbt_cases(&cl, &line, 1);
    kb_tensor d_in[KB_MAX_TENSORS], d_out[KB_MAX_TENSORS], in[3];
    int ni, no;
    cl.v[0].fam->describe(cl.v[0].p, d_in, &ni, d_out, &no);
    for (int i = 0; i < ni; i++)
        assert_int_equal(kb_tensor_alloc(&in[i], d_in[i].name, d_in[i].dtype, d_in[i].ndim,
                                         d_in[i].shape), 0);
    kb_rng rng;
    kb_rng_seed(&rng, 1);
    cl.v[0].fam->generate(cl.v[0].p, in, &rng, KB_INPUTS_RANDOM);
    const float *f = in[RY_IN_FREQ].data;
    assert_float_equal(f[0], 1.0, 1e-7);                                   /* kept */
    assert_float_equal(f[1], pow(10000.0, -2.0 / 64), 1e-7);               /* kept */
    assert_float_equal(f[31], pow(10000.0, -62.0 / 64) / 40.0, 1e-12);     /* scaled */
    for (int i = 1; i < 32; i++)
        assert_true(f[i] < f[i - 1]); /* the ramp keeps them decreasing */
    assert_float_equal(*(float *)in[RY_IN_MSCALE].data, 0.1 * log(40.0) + 1.0, 1e-6);
    for (int i = 0; i < ni; i++)
        kb_tensor_free(&in[i]);
    kb_case_list_free(&cl);
}

static void expect_error(const char *line, const char *needle)
{
    kb_case_list cl = {0};
    char err[512] = "";
    assert_int_equal(kb_suite_parse_line(line, &cl, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("'%s': error '%s' lacks '%s'", line, err, needle);
    kb_case_list_free(&cl);
}

static void test_validation(void **st)
{
    (void)st;
    expect_error("rope_yarn rot=48", "rot=48: must be a multiple of 32");
    expect_error("rope_yarn pos=1048570 tokens=10", "exceeds 1048576 positions");
    expect_error("rope_yarn heads=0", "out of range");
    expect_error("rope_yarn factor=0", "out of range");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_frequencies),
        cmocka_unit_test(test_cpu),
        cmocka_unit_test(test_outliers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
