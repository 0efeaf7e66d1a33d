/* matvec_bf16, AVX2 + FMA: bf16 weights, f32 activations, f32 FMAs (exact products).
 *
 * A bf16 is the upper half of an f32, so 16 weights (32 bytes) become two f32 vectors with one
 * mask and one shift: v & 0xFFFF0000 holds the odd weights, v << 16 the even ones, in place. x is
 * split into its even and odd elements once per call to match (per 16: xe[8], xo[8]). One row at a
 * time, 64 bytes (32 weights) per step with one software prefetch, tokens four at a time (later
 * chunks of tokens re-read the row from L1); rows, or (expert, row) pairs, split over threads. */
#include "mva_affine_avx2.h"

/* Row r of computed matrix k for tokens t0 .. t0 + T - 1; xd: the split x. */
KB_TARGET_AVX2 KB_INLINE void bf_row(const kb_mva_job *j, int64_t k, int64_t r, int64_t t0,
                                     const int T)
{
    const kb_mva *s = &j->s;
    const float *xd = j->aux;
    const uint8_t *w = j->w + kb_mva_row(j, k, r) * s->row_bytes;
    const int NC = T == 1 ? 4 : 2; /* FMA chains per token */
    const float *xv[MVA_TMAX];
    __m256 acc[MVA_TMAX * 4];
    for (int t = 0; t < T; t++) {
        xv[t] = xd + kb_mva_xvec(j, k, t0 + t) * s->cols;
        for (int c = 0; c < NC; c++)
            acc[t * NC + c] = _mm256_setzero_ps();
    }
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
    for (int64_t c0 = 0; c0 < s->cols; c0 += 32) {
        const uint8_t *p = w + c0 * 2;
        _mm_prefetch((const char *)(p + MVA_PF_DIST), _MM_HINT_T0);
#pragma GCC unroll 2
        for (int u = 0; u < 2; u++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * u));
            const __m256 odd = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
            const __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
            const int ce = (2 * u) % NC, co = (2 * u + 1) % NC;
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const float *xu = xv[t] + c0 + 16 * u;
                acc[t * NC + ce] = _mm256_fmadd_ps(even, _mm256_loadu_ps(xu), acc[t * NC + ce]);
                acc[t * NC + co] = _mm256_fmadd_ps(odd, _mm256_loadu_ps(xu + 8), acc[t * NC + co]);
            }
        }
    }
    for (int t = 0; t < T; t++) {
        __m256 a = acc[t * NC];
        for (int c = 1; c < NC; c++)
            a = _mm256_add_ps(a, acc[t * NC + c]);
        j->y[(k * s->tokens + t0 + t) * s->rows + r] = kb_hsum256(a);
    }
}

KB_TARGET_AVX2 static void rows(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)
{
    const int64_t tokens = j->s.tokens;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t0 = 0; t0 < tokens; t0 += MVA_TMAX) {
            switch (tokens - t0) {
            case 1: bf_row(j, k, r, t0, 1); break;
            case 2: bf_row(j, k, r, t0, 2); break;
            case 3: bf_row(j, k, r, t0, 3); break;
            default: bf_row(j, k, r, t0, 4); break;
            }
        }
    }
}

static void task(void *arg, int tid, int nthreads) { kb_mva_share(arg, tid, nthreads, rows); }

KB_TARGET_AVX2 static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_mva_job j;
    kb_mva_job_init(&j, c, MVA_BF16_BITS, in, out);
    const int64_t nx = kb_mva_nxvec(&j.s) * j.s.cols;
    float *xd = kb_scratch((size_t)nx * sizeof(float));
    for (int64_t i = 0; i < nx; i += 16) { /* rows of x are whole 16s: cols % 32 == 0 */
        __m256 T[2];
        mva_deint(2, j.x + i, T);
        _mm256_storeu_ps(xd + i, T[0]);
        _mm256_storeu_ps(xd + i + 8, T[1]);
    }
    j.aux = xd;
    kb_pool_run(pool, task, &j);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_bf16_avx2 = {
    .family = "matvec_bf16",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
