/* matvec_q4_0, AVX2 + FMA, f32 activations: weights dequantized in registers, x stays f32 (as
 * transformed by mvq_q4_0_f32.h).
 *
 * The work per weight is what limits this kernel (int -> f32 conversions and FMAs), so the
 * arithmetic is arranged to need as little as possible: a code byte converts as it is (only its
 * low nibble masked, no shift), the -8 of the codes comes off once per row, and blocks go four
 * at a time: the four f16 scales are converted together (one vcvtph2ps) into
 * S = [d0 d1 d2 d3 | d0 d1 d2 d3] and broadcast per block in-lane (vpermilps).
 * One row at a time (a single stream per thread prefetches best; two interleaved rows measured
 * slower), two FMA chains per token, software prefetch ahead; tokens > 1 reuse each converted
 * weight block from registers for all tokens. */
#include "mvq_q4_0_f32.h"
#include "mvq_q4_0_ymm.h"

/* Four blocks of one row from block b (p points at block b), T tokens. acc[(u & 1) * T + t]:
 * two FMA chains per token. */
KB_TARGET_AVX2 KB_INLINE void quad(const uint8_t *p, const q4_xt *xq, int64_t nb, int64_t b,
                                   const int T, __m256 *acc, __m128 *oacc)
{
    const int64_t bs = (int64_t)sizeof(block_q4_0);
    const __m256i lo4 = _mm256_set1_epi32(15);
    const __m128 dw = kb_f16x4(p, bs);
    const __m256 S = _mm256_set_m128(dw, dw);
    for (int t = 0; t < T; t++)
        oacc[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(xq->sx + t * xq->sx_stride + b), oacc[t]);
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
        const uint8_t *q = p + u * bs + 2;
        __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)q));
        __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8)));
        __m256 f0 = _mm256_cvtepi32_ps(_mm256_and_si256(v0, lo4)); /* lo, j = 0..7 */
        __m256 f1 = _mm256_cvtepi32_ps(_mm256_and_si256(v1, lo4)); /* lo, j = 8..15 */
        __m256 f2 = _mm256_cvtepi32_ps(v0);                        /* byte, j = 0..7 */
        __m256 f3 = _mm256_cvtepi32_ps(v1);                        /* byte, j = 8..15 */
        /* lane u of each half; a variable index, since -O0 does not fold u * 0x55 */
        const __m256 d = _mm256_permutevar_ps(S, _mm256_set1_epi32(u));
        for (int t = 0; t < T; t++) {
            const float *xb = xq->xt + (t * nb + b + u) * QK;
            __m256 s = _mm256_mul_ps(f0, _mm256_load_ps(xb));
            s = _mm256_fmadd_ps(f1, _mm256_load_ps(xb + 8), s);
            s = _mm256_fmadd_ps(f2, _mm256_load_ps(xb + 16), s);
            s = _mm256_fmadd_ps(f3, _mm256_load_ps(xb + 24), s);
            acc[(u & 1) * T + t] = _mm256_fmadd_ps(d, s, acc[(u & 1) * T + t]);
        }
    }
}

/* One block (the tail of a row when nb % 4 != 0), straight from x: (q - 8) x. */
KB_TARGET_AVX2 KB_INLINE void single(const uint8_t *p, const float *x, int64_t cols, int64_t b,
                                     const int T, __m256 *acc)
{
    const __m256i lo4 = _mm256_set1_epi32(15), eight = _mm256_set1_epi32(8);
    __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2)));
    __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 10)));
    __m256 f0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v0, lo4), eight));
    __m256 f1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v1, lo4), eight));
    __m256 f2 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v0, 4), eight));
    __m256 f3 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v1, 4), eight));
    const __m256 d = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const float *xb = x + t * cols + b * QK;
        __m256 s = _mm256_mul_ps(f0, _mm256_loadu_ps(xb));
        s = _mm256_fmadd_ps(f1, _mm256_loadu_ps(xb + 8), s);
        s = _mm256_fmadd_ps(f2, _mm256_loadu_ps(xb + 16), s);
        s = _mm256_fmadd_ps(f3, _mm256_loadu_ps(xb + 24), s);
        acc[t] = _mm256_fmadd_ps(d, s, acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token). */
KB_TARGET_AVX2 KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T)
{
    __m256 acc[2 * MV_MAX_TOKENS];
    __m128 oacc[MV_MAX_TOKENS];
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q4_0);
    const q4_xt xq = *(const q4_xt *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    mvq_q4_acc_zero(acc, oacc, T);
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        _mm_prefetch((const char *)(w + b * bs + MVQ_PF_DIST), _MM_HINT_T0); /* a line a quad */
        quad(w + b * bs, &xq, nb, b, T, acc, oacc);
    }
    for (; b < nb; b++)
        single(w + b * bs, j->x, j->cols, b, T, acc);
    mvq_q4_acc_store(j, r, T, acc, oacc);
}

MVQ_Q4_0_F32_KERNEL(KB_TARGET_AVX2)

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_q4_0_avx2 = {
    .family = "matvec_q4_0",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
