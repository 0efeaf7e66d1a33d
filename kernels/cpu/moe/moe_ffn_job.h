/* The AVX512-VNNI expert FFN and combine (moe_ffn_avx512vnni.c, moe_layer_avx512vnni.c): one
 * code path for decode and prefill.
 *
 * Pairs (token t, slot j) are numbered p = t S + j (slot K: the shared expert, stored as expert
 * E). A counting sort groups them by expert (tokens ascending within one), so each expert's
 * weights are read once per call, whatever the number of tokens that chose it:
 *   phase 0  x of every token quantized (moe_ffn_vnni.h); the pairs' weights: the routing
 *            weights, and for the shared expert sigmoid(sg . x) (Qwen) or 1 (DeepSeek);
 *   phase 1  items (expert, block of 128 ffn rows): each gate and up row meets the expert's
 *            tokens four at a time (the row read once from memory, re-read from L1 for further
 *            tokens), then silu(g) u of the block is quantized per pair (a block of 128 rows is
 *            whole blocks and groups, so no two items share one);
 *   phase 2  items (block of hidden rows): y = h for every token, then each used expert's down
 *            rows of the block against its pairs' activations, y += pair weight x result, the
 *            experts in ascending order, shared last. An item owns its y rows: no atomics, and
 *            the result does not depend on which thread ran which item.
 * Items are taken from an atomic counter (threads that a shared machine slows take fewer).
 * Decode (one token) reads only its K + shared experts: 11 for Qwen3.5. */
#ifndef KB_MOE_FFN_JOB_H
#define KB_MOE_FFN_JOB_H

#include <stdatomic.h>

#include "moe_ffn_vnni.h"
#include "moe_route_x86.h"

#define MF_RB1 128 /* ffn rows per phase-1 item */

typedef struct mf_job {
    kb_moe_ffn f;
    const float *x, *h, *wr, *sg; /* x, h [T][H]; routing weights [T][K]; sg [H] (shared 1) */
    const int32_t *ids;           /* [T][K] */
    const uint8_t *W;
    const uint16_t *sc, *bi;
    float *y;
    int64_t P;                 /* pairs: T S */
    int32_t *eoff, *plist;     /* [NE + 1] offsets into plist [P] (pairs by expert) */
    int32_t *used;             /* experts with pairs, ascending */
    int nused;
    float *pw;                 /* [P] the weight of each pair */
    mf_vec xv, av;             /* quantized x [T], activations [P] */
    mf_dot_fn dot_h[MF_TMAX];  /* rows of hidden columns (gate, up) */
    mf_dot_fn dot_f[MF_TMAX];  /* rows of ffn columns (down) */
    int64_t nrb1, rb2, n1, n2; /* item counts and sizes */
    _Atomic int64_t next;
} mf_job;

/* ---- the dot products, instantiated per format, group and token count --------------------- */

#define MF_DOT(name, expr)                                                                         \
    KB_TARGET_MOE512 static void name(const uint8_t *w, const uint16_t *sc, const uint16_t *bi,    \
                                      int64_t n, const mf_vec *v, const int64_t *vi, float *out)   \
    {                                                                                              \
        (void)sc;                                                                                  \
        (void)bi;                                                                                  \
        expr;                                                                                      \
    }
#define MF_DOT_T(fam, G, T)                                                                        \
    MF_DOT(mf_##fam##_g##G##_t##T, mf_dot_##fam(G, T, w, sc, bi, n, v, vi, out))
#define MF_DOT_G(fam, G) MF_DOT_T(fam, G, 1) MF_DOT_T(fam, G, 2) MF_DOT_T(fam, G, 3) MF_DOT_T(fam, G, 4)
MF_DOT_G(a4, 32)
MF_DOT_G(a4, 64)
MF_DOT_G(a4, 128)
MF_DOT_G(a8, 32)
MF_DOT_G(a8, 64)
MF_DOT_G(a8, 128)
MF_DOT(mf_q4_t1, mf_dot_q4_0(1, w, n, v, vi, out))
MF_DOT(mf_q4_t2, mf_dot_q4_0(2, w, n, v, vi, out))
MF_DOT(mf_q4_t3, mf_dot_q4_0(3, w, n, v, vi, out))
MF_DOT(mf_q4_t4, mf_dot_q4_0(4, w, n, v, vi, out))

static inline void mf_pick_dots(const kb_moe_ffn *f, mf_dot_fn *d)
{
    static const mf_dot_fn tab[7][MF_TMAX] = {
        {mf_a4_g32_t1, mf_a4_g32_t2, mf_a4_g32_t3, mf_a4_g32_t4},
        {mf_a4_g64_t1, mf_a4_g64_t2, mf_a4_g64_t3, mf_a4_g64_t4},
        {mf_a4_g128_t1, mf_a4_g128_t2, mf_a4_g128_t3, mf_a4_g128_t4},
        {mf_a8_g32_t1, mf_a8_g32_t2, mf_a8_g32_t3, mf_a8_g32_t4},
        {mf_a8_g64_t1, mf_a8_g64_t2, mf_a8_g64_t3, mf_a8_g64_t4},
        {mf_a8_g128_t1, mf_a8_g128_t2, mf_a8_g128_t3, mf_a8_g128_t4},
        {mf_q4_t1, mf_q4_t2, mf_q4_t3, mf_q4_t4},
    };
    const int g = f->group == 32 ? 0 : f->group == 64 ? 1 : 2;
    const int row = f->format == MOE_FMT_Q4_0 ? 6 : (f->format == MOE_FMT_A8 ? 3 : 0) + g;
    memcpy(d, tab[row], sizeof tab[row]);
}

/* ---- the phases ------------------------------------------------------------------------ */

static inline const uint8_t *mf_wrow(const mf_job *j, int e, int64_t off, int64_t r, int64_t rb)
{
    return j->W + (int64_t)e * j->f.expert_bytes + off + r * rb;
}

static inline const uint16_t *mf_grow(const uint16_t *s, const mf_job *j, int e, int64_t goff,
                                      int64_t r, int64_t ng)
{
    return s ? s + (int64_t)e * j->f.expert_groups + goff + r * ng : NULL;
}

/* x of tokens [t0, t1) quantized; the shared expert's pair weights. */
KB_TARGET_MOE512 static void mf_prep_tokens(mf_job *j, int64_t t0, int64_t t1)
{
    const kb_moe_ffn *f = &j->f;
    const int fmt = f->format, G = f->group;
    for (int64_t t = t0; t < t1; t++) {
        const float *xt = j->x + t * f->hidden;
        switch (fmt * 1000 + G) { /* constants inside: the layout code unrolls */
        case MOE_FMT_A4 * 1000 + 32: mf_quantize(MOE_FMT_A4, 32, &j->xv, t, xt, 0, f->hidden); break;
        case MOE_FMT_A4 * 1000 + 64: mf_quantize(MOE_FMT_A4, 64, &j->xv, t, xt, 0, f->hidden); break;
        case MOE_FMT_A4 * 1000 + 128: mf_quantize(MOE_FMT_A4, 128, &j->xv, t, xt, 0, f->hidden); break;
        case MOE_FMT_A8 * 1000 + 32: mf_quantize(MOE_FMT_A8, 32, &j->xv, t, xt, 0, f->hidden); break;
        case MOE_FMT_A8 * 1000 + 64: mf_quantize(MOE_FMT_A8, 64, &j->xv, t, xt, 0, f->hidden); break;
        case MOE_FMT_A8 * 1000 + 128: mf_quantize(MOE_FMT_A8, 128, &j->xv, t, xt, 0, f->hidden); break;
        default: mf_quantize(MOE_FMT_Q4_0, 32, &j->xv, t, xt, 0, f->hidden); break;
        }
        mf_pad(fmt, &j->xv, t, f->hidden, f->hidden / G);
        if (f->shared == MOE_SHARED_GATED) {
            __m512 a = _mm512_setzero_ps();
            for (int64_t c = 0; c < f->hidden; c += 16)
                a = _mm512_fmadd_ps(_mm512_loadu_ps(j->sg + c), _mm512_loadu_ps(xt + c), a);
            j->pw[t * f->S + f->K] = 1.0f / (1.0f + expf(-_mm512_reduce_add_ps(a)));
        } else if (f->shared == MOE_SHARED_PLAIN) {
            j->pw[t * f->S + f->K] = 1.0f;
        }
    }
}

/* silu(g) u of n values (a multiple of 16) into a. */
KB_TARGET_MOE512 KB_INLINE void mf_swiglu(const float *g, const float *u, int64_t n, float *a)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 gv = _mm512_loadu_ps(g + i);
        const __m512 e = mr_exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(gv)));
        const __mmask16 neg = _mm512_cmp_ps_mask(gv, _mm512_setzero_ps(), _CMP_LT_OQ);
        const __m512 num = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), neg, e);
        const __m512 sg = _mm512_div_ps(num, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
        _mm512_storeu_ps(a + i, _mm512_mul_ps(_mm512_mul_ps(gv, sg), _mm512_loadu_ps(u + i)));
    }
}

KB_TARGET_MOE512 static void mf_quantize_act(const mf_job *j, int64_t p, const float *a, int64_t f0,
                                             int64_t f1)
{
    const int fmt = j->f.format, G = j->f.group;
    switch (fmt * 1000 + G) {
    case MOE_FMT_A4 * 1000 + 32: mf_quantize(MOE_FMT_A4, 32, &j->av, p, a, f0, f1); break;
    case MOE_FMT_A4 * 1000 + 64: mf_quantize(MOE_FMT_A4, 64, &j->av, p, a, f0, f1); break;
    case MOE_FMT_A4 * 1000 + 128: mf_quantize(MOE_FMT_A4, 128, &j->av, p, a, f0, f1); break;
    case MOE_FMT_A8 * 1000 + 32: mf_quantize(MOE_FMT_A8, 32, &j->av, p, a, f0, f1); break;
    case MOE_FMT_A8 * 1000 + 64: mf_quantize(MOE_FMT_A8, 64, &j->av, p, a, f0, f1); break;
    case MOE_FMT_A8 * 1000 + 128: mf_quantize(MOE_FMT_A8, 128, &j->av, p, a, f0, f1); break;
    default: mf_quantize(MOE_FMT_Q4_0, 32, &j->av, p, a, f0, f1); break;
    }
    if (f1 == j->f.ffn)
        mf_pad(fmt, &j->av, p, f1, f1 / G);
}

/* Phase 1, item i: expert used[i / nrb1], ffn rows of block i % nrb1, all its pairs. */
KB_TARGET_MOE512 static void mf_item1(const mf_job *j, int64_t i)
{
    const kb_moe_ffn *f = &j->f;
    const int e = j->used[i / j->nrb1];
    const int64_t f0 = (i % j->nrb1) * MF_RB1, f1 = f0 + MF_RB1 < f->ffn ? f0 + MF_RB1 : f->ffn;
    const int32_t *pl = j->plist + j->eoff[e];
    const int64_t np = j->eoff[e + 1] - j->eoff[e];
    float g[MF_TMAX][MF_RB1], u[MF_TMAX][MF_RB1], a[MF_RB1], r0[MF_TMAX], r1[MF_TMAX];
    for (int64_t p0 = 0; p0 < np; p0 += MF_TMAX) {
        const int T = np - p0 < MF_TMAX ? (int)(np - p0) : MF_TMAX;
        int64_t vi[MF_TMAX];
        for (int t = 0; t < T; t++)
            vi[t] = pl[p0 + t] / f->S; /* the token: its x */
        for (int64_t r = f0; r < f1; r++) {
            j->dot_h[T - 1](mf_wrow(j, e, f->off_gate, r, f->rb_h),
                            mf_grow(j->sc, j, e, f->goff_gate, r, f->ng_h),
                            mf_grow(j->bi, j, e, f->goff_gate, r, f->ng_h), f->hidden, &j->xv, vi, r0);
            j->dot_h[T - 1](mf_wrow(j, e, f->off_up, r, f->rb_h),
                            mf_grow(j->sc, j, e, f->goff_up, r, f->ng_h),
                            mf_grow(j->bi, j, e, f->goff_up, r, f->ng_h), f->hidden, &j->xv, vi, r1);
            for (int t = 0; t < T; t++) {
                g[t][r - f0] = r0[t];
                u[t][r - f0] = r1[t];
            }
        }
        for (int t = 0; t < T; t++) {
            mf_swiglu(g[t], u[t], f1 - f0, a);
            mf_quantize_act(j, pl[p0 + t], a, f0, f1);
        }
    }
}

/* Phase 2, item i: hidden rows [i rb2, (i + 1) rb2) of every token's y. */
KB_TARGET_MOE512 static void mf_item2(const mf_job *j, int64_t i)
{
    const kb_moe_ffn *f = &j->f;
    const int64_t h0 = i * j->rb2, h1 = h0 + j->rb2 < f->hidden ? h0 + j->rb2 : f->hidden;
    for (int64_t t = 0; t < f->tokens; t++)
        memcpy(j->y + t * f->hidden + h0, j->h + t * f->hidden + h0, sizeof(float) * (size_t)(h1 - h0));
    for (int k = 0; k < j->nused; k++) {
        const int e = j->used[k];
        const int32_t *pl = j->plist + j->eoff[e];
        const int64_t np = j->eoff[e + 1] - j->eoff[e];
        for (int64_t p0 = 0; p0 < np; p0 += MF_TMAX) {
            const int T = np - p0 < MF_TMAX ? (int)(np - p0) : MF_TMAX;
            int64_t vi[MF_TMAX];
            float res[MF_TMAX];
            for (int t = 0; t < T; t++)
                vi[t] = pl[p0 + t];
            for (int64_t r = h0; r < h1; r++) {
                j->dot_f[T - 1](mf_wrow(j, e, f->off_down, r, f->rb_f),
                                mf_grow(j->sc, j, e, f->goff_down, r, f->ng_f),
                                mf_grow(j->bi, j, e, f->goff_down, r, f->ng_f), f->ffn, &j->av, vi,
                                res);
                for (int t = 0; t < T; t++)
                    j->y[vi[t] / f->S * f->hidden + r] += j->pw[vi[t]] * res[t];
            }
        }
    }
}

static void mf_task0(void *arg, int tid, int nthreads)
{
    mf_job *j = arg;
    int64_t lo, hi;
    kb_split(j->f.tokens, 1, tid, nthreads, &lo, &hi);
    mf_prep_tokens(j, lo, hi);
}

static void mf_task1(void *arg, int tid, int nthreads)
{
    mf_job *j = arg;
    (void)tid;
    (void)nthreads;
    for (int64_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n1;)
        mf_item1(j, i);
}

static void mf_task2(void *arg, int tid, int nthreads)
{
    mf_job *j = arg;
    (void)tid;
    (void)nthreads;
    for (int64_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n2;)
        mf_item2(j, i);
}

static inline void mf_pool_run(kb_pool *pool, kb_task_fn fn, void *arg)
{
    if (pool)
        kb_pool_run(pool, fn, arg);
    else
        fn(arg, 0, 1);
}

/* The whole call: inputs as moe_ffn's (ids, weights from the routing), y out. */
static inline void mf_run(const kb_moe_ffn *f, const float *x, const float *h, const int32_t *ids,
                          const float *wr, const uint8_t *W, const uint16_t *sc,
                          const uint16_t *bi, const float *sg, float *y, kb_pool *pool)
{
    mf_job j;
    memset(&j, 0, sizeof j);
    j.f = *f;
    j.x = x;
    j.h = h;
    j.ids = ids;
    j.wr = wr;
    j.W = W;
    j.sc = sc;
    j.bi = bi;
    j.sg = sg;
    j.y = y;
    j.P = f->tokens * f->S;
    mf_vec_dims(&j.xv, f->hidden, f->group);
    mf_vec_dims(&j.av, f->ffn, f->group);
    const size_t xb = mf_round((int64_t)mf_vec_bytes(&j.xv, f->tokens), 64);
    const size_t ab = mf_round((int64_t)mf_vec_bytes(&j.av, j.P), 64);
    const size_t ib = sizeof(int32_t) * (size_t)(2 * (f->NE + 1) + j.P) + sizeof(float) * (size_t)j.P;
    char *mem = kb_scratch(xb + ab + ib);
    mf_vec_place(&j.xv, mem, f->tokens);
    mf_vec_place(&j.av, mem + xb, j.P);
    j.eoff = (int32_t *)(mem + xb + ab);
    j.used = j.eoff + f->NE + 1;
    j.plist = j.used + f->NE + 1;
    j.pw = (float *)(j.plist + j.P);
    /* pairs by expert (counting sort, stable: tokens ascending within an expert) */
    memset(j.eoff, 0, sizeof(int32_t) * (size_t)(f->NE + 1));
    for (int64_t p = 0; p < j.P; p++) {
        const int s = (int)(p % f->S);
        const int e = s < f->K ? ids[p / f->S * f->K + s] : f->E;
        j.eoff[e + 1]++;
        if (s < f->K)
            j.pw[p] = wr[p / f->S * f->K + s];
    }
    for (int e = 0; e < f->NE; e++) {
        if (j.eoff[e + 1])
            j.used[j.nused++] = e;
        j.eoff[e + 1] += j.eoff[e];
    }
    for (int64_t p = 0; p < j.P; p++) { /* eoff[e] serves as e's fill cursor */
        const int s = (int)(p % f->S);
        const int e = s < f->K ? ids[p / f->S * f->K + s] : f->E;
        j.plist[j.eoff[e]++] = (int32_t)p; /* eoff[e] moves to the next expert's start */
    }
    for (int e = f->NE; e > 0; e--) /* and back */
        j.eoff[e] = j.eoff[e - 1];
    j.eoff[0] = 0;
    mf_pick_dots(f, j.dot_h);
    mf_pick_dots(f, j.dot_f);
    j.nrb1 = (f->ffn + MF_RB1 - 1) / MF_RB1;
    j.n1 = j.nused * j.nrb1;
    /* phase-2 blocks: 64 rows for decode (many items: balance); 256 for prefill (each item
     * reads every pair's activations once) */
    j.rb2 = f->tokens > 16 ? 256 : 64;
    j.n2 = (f->hidden + j.rb2 - 1) / j.rb2;
    if (f->tokens < 8)
        mf_prep_tokens(&j, 0, f->tokens);
    else
        mf_pool_run(pool, mf_task0, &j);
    atomic_store(&j.next, 0);
    mf_pool_run(pool, mf_task1, &j);
    atomic_store(&j.next, 0);
    mf_pool_run(pool, mf_task2, &j);
}

#endif
