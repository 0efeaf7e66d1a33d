/* The MoE definitions the three moe families share (KERNELS.md section 7): top-K routing
 * (moe_route, moe_layer) and the expert FFN with its combine (moe_ffn, moe_layer), in double.
 *
 * Routing of one token, logits l[E] (finite, -inf or NaN; +inf is outside the contract):
 *   mode 0 softmax_topk:    selection score = l; weight key = exp(l - m), m = max l;
 *                           weights = key / sum over all E (renorm = 0) or over the K (renorm 1)
 *   mode 1 sigmoid_grouped: s = sigmoid(l), selection score s' = s + bias; E experts in `groups`
 *                           groups of E/groups; group score = sum of its two best s'; only the
 *                           `topk_group` best groups are eligible; weight key = s;
 *                           weights = key / sum over the K, times MOE_ROUTED_SCALE (2.5)
 *   Top K of the selection score among eligible experts; equal scores go to the lower index
 *   (groups likewise). Output ids and weights ordered by weight, descending, equal weights by
 *   index, ascending.
 *   NaN: a NaN logit has selection score -inf and weight key 0, so it ranks below every other
 *   expert (with the -inf ones, in index order) and is picked only when fewer than K others
 *   are eligible. A row with no finite logit in softmax mode has weights 0 (m = -inf); weights
 *   whose normalizing sum is 0 are 0.
 *
 * Expert FFN (moe_ffn, moe_layer): per token t and slot j < K, expert e = ids[t][j] and weight
 * w[t][j]; slot K (when shared != 0) is the shared expert, stored as expert number E, with
 * weight sigmoid(shared_gate . x[t]) (shared = 1, Qwen) or 1 (shared = 2, DeepSeek):
 *   y[t] = h[t] + sum_j w_j down_e(silu(gate_e x[t]) * up_e x[t]),  silu(a) = a sigmoid(a).
 * Weights of expert e (NE = E + (shared != 0) experts stored), one record per expert:
 *   W      u8 [NE][expert_bytes]: codes of gate [ffn rows x hidden cols], then up (same), then
 *          down [hidden rows x ffn cols]; a row's codes are those of its format (KERNELS.md 1):
 *          affine a4/a8: the row's u32 words as little-endian bytes (cols*b/8 bytes);
 *          q4_0: the row's cols/32 blocks of 18 bytes (f16 d, 16 bytes of nibbles)
 *   scales, biases  bf16 [NE][groups of gate, up, down rows] (affine only): one per `group`
 *          weights of a row, rows in the order of the codes. */
#ifndef KB_MOE_REF_H
#define KB_MOE_REF_H

#include <stddef.h>
#include <stdint.h>

#include "kbench.h"

#define MOE_MAX_E 512
#define MOE_MAX_K 16
#define MOE_MAX_TOKENS 8192
#define MOE_ROUTED_SCALE 2.5 /* DeepSeek-V3 routed_scaling_factor */

enum { MOE_SOFTMAX_TOPK = 0, MOE_SIGMOID_GROUPED = 1 };

typedef struct kb_moe_route {
    int E, K, mode, renorm, groups, topk_group;
} kb_moe_route;

/* Shape checks of a routing (K <= E, groups divide E, ...). 0, or -1 with the reason. */
int kb_moe_route_validate(const kb_moe_route *r, char *err, size_t errlen);

/* Per expert of one token: selection score (sel) and weight key (wk), in double; bias is NULL
 * in softmax mode. */
void kb_moe_route_keys(const kb_moe_route *r, const float *logits, const float *bias, double *sel,
                       double *wk);
/* Group scores (sum of the two best selection scores of each group), sigmoid_grouped only. */
void kb_moe_group_scores(const kb_moe_route *r, const double *sel, double *gs);
/* The definition for one token: ids[K] and weights w[K] in output order. */
void kb_moe_route_token(const kb_moe_route *r, const float *logits, const float *bias,
                        int32_t *ids, double *w);
/* Weights the definition gives a given choice of K ids (in their order): the normalization
 * over the chosen set (or over all E for softmax without renorm). */
void kb_moe_route_weights_for(const kb_moe_route *r, const double *wk, const int32_t *ids,
                              double *w);

/* The comparison of one token's kernel ids with the definition (kbench.h `compare`): returns
 * the largest normalized score gap the kernel's choice implies (0: a valid top K in valid
 * order), or INFINITY with the reason in msg (an id out of range or repeated, a -inf/NaN
 * score picked ahead of a finite one, an exact tie not broken to the lower index). */
double kb_moe_compare_ids(const kb_moe_route *r, const float *logits, const float *bias,
                          const int32_t *ids, char *msg, size_t msglen);

/* ---- expert FFN ------------------------------------------------------------------------ */

enum { MOE_FMT_A4 = 0, MOE_FMT_A8 = 1, MOE_FMT_Q4_0 = 2 };
enum { MOE_SHARED_NONE = 0, MOE_SHARED_GATED = 1, MOE_SHARED_PLAIN = 2 };

typedef struct kb_moe_ffn {
    int64_t tokens, hidden, ffn;
    int E, K, format, shared;
    int group;  /* affine: G; q4_0: 32 (the block) */
    int bits;   /* 4 or 8 (q4_0: 4) */
    int affine; /* a4/a8: separate scales and biases */
    int NE;     /* experts stored: E + (shared != 0) */
    int S;      /* slots per token: K + (shared != 0) */
    int64_t rb_h, rb_f;                    /* code bytes of a row of hidden / of ffn columns */
    int64_t off_gate, off_up, off_down;    /* code byte offsets of the matrices in an expert */
    int64_t expert_bytes;                  /* code bytes of one expert */
    int64_t ng_h, ng_f;                    /* groups per row of hidden / ffn columns (affine) */
    int64_t goff_gate, goff_up, goff_down; /* group offsets of the matrices in an expert */
    int64_t expert_groups;                 /* groups (scales, biases) of one expert */
} kb_moe_ffn;

/* group 0 means the format's own (64 for affine, 32 for q4_0). */
void kb_moe_ffn_set(kb_moe_ffn *f, int64_t tokens, int E, int K, int64_t hidden, int64_t ffn,
                    int format, int group, int shared);
int kb_moe_ffn_validate(const kb_moe_ffn *f, int group_param, char *err, size_t errlen);
/* Bytes of one expert's weights (codes, scales, biases). */
double kb_moe_ffn_expert_bytes(const kb_moe_ffn *f);
/* Experts a call reads: K + shared for one token; for more, the expected number of distinct
 * experts under uniform routing (what generate draws), E (1 - (1 - K/E)^tokens), + shared. */
double kb_moe_ffn_experts_read(const kb_moe_ffn *f);
double kb_moe_ffn_flops(const kb_moe_ffn *f);

/* The FFN's inputs as pointers. */
typedef struct kb_moe_ffn_data {
    const float *x, *h;       /* [tokens][hidden] */
    const uint8_t *W;         /* [NE][expert_bytes] */
    const uint16_t *sc, *bi;  /* [NE][expert_groups] bf16, affine */
    const float *sg;          /* [hidden], shared = 1 */
} kb_moe_ffn_data;

/* Fills the weight tensors (codes random, scales as quantized LLM weights) and sg. */
void kb_moe_ffn_gen_weights(const kb_moe_ffn *f, uint8_t *W, uint16_t *sc, uint16_t *bi,
                            float *sg, kb_rng *rng);
/* x [tokens][hidden] for a distribution (random, outliers, zeros), and h (random). */
void kb_moe_ffn_gen_acts(const kb_moe_ffn *f, float *x, float *h, kb_rng *rng, kb_inputs dist);
/* ids [tokens][K] distinct per token, weights [tokens][K] positive. */
void kb_moe_ffn_gen_routing(const kb_moe_ffn *f, int32_t *ids, float *w, kb_rng *rng);

/* Row r of matrix m (0 gate, 1 up, 2 down) of expert e, dequantized (KERNELS.md 1) in double. */
void kb_moe_ffn_row(const kb_moe_ffn *f, const kb_moe_ffn_data *d, int e, int m, int64_t r,
                    double *w);

/* The definition: y [tokens][hidden] from routing ids [tokens][K] and weights w [tokens][K] (in
 * double: moe_layer passes the routing's own). When scale is not NULL, also the conditioned
 * bound of every y element (kbench.h `condition`): |h| + sum_j |w_j| sum_f |down[.,f]| C_f with
 * C_f = |silu'(g) u| B_g + |silu(g)| B_u + |a| (B_g = sum_c |gate[f,c] x_c|, likewise B_u), the
 * first-order error of a = silu(g) u under errors of g and u of the size of their bounds, plus
 * (shared = 1) sigmoid'(z) sum_c |sg_c x_c| |shared expert's output|. y may be NULL. */
void kb_moe_ffn_eval(const kb_moe_ffn *f, const kb_moe_ffn_data *d, const int32_t *ids,
                     const double *w, float *y, double *scale);

/* The conditioned bound of a case, computed once: repeated calls with the same shape and the
 * same inputs (a hash of their contents) return the cached array (the runner asks for every
 * implementation and thread count). Returns NULL when out of memory. */
typedef struct kb_moe_cond_cache {
    uint64_t key;
    size_t n;
    double *scale;
} kb_moe_cond_cache;
const double *kb_moe_cond_lookup(kb_moe_cond_cache *c, uint64_t key, size_t n, int *hit);
uint64_t kb_moe_hash(uint64_t h, const void *p, size_t bytes);
uint64_t kb_moe_hash_sampled(uint64_t h, const void *p, size_t bytes); /* a word per 4 KiB */

#endif
