/* One source for the AVX2 and AVX-512 glue kernels (kernels/cpu/model): a file defines GV_512
 * (or not), includes this header, then its family's template (<family>_x86.h), which is written
 * against these names. GV_W lanes of f32; loads and stores of n < GV_W elements are masked (no
 * access past the end of a row). */
#ifndef KB_GLUE_VEC_H
#define KB_GLUE_VEC_H

#include "simd_x86.h"

#ifdef GV_512
#define GV_TARGET KB_TARGET_AVX512
#define GV_W 16
#define GV_ISA "avx512"
typedef __m512 gv_f;
#define gv_need kb_need_avx512
GV_TARGET KB_INLINE gv_f gv_load(const float *p) { return _mm512_loadu_ps(p); }
GV_TARGET KB_INLINE void gv_store(float *p, gv_f v) { _mm512_storeu_ps(p, v); }
GV_TARGET KB_INLINE gv_f gv_loadn(const float *p, int n)
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
GV_TARGET KB_INLINE void gv_storen(float *p, gv_f v, int n)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v);
}
GV_TARGET KB_INLINE gv_f gv_set1(float x) { return _mm512_set1_ps(x); }
GV_TARGET KB_INLINE gv_f gv_zero(void) { return _mm512_setzero_ps(); }
GV_TARGET KB_INLINE gv_f gv_add(gv_f a, gv_f b) { return _mm512_add_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_sub(gv_f a, gv_f b) { return _mm512_sub_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_mul(gv_f a, gv_f b) { return _mm512_mul_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_div(gv_f a, gv_f b) { return _mm512_div_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_fma(gv_f a, gv_f b, gv_f c) { return _mm512_fmadd_ps(a, b, c); }
GV_TARGET KB_INLINE gv_f gv_fms(gv_f a, gv_f b, gv_f c) { return _mm512_fmsub_ps(a, b, c); }
GV_TARGET KB_INLINE gv_f gv_max(gv_f a, gv_f b) { return _mm512_max_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_abs(gv_f a) { return _mm512_abs_ps(a); }
GV_TARGET KB_INLINE float gv_hsum(gv_f v) { return _mm512_reduce_add_ps(v); }
/* blend: lanes where a >= b take x, the others y */
GV_TARGET KB_INLINE gv_f gv_sel_ge(gv_f a, gv_f b, gv_f x, gv_f y)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GE_OQ), y, x);
}
GV_TARGET KB_INLINE gv_f gv_round(gv_f a)
{
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* 2^n for integral n in [-126, 127] */
GV_TARGET KB_INLINE gv_f gv_pow2i(gv_f n)
{
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
/* W f16 / bf16 / int8 values to f32 */
GV_TARGET KB_INLINE gv_f gv_from_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
GV_TARGET KB_INLINE gv_f gv_from_bf16(const uint16_t *p)
{
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
GV_TARGET KB_INLINE gv_f gv_from_i8(const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
/* W f32 to f16 (round to nearest even) at p */
GV_TARGET KB_INLINE void gv_to_f16(uint16_t *p, gv_f v)
{
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
#else
#define GV_TARGET KB_TARGET_AVX2
#define GV_W 8
#define GV_ISA "avx2"
typedef __m256 gv_f;
#define gv_need kb_need_avx2
GV_TARGET KB_INLINE __m256i gv_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
GV_TARGET KB_INLINE gv_f gv_load(const float *p) { return _mm256_loadu_ps(p); }
GV_TARGET KB_INLINE void gv_store(float *p, gv_f v) { _mm256_storeu_ps(p, v); }
GV_TARGET KB_INLINE gv_f gv_loadn(const float *p, int n) { return _mm256_maskload_ps(p, gv_mask(n)); }
GV_TARGET KB_INLINE void gv_storen(float *p, gv_f v, int n) { _mm256_maskstore_ps(p, gv_mask(n), v); }
GV_TARGET KB_INLINE gv_f gv_set1(float x) { return _mm256_set1_ps(x); }
GV_TARGET KB_INLINE gv_f gv_zero(void) { return _mm256_setzero_ps(); }
GV_TARGET KB_INLINE gv_f gv_add(gv_f a, gv_f b) { return _mm256_add_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_sub(gv_f a, gv_f b) { return _mm256_sub_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_mul(gv_f a, gv_f b) { return _mm256_mul_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_div(gv_f a, gv_f b) { return _mm256_div_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_fma(gv_f a, gv_f b, gv_f c) { return _mm256_fmadd_ps(a, b, c); }
GV_TARGET KB_INLINE gv_f gv_fms(gv_f a, gv_f b, gv_f c) { return _mm256_fmsub_ps(a, b, c); }
GV_TARGET KB_INLINE gv_f gv_max(gv_f a, gv_f b) { return _mm256_max_ps(a, b); }
GV_TARGET KB_INLINE gv_f gv_abs(gv_f a)
{
    return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}
GV_TARGET KB_INLINE float gv_hsum(gv_f v) { return kb_hsum256(v); }
GV_TARGET KB_INLINE gv_f gv_sel_ge(gv_f a, gv_f b, gv_f x, gv_f y)
{
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GE_OQ));
}
GV_TARGET KB_INLINE gv_f gv_round(gv_f a)
{
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
GV_TARGET KB_INLINE gv_f gv_pow2i(gv_f n)
{
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
GV_TARGET KB_INLINE gv_f gv_from_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
GV_TARGET KB_INLINE gv_f gv_from_bf16(const uint16_t *p)
{
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
GV_TARGET KB_INLINE gv_f gv_from_i8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
GV_TARGET KB_INLINE void gv_to_f16(uint16_t *p, gv_f v)
{
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
#endif

/* exp(x) for x <= 0, to ~2 ulp: x = n ln2 + r (|r| <= ln2/2, ln2 in two parts), a degree-7
 * polynomial for e^r, and 2^n applied as two factors so that results down to the subnormal
 * range round once (n >= -150 after the clamp; e^-104 is below half the smallest subnormal). */
GV_TARGET KB_INLINE gv_f gv_exp_neg(gv_f x)
{
    x = gv_max(x, gv_set1(-104.0f));
    const gv_f n = gv_round(gv_mul(x, gv_set1(1.44269504088896341f)));
    gv_f r = gv_fma(n, gv_set1(-0.693145751953125f), x); /* ln2 = hi + lo, hi exact in 14 bits */
    r = gv_fma(n, gv_set1(-1.428606765330187e-06f), r);
    gv_f p = gv_set1(1.0f / 5040);
    p = gv_fma(p, r, gv_set1(1.0f / 720));
    p = gv_fma(p, r, gv_set1(1.0f / 120));
    p = gv_fma(p, r, gv_set1(1.0f / 24));
    p = gv_fma(p, r, gv_set1(1.0f / 6));
    p = gv_fma(p, r, gv_set1(0.5f));
    p = gv_fma(p, r, gv_set1(1.0f));
    p = gv_fma(p, r, gv_set1(1.0f));
    const gv_f h = gv_round(gv_mul(n, gv_set1(0.5f))); /* n = h + (n - h), both >= -75 */
    return gv_mul(gv_mul(p, gv_pow2i(h)), gv_pow2i(gv_sub(n, h)));
}

/* sigmoid(g) for every g: t = e^-|g|, then 1/(1+t) or t/(1+t) (no overflow) */
GV_TARGET KB_INLINE gv_f gv_sigmoid(gv_f g)
{
    const gv_f t = gv_exp_neg(gv_sub(gv_zero(), gv_abs(g)));
    const gv_f inv = gv_div(gv_set1(1.0f), gv_add(gv_set1(1.0f), t));
    return gv_sel_ge(g, gv_zero(), inv, gv_mul(t, inv));
}

/* The thread split of n elementwise items: chunks of 1024 (whole vectors); a small job runs on
 * the calling thread alone (waking the pool costs more than it saves). */
#define GV_SMALL 16384
static inline int gv_threads(int64_t work, int nthreads) { return work < GV_SMALL ? 1 : nthreads; }

/* Runs task over the pool, or on this thread alone for small work. */
static inline void gv_run(kb_pool *pool, int64_t work, kb_task_fn task, void *job)
{
    if (gv_threads(work, kb_pool_size(pool)) == 1)
        task(job, 0, 1);
    else
        kb_pool_run(pool, task, job);
}

/* An elementwise job: y[i] = f(a[i], b[i]) for i < n. */
typedef struct gv_ew_job {
    const float *a, *b;
    void *y;
    int64_t n;
} gv_ew_job;

/* Defines the task and cpu_run of an elementwise family with NIN inputs from the family's
 * ew_range(job, lo, hi). Chunks of 1024 elements per thread. */
#define GV_EW_RUN(NIN)                                                                             \
    static void ew_task(void *arg, int tid, int nthreads)                                          \
    {                                                                                              \
        const gv_ew_job *j = arg;                                                                  \
        int64_t lo, hi;                                                                            \
        kb_split(j->n, 1024, tid, nthreads, &lo, &hi);                                             \
        ew_range(j, lo, hi);                                                                       \
    }                                                                                              \
    static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)          \
    {                                                                                              \
        (void)c;                                                                                   \
        gv_ew_job j = {in[0].data, (NIN) > 1 ? (const float *)in[1].data : NULL, out[0].data,      \
                       kb_tensor_numel(&out[0])};                                                  \
        gv_run(pool, j.n, ew_task, &j);                                                            \
    }

/* Token pasting for the implementation names: GV_NAME(rmsnorm) -> kb_impl_rmsnorm_avx2. */
#ifdef GV_512
#define GV_NAME(f) kb_impl_##f##_avx512
#else
#define GV_NAME(f) kb_impl_##f##_avx2
#endif

/* The kb_impl of family f with cpu_run `run`. */
#define GV_IMPL(f, fname)                                                                          \
    static const char *available(const kb_env *env)                                                \
    {                                                                                              \
        (void)env;                                                                                 \
        return gv_need();                                                                          \
    }                                                                                              \
    const kb_impl GV_NAME(f) = {                                                                   \
        .family = fname,                                                                           \
        .name = GV_ISA,                                                                            \
        .backend = KB_BACKEND_CPU,                                                                 \
        .available = available,                                                                    \
        .cpu_run = run,                                                                            \
    };

#endif
