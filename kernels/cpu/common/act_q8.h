/* The int8-activation trick (GGML's Q8 activations): x is quantized per 32-block to int8 with an
 * f32 scale, d = max|x| / 127, q = round(x / d), inside the timed run, so that the weight blocks
 * meet it with integer dot products. Besides q and d, every block carries an integer offset
 * off = -mult * sum(q): kernels whose weight bytes are biased (Q4_0 codes 0..15 stand for -8..7;
 * Q8_0 weights xor 0x80 for an unsigned VNNI operand) start each block's integer lanes from it, so
 * the bias cancels exactly (see the kernels for the value of mult they need); or they use
 * dsum = d * sum(q) to cancel it in f32, once per several blocks.
 *
 * Layouts of a token's int8 data:
 *   KB_XQ_NATURAL  block b at bytes [32b, 32b + 32), in order.
 *   KB_XQ_PAIR_Q4  blocks paired (2k, 2k+1) in 64 bytes: x[2k][0..15], x[2k+1][0..15],
 *                  x[2k][16..31], x[2k+1][16..31] (how a ymm holds two Q4_0 blocks' nibbles).
 *   KB_XQ_QUAD_Q4  blocks in fours (4k .. 4k+3) in 128 bytes: x[4k+u][0..15] for u = 0..3, then
 *                  x[4k+u][16..31] for u = 0..3 (how a zmm holds four Q4_0 blocks' nibbles).
 *   KB_XQ_I16      the same values as int16, block b at int16 [32b, 32b + 32) (for vpmaddwd
 *                  against sign-extended Q8_0 weights: no unsigned operand needed).
 * The number of blocks is padded to a multiple of 4 (nbp) with zero blocks (q = 0, d = 0,
 * off = 0, dsum = 0). */
#ifndef KB_ACT_Q8_H
#define KB_ACT_Q8_H

#include "simd_x86.h"

enum { KB_XQ_NATURAL, KB_XQ_PAIR_Q4, KB_XQ_QUAD_Q4, KB_XQ_I16 };

typedef struct kb_xq {
    int8_t *q;    /* [tokens][nbp * 32] (KB_XQ_I16: q16 instead) */
    int16_t *q16; /* [tokens][nbp * 32] for KB_XQ_I16, else NULL */
    float *d;     /* [tokens][nbp] */
    int32_t *off; /* [tokens][nbp] */
    float *dsum;  /* [tokens][nbp]: d * sum(q), the block's sum of x as quantized */
    int64_t nb, nbp;
} kb_xq;

static inline size_t kb_xq_bytes(int64_t tokens, int64_t cols)
{
    int64_t nbp = (cols / 32 + 3) & ~(int64_t)3;
    return (size_t)(tokens * nbp) * (64 + 4 + 4 + 4);
}

/* Quantizes x [tokens][cols] into mem (kb_xq_bytes(tokens, cols), 64-byte aligned). */
KB_TARGET_AVX2 static inline void kb_xq_quantize(kb_xq *xq, void *mem, const float *x,
                                                 int64_t tokens, int64_t cols, int mult,
                                                 int layout)
{
    const int64_t nb = cols / 32, nbp = (nb + 3) & ~(int64_t)3;
    xq->nb = nb;
    xq->nbp = nbp;
    xq->q = layout == KB_XQ_I16 ? NULL : mem;
    xq->q16 = layout == KB_XQ_I16 ? mem : NULL;
    xq->d = (float *)((char *)mem + tokens * nbp * 64);
    xq->off = (int32_t *)(xq->d + tokens * nbp);
    xq->dsum = (float *)(xq->off + tokens * nbp);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t t = 0; t < tokens; t++) {
        const float *xt = x + t * cols;
        int8_t *qt = layout == KB_XQ_I16 ? NULL : xq->q + t * nbp * 32;
        int16_t *qt16 = layout == KB_XQ_I16 ? xq->q16 + t * nbp * 32 : NULL;
        float *dt = xq->d + t * nbp;
        int32_t *ot = xq->off + t * nbp;
        float *st = xq->dsum + t * nbp;
        for (int64_t b = 0; b < nbp; b++) {
            __m256 v0 = _mm256_setzero_ps(), v1 = v0, v2 = v0, v3 = v0; /* pad blocks: zero */
            if (b < nb) {
                v0 = _mm256_loadu_ps(xt + 32 * b);
                v1 = _mm256_loadu_ps(xt + 32 * b + 8);
                v2 = _mm256_loadu_ps(xt + 32 * b + 16);
                v3 = _mm256_loadu_ps(xt + 32 * b + 24);
            }
            __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask),
                                                   _mm256_and_ps(v1, absmask)),
                                     _mm256_max_ps(_mm256_and_ps(v2, absmask),
                                                   _mm256_and_ps(v3, absmask)));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
            const float amax = _mm_cvtss_f32(m4);
            const float d = amax / 127.0f;
            const __m256 id = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
            /* round to nearest (even on ties: the MXCSR default) */
            __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id));
            __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
            __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id));
            __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
            __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
            dt[b] = d;
            ot[b] = -mult * _mm_cvtsi128_si32(s4);
            st[b] = d * (float)_mm_cvtsi128_si32(s4);
            if (layout == KB_XQ_I16) { /* i32 -> i16, undoing the lane interleave of the packs */
                _mm256_storeu_si256((__m256i *)(qt16 + 32 * b),
                                    _mm256_permute4x64_epi64(_mm256_packs_epi32(i0, i1), 0xD8));
                _mm256_storeu_si256((__m256i *)(qt16 + 32 * b + 16),
                                    _mm256_permute4x64_epi64(_mm256_packs_epi32(i2, i3), 0xD8));
                continue;
            }
            /* 32 x i32 -> 32 x i8, then undo the lane interleave of the packs */
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            p = _mm256_permutevar8x32_epi32(p, perm);
            if (layout == KB_XQ_PAIR_Q4) {
                int8_t *base = qt + (b >> 1) * 64 + (b & 1) * 16;
                _mm_storeu_si128((__m128i *)base, _mm256_castsi256_si128(p));
                _mm_storeu_si128((__m128i *)(base + 32), _mm256_extracti128_si256(p, 1));
            } else if (layout == KB_XQ_QUAD_Q4) {
                int8_t *base = qt + (b >> 2) * 128 + (b & 3) * 16;
                _mm_storeu_si128((__m128i *)base, _mm256_castsi256_si128(p));
                _mm_storeu_si128((__m128i *)(base + 64), _mm256_extracti128_si256(p, 1));
            } else {
                _mm256_storeu_si256((__m256i *)(qt + 32 * b), p);
            }
        }
    }
}

#endif
