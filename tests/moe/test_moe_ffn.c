/* moe_ffn and moe_layer: shape errors; tensors and cost model; the reference against an
 * independent per-token evaluation (the common dequantizers, every matrix whole); the
 * conditioned bound covers |y - h|; the CPU kernels on every format and group, the three shared
 * modes, odd sizes (tails of 32 values), tokens 1..19 (tiles of 4), outliers and zeros. */
#include <math.h>
#include <stdlib.h>

#include "affine_formats.h"
#include "ggml_formats.h"
#include "moe_ffn.h"
#include "moe_layer.h"
#include "moe_test.h"

static void test_shape_errors(void **st)
{
    (void)st;
    moe_expect_error("moe_ffn E=8 K=9", "K=9 > E=8");
    moe_expect_error("moe_ffn hidden=96", "hidden=96 is not a multiple of group=64");
    moe_expect_error("moe_ffn ffn=100 group=32", "ffn=100 is not a multiple of group=32");
    moe_expect_error("moe_ffn group=48", "must be 32, 64 or 128");
    moe_expect_error("moe_ffn format=2 group=64", "q4_0 blocks are 32 weights");
    moe_expect_error("moe_ffn format=2 hidden=48", "hidden=48 is not a multiple of group=32");
    moe_expect_error("moe_ffn shared=3", "out of range");
    moe_expect_error("moe_layer E=100 route=2", "E=100 is not a multiple of groups=8");
    moe_expect_error("moe_layer E=8 K=9", "K=9 > E=8");
    moe_expect_error("moe_layer hidden=96", "hidden=96 is not a multiple of group=64");
}

static void test_tensors_and_cost(void **st)
{
    (void)st;
    const kb_family *f = kb_family_find("moe_ffn");
    kb_case_list cl = {0};
    char err[256];
    assert_int_equal(kb_suite_parse_line("moe_ffn tokens=1 E=512 K=10 hidden=4096 ffn=1024", &cl,
                                         err, sizeof err),
                     0);
    kb_tensor in[KB_MAX_TENSORS], out[KB_MAX_TENSORS];
    int ni, no;
    assert_int_equal(f->describe(cl.v[0].p, in, &ni, out, &no), 0);
    assert_int_equal(ni, 8); /* x h ids weights W scales biases sg */
    assert_int_equal(no, 1);
    assert_int_equal(in[MF_W].shape[0], 513); /* 512 routed + the shared expert */
    const double expert = 3.0 * 1024 * 4096 / 2 + 4.0 * 3 * 1024 * 4096 / 64;
    assert_int_equal((int64_t)in[MF_W].shape[1], 3 * 1024 * 4096 / 2);
    assert_true(f->rotated_read(cl.v[0].p) == 11 * expert);
    assert_true(f->bytes(cl.v[0].p) == 11 * expert + 3 * 4.0 * 4096 + 8.0 * 10 + 4.0 * 4096);
    assert_true(f->flops(cl.v[0].p) == 2.0 * 3 * 1024 * 4096 * 11 + 2.0 * 4096);
    kb_case_list_free(&cl);
    cl = (kb_case_list){0};
    assert_int_equal(kb_suite_parse_line("moe_ffn format=2 shared=0", &cl, err, sizeof err), 0);
    assert_int_equal(f->describe(cl.v[0].p, in, &ni, out, &no), 0);
    assert_int_equal(ni, 5); /* no scales, biases, sg */
    assert_int_equal((int64_t)in[MF_W].shape[1], 3 * 1024 * 4096 / 32 * 18);
    kb_case_list_free(&cl);
}

/* ---- the reference against a plain per-token evaluation --------------------------------- */

static void dequant_matrix(const kb_moe_ffn *f, const kb_tensor *in, const kb_moe_ffn_in *ix,
                           int e, int m, float *w)
{
    const int64_t rows = m == 2 ? f->hidden : f->ffn, cols = m == 2 ? f->ffn : f->hidden;
    const int64_t rb = m == 2 ? f->rb_f : f->rb_h, ng = m == 2 ? f->ng_f : f->ng_h;
    const int64_t off = m == 0 ? f->off_gate : m == 1 ? f->off_up : f->off_down;
    const int64_t goff = m == 0 ? f->goff_gate : m == 1 ? f->goff_up : f->goff_down;
    const uint8_t *W = (const uint8_t *)in[MF_W].data + e * f->expert_bytes + off;
    for (int64_t r = 0; r < rows; r++) {
        if (f->affine) {
            const int64_t g0 = e * f->expert_groups + goff + r * ng;
            uint32_t *words = malloc((size_t)rb);
            memcpy(words, W + r * rb, (size_t)rb);
            kb_dequantize_affine(words, (const uint16_t *)in[ix->sc].data + g0,
                                 (const uint16_t *)in[ix->bi].data + g0, w + r * cols, cols,
                                 f->bits, f->group);
            free(words);
        } else {
            kb_dequantize_q4_0((const block_q4_0 *)(W + r * rb), w + r * cols, cols);
        }
    }
}

static void check_against_plain(const char *line)
{
    const kb_family *fam = kb_family_find("moe_ffn");
    kb_case_list cl = {0};
    char err[256];
    assert_int_equal(kb_suite_parse_line(line, &cl, err, sizeof err), 0);
    const int64_t *p = cl.v[0].p;
    kb_moe_ffn f;
    kb_moe_ffn_from_params(p, &f);
    const kb_moe_ffn_in ix = kb_moe_ffn_inputs(&f, MF_W + 1);
    kb_tensor d[KB_MAX_TENSORS], dout[KB_MAX_TENSORS], in[KB_MAX_TENSORS], out[1];
    int ni, no;
    assert_int_equal(fam->describe(p, d, &ni, dout, &no), 0);
    for (int i = 0; i < ni; i++)
        assert_int_equal(kb_tensor_alloc(&in[i], d[i].name, d[i].dtype, d[i].ndim, d[i].shape), 0);
    assert_int_equal(kb_tensor_alloc(&out[0], "y", KB_F32, dout[0].ndim, dout[0].shape), 0);
    kb_rng rng;
    kb_rng_seed(&rng, 7);
    fam->generate(p, in, &rng, KB_INPUTS_RANDOM);
    fam->reference(p, in, out);
    /* plain: every matrix dequantized whole, token by token, slot by slot */
    const int64_t H = f.hidden, F = f.ffn;
    float *wg = malloc(sizeof(float) * (size_t)(F * H)), *wu = malloc(sizeof(float) * (size_t)(F * H));
    float *wd = malloc(sizeof(float) * (size_t)(H * F));
    double *a = malloc(sizeof(double) * (size_t)F);
    double se = 0, s2 = 0;
    for (int64_t t = 0; t < f.tokens; t++) {
        const float *x = (const float *)in[MF_X].data + t * H;
        double *y = calloc((size_t)H, sizeof(double));
        for (int j = 0; j < f.S; j++) {
            const int e = j < f.K ? ((const int32_t *)in[MF_IDS].data)[t * f.K + j] : f.E;
            double wt = 1.0;
            if (j < f.K) {
                wt = ((const float *)in[MF_WEIGHTS].data)[t * f.K + j];
            } else if (f.shared == MOE_SHARED_GATED) {
                double z = 0;
                for (int64_t c = 0; c < H; c++)
                    z += (double)((const float *)in[ix.sg].data)[c] * x[c];
                wt = 1 / (1 + exp(-z));
            }
            dequant_matrix(&f, in, &ix, e, 0, wg);
            dequant_matrix(&f, in, &ix, e, 1, wu);
            dequant_matrix(&f, in, &ix, e, 2, wd);
            for (int64_t r = 0; r < F; r++) {
                double g = 0, u = 0;
                for (int64_t c = 0; c < H; c++) {
                    g += (double)wg[r * H + c] * x[c];
                    u += (double)wu[r * H + c] * x[c];
                }
                a[r] = g / (1 + exp(-g)) * u;
            }
            for (int64_t r = 0; r < H; r++) {
                double v = 0;
                for (int64_t c = 0; c < F; c++)
                    v += (double)wd[r * F + c] * a[c];
                y[r] += wt * v;
            }
        }
        for (int64_t r = 0; r < H; r++) {
            const double want = ((const float *)in[MF_H].data)[t * H + r] + y[r];
            const double got = ((const float *)out[0].data)[t * H + r];
            se += (got - want) * (got - want);
            s2 += want * want;
        }
        free(y);
    }
    if (!(se / s2 < 1e-13))
        fail_msg("%s: the reference differs from the plain evaluation, nmse %g", line, se / s2);
    /* the conditioned bound covers what it bounds: |y - h| <= scale */
    double *scale = malloc(sizeof(double) * (size_t)(f.tokens * H));
    fam->condition(p, in, 0, scale);
    for (int64_t i = 0; i < f.tokens * H; i++) {
        const double dy = fabs((double)((const float *)out[0].data)[i] - ((const float *)in[MF_H].data)[i]);
        if (!(scale[i] >= dy * (1 - 1e-6)))
            fail_msg("%s: bound %g below |y - h| = %g at %lld", line, scale[i], dy, (long long)i);
    }
    free(scale);
    free(wg);
    free(wu);
    free(wd);
    free(a);
    for (int i = 0; i < ni; i++)
        kb_tensor_free(&in[i]);
    kb_tensor_free(&out[0]);
    kb_case_list_free(&cl);
}

static void test_reference(void **st)
{
    (void)st;
    check_against_plain("moe_ffn tokens=3 E=5 K=2 hidden=64 ffn=96 format=0 group=32 shared=1");
    check_against_plain("moe_ffn tokens=2 E=4 K=3 hidden=128 ffn=128 format=1 group=128 shared=2");
    check_against_plain("moe_ffn tokens=4 E=3 K=1 hidden=96 ffn=32 format=2 shared=0");
    check_against_plain("moe_ffn tokens=1 E=6 K=6 hidden=64 ffn=64 format=0 shared=1");
}

/* ---- the kernels ------------------------------------------------------------------------- */

static const char *const ffn_odd[] = {
    "moe_ffn tokens=1 E=8 K=3 hidden=256 ffn=128 format=0 shared=1",
    "moe_ffn tokens=1 E=1 K=1 hidden=32 ffn=32 format=0 group=32 shared=0",
    "moe_ffn tokens=1 E=8 K=3 hidden=384 ffn=192 format=1 group=64 shared=2",
    "moe_ffn tokens=1 E=8 K=3 hidden=96 ffn=160 format=2 shared=1",
    "moe_ffn tokens=9 E=8 K=3 hidden=96 ffn=160 format=0 group=32 shared=2",
    "moe_ffn tokens=9 E=8 K=3 hidden=96 ffn=160 format=1 group=32 shared=0",
    "moe_ffn tokens=6 E=8 K=3 hidden=288 ffn=224 format=2 shared=1",
    "moe_ffn tokens=19 E=16 K=4 hidden=512 ffn=256 format=0 group=128 shared=1",
    "moe_ffn tokens=17 E=5 K=5 hidden=128 ffn=384 format=1 group=128 shared=0",
    "moe_ffn tokens=2 E=64 K=8 hidden=1024 ffn=256 format=0 group=64 shared=1",
};

static void test_ffn_cpu(void **st)
{
    (void)st;
    moe_check("avx512vnni", 0, KB_INPUTS_RANDOM, ffn_odd, (int)(sizeof ffn_odd / sizeof ffn_odd[0]));
}

static void test_ffn_cpu_outliers_zeros(void **st)
{
    (void)st;
    static const char *const l[] = {
        "moe_ffn tokens=1 E=16 K=4 hidden=512 ffn=256 format=0 shared=1",
        "moe_ffn tokens=7 E=8 K=2 hidden=256 ffn=128 format=2 shared=2",
        "moe_ffn tokens=5 E=8 K=2 hidden=192 ffn=128 format=1 group=32 shared=1",
    };
    moe_check("avx512vnni", 0, KB_INPUTS_OUTLIERS, l, 3);
    moe_check("avx512vnni", 0, KB_INPUTS_ZEROS, l, 3);
}

static void test_layer_cpu(void **st)
{
    (void)st;
    static const char *const l[] = {
        "moe_layer tokens=1 E=64 K=8 hidden=512 ffn=256 route=1",
        "moe_layer tokens=70 E=32 K=4 hidden=256 ffn=128 route=2 format=2 shared=2",
        "moe_layer tokens=5 E=16 K=3 hidden=192 ffn=320 route=0 format=1 shared=0",
        "moe_layer tokens=1 E=256 K=8 hidden=128 ffn=64 route=2 shared=2",
    };
    moe_check("avx512vnni", 0, KB_INPUTS_RANDOM, l, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_errors), cmocka_unit_test(test_tensors_and_cost),
        cmocka_unit_test(test_reference),    cmocka_unit_test(test_ffn_cpu),
        cmocka_unit_test(test_ffn_cpu_outliers_zeros), cmocka_unit_test(test_layer_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
