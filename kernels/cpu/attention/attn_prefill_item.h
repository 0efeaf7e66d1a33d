/* The item of the x86 prefill kernels, shared by every ISA: one kv head x one block of
 * KB_PRE_ROWS (query, head) rows (attn_prefill_plan.h), causal flash attention over K/V tiles of
 * KB_PRE_TILE positions. An ISA file differs only in its micro-kernels; before including this
 * header it defines
 *   KB_PRE_TARGET     its target attribute;
 *   KB_PRE_MR         rows per micro-tile (at most 8);
 *   kb_pre_qk(q, kt, S, D, mr)            S[r][0..TILE) = q[r] . kt[.][0..TILE) for mr rows;
 *   kb_pre_pv(P, vt, o, D, tk, mr)        o[r] += sum_jj P[r][jj] vt[jj] over tk positions;
 *   kb_pre_softmax_row(S, lim, m, l, o, D) the online-softmax step of one row over its tile
 *                                         scores (S becomes P), positions up to lim seen.
 *
 * Per tile: K is converted to f32 and transposed to [D][TILE] (8x8 register transposes), V is
 * converted to [TILE][D], each once for the block's rows; then the scores, the softmax steps
 * and P V. The packing and the final normalization use 8-lane AVX2 steps for every ISA: they
 * are O(rows x D) per item against O(rows x positions x D) in the micro-kernels. */
#ifndef KB_ATTN_PREFILL_ITEM_H
#define KB_ATTN_PREFILL_ITEM_H

#include "attn_prefill_plan.h"
#include "attn_x86.h"

/* The micro-tile row count is a constant in each instance of the micro-kernels. */
KB_PRE_TARGET KB_INLINE void kb_pre_qk_rows(const float *q, const float *kt, float *S, int64_t D,
                                            int mr)
{
    switch (mr) {
#if KB_PRE_MR >= 8
    case 8: kb_pre_qk(q, kt, S, D, 8); break;
    case 7: kb_pre_qk(q, kt, S, D, 7); break;
#endif
    case 6: kb_pre_qk(q, kt, S, D, 6); break;
    case 5: kb_pre_qk(q, kt, S, D, 5); break;
    case 4: kb_pre_qk(q, kt, S, D, 4); break;
    case 3: kb_pre_qk(q, kt, S, D, 3); break;
    case 2: kb_pre_qk(q, kt, S, D, 2); break;
    default: kb_pre_qk(q, kt, S, D, 1); break;
    }
}

KB_PRE_TARGET KB_INLINE void kb_pre_pv_rows(const float *P, const float *vt, float *o, int64_t D,
                                            int tk, int mr)
{
    switch (mr) {
#if KB_PRE_MR >= 8
    case 8: kb_pre_pv(P, vt, o, D, tk, 8); break;
    case 7: kb_pre_pv(P, vt, o, D, tk, 7); break;
#endif
    case 6: kb_pre_pv(P, vt, o, D, tk, 6); break;
    case 5: kb_pre_pv(P, vt, o, D, tk, 5); break;
    case 4: kb_pre_pv(P, vt, o, D, tk, 4); break;
    case 3: kb_pre_pv(P, vt, o, D, tk, 3); break;
    case 2: kb_pre_pv(P, vt, o, D, tk, 2); break;
    default: kb_pre_pv(P, vt, o, D, tk, 1); break;
    }
}

KB_PRE_TARGET KB_INLINE void kb_pre_item(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb,
                                         const int F16)
{
    const int NR = KB_PRE_ROWS, NT = KB_PRE_TILE, MR = KB_PRE_MR;
    const kb_attn_shape *s = &J->s;
    const int64_t D = s->D, H = s->heads, G = H / s->kv_heads;
    const int64_t stride = s->kv_heads * D, esz = F16 ? 2 : 4;
    const int64_t row0 = rb * NR;
    const int nrows = (int)(s->n_q * G - row0 < NR ? s->n_q * G - row0 : NR);
    float *q = ws, *o = q + NR * D, *S = o + NR * D, *kt = S + NR * NT, *vt = kt + D * NT;
    float *m = vt + NT * D, *l = m + 32;
    const __m256 qs = _mm256_set1_ps(J->qscale);
    for (int r = 0; r < nrows; r++) {
        const int64_t qi = (row0 + r) / G, h = kvh * G + (row0 + r) % G;
        const float *src = J->q + (qi * H + h) * D;
        for (int64_t d = 0; d < D; d += 8) {
            _mm256_store_ps(q + r * D + d, _mm256_mul_ps(qs, _mm256_loadu_ps(src + d)));
            _mm256_store_ps(o + r * D + d, _mm256_setzero_ps());
        }
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    const int64_t n_kv = s->p0 + (row0 + nrows - 1) / G + 1; /* the last row's positions */
    for (int64_t t0 = 0; t0 < n_kv; t0 += NT) {
        const int tk = n_kv - t0 < NT ? (int)(n_kv - t0) : NT;
        /* K tile as [D][NT] f32; positions past tk repeat the last row (masked later) */
        for (int jb = 0; jb < NT; jb += 8) {
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
                    _mm256_store_ps(kt + (d0 + i) * NT + jb, r8[i]);
            }
        }
        for (int jj = 0; jj < tk; jj++) {
            const void *row = (const char *)J->v + ((t0 + jj) * stride + kvh * D) * esz;
            for (int64_t d0 = 0; d0 < D; d0 += 8)
                _mm256_store_ps(vt + jj * D + d0, kb_ld8(row, d0, F16));
        }
        for (int r = 0; r < nrows; r += MR)
            kb_pre_qk_rows(q + r * D, kt, S + r * NT, D, nrows - r < MR ? nrows - r : MR);
        for (int r = 0; r < nrows; r++)
            kb_pre_softmax_row(S + r * NT, s->p0 + (row0 + r) / G - t0, &m[r], &l[r], o + r * D,
                               D);
        for (int r = 0; r < nrows; r += MR)
            kb_pre_pv_rows(S + r * NT, vt, o + r * D, D, tk, nrows - r < MR ? nrows - r : MR);
    }
    for (int r = 0; r < nrows; r++) {
        const int64_t qi = (row0 + r) / G, h = kvh * G + (row0 + r) % G;
        float *dst = J->out + (qi * H + h) * D;
        const __m256 inv = _mm256_set1_ps(kb_sm_inv(l[r]));
        for (int64_t d = 0; d < D; d += 8)
            _mm256_storeu_ps(dst + d, _mm256_mul_ps(inv, _mm256_load_ps(o + r * D + d)));
    }
}

/* The instances and the table kb_pre_run takes (items[kv_f16]). */
KB_PRE_TARGET static void kb_pre_item_f32(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb)
{
    kb_pre_item(J, ws, kvh, rb, 0);
}

KB_PRE_TARGET static void kb_pre_item_f16(const kb_pre_job *J, float *ws, int64_t kvh, int64_t rb)
{
    kb_pre_item(J, ws, kvh, rb, 1);
}

static const kb_pre_item_fn kb_pre_items[2] = {kb_pre_item_f32, kb_pre_item_f16};

#endif
