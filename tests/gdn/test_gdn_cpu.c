/* GatedDeltaNet CPU implementations against the recurrence in double: decode and prefill
 * (sequential and chunkwise) on odd shapes, every dk/dv, GQA ratios, threads 1/2/3, the input
 * distributions (outliers, extreme g and beta), and the helpers the kernels share. */
#include <math.h>
#include <stdlib.h>

#include "gdn_common.h"
#include "gdn_x86.h"
#include "kbtest.h"

/* Like kbt_check_cpu with an input distribution. */
static void check_dist(const char *impl_re, const char *const *lines, int n, kb_inputs dist)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kbt_check_options(&o);
    o.no_vulkan = 1;
    o.impl_re = impl_re;
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

static void test_decode_shapes(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "gdn_decode batch=1,3 hk=1 hv=1,3 dk=64,128 dv=64,128",
        "gdn_decode batch=2 hk=2 hv=8 dk=128 dv=64",
        "gdn_decode batch=1 hk=16 hv=64 dk=128 dv=128 label=qwen35",
        "gdn_decode batch=5 hk=16 hv=32 dk=128 dv=128 label=qwen3-next",
    };
    kbt_check_cpu("avx", lines, 4);
}

static void test_decode_inputs(void **st)
{
    (void)st;
    static const char *const lines[] = {"gdn_decode batch=7 hk=2 hv=4 dk=64,128 dv=128"};
    check_dist("avx", lines, 1, KB_INPUTS_OUTLIERS);
    check_dist("avx", lines, 1, KB_INPUTS_EXTREME);
}

/* ---- helpers -------------------------------------------------------------------------------- */

KB_TARGET_AVX512 static void check_sum16(void)
{
    float x[16][16] __attribute__((aligned(64)));
    __m512 v[16];
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 16; j++)
            x[i][j] = (float)(i * 100 + j * (j + 1));
        v[i] = _mm512_load_ps(x[i]);
    }
    float out[16] __attribute__((aligned(64)));
    _mm512_store_ps(out, gdn_sum16x16(v));
    for (int i = 0; i < 16; i++) {
        float s = 0;
        for (int j = 0; j < 16; j++)
            s += x[i][j];
        assert_float_equal(out[i], s, 0);
    }
    __m512 t[16];
    gdn_transpose16(v, t);
    for (int j = 0; j < 16; j++) {
        _mm512_store_ps(out, t[j]);
        for (int i = 0; i < 16; i++)
            assert_float_equal(out[i], x[i][j], 0);
    }
}

KB_TARGET_AVX512 static void check_math(void)
{
    float in[16] __attribute__((aligned(64))), out[16] __attribute__((aligned(64)));
    double worst_exp = 0, worst_l1p = 0, worst_sp = 0;
    for (int k = 0; k < 4000; k++) {
        for (int i = 0; i < 16; i++)
            in[i] = -87.0f + (float)(k * 16 + i) * (175.0f / 64000.0f);
        _mm512_store_ps(out, gdn_exp512(_mm512_load_ps(in)));
        for (int i = 0; i < 16; i++)
            worst_exp = fmax(worst_exp, fabs(out[i] - exp(in[i])) / exp(in[i]));
        for (int i = 0; i < 16; i++)
            in[i] = (float)(k * 16 + i) / 64000.0f;
        _mm512_store_ps(out, gdn_log1p01_512(_mm512_load_ps(in)));
        for (int i = 0; i < 16; i++)
            if (in[i] > 0)
                worst_l1p = fmax(worst_l1p, fabs(out[i] - log1p(in[i])) / log1p(in[i]));
        for (int i = 0; i < 16; i++)
            in[i] = -60.0f + (float)(k * 16 + i) * (120.0f / 64000.0f);
        _mm512_store_ps(out, gdn_softplus512(_mm512_load_ps(in)));
        for (int i = 0; i < 16; i++)
            worst_sp = fmax(worst_sp, fabs(out[i] - gdn_softplus(in[i])) / gdn_softplus(in[i]));
    }
    print_message("relative error: exp %.3g, log1p %.3g, softplus %.3g\n", worst_exp, worst_l1p,
                  worst_sp);
    assert_true(worst_exp < 2.5e-7);
    assert_true(worst_l1p < 2.5e-7);
    assert_true(worst_sp < 4e-7);
    /* the ends: exp overflows to inf, underflows to 0; sigmoid saturates to exactly 0 and 1 */
    for (int i = 0; i < 16; i++)
        in[i] = i < 8 ? 89.0f + i : -88.0f - i * 10;
    _mm512_store_ps(out, gdn_exp512(_mm512_load_ps(in)));
    for (int i = 0; i < 16; i++)
        assert_true(i < 8 ? isinf(out[i]) : out[i] == 0.0f);
    _mm512_store_ps(out, gdn_sigmoid512(_mm512_load_ps(in)));
    for (int i = 0; i < 16; i++)
        assert_true(i < 8 ? out[i] == 1.0f : out[i] == 0.0f);
}

static void test_helpers(void **st)
{
    (void)st;
    if (kb_need_avx512()) {
        print_message("CPU lacks AVX-512: helpers not tested\n");
        skip();
    }
    check_sum16();
    check_math();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_decode_shapes),
        cmocka_unit_test(test_decode_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
