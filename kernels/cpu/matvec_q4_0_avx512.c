/* matvec_q4_0, AVX-512, f32 activations: weights dequantized in registers, x stays f32.
 *
 * The arithmetic is that of matvec_q4_0_avx2.c on zmm: a block's 16 code bytes c = lo + 16 hi
 * zero-extend to 16 i32 (vpmovzxbd zmm, straight from memory); with xa_j = x_j - x_{j+16}/16 and
 * xb_j = x_{j+16}/16 (precomputed once per call), lo x_j + hi x_{j+16} = lo xa_j + c xb_j, so a
 * block is one mask, two conversions and two FMAs. The -8 of the codes comes off per row as
 * 8 sum_b d_b sx_b (block sums of x, four blocks per xmm FMA). Blocks go four at a time (scales
 * converted together, broadcast from a small buffer); one row at a time, two FMA chains per
 * token, software prefetch ahead; tokens > 1 reuse each converted block for all tokens.
 * Written for AVX-512 machines; the distances are those tuned for the AVX2 kernels on Zen 3. */
#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

/* Software prefetch distance, bytes ahead in the row stream (one line per 72-byte quad). */
#define PF_DIST 2048

/* Transformed x, per token: xt[b][0..15] = xa, xt[b][16..31] = xb; sx[b] the block sums. */
typedef struct {
    const float *xt; /* [tokens][nb][32] */
    const float *sx; /* [tokens][sx_stride]: nb sums, then zeros (xmm loads of four) */
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

/* Block b of a row (p: its scale) with scale d against T tokens (the transformed x). */
KB_TARGET_AVX512 KB_INLINE void block(const uint8_t *p, __m512 d, const q4_xt *xq, int64_t nb,
                                      int64_t b, const int T, __m512 *acc)
{
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)));
    const __m512 flo = _mm512_cvtepi32_ps(_mm512_and_si512(v, _mm512_set1_epi32(15)));
    const __m512 fc = _mm512_cvtepi32_ps(v);
    for (int t = 0; t < T; t++) {
        const float *xb = xq->xt + (t * nb + b) * QK;
        __m512 s = _mm512_mul_ps(flo, _mm512_load_ps(xb));
        s = _mm512_fmadd_ps(fc, _mm512_load_ps(xb + 16), s);
        acc[t] = _mm512_fmadd_ps(d, s, acc[t]);
    }
}

/* One block (the tail of a row when nb % 4 != 0), straight from x: (q - 8) x. */
KB_TARGET_AVX512 KB_INLINE void single(const uint8_t *p, const float *x, int64_t cols, int64_t b,
                                       const int T, __m512 *acc)
{
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)));
    const __m512i eight = _mm512_set1_epi32(8);
    const __m512 f0 = _mm512_cvtepi32_ps(
        _mm512_sub_epi32(_mm512_and_si512(v, _mm512_set1_epi32(15)), eight));
    const __m512 f1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight));
    uint16_t h;
    memcpy(&h, p, 2);
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(h));
    for (int t = 0; t < T; t++) {
        const float *xb = x + t * cols + b * QK;
        __m512 s = _mm512_mul_ps(f0, _mm512_loadu_ps(xb));
        s = _mm512_fmadd_ps(f1, _mm512_loadu_ps(xb + 16), s);
        acc[t] = _mm512_fmadd_ps(d, s, acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token); acc: 2 * T vectors, oacc: T. */
KB_TARGET_AVX512 KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T, __m512 *acc,
                                    __m128 *oacc)
{
    const int64_t nb = j->nb, bs = (int64_t)sizeof(block_q4_0);
    const q4_xt xq = *(const q4_xt *)j->aux;
    const uint8_t *w = j->w + r * j->row_bytes;
    float dbuf[4] __attribute__((aligned(16)));
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm512_setzero_ps();
    for (int t = 0; t < T; t++)
        oacc[t] = _mm_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *p = w + b * bs;
        _mm_prefetch((const char *)(p + PF_DIST), _MM_HINT_T0);
        const __m128 dw = kb_f16x4(p, bs);
        _mm_store_ps(dbuf, dw);
        for (int t = 0; t < T; t++)
            oacc[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(xq.sx + t * xq.sx_stride + b), oacc[t]);
        block(p, _mm512_set1_ps(dbuf[0]), &xq, nb, b, T, acc);
        block(p + bs, _mm512_set1_ps(dbuf[1]), &xq, nb, b + 1, T, acc + T);
        block(p + 2 * bs, _mm512_set1_ps(dbuf[2]), &xq, nb, b + 2, T, acc);
        block(p + 3 * bs, _mm512_set1_ps(dbuf[3]), &xq, nb, b + 3, T, acc + T);
    }
    for (; b < nb; b++)
        single(w + b * bs, j->x, j->cols, b, T, acc);
    for (int t = 0; t < T; t++) {
        __m128 o = _mm_add_ps(oacc[t], _mm_movehl_ps(oacc[t], oacc[t]));
        o = _mm_add_ss(o, _mm_movehdup_ps(o));
        j->y[t * j->rows + r] =
            _mm512_reduce_add_ps(_mm512_add_ps(acc[t], acc[T + t])) - 8.0f * _mm_cvtss_f32(o);
    }
}

KB_TARGET_AVX512 static void rows_1(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m512 acc[2];
    __m128 oacc[1];
    for (int64_t r = lo; r < hi; r++)
        row(j, r, 1, acc, oacc);
}

KB_TARGET_AVX512 static void rows_T(const kb_mv_job *j, int64_t lo, int64_t hi)
{
    __m512 acc[2 * MV_MAX_TOKENS];
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
    return kb_need_avx512();
}

const kb_impl kb_impl_matvec_q4_0_avx512 = {
    .family = "matvec_q4_0",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
