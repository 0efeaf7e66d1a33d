/* What the GatedDeltaNet families share (KERNELS.md section 5).
 *
 * gdn_decode and gdn_prefill are one computation: `nseq` sequences of `ntok` tokens each, every
 * sequence from its own state. Decode is nseq = batch, ntok = 1; prefill is nseq = 1, ntok = n.
 * Per sequence and value head h (key head kh = h / (hv / hk)), the state S is dv x dk f32, row r
 * = value index r. Per token t:
 *     S <- g_t S;   u = S k_t;   delta = beta_t (v_t - u);   S <- S + delta k_t^T;   o_t = S q_t
 * (the output reads the updated state). Tensors, all f32, row-major:
 *     q, k   [nseq][ntok][hk][dk]     (already normalized: gdn_qknorm's outputs)
 *     v      [nseq][ntok][hv][dv]
 *     g, beta[nseq][ntok][hv]         (gdn_gates' outputs: g in [0, 1], beta in (0, 1))
 *     S0     [nseq][hv][dv][dk]       the state before the tokens (an input, never written)
 *   outputs
 *     o      [nseq][ntok][hv][dv]
 *     S1     [nseq][hv][dv][dk]       the state after the last token
 * Decode drops the ntok dimension and prefill the nseq dimension in the descriptors (3-d q). */
#ifndef KB_GDN_COMMON_H
#define KB_GDN_COMMON_H

#include <math.h>

#include "kbench.h"

enum { GD_Q, GD_K, GD_V, GD_G, GD_BETA, GD_S0 }; /* inputs */
enum { GD_O, GD_S1 };                             /* outputs */

/* Parameters of both families, in this order; the first is batch (decode) or n (prefill). */
enum { GD_P0, GD_HK, GD_HV, GD_DK, GD_DV };

#define GD_MAX_HEADS 256

#define GD_HEAD_PARAMS                                                              \
    {"hk", 16, 1, GD_MAX_HEADS, "key heads (q and k)"},                             \
    {"hv", 64, 1, GD_MAX_HEADS, "value heads (v, o, states); a multiple of hk"},    \
    {"dk", 128, 64, 128, "key head size: 64 or 128"},                               \
    {"dv", 128, 64, 128, "value head size: 64 or 128"}

typedef struct gdn_shape {
    int64_t nseq, ntok, hk, hv, dk, dv;
} gdn_shape;

void gdn_decode_shape(const int64_t *p, gdn_shape *s);
void gdn_prefill_shape(const int64_t *p, gdn_shape *s);

int gdn_validate(const gdn_shape *s, char *err, size_t errlen);
int gdn_describe(const gdn_shape *s, int decode, kb_tensor *in, int *n_in, kb_tensor *out,
                 int *n_out);
void gdn_generate(const gdn_shape *s, kb_tensor *in, kb_rng *rng, kb_inputs dist);
void gdn_reference(const gdn_shape *s, const kb_tensor *in, kb_tensor *out);
void gdn_condition(const gdn_shape *s, const kb_tensor *in, int o, double *scale);
double gdn_bytes(const gdn_shape *s);
double gdn_flops(const gdn_shape *s);

/* Every input is re-read by each call (the state dominates a decode). */
#define GD_ROTATE 0x3Fu
#define GD_INPUTS (KB_INPUTS_BIT(KB_INPUTS_OUTLIERS) | KB_INPUTS_BIT(KB_INPUTS_EXTREME))

/* Conditioned tolerance of f32 implementations (any summation order, sequential or chunkwise).
 * gdn_condition bounds an element's error by ~eps x its scale; measured with a sequential and a
 * chunkwise (C = 16, 64) f32 kernel, n up to 16384, random/outliers/extreme inputs: largest
 * conditioned error 1.0e-7 (outputs) and 6e-8 (state). A 1%-of-RMS error in one element of
 * the final state or of the last output measured 1e-4 .. 4e-3. 1e-6 sits an order of
 * magnitude above the first and two below the second. */
#define GD_TOL_COND 1e-6

/* ---- scalar helpers the references and generators share (double) ------------------------ */

static inline double gdn_softplus(double x) { return x > 30.0 ? x : log1p(exp(x)); }
static inline double gdn_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double gdn_silu(double x) { return x * gdn_sigmoid(x); }

/* Roughly N(0,1) from one draw (Irwin-Hall of four 16-bit fields, bounded by +-3.46): the
 * prefill inputs hold up to ~10^8 values. */
float gdn_normalish(kb_rng *r);

/* The gate values of a head: g = exp(-exp(A_log) softplus(a + dt_bias)) with Qwen3-Next-like
 * A_log = log(U(1, 16)) and dt_bias = softplus^-1(dt), dt log-uniform in [1e-3, 1e-1]. */
void gdn_head_gate_params(kb_rng *rng, double *A_log, double *dt_bias);
double gdn_gate_g(double A_log, double a, double dt_bias);

/* The qk norm of gdn_qknorm in double: y = x * c / sqrt(mean(x^2) + 1e-6) with c = 1/dk for q
 * (l2norm(q) / sqrt(dk)) and c = 1/sqrt(dk) for k (l2norm(k)). */
#define GD_NORM_EPS 1e-6
double gdn_qk_factor(const float *x, int64_t d, int is_q);

#endif
