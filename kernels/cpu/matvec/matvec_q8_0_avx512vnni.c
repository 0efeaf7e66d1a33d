/* matvec_q8_0, AVX512-VNNI (vpdpbusd on zmm), int8 activations (GGML's trick): the blocks of the
 * row of mvq_i8_avx512vnni.h.
 *
 * A zmm holds two blocks. vpdpbusd multiplies unsigned bytes with signed bytes, so the weights are
 * biased: w ^ 0x80 = w + 128 (once per weight block for all tokens), and sum (w + 128) x =
 * sum w x + 128 sum x. The bias term stays out of the integer lanes: per row and token,
 * sum_b d_w d_x sum(x_q) is accumulated four blocks at a time in one xmm FMA and taken 128
 * times off at the end. Scales: the four f16 scales of a quad are converted together and
 * multiplied with the four activation scales in one xmm; vpermps spreads them over the zmm lanes
 * of each pair ([s0 x8 | s1 x8], [s2 x8 | s3 x8]). */
#include "mvq_i8.h"

#define MVQ_BLOCK block_q8_0
#define MVQ_XQ_MULT 16 /* for single: its offset cancels the bias in the integer lanes */
#define MVQ_XQ_LAYOUT KB_XQ_NATURAL
#define MVQ_BIAS 128
#define MVQ_STEP 4 /* a quad, 136 bytes */

/* Four blocks of one row from block b (p points at block b) against T tokens:
 * acc[k * T + t] for the pair k < 2, oacc[t]. */
KB_TARGET_AVX512VNNI KB_INLINE void quad(const uint8_t *p, const kb_xq *xq, int64_t b,
                                         const int T, __m512 *acc, __m128 *oacc)
{
    const int64_t bs = (int64_t)sizeof(block_q8_0);
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const __m512i idx[2] = {
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
        _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)};
    const __m128 dw = kb_f16x4(p, bs);
    __m512i wu[2];
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++) {
        const uint8_t *pa = p + 2 * k * bs + 2;
        __m512i w = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)pa)),
            _mm256_loadu_si256((const __m256i *)(pa + bs)), 1);
        wu[k] = _mm512_xor_si512(w, bias);
    }
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m128 s4 = _mm_mul_ps(dw, _mm_loadu_ps(xq->d + i));
        oacc[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(xq->dsum + i), oacc[t]);
        const __m512 sz = _mm512_castps128_ps512(s4); /* lanes 4..15 unused by the permutes */
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            __m512i dot = _mm512_dpbusd_epi32(
                _mm512_setzero_si512(), wu[k],
                _mm512_loadu_si512((const void *)(xq->q + (i + 2 * k) * 32)));
            acc[k * T + t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                             _mm512_permutexvar_ps(idx[k], sz), acc[k * T + t]);
        }
    }
}

/* A step is one quad. */
KB_TARGET_AVX512VNNI KB_INLINE void step(const uint8_t *p, const kb_xq *xq, int64_t b,
                                         const int T, __m512 *acc, __m128 *oacc)
{
    quad(p, xq, b, T, acc, oacc);
}

/* One block: ymm, the bias cancelled by the quantizer's offset (-16 sum(x_q) per lane). */
KB_TARGET_AVX512VNNI KB_INLINE void single(const uint8_t *p, const kb_xq *xq, int64_t b,
                                           const int T, __m256 *tacc)
{
    const __m256i wu = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)),
                                        _mm256_set1_epi8((char)0x80));
    const __m256 dw = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        __m256i dot = _mm256_dpbusd_epi32(_mm256_set1_epi32(xq->off[i]), wu,
                                          _mm256_loadu_si256((const __m256i *)(xq->q + i * 32)));
        tacc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                  _mm256_mul_ps(dw, _mm256_broadcast_ss(xq->d + i)), tacc[t]);
    }
}

#include "mvq_i8_avx512vnni.h"

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512vnni();
}

const kb_impl kb_impl_matvec_q8_0_avx512vnni = {
    .family = "matvec_q8_0",
    .name = "avx512vnni",
    .backend = KB_BACKEND_CPU,
    .available = available,
    MVQ_I8_TOL,
    .cpu_run = run,
};
