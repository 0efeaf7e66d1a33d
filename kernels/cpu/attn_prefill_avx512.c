/* attn_prefill, AVX-512 (F, BW, VL) + F16C: the algorithm of attn_prefill_avx2.c with 16-lane
 * vectors: K/V tiles of 32 positions for a block of 24 (query, head) rows of one kv head; the K
 * tile converted and transposed to [D][32] (8x8 transposes), V converted to [32][D]; scores and
 * P V as register-blocked outer products of 8 rows x 32 columns (16 accumulators of the 32
 * registers); the online softmax per row on two 16-lane vectors, the causal mask as a lane
 * mask. Not runnable on the AVX2 development machine (it reports itself unavailable there); its
 * logic was checked there against the reference with these intrinsics emulated on AVX2. */
#include "attn_prefill_plan.h"
#include "attn_x86.h"

#define ROWS KB_PRE_ROWS
#define TK KB_PRE_TILE /* 32: two 16-lane vectors */
#define MR 8           /* rows per micro-tile */

/* S[r][0..TK) = q[r] . kt[.][0..TK) for mr rows. */
KB_TARGET_AVX512 KB_INLINE void qk(const float *q, const float *kt, float *S, int64_t D,
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
KB_TARGET_AVX512 KB_INLINE void pv(const float *P, const float *vt, float *o, int64_t D, int tk,
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

/* The micro-tile row count must be a constant in each instance. */
#define BY_ROWS(n, CALL)     \
    switch (n) {             \
    case 8: CALL(8); break;  \
    case 7: CALL(7); break;  \
    case 6: CALL(6); break;  \
    case 5: CALL(5); break;  \
    case 4: CALL(4); break;  \
    case 3: CALL(3); break;  \
    case 2: CALL(2); break;  \
    default: CALL(1); break; \
    }

/* Online-softmax step of one row over its tile scores S[0..TK) (in place: S becomes P); the
 * row sees positions up to lim of the tile (lim < 0: none; lim >= TK - 1: all). */
KB_TARGET_AVX512 KB_INLINE void softmax_row(float *S, int64_t lim, float *m, float *l, float *o,
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

KB_TARGET_AVX512 KB_INLINE void item(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb,
                                     const int F16)
{
    const kb_attn_shape *s = &J->s;
    const int64_t D = s->D, H = s->heads, G = H / s->kv_heads;
    const int64_t stride = s->kv_heads * D, esz = F16 ? 2 : 4;
    const int64_t row0 = rb * ROWS;
    const int nrows = (int)(s->n_q * G - row0 < ROWS ? s->n_q * G - row0 : ROWS);
    float *q = ws, *o = q + ROWS * D, *S = o + ROWS * D, *kt = S + ROWS * TK, *vt = kt + D * TK;
    float *m = vt + TK * D, *l = m + 32;
    for (int r = 0; r < nrows; r++) {
        const int64_t qi = (row0 + r) / G, h = kvh * G + (row0 + r) % G;
        const float *src = J->q + (qi * H + h) * D;
        const __m512 qs = _mm512_set1_ps(J->qscale);
        for (int64_t d = 0; d < D; d += 16) {
            _mm512_store_ps(q + r * D + d, _mm512_mul_ps(qs, _mm512_loadu_ps(src + d)));
            _mm512_store_ps(o + r * D + d, _mm512_setzero_ps());
        }
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    const int64_t n_kv = s->p0 + (row0 + nrows - 1) / G + 1; /* the last row's positions */
    for (int64_t t0 = 0; t0 < n_kv; t0 += TK) {
        const int tk = n_kv - t0 < TK ? (int)(n_kv - t0) : TK;
        /* K tile as [D][TK] f32; positions past tk repeat the last row (masked later) */
        for (int jb = 0; jb < TK; jb += 8) {
            const void *rows[8];
            for (int i = 0; i < 8; i++) {
                const int64_t pos = t0 + (jb + i < tk ? jb + i : tk - 1);
                rows[i] = (const char *)J->k + (pos * stride + kvh * D) * esz;
            }
            for (int64_t d0 = 0; d0 < D; d0 += 8) {
                __m256 r8[8];
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++)
                    r8[i] = kb_ld8(rows[i], d0, F16);
                kb_transpose8x8(r8);
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++)
                    _mm256_store_ps(kt + (d0 + i) * TK + jb, r8[i]);
            }
        }
        for (int jj = 0; jj < tk; jj++) {
            const void *row = (const char *)J->v + ((t0 + jj) * stride + kvh * D) * esz;
            for (int64_t d0 = 0; d0 < D; d0 += 16)
                _mm512_store_ps(vt + jj * D + d0, kb_ld16(row, d0, F16));
        }
        for (int r = 0; r < nrows; r += MR) {
            const int mr = nrows - r < MR ? nrows - r : MR;
#define QK(n) qk(q + r * D, kt, S + r * TK, D, n)
            BY_ROWS(mr, QK)
#undef QK
        }
        for (int r = 0; r < nrows; r++)
            softmax_row(S + r * TK, s->p0 + (row0 + r) / G - t0, &m[r], &l[r], o + r * D, D);
        for (int r = 0; r < nrows; r += MR) {
            const int mr = nrows - r < MR ? nrows - r : MR;
#define PV(n) pv(S + r * TK, vt, o + r * D, D, tk, n)
            BY_ROWS(mr, PV)
#undef PV
        }
    }
    for (int r = 0; r < nrows; r++) {
        const int64_t qi = (row0 + r) / G, h = kvh * G + (row0 + r) % G;
        float *dst = J->out + (qi * H + h) * D;
        const __m512 inv = _mm512_set1_ps(kb_sm_inv(l[r]));
        for (int64_t d = 0; d < D; d += 16)
            _mm512_storeu_ps(dst + d, _mm512_mul_ps(inv, _mm512_load_ps(o + r * D + d)));
    }
}

KB_TARGET_AVX512 static void item_f32(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb)
{
    item(J, ws, kvh, rb, 0);
}

KB_TARGET_AVX512 static void item_f16(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb)
{
    item(J, ws, kvh, rb, 1);
}

static const kb_pre_item_fn items[2] = {item_f32, item_f16};

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_pre_run(c, in, out, pool, items);
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
