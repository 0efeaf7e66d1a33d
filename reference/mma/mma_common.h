/* What the mma families share (KERNELS.md section 3): the prefill GEMM C[M,N] = A[M,K] W[N,K]^T,
 * A f32 activations (M tokens), W a weight matrix in one of five formats, C f32.
 *
 * Parameters: M (tokens, 1..8192), N (weight rows = outputs per token), K (the reduction; a
 * multiple of 32 for every format, of the group for a4), group (a4 only: 32, 64, 128).
 *
 * Inputs, in this order (A is always the last one):
 *   q8_0, q4_0  W KB_U8 [N, K/32 * 34 or 18]   GGML blocks back to back
 *   a4          W KB_I32 [N, K/8]              u32 words of 8 LSB-first 4-bit codes
 *               scales, biases KB_BF16 [N, K/group]
 *   f16, bf16   W KB_F16 / KB_BF16 [N, K]
 *   all         A KB_F32 [M, K]
 * Output: C KB_F32 [M, N], row-major (token m's outputs are C[m, 0..N)).
 *
 * Cost model: flops = 2 M N K; bytes = W (codes, scales, biases) + A + C, each once. */
#ifndef KB_MMA_COMMON_H
#define KB_MMA_COMMON_H

#include "kbench.h"

typedef enum { KB_MMA_Q8_0, KB_MMA_Q4_0, KB_MMA_A4, KB_MMA_F16, KB_MMA_BF16 } kb_mma_fmt;

enum { MMA_M, MMA_N, MMA_K, MMA_GROUP }; /* parameter order; group only for a4 */
enum { MMA_C };                          /* the output */

#define MMA_MAX_M 8192

#define MMA_PARAMS_MNK                                                                            \
    {"M", 512, 1, MMA_MAX_M, "tokens (rows of A and C)"},                                          \
        {"N", 4096, 1, 1 << 20, "weight rows (columns of C)"},                                     \
    {                                                                                              \
        "K", 4096, 32, 1 << 20, "reduction length: a multiple of 32 (of group for a4)"             \
    }
#define MMA_PARAMS .nparams = 3, .params = {MMA_PARAMS_MNK}
#define MMA_PARAMS_A4                                                                              \
    .nparams = 4, .params = {MMA_PARAMS_MNK,                                                       \
                             {"group", 64, 32, 128, "a4: weights per bf16 scale and bias (32, "   \
                                                    "64 or 128)"}}

/* A case's shape and tensors, decoded once (the reference and every kernel use this view). */
typedef struct kb_mma {
    kb_mma_fmt fmt;
    int64_t M, N, K;
    int64_t group;     /* a4: G; others 32 (the block) */
    int64_t row_bytes; /* bytes of one row of W (codes only for a4) */
    int n_in;          /* 2, or 4 for a4 */
    const void *w;     /* W as stored */
    const uint16_t *scales, *biases; /* a4: [N][K/G] bf16; else NULL */
    const float *a;    /* [M][K] */
    float *c;          /* [M][N] (NULL when only inputs were given) */
} kb_mma;

/* Decodes p (a family of format fmt) and, when given, the tensors. */
void kb_mma_get(const int64_t *p, kb_mma_fmt fmt, const kb_tensor *in, kb_tensor *out,
                kb_mma *s);
/* The family of case c, decoded: format from the family name. Returns -1 for a non-mma family. */
int kb_mma_from_case(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_mma *s);

/* Row n of W, dequantized by the definition (KERNELS.md section 1), into w[0..K) in double. */
void kb_mma_dequant_row(const kb_mma *s, int64_t n, double *w);

/* Family plumbing, one function per kb_family hook; fmt picks the format. */
int kb_mma_validate(const int64_t *p, kb_mma_fmt fmt, char *err, size_t errlen);
int kb_mma_describe(const int64_t *p, kb_mma_fmt fmt, kb_tensor *in, int *n_in, kb_tensor *out,
                    int *n_out);
void kb_mma_generate(const int64_t *p, kb_mma_fmt fmt, kb_tensor *in, kb_rng *rng,
                     kb_inputs dist);
void kb_mma_reference(const int64_t *p, kb_mma_fmt fmt, const kb_tensor *in, kb_tensor *out);
void kb_mma_condition(const int64_t *p, kb_mma_fmt fmt, const kb_tensor *in, int o,
                      double *scale);
double kb_mma_bytes(const int64_t *p, kb_mma_fmt fmt);
double kb_mma_flops(const int64_t *p);

/* The distributions generate() knows beyond random. */
#define KB_MMA_INPUTS                                                                              \
    (KB_INPUTS_BIT(KB_INPUTS_OUTLIERS) | KB_INPUTS_BIT(KB_INPUTS_EXTREME) |                        \
     KB_INPUTS_BIT(KB_INPUTS_ZEROS))

/* Conditioned tolerance of implementations with f32 products and f32 accumulation. A K-long f32
 * sum errs by about sqrt(K) 2^-24 of its partial sums, which reach the scale sum_k |A W| when
 * a few large terms dominate: measured up to 1e-5 at K = 14336 with --inputs outliers (3e-7 with
 * random inputs). Far below what a wrong element gives (~1/sqrt(K) of the scale: 1e-2 at
 * K = 4096) or the planted 1%-of-RMS error (2e-3 at K = 64). */
#define KB_MMA_TOL_COND 3e-5

/* Defines the static hooks of one family of format fmt (used by the five family files). */
#define KB_MMA_HOOKS(fmt)                                                                          \
    static int validate(const int64_t *p, char *e, size_t n) { return kb_mma_validate(p, fmt, e, n); } \
    static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)         \
    {                                                                                              \
        return kb_mma_describe(p, fmt, in, ni, out, no);                                           \
    }                                                                                              \
    static void generate(const int64_t *p, kb_tensor *in, kb_rng *r, kb_inputs dist)               \
    {                                                                                              \
        kb_mma_generate(p, fmt, in, r, dist);                                                      \
    }                                                                                              \
    static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)                   \
    {                                                                                              \
        kb_mma_reference(p, fmt, in, out);                                                         \
    }                                                                                              \
    static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)             \
    {                                                                                              \
        kb_mma_condition(p, fmt, in, o, scale);                                                    \
    }                                                                                              \
    static double bytes(const int64_t *p) { return kb_mma_bytes(p, fmt); }

#endif
