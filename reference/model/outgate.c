/* outgate: y = x * sigmoid(g), elementwise over [tokens][cols]: the output gate of Qwen3.5's
 * full attention (x the attention output, g the gate half of its query projection). */
#include "glue_common.h"

enum { OG_X, OG_G }; /* inputs; output y */

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    static const char *const names[] = {"x", "gate", "y"};
    kb_ew_describe(p, 2, names, KB_F32, in, ni, out, no);
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    kb_glue_fill(in[OG_X].data, p[EW_TOKENS], p[EW_COLS], 1.0f, rng, dist);
    kb_glue_fill(in[OG_G].data, p[EW_TOKENS], p[EW_COLS], 2.0f, rng, dist);
}

static void walk(const int64_t *p, const kb_tensor *in, float *y, double *scale)
{
    const float *x = in[OG_X].data, *g = in[OG_G].data;
    for (int64_t i = 0; i < p[EW_TOKENS] * p[EW_COLS]; i++) {
        const double v = (double)x[i] * kb_glue_sigmoid(g[i]);
        if (y)
            y[i] = (float)v;
        else
            scale[i] = fabs(v) + fabs((double)x[i]) * KB_GLUE_FLUSH + KB_GLUE_FLOOR; /* as swiglu */
    }
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    walk(p, in, out[0].data, NULL);
}

static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    walk(p, in, NULL, scale);
}

static double bytes(const int64_t *p) { return kb_ew_bytes(p, 2, 4); }
static double flops(const int64_t *p) { return 4.0 * (double)(p[EW_TOKENS] * p[EW_COLS]); }

const kb_family kb_family_outgate = {
    .name = "outgate",
    .suite = "model",
    .help = "output gate: y = x * sigmoid(gate), elementwise (Qwen3.5 full attention)",
    KB_EW_PARAMS,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .tol_nmse = 1e-12,
    .condition = condition,
    .tol_cond = 4e-6, /* as swiglu's: exp, a division, a product in f32 */
    .test_shape = "cols=77 tokens=3",
};
