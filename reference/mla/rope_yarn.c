/* rope_yarn: YaRN rotary embedding with host-precomputed inv_freq and mscale (rope_yarn.h has
 * the formulas). The reference: cos and sin of the f32 angle in double, the rotation in
 * double. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rope_yarn.h"

static int validate(const int64_t *p, char *err, size_t n)
{
    if (p[RY_ROT] % 32) {
        snprintf(err, n, "rot=%lld: must be a multiple of 32", (long long)p[RY_ROT]);
        return -1;
    }
    if (p[RY_POS] + p[RY_TOKENS] > RY_MAX_POS) {
        snprintf(err, n, "pos=%lld + tokens=%lld exceeds %d positions", (long long)p[RY_POS],
                 (long long)p[RY_TOKENS], RY_MAX_POS);
        return -1;
    }
    return 0;
}

static void desc(kb_tensor *t, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = KB_F32;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= t->shape[i];
    t->bytes = (size_t)n * 4;
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    desc(&in[RY_IN_X], "x", 3, p[RY_TOKENS], p[RY_HEADS], p[RY_ROT]);
    desc(&in[RY_IN_FREQ], "inv_freq", 1, p[RY_ROT] / 2, 0, 0);
    desc(&in[RY_IN_MSCALE], "mscale", 1, 1, 0, 0);
    desc(&out[RY_OUT], "y", 3, p[RY_TOKENS], p[RY_HEADS], p[RY_ROT]);
    *ni = 3;
    *no = 1;
    return 0;
}

/* DeepSeek-V3's YaRN frequencies (rope_theta 10000, original_max_position_embeddings 4096,
 * beta_fast 32, beta_slow 1): the rotations that complete more than beta_fast turns over the
 * original context keep 1 / base^(2i/rot); those completing fewer than beta_slow are divided
 * by factor; a linear ramp between. */
static double correction_dim(double turns, double rot)
{
    return rot * log(4096.0 / (turns * 2.0 * M_PI)) / (2.0 * log(10000.0));
}

static void yarn_inv_freq(int64_t rot, double factor, float *f)
{
    double lo = floor(correction_dim(32.0, (double)rot)), hi = ceil(correction_dim(1.0, (double)rot));
    lo = lo < 0 ? 0 : lo;
    hi = hi > (double)(rot - 1) ? (double)(rot - 1) : hi;
    if (hi == lo)
        hi += 0.001;
    for (int64_t i = 0; i < rot / 2; i++) {
        const double extra = 1.0 / pow(10000.0, (double)(2 * i) / (double)rot);
        double ramp = ((double)i - lo) / (hi - lo);
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        const double keep = 1.0 - ramp; /* 1: the unscaled frequency */
        f[i] = (float)(extra / factor * (1.0 - keep) + extra * keep);
    }
}

/* x ~ N(0, 1) (a query or key slice), inv_freq from YaRN with the case's factor, mscale =
 * 0.1 ln(factor) + 1 (YaRN's attention factor on cos and sin; DeepSeek-V3 divides it out and
 * puts its square into the softmax scale instead: mla_decode's s). OUTLIERS: two channels of
 * x 100x larger in every row. */
static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    const int64_t rot = p[RY_ROT], n = kb_tensor_numel(&in[RY_IN_X]);
    float *x = in[RY_IN_X].data;
    int64_t big[2] = {-1, -1};
    if (dist == KB_INPUTS_OUTLIERS) {
        big[0] = (int64_t)(kb_rng_u64(rng) % (uint64_t)rot);
        big[1] = (int64_t)(kb_rng_u64(rng) % (uint64_t)rot);
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t ch = i % rot;
        x[i] = kb_rng_normal(rng) * (ch == big[0] || ch == big[1] ? 100.0f : 1.0f);
    }
    const double factor = (double)p[RY_FACTOR];
    yarn_inv_freq(rot, factor, in[RY_IN_FREQ].data);
    *(float *)in[RY_IN_MSCALE].data = (float)(factor > 1 ? 0.1 * log(factor) + 1.0 : 1.0);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int64_t H = p[RY_HEADS], rot = p[RY_ROT], half = rot / 2;
    const float *x = in[RY_IN_X].data, *f = in[RY_IN_FREQ].data;
    const double ms = *(const float *)in[RY_IN_MSCALE].data;
    float *y = out[RY_OUT].data;
    for (int64_t t = 0; t < p[RY_TOKENS]; t++)
        for (int64_t i = 0; i < half; i++) {
            const double th = kb_ry_theta(p[RY_POS] + t, f[i]);
            const double c = ms * cos(th), s = ms * sin(th);
            for (int64_t h = 0; h < H; h++) {
                const float *xr = x + (t * H + h) * rot;
                float *yr = y + (t * H + h) * rot;
                yr[i] = (float)(xr[i] * c - xr[i + half] * s);
                yr[i + half] = (float)(xr[i] * s + xr[i + half] * c);
            }
        }
}

/* mscale (|x[i]| + |x[i + half]|) for both outputs of the pair */
static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    const int64_t rot = p[RY_ROT], half = rot / 2, rows = p[RY_TOKENS] * p[RY_HEADS];
    const float *x = in[RY_IN_X].data;
    const double ms = fabs(*(const float *)in[RY_IN_MSCALE].data);
    (void)o;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < half; i++) {
            const double a = ms * (fabs(x[r * rot + i]) + fabs(x[r * rot + i + half]));
            scale[r * rot + i] = a;
            scale[r * rot + i + half] = a;
        }
}

static double bytes(const int64_t *p)
{
    return 8.0 * (double)(p[RY_TOKENS] * p[RY_HEADS] * p[RY_ROT]) + 2.0 * (double)p[RY_ROT] + 4;
}

/* 4 multiplies and 2 adds per pair */
static double flops(const int64_t *p) { return 3.0 * (double)(p[RY_TOKENS] * p[RY_HEADS] * p[RY_ROT]); }

const kb_family kb_family_rope_yarn = {
    .name = "rope_yarn",
    .suite = "mla",
    .help = "YaRN RoPE (DeepSeek-V3 q_pe / k_pe): half-split pairs, host inv_freq and mscale, "
            "angle fl32(pos * inv_freq) reduced exactly",
    .nparams = 5,
    .params = {{"heads", 128, 1, 256, "heads (128 for q_pe, 1 for k_pe)"},
               {"rot", 64, 32, 256, "rotary width; a multiple of 32"},
               {"tokens", 1, 1, 8192, "tokens at positions pos .. pos + tokens - 1"},
               {"pos", 4095, 0, RY_MAX_POS - 1, "position of the first token"},
               {"factor", 40, 1, 128, "YaRN scaling factor (inv_freq and mscale from it)"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 1u << RY_IN_X,
    .tol_nmse = 1e-10,
    .condition = condition,
    .tol_cond = RY_TOL_COND,
    .test_shape = "heads=3 rot=32 tokens=2 pos=70000",
};
