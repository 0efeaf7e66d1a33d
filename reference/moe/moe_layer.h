/* moe_layer's parameters and tensors, shared with its kernels. Inputs, in this order:
 *   logits [tokens, E] f32, then for route = 2 the bias [E] f32, x [tokens, hidden] f32,
 *   h [tokens, hidden] f32, W [NE, expert_bytes] u8, for a4/a8 scales and biases
 *   [NE, expert_groups] bf16, for shared = 1 sg [hidden] f32.
 * Output: y [tokens, hidden] f32. */
#ifndef KB_MOE_LAYER_H
#define KB_MOE_LAYER_H

#include "moe_ffn.h"

enum { ML_TOKENS, ML_E, ML_K, ML_HIDDEN, ML_FFN, ML_FORMAT, ML_SHARED, ML_ROUTE }; /* params */
enum { ML_ROUTE_SOFTMAX = 0, ML_ROUTE_SOFTMAX_RENORM = 1, ML_ROUTE_GROUPED = 2 };
#define ML_GROUPS 8     /* route 2: DeepSeek-V3's n_group */
#define ML_TOPK_GROUP 4 /* and topk_group */

typedef struct kb_moe_layer_in {
    int logits, bias, x, h, W, sc, bi, sg, n; /* -1: absent */
} kb_moe_layer_in;

void kb_moe_layer_from_params(const int64_t *p, kb_moe_ffn *f, kb_moe_route *r);
kb_moe_layer_in kb_moe_layer_inputs(const kb_moe_ffn *f, const kb_moe_route *r);

#endif
