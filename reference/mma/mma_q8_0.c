/* mma_q8_0: C[m,n] = sum_k A[m,k] W[n,k], W in q8_0 (KERNELS.md section 3); the definition is
 * kb_mma_reference (mma_common.c): W dequantized by the format's definition, double sums. */
#include "mma_common.h"

KB_MMA_HOOKS(KB_MMA_Q8_0)

const kb_family kb_family_mma_q8_0 = {
    .name = "mma_q8_0",
    .suite = "mma",
    .help = "C = A W^T, W in GGML Q8_0 (f16 scale + 32 int8 per block); A f32 [M,K]",
    MMA_PARAMS,
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_MMA_INPUTS,
    .reference = reference,
    .bytes = bytes,
    .flops = kb_mma_flops,
    .rotate_mask = 1u << 0, /* the weights: A is the M tokens' activations as they come */
    .condition = condition,
    .tol_cond = KB_MMA_TOL_COND,
    .tol_nmse = 1e-9,
    .test_shape = "M=5 N=33 K=64",
};
