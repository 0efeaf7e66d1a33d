/* AVX-512 helpers of the MLA kernels: 16 cache or weight elements as f32, and 2^x. */
#ifndef KB_MLA_X86_H
#define KB_MLA_X86_H

#include <math.h>

#include "simd_x86.h"

/* 16 bf16 (f32 = bits << 16, exact) or f16 (F16C) elements at p, as f32. */
KB_TARGET_AVX512 KB_INLINE __m512 kb_mla_ld16(const uint16_t *p, const int f16)
{
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    if (f16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* 16 weights at element i of a row: f32, or bf16 when bf16. */
KB_TARGET_AVX512 KB_INLINE __m512 kb_mla_ldw(const void *w, int64_t i, const int bf16)
{
    if (bf16)
        return kb_mla_ld16((const uint16_t *)w + i, 0);
    return _mm512_loadu_ps((const float *)w + i);
}

/* 16 f32 to bf16, rounded to nearest even (finite inputs), in integer ops: AVX-512F suffices. */
KB_TARGET_AVX512 KB_INLINE __m256i kb_mla_to_bf16(__m512 x)
{
    const __m512i b = _mm512_castps_si512(x);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

/* 2^x for x <= 2^7 (callers pass s - m <= the lazy-rescale slack): nearest integer n and
 * f = x - n in [-0.5, 0.5], 2^f by a degree-6 polynomial (relative error < 2e-7), n into the
 * exponent. Below -125, -inf included, the result is 0 (no denormals, masked scores weigh 0). */
KB_TARGET_AVX512 KB_INLINE __m512 kb_mla_exp2(__m512 x)
{
    const __m512 lo = _mm512_set1_ps(-125.0f);
    const __mmask16 ok = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_max_ps(x, lo);
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    const __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(n), 23);
    return _mm512_maskz_mov_ps(ok, _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), e)));
}

#endif
