/* The cell of the AVX2 decode kernel (AVX-512 has its own: attn_decode_cell512.h): positions
 * [j0, j1) of kv heads [kv0, kv1) with all their q heads, one partial record per q head
 * (attn_decode_plan.h). The ISA file brings its two vector steps; before including this header
 * it defines
 *   KB_DEC_TARGET        its target attribute;
 *   KB_DEC_PV_BLOCK(GB)  the elements of D that one step of its P V loop covers;
 *   kb_dec_scores(q, D, k, stride, last, GB, F16, sc, pf)
 *       the scores of 8 positions (row i at k + min(i, last) * stride elements) for the GB
 *       query rows at q, stored at sc as GB vectors of the lane pattern of attn_x86.h; pf
 *       advances a step per vector;
 *   kb_dec_accumulate(o, D, v, stride, nt, p, GB, F16, pf)
 *       o[g] += sum_jj p[jj * GB + g] V[jj] over nt <= 8 rows (v + jj * stride elements); pf
 *       advances a step per KB_DEC_PV_BLOCK(GB) elements of D.
 *
 * For each tile and each block of GB heads (1, 2 or 4) of a kv head: the scores (each K row
 * converted once per head block), the online-softmax step on their vectors (the accumulators
 * rescaled only when some alpha differs from 1: the max settles after a few tiles), then P V.
 * The cache is read in the order [tile][kv head], runs of D elements kv_heads * D apart, which
 * the hardware prefetchers do not follow (a synthetic kernel of the same work ran at half the
 * read bandwidth in this order, at all of it in address order), so the next tile is prefetched
 * in address order, a few lines per step of work. On Zen 3 a distance of one tile beat 0.5,
 * 0.75, 1.5 and 2 tiles; one burst per call, a line per step, or prefetching the next kv head's
 * rows as well all ran slower.
 */
#ifndef KB_ATTN_DECODE_CELL_H
#define KB_ATTN_DECODE_CELL_H

#include "attn_decode_x86.h"

KB_DEC_TARGET KB_INLINE void kb_dec_cell(const kb_dec_job *J, int64_t c, int64_t j0, int64_t j1,
                                         int64_t kv0, int64_t kv1, const int GB, const int F16,
                                         const int64_t D)
{
    const int64_t H = J->s.heads, G = H / J->s.kv_heads, NB = G / GB, rec = J->rec;
    const int64_t stride = J->s.kv_heads * D, esz = F16 ? 2 : 4;
    float *recs = J->part + c * H * rec;
    for (int64_t h = kv0 * G; h < kv1 * G; h++)
        kb_sm_record_init(recs + h * rec, D);
    /* running max and lane-wise sums per head block, in the lane pattern */
    __m256 mst[AT_MAX_HEADS], lst[AT_MAX_HEADS];
    const int64_t nblk = (kv1 - kv0) * NB;
    for (int64_t b = 0; b < nblk; b++) {
        mst[b] = _mm256_set1_ps(-INFINITY);
        lst[b] = _mm256_setzero_ps();
    }
    /* scores, then weights, of the tile: p[pos * GB + g] (GB vectors per 8 positions) */
    float p[KB_DEC_TILE * 4] __attribute__((aligned(32)));
    for (int64_t j = j0; j < j1; j += KB_DEC_TILE) {
        const int nt = j1 - j < KB_DEC_TILE ? (int)(j1 - j) : KB_DEC_TILE;
        /* the next tile, spread over this one: a step per score block (GB per kb_dec_scores
         * call) and per step of P V */
        kb_pf_stream pfk, pfv;
        const int64_t calls = nblk * ((nt + 7) / 8);
        kb_dec_prefetch_next(J, j, kv0, kv1, KB_DEC_TILE, calls * GB,
                             calls * D / KB_DEC_PV_BLOCK(GB), &pfk, &pfv);
        /* these nested loops measured a few percent faster than one loop over the blocks,
         * with the same inner loops */
        for (int64_t kvh = kv0; kvh < kv1; kvh++) {
            const int64_t off = j * stride + kvh * D;
            const char *k = (const char *)J->k + off * esz, *v = (const char *)J->v + off * esz;
            for (int64_t g0 = 0; g0 < G; g0 += GB) {
                const int64_t h0 = kvh * G + g0, b = (kvh - kv0) * NB + g0 / GB;
                for (int s8 = 0; s8 < nt; s8 += 8)
                    kb_dec_scores(J->q + h0 * D, D, k + s8 * stride * esz, stride, nt - 1 - s8,
                                  GB, F16, p + s8 * GB, &pfk);
                const __m256 alpha = kb_dec_softmax_step(p, nt, &mst[b], &lst[b], GB);
                float *o[4];
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    o[g] = recs + (h0 + g) * rec + KB_SM_HDR;
                kb_dec_rescale(o, D, alpha, GB);
                for (int h8 = 0; h8 < nt; h8 += 8) /* V rows 8 at a time: see KB_DEC_TILE */
                    kb_dec_accumulate(o, D, v + h8 * stride * esz, stride,
                                      nt - h8 < 8 ? nt - h8 : 8, p + h8 * GB, GB, F16, &pfv);
            }
        }
    }
    for (int64_t b = 0; b < nblk; b++) /* block b: heads kv0 * G + b * GB .. + GB - 1 */
        kb_dec_finish(recs, rec, kv0 * G + b * GB, mst[b], lst[b], GB);
}

#define KB_DEC_CELLS(name) KB_DEC_TABLE(name, KB_DEC_TARGET, kb_dec_cell)

#endif
