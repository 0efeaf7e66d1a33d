/* cvt_f16: y = f16(x), round to nearest even, elementwise over [tokens][cols]: the model stores
 * new K and V rows into its f16 cache with it (the output bound at the cache row of position
 * p0). Values must be finite in f16 (|x| <= 65504). */
#include "glue_common.h"

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    static const char *const names[] = {"x", "y"};
    kb_ew_describe(p, 1, names, KB_F16, in, ni, out, no);
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    kb_glue_fill(in[0].data, p[EW_TOKENS], p[EW_COLS], 2.0f, rng, dist);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const float *x = in[0].data;
    uint16_t *y = out[0].data;
    for (int64_t i = 0; i < p[EW_TOKENS] * p[EW_COLS]; i++)
        y[i] = kb_f32_to_f16(x[i]);
}

/* One rounding to f16: its error is relative to |x| down to the smallest normal f16 (2^-14),
 * absolute below it (subnormal steps of 2^-24). */
static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    const float *x = in[0].data;
    for (int64_t i = 0; i < p[EW_TOKENS] * p[EW_COLS]; i++)
        scale[i] = fabs((double)x[i]) + 0x1p-14;
}

static double bytes(const int64_t *p) { return kb_ew_bytes(p, 1, 2); }
static double flops(const int64_t *p) { return (double)(p[EW_TOKENS] * p[EW_COLS]); }

const kb_family kb_family_cvt_f16 = {
    .name = "cvt_f16",
    .suite = "model",
    .help = "y = f16(x), round to nearest even: K/V rows into an f16 cache",
    KB_EW_PARAMS,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .tol_nmse = 1e-12,
    .condition = condition,
    /* round to nearest even matches the reference exactly; 1e-3 (> one f16 ulp, 2^-10) admits
     * a device whose conversion rounds otherwise (GLSL leaves packHalf2x16's rounding open) */
    .tol_cond = 1e-3,
    .test_shape = "cols=77 tokens=3",
};
