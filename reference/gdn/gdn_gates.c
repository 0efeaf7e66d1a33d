/* gdn_gates: the decay and the write strength of a GatedDeltaNet block (KERNELS.md section 5):
 *     g[t][h] = exp(-exp(A_log[h]) * softplus(a[t][h] + dt_bias[h])),   beta[t][h] = sigmoid(b[t][h])
 * f32: A_log, dt_bias [hv]; a, b, g, beta [n][hv] (n: tokens of any sequences). */
#include <stdio.h>
#include <string.h>

#include "gdn_common.h"

enum { GT_N, GT_HV };
enum { GT_ALOG, GT_A, GT_DTB, GT_B }; /* inputs */
enum { GT_G, GT_BETA };               /* outputs */

static void desc(kb_tensor *t, const char *name, int ndim, int64_t d0, int64_t d1)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = KB_F32;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->bytes = (size_t)(d0 * (ndim > 1 ? d1 : 1)) * 4;
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    desc(&in[GT_ALOG], "A_log", 1, p[GT_HV], 0);
    desc(&in[GT_A], "a", 2, p[GT_N], p[GT_HV]);
    desc(&in[GT_DTB], "dt_bias", 1, p[GT_HV], 0);
    desc(&in[GT_B], "b", 2, p[GT_N], p[GT_HV]);
    desc(&out[GT_G], "g", 2, p[GT_N], p[GT_HV]);
    desc(&out[GT_BETA], "beta", 2, p[GT_N], p[GT_HV]);
    *ni = 4;
    *no = 2;
    return 0;
}

/* extreme: a and b up to +-60 (softplus linear, exp overflow paths, sigmoid saturated both
 * ways, g underflowing to 0 and rounding to 1), A_log in [-5, 5]. */
static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    const int64_t hv = p[GT_HV], n = p[GT_N];
    float *Al = in[GT_ALOG].data, *a = in[GT_A].data, *dtb = in[GT_DTB].data, *b = in[GT_B].data;
    for (int64_t h = 0; h < hv; h++) {
        double x, y;
        gdn_head_gate_params(rng, &x, &y);
        Al[h] = dist == KB_INPUTS_EXTREME ? kb_rng_uniform(rng, -5.0f, 5.0f) : (float)x;
        dtb[h] = (float)y;
    }
    for (int64_t i = 0; i < n * hv; i++) {
        if (dist == KB_INPUTS_EXTREME) {
            a[i] = kb_rng_uniform(rng, -60.0f, 60.0f);
            b[i] = kb_rng_uniform(rng, -60.0f, 60.0f);
        } else {
            a[i] = gdn_normalish(rng);
            b[i] = gdn_normalish(rng);
        }
    }
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int64_t hv = p[GT_HV];
    const float *Al = in[GT_ALOG].data, *a = in[GT_A].data, *dtb = in[GT_DTB].data,
                *b = in[GT_B].data;
    float *g = out[GT_G].data, *beta = out[GT_BETA].data;
    for (int64_t i = 0; i < p[GT_N] * hv; i++) {
        g[i] = (float)gdn_gate_g(Al[i % hv], a[i], dtb[i % hv]);
        beta[i] = (float)gdn_sigmoid(b[i]);
    }
}

/* Relative error bounds in units of eps. g = exp(-y), y = A sp, A = exp(A_log), sp =
 * softplus(x), x = a + dt_bias: x rounds (|a| + |dt_bias|), which moves sp by sigmoid(x) times
 * that; A's exp has an argument error ~|A_log|; g's exp one ~|y|: scale(g) = g (1 + y (1 +
 * |A_log|) + A sigmoid(x) (|a| + |dt_bias|)). beta = 1 / (1 + exp(-b)): scale = beta (1 + (1 -
 * beta) |b|). Both at least 1e-30: a gate below it is a complete reset however it rounds
 * (f32 denormals, flushed or not). */
static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    const int64_t hv = p[GT_HV];
    const float *Al = in[GT_ALOG].data, *a = in[GT_A].data, *dtb = in[GT_DTB].data,
                *b = in[GT_B].data;
    for (int64_t i = 0; i < p[GT_N] * hv; i++) {
        double s;
        if (o == GT_G) {
            const double x = (double)a[i] + dtb[i % hv], A = exp(Al[i % hv]);
            const double y = A * gdn_softplus(x), g = exp(-y);
            s = g * (1.0 + y * (1.0 + fabs(Al[i % hv])) +
                     A * gdn_sigmoid(x) * (fabs(a[i]) + fabs(dtb[i % hv])));
        } else {
            const double be = gdn_sigmoid(b[i]);
            s = be * (1.0 + (1.0 - be) * fabs(b[i]));
        }
        scale[i] = s > 1e-30 ? s : 1e-30;
    }
}

static double bytes(const int64_t *p) { return 4.0 * (4.0 * (double)(p[GT_N] * p[GT_HV]) + 2.0 * (double)p[GT_HV]); }
static double flops(const int64_t *p) { return 20.0 * (double)(p[GT_N] * p[GT_HV]); }

const kb_family kb_family_gdn_gates = {
    .name = "gdn_gates",
    .suite = "gdn",
    .help = "GatedDeltaNet gates: g = exp(-exp(A_log) softplus(a + dt_bias)), beta = sigmoid(b)",
    .nparams = 2,
    .params = {{"n", 1, 1, 1 << 20, "tokens (of any sequences)"},
               {"hv", 64, 1, GD_MAX_HEADS, "value heads"}},
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_EXTREME),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 0xFu,
    .tol_nmse = 1e-10,
    .condition = condition,
    .tol_cond = 1e-6,
    .test_shape = "n=9 hv=13",
};
