/* moe_ffn's parameters and tensors, shared with its kernels. Inputs, in this order:
 *   x [tokens, hidden] f32, h [tokens, hidden] f32 (residual), ids [tokens, K] i32,
 *   weights [tokens, K] f32, W [NE, expert_bytes] u8, then for a4/a8 scales and biases
 *   [NE, expert_groups] bf16, then for shared = 1 the shared-expert gate sg [hidden] f32.
 * Output: y [tokens, hidden] f32. Layout of the weights: moe_ref.h. */
#ifndef KB_MOE_FFN_H
#define KB_MOE_FFN_H

#include "moe_ref.h"

enum { MF_TOKENS, MF_E, MF_K, MF_HIDDEN, MF_FFN, MF_FORMAT, MF_GROUP, MF_SHARED }; /* params */
enum { MF_X, MF_H, MF_IDS, MF_WEIGHTS, MF_W }; /* the first inputs; the rest: kb_moe_ffn_inputs */
enum { MF_Y };

/* Where the variable inputs are: scales, biases (-1 for q4_0), sg (-1 without shared = 1). */
typedef struct kb_moe_ffn_in {
    int sc, bi, sg, n;
} kb_moe_ffn_in;
kb_moe_ffn_in kb_moe_ffn_inputs(const kb_moe_ffn *f, int first_after_w);

/* The shape of a moe_ffn parameter vector. */
void kb_moe_ffn_from_params(const int64_t *p, kb_moe_ffn *f);

#endif
