/* swiglu: y = silu(g) * u = g * sigmoid(g) * u, elementwise over [tokens][cols]: the FFN's gate
 * (g = W_gate x) times its up projection (u = W_up x), before W_down. */
#include "glue_common.h"

enum { SG_G, SG_U }; /* inputs; output y */

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    static const char *const names[] = {"gate", "up", "y"};
    kb_ew_describe(p, 2, names, KB_F32, in, ni, out, no);
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    /* projections of a normalized x: unit scale; the gate wide enough to reach silu's tails */
    kb_glue_fill(in[SG_G].data, p[EW_TOKENS], p[EW_COLS], 2.0f, rng, dist);
    kb_glue_fill(in[SG_U].data, p[EW_TOKENS], p[EW_COLS], 1.0f, rng, dist);
}

static void walk(const int64_t *p, const kb_tensor *in, float *y, double *scale)
{
    const float *g = in[SG_G].data, *u = in[SG_U].data;
    for (int64_t i = 0; i < p[EW_TOKENS] * p[EW_COLS]; i++) {
        const double v = (double)g[i] * kb_glue_sigmoid(g[i]) * u[i];
        if (y)
            y[i] = (float)v;
        else
            /* one product: its own magnitude; and where sigmoid(g) < FLT_MIN (g < -87) it
             * is subnormal in f32, absolutely off by up to FLT_MIN 2^-23, times |g u| */
            scale[i] = fabs(v) + (1.0 + fabs((double)g[i])) * fabs((double)u[i]) * KB_GLUE_FLUSH +
                       KB_GLUE_FLOOR;
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
static double flops(const int64_t *p) { return 5.0 * (double)(p[EW_TOKENS] * p[EW_COLS]); }

const kb_family kb_family_swiglu = {
    .name = "swiglu",
    .suite = "model",
    .help = "SwiGLU: y = silu(gate) * up, elementwise",
    KB_EW_PARAMS,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .tol_nmse = 1e-12,
    .condition = condition,
    /* f32: exp to a few ulp, a division and two products: ~1e-6 of |y| at most */
    .tol_cond = 4e-6,
    .test_shape = "cols=77 tokens=3",
};
