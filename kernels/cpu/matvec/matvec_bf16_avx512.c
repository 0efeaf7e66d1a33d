/* matvec_bf16, AVX-512: the arithmetic of matvec_bf16_avx2.c on zmm. 32 weights (64 bytes, one
 * cache line) become two f32 vectors with one mask (odd weights) and one shift (even weights); x
 * is split once per call into its even and odd elements per 32 (xe[16], xo[16]). One row at a
 * time, one prefetch per line, tokens four at a time. Written for AVX-512 machines and verified
 * there; the prefetch distance is the one tuned for the AVX2 kernels on Zen 3. */
#include "mva_affine_avx2.h"

KB_TARGET_AVX512 KB_INLINE void bf5_row(const kb_mva_job *j, int64_t k, int64_t r, int64_t t0,
                                        const int T)
{
    const kb_mva *s = &j->s;
    const float *xd = j->aux;
    const uint8_t *w = j->w + kb_mva_row(j, k, r) * s->row_bytes;
    const int NC = T == 1 ? 4 : 2; /* FMA chains per token */
    const float *xv[MVA_TMAX];
    __m512 acc[MVA_TMAX * 4];
    for (int t = 0; t < T; t++) {
        xv[t] = xd + kb_mva_xvec(j, k, t0 + t) * s->cols;
        for (int c = 0; c < NC; c++)
            acc[t * NC + c] = _mm512_setzero_ps();
    }
    const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
    int64_t c0 = 0;
    for (; c0 + 64 <= s->cols; c0 += 64) { /* two lines per step: four chains for one token */
        _mm_prefetch((const char *)(w + c0 * 2 + MVA_PF_DIST), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + c0 * 2 + 64 + MVA_PF_DIST), _MM_HINT_T0);
#pragma GCC unroll 2
        for (int u = 0; u < 2; u++) {
            const __m512i v = _mm512_loadu_si512((const void *)(w + c0 * 2 + 64 * u));
            const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
            const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            const int ce = (2 * u) % NC, co = (2 * u + 1) % NC;
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const float *xu = xv[t] + c0 + 32 * u;
                acc[t * NC + ce] = _mm512_fmadd_ps(even, _mm512_loadu_ps(xu), acc[t * NC + ce]);
                acc[t * NC + co] = _mm512_fmadd_ps(odd, _mm512_loadu_ps(xu + 16), acc[t * NC + co]);
            }
        }
    }
    if (c0 < s->cols) { /* cols % 64 == 32: one line left */
        const __m512i v = _mm512_loadu_si512((const void *)(w + c0 * 2));
        const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
        const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
        for (int t = 0; t < T; t++) {
            acc[t * NC] = _mm512_fmadd_ps(even, _mm512_loadu_ps(xv[t] + c0), acc[t * NC]);
            acc[t * NC + 1] =
                _mm512_fmadd_ps(odd, _mm512_loadu_ps(xv[t] + c0 + 16), acc[t * NC + 1]);
        }
    }
    for (int t = 0; t < T; t++) {
        __m512 a = acc[t * NC];
        for (int c = 1; c < NC; c++)
            a = _mm512_add_ps(a, acc[t * NC + c]);
        j->y[(k * s->tokens + t0 + t) * s->rows + r] = _mm512_reduce_add_ps(a);
    }
}

KB_TARGET_AVX512 static void rows(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)
{
    const int64_t tokens = j->s.tokens;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t0 = 0; t0 < tokens; t0 += MVA_TMAX) {
            switch (tokens - t0) {
            case 1: bf5_row(j, k, r, t0, 1); break;
            case 2: bf5_row(j, k, r, t0, 2); break;
            case 3: bf5_row(j, k, r, t0, 3); break;
            default: bf5_row(j, k, r, t0, 4); break;
            }
        }
    }
}

static void task(void *arg, int tid, int nthreads) { kb_mva_share(arg, tid, nthreads, rows); }

KB_TARGET_AVX512 static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out,
                                 kb_pool *pool)
{
    kb_mva_job j;
    kb_mva_job_init(&j, c, MVA_BF16_BITS, in, out);
    const int64_t nx = kb_mva_nxvec(&j.s) * j.s.cols;
    float *xd = kb_scratch((size_t)nx * sizeof(float));
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t i = 0; i < nx; i += 32) { /* rows of x are whole 32s */
        const __m512 a = _mm512_loadu_ps(j.x + i), b = _mm512_loadu_ps(j.x + i + 16);
        _mm512_storeu_ps(xd + i, _mm512_permutex2var_ps(a, ie, b));
        _mm512_storeu_ps(xd + i + 16, _mm512_permutex2var_ps(a, io, b));
    }
    j.aux = xd;
    kb_pool_run(pool, task, &j);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_matvec_bf16_avx512 = {
    .family = "matvec_bf16",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
