/* The int8-activation matvec_q8_0 kernel on ymm, for AVX2 (matvec_q8_0_avx2_i8.c) and AVX-VNNI
 * (matvec_q8_0_avxvnni.c): all of it but a block's weights in registers and their integer dot
 * product, which the including file defines first, with its target:
 *   #define MVQ_TARGET     its KB_TARGET_* attribute (every function below carries it, so that
 *                          its steps inline here)
 *   #define MVQ_XQ_MULT    the quantizer's offset multiplier, and
 *   #define MVQ_XQ_LAYOUT  its layout (act_q8.h), that dot needs
 *   q8_w                   a block's weights in registers, as dot needs them
 *   q8_w load(const uint8_t *p)               those of the block at p (its scale first)
 *   __m256i dot(const q8_w *w, const kb_xq *xq, int64_t i)
 *                          eight i32 lanes summing to w . (activation block i), exactly
 *
 * Per block, acc += (d_w * d_x) * dot in f32. Blocks go four at a time per row: the four f16
 * scales are converted together (one vcvtph2ps), multiplied with the four activation scales in
 * one xmm, and S = [s0 s1 s2 s3 | s0 s1 s2 s3] is broadcast per block in-lane (vpermilps). One
 * row at a time (a single stream per thread prefetches best), four FMA chains per token,
 * software prefetch ahead; tokens > 1 reuse each weight quad from registers for all tokens. */
#ifndef KB_MVQ_Q8_0_I8_YMM_H
#define KB_MVQ_Q8_0_I8_YMM_H

#include "mvq_i8.h"

#ifndef MVQ_TARGET
#error "define MVQ_TARGET, q8_w, load and dot before including mvq_q8_0_i8_ymm.h"
#endif

/* Four blocks of one row from block b (p points at block b) against T tokens: acc[u * T + t]. */
MVQ_TARGET KB_INLINE void quad(const uint8_t *p, const kb_xq *xq, int64_t b, const int T,
                               __m256 *acc)
{
    const int64_t bs = (int64_t)sizeof(block_q8_0);
    const __m128 dw = kb_f16x4(p, bs);
    q8_w wu[4];
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++)
        wu[u] = load(p + u * bs);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m128 s4 = _mm_mul_ps(dw, _mm_loadu_ps(xq->d + i));
        const __m256 s = _mm256_set_m128(s4, s4);
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            const __m256i d = dot(&wu[u], xq, i + u);
            acc[u * T + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d),
                                             _mm256_permutevar_ps(s, _mm256_set1_epi32(u)),
                                             acc[u * T + t]);
        }
    }
}

/* One block (the tail of a row when nb % 4 != 0). */
MVQ_TARGET KB_INLINE void single(const uint8_t *p, const kb_xq *xq, int64_t b, const int T,
                                 __m256 *acc)
{
    const q8_w w = load(p);
    const __m256 dw = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m256i d = dot(&w, xq, i);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d),
                                 _mm256_mul_ps(dw, _mm256_broadcast_ss(xq->d + i)), acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token). */
MVQ_TARGET KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T)
{
    __m256 acc[4 * MV_MAX_TOKENS];
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q8_0);
    const kb_xq xq = *(const kb_xq *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 4 * T; i++)
        acc[i] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        mvq_prefetch3(w + b * bs);
        quad(w + b * bs, &xq, b, T, acc);
    }
    for (; b < nb; b++)
        single(w + b * bs, &xq, b, T, acc);
    for (int t = 0; t < T; t++) {
        __m256 a = _mm256_add_ps(_mm256_add_ps(acc[t], acc[T + t]),
                                 _mm256_add_ps(acc[2 * T + t], acc[3 * T + t]));
        j->y[t * j->rows + r] = kb_hsum256(a);
    }
}

MVQ_I8_KERNEL(MVQ_TARGET, block_q8_0, MVQ_XQ_MULT, MVQ_XQ_LAYOUT)

#endif
