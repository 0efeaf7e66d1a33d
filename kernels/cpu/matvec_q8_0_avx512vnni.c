/* matvec_q8_0, AVX512-VNNI (vpdpbusd on zmm), int8 activations (GGML's trick): x is quantized per
 * 32-block to int8 with an f32 scale inside the timed run (act_q8.h), and each weight block meets
 * it with one integer dot product per token.
 *
 * A zmm holds two blocks. vpdpbusd multiplies unsigned bytes with signed bytes, so the weights are
 * biased: w ^ 0x80 = w + 128 (once per weight block for all tokens), and sum (w + 128) x =
 * sum w x + 128 sum x. The bias term stays out of the integer lanes: per row and token,
 * sum_b d_w d_x sum(x_q) is accumulated four blocks at a time in one xmm FMA and taken 128
 * times off at the end. Scales: the four f16 scales of a quad are converted together and
 * multiplied with the four activation scales in one xmm; vpermps spreads them over the zmm lanes
 * of each pair ([s0 x8 | s1 x8], [s2 x8 | s3 x8]). One row at a time, software prefetch ahead;
 * tokens > 1 reuse each weight quad from registers for all tokens. Written for AVX512-VNNI
 * machines; the distances are those tuned for the AVX2 kernels on Zen 3. */
#include "act_q8.h"
#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

/* Software prefetch distance, bytes ahead in the row stream: three lines per 136-byte quad
 * (two left every ninth line to the hardware prefetcher, measurably slower on Zen 3). */
#define PF_DIST 2048

/* Four blocks of one row from block b (p points at block b) against T tokens:
 * acc[k * T + t] for the pair k < 2, oacc[t]. */
KB_TARGET_AVX512VNNI KB_INLINE void quad(const uint8_t *p, const kb_xq *xq, int64_t b,
                                         const int T, __m512 *acc, __m128 *oacc)
{
    const int64_t bs = (int64_t)sizeof(block_q8_0);
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const __m512i idx[2] = {
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
        _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)};
    const __m128 dw = kb_f16x4(p, bs);
    __m512i wu[2];
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++) {
        const uint8_t *pa = p + 2 * k * bs + 2;
        __m512i w = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)pa)),
            _mm256_loadu_si256((const __m256i *)(pa + bs)), 1);
        wu[k] = _mm512_xor_si512(w, bias);
    }
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m128 s4 = _mm_mul_ps(dw, _mm_loadu_ps(xq->d + i));
        oacc[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(xq->dsum + i), oacc[t]);
        const __m512 sz = _mm512_castps128_ps512(s4); /* lanes 4..15 unused by the permutes */
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            __m512i dot = _mm512_dpbusd_epi32(
                _mm512_setzero_si512(), wu[k],
                _mm512_loadu_si512((const void *)(xq->q + (i + 2 * k) * 32)));
            acc[k * T + t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                             _mm512_permutexvar_ps(idx[k], sz), acc[k * T + t]);
        }
    }
}

/* One block (the tail of a row when nb % 4 != 0): ymm, the bias cancelled in the integer lanes
 * by the quantizer's offset (-16 sum(x_q) per lane). tacc[t]. */
KB_TARGET_AVX512VNNI KB_INLINE void single(const uint8_t *p, const kb_xq *xq, int64_t b,
                                           const int T, __m256 *tacc)
{
    const __m256i wu = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)),
                                        _mm256_set1_epi8((char)0x80));
    const __m256 dw = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        __m256i dot = _mm256_dpbusd_epi32(_mm256_set1_epi32(xq->off[i]), wu,
                                          _mm256_loadu_si256((const __m256i *)(xq->q + i * 32)));
        tacc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                  _mm256_mul_ps(dw, _mm256_broadcast_ss(xq->d + i)), tacc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token). */
KB_TARGET_AVX512VNNI KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T, __m512 *acc,
                                        __m128 *oacc, __m256 *tacc)
{
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q8_0);
    const kb_xq xq = *(const kb_xq *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm512_setzero_ps();
    for (int t = 0; t < T; t++) {
        oacc[t] = _mm_setzero_ps();
        tacc[t] = _mm256_setzero_ps();
    }
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        _mm_prefetch((const char *)(w + b * bs + PF_DIST), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + b * bs + PF_DIST + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + b * bs + PF_DIST + 128), _MM_HINT_T0);
        quad(w + b * bs, &xq, b, T, acc, oacc);
    }
    for (; b < nb; b++)
        single(w + b * bs, &xq, b, T, tacc);
    for (int t = 0; t < T; t++) {
        __m128 o = _mm_add_ps(oacc[t], _mm_movehl_ps(oacc[t], oacc[t]));
        o = _mm_add_ss(o, _mm_movehdup_ps(o));
        j->y[t * j->rows + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t], acc[T + t])) +
                                kb_hsum256(tacc[t]) - 128.0f * _mm_cvtss_f32(o);
    }
}

KB_TARGET_AVX512VNNI static void rows_1(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m512 acc[2];
    __m128 oacc[1];
    __m256 tacc[1];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, 1, acc, oacc, tacc);
}

KB_TARGET_AVX512VNNI static void rows_T(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m512 acc[2 * MV_MAX_TOKENS];
    __m128 oacc[MV_MAX_TOKENS];
    __m256 tacc[MV_MAX_TOKENS];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, (int)j->tokens, acc, oacc, tacc);
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
    kb_xq_quantize(&xq, kb_scratch(kb_xq_bytes(tokens, cols)), in[MV_X].data, tokens, cols, 16,
                   KB_XQ_NATURAL);
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
    return kb_need_avx512vnni();
}

const kb_impl kb_impl_matvec_q8_0_avx512vnni = {
    .family = "matvec_q8_0",
    .name = "avx512vnni",
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
