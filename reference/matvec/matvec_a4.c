/* matvec_a4: y[k][t][r] = sum_c W[m][r,c] * x[t][c], W in MLX affine 4-bit (m = idx[k] with
 * experts, else one matrix); the definition is kb_mva_reference (matvec_affine_common.c). */
#include "matvec_affine_common.h"

KB_MVA_HOOKS(4)

const kb_family kb_family_matvec_a4 = {
    .name = "matvec_a4",
    .suite = "matvec",
    .help = "y = W x, W in MLX affine 4-bit (u32-packed codes, bf16 scale + bias per group); "
            "tokens, MoE experts",
    MVA_AFFINE_PARAMS,
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 1u << AF_W | 1u << AF_S | 1u << AF_B,
    .rotated_read = rotated_read,
    .rotate_mask_for = rotate_mask_for,
    .rotate = rotate,
    .tol_nmse = 1e-9,
    .condition = condition,
    .tol_cond = MVA_TOL_COND,
    .inputs = MVA_INPUTS,
    .test_shape = "rows=33 cols=128 group=32 tokens=2",
    .smallest_shape = "rows=1 cols=32 group=32",
};
