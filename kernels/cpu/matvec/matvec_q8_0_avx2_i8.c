/* matvec_q8_0, AVX2, int8 activations (GGML's trick): the kernel of mvq_q8_0_i8_ymm.h with
 * vpmaddwd as its dot product. The weights are sign-extended to i16 (vpmovsxbw from memory), the
 * activations are stored as i16 by the quantizer (KB_XQ_I16), and two vpmaddwd give eight i32
 * lanes. (GGML's vpabsb/vpsignb/vpmaddubsw route measured ~1.6x slower on Zen 3.) */
#include "mvq_i8.h"

#define MVQ_TARGET KB_TARGET_AVX2
#define MVQ_XQ_MULT 0 /* no bias to cancel */
#define MVQ_XQ_LAYOUT KB_XQ_I16

typedef struct {
    __m256i a, b; /* weights 0..15, 16..31 as i16 */
} q8_w;

MVQ_TARGET KB_INLINE q8_w load(const uint8_t *p)
{
    q8_w w;
    w.a = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 2)));
    w.b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 18)));
    return w;
}

MVQ_TARGET KB_INLINE __m256i dot(const q8_w *w, const kb_xq *xq, int64_t i)
{
    const int16_t *xb = xq->q16 + i * 32;
    return _mm256_add_epi32(_mm256_madd_epi16(w->a, _mm256_loadu_si256((const __m256i *)xb)),
                            _mm256_madd_epi16(w->b, _mm256_loadu_si256((const __m256i *)(xb + 16))));
}

#include "mvq_q8_0_i8_ymm.h"

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_q8_0_avx2_i8 = {
    .family = "matvec_q8_0",
    .name = "avx2_i8",
    .backend = KB_BACKEND_CPU,
    .available = available,
    MVQ_I8_TOL,
    .cpu_run = run,
};
