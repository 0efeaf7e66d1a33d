/* The row accumulators of the Q4_0 kernels on ymm (matvec_q4_0_avx2.c, mvq_q4_0_i8_ymm.h): two
 * FMA chains per token, acc[k * T + t], k < 2, and oacc[t], the blocks' scales times their sums
 * of x, four blocks per lane, for the -8 of the codes (sum (q - 8) x = sum q x - 8 sum x).
 * AVX2, inlined into the AVX-VNNI kernel too. */
#ifndef KB_MVQ_Q4_0_YMM_H
#define KB_MVQ_Q4_0_YMM_H

#include "mvq_cpu.h"

KB_TARGET_AVX2 KB_INLINE void mvq_q4_acc_zero(__m256 *acc, __m128 *oacc, const int T)
{
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm256_setzero_ps();
    for (int t = 0; t < T; t++)
        oacc[t] = _mm_setzero_ps();
}

/* Row r of y: per token, the sum of its accumulators less 8 times its oacc. */
KB_TARGET_AVX2 KB_INLINE void mvq_q4_acc_store(const kb_mv_job *j, int64_t r, const int T,
                                               const __m256 *acc, const __m128 *oacc)
{
    for (int t = 0; t < T; t++) {
        __m256 a = _mm256_add_ps(acc[t], acc[T + t]);
        a = _mm256_fnmadd_ps(_mm256_set1_ps(8.0f), _mm256_castps128_ps256(oacc[t]), a);
        j->y[t * j->rows + r] = kb_hsum256(a);
    }
}

#endif
