/* gdn_qknorm: the per-head q/k normalization before a GatedDeltaNet recurrence (KERNELS.md
 * section 5), as the seed computes it (an RMS norm, eps on the mean square, then a scale):
 *     q' = q / sqrt(mean(q^2) + 1e-6) / dk       = l2norm(q) / sqrt(dk)
 *     k' = k / sqrt(mean(k^2) + 1e-6) / sqrt(dk) = l2norm(k)
 * f32: q, k, q', k' [n][hk][dk] (n: tokens of any sequences).
 * One of two families for the block's two norms: this one reads q and k, gdn_gatednorm reads
 * the recurrence output and the gate z; they share no input, so each is diffed and timed alone. */
#include <stdio.h>
#include <string.h>

#include "gdn_common.h"

enum { QN_N, QN_HK, QN_DK };
enum { QN_Q, QN_K }; /* inputs; outputs in the same order */

static void desc(kb_tensor *t, const char *name, const int64_t *p)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = KB_F32;
    t->ndim = 3;
    t->shape[0] = p[QN_N];
    t->shape[1] = p[QN_HK];
    t->shape[2] = p[QN_DK];
    t->bytes = (size_t)(p[QN_N] * p[QN_HK] * p[QN_DK]) * 4;
}

static int validate(const int64_t *p, char *err, size_t n)
{
    if (p[QN_DK] != 64 && p[QN_DK] != 128) {
        snprintf(err, n, "dk=%lld: must be 64 or 128", (long long)p[QN_DK]);
        return -1;
    }
    return 0;
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    desc(&in[QN_Q], "q", p);
    desc(&in[QN_K], "k", p);
    desc(&out[QN_Q], "qn", p);
    desc(&out[QN_K], "kn", p);
    *ni = *no = 2;
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    const int64_t dk = p[QN_DK];
    for (int t = 0; t < 2; t++) {
        float *x = in[t].data;
        for (int64_t i = 0; i < kb_tensor_numel(&in[t]); i++) {
            const int64_t c = i % dk; /* outliers: channels 3 and dk-5, 100x */
            x[i] = (dist == KB_INPUTS_OUTLIERS && (c == 3 || c == dk - 5) ? 100.0f : 1.0f) *
                   gdn_normalish(rng);
        }
    }
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int64_t dk = p[QN_DK], rows = p[QN_N] * p[QN_HK];
    for (int t = 0; t < 2; t++) {
        const float *x = in[t].data;
        float *y = out[t].data;
        for (int64_t r = 0; r < rows; r++) {
            const double f = gdn_qk_factor(x + r * dk, dk, t == QN_Q);
            for (int64_t i = 0; i < dk; i++)
                y[r * dk + i] = (float)(x[r * dk + i] * f);
        }
    }
}

/* Each element is its input times one factor per row: the error is relative, scale = |y|. */
static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    const int64_t dk = p[QN_DK], rows = p[QN_N] * p[QN_HK];
    const float *x = in[o].data;
    for (int64_t r = 0; r < rows; r++) {
        const double f = gdn_qk_factor(x + r * dk, dk, o == QN_Q);
        for (int64_t i = 0; i < dk; i++)
            scale[r * dk + i] = fabs(x[r * dk + i] * f);
    }
}

static double bytes(const int64_t *p) { return 16.0 * (double)(p[QN_N] * p[QN_HK] * p[QN_DK]); }
static double flops(const int64_t *p) { return 6.0 * (double)(p[QN_N] * p[QN_HK] * p[QN_DK]); }

const kb_family kb_family_gdn_qknorm = {
    .name = "gdn_qknorm",
    .suite = "gdn",
    .help = "GatedDeltaNet q/k norm: q' = l2norm(q)/sqrt(dk), k' = l2norm(k) (eps on the mean square)",
    .nparams = 3,
    .params = {{"n", 1, 1, 1 << 20, "tokens (of any sequences)"},
               {"hk", 16, 1, GD_MAX_HEADS, "key heads"},
               {"dk", 128, 64, 128, "key head size: 64 or 128"}},
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
    /* the mean square is a sum of dk positive terms: its relative error is below (dk - 1) eps
     * in any order (7.6e-6 at dk = 128), half of that in the root, typically far less */
    .tol_cond = 4e-6,
    .test_shape = "n=3 hk=5 dk=64",
};
