/* AVX-512 helpers the x86 mma kernels share: a 16 x 16 transpose, and the store of a tile's
 * sums (held as the microkernels hold them: vectors along 32 tokens, one per weight row) into
 * rows of C. */
#ifndef KB_MMA_X86_H
#define KB_MMA_X86_H

#include "mma_cpu.h"
#include "simd_x86.h"

#define KB_MMA_MR 32 /* tokens per tile in every x86 kernel: two zmm of f32 */

/* 16 x 16 floats: r[i][l] becomes r[l][i]. Four stages; stage s swaps the off-diagonal s x s
 * blocks of every 2s x 2s block: rows i (bit s clear) and i + s exchange lanes. The indices of
 * a stage: row i takes its own lanes l without bit s, then row i+s's lanes l - s; row i + s
 * takes row i's lanes l + s, then its own. */
static const int32_t KB_MMA_TR_IDX[4][2][16] = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
     {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
     {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
     {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
};

KB_TARGET_AVX512 KB_INLINE void kb_mma_tr_stage(__m512 r[16], const int st, const int s)
{
    const __m512i ilo = _mm512_loadu_si512(KB_MMA_TR_IDX[st][0]);
    const __m512i ihi = _mm512_loadu_si512(KB_MMA_TR_IDX[st][1]);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        if (!(i & s)) {
            const __m512 a = r[i], b = r[i + s];
            r[i] = _mm512_permutex2var_ps(a, ilo, b);
            r[i + s] = _mm512_permutex2var_ps(a, ihi, b);
        }
}

KB_TARGET_AVX512 KB_INLINE void kb_mma_transpose16(__m512 r[16])
{
    kb_mma_tr_stage(r, 0, 8);
    kb_mma_tr_stage(r, 1, 4);
    kb_mma_tr_stage(r, 2, 2);
    kb_mma_tr_stage(r, 3, 1);
}

/* A tile's sums, tile[j][r] = C[r][j] for j < nr (<= 16), r < 32, to rows..rows of C at c
 * (row stride ldc): rows x cols of them. shift (a planted bug) takes column j + 1 for j. */
KB_TARGET_AVX512 static inline void kb_mma_flush_tile(const float *tile, const int nr, int64_t rows,
                                                  int64_t cols, int shift, float *c, int64_t ldc)
{
    const __mmask16 keep = (__mmask16)((1u << cols) - 1);
    for (int h = 0; h < 2 && 16 * h < rows; h++) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            const int src = shift && i + 1 < cols ? i + 1 : i;
            r[i] = i < nr ? _mm512_load_ps(tile + src * KB_MMA_MR + 16 * h) : _mm512_setzero_ps();
        }
        kb_mma_transpose16(r);
        for (int64_t i = 0; i < 16 && 16 * h + i < rows; i++)
            _mm512_mask_storeu_ps(c + (16 * h + i) * ldc, keep, r[i]);
    }
}

/* Prefetches bytes from p into L2, a line at a time (the weight rows of the next panel). */
static inline void kb_mma_prefetch(const void *p, int64_t bytes)
{
    for (int64_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)p + o, _MM_HINT_T1);
}

#endif
