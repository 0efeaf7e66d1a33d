/* matvec_q4_0, AVX-VNNI (VEX vpdpbusd on ymm), int8 activations (GGML's trick): the kernel of
 * mvq_q4_0_i8_ymm.h with vpdpbusd (unsigned 4-bit codes x signed int8 activations, four products
 * into each i32 lane) as its dot product. */
#include "mvq_i8.h"

#define MVQ_TARGET KB_TARGET_AVXVNNI

MVQ_TARGET KB_INLINE __m256i dot_pair(__m256i lo, __m256i xlo, __m256i hi, __m256i xhi)
{
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), lo, xlo), hi,
                                   xhi);
}

MVQ_TARGET KB_INLINE __m256i dot_one(__m256i q, __m256i x, int32_t off)
{
    return _mm256_dpbusd_avx_epi32(_mm256_set1_epi32(off), q, x);
}

#include "mvq_q4_0_i8_ymm.h"

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avxvnni();
}

const kb_impl kb_impl_matvec_q4_0_avxvnni = {
    .family = "matvec_q4_0",
    .name = "avxvnni",
    .backend = KB_BACKEND_CPU,
    .available = available,
    MVQ_I8_TOL,
    .cpu_run = run,
};
