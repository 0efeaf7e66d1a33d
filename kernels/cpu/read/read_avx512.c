/* read, AVX-512: the streaming-read yardstick of read_x86.h on zmm (128 floats per iteration). */
#include "simd_x86.h"

#define READ_TARGET KB_TARGET_AVX512
#define READ_BITS 512

READ_TARGET KB_INLINE double read_fold(__m512 s)
{
    __m512d d = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(s)),
                              _mm512_cvtps_pd(_mm256_castpd_ps(
                                  _mm512_extractf64x4_pd(_mm512_castps_pd(s), 1))));
    return _mm512_reduce_add_pd(d);
}

#include "read_x86.h"

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_read_avx512 = {
    .family = "read",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
