/* matvec_q8_0, AVX2 + FMA, f32 activations: weights dequantized in registers, x stays f32.
 *
 * A block's 32 int8 weights are sign-extended to i32 eight at a time straight from memory,
 * converted to f32 and multiplied with x by FMA (one chain of four); acc += d * dot. Blocks go
 * four at a time: the four f16 scales are converted together (one vcvtph2ps) into
 * S = [d0 d1 d2 d3 | d0 d1 d2 d3] and broadcast per block in-lane (vpermilps). One row at a
 * time (a single stream per thread prefetches best), two FMA chains per row and token, software
 * prefetch ahead; tokens > 1 reuse each converted weight block from registers for all tokens. */
#include "mvq_cpu.h"

/* Block u of a quad (p: the block's scale), T tokens of x at xb (token stride cols). */
KB_TARGET_AVX2 KB_INLINE void block(const uint8_t *p, __m256 d, const float *xb, int64_t cols,
                                    const int T, __m256 *acc)
{
    const __m256 f0 =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2))));
    const __m256 f1 =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 10))));
    const __m256 f2 =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 18))));
    const __m256 f3 =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 26))));
    for (int t = 0; t < T; t++) {
        const float *x = xb + t * cols;
        __m256 s = _mm256_mul_ps(f0, _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(f1, _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(f2, _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(f3, _mm256_loadu_ps(x + 24), s);
        acc[t] = _mm256_fmadd_ps(d, s, acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token); acc[(b & 1) * T + t]. */
KB_TARGET_AVX2 KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T)
{
    __m256 acc[2 * MV_MAX_TOKENS];
    const int64_t nb = j->nb, cols = j->cols, bs = (int64_t)sizeof(block_q8_0);
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *p = w + b * bs;
        mvq_prefetch3(p);
        const __m128 dw = kb_f16x4(p, bs);
        const __m256 S = _mm256_set_m128(dw, dw);
        const float *xb = j->x + b * QK;
        block(p, _mm256_permute_ps(S, 0x00), xb, cols, T, acc);
        block(p + bs, _mm256_permute_ps(S, 0x55), xb + QK, cols, T, acc + T);
        block(p + 2 * bs, _mm256_permute_ps(S, 0xAA), xb + 2 * QK, cols, T, acc);
        block(p + 3 * bs, _mm256_permute_ps(S, 0xFF), xb + 3 * QK, cols, T, acc + T);
    }
    for (; b < nb; b++)
        block(w + b * bs, kb_bcast_f16(w + b * bs), j->x + b * QK, cols, T, acc);
    for (int t = 0; t < T; t++)
        j->y[t * j->rows + r] = kb_hsum256(_mm256_add_ps(acc[t], acc[T + t]));
}

MVQ_KERNEL(KB_TARGET_AVX2, block_q8_0)

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_q8_0_avx2 = {
    .family = "matvec_q8_0",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
