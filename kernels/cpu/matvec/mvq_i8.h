/* What the int8-activation Q4_0 / Q8_0 kernels share (GGML's trick): x quantized per 32-block to
 * int8 with an f32 scale inside the timed run (act_q8.h), the run around it and the tolerance
 * that quantization needs. */
#ifndef KB_MVQ_I8_H
#define KB_MVQ_I8_H

#include "act_q8.h"
#include "mvq_cpu.h"

/* Defines rows_1, rows_T, task (MVQ_ROWS) and run, the cpu_run of a kernel whose row() reads x
 * quantized with the offset multiplier mult in layout (act_q8.h) from j->aux. */
#define MVQ_I8_KERNEL(TARGET, block, mult, layout)                                                 \
    MVQ_ROWS(TARGET)                                                                               \
    static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)          \
    {                                                                                              \
        const int64_t cols = c->p[MV_COLS], tokens = c->p[MV_TOKENS];                              \
        kb_xq xq;                                                                                  \
        kb_xq_quantize(&xq, kb_scratch(kb_xq_bytes(tokens, cols)), in[MV_X].data, tokens, cols,    \
                       mult, layout);                                                              \
        kb_mvq_run(c, in, out, pool, (int64_t)sizeof(block), &xq, task);                           \
    }

/* The tolerance fields of the kernels' kb_impl. Measured NMSE vs the reference on random inputs
 * (x ~ N(0,1), generate()'s weights), Q4_0 and Q8_0: 2.8e-5 to 3.0e-5 wherever there are
 * hundreds of outputs or more (1024x4096, 4096x14336, 65x4128, 300x256 x 7 tokens; the x
 * quantization step alone predicts ~2.7e-5). Over few outputs NMSE is heavy-tailed (a small
 * reference value divides): with one row about 10% of seeds exceed 1e-3; 8 rows: ~0.2% exceed
 * 3e-4; 16+ rows: none in 1000 seeds. */
#define MVQ_I8_TOL                                                                                 \
    .tol_nmse = 2e-3,                                                                              \
    .tol_cond = 1.5e-2,                                                                            \
    .tol_cond_inputs = {[KB_INPUTS_OUTLIERS] = 0.5},                                               \
    .tol_why = "x quantized to int8 per 32-block: the conditioned error is up to about "          \
               "max|x| / 254 / mean|x| (measured 6e-3 on random inputs over the matvec suite); "   \
               "with an outlier channel 100x larger its block's scale drowns the other 31 "        \
               "values (measured 0.19 with --inputs outliers)"

#endif
