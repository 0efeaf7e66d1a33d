/* rope: rotary position embedding, half-split pairs (KERNELS.md 8): token t of x [tokens][heads]
 * [head_dim] sits at position p = p0 + t; in every head, dims i and i + rot/2 (i < rot/2) turn
 * by the table's angle of (p, i):
 *   y[i] = x[i] cos - x[i + rot/2] sin,   y[i + rot/2] = x[i + rot/2] cos + x[i] sin,
 * and dims rot .. head_dim-1 pass through (partial rotary: Qwen3.5 full attention turns 64 of
 * 256). The tables cos, sin [p0 + tokens][rot/2] come from kb_rope_table (theta), computed in
 * double: kernels read them (an f32 angle would be off by 6e-3 rad at p = 1e5). y may alias x. */
#include <stdio.h>

#include "glue_common.h"

enum { RP_HEADS, RP_HEAD_DIM, RP_ROT, RP_TOKENS, RP_P0, RP_THETA };
enum { RP_X, RP_COS, RP_SIN }; /* inputs */
enum { RP_Y };                 /* outputs */

static int validate(const int64_t *p, char *err, size_t n)
{
    if (p[RP_ROT] % 2 != 0 || p[RP_ROT] > p[RP_HEAD_DIM]) {
        snprintf(err, n, "rot=%lld must be even and at most head_dim=%lld", (long long)p[RP_ROT],
                 (long long)p[RP_HEAD_DIM]);
        return -1;
    }
    return 0;
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    const int64_t npos = p[RP_P0] + p[RP_TOKENS];
    kb_glue_desc(&in[RP_X], "x", KB_F32, 3, p[RP_TOKENS], p[RP_HEADS], p[RP_HEAD_DIM]);
    kb_glue_desc(&in[RP_COS], "cos", KB_F32, 2, npos, p[RP_ROT] / 2, 0);
    kb_glue_desc(&in[RP_SIN], "sin", KB_F32, 2, npos, p[RP_ROT] / 2, 0);
    kb_glue_desc(&out[RP_Y], "y", KB_F32, 3, p[RP_TOKENS], p[RP_HEADS], p[RP_HEAD_DIM]);
    *ni = 3;
    *no = 1;
    return 0;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    kb_glue_fill(in[RP_X].data, p[RP_TOKENS] * p[RP_HEADS], p[RP_HEAD_DIM], 1.0f, rng, dist);
    kb_rope_table((double)p[RP_THETA], p[RP_ROT], p[RP_P0] + p[RP_TOKENS], in[RP_COS].data,
                  in[RP_SIN].data);
}

/* mode 0: y (the definition, in double); mode 1: scale (sum of |terms| + floor). */
static void walk(const int64_t *p, const kb_tensor *in, float *y, double *scale)
{
    const int64_t H = p[RP_HEADS], D = p[RP_HEAD_DIM], half = p[RP_ROT] / 2;
    const float *cs = in[RP_COS].data, *sn = in[RP_SIN].data;
    for (int64_t t = 0; t < p[RP_TOKENS]; t++) {
        const int64_t pos = p[RP_P0] + t;
        for (int64_t h = 0; h < H; h++) {
            const int64_t o = (t * H + h) * D;
            const float *x = (const float *)in[RP_X].data + o;
            for (int64_t i = 0; i < half; i++) {
                const double c = cs[pos * half + i], s = sn[pos * half + i];
                const double a = x[i], b = x[i + half];
                if (y) {
                    y[o + i] = (float)(a * c - b * s);
                    y[o + i + half] = (float)(b * c + a * s);
                } else {
                    scale[o + i] = fabs(a * c) + fabs(b * s) + KB_GLUE_FLOOR;
                    scale[o + i + half] = fabs(b * c) + fabs(a * s) + KB_GLUE_FLOOR;
                }
            }
            for (int64_t i = 2 * half; i < D; i++) {
                if (y)
                    y[o + i] = x[i];
                else
                    scale[o + i] = fabs((double)x[i]) + KB_GLUE_FLOOR;
            }
        }
    }
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    walk(p, in, out[RP_Y].data, NULL);
}

static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    walk(p, in, NULL, scale);
}

static double bytes(const int64_t *p)
{
    return 8.0 * (double)(p[RP_TOKENS] * p[RP_HEADS] * p[RP_HEAD_DIM]) +
           8.0 * (double)(p[RP_TOKENS] * (p[RP_ROT] / 2));
}

static double flops(const int64_t *p)
{
    return 3.0 * (double)(p[RP_TOKENS] * p[RP_HEADS] * p[RP_ROT]);
}

const kb_family kb_family_rope = {
    .name = "rope",
    .suite = "model",
    .help = "RoPE, half-split pairs (i, i + rot/2) from a cos/sin table; partial rotary (rot < "
            "head_dim)",
    .nparams = 6,
    .params = {{"heads", 32, 1, 1024, "heads turned (query or key/value heads)"},
               {"head_dim", 128, 2, 1024, "head size D"},
               {"rot", 128, 2, 1024, "rotary dims: the first rot of a head (even, <= head_dim)"},
               {"tokens", 1, 1, 4096, "tokens, at positions p0 .. p0 + tokens - 1"},
               {"p0", 0, 0, 1 << 20, "position of the first token"},
               {"theta", 500000, 1, 1000000000, "RoPE base (Llama 3: 500000, Qwen3: 1000000)"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .tol_nmse = 1e-12,
    .condition = condition,
    .tol_cond = 1e-6, /* two products and a sum in f32: ~2^-23 of the scale */
    .test_shape = "heads=3 head_dim=20 rot=12 tokens=2 p0=5",
};
