/* rope_yarn (KERNELS.md section 6): YaRN rotary embedding as DeepSeek-V3 applies it to q_pe
 * (128 heads) and k_pe (1 head), with host-precomputed inv_freq and mscale. For token t at
 * position pos = p0 + t, head h, pair i < half = rot / 2 (half-split: element i pairs with
 * i + half):
 *   theta = fl32(pos * inv_freq[i])   (the f32 product, as every implementation forms it)
 *   c = mscale cos(theta), s = mscale sin(theta)   (of that f32 angle, to f32 accuracy:
 *                                                   angles reach 2^20 rad, so the reduction
 *                                                   modulo 2 pi must be exact)
 *   y[i] = x[i] c - x[i + half] s,   y[i + half] = x[i] s + x[i + half] c. */
#ifndef KB_ROPE_YARN_H
#define KB_ROPE_YARN_H

#include "kbench.h"

enum { RY_HEADS, RY_ROT, RY_TOKENS, RY_POS, RY_FACTOR };
enum { RY_IN_X, RY_IN_FREQ, RY_IN_MSCALE };
enum { RY_OUT };

#define RY_MAX_POS (1 << 20) /* positions (p0 + tokens) at most: angles below 2^20 rad */

/* The angle of the definition: the f32 product of the position and the frequency. */
static inline float kb_ry_theta(int64_t pos, float inv_freq)
{
    volatile float p = (float)pos; /* exact below 2^24; volatile: no contraction into an fma */
    return p * inv_freq;
}

/* Tolerance (conditioned: the scale of y[i] is mscale (|x[i]| + |x[i + half]|), since cos and
 * sin are computed to an absolute accuracy) of f32 implementations: a reduction error of the
 * angle ~2^-25 rad, sin/cos within ~2^-23, two products and a sum: measured below 3e-7. */
#define RY_TOL_COND 2e-6

#endif
