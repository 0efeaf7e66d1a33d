/* What the mla_decode family and its implementations share (KERNELS.md section 6): the shape,
 * the tensors, the softmax scale, element access to the cache and weight formats.
 *
 * DeepSeek-V3 multi-head latent attention, decode: per cached position t a latent c_t[R] and a
 * roped key k_pe_t[rope]; per query token i and head h, q_nope[128] and q_pe[rope]; per head the
 * up-projections W_UK[h] (128 x R: key, no-rope part) and W_UV[h] (v_dim x R: value).
 *   K_h[t] = [W_UK[h] c_t ; k_pe_t],  V_h[t] = W_UV[h] c_t,
 *   out[i][h] = sum_t softmax_t(s * (q_nope . K_h[t][0..128) + q_pe . k_pe_t)) V_h[t],
 * over t = 0 .. T - n_q + i (query i sits at position T - n_q + i: causal among the n_q). */
#ifndef KB_MLA_COMMON_H
#define KB_MLA_COMMON_H

#include <math.h>

#include "kbench.h"

/* Parameters, in this order. */
enum { MLA_HEADS, MLA_T, MLA_NQ, MLA_RANK, MLA_ROPE, MLA_VDIM, MLA_CACHE, MLA_WBF16 };
/* Inputs and the output. */
enum { MLA_IN_QNOPE, MLA_IN_QPE, MLA_IN_C, MLA_IN_KPE, MLA_IN_WUK, MLA_IN_WUV };
enum { MLA_OUT };

#define MLA_NOPE 128 /* qk_nope_head_dim: rows of W_UK per head */
#define MLA_MAX_HEADS 256
#define MLA_MAX_T 131072
#define MLA_MAX_NQ 4

/* The YaRN attention temperature of DeepSeek-V3 (rope_scaling factor 40, mscale_all_dim 1):
 * mscale = 0.1 * ln(40) + 1. The family fixes it: s = mscale^2 / sqrt(128 + rope). */
#define MLA_YARN_FACTOR 40.0

typedef struct kb_mla_shape {
    int64_t H, T, n_q, R, rope, v_dim;
    int cache_f16; /* 1: latent and k_pe cache in f16, 0: in bf16 */
    int w_bf16;    /* 1: W_UK and W_UV in bf16, 0: in f32 */
} kb_mla_shape;

static inline void kb_mla_shape_of(const int64_t *p, kb_mla_shape *s)
{
    *s = (kb_mla_shape){.H = p[MLA_HEADS],
                        .T = p[MLA_T],
                        .n_q = p[MLA_NQ],
                        .R = p[MLA_RANK],
                        .rope = p[MLA_ROPE],
                        .v_dim = p[MLA_VDIM],
                        .cache_f16 = (int)p[MLA_CACHE],
                        .w_bf16 = (int)p[MLA_WBF16]};
}

static inline double kb_mla_mscale(void) { return 0.1 * log(MLA_YARN_FACTOR) + 1.0; }

/* The softmax scale s applied to the scores. */
static inline double kb_mla_scale(const kb_mla_shape *s)
{
    const double m = kb_mla_mscale();
    return m * m / sqrt((double)(MLA_NOPE + s->rope));
}

/* Positions query i attends: 0 .. T - n_q + i. */
static inline int64_t kb_mla_len(const kb_mla_shape *s, int64_t i) { return s->T - s->n_q + i + 1; }

/* Element i of a cache tensor (bf16 or f16) and of a weight tensor (f32 or bf16), as f32. */
static inline float kb_mla_cache_at(const kb_mla_shape *s, const kb_tensor *t, int64_t i)
{
    const uint16_t h = ((const uint16_t *)t->data)[i];
    return s->cache_f16 ? kb_f16_to_f32(h) : kb_bf16_to_f32(h);
}

static inline float kb_mla_w_at(const kb_mla_shape *s, const kb_tensor *t, int64_t i)
{
    return s->w_bf16 ? kb_bf16_to_f32(((const uint16_t *)t->data)[i]) : ((const float *)t->data)[i];
}

/* The reference in one of its two groupings (mla_decode.c): 1 the unabsorbed definition, 0 the
 * absorbed regrouping of the same sums in double, which the family's reference takes beyond
 * MLA_REF_UNABSORBED_MAX multiply-adds. Exposed for the test that pins the two together. */
void kb_mla_reference_form(const int64_t *p, const kb_tensor *in, kb_tensor *out, int unabsorbed);

/* Multiply-adds of the unabsorbed reference (every head's K and V rows of every position):
 * H * T * (128 + v_dim) * R. Beyond this, the reference regroups (about 4 s at 5 GFMA/s). */
#define MLA_REF_UNABSORBED_MAX (1LL << 34)

/* Tolerance (conditioned, kbench.h) of implementations with f32 arithmetic: see mla_decode.c. */
#define MLA_TOL_COND 2e-5

#endif
