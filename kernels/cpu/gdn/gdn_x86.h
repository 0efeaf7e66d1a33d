/* SIMD helpers of the x86 GatedDeltaNet kernels (AVX-512): reductions of many vectors at once,
 * a 16x16 transpose, and exp / log1p accurate to a few ulp for the companions' gates and SiLU. */
#ifndef KB_GDN_X86_H
#define KB_GDN_X86_H

#include "simd_x86.h"

/* Lane i = the sum of the 16 lanes of a[i]: 16 horizontal sums in 15 shuffle+add pairs. Each
 * level folds two vectors into one holding half of each one's partial sums; the 128-bit block
 * and lane order the levels leave is a 4x4 transpose of the index, undone by feeding the
 * inputs in transposed order (PERM is its own inverse). */
KB_TARGET_AVX512 KB_INLINE __m512 gdn_sum16x16(const __m512 *a)
{
    static const int PERM[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    __m512 b[8], c[4], d[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) { /* blocks 0-1: a[2i] half sums, 2-3: a[2i+1] */
        const __m512 x = a[PERM[2 * i]], y = a[PERM[2 * i + 1]];
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE));
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) /* block m: 4 partials of input 4i/... (one input per block) */
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) /* per block: lanes (0,1) of one input, (2,3) of the next */
        d[i] = _mm512_add_ps(_mm512_unpacklo_ps(c[2 * i], c[2 * i + 1]),
                             _mm512_unpackhi_ps(c[2 * i], c[2 * i + 1]));
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(d[0]), _mm512_castps_pd(d[1]))),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(d[0]), _mm512_castps_pd(d[1]))));
}

/* Transposes the 16x16 block a[i] lane j -> out[j] lane i (out may alias a). */
KB_TARGET_AVX512 KB_INLINE void gdn_transpose16(const __m512 *a, __m512 *out)
{
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const __m512d x0 = _mm512_castps_pd(t[4 * i]), x1 = _mm512_castps_pd(t[4 * i + 1]),
                      x2 = _mm512_castps_pd(t[4 * i + 2]), x3 = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(x0, x2));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x0, x2));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(x1, x3));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(x1, x3));
    }
    /* u[4i + m] lane 4b + e = a[4i + e] lane 4b + m: blocks still to transpose across i */
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        const __m512 p0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88),     /* blocks 0,2 | 0,2 */
            p1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD),              /* 1,3 | 1,3 */
            p2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88),
            p3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
        out[m] = _mm512_shuffle_f32x4(p0, p2, 0x88);      /* block 0 of u[m], u[4+m], u[8+m], u[12+m] */
        out[4 + m] = _mm512_shuffle_f32x4(p1, p3, 0x88);  /* block 1 */
        out[8 + m] = _mm512_shuffle_f32x4(p0, p2, 0xDD);  /* block 2 */
        out[12 + m] = _mm512_shuffle_f32x4(p1, p3, 0xDD); /* block 3 */
    }
}

/* exp(x), relative error < 2 ulp over [-87, 88]: x = n ln2 + r with ln2 split in two (exact
 * n ln2_hi), |r| <= ln2/2, a degree-7 Taylor polynomial (truncation < 1e-8), 2^n into the exponent in two halves so that
 * n = 128 still works. Below -87.3: 0 (no denormals); above 88.72: +inf. */
KB_TARGET_AVX512 KB_INLINE __m512 gdn_exp512(__m512 x)
{
    const __m512 hi = _mm512_set1_ps(88.7228f), lo = _mm512_set1_ps(-87.33655f);
    const __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x); /* ln2_hi: 9 bits */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    /* 2^n as two factors 2^(n/2): n reaches 128 at x = 88.7 */
    const __m512i ni = _mm512_cvtps_epi32(n);
    const __m512i h1 = _mm512_srai_epi32(ni, 1), h2 = _mm512_sub_epi32(ni, h1);
    const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(h1, _mm512_set1_epi32(127)), 23));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(h2, _mm512_set1_epi32(127)), 23));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    y = _mm512_mask_mov_ps(y, over, _mm512_set1_ps(__builtin_inff()));
    return _mm512_maskz_mov_ps((__mmask16)~under, y);
}

/* log1p(e) for e in [0, 1] to a few ulp relative: 2 atanh(s), s = e / (2 + e) in [0, 1/3],
 * odd series to s^17 (the next term is below 2^-30 of the sum). */
KB_TARGET_AVX512 KB_INLINE __m512 gdn_log1p01_512(__m512 e)
{
    const __m512 s = _mm512_div_ps(e, _mm512_add_ps(_mm512_set1_ps(2.0f), e));
    const __m512 s2 = _mm512_mul_ps(s, s);
    __m512 p = _mm512_set1_ps(2.0f / 17.0f);
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 15.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 13.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 11.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 9.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 7.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 5.0f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f / 3.0f));
    p = _mm512_mul_ps(p, s2);
    return _mm512_fmadd_ps(p, s, _mm512_add_ps(s, s)); /* 2s + 2s (s^2/3 + ...) */
}

/* sigmoid(x) = 1 / (1 + exp(-x)); exp(-x) = inf for x < -88.7 gives 0, as it should. */
KB_TARGET_AVX512 KB_INLINE __m512 gdn_sigmoid512(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, gdn_exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

KB_TARGET_AVX512 KB_INLINE __m512 gdn_silu512(__m512 x) { return _mm512_mul_ps(x, gdn_sigmoid512(x)); }

/* softplus(x) = max(x, 0) + log1p(exp(-|x|)): no overflow, relative accuracy where x << 0. */
KB_TARGET_AVX512 KB_INLINE __m512 gdn_softplus512(__m512 x)
{
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 e = gdn_exp512(_mm512_sub_ps(_mm512_setzero_ps(), ax));
    return _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), gdn_log1p01_512(e));
}

#endif
