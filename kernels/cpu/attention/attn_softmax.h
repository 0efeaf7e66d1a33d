/* Online softmax in plain C: the rules every attention kernel follows, and the merge of partial
 * results (flash decoding). Scores are in log2 units (the kernels fold log2(e) into the query
 * scale), so weights are 2^(s - m).
 *
 * The state of one query row after some positions: running max m, running sum l = sum 2^(s-m),
 * and the accumulator o = sum 2^(s-m) v (kept by the caller). A row that has seen nothing, or
 * only masked positions (s = -inf), has m = -inf, l = 0, o = 0. */
#ifndef KB_ATTN_SOFTMAX_H
#define KB_ATTN_SOFTMAX_H

#include <math.h>
#include <stdint.h>

/* The maximum to subtract from new scores: m, or 0 while m = -inf (every score was -inf; then
 * 2^(s - 0) = 0 for them, where 2^(-inf - -inf) would be NaN). */
static inline float kb_sm_safe_max(float m) { return m == -INFINITY ? 0.0f : m; }

/* The factor the old l and o are rescaled by when the max moves from m_old to m_new: 0 when
 * m_old = -inf (nothing to keep, and -inf - -inf would be NaN). */
static inline float kb_sm_alpha(float m_old, float m_new)
{
    return m_old == -INFINITY ? 0.0f : exp2f(m_old - kb_sm_safe_max(m_new));
}

/* 1/l for the final normalization, or 0 for a row that saw no positions (l = 0): its output
 * is then 0, not NaN. */
static inline float kb_sm_inv(float l) { return l > 0.0f ? 1.0f / l : 0.0f; }

/* A partial result record: KB_SM_HDR floats of header (m, l, padding that keeps o 64-byte
 * aligned) followed by o[D]. */
#define KB_SM_HDR 16
#define KB_SM_M 0
#define KB_SM_L 1

static inline void kb_sm_record_init(float *rec, int64_t D)
{
    rec[KB_SM_M] = -INFINITY;
    rec[KB_SM_L] = 0.0f;
    for (int64_t d = 0; d < D; d++)
        rec[KB_SM_HDR + d] = 0.0f;
}

/* Merges n partial records (each over its own positions of one row), stride floats apart, into
 * the normalized output out[D] = sum_i w_i o_i / sum_i w_i l_i, w_i = 2^(m_i - M), M = max m_i.
 * Empty partials (m = -inf) weigh 0; a row with no positions at all gives 0. */
static inline void kb_sm_merge(const float *rec, int64_t n, int64_t stride, int64_t D, float *out)
{
    float M = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        M = rec[i * stride + KB_SM_M] > M ? rec[i * stride + KB_SM_M] : M;
    float L = 0.0f;
    for (int64_t d = 0; d < D; d++)
        out[d] = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float *r = rec + i * stride;
        const float w = kb_sm_alpha(r[KB_SM_M], M); /* 0 for an empty partial */
        if (w == 0.0f)
            continue;
        L += w * r[KB_SM_L];
        for (int64_t d = 0; d < D; d++)
            out[d] += w * r[KB_SM_HDR + d];
    }
    const float inv = kb_sm_inv(L);
    for (int64_t d = 0; d < D; d++)
        out[d] *= inv;
}

#endif
