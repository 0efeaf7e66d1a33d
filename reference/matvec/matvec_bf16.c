/* matvec_bf16: y[k][t][r] = sum_c W[m][r,c] * x[t][c], W bf16 (m = idx[k] with experts, else one
 * matrix): routers (DeepSeek-V3, Qwen3.5 shared-expert gate); the definition is kb_mva_reference
 * (matvec_affine_common.c). */
#include "matvec_affine_common.h"

KB_MVA_HOOKS(MVA_BF16_BITS)

const kb_family kb_family_matvec_bf16 = {
    .name = "matvec_bf16",
    .suite = "matvec",
    .help = "y = W x, W bf16; tokens, MoE experts",
    MVA_BF16_PARAMS,
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 1u << BF_W,
    .rotated_read = rotated_read,
    .rotate_mask_for = rotate_mask_for,
    .rotate = rotate,
    .tol_nmse = 1e-9,
    .condition = condition,
    .tol_cond = MVA_TOL_COND,
    .inputs = MVA_INPUTS,
    .test_shape = "rows=33 cols=64 tokens=2",
    .smallest_shape = "rows=1 cols=32",
};
