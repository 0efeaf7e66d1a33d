/* read, AVX2: the streaming-read yardstick of read_x86.h on ymm (64 floats per iteration). */
#include "simd_x86.h"

#define READ_TARGET KB_TARGET_AVX2
#define READ_BITS 256

READ_TARGET KB_INLINE double read_fold(__m256 s)
{
    __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(s)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1)));
    __m128d d2 = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
    return _mm_cvtsd_f64(_mm_add_sd(d2, _mm_unpackhi_pd(d2, d2)));
}

#include "read_x86.h"

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_read_avx2 = {
    .family = "read",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
