/* The cell of the AVX-512 decode kernel: positions [j0, j1) of kv heads [kv0, kv1) with all their
 * q heads, one partial record per q head (attn_decode_plan.h), like attn_decode_cell.h but on
 * 16-lane vectors throughout. attn_decode_avx512.c defines, before including it,
 *   KB_DEC512_PF_KD, KB_DEC512_PF_ROWS, KB_DEC512_PV_BLOCK(GB, D)  its prefetch steps (below);
 *   kb_dec512_scores(q, D, k, stride, last, GB, F16, pf)
 *       one vector of scores in the 16-lane pattern (lane i: head i % GB, position i / GB) for
 *       16 / GB positions (row i at k + min(i, last) * stride elements), a prefetch step per
 *       KB_DEC512_PF_KD elements of D;
 *   kb_dec512_accumulate(o, D, v, stride, nt, p, GB, F16, pf)
 *       o[g] += sum_jj p[jj * GB + g] V[jj] over the tile's nt rows, in passes of
 *       KB_DEC512_PV_BLOCK(GB, D) elements of D, a prefetch step per KB_DEC512_PF_ROWS rows.
 *
 * Per tile and block of GB heads: scores (one transpose-reduce per 16 dot products, stored to
 * the weights buffer), the online-softmax step on GB * tile / 16 vectors, the rescale when some
 * alpha differs from 1, then P V over all the tile's rows per block of D. The blocks are
 * software-pipelined: the scores of block b come before the P V of block b - 1, so the softmax
 * step's latency chain (max, exp2) is not exposed (3.5% at T = 2048 in cache). The next tile is
 * prefetched in address order, as in attn_decode_cell.h (the same stream helpers).
 *
 * Why not the shared cell: on the Zen 5 VM (2 cores) its 8-lane pattern (accumulators folded to
 * 8 lanes, hadd trees, 8-lane exp2) left the AVX-512 kernel at ~90 GFLOP/s per thread: 1.5 ms at
 * T = 8192 (Llama-3-8B heads, f16 cache), 74-78% of the read bandwidth at 1 thread, 73-75% at 2
 * (3-round medians); 2 zmm FMAs per cycle measured there, f16 conversions hidden at 1 per 4
 * FMAs. This cell: 330 -> 236 us at T = 2048 in cache, and 86-93% / 80-91% of read at T = 8192
 * (3-round medians, interleaved with the old cell in the same runs). */
#ifndef KB_ATTN_DECODE_CELL512_H
#define KB_ATTN_DECODE_CELL512_H

#include "attn_decode_x86.h"

/* Positions per online-softmax step (a multiple of 16), which is also the prefetch distance (the
 * next tile, 64 KiB of K and V ahead at Llama-3-8B shapes). On the Zen 5 VM at T = 8192: 16
 * gave 93%/88% of read at 1/2 threads where 32 gave 82%/80% (3 rounds), though 32 is 7% faster
 * in cache (fewer softmax steps and accumulator passes); 32 with the prefetch 16 or 24
 * positions ahead, or two tiles ahead, ran slower still, as did prefetching into L2 (T1) or a
 * second T1 stream further ahead, and prefetching in the order of use (rows of the kv head 2 or
 * 4 ahead). Without software prefetch it runs at 40% of read. */
#define KB_DEC512_TILE 16

/* The online-softmax step of one head block over the tile's nv score vectors at p (nt
 * positions), in place: they become the weights p[pos * GB + g]; returns alpha in the pattern. */
KB_TARGET_AVX512 KB_INLINE __m512 kb_dec512_softmax(int nv, int nt, float *p, __m512 *mst,
                                                    __m512 *lst, const int GB)
{
    const int PG = 16 / GB;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    if (nt < nv * PG) { /* lanes past the tile's end: -inf */
        const __m512i pos = _mm512_srli_epi32(
            _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
            GB == 4 ? 2 : GB == 2 ? 1 : 0);
        const __mmask16 past =
            _mm512_cmpge_epi32_mask(pos, _mm512_set1_epi32(nt - (nv - 1) * PG));
        _mm512_store_ps(p + 16 * (nv - 1),
                        _mm512_mask_mov_ps(_mm512_load_ps(p + 16 * (nv - 1)), past, ninf));
    }
    __m512 mx = ninf;
    for (int v = 0; v < nv; v++)
        mx = _mm512_max_ps(mx, _mm512_load_ps(p + 16 * v));
    const __m512 m_old = *mst;
    const __m512 m_new = _mm512_max_ps(m_old, kb_pattern_max512(mx, GB));
    /* the rules of attn_softmax.h, lane-wise: subtract 0 while the max is -inf; alpha = 0
     * while the old max is -inf */
    const __m512 m_use =
        _mm512_mask_mov_ps(m_new, _mm512_cmp_ps_mask(m_new, ninf, _CMP_EQ_OQ), _mm512_setzero_ps());
    const __m512 alpha = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m_old, ninf, _CMP_NEQ_UQ),
                                             kb_exp2_avx512(_mm512_sub_ps(m_old, m_use)));
    __m512 psum = _mm512_setzero_ps();
    for (int v = 0; v < nv; v++) {
        const __m512 e = kb_exp2_avx512(_mm512_sub_ps(_mm512_load_ps(p + 16 * v), m_use));
        psum = _mm512_add_ps(psum, e);
        _mm512_store_ps(p + 16 * v, e);
    }
    *lst = _mm512_fmadd_ps(*lst, alpha, psum);
    *mst = m_new;
    return alpha;
}

/* o[g][0..D) *= alpha of head g (lane g of the pattern), unless every alpha is 1. */
KB_TARGET_AVX512 KB_INLINE void kb_dec512_rescale(float *const *o, int64_t D, __m512 alpha,
                                                  const int GB)
{
    if (!_mm512_cmp_ps_mask(alpha, _mm512_set1_ps(1.0f), _CMP_NEQ_UQ))
        return;
    float a[16] __attribute__((aligned(64)));
    _mm512_store_ps(a, alpha);
    for (int g = 0; g < GB; g++) {
        const __m512 ag = _mm512_set1_ps(a[g]);
        for (int64_t d = 0; d < D; d += 16)
            _mm512_store_ps(o[g] + d, _mm512_mul_ps(ag, _mm512_load_ps(o[g] + d)));
    }
}

KB_TARGET_AVX512 KB_INLINE void kb_dec512_cell(const kb_dec_job *J, int64_t c, int64_t j0,
                                               int64_t j1, int64_t kv0, int64_t kv1,
                                               const int GB, const int F16, const int64_t D)
{
    const int PG = 16 / GB; /* positions per score vector */
    const int64_t H = J->s.heads, G = H / J->s.kv_heads, NB = G / GB, rec = J->rec;
    const int64_t stride = J->s.kv_heads * D, esz = F16 ? 2 : 4;
    float *recs = J->part + c * H * rec;
    for (int64_t h = kv0 * G; h < kv1 * G; h++)
        kb_sm_record_init(recs + h * rec, D);
    /* running max and lane-wise sums per head block, in the pattern */
    __m512 mst[AT_MAX_HEADS], lst[AT_MAX_HEADS];
    const int64_t nblk = (kv1 - kv0) * NB;
    for (int64_t b = 0; b < nblk; b++) {
        mst[b] = _mm512_set1_ps(-INFINITY);
        lst[b] = _mm512_setzero_ps();
    }
    float p[2][KB_DEC512_TILE * 4] __attribute__((aligned(64)));
    for (int64_t j = j0; j < j1; j += KB_DEC512_TILE) {
        const int nt = j1 - j < KB_DEC512_TILE ? (int)(j1 - j) : KB_DEC512_TILE;
        const int nv = (nt + PG - 1) / PG;
        /* the next tile, spread over this one: steps of KB_DEC512_PF_KD elements of D in the
         * scores, of KB_DEC512_PF_ROWS rows in P V */
        kb_pf_stream pfk, pfv;
        const int64_t kd = D < KB_DEC512_PF_KD ? 1 : D / KB_DEC512_PF_KD;
        kb_dec_prefetch_next(J, j, kv0, kv1, KB_DEC512_TILE, nblk * nv * kd,
                             nblk * (D / KB_DEC512_PV_BLOCK(GB, D)) *
                                 ((nt + KB_DEC512_PF_ROWS - 1) / KB_DEC512_PF_ROWS),
                             &pfk, &pfv);
        /* software-pipelined over the head blocks: the scores of block b come before the
         * P V of block b - 1, so the latency of b - 1's softmax step is not exposed */
        for (int64_t b = 0; b <= nblk; b++) {
            if (b < nblk) {
                const int64_t kvh = kv0 + b / NB, h0 = kvh * G + b % NB * GB;
                const char *k = (const char *)J->k + (j * stride + kvh * D) * esz;
                float *pb = p[b & 1];
                for (int i = 0; i < nv; i++)
                    _mm512_store_ps(pb + 16 * i,
                                    kb_dec512_scores(J->q + h0 * D, D, k + i * PG * stride * esz,
                                                     stride, nt - 1 - i * PG, GB, F16, &pfk));
            }
            if (b > 0) {
                const int64_t kvh = kv0 + (b - 1) / NB, h0 = kvh * G + (b - 1) % NB * GB;
                const char *v = (const char *)J->v + (j * stride + kvh * D) * esz;
                float *o[4];
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    o[g] = recs + (h0 + g) * rec + KB_SM_HDR;
                kb_dec512_accumulate(o, D, v, stride, nt, p[(b - 1) & 1], GB, F16, &pfv);
            }
            if (b < nblk) {
                const int64_t h0 = (kv0 + b / NB) * G + b % NB * GB;
                const __m512 alpha = kb_dec512_softmax(nv, nt, p[b & 1], &mst[b], &lst[b], GB);
                float *o[4];
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    o[g] = recs + (h0 + g) * rec + KB_SM_HDR;
                kb_dec512_rescale(o, D, alpha, GB);
            }
        }
    }
    for (int64_t b = 0; b < nblk; b++) { /* block b: heads kv0 * G + b * GB .. + GB - 1 */
        float m[16], l[16];
        _mm512_storeu_ps(m, mst[b]);
        _mm512_storeu_ps(l, kb_pattern_sum512(lst[b], GB));
        for (int g = 0; g < GB; g++) {
            recs[(kv0 * G + b * GB + g) * rec + KB_SM_M] = m[g];
            recs[(kv0 * G + b * GB + g) * rec + KB_SM_L] = l[g];
        }
    }
}

#define KB_DEC512_CELLS(name) KB_DEC_TABLE(name, KB_TARGET_AVX512, kb_dec512_cell)

#endif
