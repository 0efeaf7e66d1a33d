/* The int8-activation matvec_q4_0 kernel on ymm, for AVX2 (matvec_q4_0_avx2_i8.c) and AVX-VNNI
 * (matvec_q4_0_avxvnni.c): all of it but the integer dot products, which the including file
 * defines first, with its target:
 *   #define MVQ_TARGET  its KB_TARGET_* attribute (every function below carries it, so that its
 *                       dot products inline here)
 *   __m256i dot_pair(__m256i lo, __m256i xlo, __m256i hi, __m256i xhi)
 *                       i32 lanes of lo . xlo + hi . xhi, each lane four products of each
 *                       (unsigned codes 0..15 x signed int8 activations)
 *   __m256i dot_one(__m256i q, __m256i x, int32_t off)   off + q . x per lane
 *
 * Each weight block meets x (mvq_i8.h) with integer dot products, then f32 and
 * acc += (d_w * d_x) * sum per block. The -8 of the codes stays out of the integer lanes:
 * sum (q - 8) x = sum q x - 8 sum x, and sum_b d_w d_x sum(x_q) is accumulated per row four
 * blocks at a time (see quad_dot). One row at a time (a single stream per thread prefetches best:
 * two or four interleaved rows measured slower with cold weights), software prefetch ahead, the
 * next four blocks' weights loaded while the current four's dot products run; tokens > 1 reuse
 * each weight quad from registers for all tokens. */
#ifndef KB_MVQ_Q4_0_I8_YMM_H
#define KB_MVQ_Q4_0_I8_YMM_H

#include "mvq_i8.h"
#include "mvq_q4_0_ymm.h"

#ifndef MVQ_TARGET
#error "define MVQ_TARGET and the dot products before including mvq_q4_0_i8_ymm.h"
#endif

/* Four blocks of one row from block b (a multiple of 4; p points at block b) against T tokens.
 * Two blocks share a ymm: [codes of A | codes of B]; masking gives their low nibbles (weights
 * 0..15) and, shifted, their high nibbles (16..31), and the activations are stored to match
 * (KB_XQ_PAIR_Q4: [xA 0..15 | xB 0..15], [xA 16..31 | xB 16..31]): dot_pair gives i32 lanes
 * 0..3 for A and 4..7 for B.
 * Scales: the four f16 scales are converted together (one vcvtph2ps) and multiplied with the
 * four activation scales in one xmm; S = [s0 s1 s2 s3 | s1 s2 s3 s0], so that vpermilps 0x00
 * gives [s0 x4 | s1 x4] and 0xAA gives [s2 x4 | s3 x4]. The code bias -8 is not in the
 * integer lanes: oacc[t] collects sum d_w * dsum (the blocks' sums of x), taken 8 times off at
 * the end. acc[k * T + t], k < 2: one FMA chain per pair slot. */
typedef struct {
    __m256i lo[2], hi[2];
    __m128 dw;
} quad_w;

/* The weight side of a quad: codes expanded, scales converted. */
MVQ_TARGET KB_INLINE quad_w quad_load(const uint8_t *p)
{
    const int64_t bs = (int64_t)sizeof(block_q4_0);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    quad_w q;
    q.dw = kb_f16x4(p, bs);
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++) {
        const uint8_t *pa = p + 2 * k * bs + 2;
        __m256i v = _mm256_loadu2_m128i((const __m128i *)(pa + bs), (const __m128i *)pa);
        q.lo[k] = _mm256_and_si256(v, m4);
        q.hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    return q;
}

/* The quad's dot products with T tokens of activations from block b. */
MVQ_TARGET KB_INLINE void quad_dot(const quad_w *q, const kb_xq *xq, int64_t b, const int T,
                                   __m256 *acc, __m128 *oacc)
{
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m128 s4 = _mm_mul_ps(q->dw, _mm_loadu_ps(xq->d + i));
        oacc[t] = _mm_fmadd_ps(q->dw, _mm_loadu_ps(xq->dsum + i), oacc[t]);
        const __m256 s = _mm256_set_m128(_mm_permute_ps(s4, _MM_SHUFFLE(0, 3, 2, 1)), s4);
        const int8_t *xb = xq->q + i * 32;
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            const __m256i dot =
                dot_pair(q->lo[k], _mm256_loadu_si256((const __m256i *)(xb + 64 * k)), q->hi[k],
                         _mm256_loadu_si256((const __m256i *)(xb + 64 * k + 32)));
            acc[k * T + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                             _mm256_permutevar_ps(s, _mm256_set1_epi32(k ? 2 : 0)),
                                             acc[k * T + t]);
        }
    }
}

/* One block (the tail of a row when nb % 4 != 0), bias cancelled in the integer lanes by the
 * quantizer's offset (-sum(x_q) per lane). */
MVQ_TARGET KB_INLINE void single(const uint8_t *p, const kb_xq *xq, int64_t b, const int T,
                                 __m256 *acc)
{
    const __m256i shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2)));
    q = _mm256_and_si256(_mm256_srlv_epi32(q, shift), m4); /* [weights 0..15 | 16..31] */
    const __m256 dw = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const int8_t *xl = xq->q + (i & ~(int64_t)1) * 32 + (b & 1) * 16; /* pair layout */
        __m256i xv = _mm256_loadu2_m128i((const __m128i *)(xl + 32), (const __m128i *)xl);
        const __m256i dot = dot_one(q, xv, xq->off[i]);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                 _mm256_mul_ps(dw, _mm256_broadcast_ss(xq->d + i)), acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token). */
MVQ_TARGET KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T)
{
    __m256 acc[2 * MV_MAX_TOKENS];
    __m128 oacc[MV_MAX_TOKENS];
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q4_0);
    const kb_xq xq = *(const kb_xq *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    mvq_q4_acc_zero(acc, oacc, T);
    int64_t b = 0;
    if (nb >= 4) { /* software-pipelined: the next quad's weights load during this one's dots */
        quad_w cur = quad_load(w);
        for (; b + 8 <= nb; b += 4) {
            /* one line per 72-byte quad; the hardware prefetcher covers the rest */
            _mm_prefetch((const char *)(w + b * bs + MVQ_PF_DIST), _MM_HINT_T0);
            quad_w nxt = quad_load(w + (b + 4) * bs);
            quad_dot(&cur, &xq, b, T, acc, oacc);
            cur = nxt;
        }
        quad_dot(&cur, &xq, b, T, acc, oacc);
        b += 4;
    }
    for (; b < nb; b++)
        single(w + b * bs, &xq, b, T, acc);
    mvq_q4_acc_store(j, r, T, acc, oacc);
}

MVQ_I8_KERNEL(MVQ_TARGET, block_q4_0, 1, KB_XQ_PAIR_Q4)

#endif
