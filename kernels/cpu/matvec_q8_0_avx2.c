/* matvec_q8_0, AVX2 + FMA, f32 activations: weights dequantized in registers, x stays f32.
 *
 * A block's 32 int8 weights are sign-extended to i32 eight at a time straight from memory,
 * converted to f32 and multiplied with x by FMA (one chain of four); acc += d * dot. Blocks go
 * four at a time: the four f16 scales are converted together (one vcvtph2ps) into
 * S = [d0 d1 d2 d3 | d0 d1 d2 d3] and broadcast per block in-lane (vpermilps). One row at a
 * time (a single stream per thread prefetches best), two FMA chains per row and token, software
 * prefetch ahead; tokens > 1 reuse each converted weight block from registers for all tokens. */
#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

/* Software prefetch distance, bytes ahead in the row stream: three lines per 136-byte quad
 * (two left every ninth line to the hardware prefetcher, measurably slower on Zen 3). */
#define PF_DIST 2048

/* Block u of a quad (p: the block's scale), T tokens of x at xb (token stride cols). */
KB_TARGET_AVX2 KB_INLINE void block(const uint8_t *p, __m256 d, const float *xb, int64_t cols,
                                    const int T, __m256 *acc)
{
    const __m256 f0 =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2))));
    const __m256 f1 =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 10))));
    const __m256 f2 =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 18))));
    const __m256 f3 =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 26))));
    for (int t = 0; t < T; t++) {
        const float *x = xb + t * cols;
        __m256 s = _mm256_mul_ps(f0, _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(f1, _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(f2, _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(f3, _mm256_loadu_ps(x + 24), s);
        acc[t] = _mm256_fmadd_ps(d, s, acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token); acc holds 2 * T vectors:
 * acc[(b & 1) * T + t]. */
KB_TARGET_AVX2 KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T, __m256 *acc)
{
    const int64_t nb = j->nb, cols = j->cols, bs = (int64_t)sizeof(block_q8_0);
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *p = w + b * bs;
        _mm_prefetch((const char *)(p + PF_DIST), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + PF_DIST + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + PF_DIST + 128), _MM_HINT_T0);
        const __m128 dw = kb_f16x4(p, bs);
        const __m256 S = _mm256_set_m128(dw, dw);
        const float *xb = j->x + b * QK;
        block(p, _mm256_permute_ps(S, 0x00), xb, cols, T, acc);
        block(p + bs, _mm256_permute_ps(S, 0x55), xb + QK, cols, T, acc + T);
        block(p + 2 * bs, _mm256_permute_ps(S, 0xAA), xb + 2 * QK, cols, T, acc);
        block(p + 3 * bs, _mm256_permute_ps(S, 0xFF), xb + 3 * QK, cols, T, acc + T);
    }
    for (; b < nb; b++)
        block(w + b * bs, kb_bcast_f16(w + b * bs), j->x + b * QK, cols, T, acc);
    for (int t = 0; t < T; t++)
        j->y[t * j->rows + r] = kb_hsum256(_mm256_add_ps(acc[t], acc[T + t]));
}

KB_TARGET_AVX2 static void rows_1(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m256 acc[2];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, 1, acc);
}

KB_TARGET_AVX2 static void rows_T(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m256 acc[2 * MV_MAX_TOKENS];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, (int)j->tokens, acc);
}

static void task(void *arg, int tid, int nthreads)
{
    const kb_mv_job *j = arg;
    int64_t lo, hi;
    kb_split(j->rows, 1, tid, nthreads, &lo, &hi);
    if (j->tokens == 1)
        rows_1(j, lo, hi);
    else
        rows_T(j, lo, hi);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    const int64_t rows = c->p[MV_ROWS], cols = c->p[MV_COLS], tokens = c->p[MV_TOKENS];
    kb_mv_job j = {.w = in[MV_W].data,
                   .x = in[MV_X].data,
                   .y = out[MV_Y].data,
                   .rows = rows,
                   .cols = cols,
                   .tokens = tokens,
                   .nb = cols / QK,
                   .row_bytes = cols / QK * (int64_t)sizeof(block_q8_0)};
    kb_pool_run(pool, task, &j);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_q8_0_avx2 = {
    .family = "matvec_q8_0",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
