/* matvec_q8_0, AVX-VNNI (VEX vpdpbusd on ymm), int8 activations (GGML's trick): the kernel of
 * mvq_q8_0_i8_ymm.h with one vpdpbusd per block and token as its dot product.
 *
 * vpdpbusd multiplies unsigned bytes with signed bytes, so the weights are biased: w ^ 0x80 =
 * w + 128 (once per weight block for all tokens), and sum (w + 128) x = sum w x + 128 sum x. The
 * accumulator of each block starts from the activations' offset, -16 sum(x_q) in each of the
 * eight lanes (precomputed by the quantizer, mult 16), which cancels the bias exactly. */
#include "mvq_i8.h"

#define MVQ_TARGET KB_TARGET_AVXVNNI
#define MVQ_XQ_MULT 16
#define MVQ_XQ_LAYOUT KB_XQ_NATURAL

typedef __m256i q8_w; /* the block's 32 weights + 128, unsigned */

MVQ_TARGET KB_INLINE q8_w load(const uint8_t *p)
{
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)),
                            _mm256_set1_epi8((char)0x80));
}

MVQ_TARGET KB_INLINE __m256i dot(const q8_w *w, const kb_xq *xq, int64_t i)
{
    return _mm256_dpbusd_avx_epi32(_mm256_set1_epi32(xq->off[i]), *w,
                                   _mm256_loadu_si256((const __m256i *)(xq->q + i * 32)));
}

#include "mvq_q8_0_i8_ymm.h"

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avxvnni();
}

const kb_impl kb_impl_matvec_q8_0_avxvnni = {
    .family = "matvec_q8_0",
    .name = "avxvnni",
    .backend = KB_BACKEND_CPU,
    .available = available,
    MVQ_I8_TOL,
    .cpu_run = run,
};
