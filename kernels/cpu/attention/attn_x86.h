/* SIMD helpers of the x86 attention kernels: 2^x, cache loads (f16 or f32), and the reductions
 * behind the score layout the decode kernels share.
 *
 * Score layout: a group of GB heads (GB = 1, 2 or 4) sharing a kv head is processed together;
 * the scores of 8 / GB positions for those heads fill one vector of 8 lanes, lane i holding head
 * i % GB of position i / GB. A per-head reduction over lanes with the same i % GB leaves its
 * result replicated in that same pattern, so running max, sum and rescale factors live in
 * vectors of the same layout as the scores. */
#ifndef KB_ATTN_X86_H
#define KB_ATTN_X86_H

#include "simd_x86.h"

/* 2^x for x <= 0 (callers pass s - max): round to nearest, 2^f on [-0.5, 0.5] by a degree-6
 * polynomial (relative error < 2e-7), the integer part into the exponent. Below -125 (and for
 * -inf) the result is 0: no denormals, and masked scores give weight 0 exactly. */
#define KB_EXP2_C6 1.535336188319500e-4f
#define KB_EXP2_C5 1.339887440266574e-3f
#define KB_EXP2_C4 9.618437357674640e-3f
#define KB_EXP2_C3 5.550332471162809e-2f
#define KB_EXP2_C2 2.402264791363012e-1f
#define KB_EXP2_C1 6.931472028550421e-1f

KB_TARGET_AVX2 KB_INLINE __m256 kb_exp2_avx2(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-125.0f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 xi = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_sub_ps(x, xi);
    __m256 p = _mm256_set1_ps(KB_EXP2_C6);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(KB_EXP2_C5));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(KB_EXP2_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(KB_EXP2_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(KB_EXP2_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(KB_EXP2_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(xi), 23);
    const __m256 r = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
    return _mm256_andnot_ps(under, r);
}

KB_TARGET_AVX512 KB_INLINE __m512 kb_exp2_avx512(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-125.0f);
    const __mmask16 ok = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_max_ps(x, lo);
    const __m512 xi = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, xi);
    __m512 p = _mm512_set1_ps(KB_EXP2_C6);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(KB_EXP2_C5));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(KB_EXP2_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(KB_EXP2_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(KB_EXP2_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(KB_EXP2_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(xi), 23);
    const __m512 r = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), e));
    return _mm512_maskz_mov_ps(ok, r);
}

/* Keeps a loaded vector in a register: without it the compiler folds the load into every FMA
 * that uses the vector, one load per use. */
#ifndef KB_KEEP_REG
#define KB_KEEP_REG(v) __asm__("" : "+x"(v))
#define KB_KEEP_REG512(v) __asm__("" : "+v"(v))
#endif

/* ---- cache loads: 8 (or 16) elements at element index i of a cache row, as f32 ------------- */

KB_TARGET_AVX2 KB_INLINE __m256 kb_ld8(const void *row, int64_t i, const int f16)
{
    if (f16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    return _mm256_loadu_ps((const float *)row + i);
}

KB_TARGET_AVX512 KB_INLINE __m512 kb_ld16(const void *row, int64_t i, const int f16)
{
    if (f16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)row + i)));
    return _mm512_loadu_ps((const float *)row + i);
}

/* ---- reductions ------------------------------------------------------------------------- */

/* Lane i of the result is the sum of the 8 lanes of a[i]. */
KB_TARGET_AVX2 KB_INLINE __m256 kb_sum8x8(const __m256 *a)
{
    const __m256 t0 = _mm256_hadd_ps(a[0], a[1]); /* a0 01 23, a1 01 23 | a0 45 67, a1 45 67 */
    const __m256 t1 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 t2 = _mm256_hadd_ps(a[4], a[5]);
    const __m256 t3 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1); /* a0..a3 low-half sums | a0..a3 high-half sums */
    const __m256 u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* Lane i of the result is the sum of the 16 lanes of a[i]: a transpose-reduce in 15 pair steps,
 * each halving the vectors and the partials per vector. A step adds a blend of the pair (free of
 * the shuffle unit) to the other halves brought over by one shuffle: half the shuffles of the
 * plain two-shuffle steps (about 1% faster on the Zen 5 VM, 2 cores). */
KB_TARGET_AVX512 KB_INLINE __m512 kb_sum16x16(const __m512 *a)
{
    __m512 b[8], c[4], d[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) /* lanes 0-7: partials of a[i], 8-15: of a[i + 8] */
        b[i] = _mm512_add_ps(_mm512_mask_blend_ps(0xFF00, a[i], a[i + 8]),
                             _mm512_shuffle_f32x4(a[i], a[i + 8], 0x4E));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* quarters: a[i], a[i + 4], a[i + 8], a[i + 12] */
        const __m512 t = _mm512_mask_blend_ps(0xF0F0, b[i + 4], b[i]);
        c[i] = _mm512_add_ps(_mm512_mask_blend_ps(0xF0F0, b[i], b[i + 4]),
                             _mm512_shuffle_f32x4(t, t, 0xB1));
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) /* pairs of lanes */
        d[i] = _mm512_add_ps(_mm512_mask_blend_ps(0xCCCC, c[i], c[i + 2]),
                             _mm512_shuffle_ps(c[i], c[i + 2], 0x4E));
    const __m512 t = _mm512_mask_blend_ps(0xAAAA, d[1], d[0]);
    return _mm512_add_ps(_mm512_mask_blend_ps(0xAAAA, d[0], d[1]), _mm512_permute_ps(t, 0xB1));
}

/* Per-head max / sum over the lanes of one head in the GB pattern, replicated in the pattern. */
KB_TARGET_AVX2 KB_INLINE __m256 kb_pattern_max(__m256 v, const int GB)
{
    v = _mm256_max_ps(v, _mm256_permute2f128_ps(v, v, 0x01)); /* lanes i, i ^ 4 */
    if (GB <= 2)
        v = _mm256_max_ps(v, _mm256_permute_ps(v, 0x4E)); /* i, i ^ 2 */
    if (GB <= 1)
        v = _mm256_max_ps(v, _mm256_permute_ps(v, 0xB1)); /* i, i ^ 1 */
    return v;
}

KB_TARGET_AVX2 KB_INLINE __m256 kb_pattern_sum(__m256 v, const int GB)
{
    v = _mm256_add_ps(v, _mm256_permute2f128_ps(v, v, 0x01));
    if (GB <= 2)
        v = _mm256_add_ps(v, _mm256_permute_ps(v, 0x4E));
    if (GB <= 1)
        v = _mm256_add_ps(v, _mm256_permute_ps(v, 0xB1));
    return v;
}

/* The same over the 16 lanes of the AVX-512 pattern (lane i: head i % GB, position i / GB). */
KB_TARGET_AVX512 KB_INLINE __m512 kb_pattern_max512(__m512 v, const int GB)
{
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E)); /* lanes i, i ^ 8 */
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1)); /* i, i ^ 4 */
    if (GB <= 2)
        v = _mm512_max_ps(v, _mm512_permute_ps(v, 0x4E)); /* i, i ^ 2 */
    if (GB <= 1)
        v = _mm512_max_ps(v, _mm512_permute_ps(v, 0xB1)); /* i, i ^ 1 */
    return v;
}

KB_TARGET_AVX512 KB_INLINE __m512 kb_pattern_sum512(__m512 v, const int GB)
{
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
    if (GB <= 2)
        v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
    if (GB <= 1)
        v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
    return v;
}

/* In-register transpose: r[i] (row i of an 8x8 block) becomes column i. */
KB_TARGET_AVX2 KB_INLINE void kb_transpose8x8(__m256 *r)
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]); /* r00 r10 r01 r11 | r04 r14 r05 r15 */
    const __m256 t1 = _mm256_unpackhi_ps(r[0], r[1]); /* r02 r12 r03 r13 | r06 r16 r07 r17 */
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]);
    const __m256 t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]);
    const __m256 t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]);
    const __m256 t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44); /* r00 r10 r20 r30 | r04 r14 r24 r34 */
    const __m256 s1 = _mm256_shuffle_ps(t0, t2, 0xEE); /* r01 r11 r21 r31 | r05 ... */
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44);
    const __m256 s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44); /* r40 r50 r60 r70 | r44 ... */
    const __m256 s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44);
    const __m256 s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

KB_TARGET_AVX2 KB_INLINE float kb_hmax256(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

#endif
