/* gdn_conv: the causal depthwise conv1d of a GatedDeltaNet block (KERNELS.md section 5), width 4,
 * then SiLU. Per sequence b and channel c, over the virtual sequence [3 rows of state | n new
 * tokens]: virt(p) = state[b][p][c] for p < 3, x[b][p-3][c] after;
 *     y[b][t][c] = silu(sum_{j<4} w[c][j] virt(t + j)),   state1[b][r][c] = virt(n + r)
 * (the new state is the last 3 inputs; for n < 3 it keeps rows of the old one). f32:
 * x, y [batch][n][channels], w [channels][4], state, state1 [batch][3][channels]. */
#include <stdio.h>
#include <string.h>

#include "gdn_common.h"

enum { CV_BATCH, CV_N, CV_CH };
enum { CV_X, CV_W, CV_STATE }; /* inputs */
enum { CV_Y, CV_STATE1 };      /* outputs */

static void desc(kb_tensor *t, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = KB_F32;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = ndim > 2 ? d2 : 0;
    t->bytes = (size_t)(d0 * d1 * (ndim > 2 ? d2 : 1)) * 4;
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    desc(&in[CV_X], "x", 3, p[CV_BATCH], p[CV_N], p[CV_CH]);
    desc(&in[CV_W], "w", 2, p[CV_CH], 4, 0);
    desc(&in[CV_STATE], "state", 3, p[CV_BATCH], 3, p[CV_CH]);
    desc(&out[CV_Y], "y", 3, p[CV_BATCH], p[CV_N], p[CV_CH]);
    desc(&out[CV_STATE1], "state1", 3, p[CV_BATCH], 3, p[CV_CH]);
    *ni = 3;
    *no = 2;
    return 0;
}

static int validate(const int64_t *p, char *err, size_t n)
{
    if (p[CV_BATCH] * p[CV_N] * p[CV_CH] > (1LL << 31)) {
        snprintf(err, n, "x and y would hold more than 2^31 elements");
        return -1;
    }
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    const int64_t ch = p[CV_CH];
    float *x = in[CV_X].data, *w = in[CV_W].data, *st = in[CV_STATE].data;
    const int out = dist == KB_INPUTS_OUTLIERS; /* channels 3 and ch-5 100x larger */
    for (int64_t i = 0; i < kb_tensor_numel(&in[CV_X]); i++) {
        const int64_t c = i % ch;
        x[i] = (out && (c == 3 || c == ch - 5) ? 100.0f : 1.0f) * gdn_normalish(rng);
    }
    for (int64_t i = 0; i < ch * 4; i++)
        w[i] = 0.5f * gdn_normalish(rng);
    for (int64_t i = 0; i < kb_tensor_numel(&in[CV_STATE]); i++)
        st[i] = gdn_normalish(rng);
}

/* virt(p) of sequence b, channel c */
static double virt(const int64_t *p, const kb_tensor *in, int64_t b, int64_t pos, int64_t c)
{
    const int64_t ch = p[CV_CH];
    const float *x = in[CV_X].data, *st = in[CV_STATE].data;
    return pos < 3 ? st[(b * 3 + pos) * ch + c] : x[(b * p[CV_N] + pos - 3) * ch + c];
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int64_t ch = p[CV_CH], n = p[CV_N];
    const float *w = in[CV_W].data;
    float *y = out[CV_Y].data, *st1 = out[CV_STATE1].data;
    for (int64_t b = 0; b < p[CV_BATCH]; b++) {
        for (int64_t t = 0; t < n; t++)
            for (int64_t c = 0; c < ch; c++) {
                double a = 0;
                for (int j = 0; j < 4; j++)
                    a += w[c * 4 + j] * virt(p, in, b, t + j, c);
                y[(b * n + t) * ch + c] = (float)gdn_silu(a);
            }
        for (int64_t r = 0; r < 3; r++)
            for (int64_t c = 0; c < ch; c++)
                st1[(b * 3 + r) * ch + c] = (float)virt(p, in, b, n + r, c);
    }
}

/* y: the four products' magnitudes (the sum's rounding), plus |y| (1 + |a|) for SiLU's exp,
 * whose argument error grows with |a|. state1 is a copy: its scale is the value (exact). */
static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    const int64_t ch = p[CV_CH], n = p[CV_N];
    const float *w = in[CV_W].data;
    for (int64_t b = 0; b < p[CV_BATCH]; b++) {
        if (o == CV_STATE1) {
            for (int64_t r = 0; r < 3; r++)
                for (int64_t c = 0; c < ch; c++)
                    scale[(b * 3 + r) * ch + c] = fabs(virt(p, in, b, n + r, c));
            continue;
        }
        for (int64_t t = 0; t < n; t++)
            for (int64_t c = 0; c < ch; c++) {
                double a = 0, m = 0;
                for (int j = 0; j < 4; j++) {
                    const double term = w[c * 4 + j] * virt(p, in, b, t + j, c);
                    a += term;
                    m += fabs(term);
                }
                scale[(b * n + t) * ch + c] = m + fabs(gdn_silu(a)) * (1.0 + fabs(a));
            }
    }
}

static double bytes(const int64_t *p)
{
    const double ch = (double)p[CV_CH], rows = (double)(p[CV_BATCH] * p[CV_N]);
    return 4.0 * (2.0 * rows * ch + 4.0 * ch + 6.0 * (double)p[CV_BATCH] * ch);
}

static double flops(const int64_t *p)
{
    return 12.0 * (double)(p[CV_BATCH] * p[CV_N] * p[CV_CH]); /* 4 FMAs and SiLU */
}

const kb_family kb_family_gdn_conv = {
    .name = "gdn_conv",
    .suite = "gdn",
    .help = "GatedDeltaNet causal depthwise conv1d (width 4) + SiLU, with its 3-row state",
    .nparams = 3,
    .params = {{"batch", 1, 1, 64, "sequences, each with its own conv state"},
               {"n", 1, 1, 16384, "tokens per sequence"},
               {"channels", 12288, 1, 1 << 16, "channels (Qwen3.5: 2 hk dk + hv dv = 12288)"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 0x7u,
    .tol_nmse = 1e-10,
    .condition = condition,
    /* f32: a 4-term sum and SiLU (a few ulp of exp): measured in tests/gdn; see the impls */
    .tol_cond = 1e-6,
    .test_shape = "batch=2 n=5 channels=37",
};
