/* matvec_q4_0, AVX2, int8 activations (GGML's trick): the kernel of mvq_q4_0_i8_ymm.h with
 * vpmaddubsw (unsigned 4-bit codes x signed int8 activations, pairs into i16), then vpmaddwd with
 * ones into i32 lanes, as its dot product. */
#include "mvq_i8.h"

#define MVQ_TARGET KB_TARGET_AVX2

/* The two vpmaddubsw results add in i16 (|4 * 15 * 127| fits); one vpmaddwd gives i32 lanes. */
MVQ_TARGET KB_INLINE __m256i dot_pair(__m256i lo, __m256i xlo, __m256i hi, __m256i xhi)
{
    const __m256i d16 =
        _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
    return _mm256_madd_epi16(d16, _mm256_set1_epi16(1));
}

MVQ_TARGET KB_INLINE __m256i dot_one(__m256i q, __m256i x, int32_t off)
{
    const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1));
    return _mm256_add_epi32(dot, _mm256_set1_epi32(off));
}

#include "mvq_q4_0_i8_ymm.h"

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_q4_0_avx2_i8 = {
    .family = "matvec_q4_0",
    .name = "avx2_i8",
    .backend = KB_BACKEND_CPU,
    .available = available,
    MVQ_I8_TOL,
    .cpu_run = run,
};
