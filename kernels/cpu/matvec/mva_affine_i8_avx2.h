/* The int8-activation MLX affine matvec on AVX2, for b = 4 or 2 bits (matvec_a4_avx2_i8.c,
 * matvec_a2_avx2_i8.c instantiate it with their b).
 *
 * x is quantized per call (mva_affine_i8.h). A chunk of 32 code bytes is split into n = 8/b
 * vectors of codes (shifts and byte masks: b = 4 gives the low and the high nibbles, b = 2 the
 * four 2-bit fields), each meets its activations with vpmaddubsw (unsigned codes x signed int8,
 * pairs summed to i16: at most 2 * 15 * 127 per term, n terms fit in i16), vpmaddwd with ones sums
 * to eight i32 lanes, which convert to f32 and accumulate with the lane's scale (group scale
 * times the activation block's scale): per 32 code bytes one FMA per token. The biases meet the
 * group sums of the quantized x once per row, as in the f32 kernel. One row at a time, software
 * prefetch ahead, tokens four at a time (later chunks of tokens re-read the row from L1). */
#ifndef KB_MVA_AFFINE_I8_AVX2_H
#define KB_MVA_AFFINE_I8_AVX2_H

#include "mva_affine_avx2.h"
#include "mva_affine_i8.h"

/* The eight lanes' group scales for a chunk whose first group is at sf (gpc groups per chunk:
 * cpc / G, or 0 when the chunk is within one group). */
KB_TARGET_AVX2 KB_INLINE __m256 ai_scales(const float *sf, const int gpc)
{
    if (gpc <= 1)
        return _mm256_broadcast_ss(sf);
    if (gpc == 2) {
        const __m128 s2 = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)sf));
        return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s2),
                                        _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    }
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sf)),
                                    _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
}

/* Row r of computed matrix k for tokens t0 .. t0 + T - 1. */
KB_TARGET_AVX2 KB_INLINE void ai_row(const int bits, const int G, const kb_mva_job *j, int64_t k,
                                     int64_t r, int64_t t0, const int T)
{
    const int n = 8 / bits, cpc = 32 * n, gpc = cpc / G;
    const kb_mva *s = &j->s;
    const mva_xq *xq = j->aux;
    const int64_t wr = kb_mva_row(j, k, r), ng = s->ngroups, nch = xq->nchunks;
    const int64_t rb = s->row_bytes;
    const uint8_t *w = j->w + wr * rb;
    const uint16_t *sc = j->sc + wr * ng, *bi = j->bi + wr * ng;
    const int8_t *xqv[MVA_TMAX];
    const float *dl[MVA_TMAX], *sx[MVA_TMAX];
    __m256 acc[MVA_TMAX];
    for (int t = 0; t < T; t++) {
        const int64_t v = kb_mva_xvec(j, k, t0 + t);
        xqv[t] = xq->q + v * nch * cpc;
        dl[t] = xq->dl + v * nch * 8;
        sx[t] = xq->sxq + v * xq->sx_stride;
        acc[t] = _mm256_setzero_ps();
    }
    const __m256i mask = _mm256_set1_epi8((char)((1 << bits) - 1));
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t cpp = 64 * G / cpc; /* chunks per 64 groups */
    float sf[80] __attribute__((aligned(32)));
    for (int64_t c0 = 0; c0 < nch; c0 += cpp) {
        const int64_t g0 = c0 * cpc / G, ngp = ng - g0 < 64 ? ng - g0 : 64;
        int64_t i = 0;
        for (; i < ngp; i += 8)
            _mm256_store_ps(sf + i, mva_bf16x8_n(sc + g0 + i, ngp - i));
        _mm256_store_ps(sf + i, _mm256_setzero_ps()); /* a tail chunk's groups past the row */
        const int64_t c1 = nch - c0 < cpp ? nch : c0 + cpp;
        for (int64_t c = c0; c < c1; c++) {
            const uint8_t *p = w + c * 32;
            if ((c & 1) == 0)
                _mm_prefetch((const char *)(p + MVA_PF_DIST), _MM_HINT_T0);
            __m256i v;
            if (c * 32 + 32 <= rb) {
                v = _mm256_loadu_si256((const __m256i *)p);
            } else { /* the row's last bytes: never read past them */
                uint8_t tmp[32] = {0};
                memcpy(tmp, p, (size_t)(rb - c * 32));
                v = _mm256_loadu_si256((const __m256i *)tmp);
            }
            __m256i q[4];
            q[0] = _mm256_and_si256(v, mask);
            if (bits == 4) {
                q[1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
            } else {
                q[1] = _mm256_and_si256(_mm256_srli_epi16(v, 2), mask);
                q[2] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
                q[3] = _mm256_and_si256(_mm256_srli_epi16(v, 6), mask);
            }
            const __m256 sv = ai_scales(sf + (c * cpc / G - g0), gpc);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const int8_t *xc = xqv[t] + c * cpc;
                __m256i d16 = _mm256_maddubs_epi16(q[0], _mm256_loadu_si256((const __m256i *)xc));
#pragma GCC unroll 4
                for (int m = 1; m < n; m++)
                    d16 = _mm256_add_epi16(
                        d16, _mm256_maddubs_epi16(
                                 q[m], _mm256_loadu_si256((const __m256i *)(xc + 32 * m))));
                const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(d16, ones));
                acc[t] =
                    _mm256_fmadd_ps(f, _mm256_mul_ps(_mm256_loadu_ps(dl[t] + c * 8), sv), acc[t]);
            }
        }
    }
    mva_bias_dot(bi, ng, sx, T, acc); /* against the sums of the quantized x */
    for (int t = 0; t < T; t++)
        j->y[(k * s->tokens + t0 + t) * s->rows + r] = kb_hsum256(acc[t]);
}

KB_TARGET_AVX2 KB_INLINE void ai_rows(const int bits, const int G, const kb_mva_job *j, int64_t k,
                                      int64_t r0, int64_t r1)
{
    const int64_t tokens = j->s.tokens;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t t0 = 0; t0 < tokens; t0 += MVA_TMAX) {
            switch (tokens - t0) {
            case 1: ai_row(bits, G, j, k, r, t0, 1); break;
            case 2: ai_row(bits, G, j, k, r, t0, 2); break;
            case 3: ai_row(bits, G, j, k, r, t0, 3); break;
            default: ai_row(bits, G, j, k, r, t0, 4); break;
            }
        }
    }
}

/* Defines the cpu_run `run` of the b-bit int8-activation kernel. */
#define MVA_AFFINE_I8_AVX2_KERNEL(bits)                                                            \
    KB_TARGET_AVX2 static void rows_32(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)     \
    {                                                                                              \
        ai_rows(bits, 32, j, k, r0, r1);                                                           \
    }                                                                                              \
    KB_TARGET_AVX2 static void rows_64(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)     \
    {                                                                                              \
        ai_rows(bits, 64, j, k, r0, r1);                                                           \
    }                                                                                              \
    KB_TARGET_AVX2 static void rows_128(const kb_mva_job *j, int64_t k, int64_t r0, int64_t r1)    \
    {                                                                                              \
        ai_rows(bits, 128, j, k, r0, r1);                                                          \
    }                                                                                              \
    static void task(void *arg, int tid, int nthreads)                                             \
    {                                                                                              \
        const kb_mva_job *j = arg;                                                                 \
        kb_mva_share(j, tid, nthreads,                                                             \
                     j->s.group == 32   ? rows_32                                                  \
                     : j->s.group == 64 ? rows_64                                                  \
                                        : rows_128);                                               \
    }                                                                                              \
    KB_TARGET_AVX2 static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out,          \
                                   kb_pool *pool)                                                  \
    {                                                                                              \
        kb_mva_job j;                                                                              \
        kb_mva_job_init(&j, c, bits, in, out);                                                     \
        mva_xq xq;                                                                                 \
        kb_mva_quantize_x(bits, &j.s, j.x, kb_scratch(kb_mva_xq_bytes(&j.s)), &xq);                \
        j.aux = &xq;                                                                               \
        kb_pool_run(pool, task, &j);                                                               \
    }

#endif
