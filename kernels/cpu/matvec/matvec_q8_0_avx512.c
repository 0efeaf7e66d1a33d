/* matvec_q8_0, AVX-512, f32 activations: weights dequantized in registers, x stays f32.
 *
 * A block's 32 int8 weights are sign-extended to i32 sixteen at a time straight from memory
 * (vpmovsxbd zmm), converted to f32 and multiplied with x by FMA; acc += d * dot. Blocks go four
 * at a time: the four f16 scales are converted together (one vcvtph2ps) and each block's scale
 * is broadcast from a small buffer (a broadcast load: no shuffle). One row at a time, two FMA
 * chains per token, software prefetch ahead; tokens > 1 reuse each converted weight block from
 * registers for all tokens. Written for AVX-512 machines; the distances are those tuned for the
 * AVX2 kernels on Zen 3. */
#include "mvq_cpu.h"

/* One block (p: its scale), scale d, T tokens of x at xb (token stride cols). */
KB_TARGET_AVX512 KB_INLINE void block(const uint8_t *p, __m512 d, const float *xb, int64_t cols,
                                      const int T, __m512 *acc)
{
    const __m512 f0 =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 2))));
    const __m512 f1 =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 18))));
    for (int t = 0; t < T; t++) {
        const float *x = xb + t * cols;
        __m512 s = _mm512_mul_ps(f0, _mm512_loadu_ps(x));
        s = _mm512_fmadd_ps(f1, _mm512_loadu_ps(x + 16), s);
        acc[t] = _mm512_fmadd_ps(d, s, acc[t]);
    }
}

/* Row r, T tokens (a constant where inlined for one token); acc[(b & 1) * T + t]. */
KB_TARGET_AVX512 KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T)
{
    __m512 acc[2 * MV_MAX_TOKENS];
    const int64_t nb = j->nb, cols = j->cols, bs = (int64_t)sizeof(block_q8_0);
    const uint8_t *w = j->w + r * j->row_bytes;
    float dbuf[4] __attribute__((aligned(16)));
    for (int i = 0; i < 2 * T; i++)
        acc[i] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= nb; b += 4) {
        const uint8_t *p = w + b * bs;
        mvq_prefetch3(p);
        _mm_store_ps(dbuf, kb_f16x4(p, bs));
        const float *xb = j->x + b * QK;
        block(p, _mm512_set1_ps(dbuf[0]), xb, cols, T, acc);
        block(p + bs, _mm512_set1_ps(dbuf[1]), xb + QK, cols, T, acc + T);
        block(p + 2 * bs, _mm512_set1_ps(dbuf[2]), xb + 2 * QK, cols, T, acc);
        block(p + 3 * bs, _mm512_set1_ps(dbuf[3]), xb + 3 * QK, cols, T, acc + T);
    }
    for (; b < nb; b++) {
        uint16_t h;
        memcpy(&h, w + b * bs, 2);
        block(w + b * bs, _mm512_set1_ps(_cvtsh_ss(h)), j->x + b * QK, cols, T, acc);
    }
    for (int t = 0; t < T; t++)
        j->y[t * j->rows + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t], acc[T + t]));
}

MVQ_KERNEL(KB_TARGET_AVX512, block_q8_0)

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_matvec_q8_0_avx512 = {
    .family = "matvec_q8_0",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
