/* residual: y = a + b, elementwise over [tokens][cols]: the residual connections (y may alias
 * a: the model adds in place into its hidden state). */
#include "glue_common.h"

enum { RS_A, RS_B }; /* inputs; output y */

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    static const char *const names[] = {"a", "b", "y"};
    kb_ew_describe(p, 2, names, KB_F32, in, ni, out, no);
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    kb_glue_fill(in[RS_A].data, p[EW_TOKENS], p[EW_COLS], 3.0f, rng, dist); /* the stream */
    kb_glue_fill(in[RS_B].data, p[EW_TOKENS], p[EW_COLS], 0.5f, rng, dist); /* a sublayer */
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const float *a = in[RS_A].data, *b = in[RS_B].data;
    float *y = out[0].data;
    for (int64_t i = 0; i < p[EW_TOKENS] * p[EW_COLS]; i++)
        y[i] = (float)((double)a[i] + b[i]);
}

static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    const float *a = in[RS_A].data, *b = in[RS_B].data;
    for (int64_t i = 0; i < p[EW_TOKENS] * p[EW_COLS]; i++)
        scale[i] = fabs((double)a[i]) + fabs((double)b[i]) + KB_GLUE_FLOOR;
}

static double bytes(const int64_t *p) { return kb_ew_bytes(p, 2, 4); }
static double flops(const int64_t *p) { return (double)(p[EW_TOKENS] * p[EW_COLS]); }

const kb_family kb_family_residual = {
    .name = "residual",
    .suite = "model",
    .help = "residual add: y = a + b, elementwise",
    KB_EW_PARAMS,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .tol_nmse = 1e-12,
    .condition = condition,
    .tol_cond = 1e-7, /* one f32 addition: at most 2^-24 of |a| + |b| */
    .test_shape = "cols=77 tokens=3",
};
