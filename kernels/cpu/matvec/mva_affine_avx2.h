/* The f32-activation MLX affine matvec on AVX2 + FMA, for b = 8, 4 or 2 bits: each of
 * matvec_a{8,4,2}_avx2.c instantiates it with its b (a constant, so every loop below unrolls).
 *
 * Per group of G weights, sum_j (q_j s + b) x_j = s sum_j q_j x_j + b sx (sx: the group's sum of
 * x, from the preparation of x): the codes meet x as f32, the scale multiplies once per group, the
 * biases once per row (a dot product of the row's biases with the group sums, eight at a time).
 * Codes: eight code bytes zero-extend to eight i32 lanes (vpmovzxbd), and each byte B with its
 * n = 8/b codes is converted as the n masked values B & (2^(b(m+1)) - 1), whose products with the
 * prepared xt telescope to sum_m c_m x_m (mva_cpu.h): per eight bytes one extension, n-1 masks,
 * n conversions and n FMAs per token; no shifts.
 * One row at a time (one stream per thread, which the Q4_0 kernels found best on Zen 3), software
 * prefetch ahead in the code stream, tokens four at a time (a row read once from memory; further
 * chunks of four tokens re-read it from L1). Rows, or (expert, row) pairs, split over threads. */
#ifndef KB_MVA_AFFINE_AVX2_H
#define KB_MVA_AFFINE_AVX2_H

#include "mva_cpu.h"
#include "mva_prep_avx2.h"
#include "simd_x86.h"

#define MVA_PF_DIST 2048 /* bytes ahead in the code stream */
#define MVA_TMAX 4       /* tokens per pass over a row */
/* FMA chains (and accumulators) per token: enough to cover the FMA latency */
#define MVA_CHAINS(T) ((T) == 1 ? 4 : ((T) == 2 ? 2 : 1))

typedef struct {
    const float *xt, *sx;
    int64_t sx_stride;
} mva_xprep;

/* Eight bf16 at p as f32 (a bf16 is the upper half of an f32). */
KB_TARGET_AVX2 KB_INLINE __m256 mva_bf16x8(const uint16_t *p)
{
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* The first n (0 < n <= 8) bf16 at p as f32, zeros after: row tails, never reading past them. */
KB_TARGET_AVX2 KB_INLINE __m256 mva_bf16x8_n(const uint16_t *p, int64_t n)
{
    if (n >= 8)
        return mva_bf16x8(p);
    uint16_t tmp[8] = {0};
    memcpy(tmp, p, (size_t)n * 2);
    return mva_bf16x8(tmp);
}

/* acc[t] += sum_g b_g sx[t][g]: the biases of a row (ng of them) against the group sums of x
 * (zero-padded to a multiple of 16). */
KB_TARGET_AVX2 KB_INLINE void mva_bias_dot(const uint16_t *bi, int64_t ng, const float *const *sx,
                                           const int T, __m256 *acc)
{
    for (int64_t g = 0; g < ng; g += 8) {
        const __m256 bv = mva_bf16x8_n(bi + g, ng - g);
        for (int t = 0; t < T; t++)
            acc[t] = _mm256_fmadd_ps(bv, _mm256_loadu_ps(sx[t] + g), acc[t]);
    }
}

/* One group: its G codes at p, T tokens' prepared x at xt[t] (this group's first code);
 * acc[t * NC + c]: token t's accumulator of FMA chain c (NC = MVA_CHAINS(T)), each chain's
 * partial sum scaled into its own accumulator, which keeps the group's dependency chain short. */
KB_TARGET_AVX2 KB_INLINE void af_group(const int bits, const int G, const uint8_t *p,
                                       const float *const *xt, const int T, __m256 s, __m256 *acc)
{
    const int n = 8 / bits, units = G * bits / 64; /* terms per byte, 8-byte units */
    const int NC = MVA_CHAINS(T);
    __m256 part[MVA_TMAX * 4];
    for (int i = 0; i < T * NC; i++)
        part[i] = _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int u = 0; u < units; u++) {
        const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * u)));
#pragma GCC unroll 4
        for (int m = 0; m < n; m++) {
            const __m256 f = m == n - 1 ? _mm256_cvtepi32_ps(v)
                                        : _mm256_cvtepi32_ps(_mm256_and_si256(
                                              v, _mm256_set1_epi32((1 << (bits * (m + 1))) - 1)));
            const int ch = (u * n + m) % NC;
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                part[t * NC + ch] =
                    _mm256_fmadd_ps(f, _mm256_loadu_ps(xt[t] + (u * n + m) * 8), part[t * NC + ch]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < T * NC; i++) /* each chain into its own accumulator: no add tree */
        acc[i] = _mm256_fmadd_ps(s, part[i], acc[i]);
}

/* Row r of computed matrix k for tokens t0 .. t0 + T - 1. */
KB_TARGET_AVX2 KB_INLINE void af_row(const int bits, const int G, const kb_mva_job *j, int64_t k,
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
    __m256 acc[MVA_TMAX * 4];
    for (int i = 0; i < T * NC; i++)
        acc[i] = _mm256_setzero_ps();
    for (int t = 0; t < T; t++) {
        const int64_t v = kb_mva_xvec(j, k, t0 + t);
        xt[t] = xp->xt + v * s->cols;
        sx[t] = xp->sx + v * xp->sx_stride;
    }
    float sf[64] __attribute__((aligned(32))); /* a chunk of the row's scales as f32 */
    for (int64_t g0 = 0; g0 < ng; g0 += 64) {
        const int64_t nc = ng - g0 < 64 ? ng - g0 : 64;
        for (int64_t i = 0; i < nc; i += 8)
            _mm256_store_ps(sf + i, mva_bf16x8_n(sc + g0 + i, nc - i));
        for (int64_t g = g0; g < g0 + nc; g++) {
            const uint8_t *p = w + g * bpg;
            if (bpg >= 64) {
                for (int i = 0; i < bpg; i += 64)
                    _mm_prefetch((const char *)(p + MVA_PF_DIST + i), _MM_HINT_T0);
            } else if ((g & (64 / bpg - 1)) == 0) {
                _mm_prefetch((const char *)(p + MVA_PF_DIST), _MM_HINT_T0);
            }
            const float *xg[MVA_TMAX];
            for (int t = 0; t < T; t++)
                xg[t] = xt[t] + g * G;
            af_group(bits, G, p, xg, T, _mm256_broadcast_ss(sf + (g - g0)), acc);
        }
    }
    __m256 sum[MVA_TMAX];
    for (int t = 0; t < T; t++) {
        sum[t] = acc[t * NC];
        for (int c = 1; c < NC; c++)
            sum[t] = _mm256_add_ps(sum[t], acc[t * NC + c]);
    }
    mva_bias_dot(bi, ng, sx, T, sum);
    for (int t = 0; t < T; t++)
        j->y[(k * s->tokens + t0 + t) * s->rows + r] = kb_hsum256(sum[t]);
}

KB_TARGET_AVX2 KB_INLINE void af_rows(const int bits, const int G, const kb_mva_job *j, int64_t k,
                                      int64_t r0, int64_t r1)
{
    const int64_t tokens = j->s.tokens;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t0 = 0; t0 < tokens; t0 += MVA_TMAX) {
            switch (tokens - t0) {
            case 1: af_row(bits, G, j, k, r, t0, 1); break;
            case 2: af_row(bits, G, j, k, r, t0, 2); break;
            case 3: af_row(bits, G, j, k, r, t0, 3); break;
            default: af_row(bits, G, j, k, r, t0, 4); break;
            }
        }
    }
}

/* Defines rows_32, rows_64, rows_128 and run(), the cpu_run of the b-bit kernel. */
#define MVA_AFFINE_AVX2_KERNEL(bits)                                                               \
    KB_TARGET_AVX2 static void rows_32(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)     \
    {                                                                                              \
        af_rows(bits, 32, j, k, r0, r1);                                                           \
    }                                                                                              \
    KB_TARGET_AVX2 static void rows_64(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)     \
    {                                                                                              \
        af_rows(bits, 64, j, k, r0, r1);                                                           \
    }                                                                                              \
    KB_TARGET_AVX2 static void rows_128(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)    \
    {                                                                                              \
        af_rows(bits, 128, j, k, r0, r1);                                                          \
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
        kb_mva_prep_x(bits, &j.s, j.x, 8, mem, &xt, &sx);                                          \
        mva_xprep xp = {.xt = xt, .sx = sx, .sx_stride = kb_mva_sx_stride(&j.s)};                  \
        j.aux = &xp;                                                                               \
        kb_pool_run(pool, task, &j);                                                               \
    }

#endif
