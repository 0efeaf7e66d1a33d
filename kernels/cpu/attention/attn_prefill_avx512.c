/* attn_prefill, AVX-512 (F, BW, VL) + F16C: the item of attn_prefill_item.h (K/V tiles of 32
 * positions for a block of 24 (query, head) rows of one kv head) with 16-lane micro-kernels:
 * scores and P V as register-blocked outer products of 8 rows x 32 columns (16 accumulators of
 * the 32 registers); the online softmax per row on two 16-lane vectors, the causal mask as a
 * lane mask. Not runnable on the AVX2 development machine (it reports itself unavailable
 * there); test_attention_cpu checks it on an AVX-512 host. */
#include "attn_prefill_plan.h"
#include "attn_x86.h"

#define TK KB_PRE_TILE /* 32: two 16-lane vectors */
#define KB_PRE_MR 8 /* rows per micro-tile */
#define MR KB_PRE_MR

/* S[r][0..TK) = q[r] . kt[.][0..TK) for mr rows. */
KB_TARGET_AVX512 KB_INLINE void kb_pre_qk(const float *q, const float *kt, float *S, int64_t D,
                                   const int mr)
{
    __m512 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d++) {
        const __m512 k0 = _mm512_load_ps(kt + d * TK);
        const __m512 k1 = _mm512_load_ps(kt + d * TK + 16);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            const __m512 qb = _mm512_set1_ps(q[r * D + d]);
            acc[r][0] = _mm512_fmadd_ps(qb, k0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(qb, k1, acc[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        _mm512_store_ps(S + r * TK, acc[r][0]);
        _mm512_store_ps(S + r * TK + 16, acc[r][1]);
    }
}

/* o[r][.] += sum_jj P[r][jj] vt[jj][.] over the tile's tk positions, mr rows. */
KB_TARGET_AVX512 KB_INLINE void kb_pre_pv(const float *P, const float *vt, float *o, int64_t D, int tk,
                                   const int mr)
{
    for (int64_t d0 = 0; d0 < D; d0 += 32) {
        __m512 acc[MR][2];
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            acc[r][0] = _mm512_load_ps(o + r * D + d0);
            acc[r][1] = _mm512_load_ps(o + r * D + d0 + 16);
        }
        for (int jj = 0; jj < tk; jj++) {
            const __m512 v0 = _mm512_load_ps(vt + jj * D + d0);
            const __m512 v1 = _mm512_load_ps(vt + jj * D + d0 + 16);
#pragma GCC unroll 8
            for (int r = 0; r < mr; r++) {
                const __m512 pb = _mm512_set1_ps(P[r * TK + jj]);
                acc[r][0] = _mm512_fmadd_ps(pb, v0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(pb, v1, acc[r][1]);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            _mm512_store_ps(o + r * D + d0, acc[r][0]);
            _mm512_store_ps(o + r * D + d0 + 16, acc[r][1]);
        }
    }
}

/* Online-softmax step of one row over its tile scores S[0..TK) (in place: S becomes P); the
 * row sees positions up to lim of the tile (lim < 0: none; lim >= TK - 1: all). */
KB_TARGET_AVX512 KB_INLINE void kb_pre_softmax_row(float *S, int64_t lim, float *m, float *l, float *o,
                                            int64_t D)
{
    if (lim < 0) { /* the whole tile lies past this row's position */
        _mm512_store_ps(S, _mm512_setzero_ps());
        _mm512_store_ps(S + 16, _mm512_setzero_ps());
        return;
    }
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    /* lanes at or before lim are seen: lim + 1 of the 32, as two 16-bit masks */
    const int seen = lim + 1 < TK ? (int)lim + 1 : TK;
    const __mmask16 m0 = seen >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << seen) - 1);
    const __mmask16 m1 = seen <= 16 ? (__mmask16)0 : (__mmask16)((1u << (seen - 16)) - 1);
    const __m512 s0 = _mm512_mask_mov_ps(ninf, m0, _mm512_load_ps(S));
    const __m512 s1 = _mm512_mask_mov_ps(ninf, m1, _mm512_load_ps(S + 16));
    const float m_new = fmaxf(*m, _mm512_reduce_max_ps(_mm512_max_ps(s0, s1)));
    const float alpha = kb_sm_alpha(*m, m_new);
    const __m512 mu = _mm512_set1_ps(kb_sm_safe_max(m_new));
    const __m512 p0 = kb_exp2_avx512(_mm512_sub_ps(s0, mu));
    const __m512 p1 = kb_exp2_avx512(_mm512_sub_ps(s1, mu));
    _mm512_store_ps(S, p0);
    _mm512_store_ps(S + 16, p1);
    *l = *l * alpha + _mm512_reduce_add_ps(_mm512_add_ps(p0, p1));
    *m = m_new;
    if (alpha != 1.0f) {
        const __m512 a = _mm512_set1_ps(alpha);
        for (int64_t d = 0; d < D; d += 16)
            _mm512_store_ps(o + d, _mm512_mul_ps(a, _mm512_load_ps(o + d)));
    }
}

#undef TK
#undef MR
#define KB_PRE_TARGET KB_TARGET_AVX512
#include "attn_prefill_item.h"

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_pre_run(c, in, out, pool, kb_pre_items);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_attn_prefill_avx512 = {
    .family = "attn_prefill",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
