/* attn_prefill, AVX2 + FMA + F16C: causal flash attention over K/V tiles of 32 positions for a
 * block of 24 (query, head) rows of one kv head (attn_prefill_plan.h).
 *
 * Per tile: K is converted to f32 and transposed to [D][32] (8x8 register transposes), V is
 * converted to [32][D], each once for the 24 rows; scores S = Q K^T and the update O += P V are
 * register-blocked outer products (6 rows x 16 columns, 12 accumulators, one broadcast per row);
 * between them the online softmax runs per row over its 32 scores, with the causal mask
 * (-inf past the row's position) on the diagonal tiles. */
#include "attn_prefill_plan.h"
#include "attn_x86.h"

#define ROWS KB_PRE_ROWS
#define TK KB_PRE_TILE
#define MR 6 /* rows per micro-tile */

/* S[r][0..TK) = q[r] . kt[.][0..TK) for mr rows. */
KB_TARGET_AVX2 KB_INLINE void qk(const float *q, const float *kt, float *S, int64_t D, const int mr)
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
KB_TARGET_AVX2 KB_INLINE void pv(const float *P, const float *vt, float *o, int64_t D, int tk,
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

/* The micro-tile row count must be a constant in each instance. */
#define BY_ROWS(n, CALL)       \
    switch (n) {               \
    case 6: CALL(6); break;    \
    case 5: CALL(5); break;    \
    case 4: CALL(4); break;    \
    case 3: CALL(3); break;    \
    case 2: CALL(2); break;    \
    default: CALL(1); break;   \
    }

/* Online-softmax step of one row over its tile scores S[0..TK) (in place: S becomes P); the
 * row sees positions up to lim of the tile (lim < 0: none; lim >= TK - 1: all). */
KB_TARGET_AVX2 KB_INLINE void softmax_row(float *S, int64_t lim, float *m, float *l, float *o,
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

KB_TARGET_AVX2 KB_INLINE void item(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb,
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
        for (int64_t d = 0; d < D; d++) {
            q[r * D + d] = src[d] * J->qscale;
            o[r * D + d] = 0.0f;
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
            for (int64_t d0 = 0; d0 < D; d0 += 8)
                _mm256_store_ps(vt + jj * D + d0, kb_ld8(row, d0, F16));
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
        const __m256 inv = _mm256_set1_ps(kb_sm_inv(l[r]));
        for (int64_t d = 0; d < D; d += 8)
            _mm256_storeu_ps(dst + d, _mm256_mul_ps(inv, _mm256_load_ps(o + r * D + d)));
    }
}

KB_TARGET_AVX2 static void item_f32(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb)
{
    item(J, ws, kvh, rb, 0);
}

KB_TARGET_AVX2 static void item_f16(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb)
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
    return kb_need_avx2();
}

const kb_impl kb_impl_attn_prefill_avx2 = {
    .family = "attn_prefill",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
