/* moe_route's parameters, tensors and the helpers moe_layer and the kernels share with it. */
#ifndef KB_MOE_ROUTE_H
#define KB_MOE_ROUTE_H

#include "moe_ref.h"

enum { MR_TOKENS, MR_E, MR_K, MR_MODE, MR_RENORM, MR_GROUPS, MR_TOPK_GROUP }; /* parameters */
enum { MR_LOGITS, MR_BIAS };   /* inputs (bias in mode 1 only) */
enum { MR_IDS, MR_WEIGHTS };   /* outputs */

int kb_moe_route_validate_params(const int64_t *p, char *err, size_t n);
/* Logits [T][E] (and the bias [E] when not NULL) for a distribution: random N(0, 2^2); peaky;
 * extreme (exact ties, all equal, -inf, NaN, no finite logit, f32 exp underflow; by token);
 * zeros (all 0, bias 0). */
void kb_moe_route_gen_logits(const kb_moe_route *r, int64_t T, float *logits, float *bias,
                             kb_rng *rng, kb_inputs dist);
/* One token's weights w[K] against those the definition gives the ids (relative error, floored
 * at 1e-6 of the largest); INFINITY with the reason for an id out of range or a weight where
 * the definition has 0. */
double kb_moe_route_compare_weights(const kb_moe_route *r, const float *logits, const float *bias,
                                    const int32_t *ids, const float *w, char *msg, size_t n);

#endif
