/* matvec_q4_0, AVX512-VNNI (vpdpbusd on zmm), int8 activations (GGML's trick): the blocks of the
 * row of mvq_i8_avx512vnni.h.
 *
 * A zmm holds the codes of four blocks: [c0 | c1 | c2 | c3] (16 bytes each); masking gives their
 * low nibbles (weights 0..15 of each block), shifting and masking their high nibbles (16..31),
 * and the activations are stored to match (KB_XQ_QUAD_Q4). Two vpdpbusd (unsigned codes x signed
 * activations) give i32 lanes 4u..4u+3 for block u. The -8 of the codes stays out of the integer
 * lanes: per row and token, sum_b d_w d_x sum(x_q) is accumulated four blocks per xmm FMA and
 * taken 8 times off at the end. Scales: the four f16 scales are converted together, multiplied
 * with the four activation scales in one xmm, and vpermps spreads them as [s0 x4 | .. | s3 x4]. */
#include "mvq_i8.h"

#define MVQ_BLOCK block_q4_0
#define MVQ_XQ_MULT 1
#define MVQ_XQ_LAYOUT KB_XQ_QUAD_Q4
#define MVQ_BIAS 8
#define MVQ_STEP 8 /* two quads, 144 bytes */

/* Four blocks of one row from block b (p points at block b) against T tokens: acc[t], oacc[t]. */
KB_TARGET_AVX512VNNI KB_INLINE void quad(const uint8_t *p, const kb_xq *xq, int64_t b,
                                         const int T, __m512 *acc, __m128 *oacc)
{
    const int64_t bs = (int64_t)sizeof(block_q4_0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m128 dw = kb_f16x4(p, bs);
    const __m256i c01 = _mm256_loadu2_m128i((const __m128i *)(p + bs + 2),
                                            (const __m128i *)(p + 2));
    const __m256i c23 = _mm256_loadu2_m128i((const __m128i *)(p + 3 * bs + 2),
                                            (const __m128i *)(p + 2 * bs + 2));
    const __m512i c = _mm512_inserti64x4(_mm512_castsi256_si512(c01), c23, 1);
    const __m512i lo = _mm512_and_si512(c, m4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), m4);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m128 s4 = _mm_mul_ps(dw, _mm_loadu_ps(xq->d + i));
        oacc[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(xq->dsum + i), oacc[t]);
        const int8_t *xb = xq->q + i * 32; /* quad layout: 128 bytes from block b */
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
                                          _mm512_loadu_si512((const void *)xb));
        dot = _mm512_dpbusd_epi32(dot, hi, _mm512_loadu_si512((const void *)(xb + 64)));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                 _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s4)), acc[t]);
    }
}

/* Two quads, alternating FMA chains. */
KB_TARGET_AVX512VNNI KB_INLINE void step(const uint8_t *p, const kb_xq *xq, int64_t b,
                                         const int T, __m512 *acc, __m128 *oacc)
{
    quad(p, xq, b, T, acc, oacc);
    quad(p + 4 * (int64_t)sizeof(block_q4_0), xq, b + 4, T, acc + T, oacc);
}

/* One block: ymm, the bias cancelled by the quantizer's offset (-sum(x_q) per lane). */
KB_TARGET_AVX512VNNI KB_INLINE void single(const uint8_t *p, const kb_xq *xq, int64_t b,
                                           const int T, __m256 *tacc)
{
    const __m256i shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2)));
    q = _mm256_and_si256(_mm256_srlv_epi32(q, shift), _mm256_set1_epi8(0x0F)); /* [0..15|16..31] */
    const __m256 dw = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const int8_t *xl = xq->q + (i & ~(int64_t)3) * 32 + (b & 3) * 16; /* quad layout */
        __m256i xv = _mm256_loadu2_m128i((const __m128i *)(xl + 64), (const __m128i *)xl);
        __m256i dot = _mm256_dpbusd_epi32(_mm256_set1_epi32(xq->off[i]), q, xv);
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

const kb_impl kb_impl_matvec_q4_0_avx512vnni = {
    .family = "matvec_q4_0",
    .name = "avx512vnni",
    .backend = KB_BACKEND_CPU,
    .available = available,
    MVQ_I8_TOL,
    .cpu_run = run,
};
