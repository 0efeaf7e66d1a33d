/* What the MLX-style matvec families share: matvec_a8, matvec_a4, matvec_a2 (affine codes with a
 * bf16 scale and bias per group, affine_formats.h) and matvec_bf16 (KERNELS.md sections 1, 2, 7).
 *
 * Parameters (affine; bf16 has no `group`):
 *   rows, cols, tokens (1..16 inputs sharing one weight read), group (G: 32, 64, 128),
 *   experts (K): 0 = one matrix, y = W x; 1..16 = the MoE expert matvec: E matrices are stored,
 *     idx[K] (distinct, 0..E-1) picks K of them, y[k] = W[idx[k]] x[k];
 *   n_experts (E): matrices stored, 1..512; 0 means E = K (every stored matrix is used);
 *     only with experts >= 1;
 *   shared_x: with experts, 1 = every expert reads the same x[tokens][cols] (gate/up
 *     projections), 0 = expert k reads x[k][tokens][cols] (down projections).
 *
 * Inputs, affine: W    KB_U32  [E,] rows, cols*b/32   u32 words, LSB-first codes
 *                 scales, biases KB_BF16 [E,] rows, cols/G
 *                 x    KB_F32  [K,] tokens, cols      (the K axis only when shared_x = 0)
 *                 idx  KB_I32  [K]                    (only when experts >= 1)
 *         bf16:   W KB_BF16 [E,] rows, cols; x; idx   (same as above)
 * Output: y KB_F32 [K,] tokens, rows (the K axis only when experts >= 1).
 * ([E,] is present only when experts >= 1.)
 *
 * Cost model: bytes = the K selected matrices' weights, scales and biases + x + y + idx;
 * flops = 2 * K * rows * cols * tokens (K = 1 for a plain matvec). */
#ifndef KB_MATVEC_AFFINE_COMMON_H
#define KB_MATVEC_AFFINE_COMMON_H

#include "kbench.h"

enum { AF_ROWS, AF_COLS, AF_TOKENS, AF_GROUP, AF_EXPERTS, AF_NEXPERTS, AF_SHARED_X };
enum { BF_ROWS, BF_COLS, BF_TOKENS, BF_EXPERTS, BF_NEXPERTS, BF_SHARED_X };
enum { AF_W, AF_S, AF_B, AF_X, AF_IDX }; /* affine inputs */
enum { BF_W, BF_X, BF_IDX };             /* bf16 inputs */
enum { MVA_Y };                          /* output */

#define MVA_MAX_TOKENS 16
#define MVA_MAX_K 16
#define MVA_MAX_E 512
#define MVA_BF16_BITS 16 /* `bits` of matvec_bf16 in kb_mva */

#define MVA_PARAM_ROWS                                                                             \
    {                                                                                              \
        "rows", 4096, 1, 1 << 24, "output rows of each matrix"                                     \
    }
#define MVA_PARAM_TOKENS                                                                           \
    {                                                                                              \
        "tokens", 1, 1, MVA_MAX_TOKENS, "input vectors sharing one weight read"                    \
    }
#define MVA_PARAM_MOE                                                                              \
    {"experts", 0, 0, MVA_MAX_K, "K: 0 = one matrix; 1..16 = K matrices picked by idx (MoE)"},     \
        {"n_experts", 0, 0, MVA_MAX_E, "E: matrices stored (idx picks from them); 0 = K"},         \
    {                                                                                              \
        "shared_x", 1, 0, 1, "with experts: 1 = all read x[tokens][cols], 0 = x[K][tokens][cols]"  \
    }

#define MVA_AFFINE_PARAMS                                                                          \
    .nparams = 7,                                                                                  \
    .params = {MVA_PARAM_ROWS,                                                                     \
               {"cols", 4096, 32, 1 << 20, "input length; a multiple of group"},                   \
               MVA_PARAM_TOKENS,                                                                   \
               {"group", 64, 32, 128, "G: weights per bf16 scale and bias (32, 64 or 128)"},       \
               MVA_PARAM_MOE}

#define MVA_BF16_PARAMS                                                                            \
    .nparams = 6, .params = {MVA_PARAM_ROWS,                                                       \
                             {"cols", 4096, 32, 1 << 20, "input length; a multiple of 32"},        \
                             MVA_PARAM_TOKENS,                                                     \
                             MVA_PARAM_MOE}

/* A case's shape, decoded once (families and kernels use the same view). */
typedef struct kb_mva {
    int bits;     /* 2, 4, 8; MVA_BF16_BITS for bf16 */
    int experts;  /* 0: one matrix, no idx */
    int shared_x; /* 1: one x for all matrices (always 1 without experts) */
    int64_t rows, cols, tokens;
    int64_t group, ngroups; /* affine; 0 for bf16 */
    int64_t k;              /* matrices computed: experts, 1 without */
    int64_t e;              /* matrices stored: n_experts, or k when that is 0 */
    int64_t row_bytes;      /* code (or bf16) bytes per row */
    int64_t mat_bytes;      /* one matrix: codes + scales + biases */
} kb_mva;

/* p is the parameter vector of an affine family (bits 2, 4, 8) or of matvec_bf16. */
void kb_mva_get(const int64_t *p, int bits, kb_mva *s);

/* Family plumbing, one function per kb_family hook; `bits` picks the format. */
int kb_mva_validate(const int64_t *p, int bits, char *err, size_t errlen);
int kb_mva_describe(const int64_t *p, int bits, kb_tensor *in, int *n_in, kb_tensor *out,
                    int *n_out);
void kb_mva_generate(const int64_t *p, int bits, kb_tensor *in, kb_rng *rng, kb_inputs dist);
/* sum over c of (|q s| + |b|) |x| per output (bf16: |w x|): kbench.h condition. */
void kb_mva_condition(const int64_t *p, int bits, const kb_tensor *in, double *scale);
#define MVA_INPUTS                                                                         \
    (KB_INPUTS_BIT(KB_INPUTS_OUTLIERS) | KB_INPUTS_BIT(KB_INPUTS_EXTREME) |                \
     KB_INPUTS_BIT(KB_INPUTS_ZEROS))
#define MVA_TOL_COND 2e-5 /* f32 products and sums */
void kb_mva_reference(const int64_t *p, int bits, const kb_tensor *in, kb_tensor *out);
double kb_mva_bytes(const int64_t *p, int bits);
double kb_mva_rotated_read(const int64_t *p, int bits);
/* Cold timing of the expert matvec: with E > K only idx is copied, each copy naming other
 * experts (kbench.h rotate_mask_for, rotate). */
unsigned kb_mva_rotate_mask(const int64_t *p, int bits);
void kb_mva_rotate(const int64_t *p, int bits, kb_tensor *in, int k);
double kb_mva_flops(const int64_t *p, int bits);

/* Defines the static hooks of one family of `bits` (used by the four family files). */
#define KB_MVA_HOOKS(bits)                                                                         \
    static int validate(const int64_t *p, char *e, size_t n)                                       \
    {                                                                                              \
        return kb_mva_validate(p, bits, e, n);                                                     \
    }                                                                                              \
    static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)         \
    {                                                                                              \
        return kb_mva_describe(p, bits, in, ni, out, no);                                          \
    }                                                                                              \
    static void generate(const int64_t *p, kb_tensor *in, kb_rng *r, kb_inputs dist)               \
    {                                                                                              \
        kb_mva_generate(p, bits, in, r, dist);                                                     \
    }                                                                                              \
    static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)                   \
    {                                                                                              \
        kb_mva_reference(p, bits, in, out);                                                        \
    }                                                                                              \
    static double bytes(const int64_t *p) { return kb_mva_bytes(p, bits); }                        \
    static double rotated_read(const int64_t *p) { return kb_mva_rotated_read(p, bits); }          \
    static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)             \
    {                                                                                              \
        kb_mva_condition(p, bits, in, scale);                                                      \
    }                                                                                              \
    static unsigned rotate_mask_for(const int64_t *p) { return kb_mva_rotate_mask(p, bits); }      \
    static void rotate(const int64_t *p, kb_tensor *in, int k) { kb_mva_rotate(p, bits, in, k); }  \
    static double flops(const int64_t *p) { return kb_mva_flops(p, bits); }

#endif
