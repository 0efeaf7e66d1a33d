/* matvec_q4_0, AVX-512, f32 activations: weights dequantized in registers, x stays f32 (as
 * transformed by mvq_q4_0_f32.h).
 *
 * The arithmetic is that of matvec_q4_0_avx2.c on zmm: a block's 16 code bytes zero-extend to 16
 * i32 (vpmovzxbd zmm, straight from memory), so a block is one mask, two conversions and two
 * FMAs. The -8 of the codes comes off once per row. Blocks go four at a time (scales converted
 * together, broadcast from a small buffer); one row at a time, two FMA chains per token, software
 * prefetch ahead; tokens > 1 reuse each converted block for all tokens. Written for AVX-512
 * machines; the distances are those tuned for the AVX2 kernels on Zen 3. */
#include "mvq_q4_0_f32.h"

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

/* Row r, T tokens (a constant where inlined for one token). */
KB_TARGET_AVX512 KB_INLINE void row(const kb_mv_job *j, int64_t r, const int T)
{
    __m512 acc[2 * MV_MAX_TOKENS];
    __m128 oacc[MV_MAX_TOKENS];
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
        _mm_prefetch((const char *)(p + MVQ_PF_DIST), _MM_HINT_T0); /* a line a quad */
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

MVQ_Q4_0_F32_KERNEL(KB_TARGET_AVX512)

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
