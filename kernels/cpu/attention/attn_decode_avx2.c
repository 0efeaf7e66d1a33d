/* attn_decode, AVX2 + FMA + F16C: flash decoding with an online softmax over tiles of positions
 * (the cell, its tiles, softmax and prefetching: attn_decode_cell.h; the work split:
 * attn_decode_plan.h). This file brings the two vector steps:
 *  - scores: 8 accumulators cover 8/GB positions x GB heads over D; each K row is converted
 *    (F16C) once per head block and meets GB query vectors held in registers; the accumulators
 *    fold into one vector of 8 scores (hadd tree) in the lane pattern of attn_x86.h;
 *  - P V: GB heads x 8/GB vectors of D stay in registers over the tile's V rows. */
#include "attn_decode_x86.h"

/* Scores of 8 positions (row i: k + min(i, last) * stride elements) for the GB query rows at q,
 * as GB vectors of the lane pattern (lane i: head i % GB, position blk * 8/GB + i / GB). */
KB_TARGET_AVX2 KB_INLINE void kb_dec_scores(const float *q, const int64_t D, const void *k,
                                            int64_t stride, int last, const int GB, const int F16,
                                            float *sc, kb_pf_stream *pf)
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
        __m256 acc[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            acc[i] = _mm256_setzero_ps();
        for (int64_t d = 0; d < D; d += 8) {
            __m256 qv[4];
#pragma GCC unroll 4
            for (int g = 0; g < GB; g++) {
                qv[g] = _mm256_loadu_ps(q + g * D + d);
                KB_KEEP_REG(qv[g]);
            }
#pragma GCC unroll 8
            for (int pp = 0; pp < PP; pp++) {
                const __m256 kv = kb_ld8(rows[pp], d, F16);
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    acc[pp * GB + g] = _mm256_fmadd_ps(qv[g], kv, acc[pp * GB + g]);
            }
        }
        _mm256_store_ps(sc + 8 * blk, kb_sum8x8(acc));
    }
}

/* o[g] += sum_jj p[jj * GB + g] V[jj] for the tile's nt rows (v + jj * stride elements). */
KB_TARGET_AVX2 KB_INLINE void kb_dec_accumulate(float *const *o, const int64_t D, const void *v,
                                                int64_t stride, int nt, const float *p,
                                                const int GB, const int F16, kb_pf_stream *pf)
{
    const int DB = 8 / GB; /* vectors of D per head held in registers: GB x DB = 8 */
    const int64_t rb = stride * (F16 ? 2 : 4);
    for (int64_t d0 = 0; d0 < D; d0 += 8 * DB) {
        kb_pf_step(pf);
        __m256 acc[8];
#pragma GCC unroll 4
        for (int g = 0; g < GB; g++)
#pragma GCC unroll 8
            for (int k = 0; k < DB; k++)
                acc[g * DB + k] = _mm256_load_ps(o[g] + d0 + 8 * k);
        const char *row = v;
        for (int jj = 0; jj < nt; jj++, row += rb) {
            __m256 pb[4];
#pragma GCC unroll 4
            for (int g = 0; g < GB; g++)
                pb[g] = _mm256_broadcast_ss(p + jj * GB + g);
#pragma GCC unroll 8
            for (int k = 0; k < DB; k++) {
                const __m256 vv = kb_ld8(row, d0 + 8 * k, F16);
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    acc[g * DB + k] = _mm256_fmadd_ps(pb[g], vv, acc[g * DB + k]);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < GB; g++)
#pragma GCC unroll 8
            for (int k = 0; k < DB; k++)
                _mm256_store_ps(o[g] + d0 + 8 * k, acc[g * DB + k]);
    }
}

#define KB_DEC_TARGET KB_TARGET_AVX2
#define KB_DEC_PV_BLOCK(GB) (64 / (GB)) /* kb_dec_accumulate: GB heads x 8/GB vectors of 8 */
#include "attn_decode_cell.h"

KB_DEC_CELLS(cells);

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_dec_run(c, in, out, pool, cells);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_attn_decode_avx2 = {
    .family = "attn_decode",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
