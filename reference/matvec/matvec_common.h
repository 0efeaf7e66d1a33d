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
void kb_mv_generate_x(const int64_t *p, kb_tensor *x, kb_rng *rng);
double kb_mv_bytes(const int64_t *p, int64_t row_bytes);
double kb_mv_flops(const int64_t *p);

#endif
