/* Attention: every registered CPU implementation of attn_decode and attn_prefill against the
 * reference (odd lengths, T = 1, every head_dim, GQA ratios 1/2/3/4/16, f16 and f32 caches,
 * p0 > 0, flash-decoding splits, threads 1/2/3, and 4/7/16 for decode), the online-softmax
 * rules and merge, the vector 2^x, shape validation, and that the tolerance catches a kernel
 * that loses one position. */
#include <math.h>
#include <stdlib.h>

#include "attn_common.h"
#include "attn_softmax.h"
#include "attn_x86.h"
#include "kbtest.h"

static void test_decode_odd_lengths(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_decode heads=4 kv_heads=1 head_dim=64,128,256 T=1,2,7,8,9,31,33,100 kv_f16=0,1",
    };
    kbt_check_cpu(NULL, lines, 1);
}

static void test_decode_gqa(void **st)
{
    (void)st;
    static const char *const lines[] = {
        /* GQA 1, 4, 16, and the 2- and 3-head groups of the narrower head blocks */
        "attn_decode heads=16 kv_heads=16,4,1 head_dim=64,128,256 T=1,57,300 kv_f16=0,1",
        "attn_decode heads=6 kv_heads=3,2 head_dim=64,128,256 T=1,13,200 kv_f16=0,1",
        "attn_decode heads=5 kv_heads=5,1 head_dim=128 T=19 kv_f16=1",
    };
    kbt_check_cpu(NULL, lines, 3);
}

static void test_decode_splits(void **st)
{
    (void)st;
    static const char *const lines[] = {
        /* long enough for 2 and 3 chunks (flash decoding and the merge); odd ends */
        "attn_decode heads=8 kv_heads=2 head_dim=128 T=1025,1536,2001 kv_f16=0,1",
        "attn_decode heads=32 kv_heads=2 head_dim=256 T=4099 kv_f16=1 label=qwen35",
        "attn_decode heads=32 kv_heads=8 head_dim=128 T=3000 kv_f16=1 label=llama3-8b",
    };
    kbt_check_cpu(NULL, lines, 3);
}

/* Cells for more threads than there is work (idle threads), chunk counts up to 15, lengths off
 * every tile and chunk, and head blocks of 1, 2 and 4 heads at every head size (each a cell
 * instance of its own). */
static void test_decode_threads(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_decode heads=4 kv_heads=1 head_dim=64,256 T=1,17,1023,8191 kv_f16=1",
        "attn_decode heads=8 kv_heads=2 head_dim=128 T=512,7777 kv_f16=0",
        "attn_decode heads=6 kv_heads=6,2 head_dim=128 T=5000 kv_f16=1",
    };
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, 3);
    kb_options o;
    kbt_check_options(&o);
    o.no_vulkan = 1;
    o.kernel_re = "attn_decode";
    const int threads[] = {1, 4, 7, 16};
    o.n_threads = 4;
    for (int i = 0; i < 4; i++)
        o.threads[i] = threads[i];
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int checked = 0;
    for (int i = 0; i < r.n; i++)
        checked += r.v[i].status == KB_PASS && strcmp(r.v[i].impl->name, "ref") != 0;
    assert_true(checked > 0);
    assert_int_equal(bad, 0);
    kb_results_free(&r);
    kb_case_list_free(&cl);
}

static void test_prefill_shapes(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_prefill heads=4 kv_heads=1 head_dim=64,128,256 n_q=1,5,24,25,49 p0=0,3 kv_f16=0,1",
        "attn_prefill heads=16 kv_heads=16,4,1 head_dim=128 n_q=1,7,40 p0=0,77 kv_f16=0,1",
        "attn_prefill heads=6 kv_heads=3,2 head_dim=64 n_q=11,30 p0=0,5 kv_f16=1",
    };
    kbt_check_cpu(NULL, lines, 3);
}

static void test_prefill_long(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_prefill heads=8 kv_heads=2 head_dim=128 n_q=130 p0=0,500 kv_f16=1",
        "attn_prefill heads=32 kv_heads=2 head_dim=256 n_q=33 p0=260 kv_f16=0 label=qwen35",
        "attn_prefill heads=32 kv_heads=8 head_dim=128 n_q=97 p0=0 kv_f16=1 label=llama3-8b",
    };
    kbt_check_cpu(NULL, lines, 3);
}

/* ---- the online-softmax rules ----------------------------------------------------------- */

static void test_softmax_rules(void **st)
{
    (void)st;
    assert_true(kb_sm_alpha(-INFINITY, 3.0f) == 0.0f);        /* nothing seen yet */
    assert_true(kb_sm_alpha(-INFINITY, -INFINITY) == 0.0f);   /* all masked: 0, not NaN */
    assert_true(kb_sm_alpha(2.0f, 2.0f) == 1.0f);
    assert_float_equal(kb_sm_alpha(1.0f, 3.0f), 0.25f, 1e-7);
    assert_true(kb_sm_safe_max(-INFINITY) == 0.0f);
    assert_true(kb_sm_safe_max(-5.0f) == -5.0f);
    assert_true(exp2f(-INFINITY - kb_sm_safe_max(-INFINITY)) == 0.0f);
    assert_true(kb_sm_inv(0.0f) == 0.0f);
    assert_float_equal(kb_sm_inv(4.0f), 0.25f, 0);
}

/* A partial record over scores s[0..n) (log2 units) and values v[j][D]. */
static void partial(float *rec, const float *s, const float (*v)[2], int n)
{
    kb_sm_record_init(rec, 2);
    for (int j = 0; j < n; j++)
        if (s[j] > rec[KB_SM_M])
            rec[KB_SM_M] = s[j];
    for (int j = 0; j < n; j++) {
        const float w = exp2f(s[j] - kb_sm_safe_max(rec[KB_SM_M]));
        rec[KB_SM_L] += w;
        rec[KB_SM_HDR] += w * v[j][0];
        rec[KB_SM_HDR + 1] += w * v[j][1];
    }
}

static void test_softmax_merge(void **st)
{
    (void)st;
    enum { STRIDE = KB_SM_HDR + 2 };
    const float s[5] = {1.0f, -3.0f, 40.0f, 38.5f, -INFINITY};
    const float v[5][2] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {100, 100}};
    /* direct softmax in double */
    double mx = 40.0, l = 0, o0 = 0, o1 = 0;
    for (int j = 0; j < 5; j++) {
        const double w = exp2((double)s[j] - mx);
        l += w;
        o0 += w * v[j][0];
        o1 += w * v[j][1];
    }
    /* four partials: [0,2), an empty one, [2,4), and one of only masked positions */
    float rec[4 * STRIDE], out[2];
    partial(rec, s, v, 2);
    partial(rec + STRIDE, s, v, 0);
    partial(rec + 2 * STRIDE, s + 2, v + 2, 2);
    partial(rec + 3 * STRIDE, s + 4, v + 4, 1);
    assert_true(rec[3 * STRIDE + KB_SM_L] == 0.0f); /* masked only: nothing, and no NaN */
    kb_sm_merge(rec, 4, STRIDE, 2, out);
    assert_float_equal(out[0], o0 / l, 1e-5);
    assert_float_equal(out[1], o1 / l, 1e-5);
    /* nothing at all: zeros, not NaN */
    kb_sm_merge(rec + STRIDE, 1, STRIDE, 2, out);
    assert_true(out[0] == 0.0f && out[1] == 0.0f);
    kb_sm_merge(rec + 3 * STRIDE, 1, STRIDE, 2, out);
    assert_true(out[0] == 0.0f && out[1] == 0.0f);
}

/* ---- the vector 2^x ------------------------------------------------------------------------ */

KB_TARGET_AVX2 static float exp2_lane0(float x)
{
    return _mm256_cvtss_f32(kb_exp2_avx2(_mm256_set1_ps(x)));
}

static void test_exp2(void **st)
{
    (void)st;
    if (kb_need_avx2())
        skip();
    double worst = 0;
    for (float x = -124.9f; x <= 0.0f; x += 0.0137f) {
        const double want = exp2((double)x), got = exp2_lane0(x);
        const double rel = fabs(got - want) / want;
        worst = rel > worst ? rel : worst;
    }
    print_message("exp2: worst relative error %.3g over [-124.9, 0]\n", worst);
    assert_true(worst < 3e-7);
    assert_true(exp2_lane0(0.0f) == 1.0f); /* alpha = 1 exactly when the max does not move */
    assert_true(exp2_lane0(-INFINITY) == 0.0f);
    assert_true(exp2_lane0(-126.0f) == 0.0f);
    assert_true(exp2_lane0(-1000.0f) == 0.0f);
}

/* ---- shapes ------------------------------------------------------------------------------- */

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
    expect_error("attn_decode heads=6 kv_heads=4", "not a multiple of kv_heads");
    expect_error("attn_decode heads=4 kv_heads=8", "not a multiple of kv_heads");
    expect_error("attn_decode head_dim=96", "must be 64, 128 or 256");
    expect_error("attn_prefill head_dim=100", "must be 64, 128 or 256");
    expect_error("attn_decode T=0", "out of range");
    expect_error("attn_prefill n_q=0", "out of range");
    expect_error("attn_prefill p0=-1", "out of range");
    expect_error("attn_decode kv_f16=2", "out of range");
    expect_error("attn_decode heads=256 kv_heads=256 head_dim=256 T=1048576", "exceeds");
    /* the cost model: T_avg of a prefill is p0 + (n_q + 1) / 2 */
    kb_case_list cl = {0};
    char err[512];
    assert_int_equal(kb_suite_parse_line("attn_prefill heads=2 kv_heads=1 head_dim=64 n_q=3 p0=10",
                                         &cl, err, sizeof err), 0);
    assert_float_equal(cl.v[0].fam->flops(cl.v[0].p), 4.0 * 2 * 3 * 12 * 64, 0);
    assert_float_equal(cl.v[0].fam->bytes(cl.v[0].p), 2.0 * 13 * 64 * 2 + 8.0 * 3 * 2 * 64, 0);
    kb_case_list_free(&cl);
}

/* ---- the tolerance catches a lost position ------------------------------------------------ */

/* The reference over positions 1..T-1 only: attention that drops position 0 (an off-by-one in
 * a tile loop). */
static void drop_first(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    kb_attn_shape s;
    kb_attn_decode_shape(c->p, &s);
    const size_t row = (size_t)(s.kv_heads * s.D) * (s.kv_f16 ? 2 : 4);
    kb_tensor sub[3] = {in[0], in[1], in[2]};
    sub[1].data = (char *)in[1].data + row;
    sub[2].data = (char *)in[2].data + row;
    s.T -= 1;
    s.p0 -= 1;
    kb_attn_reference(&s, sub, out);
}

static void test_tolerance_catches_lost_position(void **st)
{
    (void)st;
    static const kb_impl broken = {.family = "attn_decode", .name = "t_drop_first",
                                   .backend = KB_BACKEND_CPU, .cpu_run = drop_first};
    const kb_impl *impls[] = {&broken};
    const char *line = "attn_decode heads=8 kv_heads=2 head_dim=128 T=64,1024";
    kb_case_list cl = {0};
    kbt_cases(&cl, &line, 1);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.no_vulkan = 1;
    o.n_threads = 1;
    o.threads[0] = 1;
    o.registry_impls_off = 1;
    o.extra_impls = impls;
    o.n_extra_impls = 1;
    kb_results r = {0};
    assert_int_equal(kb_run(&o, &cl, &r), 2);
    for (int i = 0; i < r.n; i++)
        print_message("dropping position 0 at T=%lld: nmse %.3g (tolerance %.3g)\n",
                      (long long)kb_case_param(&r.v[i].c, "T"), r.v[i].nmse, r.v[i].tol);
    kb_results_free(&r);
    kb_case_list_free(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_rules),
        cmocka_unit_test(test_softmax_merge),
        cmocka_unit_test(test_exp2),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_tolerance_catches_lost_position),
        cmocka_unit_test(test_decode_odd_lengths),
        cmocka_unit_test(test_decode_gqa),
        cmocka_unit_test(test_decode_splits),
        cmocka_unit_test(test_decode_threads),
        cmocka_unit_test(test_prefill_shapes),
        cmocka_unit_test(test_prefill_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
