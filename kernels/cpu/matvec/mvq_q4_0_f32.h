/* What the f32-activation matvec_q4_0 kernels (matvec_q4_0_avx2.c, matvec_q4_0_avx512.c) share:
 * x transformed once per call, inside the timed run, so that a code byte converts as it is.
 * A code byte c = lo + 16 hi holds weights j (lo) and j + 16 (hi). With xa_j = x_j - x_{j+16}/16
 * and xb_j = x_{j+16}/16, lo x_j + hi x_{j+16} = lo xa_j + c xb_j: only the low nibble needs a
 * mask, no shift. The -8 of the codes: sum (q - 8) x = sum q x - 8 sx, with sx the block's sum
 * of x; a kernel accumulates sum_b d_b sx_b per row, four blocks at a time in one xmm FMA, and
 * takes it 8 times off at the end. */
#ifndef KB_MVQ_Q4_0_F32_H
#define KB_MVQ_Q4_0_F32_H

#include "mvq_cpu.h"

/* Transformed x, per token: xt[b][0..15] = xa, xt[b][16..31] = xb; sx[b] the block sums. */
typedef struct {
    const float *xt; /* [tokens][nb][32] */
    const float *sx; /* [tokens][sx_stride]: nb sums, then zeros (xmm loads of four) */
    int64_t sx_stride;
} q4_xt;

KB_TARGET_AVX2 static inline void q4_prep_x(float *xt, float *sx, int64_t sx_stride,
                                            const float *x, int64_t tokens, int64_t cols)
{
    const int64_t nb = cols / QK;
    const __m256 s16 = _mm256_set1_ps(1.0f / 16);
    for (int64_t t = 0; t < tokens; t++) {
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + t * cols + b * QK;
            float *o = xt + (t * nb + b) * QK;
            __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8);
            __m256 x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
            __m256 h2 = _mm256_mul_ps(x2, s16), h3 = _mm256_mul_ps(x3, s16); /* exact */
            _mm256_store_ps(o, _mm256_sub_ps(x0, h2));
            _mm256_store_ps(o + 8, _mm256_sub_ps(x1, h3));
            _mm256_store_ps(o + 16, h2);
            _mm256_store_ps(o + 24, h3);
            sx[t * sx_stride + b] =
                kb_hsum256(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)));
        }
        for (int64_t b = nb; b < sx_stride; b++)
            sx[t * sx_stride + b] = 0.0f;
    }
}

/* Defines rows_1, rows_T, task (MVQ_ROWS) and run, the cpu_run of a kernel whose row() reads the
 * transformed x (a q4_xt) from j->aux. */
#define MVQ_Q4_0_F32_KERNEL(TARGET)                                                                \
    MVQ_ROWS(TARGET)                                                                               \
    static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)          \
    {                                                                                              \
        const int64_t cols = c->p[MV_COLS], tokens = c->p[MV_TOKENS];                              \
        const int64_t nb = cols / QK, sx_stride = nb + 3;                                          \
        float *xt = kb_scratch((size_t)(tokens * (nb * QK + sx_stride)) * sizeof(float));          \
        float *sx = xt + tokens * nb * QK;                                                         \
        q4_prep_x(xt, sx, sx_stride, in[MV_X].data, tokens, cols);                                 \
        q4_xt xq = {.xt = xt, .sx = sx, .sx_stride = sx_stride};                                   \
        kb_mvq_run(c, in, out, pool, (int64_t)sizeof(block_q4_0), &xq, task);                      \
    }

#endif
