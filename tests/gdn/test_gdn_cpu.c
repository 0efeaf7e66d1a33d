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

static void test_prefill_shapes(void **st)
{
    (void)st;
    static const char *const lines[] = {
        /* chunk edges: 1, one short of / exactly / one past a chunk of 16 and of 64 */
        "gdn_prefill n=1,2,15,16,17,63,64,65,100 hk=1 hv=2 dk=64,128 dv=64,128",
        /* GQA 3 and 1, one head (rows split across threads), odd head counts */
        "gdn_prefill n=33 hk=2 hv=6 dk=128 dv=128",
        "gdn_prefill n=70 hk=1 hv=1,3 dk=64 dv=128",
        "gdn_prefill n=150 hk=16 hv=64 dk=128 dv=128 label=qwen35",
    };
    kbt_check_cpu("avx", lines, 4);
}

static void test_prefill_inputs(void **st)
{
    (void)st;
    static const char *const lines[] = {"gdn_prefill n=200 hk=2 hv=4 dk=64,128 dv=64"};
    check_dist("avx", lines, 1, KB_INPUTS_OUTLIERS);
    check_dist("avx", lines, 1, KB_INPUTS_EXTREME);
}

/* ---- n = 16384: no drift ---------------------------------------------------------------------
 * The chunkwise kernels against the recurrence at the longest n, with g near 0 and 1 and beta
 * near 0 and 1 (extreme) and with realistic gates: the conditioned error of the LAST token's
 * outputs and of the final state on their own (a drift would show there first), and that a 1%
 * error planted there fails the same test, so passing means something. */

static double cond_err_range(const gdn_shape *s, const kb_tensor *in, int o, const kb_tensor *out,
                             const kb_tensor *ref, int64_t lo, int64_t hi)
{
    double *scale = malloc(sizeof(double) * (size_t)kb_tensor_numel(ref));
    assert_non_null(scale);
    gdn_condition(s, in, o, scale);
    const float *a = out->data, *b = ref->data;
    double worst = 0;
    for (int64_t i = lo; i < hi; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]) / scale[i]);
    free(scale);
    return worst;
}

static void long_case(const char *impl_name, kb_inputs dist)
{
    const kb_family *f = kb_family_find("gdn_prefill");
    const int64_t p[5] = {16384, 1, 2, 64, 64};
    gdn_shape s;
    gdn_prefill_shape(p, &s);
    kb_tensor din[KB_MAX_TENSORS], dout[KB_MAX_TENSORS], in[6], out[2], ref[2];
    int ni, no;
    f->describe(p, din, &ni, dout, &no);
    for (int i = 0; i < ni; i++)
        assert_int_equal(kb_tensor_alloc(&in[i], din[i].name, KB_F32, din[i].ndim, din[i].shape), 0);
    for (int i = 0; i < no; i++) {
        assert_int_equal(kb_tensor_alloc(&out[i], dout[i].name, KB_F32, dout[i].ndim, dout[i].shape), 0);
        assert_int_equal(kb_tensor_alloc(&ref[i], dout[i].name, KB_F32, dout[i].ndim, dout[i].shape), 0);
    }
    kb_rng rng;
    kb_rng_seed(&rng, 77);
    f->generate(p, in, &rng, dist);
    f->reference(p, in, ref);
    const kb_impl *impl = NULL;
    for (int i = 0; i < kb_impl_count(); i++)
        if (!strcmp(kb_impl_at(i)->family, "gdn_prefill") && !strcmp(kb_impl_at(i)->name, impl_name))
            impl = kb_impl_at(i);
    assert_non_null(impl);
    kb_case c = {.fam = f};
    memcpy(c.p, p, sizeof p);
    kb_pool *pool = kb_pool_create(2, 0);
    impl->cpu_run(&c, in, out, pool);
    kb_pool_destroy(pool);
    const int64_t last = (s.ntok - 1) * s.hv * s.dv, no_all = s.ntok * s.hv * s.dv;
    const int64_t ns = kb_tensor_numel(&ref[GD_S1]);
    const double e_last = cond_err_range(&s, in, GD_O, &out[GD_O], &ref[GD_O], last, no_all);
    const double e_state = cond_err_range(&s, in, GD_S1, &out[GD_S1], &ref[GD_S1], 0, ns);
    const double e_all = cond_err_range(&s, in, GD_O, &out[GD_O], &ref[GD_O], 0, no_all);
    /* plant 1% of the RMS in the last token's first output and in the middle of the state */
    double so = 0, ss = 0;
    for (int64_t i = 0; i < no_all; i++)
        so += (double)((float *)ref[GD_O].data)[i] * ((float *)ref[GD_O].data)[i];
    for (int64_t i = 0; i < ns; i++)
        ss += (double)((float *)ref[GD_S1].data)[i] * ((float *)ref[GD_S1].data)[i];
    ((float *)out[GD_O].data)[last] += (float)(0.01 * sqrt(so / (double)no_all));
    ((float *)out[GD_S1].data)[ns / 2] += (float)(0.01 * sqrt(ss / (double)ns));
    const double p_last = cond_err_range(&s, in, GD_O, &out[GD_O], &ref[GD_O], last, no_all);
    const double p_state = cond_err_range(&s, in, GD_S1, &out[GD_S1], &ref[GD_S1], 0, ns);
    print_message("%s n=16384 %s: conditioned error last token %.3g, final state %.3g, all "
                  "outputs %.3g (tolerance %g); 1%% planted: %.3g, %.3g\n", impl_name,
                  kb_inputs_name(dist), e_last, e_state, e_all, GD_TOL_COND, p_last, p_state);
    assert_true(e_last <= GD_TOL_COND && e_state <= GD_TOL_COND && e_all <= GD_TOL_COND);
    assert_true(p_last > 10 * GD_TOL_COND && p_state > 10 * GD_TOL_COND);
    for (int i = 0; i < ni; i++)
        kb_tensor_free(&in[i]);
    for (int i = 0; i < no; i++) {
        kb_tensor_free(&out[i]);
        kb_tensor_free(&ref[i]);
    }
}

static void test_prefill_long(void **st)
{
    (void)st;
    if (kb_need_avx512()) {
        print_message("CPU lacks AVX-512\n");
        skip();
    }
    long_case("chunk16_avx512", KB_INPUTS_EXTREME);
    long_case("chunk64_avx512", KB_INPUTS_EXTREME);
    long_case("chunk64_avx512", KB_INPUTS_RANDOM);
    long_case("seq_avx512", KB_INPUTS_RANDOM);
}

static void test_companions(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "gdn_conv batch=1,3 n=1,2,3,4,37 channels=1,17,300",
        "gdn_conv batch=2 n=5 channels=12288 label=qwen35",
        "gdn_gates n=1,9,200 hv=1,13,64",
        "gdn_qknorm n=1,7 hk=1,5 dk=64,128",
        "gdn_gatednorm n=1,7 hv=1,5 dv=64,128",
    };
    kbt_check_cpu("avx", lines, 5);
    static const char *const out[] = {"gdn_conv batch=2 n=9 channels=100",
                                      "gdn_qknorm n=7 hk=3 dk=64,128",
                                      "gdn_gatednorm n=7 hv=3 dv=64,128"};
    check_dist("avx", out, 3, KB_INPUTS_OUTLIERS);
    static const char *const ext[] = {"gdn_gates n=300 hv=64"};
    check_dist("avx", ext, 1, KB_INPUTS_EXTREME);
}

/* A bad shape is refused with the parameter named (the CLI exits 2). */
static void test_shape_errors(void **st)
{
    (void)st;
    static const char *const bad[][2] = {
        {"gdn_decode batch=1 hk=3 hv=64", "hv=64 is not a multiple of hk=3"},
        {"gdn_prefill n=8 dk=96", "dk=96"},
        {"gdn_prefill n=8 dv=256", "dv=256"},
        {"gdn_prefill n=0", "n=0"},
        {"gdn_decode batch=0", "batch=0"},
        {"gdn_qknorm dk=100", "dk=100"},
        {"gdn_gatednorm dv=32", "dv=32"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kb_case_list cl = {0};
        char err[512] = "";
        assert_int_not_equal(kb_suite_parse_line(bad[i][0], &cl, err, sizeof err), 0);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': message '%s' does not name '%s'", bad[i][0], err, bad[i][1]);
        kb_case_list_free(&cl);
    }
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
        cmocka_unit_test(test_prefill_shapes),
        cmocka_unit_test(test_prefill_inputs),
        cmocka_unit_test(test_prefill_long),
        cmocka_unit_test(test_companions),
        cmocka_unit_test(test_shape_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
