/* The per-call preparation of x for the MLX affine kernels, on AVX2 (the AVX-512 kernels use it
 * too): the telescoped f32 layout of mva_cpu.h and the int8 layout of mva_affine_i8.h. Both start
 * from the same step: the 8n codes of 8 code bytes (n = 8/b per byte) split by their position in
 * the byte, T[m][i] = x[n i + m], i < 8 (in-lane shuffles and one cross-lane permute per pair). */
#ifndef KB_MVA_PREP_AVX2_H
#define KB_MVA_PREP_AVX2_H

#include "mva_affine_i8.h"
#include "mva_cpu.h"
#include "simd_x86.h"

/* [a | b] (16 floats) -> even, odd elements. */
KB_TARGET_AVX2 KB_INLINE void mva_deint2(__m256 a, __m256 b, __m256 *even, __m256 *odd)
{
    const __m256 t0 = _mm256_shuffle_ps(a, b, 0x88); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    const __m256 t1 = _mm256_shuffle_ps(a, b, 0xDD); /* a1 a3 b1 b3 | a5 a7 b5 b7 */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t0), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t1), 0xD8));
}

/* The 8n codes of 8 code bytes at x: T[m][i] = x[n i + m]. */
KB_TARGET_AVX2 KB_INLINE void mva_deint(const int n, const float *x, __m256 *T)
{
    if (n == 1) {
        T[0] = _mm256_loadu_ps(x);
    } else if (n == 2) {
        mva_deint2(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8), &T[0], &T[1]);
    } else {
        __m256 e1, o1, e2, o2;
        mva_deint2(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8), &e1, &o1);
        mva_deint2(_mm256_loadu_ps(x + 16), _mm256_loadu_ps(x + 24), &e2, &o2);
        mva_deint2(e1, e2, &T[0], &T[2]);
        mva_deint2(o1, o2, &T[1], &T[3]);
    }
}

/* Group sums of one vector of x into sv[0 .. sx_stride) (zeros past ngroups). */
KB_TARGET_AVX2 KB_INLINE void mva_group_sums(const kb_mva *s, const float *xv, float *sv)
{
    const int64_t sxs = kb_mva_sx_stride(s);
    for (int64_t g = 0; g < s->ngroups; g++) {
        __m256 a = _mm256_loadu_ps(xv + g * s->group);
        for (int64_t c = 8; c < s->group; c += 8)
            a = _mm256_add_ps(a, _mm256_loadu_ps(xv + g * s->group + c));
        sv[g] = kb_hsum256(a);
    }
    for (int64_t g = s->ngroups; g < sxs; g++)
        sv[g] = 0.0f;
}

/* The f32 preparation (mva_cpu.h): xt [nxvec][cols], then sx [nxvec][sx_stride], into mem
 * (kb_mva_prep_floats floats), for kernels of `lanes` (8 or 16) code bytes per vector. */
KB_TARGET_AVX2 KB_INLINE void kb_mva_prep_x(const int bits, const kb_mva *s, const float *x,
                                            const int lanes, float *mem, float **xt_out,
                                            float **sx_out)
{
    const int n = 8 / bits;
    const int64_t cols = s->cols, nv = kb_mva_nxvec(s), sxs = kb_mva_sx_stride(s);
    float *xt = mem, *sx = mem + nv * cols;
    for (int64_t v = 0; v < nv; v++) {
        const float *xv = x + v * cols;
        float *o = xt + v * cols;
        for (int64_t c0 = 0; c0 < cols;) {
            const int L = cols - c0 >= (int64_t)lanes * n ? lanes : 8;
            for (int h = 0; h < L / 8; h++) {
                __m256 T[4];
                mva_deint(n, xv + c0 + 8 * n * h, T);
                for (int m = 0; m < n; m++) {
                    __m256 t = _mm256_mul_ps(T[m], _mm256_set1_ps(1.0f / (float)(1 << (bits * m))));
                    if (m + 1 < n) /* both products exact: one rounding */
                        t = _mm256_sub_ps(
                            t, _mm256_mul_ps(T[m + 1], _mm256_set1_ps(
                                                           1.0f / (float)(1 << (bits * (m + 1))))));
                    _mm256_storeu_ps(o + c0 + m * L + 8 * h, t);
                }
            }
            c0 += (int64_t)L * n;
        }
        mva_group_sums(s, xv, sx + v * sxs);
    }
    *xt_out = xt;
    *sx_out = sx;
}

/* The int8 preparation (mva_affine_i8.h) into mem (kb_mva_xq_bytes, 64-byte aligned). */
KB_TARGET_AVX2 KB_INLINE void kb_mva_quantize_x(const int bits, const kb_mva *s, const float *x,
                                                void *mem, mva_xq *xq)
{
    const int n = 8 / bits, upb = 4 / n; /* terms; 8-byte units per 32-block */
    const int64_t nv = kb_mva_nxvec(s), nch = kb_mva_nchunks(s), sxs = kb_mva_sx_stride(s);
    const int64_t cols = s->cols, cpc = 32 * n, rb = s->row_bytes;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int8_t *q = mem;
    float *dl = (float *)(q + nv * nch * cpc), *sxq = dl + nv * nch * 8;
    for (int64_t v = 0; v < nv; v++) {
        const float *xv = x + v * cols;
        float *sv = sxq + v * sxs;
        memset(sv, 0, sizeof(float) * (size_t)sxs);
        for (int64_t c = 0; c < nch; c++) {
            const int64_t units = (rb - c * 32) / 8 < 4 ? (rb - c * 32) / 8 : 4; /* present */
            __m256 T[4][4];
            for (int u = 0; u < 4; u++) {
                if (u < units) {
                    mva_deint(n, xv + c * cpc + 8 * n * u, T[u]);
                } else {
                    for (int m = 0; m < n; m++)
                        T[u][m] = _mm256_setzero_ps();
                }
            }
            __m256i Q[4][4];
            float d[4];
            for (int blk = 0; blk < n; blk++) { /* a chunk holds n 32-blocks */
                __m256 mx = _mm256_setzero_ps();
                for (int u = blk * upb; u < (blk + 1) * upb; u++)
                    for (int m = 0; m < n; m++)
                        mx = _mm256_max_ps(mx, _mm256_and_ps(T[u][m], absmask));
                __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
                m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
                m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
                const float amax = _mm_cvtss_f32(m4);
                d[blk] = amax / 127.0f;
                const __m256 id = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
                __m256i sum = _mm256_setzero_si256();
                for (int u = blk * upb; u < (blk + 1) * upb; u++)
                    for (int m = 0; m < n; m++) { /* round to nearest even (MXCSR default) */
                        Q[u][m] = _mm256_cvtps_epi32(_mm256_mul_ps(T[u][m], id));
                        sum = _mm256_add_epi32(sum, Q[u][m]);
                    }
                __m128i s4 =
                    _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
                const int64_t c0 = c * cpc + 32 * blk;
                if (c0 < cols)
                    sv[c0 / s->group] += d[blk] * (float)_mm_cvtsi128_si32(s4);
            }
            int8_t *qc = q + (v * nch + c) * cpc;
            for (int m = 0; m < n; m++) { /* 4 units x 8 codes of term m -> 32 bytes in order */
                __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(Q[0][m], Q[1][m]),
                                               _mm256_packs_epi32(Q[2][m], Q[3][m]));
                _mm256_storeu_si256((__m256i *)(qc + 32 * m), _mm256_permutevar8x32_epi32(p, perm));
            }
            float *dc = dl + (v * nch + c) * 8;
            for (int j = 0; j < 8; j++) /* lane j: codes 4n j .. 4n j + 4n - 1 */
                dc[j] = d[j * 4 * n / 32];
        }
    }
    xq->q = q;
    xq->dl = dl;
    xq->sxq = sxq;
    xq->nchunks = nch;
    xq->sx_stride = sxs;
}

#endif
