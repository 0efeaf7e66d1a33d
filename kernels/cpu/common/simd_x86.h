/* Shared helpers for the x86-64 CPU kernels: per-function target attributes (the binary is built
 * for baseline x86-64 and must run where AVX-512 is absent), small inline helpers, the per-thread
 * scratch buffer and the helpers every matvec kernel file shares.
 *
 * Every function that uses an ISA's intrinsics carries that ISA's KB_TARGET_* attribute, static
 * inline helpers included. A helper of a smaller ISA (KB_TARGET_AVX2) may be inlined into a
 * function of a larger one (every larger target string below includes "avx2,fma,f16c"). */
#ifndef KB_SIMD_X86_H
#define KB_SIMD_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbench.h"

#define KB_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define KB_TARGET_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define KB_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))
#define KB_TARGET_AVX512VNNI \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define KB_INLINE static inline __attribute__((always_inline))

/* ---- availability (plain C: must not itself need the ISA it checks) --------------------- */

static inline const char *kb_need_avx2(void)
{
    const kb_cpu_features *f = kb_cpu();
    if (!f->avx2)
        return "CPU lacks avx2";
    if (!f->fma)
        return "CPU lacks fma";
    if (!f->f16c)
        return "CPU lacks f16c";
    return NULL;
}

static inline const char *kb_need_avxvnni(void)
{
    const char *why = kb_need_avx2();
    if (why)
        return why;
    return kb_cpu()->avxvnni ? NULL : "CPU lacks avxvnni";
}

static inline const char *kb_need_avx512(void)
{
    const char *why = kb_need_avx2();
    if (why)
        return why;
    const kb_cpu_features *f = kb_cpu();
    if (!f->avx512f)
        return "CPU lacks avx512f";
    if (!f->avx512bw)
        return "CPU lacks avx512bw";
    if (!f->avx512vl)
        return "CPU lacks avx512vl";
    return NULL;
}

static inline const char *kb_need_avx512vnni(void)
{
    const char *why = kb_need_avx512();
    if (why)
        return why;
    return kb_cpu()->avx512vnni ? NULL : "CPU lacks avx512vnni";
}

/* ---- per-thread scratch ----------------------------------------------------------------- */

/* A grow-only, 64-byte aligned buffer owned by the calling thread (one per including file): the
 * timed run reuses it instead of allocating each call. Aborts when memory is exhausted (a
 * benchmark harness has no better answer; cpu_run cannot report an error). */
static inline void *kb_scratch(size_t bytes)
{
    static _Thread_local void *buf;
    static _Thread_local size_t cap;
    if (bytes > cap) {
        size_t want = (bytes + 4095) / 4096 * 4096;
        free(buf);
        buf = aligned_alloc(64, want);
        if (!buf) {
            fprintf(stderr, "kbench: out of memory for %zu bytes of kernel scratch\n", want);
            abort();
        }
        cap = want;
    }
    return buf;
}

/* ---- AVX2 helpers ------------------------------------------------------------------------- */

KB_TARGET_AVX2 KB_INLINE float kb_hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The f16 scale at p (2-byte aligned), as f32 in all 8 lanes. */
KB_TARGET_AVX2 KB_INLINE __m256 kb_bcast_f16(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm256_set1_ps(_cvtsh_ss(h));
}

/* The f16 scales of four blocks, stride bytes apart from p, as four f32 (one vcvtph2ps). */
KB_TARGET_AVX2 KB_INLINE __m128 kb_f16x4(const uint8_t *p, int64_t stride)
{
    uint16_t h0, h1, h2, h3;
    memcpy(&h0, p, 2);
    memcpy(&h1, p + stride, 2);
    memcpy(&h2, p + 2 * stride, 2);
    memcpy(&h3, p + 3 * stride, 2);
    const uint64_t h = h0 | (uint64_t)h1 << 16 | (uint64_t)h2 << 32 | (uint64_t)h3 << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* ---- matvec plumbing ---------------------------------------------------------------------- */

/* What every matvec cpu_run hands its threads. */
typedef struct kb_mv_job {
    const uint8_t *w;  /* [rows][row_bytes] */
    const float *x;    /* [tokens][cols] */
    float *y;          /* [tokens][rows] */
    int64_t rows, cols, tokens, nb, row_bytes;
    const void *aux;   /* per-kernel precomputation of x (sums, quantized activations) */
} kb_mv_job;

#endif
