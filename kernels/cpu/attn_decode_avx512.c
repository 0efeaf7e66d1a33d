/* attn_decode, AVX-512 (F, BW, VL) + F16C: the algorithm of attn_decode_avx2.c (flash decoding,
 * online softmax over tiles of 16 positions, head blocks of GB = 1, 2 or 4 q heads per kv head,
 * the next tile prefetched in address order) with 16-lane vectors along D: the score
 * accumulators fold to 8 lanes and join the same lane pattern, so the softmax step, rescale
 * and records are the shared AVX2 helpers of attn_decode_x86.h; P V keeps GB heads x 64
 * elements of D in up to 16 of the 32 registers. Not runnable on the AVX2 development machine
 * (it reports itself unavailable there); its logic was checked there against the reference
 * with these intrinsics emulated on AVX2. */
#include "attn_decode_x86.h"

#define TILE KB_DEC_TILE

/* Scores of 8 positions (row i: k + min(i, last) * stride elements) for the GB query rows at q,
 * as GB 8-lane vectors of the lane pattern (lane i: head i % GB, position blk * 8/GB + i / GB).
 * The 16-lane accumulators are folded to 8 lanes before the hadd tree. */
KB_TARGET_AVX512 KB_INLINE void scores(const float *q, int64_t D, const void *k, int64_t stride,
                                       int last, const int GB, const int F16, float *sc,
                                       kb_pf_stream *pf)
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
KB_TARGET_AVX512 KB_INLINE void accumulate(float *const *o, int64_t D, const void *v,
                                           int64_t stride, int nt, const float *p, const int GB,
                                           const int F16, kb_pf_stream *pf)
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

KB_TARGET_AVX512 KB_INLINE void cell(const kb_dec_job *J, int64_t c, int64_t j0, int64_t j1,
                                     int64_t kv0, int64_t kv1, const int GB, const int F16)
{
    const int64_t D = J->s.D, H = J->s.heads, G = H / J->s.kv_heads, rec = J->rec;
    const int64_t stride = J->s.kv_heads * D, esz = F16 ? 2 : 4;
    float *recs = J->part + c * H * rec;
    for (int64_t h = kv0 * G; h < kv1 * G; h++)
        kb_sm_record_init(recs + h * rec, D);
    /* running max and lane-wise sums per head block, in the lane pattern */
    __m256 mst[AT_MAX_HEADS], lst[AT_MAX_HEADS];
    const int64_t nblk = (kv1 - kv0) * (G / GB);
    for (int64_t b = 0; b < nblk; b++) {
        mst[b] = _mm256_set1_ps(-INFINITY);
        lst[b] = _mm256_setzero_ps();
    }
    /* scores, then weights, of the tile: p[pos * GB + g] (GB vectors per 8 positions) */
    float p[TILE * 4] __attribute__((aligned(32)));
    for (int64_t j = j0; j < j1; j += TILE) {
        const int nt = j1 - j < TILE ? (int)(j1 - j) : TILE;
        /* the next tile's rows of kv heads [kv0, kv1), spread over this tile's blocks of work:
         * a step per score block and per block of P V */
        kb_pf_stream pfk, pfv;
        const int64_t hbs = (kv1 - kv0) * (G / GB) * ((nt + 7) / 8);
        kb_dec_prefetch_next(J, j, j1, kv0, kv1, TILE, hbs * GB, hbs * (D / 64), &pfk, &pfv);
        for (int64_t kvh = kv0; kvh < kv1; kvh++) {
            const int64_t off = j * stride + kvh * D;
            const void *k = (const char *)J->k + off * esz, *v = (const char *)J->v + off * esz;
            for (int64_t g0 = 0; g0 < G; g0 += GB) {
                const int64_t h0 = kvh * G + g0, b = (kvh - kv0) * (G / GB) + g0 / GB;
                for (int s8 = 0; s8 < nt; s8 += 8)
                    scores(J->q + h0 * D, D, (const char *)k + s8 * stride * esz, stride,
                           nt - 1 - s8, GB, F16, p + s8 * GB, &pfk);
                const __m256 alpha = kb_dec_softmax_step(p, nt, &mst[b], &lst[b], GB);
                float *o[4];
#pragma GCC unroll 4
                for (int g = 0; g < GB; g++)
                    o[g] = recs + (h0 + g) * rec + KB_SM_HDR;
                kb_dec_rescale(o, D, alpha, GB);
                for (int h8 = 0; h8 < nt; h8 += 8) /* V rows 8 at a time: see KB_DEC_TILE */
                    accumulate(o, D, (const char *)v + h8 * stride * esz, stride,
                               nt - h8 < 8 ? nt - h8 : 8, p + h8 * GB, GB, F16, &pfv);
            }
        }
    }
    for (int64_t b = 0; b < nblk; b++)
        kb_dec_finish(recs, rec, (kv0 + b / (G / GB)) * G + (b % (G / GB)) * GB, mst[b], lst[b],
                      GB);
}

#define CELL(GB, F16)                                                                        \
    KB_TARGET_AVX512 static void cell_##GB##_##F16(const kb_dec_job *J, int64_t c, int64_t j0, \
                                                   int64_t j1, int64_t kv0, int64_t kv1)     \
    {                                                                                        \
        cell(J, c, j0, j1, kv0, kv1, GB, F16);                                               \
    }
CELL(1, 0)
CELL(1, 1)
CELL(2, 0)
CELL(2, 1)
CELL(4, 0)
CELL(4, 1)

static const kb_dec_cell_fn cells[5][2] = {
    [1] = {cell_1_0, cell_1_1}, [2] = {cell_2_0, cell_2_1}, [4] = {cell_4_0, cell_4_1}};

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
