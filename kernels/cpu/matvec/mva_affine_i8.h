/* Int8 activations for the MLX affine kernels (GGML's Q8 activation trick): x is quantized per
 * 32-block to int8, d = max|x| / 127, q = round(x / d) (ties to even), inside the timed run, and
 * laid out to meet 32 code bytes (a "chunk": 32 n codes, n = 8/b codes per byte) with integer
 * dot products: the n codes of a byte are separated by shifts and masks into n vectors of 32 codes
 * each (term m holds codes n i + m, i = 0..31), so term m's activations are
 *   q[m * 32 + i] = xq[c0 + n i + m],
 * and vpmaddubsw (+ vpmaddwd with ones) sums them into eight i32 lanes, lane j holding codes
 * c0 + 4 n j .. c0 + 4 n j + 4 n - 1: a quarter of a 32-block (b = 4) or half of one (b = 2).
 * dl[j] is the activation scale of lane j's block. Codes past the end of the row (a last, partial
 * chunk) meet q = 0, d = 0.
 * The biases meet the group sums of x as quantized, sxq[g] = sum over the group's blocks of
 * d sum(q): sum_j (q_j s + b) x_j is then computed exactly against the quantized x (using the f32
 * sum of x instead leaves b sum(x - x_q) uncancelled: 1.7x to 3.5x the NMSE, see the i8 files).
 * The quantizer is kb_mva_quantize_x (mva_prep_avx2.h). */
#ifndef KB_MVA_AFFINE_I8_H
#define KB_MVA_AFFINE_I8_H

#include "mva_cpu.h"

typedef struct {
    const int8_t *q;  /* [nxvec][nchunks][32 n] */
    const float *dl;  /* [nxvec][nchunks][8] */
    const float *sxq; /* [nxvec][sx_stride] */
    int64_t nchunks, sx_stride;
} mva_xq;

static inline int64_t kb_mva_nchunks(const kb_mva *s) { return (s->row_bytes + 31) / 32; }

static inline size_t kb_mva_xq_bytes(const kb_mva *s)
{
    const int64_t nv = kb_mva_nxvec(s), nch = kb_mva_nchunks(s);
    return (size_t)(nv * nch * 32 * (8 / s->bits)) +
           sizeof(float) * (size_t)(nv * (nch * 8 + kb_mva_sx_stride(s)));
}

#endif
