/* matvec_q8_0, AVX2, int8 activations (GGML's trick): x is quantized per 32-block to int8 with an
 * f32 scale inside the timed run (act_q8.h), and each weight block meets it with integer dot
 * products.
 *
 * Per block: the weights are sign-extended to i16 (vpmovsxbw from memory), the activations are
 * stored as i16 by the quantizer (KB_XQ_I16), and two vpmaddwd give eight i32 lanes; f32, and
 * acc += (d_w * d_x) * sum. (GGML's vpabsb/vpsignb/vpmaddubsw route measured ~1.6x slower on
 * Zen 3.) Blocks go four at a time per row: the four f16 scales are converted together (one
 * vcvtph2ps), multiplied with the four activation scales in one xmm, and S =
 * [s0 s1 s2 s3 | s0 s1 s2 s3] is broadcast per block in-lane (vpermilps). One row at a time
 * (a single stream per thread prefetches best), four FMA chains per token, software prefetch
 * ahead; tokens > 1 reuse each weight quad from registers for all tokens. */
#include "act_q8.h"
#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

/* Software prefetch distance, bytes ahead in the row stream: three lines per 136-byte quad
 * (two left every ninth line to the hardware prefetcher, measurably slower on Zen 3). */
#define PF_DIST 2048

/* Four blocks of one row from block b (p points at block b) against T tokens: acc[u * T + t]. */
KB_TARGET_AVX2 KB_INLINE void quad(const uint8_t *p, const kb_xq *xq, int64_t b, const int T,
                                   __m256 *acc)
{
    const int64_t bs = (int64_t)sizeof(block_q8_0);
    const __m128 dw = kb_f16x4(p, bs);
    __m256i wa[4], wb[4];
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
        wa[u] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + u * bs + 2)));
        wb[u] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + u * bs + 18)));
    }
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m128 s4 = _mm_mul_ps(dw, _mm_loadu_ps(xq->d + i));
        const __m256 s = _mm256_set_m128(s4, s4);
        const int16_t *xb = xq->q16 + i * 32;
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            __m256i dot = _mm256_add_epi32(
                _mm256_madd_epi16(wa[u], _mm256_loadu_si256((const __m256i *)(xb + 32 * u))),
                _mm256_madd_epi16(wb[u], _mm256_loadu_si256((const __m256i *)(xb + 32 * u + 16))));
            acc[u * T + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                             _mm256_permutevar_ps(s, _mm256_set1_epi32(u)), acc[u * T + t]);
        }
    }
}

/* One block (the tail of a row when nb % 4 != 0). */
KB_TARGET_AVX2 KB_INLINE void single(const uint8_t *p, const kb_xq *xq, int64_t b, const int T,
                                     __m256 *acc)
{
    const __m256i wa = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 2)));
    const __m256i wb = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 18)));
    const __m256 dw = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const int16_t *xb = xq->q16 + i * 32;
        __m256i dot = _mm256_add_epi32(
            _mm256_madd_epi16(wa, _mm256_loadu_si256((const __m256i *)xb)),
            _mm256_madd_epi16(wb, _mm256_loadu_si256((const __m256i *)(xb + 16))));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                 _mm256_mul_ps(dw, _mm256_broadcast_ss(xq->d + i)), acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token); acc holds 4 * T vectors. */
KB_TARGET_AVX2 KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T, __m256 *acc)
{
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q8_0);
    const kb_xq xq = *(const kb_xq *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 4 * T; i++)
        acc[i] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        _mm_prefetch((const char *)(w + b * bs + PF_DIST), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + b * bs + PF_DIST + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + b * bs + PF_DIST + 128), _MM_HINT_T0);
        quad(w + b * bs, &xq, b, T, acc);
    }
    for (; b < nb; b++)
        single(w + b * bs, &xq, b, T, acc);
    for (int t = 0; t < T; t++) {
        __m256 a = _mm256_add_ps(_mm256_add_ps(acc[t], acc[T + t]),
                                 _mm256_add_ps(acc[2 * T + t], acc[3 * T + t]));
        j->y[t * j->rows + r] = kb_hsum256(a);
    }
}

KB_TARGET_AVX2 static void rows_1(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m256 acc[4];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, 1, acc);
}

KB_TARGET_AVX2 static void rows_T(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m256 acc[4 * MV_MAX_TOKENS];
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
    kb_xq xq;
    kb_xq_quantize(&xq, kb_scratch(kb_xq_bytes(tokens, cols)), in[MV_X].data, tokens, cols, 0,
                   KB_XQ_I16);
    kb_mv_job j = {.w = in[MV_W].data,
                   .x = in[MV_X].data,
                   .y = out[MV_Y].data,
                   .rows = rows,
                   .cols = cols,
                   .tokens = tokens,
                   .nb = cols / QK,
                   .row_bytes = cols / QK * (int64_t)sizeof(block_q8_0),
                   .aux = &xq};
    kb_pool_run(pool, task, &j);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_q8_0_avx2_i8 = {
    .family = "matvec_q8_0",
    .name = "avx2_i8",
    .backend = KB_BACKEND_CPU,
    .available = available,
    /* Measured NMSE vs the reference on random inputs (x ~ N(0,1), generate()'s weights):
     * 2.8e-5 to 3.0e-5 wherever there are hundreds of outputs or more (1024x4096, 4096x14336,
     * 65x4128, 300x256 x 7 tokens; the x quantization step alone predicts ~2.7e-5). Over few
     * outputs NMSE is heavy-tailed (a small reference value divides): with one row about 10%
     * of seeds exceed 1e-3; 8 rows: ~0.2% exceed 3e-4; 16+ rows: none in 1000 seeds. */
    .tol_nmse = 2e-3,
    .tol_why = "x quantized to int8 per 32-block (NMSE ~3e-5 on model shapes; heavy-tailed over few outputs)",
    .cpu_run = run,
};
