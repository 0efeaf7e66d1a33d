/* attn_decode, AVX-512 (F, BW, VL) + F16C: the cell of attn_decode_cell.h (flash decoding,
 * online softmax over tiles of 16 positions, head blocks of GB = 1, 2 or 4 q heads per kv head,
 * the next tile prefetched in address order) with 16-lane vector steps along D: the score
 * accumulators fold to 8 lanes and join the same lane pattern, so the softmax step, rescale and
 * records are the shared AVX2 helpers of attn_decode_x86.h; P V keeps GB heads x 64 elements
 * of D in up to 16 of the 32 registers. Not runnable on the AVX2 development machine (it
 * reports itself unavailable there); test_attention checks it on an AVX-512 host. */
#include "attn_decode_x86.h"

/* Scores of 8 positions (row i: k + min(i, last) * stride elements) for the GB query rows at q,
 * as GB 8-lane vectors of the lane pattern (lane i: head i % GB, position blk * 8/GB + i / GB).
 * The 16-lane accumulators are folded to 8 lanes before the hadd tree. */
KB_TARGET_AVX512 KB_INLINE void kb_dec_scores(const float *q, const int64_t D, const void *k,
                                              int64_t stride, int last, const int GB,
                                              const int F16, float *sc, kb_pf_stream *pf)
{
    const int PP = 8 / GB;
    const int64_t esz = F16 ? 2 : 4;
#pragma GCC unroll 4
    for (int blk = 0; blk < GB; blk++) {
        kb_pf_step(pf);
        const void *rows[8];
#pragma GCC unroll 8
        for (int pp = 0; pp < PP; pp++) {
            const int i = blk * PP + pp < last ? blk * PP + pp : last;
            rows[pp] = (const char *)k + i * stride * esz;
        }
        __m512 acc[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            acc[i] = _mm512_setzero_ps();
        for (int64_t d = 0; d < D; d += 16) {
            __m512 qv[4];
#pragma GCC unroll 4
            for (int g = 0; g < GB; g++) {
                qv[g] = _mm512_loadu_ps(q + g * D + d);
                KB_KEEP_REG512(qv[g]);
            }
#pragma GCC unroll 8
            for (int pp = 0; pp < PP; pp++) {
                const __m512 kv = kb_ld16(rows[pp], d, F16);
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    acc[pp * GB + g] = _mm512_fmadd_ps(qv[g], kv, acc[pp * GB + g]);
            }
        }
        _mm256_store_ps(sc + 8 * blk, kb_sum8x16(acc));
    }
}

/* o[g] += sum_jj p[jj * GB + g] V[jj] for the tile's nt rows (v + jj * stride elements): GB
 * heads x 4 vectors of 16 (64 elements of D) in registers per block. */
KB_TARGET_AVX512 KB_INLINE void kb_dec_accumulate(float *const *o, const int64_t D,
                                                  const void *v, int64_t stride, int nt,
                                                  const float *p, const int GB, const int F16,
                                                  kb_pf_stream *pf)
{
    const int64_t rb = stride * (F16 ? 2 : 4);
    for (int64_t d0 = 0; d0 < D; d0 += 64) {
        kb_pf_step(pf);
        __m512 acc[16];
#pragma GCC unroll 4
        for (int g = 0; g < GB; g++)
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                acc[g * 4 + k] = _mm512_load_ps(o[g] + d0 + 16 * k);
        const char *row = v;
        for (int jj = 0; jj < nt; jj++, row += rb) {
            __m512 pb[4];
#pragma GCC unroll 4
            for (int g = 0; g < GB; g++)
                pb[g] = _mm512_set1_ps(p[jj * GB + g]);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                const __m512 vv = kb_ld16(row, d0 + 16 * k, F16);
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    acc[g * 4 + k] = _mm512_fmadd_ps(pb[g], vv, acc[g * 4 + k]);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < GB; g++)
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                _mm512_store_ps(o[g] + d0 + 16 * k, acc[g * 4 + k]);
    }
}

#define KB_DEC_TARGET KB_TARGET_AVX512
#define KB_DEC_PV_BLOCK(GB) 64 /* kb_dec_accumulate: 64 elements of D per step, any GB */
#include "attn_decode_cell.h"

KB_DEC_CELLS(cells);

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_dec_run(c, in, out, pool, cells);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_attn_decode_avx512 = {
    .family = "attn_decode",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
