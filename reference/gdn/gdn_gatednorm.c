/* gdn_gatednorm: the output-gated RMS norm after a GatedDeltaNet recurrence (KERNELS.md section 5):
 *     y = o / sqrt(mean(o^2) + 1e-6) * w * silu(z)      per (token, value head), over dv
 * f32: o, z, y [n][hv][dv], w [dv] (n: tokens of any sequences). */
#include <stdio.h>
#include <string.h>

#include "gdn_common.h"

enum { GN_N, GN_HV, GN_DV };
enum { GN_O, GN_Z, GN_W }; /* inputs */
enum { GN_Y };             /* output */

static void desc(kb_tensor *t, const char *name, int ndim, const int64_t *p)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = KB_F32;
    t->ndim = ndim;
    if (ndim == 1) {
        t->shape[0] = p[GN_DV];
        t->bytes = (size_t)p[GN_DV] * 4;
        return;
    }
    t->shape[0] = p[GN_N];
    t->shape[1] = p[GN_HV];
    t->shape[2] = p[GN_DV];
    t->bytes = (size_t)(p[GN_N] * p[GN_HV] * p[GN_DV]) * 4;
}

static int validate(const int64_t *p, char *err, size_t n)
{
    if (p[GN_DV] != 64 && p[GN_DV] != 128) {
        snprintf(err, n, "dv=%lld: must be 64 or 128", (long long)p[GN_DV]);
        return -1;
    }
    return 0;
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    desc(&in[GN_O], "o", 3, p);
    desc(&in[GN_Z], "z", 3, p);
    desc(&in[GN_W], "w", 1, p);
    desc(&out[GN_Y], "y", 3, p);
    *ni = 3;
    *no = 1;
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    const int64_t dv = p[GN_DV];
    float *o = in[GN_O].data, *z = in[GN_Z].data, *w = in[GN_W].data;
    for (int64_t i = 0; i < kb_tensor_numel(&in[GN_O]); i++) {
        const int64_t c = i % dv; /* outliers: channels 3 and dv-5 of o, 100x */
        o[i] = (dist == KB_INPUTS_OUTLIERS && (c == 3 || c == dv - 5) ? 100.0f : 1.0f) *
               gdn_normalish(rng);
        z[i] = gdn_normalish(rng);
    }
    for (int64_t i = 0; i < dv; i++)
        w[i] = 1.0f + 0.1f * gdn_normalish(rng); /* norm weights near 1 */
}

static double inv_rms(const float *o, int64_t dv)
{
    double ss = 0;
    for (int64_t i = 0; i < dv; i++)
        ss += (double)o[i] * o[i];
    return 1.0 / sqrt(ss / (double)dv + GD_NORM_EPS);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int64_t dv = p[GN_DV], rows = p[GN_N] * p[GN_HV];
    const float *o = in[GN_O].data, *z = in[GN_Z].data, *w = in[GN_W].data;
    float *y = out[GN_Y].data;
    for (int64_t r = 0; r < rows; r++) {
        const double f = inv_rms(o + r * dv, dv);
        for (int64_t i = 0; i < dv; i++)
            y[r * dv + i] = (float)(o[r * dv + i] * f * w[i] * gdn_silu(z[r * dv + i]));
    }
}

/* A product of factors: relative error, scale |y|, widened by (1 - sigmoid(z)) |z| for the exp
 * inside SiLU (its argument error grows with |z|). */
static void condition(const int64_t *p, const kb_tensor *in, int o_idx, double *scale)
{
    const int64_t dv = p[GN_DV], rows = p[GN_N] * p[GN_HV];
    const float *o = in[GN_O].data, *z = in[GN_Z].data, *w = in[GN_W].data;
    for (int64_t r = 0; r < rows; r++) {
        const double f = inv_rms(o + r * dv, dv);
        for (int64_t i = 0; i < dv; i++) {
            const double zi = z[r * dv + i];
            scale[r * dv + i] = fabs(o[r * dv + i] * f * w[i] * gdn_silu(zi)) *
                                (1.0 + (1.0 - gdn_sigmoid(zi)) * fabs(zi));
        }
    }
}

static double bytes(const int64_t *p) { return 12.0 * (double)(p[GN_N] * p[GN_HV] * p[GN_DV]) + 4.0 * (double)p[GN_DV]; }
static double flops(const int64_t *p) { return 10.0 * (double)(p[GN_N] * p[GN_HV] * p[GN_DV]); }

const kb_family kb_family_gdn_gatednorm = {
    .name = "gdn_gatednorm",
    .suite = "gdn",
    .help = "GatedDeltaNet output-gated RMSNorm: y = rmsnorm(o) * w * silu(z) per value head",
    .nparams = 3,
    .params = {{"n", 1, 1, 1 << 20, "tokens (of any sequences)"},
               {"hv", 64, 1, GD_MAX_HEADS, "value heads"},
               {"dv", 128, 64, 128, "value head size: 64 or 128"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 0x3u,
    .tol_nmse = 1e-10,
    .condition = condition,
    /* as gdn_qknorm (a sum of dv positive squares), plus a few ulp of SiLU's exp */
    .tol_cond = 4e-6,
    .test_shape = "n=3 hv=5 dv=64",
};
