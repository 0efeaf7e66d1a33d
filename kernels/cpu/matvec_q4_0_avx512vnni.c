/* matvec_q4_0, AVX512-VNNI (vpdpbusd on zmm), int8 activations (GGML's trick): x is quantized per
 * 32-block to int8 with an f32 scale inside the timed run (act_q8.h), and each weight block meets
 * it with integer dot products.
 *
 * A zmm holds the codes of four blocks: [c0 | c1 | c2 | c3] (16 bytes each); masking gives their
 * low nibbles (weights 0..15 of each block), shifting and masking their high nibbles (16..31),
 * and the activations are stored to match (KB_XQ_QUAD_Q4). Two vpdpbusd (unsigned codes x signed
 * activations) give i32 lanes 4u..4u+3 for block u. The -8 of the codes stays out of the integer
 * lanes: per row and token, sum_b d_w d_x sum(x_q) is accumulated four blocks per xmm FMA and
 * taken 8 times off at the end. Scales: the four f16 scales are converted together, multiplied
 * with the four activation scales in one xmm, and vpermps spreads them as [s0 x4 | .. | s3 x4].
 * One row at a time, software prefetch ahead; tokens > 1 reuse each weight quad from registers
 * for all tokens. Written for AVX512-VNNI machines; the distances are those tuned for the AVX2
 * kernels on Zen 3. */
#include "act_q8.h"
#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

/* Software prefetch distance, bytes ahead in the row stream (three lines per 144-byte pair of
 * quads), as tuned for the AVX2 kernels on Zen 3. */
#define PF_DIST 2048

/* Four blocks of one row from block b (p points at block b) against T tokens: acc[t], oacc[t]. */
KB_TARGET_AVX512VNNI KB_INLINE void quad(const uint8_t *p, const kb_xq *xq, int64_t b,
                                         const int T, __m512 *acc, __m128 *oacc)
{
    const int64_t bs = (int64_t)sizeof(block_q4_0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m128 dw = kb_f16x4(p, bs);
    const __m256i c01 = _mm256_loadu2_m128i((const __m128i *)(p + bs + 2),
                                            (const __m128i *)(p + 2));
    const __m256i c23 = _mm256_loadu2_m128i((const __m128i *)(p + 3 * bs + 2),
                                            (const __m128i *)(p + 2 * bs + 2));
    const __m512i c = _mm512_inserti64x4(_mm512_castsi256_si512(c01), c23, 1);
    const __m512i lo = _mm512_and_si512(c, m4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), m4);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m128 s4 = _mm_mul_ps(dw, _mm_loadu_ps(xq->d + i));
        oacc[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(xq->dsum + i), oacc[t]);
        const int8_t *xb = xq->q + i * 32; /* quad layout: 128 bytes from block b */
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
                                          _mm512_loadu_si512((const void *)xb));
        dot = _mm512_dpbusd_epi32(dot, hi, _mm512_loadu_si512((const void *)(xb + 64)));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                 _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s4)), acc[t]);
    }
}

/* One block (the tail of a row when nb % 4 != 0): ymm, the bias cancelled in the integer lanes
 * by the quantizer's offset (-sum(x_q) per lane). tacc[t]. */
KB_TARGET_AVX512VNNI KB_INLINE void single(const uint8_t *p, const kb_xq *xq, int64_t b,
                                           const int T, __m256 *tacc)
{
    const __m256i shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2)));
    q = _mm256_and_si256(_mm256_srlv_epi32(q, shift), _mm256_set1_epi8(0x0F)); /* [0..15|16..31] */
    const __m256 dw = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const int8_t *xl = xq->q + (i & ~(int64_t)3) * 32 + (b & 3) * 16; /* quad layout */
        __m256i xv = _mm256_loadu2_m128i((const __m128i *)(xl + 64), (const __m128i *)xl);
        __m256i dot = _mm256_dpbusd_epi32(_mm256_set1_epi32(xq->off[i]), q, xv);
        tacc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                  _mm256_mul_ps(dw, _mm256_broadcast_ss(xq->d + i)), tacc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token). acc: 2 * T (alternate quads). */
KB_TARGET_AVX512VNNI KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T, __m512 *acc,
                                        __m128 *oacc, __m256 *tacc)
{
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q4_0);
    const kb_xq xq = *(const kb_xq *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm512_setzero_ps();
    for (int t = 0; t < T; t++) {
        oacc[t] = _mm_setzero_ps();
        tacc[t] = _mm256_setzero_ps();
    }
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        _mm_prefetch((const char *)(w + b * bs + PF_DIST), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + b * bs + PF_DIST + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(w + b * bs + PF_DIST + 128), _MM_HINT_T0);
        quad(w + b * bs, &xq, b, T, acc, oacc);
        quad(w + (b + 4) * bs, &xq, b + 4, T, acc + T, oacc);
    }
    for (; b + 4 <= nb; b += 4)
        quad(w + b * bs, &xq, b, T, acc, oacc);
    for (; b < nb; b++)
        single(w + b * bs, &xq, b, T, tacc);
    for (int t = 0; t < T; t++) {
        __m128 o = _mm_add_ps(oacc[t], _mm_movehl_ps(oacc[t], oacc[t]));
        o = _mm_add_ss(o, _mm_movehdup_ps(o));
        j->y[t * j->rows + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t], acc[T + t])) +
                                kb_hsum256(tacc[t]) - 8.0f * _mm_cvtss_f32(o);
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
    kb_xq_quantize(&xq, kb_scratch(kb_xq_bytes(tokens, cols)), in[MV_X].data, tokens, cols, 1,
                   KB_XQ_QUAD_Q4);
    kb_mv_job j = {.w = in[MV_W].data,
                   .x = in[MV_X].data,
                   .y = out[MV_Y].data,
                   .rows = rows,
                   .cols = cols,
                   .tokens = tokens,
                   .nb = cols / QK,
                   .row_bytes = cols / QK * (int64_t)sizeof(block_q4_0),
                   .aux = &xq};
    kb_pool_run(pool, task, &j);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512vnni();
}

const kb_impl kb_impl_matvec_q4_0_avx512vnni = {
    .family = "matvec_q4_0",
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
