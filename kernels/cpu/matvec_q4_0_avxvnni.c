/* matvec_q4_0, AVX-VNNI (VEX vpdpbusd on ymm), int8 activations (GGML's trick): x is quantized per
 * 32-block to int8 with an f32 scale inside the timed run (act_q8.h), and each weight block meets
 * it with integer dot products: vpdpbusd (unsigned 4-bit codes x signed int8 activations, four
 * products into each i32 lane), f32, and acc += (d_w * d_x) * sum per block. The layout and the
 * scale handling are those of matvec_q4_0_avx2_i8.c; only the dot product differs.
 * The -8 of the codes stays out of the integer lanes: sum (q - 8) x = sum q x - 8 sum x, and
 * sum_b d_w d_x sum(x_q) is accumulated per row four blocks at a time (see quad below).
 * One row at a time (a single stream per thread prefetches best: two or four interleaved rows
 * measured slower with cold weights), software prefetch ahead, the next four blocks' weights
 * loaded while the current four's dot products run; tokens > 1 reuse each weight quad from
 * registers for all tokens. Rows split across threads by kb_split. */
#include "act_q8.h"
#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

/* Software prefetch distance, bytes ahead in the row stream (one line per 72-byte quad), as
 * tuned for the AVX2 kernel (no AVX-VNNI machine was at hand to tune this one). */
#define PF_DIST 2048

/* Four blocks of one row from block b (a multiple of 4; p points at block b) against T tokens.
 * Two blocks share a ymm: [codes of A | codes of B]; masking gives their low nibbles (weights
 * 0..15) and, shifted, their high nibbles (16..31), and the activations are stored to match
 * (KB_XQ_PAIR_Q4: [xA 0..15 | xB 0..15], [xA 16..31 | xB 16..31]). Two vpdpbusd give i32
 * lanes 0..3 for A and 4..7 for B.
 * Scales: the four f16 scales are converted together (one vcvtph2ps) and multiplied with the
 * four activation scales in one xmm; S = [s0 s1 s2 s3 | s1 s2 s3 s0], so that vpermilps 0x00
 * gives [s0 x4 | s1 x4] and 0xAA gives [s2 x4 | s3 x4]. The code bias -8 is not in the
 * integer lanes: oacc[t] collects sum d_w * dsum (the blocks' sums of x), taken 8 times off at
 * the end. acc[k * T + t], k < 2: one FMA chain per pair slot. */
typedef struct {
    __m256i lo[2], hi[2];
    __m128 dw;
} quad_w;

/* The weight side of a quad: codes expanded, scales converted. */
KB_TARGET_AVXVNNI KB_INLINE quad_w quad_load(const uint8_t *p)
{
    const int64_t bs = (int64_t)sizeof(block_q4_0);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    quad_w q;
    q.dw = kb_f16x4(p, bs);
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++) {
        const uint8_t *pa = p + 2 * k * bs + 2;
        __m256i v = _mm256_loadu2_m128i((const __m128i *)(pa + bs), (const __m128i *)pa);
        q.lo[k] = _mm256_and_si256(v, m4);
        q.hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
    return q;
}

/* The quad's dot products with T tokens of activations from block b. */
KB_TARGET_AVXVNNI KB_INLINE void quad_dot(const quad_w *q, const kb_xq *xq, int64_t b, const int T,
                                       __m256 *acc, __m128 *oacc)
{
    const __m256i zero = _mm256_setzero_si256();
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const __m128 s4 = _mm_mul_ps(q->dw, _mm_loadu_ps(xq->d + i));
        oacc[t] = _mm_fmadd_ps(q->dw, _mm_loadu_ps(xq->dsum + i), oacc[t]);
        const __m256 s = _mm256_set_m128(_mm_permute_ps(s4, _MM_SHUFFLE(0, 3, 2, 1)), s4);
        const int8_t *xb = xq->q + i * 32;
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            __m256i dot = _mm256_dpbusd_avx_epi32(
                zero, q->lo[k], _mm256_loadu_si256((const __m256i *)(xb + 64 * k)));
            dot = _mm256_dpbusd_avx_epi32(dot, q->hi[k],
                                          _mm256_loadu_si256((const __m256i *)(xb + 64 * k + 32)));
            acc[k * T + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                             _mm256_permutevar_ps(s, _mm256_set1_epi32(k ? 2 : 0)),
                                             acc[k * T + t]);
        }
    }
}

/* One block (the tail of a row when nb % 4 != 0), bias cancelled in the integer lanes. */
KB_TARGET_AVXVNNI KB_INLINE void single(const uint8_t *p, const kb_xq *xq, int64_t b, const int T,
                                     __m256 *acc)
{
    const __m256i shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2)));
    q = _mm256_and_si256(_mm256_srlv_epi32(q, shift), m4); /* [weights 0..15 | 16..31] */
    const __m256 dw = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const int64_t i = t * xq->nbp + b;
        const int8_t *xl = xq->q + (i & ~(int64_t)1) * 32 + (b & 1) * 16; /* pair layout */
        __m256i xv = _mm256_loadu2_m128i((const __m128i *)(xl + 32), (const __m128i *)xl);
        __m256i dot = _mm256_dpbusd_avx_epi32(_mm256_set1_epi32(xq->off[i]), q, xv);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                 _mm256_mul_ps(dw, _mm256_broadcast_ss(xq->d + i)), acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token). */
KB_TARGET_AVXVNNI KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T, __m256 *acc,
                                  __m128 *oacc)
{
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q4_0);
    const kb_xq xq = *(const kb_xq *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm256_setzero_ps();
    for (int t = 0; t < T; t++)
        oacc[t] = _mm_setzero_ps();
    int64_t b = 0;
    if (nb >= 4) { /* software-pipelined: the next quad's weights load during this one's dots */
        quad_w cur = quad_load(w);
        for (; b + 8 <= nb; b += 4) {
            _mm_prefetch((const char *)(w + b * bs + PF_DIST), _MM_HINT_T0);
            quad_w nxt = quad_load(w + (b + 4) * bs);
            quad_dot(&cur, &xq, b, T, acc, oacc);
            cur = nxt;
        }
        quad_dot(&cur, &xq, b, T, acc, oacc);
        b += 4;
    }
    for (; b < nb; b++)
        single(w + b * bs, &xq, b, T, acc);
    for (int t = 0; t < T; t++) {
        __m256 a = _mm256_add_ps(acc[t], acc[T + t]);
        a = _mm256_fnmadd_ps(_mm256_set1_ps(8.0f), _mm256_castps128_ps256(oacc[t]), a);
        j->y[t * j->rows + r] = kb_hsum256(a);
    }
}

KB_TARGET_AVXVNNI static void rows_1(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m256 acc[2];
    __m128 oacc[1];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, 1, acc, oacc);
}

KB_TARGET_AVXVNNI static void rows_T(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m256 acc[2 * MV_MAX_TOKENS];
    __m128 oacc[MV_MAX_TOKENS];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, (int)j->tokens, acc, oacc);
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
                   KB_XQ_PAIR_Q4);
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
    return kb_need_avxvnni();
}

const kb_impl kb_impl_matvec_q4_0_avxvnni = {
    .family = "matvec_q4_0",
    .name = "avxvnni",
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
