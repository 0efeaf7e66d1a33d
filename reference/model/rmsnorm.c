/* rmsnorm: y[r][c] = x[r][c] * w[c] / sqrt(mean_c(x[r][c]^2) + eps), per row. The pre-attention
 * and pre-FFN norms (rows = tokens, cols = hidden), the final norm, and the per-head QK-norm of
 * Qwen3 (rows = tokens * heads, cols = head_dim, w shared by the heads). eps = 10^-eps_exp. */
#include <stdio.h>

#include "glue_common.h"

enum { RN_ROWS, RN_COLS, RN_EPS };
enum { RN_X, RN_W }; /* inputs */
enum { RN_Y };       /* outputs */

double kb_rmsnorm_eps(const int64_t *p) { return pow(10.0, -(double)p[RN_EPS]); }

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    kb_glue_desc(&in[RN_X], "x", KB_F32, 2, p[RN_ROWS], p[RN_COLS], 0);
    kb_glue_desc(&in[RN_W], "w", KB_F32, 1, p[RN_COLS], 0, 0);
    kb_glue_desc(&out[RN_Y], "y", KB_F32, 2, p[RN_ROWS], p[RN_COLS], 0);
    *ni = 2;
    *no = 1;
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    /* a residual stream of RMS ~3 (any scale: the norm removes it), weights near 1 */
    kb_glue_fill(in[RN_X].data, p[RN_ROWS], p[RN_COLS], 3.0f, rng, dist);
    float *w = in[RN_W].data;
    for (int64_t c = 0; c < p[RN_COLS]; c++)
        w[c] = kb_rng_uniform(rng, 0.5f, 1.5f);
}

/* 1 / sqrt(mean(x^2) + eps) of one row, in double. */
static double inv_rms(const float *x, int64_t n, double eps)
{
    double s = 0;
    for (int64_t c = 0; c < n; c++)
        s += (double)x[c] * x[c];
    return 1.0 / sqrt(s / (double)n + eps);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int64_t cols = p[RN_COLS];
    const float *w = in[RN_W].data;
    for (int64_t r = 0; r < p[RN_ROWS]; r++) {
        const float *x = (const float *)in[RN_X].data + r * cols;
        float *y = (float *)out[RN_Y].data + r * cols;
        const double s = inv_rms(x, cols, kb_rmsnorm_eps(p));
        for (int64_t c = 0; c < cols; c++)
            y[c] = (float)((double)x[c] * s * w[c]);
    }
}

/* An element is x * w * s, s from a sum of squares (no cancellation: the sum is the sum of the
 * absolute values of its terms, so an f32 sum's conditioned error carries to s halved). So the
 * scale is the element's magnitude; the tolerance covers the f32 sum. */
static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    const int64_t cols = p[RN_COLS];
    const float *w = in[RN_W].data;
    for (int64_t r = 0; r < p[RN_ROWS]; r++) {
        const float *x = (const float *)in[RN_X].data + r * cols;
        const double s = inv_rms(x, cols, kb_rmsnorm_eps(p));
        for (int64_t c = 0; c < cols; c++)
            scale[r * cols + c] = fabs((double)x[c] * s * w[c]) + KB_GLUE_FLOOR;
    }
}

static double bytes(const int64_t *p)
{
    return 4.0 * (double)p[RN_COLS] * (2.0 * (double)p[RN_ROWS] + 1.0);
}

static double flops(const int64_t *p) { return 4.0 * (double)p[RN_ROWS] * (double)p[RN_COLS]; }

const kb_family kb_family_rmsnorm = {
    .name = "rmsnorm",
    .suite = "model",
    .help = "RMSNorm per row: y = x * w / sqrt(mean(x^2) + 10^-eps_exp) (also per-head QK-norm)",
    .nparams = 3,
    .params = {{"rows", 1, 1, 1 << 20, "rows normalized (tokens, or tokens x heads for QK-norm)"},
               {"cols", 4096, 1, 1 << 16, "row length (hidden size, or head_dim)"},
               {"eps_exp", 5, 1, 12, "eps = 10^-eps_exp (Llama 3: 5, Qwen3: 6)"}},
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .tol_nmse = 1e-12,
    .condition = condition,
    /* f32 kernels: the sum of squares in f32 (relative error ~sqrt(cols) * 2^-24 in any order
     * for random data, 1.5e-5 at cols = 65536, halved in s) and a few roundings per element */
    .tol_cond = 2e-5,
    .test_shape = "rows=3 cols=77",
};
