/* Top-K routing of one token on AVX-512 (moe_route_avx512.c, moe_layer_avx512vnni.c).
 *
 * Scores are cleaned once (a NaN logit becomes -inf: moe_ref.h's rule), then the K best are
 * kept in a list sorted by (score descending, index ascending): the first K experts scanned
 * enter unconditionally, every later one only when it beats the K-th strictly (a vector compare
 * of 16 scores against the threshold finds the few that do: ~K ln(E/K) insertions for random
 * logits). Scanning in index order makes an equal score lose to the lower index, as the
 * definition wants. Grouped routing scans only the kept groups, in index order.
 * Weights: softmax renormalized needs exp of the K only (the softmax denominator cancels);
 * without renorm the denominator sums exp over all E (mr_exp512, ~1e-7 relative). */
#ifndef KB_MOE_ROUTE_X86_H
#define KB_MOE_ROUTE_X86_H

#include <math.h>

#include "moe_ref.h"
#include "simd_x86.h"

#define MR_PAD (MOE_MAX_E + 16)

/* exp(x) for x <= 88.7 (larger: +inf is never asked for), -inf and anything below -104 give 0:
 * 2^n exp(r), |r| <= ln2/2, exp(r) by its Taylor polynomial to r^6 (error < 1.3e-7). */
KB_TARGET_AVX512 KB_INLINE __m512 mr_exp512(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x); /* ln2 in two parts */
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Lanes of E from i (a mask for the last, partial vector). */
static inline __mmask16 mr_lanes(int E, int i) { return E - i >= 16 ? 0xFFFF : (__mmask16)((1u << (E - i)) - 1); }

/* The K best of v[idx[j]], j < n (idx ascending), into tv/ti sorted by (score desc, index asc). */
typedef struct {
    float v[MOE_MAX_K];
    int32_t i[MOE_MAX_K];
    int n, K;
} mr_top;

static inline void mr_insert(mr_top *t, float v, int32_t i)
{
    int p = t->n < t->K ? t->n : t->K - 1; /* the slot the newcomer may take */
    if (t->n == t->K && !(v > t->v[p]))
        return;
    while (p > 0 && v > t->v[p - 1]) { /* an equal score ahead of it has the lower index */
        t->v[p] = t->v[p - 1];
        t->i[p] = t->i[p - 1];
        p--;
    }
    t->v[p] = v;
    t->i[p] = i;
    if (t->n < t->K)
        t->n++;
}

/* Scans experts [i0, i1) of the cleaned scores s (ascending index) into t. */
KB_TARGET_AVX512 KB_INLINE void mr_scan(mr_top *t, const float *s, int i0, int i1)
{
    int i = i0;
    for (; i < i1 && t->n < t->K; i++)
        mr_insert(t, s[i], i);
    for (; i < i1; i += 16) {
        const __mmask16 m = mr_lanes(i1, i);
        const __m512 v = _mm512_maskz_loadu_ps(m, s + i);
        unsigned c = _mm512_mask_cmp_ps_mask(m, v, _mm512_set1_ps(t->v[t->K - 1]), _CMP_GT_OQ);
        while (c) {
            const int j = __builtin_ctz(c);
            c &= c - 1;
            mr_insert(t, s[i + j], i + j);
        }
    }
}

/* Scratch of one token. */
typedef struct {
    float s[MR_PAD];   /* cleaned selection scores */
    float sig[MR_PAD]; /* sigmoid of the logits (grouped) */
    float wk[MOE_MAX_K];
} mr_scratch;

/* One token: ids[K], w[K] in output order. */
KB_TARGET_AVX512 static inline void mr_route_token(const kb_moe_route *r, const float *l,
                                                   const float *bias, int32_t *ids, float *w,
                                                   mr_scratch *sc)
{
    const int E = r->E, K = r->K;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    float *s = sc->s, *wk = sc->wk;
    mr_top t = {.n = 0, .K = K};
    if (r->mode == MOE_SOFTMAX_TOPK) {
        __m512 mx = ninf;
        for (int i = 0; i < E; i += 16) {
            const __mmask16 m = mr_lanes(E, i);
            __m512 v = _mm512_mask_loadu_ps(ninf, m, l + i);
            v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), ninf);
            _mm512_mask_storeu_ps(s + i, m, v);
            mx = _mm512_max_ps(mx, v);
        }
        const float mxs = _mm512_reduce_max_ps(mx);
        mr_scan(&t, s, 0, E);
        float sum = 0;
        if (mxs == -INFINITY) { /* nothing finite: weights 0 */
            for (int k = 0; k < K; k++)
                wk[k] = 0;
        } else if (r->renorm) {
            for (int k = 0; k < K; k++)
                sum += wk[k] = expf(t.v[k] - mxs);
        } else {
            __m512 z = _mm512_setzero_ps();
            for (int i = 0; i < E; i += 16) {
                const __mmask16 m = mr_lanes(E, i);
                const __m512 e = mr_exp512(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, m, s + i),
                                                         _mm512_set1_ps(mxs)));
                z = _mm512_add_ps(z, _mm512_maskz_mov_ps(m, e));
            }
            sum = _mm512_reduce_add_ps(z);
            for (int k = 0; k < K; k++)
                wk[k] = expf(t.v[k] - mxs);
        }
        const float inv = sum > 0 ? 1.0f / sum : 0.0f;
        for (int k = 0; k < K; k++) {
            ids[k] = t.i[k];
            w[k] = wk[k] * inv;
        }
        return;
    }
    /* sigmoid_grouped: s' = sigmoid(l) + bias (NaN: -inf), group scores, kept groups.
     * sigmoid(l) = 1 / (1 + e) for l >= 0, e / (1 + e) below, e = exp(-|l|): no overflow, and
     * -inf gives 0 exactly (logits below -104 too: their sigmoid is below f32's range). */
    float *sig = sc->sig;
    for (int i = 0; i < E; i += 16) {
        const __mmask16 m = mr_lanes(E, i);
        const __m512 v = _mm512_maskz_loadu_ps(m, l + i);
        const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
        const __m512 e = mr_exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(v)));
        const __m512 num = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), neg, e);
        __m512 sg = _mm512_div_ps(num, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        sg = _mm512_mask_mov_ps(sg, nan, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(sig + i, m, sg);
        const __m512 sp = _mm512_add_ps(sg, _mm512_maskz_loadu_ps(m, bias + i));
        _mm512_mask_storeu_ps(s + i, m, _mm512_mask_mov_ps(sp, nan, ninf));
    }
    const int per = E / r->groups;
    float gs[64];
    for (int g = 0; g < r->groups; g++) { /* the two best of each group */
        const float *v = s + g * per;
        int a = 0;
        for (int i = 1; i < per; i++)
            if (v[i] > v[a])
                a = i;
        float b = -INFINITY;
        for (int i = 0; i < per; i++)
            if (i != a && v[i] > b)
                b = v[i];
        gs[g] = v[a] + b;
    }
    uint64_t kept = 0;
    for (int k = 0; k < r->topk_group; k++) { /* best groups, ties to the lower index */
        int best = -1;
        for (int g = 0; g < r->groups; g++)
            if (!(kept >> g & 1) && (best < 0 || gs[g] > gs[best]))
                best = g;
        kept |= 1ull << best;
    }
    for (int g = 0; g < r->groups; g++) /* ascending index: equal scores to the lower */
        if (kept >> g & 1)
            mr_scan(&t, s, g * per, (g + 1) * per);
    float sum = 0;
    for (int k = 0; k < K; k++)
        sum += sig[t.i[k]];
    for (int k = 0; k < K; k++) { /* output order: weight descending, then index */
        const float v = sig[t.i[k]];
        const int32_t id = t.i[k];
        int p = k;
        while (p > 0 && (v > wk[p - 1] || (v == wk[p - 1] && id < ids[p - 1]))) {
            ids[p] = ids[p - 1];
            wk[p] = wk[p - 1];
            p--;
        }
        ids[p] = id;
        wk[p] = v;
    }
    const float scale = sum > 0 ? (float)MOE_ROUTED_SCALE / sum : 0.0f;
    for (int k = 0; k < K; k++)
        w[k] = wk[k] * scale;
}

#endif
