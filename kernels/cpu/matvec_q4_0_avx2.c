/* matvec_q4_0, AVX2 + FMA, f32 activations: weights dequantized in registers, x stays f32.
 *
 * The work per weight is what limits this kernel (int -> f32 conversions and FMAs), so the
 * arithmetic is arranged to need as little as possible:
 * - A code byte c = lo + 16 hi holds weights j (lo) and j + 16 (hi). With xa_j = x_j - x_{j+16}/16
 *   and xb_j = x_{j+16}/16 (precomputed once per call), lo x_j + hi x_{j+16} = lo xa_j + c xb_j:
 *   the whole byte converts as is, only the low nibble needs a mask, no shift.
 * - The -8 of the codes: sum (q - 8) x = sum q x - 8 sx, with sx the block's sum of x. Per row,
 *   sum_b d_b sx_b is accumulated four blocks at a time in one xmm FMA and taken 8 times off at
 *   the end.
 * - Blocks go four at a time: the four f16 scales are converted together (one vcvtph2ps) into
 *   S = [d0 d1 d2 d3 | d0 d1 d2 d3] and broadcast per block in-lane (vpermilps).
 * One row at a time (a single stream per thread prefetches best; two interleaved rows measured
 * slower), two FMA chains per token, software prefetch ahead; tokens > 1 reuse each converted
 * weight block from registers for all tokens. */
#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

/* Software prefetch distance, bytes ahead in the row stream (one line per 72-byte quad). */
#define PF_DIST 2048

/* Transformed x, per token: xt[b][0..15] = xa, xt[b][16..31] = xb; then sx[b]. */
typedef struct {
    const float *xt; /* [tokens][nb][32] */
    const float *sx; /* [tokens][nb + 3]: block sums of x (3 floats of padding: xmm loads) */
    int64_t sx_stride;
} q4_xt;

KB_TARGET_AVX2 static void prep_x(float *xt, float *sx, int64_t sx_stride, const float *x,
                                  int64_t tokens, int64_t cols)
{
    const int64_t nb = cols / QK;
    const __m256 s16 = _mm256_set1_ps(1.0f / 16);
    for (int64_t t = 0; t < tokens; t++) {
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + t * cols + b * QK;
            float *o = xt + (t * nb + b) * QK;
            __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8);
            __m256 x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
            __m256 h2 = _mm256_mul_ps(x2, s16), h3 = _mm256_mul_ps(x3, s16); /* exact */
            _mm256_store_ps(o, _mm256_sub_ps(x0, h2));
            _mm256_store_ps(o + 8, _mm256_sub_ps(x1, h3));
            _mm256_store_ps(o + 16, h2);
            _mm256_store_ps(o + 24, h3);
            sx[t * sx_stride + b] =
                kb_hsum256(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)));
        }
        for (int64_t b = nb; b < sx_stride; b++)
            sx[t * sx_stride + b] = 0.0f;
    }
}

/* Four blocks of one row from block b (p points at block b), T tokens. acc[(u & 1) * T + t]:
 * two FMA chains per token. */
KB_TARGET_AVX2 KB_INLINE void quad(const uint8_t *p, const q4_xt *xq, int64_t nb, int64_t b,
                                   const int T, __m256 *acc, __m128 *oacc)
{
    const int64_t bs = (int64_t)sizeof(block_q4_0);
    const __m256i lo4 = _mm256_set1_epi32(15);
    const __m128 dw = kb_f16x4(p, bs);
    const __m256 S = _mm256_set_m128(dw, dw);
    for (int t = 0; t < T; t++)
        oacc[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(xq->sx + t * xq->sx_stride + b), oacc[t]);
#pragma GCC unroll 4
    for (int u = 0; u < 4; u++) {
        const uint8_t *q = p + u * bs + 2;
        __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)q));
        __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8)));
        __m256 f0 = _mm256_cvtepi32_ps(_mm256_and_si256(v0, lo4)); /* lo, j = 0..7 */
        __m256 f1 = _mm256_cvtepi32_ps(_mm256_and_si256(v1, lo4)); /* lo, j = 8..15 */
        __m256 f2 = _mm256_cvtepi32_ps(v0);                        /* byte, j = 0..7 */
        __m256 f3 = _mm256_cvtepi32_ps(v1);                        /* byte, j = 8..15 */
        /* lane u of each half; a variable index, since -O0 does not fold u * 0x55 */
        const __m256 d = _mm256_permutevar_ps(S, _mm256_set1_epi32(u));
        for (int t = 0; t < T; t++) {
            const float *xb = xq->xt + (t * nb + b + u) * QK;
            __m256 s = _mm256_mul_ps(f0, _mm256_load_ps(xb));
            s = _mm256_fmadd_ps(f1, _mm256_load_ps(xb + 8), s);
            s = _mm256_fmadd_ps(f2, _mm256_load_ps(xb + 16), s);
            s = _mm256_fmadd_ps(f3, _mm256_load_ps(xb + 24), s);
            acc[(u & 1) * T + t] = _mm256_fmadd_ps(d, s, acc[(u & 1) * T + t]);
        }
    }
}

/* One block (the tail of a row when nb % 4 != 0), straight from x: (q - 8) x. */
KB_TARGET_AVX2 KB_INLINE void single(const uint8_t *p, const float *x, int64_t cols, int64_t b,
                                     const int T, __m256 *acc)
{
    const __m256i lo4 = _mm256_set1_epi32(15), eight = _mm256_set1_epi32(8);
    __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2)));
    __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 10)));
    __m256 f0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v0, lo4), eight));
    __m256 f1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(v1, lo4), eight));
    __m256 f2 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v0, 4), eight));
    __m256 f3 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(v1, 4), eight));
    const __m256 d = kb_bcast_f16(p);
    for (int t = 0; t < T; t++) {
        const float *xb = x + t * cols + b * QK;
        __m256 s = _mm256_mul_ps(f0, _mm256_loadu_ps(xb));
        s = _mm256_fmadd_ps(f1, _mm256_loadu_ps(xb + 8), s);
        s = _mm256_fmadd_ps(f2, _mm256_loadu_ps(xb + 16), s);
        s = _mm256_fmadd_ps(f3, _mm256_loadu_ps(xb + 24), s);
        acc[t] = _mm256_fmadd_ps(d, s, acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token); acc: 2 * T vectors, oacc: T. */
KB_TARGET_AVX2 KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T, __m256 *acc,
                                  __m128 *oacc)
{
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q4_0);
    const q4_xt xq = *(const q4_xt *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm256_setzero_ps();
    for (int t = 0; t < T; t++)
        oacc[t] = _mm_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        _mm_prefetch((const char *)(w + b * bs + PF_DIST), _MM_HINT_T0);
        quad(w + b * bs, &xq, nb, b, T, acc, oacc);
    }
    for (; b < nb; b++)
        single(w + b * bs, j->x, j->cols, b, T, acc);
    for (int t = 0; t < T; t++) {
        __m256 a = _mm256_add_ps(acc[t], acc[T + t]);
        a = _mm256_fnmadd_ps(_mm256_set1_ps(8.0f), _mm256_castps128_ps256(oacc[t]), a);
        j->y[t * j->rows + r] = kb_hsum256(a);
    }
}

KB_TARGET_AVX2 static void rows_1(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m256 acc[2];
    __m128 oacc[1];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, 1, acc, oacc);
}

KB_TARGET_AVX2 static void rows_T(const kb_mv_job *j, int64_t lo, int64_t hi)
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
    const int64_t nb = cols / QK, sx_stride = nb + 3;
    float *xt = kb_scratch((size_t)(tokens * (nb * QK + sx_stride)) * sizeof(float));
    float *sx = xt + tokens * nb * QK;
    prep_x(xt, sx, sx_stride, in[MV_X].data, tokens, cols);
    q4_xt xq = {.xt = xt, .sx = sx, .sx_stride = sx_stride};
    kb_mv_job j = {.w = in[MV_W].data,
                   .x = in[MV_X].data,
                   .y = out[MV_Y].data,
                   .rows = rows,
                   .cols = cols,
                   .tokens = tokens,
                   .nb = nb,
                   .row_bytes = nb * (int64_t)sizeof(block_q4_0),
                   .aux = &xq};
    kb_pool_run(pool, task, &j);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_q4_0_avx2 = {
    .family = "matvec_q4_0",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
