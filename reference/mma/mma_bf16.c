/* mma_bf16: C[m,n] = sum_k A[m,k] W[n,k], W in bf16 (KERNELS.md section 3); the definition is
 * kb_mma_reference (mma_common.c): W dequantized by the format's definition, double sums. */
#include "mma_common.h"

KB_MMA_HOOKS(KB_MMA_BF16)

const kb_family kb_family_mma_bf16 = {
    .name = "mma_bf16",
    .suite = "mma",
    .help = "C = A W^T, W in bf16; A f32 [M,K]",
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
