/* matvec_q4_0, AVX2 + FMA, f32 activations: weights dequantized in registers, x stays f32.
 *
 * A block's 16 code bytes are zero-extended to i32 in two halves (8 bytes each); a half gives
 * weights j (code & 15) and j + 16 (code >> 4), converted to f32 and multiplied with x by FMA.
 * The -8 of the codes is not subtracted per weight: sum_j (q_j - 8) x_j = sum_j q_j x_j - 8 sx
 * with sx the block's sum of x, precomputed once per call; the eight lanes of the block's dot
 * product start from -sx each, which adds up to -8 sx. Then acc += d * dot.
 * Tiles of 4 rows share the x loads; tokens > 1 reuse each dequantized weight block for all
 * tokens (accumulators [row][token]). Rows split across threads in multiples of the tile. */
#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

#define RT 4 /* rows per tile */

/* nsx[t * nb + b] = -(sum of x[t][32 b .. 32 b + 31]) */
KB_TARGET_AVX2 static void prep_sums(float *nsx, const float *x, int64_t tokens, int64_t cols)
{
    const int64_t nb = cols / QK;
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + t * cols + b * QK;
            __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xb), _mm256_loadu_ps(xb + 8)),
                                     _mm256_add_ps(_mm256_loadu_ps(xb + 16),
                                                   _mm256_loadu_ps(xb + 24)));
            nsx[t * nb + b] = -kb_hsum256(s);
        }
}

/* R rows from r0, T tokens; acc holds R * T vectors. R and T are constants where inlined for
 * one token, so the accumulators live in registers. */
KB_TARGET_AVX2 KB_INLINE void tile(const kb_mv_job *j, int64_t r0, const int R, const int T,
                                   __m256 *acc)
{
    const int64_t nb = j->nb, rb = j->row_bytes, cols = j->cols;
    const float *nsx = j->aux;
    const uint8_t *w0 = j->w + r0 * rb;
    const __m256i lo4 = _mm256_set1_epi32(15);
    for (int i = 0; i < R * T; i++)
        acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w0 + b * (int64_t)sizeof(block_q4_0);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const uint8_t *p = wb + r * rb;
            __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 2)));
            __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 10)));
            __m256 f0 = _mm256_cvtepi32_ps(_mm256_and_si256(v0, lo4)); /* weights 0..7 */
            __m256 f1 = _mm256_cvtepi32_ps(_mm256_and_si256(v1, lo4)); /* 8..15 */
            __m256 f2 = _mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4));  /* 16..23 */
            __m256 f3 = _mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4));  /* 24..31 */
            __m256 d = kb_bcast_f16(p);
            for (int t = 0; t < T; t++) {
                const float *xb = j->x + t * cols + b * QK;
                __m256 s = _mm256_fmadd_ps(f0, _mm256_loadu_ps(xb),
                                           _mm256_broadcast_ss(nsx + t * nb + b));
                s = _mm256_fmadd_ps(f1, _mm256_loadu_ps(xb + 8), s);
                s = _mm256_fmadd_ps(f2, _mm256_loadu_ps(xb + 16), s);
                s = _mm256_fmadd_ps(f3, _mm256_loadu_ps(xb + 24), s);
                acc[r * T + t] = _mm256_fmadd_ps(d, s, acc[r * T + t]);
            }
        }
    }
    for (int t = 0; t < T; t++) {
        float *y = j->y + t * j->rows + r0;
        if (R == 4) {
            _mm_storeu_ps(y, kb_hsum256_x4(acc[t], acc[T + t], acc[2 * T + t], acc[3 * T + t]));
        } else {
            for (int r = 0; r < R; r++)
                y[r] = kb_hsum256(acc[r * T + t]);
        }
    }
}

KB_TARGET_AVX2 static void tile_4x1(const kb_mv_job *j, int64_t r0)
{
    __m256 acc[4];
    tile(j, r0, 4, 1, acc);
}

KB_TARGET_AVX2 static void tile_1x1(const kb_mv_job *j, int64_t r0)
{
    __m256 acc[1];
    tile(j, r0, 1, 1, acc);
}

KB_TARGET_AVX2 static void tile_4xT(const kb_mv_job *j, int64_t r0)
{
    __m256 acc[4 * MV_MAX_TOKENS];
    tile(j, r0, 4, (int)j->tokens, acc);
}

KB_TARGET_AVX2 static void tile_1xT(const kb_mv_job *j, int64_t r0)
{
    __m256 acc[MV_MAX_TOKENS];
    tile(j, r0, 1, (int)j->tokens, acc);
}

static void task(void *arg, int tid, int nthreads)
{
    const kb_mv_job *j = arg;
    int64_t lo, hi;
    kb_split(j->rows, RT, tid, nthreads, &lo, &hi);
    int64_t r = lo;
    if (j->tokens == 1) {
        for (; r + RT <= hi; r += RT)
            tile_4x1(j, r);
        for (; r < hi; r++)
            tile_1x1(j, r);
    } else {
        for (; r + RT <= hi; r += RT)
            tile_4xT(j, r);
        for (; r < hi; r++)
            tile_1xT(j, r);
    }
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    const int64_t rows = c->p[MV_ROWS], cols = c->p[MV_COLS], tokens = c->p[MV_TOKENS];
    float *nsx = kb_scratch((size_t)(tokens * (cols / QK)) * sizeof(float));
    prep_sums(nsx, in[MV_X].data, tokens, cols);
    kb_mv_job j = {.w = in[MV_W].data,
                   .x = in[MV_X].data,
                   .y = out[MV_Y].data,
                   .rows = rows,
                   .cols = cols,
                   .tokens = tokens,
                   .nb = cols / QK,
                   .row_bytes = cols / QK * (int64_t)sizeof(block_q4_0),
                   .aux = nsx};
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
