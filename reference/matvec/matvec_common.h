/* What the matvec families share: parameters rows, cols, tokens; W [rows, row_bytes] packed,
 * X [tokens, cols] f32, Y [tokens, rows] f32. */
#ifndef KB_MATVEC_COMMON_H
#define KB_MATVEC_COMMON_H

#include "kbench.h"

enum { MV_ROWS, MV_COLS, MV_TOKENS };
enum { MV_W, MV_X };  /* inputs */
enum { MV_Y };        /* outputs */
#define MV_MAX_TOKENS 16

#define MV_PARAMS                                                                         \
    .nparams = 3,                                                                         \
    .params = {{"rows", 4096, 1, 1 << 24, "output rows (weight matrix rows)"},            \
               {"cols", 4096, 32, 1 << 20, "input length; a multiple of the block size"}, \
               {"tokens", 1, 1, MV_MAX_TOKENS, "input vectors sharing one weight read"}}

/* Shape checks and descriptors for a block format of `block` weights in `block_bytes`. */
int kb_mv_validate(const int64_t *p, int block, char *err, size_t errlen);
int kb_mv_describe(const int64_t *p, int64_t row_bytes, kb_tensor *in, int *n_in, kb_tensor *out,
                   int *n_out);
/* x for a distribution: RANDOM N(0,1); OUTLIERS the same with about one channel in 128 (at
 * least one) 100x larger, the same channels in every token, as LLM activations have; ZEROS all
 * zero; others as RANDOM. */
void kb_mv_generate_x(const int64_t *p, kb_tensor *x, kb_rng *rng, kb_inputs dist);
/* The distributions the q8_0/q4_0 matvecs know beyond random. */
#define KB_MV_INPUTS                                                                        \
    (KB_INPUTS_BIT(KB_INPUTS_OUTLIERS) | KB_INPUTS_BIT(KB_INPUTS_EXTREME) |                 \
     KB_INPUTS_BIT(KB_INPUTS_ZEROS))
/* The conditioning of y[t][r] (kbench.h condition): sum_c |W[r,c] x[t][c]|, W from
 * dequant_row (row r into double w[cols], the format's definition). */
void kb_mv_condition(const int64_t *p, const kb_tensor *in, double *scale,
                     void (*dequant_row)(const kb_tensor *w, int64_t r, int64_t cols, double *out));
#define KB_MV_TOL_COND 2e-5 /* f32 products and sums: measured <= ~1e-6 on model shapes */
double kb_mv_bytes(const int64_t *p, int64_t row_bytes);
double kb_mv_flops(const int64_t *p);

#endif
