/* mla_decode, AVX-512 (F, BW, VL) + F16C, f32 arithmetic: the absorbed form, split over the
 * cache, all heads against each cache tile (the latent is read once per step, whatever the
 * head count). One call, all inside the timed run:
 *   A. absorb: q'[m] = W_UK[h]^T q_nope[m] for every row m = i * H + h (query i, head h),
 *      scaled by s * log2(e) (scores in log2 units), stored with q_pe as QT[R + rope][Mp]:
 *      rows in the 16 lanes of a vector, Mp = M rounded up to 16 (the extra rows are 0);
 *   B. split: threads claim chunks of positions (an atomic counter) and fold them into one
 *      online-softmax state of their own (m, l per row, OT[R][Mp] = sum_t 2^(s_t - m) c_t).
 *      Per tile of NT positions: the cache rows [c ; k_pe] to f32 once (CT[NT][R + rope]),
 *      S = CT QT (a small GEMM: 8 positions x 3 row vectors per micro-tile), the masks (past
 *      the tile's end, causal among the n_q queries), the softmax step with a lazy rescale
 *      (the reference max moves only when a score exceeds it by TH: weights <= 2^TH, and OT is
 *      rescaled only then), OT += CT^T P (8 latent elements x 3 row vectors per micro-tile);
 *   C. merge the threads' states (flash decoding), normalize, and project: out = W_UV ov.
 * The arithmetic intensity is ~2 * heads * n_q flops per cache element (2 * 128 for scores
 * and sum, per byte of bf16): at 128 heads this kernel is bound by the FMA rate, not memory. */
#include <stdatomic.h>
#include <string.h>

#include "mla_common.h"
#include "mla_x86.h"

#define NT 64          /* positions per tile */
#define MT 8           /* positions per score micro-tile */
#define RB 8           /* latent elements per P V micro-tile */
#define MV_MAX 3       /* row vectors per micro-tile */
#define TH 8.0f        /* lazy-rescale slack (log2 units) */
#define CHUNK_TILES 8  /* tiles per claimed chunk at most */

typedef struct mla_job {
    kb_mla_shape s;
    int64_t M, Mp, nv, K; /* rows, rows padded to 16, row vectors, R + rope */
    const float *qn, *qpe;
    const uint16_t *c, *kpe;
    const void *wuk, *wuv;
    float *out;
    float qscale; /* s * log2(e) */
    float *qt;    /* [K][Mp] */
    float *st;    /* per thread: m[Mp], l[Mp], OT[R][Mp], CT[NT][K], S[NT][Mp] */
    int64_t st_len;
    float *ov; /* [Mp][R]: merged, normalized */
    int64_t chunk_len, nchunk;
    _Atomic int64_t next;
} mla_job;

/* ---- A: absorb ---------------------------------------------------------------------------- */

/* q' of the rows of head h (all queries), 64 latent elements at a time (4 vectors x n_q
 * accumulators), scattered into the row lanes of QT. */
KB_TARGET_AVX512 static void absorb_head(const mla_job *J, int64_t h)
{
    const int64_t H = J->s.H, R = J->s.R, nq = J->s.n_q, Mp = J->Mp;
    const int wb = J->s.w_bf16;
    const int64_t w0 = h * MLA_NOPE * R; /* element offset of W_UK[h] */
    float tmp[16] __attribute__((aligned(64)));
    for (int64_t r0 = 0; r0 < R; r0 += 64) {
        __m512 acc[MLA_MAX_NQ][4];
        for (int i = 0; i < MLA_MAX_NQ; i++)
            for (int j = 0; j < 4; j++)
                acc[i][j] = _mm512_setzero_ps();
        for (int64_t d = 0; d < MLA_NOPE; d++) {
            __m512 w[4];
            for (int j = 0; j < 4; j++)
                w[j] = kb_mla_ldw(J->wuk, w0 + d * R + r0 + 16 * j, wb);
            for (int64_t i = 0; i < nq; i++) {
                const __m512 q = _mm512_set1_ps(J->qn[(i * H + h) * MLA_NOPE + d]);
                for (int j = 0; j < 4; j++)
                    acc[i][j] = _mm512_fmadd_ps(q, w[j], acc[i][j]);
            }
        }
        for (int64_t i = 0; i < nq; i++)
            for (int j = 0; j < 4; j++) {
                _mm512_store_ps(tmp, _mm512_mul_ps(acc[i][j], _mm512_set1_ps(J->qscale)));
                for (int e = 0; e < 16; e++)
                    J->qt[(r0 + 16 * j + e) * Mp + i * H + h] = tmp[e];
            }
    }
    for (int64_t i = 0; i < nq; i++)
        for (int64_t j = 0; j < J->s.rope; j++)
            J->qt[(R + j) * Mp + i * H + h] = J->qpe[(i * H + h) * J->s.rope + j] * J->qscale;
}

static void task_absorb(void *arg, int tid, int n)
{
    mla_job *J = arg;
    int64_t h0, h1;
    kb_split(J->s.H, 1, tid, n, &h0, &h1);
    for (int64_t h = h0; h < h1; h++)
        absorb_head(J, h);
    if (tid == 0) /* the padding rows score 0 (their outputs are never written) */
        for (int64_t k = 0; k < J->K; k++)
            for (int64_t m = J->M; m < J->Mp; m++)
                J->qt[k * J->Mp + m] = 0.0f;
}

/* ---- B: split over the cache ---------------------------------------------------------------- */

/* S[MT][MV vectors] = CT rows [MT][K] x QT[K][MV vectors] */
KB_TARGET_AVX512 KB_INLINE void scores_mk(const float *ct, int64_t K, const float *qt, int64_t Mp,
                                          float *S, const int MV)
{
    __m512 acc[MT][MV_MAX];
#pragma GCC unroll 8
    for (int t = 0; t < MT; t++)
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            acc[t][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        __m512 q[MV_MAX];
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            q[v] = _mm512_load_ps(qt + k * Mp + 16 * v);
#pragma GCC unroll 8
        for (int t = 0; t < MT; t++) {
            const __m512 b = _mm512_set1_ps(ct[t * K + k]);
#pragma GCC unroll 3
            for (int v = 0; v < MV; v++)
                acc[t][v] = _mm512_fmadd_ps(b, q[v], acc[t][v]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < MT; t++)
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            _mm512_store_ps(S + t * Mp + 16 * v, acc[t][v]);
}

/* OT[RB rows][MV vectors] += sum_t CT[t][RB elements] P[t][MV vectors], t < nt */
KB_TARGET_AVX512 KB_INLINE void pv_mk(const float *ct, int64_t K, const float *P, int64_t Mp,
                                      float *ot, int nt, const int MV)
{
    __m512 acc[RB][MV_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < RB; j++)
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            acc[j][v] = _mm512_load_ps(ot + j * Mp + 16 * v);
    for (int t = 0; t < nt; t++) {
        __m512 p[MV_MAX];
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            p[v] = _mm512_load_ps(P + t * Mp + 16 * v);
#pragma GCC unroll 8
        for (int j = 0; j < RB; j++) {
            const __m512 b = _mm512_set1_ps(ct[t * K + j]);
#pragma GCC unroll 3
            for (int v = 0; v < MV; v++)
                acc[j][v] = _mm512_fmadd_ps(b, p[v], acc[j][v]);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < RB; j++)
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            _mm512_store_ps(ot + j * Mp + 16 * v, acc[j][v]);
}

/* The micro-tiles as functions of one row-vector count each (MV a constant inside). */
#define MLA_MK(MV)                                                                              \
    KB_TARGET_AVX512 static void scores_##MV(const float *ct, int64_t K, const float *qt,     \
                                             int64_t Mp, float *S)                             \
    {                                                                                           \
        scores_mk(ct, K, qt, Mp, S, MV);                                                        \
    }                                                                                           \
    KB_TARGET_AVX512 static void pv_##MV(const float *ct, int64_t K, const float *P, int64_t Mp, \
                                         float *ot, int nt)                                     \
    {                                                                                           \
        pv_mk(ct, K, P, Mp, ot, nt, MV);                                                        \
    }
MLA_MK(1)
MLA_MK(2)
MLA_MK(3)
typedef void (*scores_fn)(const float *, int64_t, const float *, int64_t, float *);
typedef void (*pv_fn)(const float *, int64_t, const float *, int64_t, float *, int);
static const scores_fn SCORES[4] = {NULL, scores_1, scores_2, scores_3};
static const pv_fn PV[4] = {NULL, pv_1, pv_2, pv_3};

/* The online-softmax step of row vector v over the tile's scores S[0 .. ntp) (in place: they
 * become the weights); rescales OT's column of v when the reference max moves. */
KB_TARGET_AVX512 static void softmax_step(const mla_job *J, float *m, float *l, float *OT,
                                          float *S, int ntp, int64_t v)
{
    const int64_t Mp = J->Mp, R = J->s.R;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mx = ninf;
    for (int t = 0; t < ntp; t++)
        mx = _mm512_max_ps(mx, _mm512_load_ps(S + t * Mp + 16 * v));
    __m512 mo = _mm512_load_ps(m + 16 * v), ls = _mm512_load_ps(l + 16 * v);
    /* lanes whose max rose by more than TH (any finite score, while the max is -inf) */
    const __mmask16 up = _mm512_cmp_ps_mask(mx, _mm512_add_ps(mo, _mm512_set1_ps(TH)), _CMP_GT_OQ);
    if (up) {
        const __mmask16 was = _mm512_cmp_ps_mask(mo, ninf, _CMP_NEQ_OQ); /* old max finite */
        const __m512 alpha = _mm512_mask_mov_ps(
            _mm512_set1_ps(1.0f), up,
            _mm512_maskz_mov_ps(was, kb_mla_exp2(_mm512_sub_ps(mo, _mm512_max_ps(mo, mx)))));
        mo = _mm512_mask_max_ps(mo, up, mo, mx);
        ls = _mm512_mul_ps(ls, alpha);
        for (int64_t r = 0; r < R; r++) {
            float *o = OT + r * Mp + 16 * v;
            _mm512_store_ps(o, _mm512_mul_ps(_mm512_load_ps(o), alpha));
        }
        _mm512_store_ps(m + 16 * v, mo);
    }
    /* subtract 0 while the max is -inf (every score so far masked): 2^(-inf - 0) = 0 */
    const __m512 mu = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mo, ninf, _CMP_NEQ_OQ), mo);
    __m512 ps = _mm512_setzero_ps();
    for (int t = 0; t < ntp; t++) {
        const __m512 p = kb_mla_exp2(_mm512_sub_ps(_mm512_load_ps(S + t * Mp + 16 * v), mu));
        _mm512_store_ps(S + t * Mp + 16 * v, p);
        ps = _mm512_add_ps(ps, p);
    }
    _mm512_store_ps(l + 16 * v, _mm512_add_ps(ls, ps));
}

/* Positions [j0, j0 + nt) into the state st of the calling thread. */
KB_TARGET_AVX512 static void tile(const mla_job *J, float *st, int64_t j0, int nt)
{
    const int64_t Mp = J->Mp, R = J->s.R, rope = J->s.rope, K = J->K, nv = J->nv;
    const int f16 = J->s.cache_f16;
    float *m = st, *l = st + Mp, *OT = st + 2 * Mp, *CT = OT + R * Mp, *S = CT + NT * K;
    const int ntp = (nt + MT - 1) / MT * MT;
    /* the cache rows as f32, once for all heads; rows past the end 0 */
    for (int t = 0; t < nt; t++) {
        const uint16_t *c = J->c + (j0 + t) * R, *kp = J->kpe + (j0 + t) * rope;
        float *d = CT + t * K;
        for (int64_t r = 0; r < R; r += 16)
            _mm512_storeu_ps(d + r, kb_mla_ld16(c + r, f16));
        for (int64_t r = 0; r < rope; r += 16)
            _mm512_storeu_ps(d + R + r, kb_mla_ld16(kp + r, f16));
    }
    if (ntp > nt)
        memset(CT + nt * K, 0, sizeof(float) * (size_t)((ntp - nt) * K));
    /* S = CT QT */
    for (int t = 0; t < ntp; t += MT)
        for (int64_t v = 0; v < nv; v += MV_MAX) {
            const int mv = nv - v < MV_MAX ? (int)(nv - v) : MV_MAX;
            SCORES[mv](CT + t * K, K, J->qt + 16 * v, Mp, S + t * Mp + 16 * v);
        }
    /* masks: positions past the tile's end; position pos hidden from queries i < pos - p0
     * (query i attends 0 .. p0 + i, p0 = T - n_q), that is from rows m < (pos - p0) * H */
    for (int t = nt; t < ntp; t++)
        for (int64_t k = 0; k < Mp; k++)
            S[t * Mp + k] = -INFINITY;
    const int64_t p0 = J->s.T - J->s.n_q;
    for (int t = 0; t < nt; t++)
        for (int64_t k = 0; k < (j0 + t - p0) * J->s.H; k++)
            S[t * Mp + k] = -INFINITY;
    for (int64_t v = 0; v < nv; v++)
        softmax_step(J, m, l, OT, S, ntp, v);
    /* OT += CT^T P */
    for (int64_t r = 0; r < R; r += RB)
        for (int64_t v = 0; v < nv; v += MV_MAX) {
            const int mv = nv - v < MV_MAX ? (int)(nv - v) : MV_MAX;
            PV[mv](CT + r, K, S + 16 * v, Mp, OT + r * Mp + 16 * v, nt);
        }
}

static void task_split(void *arg, int tid, int n)
{
    mla_job *J = arg;
    (void)n;
    float *st = J->st + tid * J->st_len;
    const int64_t Mp = J->Mp;
    for (int64_t k = 0; k < Mp; k++) {
        st[k] = -INFINITY;
        st[Mp + k] = 0.0f;
    }
    memset(st + 2 * Mp, 0, sizeof(float) * (size_t)(J->s.R * Mp));
    for (;;) {
        const int64_t ch = atomic_fetch_add_explicit(&J->next, 1, memory_order_relaxed);
        if (ch >= J->nchunk)
            break;
        const int64_t a = ch * J->chunk_len;
        const int64_t b = a + J->chunk_len < J->s.T ? a + J->chunk_len : J->s.T;
        for (int64_t j = a; j < b; j += NT)
            tile(J, st, j, b - j < NT ? (int)(b - j) : NT);
    }
}

/* ---- C: merge and project ---------------------------------------------------------------- */

/* Row vector v of every thread's state merged: ov[m][r] = sum_u w_u OT_u[r][m] / sum_u w_u l_u,
 * w_u = 2^(m_u - max m); a state that saw nothing has m = -inf and weighs 0. */
KB_TARGET_AVX512 static void merge_vec(const mla_job *J, int nthr, int64_t v)
{
    const int64_t Mp = J->Mp, R = J->s.R;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mx = ninf;
    for (int u = 0; u < nthr; u++)
        mx = _mm512_max_ps(mx, _mm512_load_ps(J->st + u * J->st_len + 16 * v));
    /* each state's weight replaces its m (only this thread reads vector v of the states) */
    __m512 L = _mm512_setzero_ps();
    for (int u = 0; u < nthr; u++) {
        float *st = J->st + u * J->st_len;
        const __m512 mu = _mm512_load_ps(st + 16 * v);
        const __m512 w = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(mu, ninf, _CMP_NEQ_OQ),
                                             kb_mla_exp2(_mm512_sub_ps(mu, mx)));
        _mm512_store_ps(st + 16 * v, w);
        L = _mm512_fmadd_ps(w, _mm512_load_ps(st + Mp + 16 * v), L);
    }
    /* 1 / L; a row of no positions (padding only) gives 0 */
    const __m512 inv = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(L, _mm512_setzero_ps(), _CMP_GT_OQ),
                                           _mm512_set1_ps(1.0f), L);
    float tmp[16] __attribute__((aligned(64)));
    const int64_t lanes = J->M - 16 * v < 16 ? J->M - 16 * v : 16;
    for (int64_t r = 0; r < R; r++) {
        __m512 o = _mm512_setzero_ps();
        for (int u = 0; u < nthr; u++) {
            const float *st = J->st + u * J->st_len;
            o = _mm512_fmadd_ps(_mm512_load_ps(st + 16 * v),
                                _mm512_load_ps(st + 2 * Mp + r * Mp + 16 * v), o);
        }
        o = _mm512_mul_ps(o, inv);
        _mm512_store_ps(tmp, o);
        for (int64_t e = 0; e < lanes; e++)
            J->ov[(16 * v + e) * R + r] = tmp[e];
    }
}

static void task_merge(void *arg, int tid, int n)
{
    mla_job *J = arg;
    int64_t v0, v1;
    kb_split(J->nv, 1, tid, n, &v0, &v1);
    for (int64_t v = v0; v < v1; v++)
        merge_vec(J, n, v);
}

/* out[i][h][v] = W_UV[h][v] . ov[i * H + h], 4 value rows x n_q queries at a time. */
KB_TARGET_AVX512 static void project_head(const mla_job *J, int64_t h)
{
    const int64_t H = J->s.H, R = J->s.R, nq = J->s.n_q, vd = J->s.v_dim;
    const int wb = J->s.w_bf16;
    for (int64_t v0 = 0; v0 < vd; v0 += 4) {
        __m512 acc[4][MLA_MAX_NQ];
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < MLA_MAX_NQ; i++)
                acc[j][i] = _mm512_setzero_ps();
        for (int64_t r = 0; r < R; r += 16) {
            __m512 o[MLA_MAX_NQ];
            for (int64_t i = 0; i < nq; i++)
                o[i] = _mm512_loadu_ps(J->ov + (i * H + h) * R + r);
            for (int j = 0; j < 4; j++) {
                const __m512 w = kb_mla_ldw(J->wuv, ((h * vd) + v0 + j) * R + r, wb);
                for (int64_t i = 0; i < nq; i++)
                    acc[j][i] = _mm512_fmadd_ps(w, o[i], acc[j][i]);
            }
        }
        for (int j = 0; j < 4; j++)
            for (int64_t i = 0; i < nq; i++)
                J->out[(i * H + h) * vd + v0 + j] = _mm512_reduce_add_ps(acc[j][i]);
    }
}

static void task_project(void *arg, int tid, int n)
{
    mla_job *J = arg;
    int64_t h0, h1;
    kb_split(J->s.H, 1, tid, n, &h0, &h1);
    for (int64_t h = h0; h < h1; h++)
        project_head(J, h);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    mla_job J;
    kb_mla_shape_of(c->p, &J.s);
    const int n = kb_pool_size(pool);
    J.M = J.s.n_q * J.s.H;
    J.Mp = (J.M + 15) / 16 * 16;
    J.nv = J.Mp / 16;
    J.K = J.s.R + J.s.rope;
    J.qn = in[MLA_IN_QNOPE].data;
    J.qpe = in[MLA_IN_QPE].data;
    J.c = in[MLA_IN_C].data;
    J.kpe = in[MLA_IN_KPE].data;
    J.wuk = in[MLA_IN_WUK].data;
    J.wuv = in[MLA_IN_WUV].data;
    J.out = out[MLA_OUT].data;
    J.qscale = (float)(kb_mla_scale(&J.s) * 1.4426950408889634);
    /* chunks: whole tiles, about 4 per thread (the two cores of a shared VM run at different
     * speeds: claiming evens that out), at most CHUNK_TILES tiles */
    const int64_t tiles = (J.s.T + NT - 1) / NT;
    int64_t ct = tiles / (4 * n);
    ct = ct < 1 ? 1 : ct > CHUNK_TILES ? CHUNK_TILES : ct;
    J.chunk_len = ct * NT;
    J.nchunk = (J.s.T + J.chunk_len - 1) / J.chunk_len;
    atomic_init(&J.next, 0);
    J.st_len = 2 * J.Mp + J.s.R * J.Mp + NT * J.K + NT * J.Mp;
    const size_t floats = (size_t)(J.K * J.Mp + n * J.st_len + J.Mp * J.s.R);
    float *buf = kb_scratch(floats * sizeof(float));
    J.qt = buf;
    J.st = J.qt + J.K * J.Mp;
    J.ov = J.st + n * J.st_len;
    kb_pool_run(pool, task_absorb, &J);
    kb_pool_run(pool, task_split, &J);
    kb_pool_run(pool, task_merge, &J);
    kb_pool_run(pool, task_project, &J);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_mla_decode_avx512 = {
    .family = "mla_decode",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
