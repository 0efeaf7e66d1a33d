/* The row of the AVX512-VNNI int8-activation kernels (matvec_q4_0_avx512vnni.c,
 * matvec_q8_0_avx512vnni.c), around their block steps, which the including file defines first:
 *   #define MVQ_BLOCK     its block type (block_q4_0 or block_q8_0)
 *   #define MVQ_XQ_MULT, MVQ_XQ_LAYOUT   how its x is quantized (act_q8.h)
 *   #define MVQ_BIAS      the bias its weight codes carry (8: Q4_0's codes; 128: Q8_0's w ^ 0x80)
 *   #define MVQ_STEP      blocks per prefetched step (8 or 4: about 140 bytes, mvq_prefetch3)
 *   void step(p, xq, b, T, acc, oacc)   MVQ_STEP blocks from block b (at p) against T tokens
 *                         into acc[k * T + t], k < 2 (zmm, two FMA chains), their bias sums
 *                         sum_b d_w d_x sum(x_q) into oacc[t] (xmm, four blocks per lane)
 *   void quad(p, xq, b, T, acc, oacc)   four blocks into acc and oacc (what is left after the
 *                         last whole step)
 *   void single(p, xq, b, T, tacc)      one block (a row's tail when nb % 4 != 0) into tacc[t]
 *                         (ymm), its bias cancelled in the integer lanes by the quantizer's offset
 * One row at a time, software prefetch ahead; tokens > 1 reuse each weight quad from registers
 * for all tokens. Written for AVX512-VNNI machines; the distances are those tuned for the AVX2
 * kernels on Zen 3. */
#ifndef KB_MVQ_I8_AVX512VNNI_H
#define KB_MVQ_I8_AVX512VNNI_H

#include "mvq_i8.h"

#ifndef MVQ_STEP
#error "define MVQ_BLOCK, MVQ_XQ_*, MVQ_BIAS, MVQ_STEP, step, quad and single first"
#endif

/* Row r, T tokens (a constant where inlined for one token). */
KB_TARGET_AVX512VNNI KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T)
{
    __m512 acc[2 * MV_MAX_TOKENS];
    __m128 oacc[MV_MAX_TOKENS];
    __m256 tacc[MV_MAX_TOKENS];
    const int64_t nb = j->nb, bs = (int64_t)sizeof(MVQ_BLOCK);
    const kb_xq xq = *(const kb_xq *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm512_setzero_ps();
    for (int t = 0; t < T; t++) {
        oacc[t] = _mm_setzero_ps();
        tacc[t] = _mm256_setzero_ps();
    }
    int64_t b = 0;
    for (; b + MVQ_STEP <= nb; b += MVQ_STEP) {
        mvq_prefetch3(w + b * bs);
        step(w + b * bs, &xq, b, T, acc, oacc);
    }
    for (; b + 4 <= nb; b += 4) /* none left when a step is a quad */
        quad(w + b * bs, &xq, b, T, acc, oacc);
    for (; b < nb; b++)
        single(w + b * bs, &xq, b, T, tacc);
    for (int t = 0; t < T; t++) {
        __m128 o = _mm_add_ps(oacc[t], _mm_movehl_ps(oacc[t], oacc[t]));
        o = _mm_add_ss(o, _mm_movehdup_ps(o));
        j->y[t * j->rows + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t], acc[T + t])) +
                                kb_hsum256(tacc[t]) - (float)MVQ_BIAS * _mm_cvtss_f32(o);
    }
}

MVQ_I8_KERNEL(KB_TARGET_AVX512VNNI, MVQ_BLOCK, MVQ_XQ_MULT, MVQ_XQ_LAYOUT)

#endif
