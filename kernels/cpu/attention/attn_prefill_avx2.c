/* attn_prefill, AVX2 + FMA + F16C: causal flash attention over K/V tiles of 32 positions for a
 * block of 24 (query, head) rows of one kv head (the item, its tiles and packing:
 * attn_prefill_item.h; the work split: attn_prefill_plan.h). This file brings the
 * micro-kernels: scores S = Q K^T and the update O += P V as register-blocked outer products
 * (6 rows x 16 columns, 12 accumulators, one broadcast per row), and the online softmax per
 * row over its 32 scores, with the causal mask (-inf past the row's position) on the diagonal
 * tiles. */
#include "attn_prefill_plan.h"
#include "attn_x86.h"

#define TK KB_PRE_TILE
#define KB_PRE_MR 6 /* rows per micro-tile */
#define MR KB_PRE_MR

/* S[r][0..TK) = q[r] . kt[.][0..TK) for mr rows. */
KB_TARGET_AVX2 KB_INLINE void kb_pre_qk(const float *q, const float *kt, float *S, int64_t D, const int mr)
{
#pragma GCC unroll 2
    for (int c0 = 0; c0 < TK; c0 += 16) {
        __m256 acc[MR][2];
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++)
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int64_t d = 0; d < D; d++) {
            const __m256 k0 = _mm256_load_ps(kt + d * TK + c0);
            const __m256 k1 = _mm256_load_ps(kt + d * TK + c0 + 8);
#pragma GCC unroll 6
            for (int r = 0; r < mr; r++) {
                const __m256 qb = _mm256_broadcast_ss(q + r * D + d);
                acc[r][0] = _mm256_fmadd_ps(qb, k0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(qb, k1, acc[r][1]);
            }
        }
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            _mm256_store_ps(S + r * TK + c0, acc[r][0]);
            _mm256_store_ps(S + r * TK + c0 + 8, acc[r][1]);
        }
    }
}

/* o[r][.] += sum_jj P[r][jj] vt[jj][.] over the tile's tk positions, mr rows. */
KB_TARGET_AVX2 KB_INLINE void kb_pre_pv(const float *P, const float *vt, float *o, int64_t D, int tk,
                                 const int mr)
{
    for (int64_t d0 = 0; d0 < D; d0 += 16) {
        __m256 acc[MR][2];
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            acc[r][0] = _mm256_load_ps(o + r * D + d0);
            acc[r][1] = _mm256_load_ps(o + r * D + d0 + 8);
        }
        for (int jj = 0; jj < tk; jj++) {
            const __m256 v0 = _mm256_load_ps(vt + jj * D + d0);
            const __m256 v1 = _mm256_load_ps(vt + jj * D + d0 + 8);
#pragma GCC unroll 6
            for (int r = 0; r < mr; r++) {
                const __m256 pb = _mm256_broadcast_ss(P + r * TK + jj);
                acc[r][0] = _mm256_fmadd_ps(pb, v0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(pb, v1, acc[r][1]);
            }
        }
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            _mm256_store_ps(o + r * D + d0, acc[r][0]);
            _mm256_store_ps(o + r * D + d0 + 8, acc[r][1]);
        }
    }
}

/* Online-softmax step of one row over its tile scores S[0..TK) (in place: S becomes P); the
 * row sees positions up to lim of the tile (lim < 0: none; lim >= TK - 1: all). */
KB_TARGET_AVX2 KB_INLINE void kb_pre_softmax_row(float *S, int64_t lim, float *m, float *l, float *o,
                                          int64_t D)
{
    if (lim < 0) { /* the whole tile lies past this row's position */
        for (int j = 0; j < TK; j += 8)
            _mm256_store_ps(S + j, _mm256_setzero_ps());
        return;
    }
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mx = ninf;
    for (int j = 0; j < TK; j += 8) {
        __m256 sv = _mm256_load_ps(S + j);
        if (lim < TK - 1) {
            const __m256 idx = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256 past = _mm256_cmp_ps(_mm256_add_ps(idx, _mm256_set1_ps((float)j)),
                                              _mm256_set1_ps((float)lim), _CMP_GT_OQ);
            sv = _mm256_blendv_ps(sv, ninf, past);
            _mm256_store_ps(S + j, sv);
        }
        mx = _mm256_max_ps(mx, sv);
    }
    const float m_new = fmaxf(*m, kb_hmax256(mx));
    const float alpha = kb_sm_alpha(*m, m_new);
    const __m256 mu = _mm256_set1_ps(kb_sm_safe_max(m_new));
    __m256 sum = _mm256_setzero_ps();
    for (int j = 0; j < TK; j += 8) {
        const __m256 p = kb_exp2_avx2(_mm256_sub_ps(_mm256_load_ps(S + j), mu));
        sum = _mm256_add_ps(sum, p);
        _mm256_store_ps(S + j, p);
    }
    *l = *l * alpha + kb_hsum256(sum);
    *m = m_new;
    if (alpha != 1.0f) {
        const __m256 a = _mm256_set1_ps(alpha);
        for (int64_t d = 0; d < D; d += 8)
            _mm256_store_ps(o + d, _mm256_mul_ps(a, _mm256_load_ps(o + d)));
    }
}

#undef TK
#undef MR
#define KB_PRE_TARGET KB_TARGET_AVX2
#include "attn_prefill_item.h"

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_pre_run(c, in, out, pool, kb_pre_items);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_attn_prefill_avx2 = {
    .family = "attn_prefill",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
