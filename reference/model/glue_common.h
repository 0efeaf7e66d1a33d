/* What the model group's glue families share (embedding, RMSNorm, RoPE, SwiGLU, residual add,
 * output gate, f16 cast): tensor descriptors, the f32 floor of the conditioned check, and the
 * RoPE table every backend reads. All activations are f32, [tokens][n] row-major. */
#ifndef KB_GLUE_COMMON_H
#define KB_GLUE_COMMON_H

#include <float.h>
#include <math.h>

#include "kbench.h"

/* Table formats of the embedding families (and of the model's weights). */
typedef enum { KB_WF_F32, KB_WF_F16, KB_WF_BF16, KB_WF_Q8_0, KB_WF_Q4_0, KB_WF_COUNT } kb_wfmt;
const char *kb_wf_name(kb_wfmt f);                  /* "f32", ..., "q4_0" */
int64_t kb_wf_row_bytes(kb_wfmt f, int64_t cols);   /* cols % 32 == 0 for the block formats */
int kb_wf_block(kb_wfmt f);                         /* 32 for the block formats, else 1 */
/* Row `row` of a table, dequantized exactly (every value is an f32) into out[cols]. */
void kb_wf_dequant_row(kb_wfmt f, const void *table, int64_t row, int64_t cols, float *out);

/* A 1-, 2- or 3-d descriptor (no data). */
void kb_glue_desc(kb_tensor *t, const char *name, kb_dtype dt, int ndim, int64_t d0, int64_t d1,
                  int64_t d2);

/* Activation-like values for generate: N(0, sigma) f32; with OUTLIERS, a few channels (the same
 * in every row) 100x larger, as LLM activations have. */
void kb_glue_fill(float *x, int64_t rows, int64_t cols, float sigma, kb_rng *rng, kb_inputs dist);

/* The conditioned check of elementwise outputs: scale = the magnitude of the value in double,
 * plus FLT_MIN, below which an f32 result has no relative precision left (a subnormal). */
#define KB_GLUE_FLOOR ((double)FLT_MIN)
/* A gate's sigmoid below FLT_MIN may be flushed to zero (Vulkan leaves denormal flushing to the
 * device; lavapipe flushes): the product then loses up to |x| FLT_MIN, which must stay within
 * the families' 4e-6 tolerance, hence the factor 2^20 on that term. */
#define KB_GLUE_FLUSH ((double)FLT_MIN * 1048576.0)

/* sigmoid in double, accurate for every argument (no overflow of exp). */
static inline double kb_glue_sigmoid(double g)
{
    double t = exp(-fabs(g));
    return g >= 0 ? 1.0 / (1.0 + t) : t / (1.0 + t);
}

/* The RoPE table (KERNELS.md 8, half-split pairs i <-> i + rot/2): for positions 0..npos-1 and
 * pair i < rot/2, cos[p][i] = cos(p * theta^(-2i/rot)) and sin likewise, computed in double and
 * rounded to f32 once. Kernels read it instead of computing angles in f32 (whose error grows
 * with the position: 6e-3 rad at p = 1e5). YaRN (MLA issue) is another table for the same
 * kernels. */
void kb_rope_table(double theta, int64_t rot, int64_t npos, float *cos_t, float *sin_t);

/* The elementwise families (swiglu, residual, outgate, cvt_f16): parameters cols and tokens,
 * inputs a and b (or a alone) [tokens][cols] f32, one output [tokens][cols]. */
enum { EW_COLS, EW_TOKENS };
#define KB_EW_PARAMS                                                                  \
    .nparams = 2,                                                                     \
    .params = {{"cols", 4096, 1, 1 << 24, "elements per token (hidden or FFN size)"}, \
               {"tokens", 1, 1, 4096, "tokens"}}
/* names: n_in input names then the output's; out_dt the output's dtype. */
void kb_ew_describe(const int64_t *p, int n_in, const char *const *names, kb_dtype out_dt,
                    kb_tensor *in, int *ni, kb_tensor *out, int *no);
double kb_ew_bytes(const int64_t *p, int n_in, int out_bytes);
#endif
