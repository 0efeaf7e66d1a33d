/* mma_a4: C[m,n] = sum_k A[m,k] W[n,k], W in a4 (KERNELS.md section 3); the definition is
 * kb_mma_reference (mma_common.c): W dequantized by the format's definition, double sums. */
#include "mma_common.h"

KB_MMA_HOOKS(KB_MMA_A4)

const kb_family kb_family_mma_a4 = {
    .name = "mma_a4",
    .suite = "mma",
    .help = "C = A W^T, W in MLX affine 4-bit (u32-packed codes, bf16 scale + bias per group); A "
            "f32 [M,K]",
    MMA_PARAMS_A4,
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_MMA_INPUTS,
    .reference = reference,
    .bytes = bytes,
    .flops = kb_mma_flops,
    /* the weights, codes, scales and biases: A is the M tokens' activations as they come */
    .rotate_mask = 1u << 0 | 1u << 1 | 1u << 2,
    .condition = condition,
    .tol_cond = KB_MMA_TOL_COND,
    .tol_nmse = 1e-9,
    .test_shape = "M=5 N=33 K=128 group=32",
};
