/* What the attention families share (KERNELS.md section 4). Decode is prefill with one query at
 * position T-1, so both families map their parameters onto one shape and share the tensors,
 * inputs, reference and cost model:
 *   Q [n_q][heads][D] f32, K and V [T][kv_heads][D] (f16 or f32), O [n_q][heads][D] f32;
 *   query i sits at position p0 + i and attends to positions 0..p0+i (causal), T = p0 + n_q;
 *   scores scaled by 1/sqrt(D); q head h reads kv head h / (heads / kv_heads). */
#ifndef KB_ATTN_COMMON_H
#define KB_ATTN_COMMON_H

#include "kbench.h"

enum { AT_Q, AT_K, AT_V }; /* inputs */
enum { AT_O };             /* outputs */

/* Parameters both families start with, in this order (AT_COMMON_PARAMS below). */
enum { AT_HEADS, AT_KV_HEADS, AT_HEAD_DIM };

#define AT_MAX_HEADS 256

/* ... as initializers of kb_family.params. */
#define AT_COMMON_PARAMS                                                       \
    {"heads", 32, 1, AT_MAX_HEADS, "query heads"},                            \
    {"kv_heads", 8, 1, AT_MAX_HEADS, "key/value heads; divides heads (GQA)"}, \
    {"head_dim", 128, 64, 256, "head size D: 64, 128 or 256"}

typedef struct kb_attn_shape {
    int64_t heads, kv_heads, D;
    int64_t n_q, p0, T; /* T = p0 + n_q: cached positions, the queries' own included */
    int kv_f16;         /* 1: K/V cache in f16, 0: f32 */
} kb_attn_shape;

/* The shape of a case of each family (parameters in that family's order). */
void kb_attn_decode_shape(const int64_t *p, kb_attn_shape *s);
void kb_attn_prefill_shape(const int64_t *p, kb_attn_shape *s);

int kb_attn_validate(const kb_attn_shape *s, char *err, size_t errlen);
int kb_attn_describe(const kb_attn_shape *s, kb_tensor *in, int *n_in, kb_tensor *out,
                     int *n_out);
void kb_attn_generate(const kb_attn_shape *s, kb_tensor *in, kb_rng *rng, kb_inputs dist);
void kb_attn_condition(const kb_attn_shape *s, const kb_tensor *in, double *scale);
#define AT_INPUTS                                                                         \
    (KB_INPUTS_BIT(KB_INPUTS_OUTLIERS) | KB_INPUTS_BIT(KB_INPUTS_PEAKY) |                 \
     KB_INPUTS_BIT(KB_INPUTS_EXTREME) | KB_INPUTS_BIT(KB_INPUTS_ZEROS))
/* Conditioned tolerance of f32-arithmetic implementations (kb_attn_condition). */
#define AT_TOL_COND 2e-5
void kb_attn_reference(const kb_attn_shape *s, const kb_tensor *in, kb_tensor *out);
double kb_attn_bytes(const kb_attn_shape *s);
double kb_attn_flops(const kb_attn_shape *s);

#define AT_ROTATE ((1u << AT_K) | (1u << AT_V)) /* the cache is what a call streams */

/* Tolerance of implementations with f32 arithmetic (the cache is an input: f16 values convert
 * to f32 exactly). Their error is f32 rounding in dot products of length D, 2^x and sums over
 * T positions: measured NMSE ~5e-12 at T = 8192 and ~1e-11 at T = 32768 (D = 128 and 256).
 * 1e-8 leaves three orders of magnitude for other summation orders (GPU reductions) and still
 * fails a kernel that loses one position (NMSE ~1e-4 at T = 1024, test_attention_cpu). Kernels that
 * round Q, P or the accumulators to f16 state their own. */
#define AT_TOL_NMSE 1e-8

#endif
