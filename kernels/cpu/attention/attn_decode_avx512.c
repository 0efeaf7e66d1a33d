/* attn_decode, AVX-512 (F, BW, VL) + F16C: flash decoding with an online softmax over tiles of
 * positions, on 16-lane vectors (the cell, its tiles, softmax and prefetching:
 * attn_decode_cell512.h; the work split: attn_decode_plan.h). This file brings the two vector
 * steps:
 *  - scores: 16 accumulators cover 16/GB positions x GB heads over D; each K row is converted
 *    (F16C) once per head block and meets GB query vectors; one transpose-reduce
 *    (kb_sum16x16) turns the 16 accumulators into one vector of the 16-lane pattern;
 *  - P V: GB heads x 16/GB vectors of D (at most D) stay in registers over all the tile's V
 *    rows. */
#include "attn_decode_x86.h"

/* Prefetch steps (kb_pf_step, a tile ahead: attn_decode_cell512.h): one per 32 elements of D
 * in the scores, one per 4 V rows in P V. On the Zen 5 VM (2 cores) this spread beat a step
 * per score vector and per block of D (the shared cell's), and steps of 16 elements / 2 rows
 * or 64 elements / 8 rows, by 2-5% at T = 8192; stepping both streams through both phases (K
 * and V evenly over the whole tile) ran 3-8% slower. */
#define KB_DEC512_PF_KD 32
#define KB_DEC512_PF_ROWS 4

/* Scores of 16/GB positions (row i: k + min(i, last) * stride elements) for the GB query rows
 * at q: lane i is head i % GB, position i / GB. */
KB_TARGET_AVX512 KB_INLINE __m512 kb_dec512_scores(const float *q, const int64_t D, const void *k,
                                                   int64_t stride, int last, const int GB,
                                                   const int F16, kb_pf_stream *pf)
{
    const int PG = 16 / GB;
    const int64_t esz = F16 ? 2 : 4;
    const void *rows[16];
#pragma GCC unroll 16
    for (int pp = 0; pp < PG; pp++)
        rows[pp] = (const char *)k + (pp < last ? pp : last) * stride * esz;
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        acc[i] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
        if (d % KB_DEC512_PF_KD == 0)
            kb_pf_step(pf);
        __m512 qv[4];
#pragma GCC unroll 4
        for (int g = 0; g < GB; g++) {
            qv[g] = _mm512_loadu_ps(q + g * D + d);
            KB_KEEP_REG512(qv[g]);
        }
#pragma GCC unroll 16
        for (int pp = 0; pp < PG; pp++) {
            const __m512 kv = kb_ld16(rows[pp], d, F16);
#pragma GCC unroll 4
            for (int g = 0; g < GB; g++)
                acc[pp * GB + g] = _mm512_fmadd_ps(qv[g], kv, acc[pp * GB + g]);
        }
    }
    return kb_sum16x16(acc);
}

/* Elements of D per P V step: GB heads x 16/GB vectors of 16 in registers, at most D. */
#define KB_DEC512_PV_BLOCK(GB, D) (256 / (GB) < (D) ? 256 / (GB) : (D))

/* o[g] += sum_jj p[jj * GB + g] V[jj] for the tile's nt rows (v + jj * stride elements). */
KB_TARGET_AVX512 KB_INLINE void kb_dec512_accumulate(float *const *o, const int64_t D,
                                                     const void *v, int64_t stride, int nt,
                                                     const float *p, const int GB, const int F16,
                                                     kb_pf_stream *pf)
{
    const int DB = KB_DEC512_PV_BLOCK(GB, D) / 16; /* vectors of D per head */
    const int64_t rb = stride * (F16 ? 2 : 4);
    for (int64_t d0 = 0; d0 < D; d0 += 16 * DB) {
        __m512 acc[16];
#pragma GCC unroll 4
        for (int g = 0; g < GB; g++)
#pragma GCC unroll 16
            for (int k = 0; k < DB; k++)
                acc[g * DB + k] = _mm512_load_ps(o[g] + d0 + 16 * k);
        const char *row = v;
        for (int jj = 0; jj < nt; jj++, row += rb) {
            if (jj % KB_DEC512_PF_ROWS == 0)
                kb_pf_step(pf);
            __m512 pb[4];
#pragma GCC unroll 4
            for (int g = 0; g < GB; g++)
                pb[g] = _mm512_set1_ps(p[jj * GB + g]);
#pragma GCC unroll 16
            for (int k = 0; k < DB; k++) {
                const __m512 vv = kb_ld16(row, d0 + 16 * k, F16);
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    acc[g * DB + k] = _mm512_fmadd_ps(pb[g], vv, acc[g * DB + k]);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < GB; g++)
#pragma GCC unroll 16
            for (int k = 0; k < DB; k++)
                _mm512_store_ps(o[g] + d0 + 16 * k, acc[g * DB + k]);
    }
}

#include "attn_decode_cell512.h"

KB_DEC512_CELLS(cells);

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
