/* The f32-activation MLX affine matvec on AVX-512 (F + BW + VL), for b = 8, 4 or 2 bits: the
 * arithmetic of mva_affine_avx2.h on zmm. Sixteen code bytes zero-extend to sixteen i32 lanes
 * (vpmovzxbd zmm), each byte's n = 8/b codes convert as n masked values against the telescoped
 * xt (prepared with 16-byte units, mva_cpu.h), and the group's scale multiplies once per group.
 * A 2-bit group of 32 has only 8 code bytes: such groups go in pairs, one zmm with the two
 * scales in its halves; a row's odd last one takes the AVX2 path (prepared with an 8-byte unit).
 * Biases once per row against the group sums of x, as on AVX2. Written for AVX-512 machines and
 * verified there; the distances are those tuned for the AVX2 kernels on Zen 3. */
#ifndef KB_MVA_AFFINE_AVX512_H
#define KB_MVA_AFFINE_AVX512_H

#include "mva_affine_avx2.h"

/* `units` units of 16 code bytes from p (one group, or a pair of 2-bit groups of 32), scales s per
 * lane, T tokens' xt at xt[t]; acc[t * NC + c] as in af_group. */
KB_TARGET_AVX512 KB_INLINE void af5_units(const int bits, const int units, const uint8_t *p,
                                          const float *const *xt, const int T, __m512 s,
                                          __m512 *acc)
{
    const int n = 8 / bits;
    const int NC = MVA_CHAINS(T);
    __m512 part[MVA_TMAX * 4];
    for (int i = 0; i < T * NC; i++)
        part[i] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int u = 0; u < units; u++) {
        const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 16 * u)));
#pragma GCC unroll 4
        for (int m = 0; m < n; m++) {
            const __m512 f = m == n - 1 ? _mm512_cvtepi32_ps(v)
                                        : _mm512_cvtepi32_ps(_mm512_and_si512(
                                              v, _mm512_set1_epi32((1 << (bits * (m + 1))) - 1)));
            const int ch = (u * n + m) % NC;
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                part[t * NC + ch] = _mm512_fmadd_ps(f, _mm512_loadu_ps(xt[t] + (u * n + m) * 16),
                                                    part[t * NC + ch]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < T * NC; i++) /* each chain into its own accumulator, as on AVX2 */
        acc[i] = _mm512_fmadd_ps(s, part[i], acc[i]);
}

/* Row r of computed matrix k for tokens t0 .. t0 + T - 1. */
KB_TARGET_AVX512 KB_INLINE void af5_row(const int bits, const int G, const kb_mva_job *j, int64_t k,
                                        int64_t r, int64_t t0, const int T)
{
    const kb_mva *s = &j->s;
    const mva_xprep *xp = j->aux;
    const int64_t wr = kb_mva_row(j, k, r), ng = s->ngroups;
    const uint8_t *w = j->w + wr * s->row_bytes;
    const uint16_t *sc = j->sc + wr * ng, *bi = j->bi + wr * ng;
    const int bpg = G * bits / 8; /* code bytes per group */
    const int NC = MVA_CHAINS(T);
    const float *xt[MVA_TMAX], *sx[MVA_TMAX];
    __m512 acc[MVA_TMAX * 4];
    __m256 acc8[MVA_TMAX]; /* biases, and a 2-bit row's odd last group of 32 */
    for (int i = 0; i < T * NC; i++)
        acc[i] = _mm512_setzero_ps();
    for (int t = 0; t < T; t++) {
        const int64_t v = kb_mva_xvec(j, k, t0 + t);
        xt[t] = xp->xt + v * s->cols;
        sx[t] = xp->sx + v * xp->sx_stride;
        acc8[t] = _mm256_setzero_ps();
    }
    float sf[64] __attribute__((aligned(32))); /* a chunk of the row's scales as f32 */
    for (int64_t g0 = 0; g0 < ng; g0 += 64) {
        const int64_t nc = ng - g0 < 64 ? ng - g0 : 64;
        for (int64_t i = 0; i < nc; i += 8)
            _mm256_store_ps(sf + i, mva_bf16x8_n(sc + g0 + i, nc - i));
        const float *xg[MVA_TMAX];
        if (bpg >= 16) {
            for (int64_t g = g0; g < g0 + nc; g++) {
                const uint8_t *p = w + g * bpg;
                if (bpg >= 64) {
                    for (int i = 0; i < bpg; i += 64)
                        _mm_prefetch((const char *)(p + MVA_PF_DIST + i), _MM_HINT_T0);
                } else if ((g & (64 / bpg - 1)) == 0) {
                    _mm_prefetch((const char *)(p + MVA_PF_DIST), _MM_HINT_T0);
                }
                for (int t = 0; t < T; t++)
                    xg[t] = xt[t] + g * G;
                af5_units(bits, bpg / 16, p, xg, T, _mm512_set1_ps(sf[g - g0]), acc);
            }
        } else { /* 8 code bytes per group (b = 2, G = 32): pairs of groups per zmm */
            int64_t g = g0;
            for (; g + 1 < g0 + nc; g += 2) {
                const uint8_t *p = w + g * bpg;
                if ((g & 7) == 0)
                    _mm_prefetch((const char *)(p + MVA_PF_DIST), _MM_HINT_T0);
                for (int t = 0; t < T; t++)
                    xg[t] = xt[t] + g * G;
                const __m512 s2 = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(sf[g - g0]),
                                                       _mm512_set1_ps(sf[g + 1 - g0]));
                af5_units(bits, 1, p, xg, T, s2, acc);
            }
            if (g < g0 + nc) { /* the row's last, unpaired group: prepared as an 8-byte unit */
                __m256 tail[MVA_TMAX * 4];
                for (int i = 0; i < T * NC; i++)
                    tail[i] = _mm256_setzero_ps();
                for (int t = 0; t < T; t++)
                    xg[t] = xt[t] + g * G;
                af_group(bits, G, w + g * bpg, xg, T, _mm256_set1_ps(sf[g - g0]), tail);
                for (int t = 0; t < T; t++)
                    for (int c = 0; c < NC; c++)
                        acc8[t] = _mm256_add_ps(acc8[t], tail[t * NC + c]);
            }
        }
    }
    mva_bias_dot(bi, ng, sx, T, acc8);
    for (int t = 0; t < T; t++) {
        __m512 a = acc[t * NC];
        for (int c = 1; c < NC; c++)
            a = _mm512_add_ps(a, acc[t * NC + c]);
        j->y[(k * s->tokens + t0 + t) * s->rows + r] =
            _mm512_reduce_add_ps(a) + kb_hsum256(acc8[t]);
    }
}

KB_TARGET_AVX512 KB_INLINE void af5_rows(const int bits, const int G, const kb_mva_job *j,
                                         int64_t k, int64_t r0, int64_t r1)
{
    const int64_t tokens = j->s.tokens;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t0 = 0; t0 < tokens; t0 += MVA_TMAX) {
            switch (tokens - t0) {
            case 1: af5_row(bits, G, j, k, r, t0, 1); break;
            case 2: af5_row(bits, G, j, k, r, t0, 2); break;
            case 3: af5_row(bits, G, j, k, r, t0, 3); break;
            default: af5_row(bits, G, j, k, r, t0, 4); break;
            }
        }
    }
}

/* Defines the cpu_run `run` of the b-bit AVX-512 kernel. */
#define MVA_AFFINE_AVX512_KERNEL(bits)                                                             \
    KB_TARGET_AVX512 static void rows_32(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)   \
    {                                                                                              \
        af5_rows(bits, 32, j, k, r0, r1);                                                          \
    }                                                                                              \
    KB_TARGET_AVX512 static void rows_64(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)   \
    {                                                                                              \
        af5_rows(bits, 64, j, k, r0, r1);                                                          \
    }                                                                                              \
    KB_TARGET_AVX512 static void rows_128(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)  \
    {                                                                                              \
        af5_rows(bits, 128, j, k, r0, r1);                                                         \
    }                                                                                              \
    static void task(void *arg, int tid, int nthreads)                                             \
    {                                                                                              \
        const kb_mva_job *j = arg;                                                                 \
        kb_mva_share(j, tid, nthreads,                                                             \
                     j->s.group == 32   ? rows_32                                                  \
                     : j->s.group == 64 ? rows_64                                                  \
                                        : rows_128);                                               \
    }                                                                                              \
    KB_TARGET_AVX2 static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out,          \
                                   kb_pool *pool)                                                  \
    {                                                                                              \
        kb_mva_job j;                                                                              \
        kb_mva_job_init(&j, c, bits, in, out);                                                     \
        float *mem = kb_scratch(kb_mva_prep_floats(&j.s) * sizeof(float));                         \
        float *xt, *sx;                                                                            \
        kb_mva_prep_x(bits, &j.s, j.x, 16, mem, &xt, &sx);                                         \
        mva_xprep xp = {.xt = xt, .sx = sx, .sx_stride = kb_mva_sx_stride(&j.s)};                  \
        j.aux = &xp;                                                                               \
        kb_pool_run(pool, task, &j);                                                               \
    }

#endif
