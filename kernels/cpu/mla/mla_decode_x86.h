/* What the AVX-512 mla_decode kernels share (mla_decode_avx512.c: f32 FMA, and
 * mla_decode_avx512bf16.c: bf16 dot products); each brings its tile step. One call, all inside
 * the timed run:
 *   A. absorb: q'[m] = W_UK[h]^T q_nope[m] for every row m = i * H + h (query i, head h), in
 *      f32, scaled by s * log2(e) (scores in log2 units), stored with q_pe as QT[R + rope][Mp]
 *      (f32) or as bf16 pairs QT2[(R + rope) / 2][Mp] (element k in the low half, k + 1 in the
 *      high half of a 32-bit word): rows in the 16 lanes of a vector, Mp = M rounded up to 16
 *      (the extra rows are 0);
 *   B. split: threads claim chunks of positions (an atomic counter) and fold them into one
 *      online-softmax state of their own (m, l per row, OT[R][Mp] = sum_t 2^(s_t - m) c_t),
 *      a tile of MLA_NT positions at a time (the kernel's tile function: scores of all rows
 *      against the tile as a small GEMM, masks, kb_mla_softmax_step, OT += C^T P);
 *   C. merge the threads' states (flash decoding), normalize, and project: out = W_UV ov.
 * The arithmetic intensity is ~2 * heads * n_q flops per cache element (2 * 128 for scores
 * and sum, per byte of bf16): at 128 heads these kernels are bound by the FMA (or bf16 dot)
 * rate, not by memory. */
#ifndef KB_MLA_DECODE_X86_H
#define KB_MLA_DECODE_X86_H

#include <stdatomic.h>
#include <string.h>

#include "mla_common.h"
#include "mla_x86.h"

#define MLA_NT 64         /* positions per tile (64 beat 32 by ~4% at T = 8192, 1 thread) */
#define MLA_TH 8.0f       /* lazy-rescale slack (log2 units) */
#define MLA_CHUNK_TILES 8 /* tiles per claimed chunk at most */

typedef struct mla_job mla_job;
/* Positions [j0, j0 + nt) into the state st of the calling thread. */
typedef void (*kb_mla_tile_fn)(const mla_job *J, float *st, int64_t j0, int nt);

struct mla_job {
    kb_mla_shape s;
    int64_t M, Mp, nv, K; /* rows, rows padded to 16, row vectors, R + rope */
    const float *qn, *qpe;
    const uint16_t *c, *kpe;
    const void *wuk, *wuv;
    float *out;
    float qscale; /* s * log2(e) */
    int qt_bf16;  /* QT as bf16 pairs */
    void *qt;     /* [K][Mp] f32, or [K / 2][Mp] bf16 pairs */
    float *st;    /* per thread: m[Mp], l[Mp], OT[R][Mp], then the tile function's scratch */
    int64_t st_len;
    float *ov; /* [Mp][R]: merged, normalized */
    int64_t chunk_len, nchunk;
    kb_mla_tile_fn tile;
    _Atomic int64_t next;
};

/* ---- A: absorb ---------------------------------------------------------------------------- */

/* q' of the rows of head h (all NQ queries): W_UK[h] streamed in order, 4 of its rows at a time
 * into f32 accumulators qa[NQ][R] in L1 (sequential reads the prefetcher follows: walking
 * down columns of W_UK, one 1-KiB row step per load, was latency-bound at a third of the read
 * bandwidth), then scaled and, with q_pe, scattered into the row lanes of QT. */
KB_TARGET_AVX512 KB_INLINE void kb_mla_absorb_nq(const mla_job *J, int64_t h, const int NQ)
{
    const int64_t H = J->s.H, R = J->s.R, Mp = J->Mp, rope = J->s.rope;
    const int wb = J->s.w_bf16;
    const int64_t w0 = h * MLA_NOPE * R; /* element offset of W_UK[h] */
    float qa[MLA_MAX_NQ * 1024] __attribute__((aligned(64))); /* R <= 1024 */
    memset(qa, 0, sizeof(float) * (size_t)(NQ * R));
    for (int64_t d = 0; d < MLA_NOPE; d += 4) {
        __m512 qb[MLA_MAX_NQ][4];
        for (int i = 0; i < NQ; i++)
            for (int k = 0; k < 4; k++)
                qb[i][k] = _mm512_set1_ps(J->qn[(i * H + h) * MLA_NOPE + d + k]);
        for (int64_t r = 0; r < R; r += 16) {
            __m512 w[4];
            for (int k = 0; k < 4; k++)
                w[k] = kb_mla_ldw(J->wuk, w0 + (d + k) * R + r, wb);
            for (int i = 0; i < NQ; i++) {
                __m512 a = _mm512_load_ps(qa + i * R + r);
                for (int k = 0; k < 4; k++)
                    a = _mm512_fmadd_ps(qb[i][k], w[k], a);
                _mm512_store_ps(qa + i * R + r, a);
            }
        }
    }
    float *qt = J->qt;
    uint16_t *q2 = J->qt;
    float tmp[16] __attribute__((aligned(64)));
    for (int i = 0; i < NQ; i++) {
        const int64_t m = i * H + h;
        for (int64_t k0 = 0; k0 < R + rope; k0 += 16) {
            const __m512 x = k0 < R ? _mm512_load_ps(qa + i * R + k0)
                                    : _mm512_loadu_ps(J->qpe + m * rope + k0 - R);
            const __m512 y = _mm512_mul_ps(x, _mm512_set1_ps(J->qscale));
            if (J->qt_bf16) {
                _mm256_store_si256((__m256i *)tmp, kb_mla_to_bf16(y));
                const uint16_t *b = (const uint16_t *)tmp;
                for (int e = 0; e < 16; e++)
                    q2[(((k0 + e) / 2) * Mp + m) * 2 + (k0 + e) % 2] = b[e];
            } else {
                _mm512_store_ps(tmp, y);
                for (int e = 0; e < 16; e++)
                    qt[(k0 + e) * Mp + m] = tmp[e];
            }
        }
    }
}

/* The query count as a constant inside: accumulators in registers. */
KB_TARGET_AVX512 static void kb_mla_absorb_head(const mla_job *J, int64_t h)
{
    switch (J->s.n_q) {
    case 1: kb_mla_absorb_nq(J, h, 1); break;
    case 2: kb_mla_absorb_nq(J, h, 2); break;
    case 3: kb_mla_absorb_nq(J, h, 3); break;
    default: kb_mla_absorb_nq(J, h, 4); break;
    }
}

static void kb_mla_task_absorb(void *arg, int tid, int n)
{
    mla_job *J = arg;
    int64_t h0, h1;
    kb_split(J->s.H, 1, tid, n, &h0, &h1);
    for (int64_t h = h0; h < h1; h++)
        kb_mla_absorb_head(J, h);
    if (tid == 0) /* the padding rows score 0 (their outputs are never written) */
        for (int64_t k = 0; k < J->K; k++)
            for (int64_t m = J->M; m < J->Mp; m++) {
                if (J->qt_bf16)
                    ((uint16_t *)J->qt)[((k / 2) * J->Mp + m) * 2 + k % 2] = 0;
                else
                    ((float *)J->qt)[k * J->Mp + m] = 0.0f;
            }
}

/* ---- B: split over the cache -------------------------------------------------------------- */

/* The online-softmax step of row vector v over the tile's scores S[0 .. ntp) (rows Mp apart;
 * in place: they become the weights); rescales OT's column of v when the reference max
 * moves. */
KB_TARGET_AVX512 static void kb_mla_softmax_step(const mla_job *J, float *m, float *l,
                                                 float *OT, float *S, int ntp, int64_t v)
{
    const int64_t Mp = J->Mp, R = J->s.R;
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mx = ninf;
    for (int t = 0; t < ntp; t++)
        mx = _mm512_max_ps(mx, _mm512_load_ps(S + t * Mp + 16 * v));
    __m512 mo = _mm512_load_ps(m + 16 * v), ls = _mm512_load_ps(l + 16 * v);
    /* lanes whose max rose by more than TH (any finite score, while the max is -inf) */
    const __mmask16 up =
        _mm512_cmp_ps_mask(mx, _mm512_add_ps(mo, _mm512_set1_ps(MLA_TH)), _CMP_GT_OQ);
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

/* The masks of a tile's scores S[0 .. ntp) (rows Mp apart): positions past the tile's end
 * (nt), and position pos hidden from queries i < pos - p0 (query i attends 0 .. p0 + i,
 * p0 = T - n_q), that is from rows m < (pos - p0) * H. */
static inline void kb_mla_mask(const mla_job *J, float *S, int64_t j0, int nt, int ntp)
{
    const int64_t Mp = J->Mp, p0 = J->s.T - J->s.n_q;
    for (int t = nt; t < ntp; t++)
        for (int64_t k = 0; k < Mp; k++)
            S[t * Mp + k] = -INFINITY;
    for (int t = 0; t < nt; t++)
        for (int64_t k = 0; k < (j0 + t - p0) * J->s.H; k++)
            S[t * Mp + k] = -INFINITY;
}

static void kb_mla_task_split(void *arg, int tid, int n)
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
        for (int64_t j = a; j < b; j += MLA_NT)
            J->tile(J, st, j, b - j < MLA_NT ? (int)(b - j) : MLA_NT);
    }
}

/* ---- C: merge and project ---------------------------------------------------------------- */

/* Row vector v of every thread's state merged: ov[m][r] = sum_u w_u OT_u[r][m] / sum_u w_u l_u,
 * w_u = 2^(m_u - max m); a state that saw nothing has m = -inf and weighs 0. */
KB_TARGET_AVX512 static void kb_mla_merge_vec(const mla_job *J, int nthr, int64_t v)
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

static void kb_mla_task_merge(void *arg, int tid, int n)
{
    mla_job *J = arg;
    int64_t v0, v1;
    kb_split(J->nv, 1, tid, n, &v0, &v1);
    for (int64_t v = v0; v < v1; v++)
        kb_mla_merge_vec(J, n, v);
}

/* out[i][h][v] = W_UV[h][v] . ov[i * H + h], 4 value rows (4 sequential streams) x NQ
 * queries at a time, the accumulators in registers. */
KB_TARGET_AVX512 KB_INLINE void kb_mla_project_nq(const mla_job *J, int64_t h, const int NQ)
{
    const int64_t H = J->s.H, R = J->s.R, vd = J->s.v_dim;
    const int wb = J->s.w_bf16;
    for (int64_t v0 = 0; v0 < vd; v0 += 4) {
        __m512 acc[4][MLA_MAX_NQ];
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < NQ; i++)
                acc[j][i] = _mm512_setzero_ps();
        for (int64_t r = 0; r < R; r += 16) {
            __m512 o[MLA_MAX_NQ];
            for (int i = 0; i < NQ; i++)
                o[i] = _mm512_loadu_ps(J->ov + (i * H + h) * R + r);
            for (int j = 0; j < 4; j++) {
                const __m512 w = kb_mla_ldw(J->wuv, ((h * vd) + v0 + j) * R + r, wb);
                for (int i = 0; i < NQ; i++)
                    acc[j][i] = _mm512_fmadd_ps(w, o[i], acc[j][i]);
            }
        }
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < NQ; i++)
                J->out[(i * H + h) * vd + v0 + j] = _mm512_reduce_add_ps(acc[j][i]);
    }
}

KB_TARGET_AVX512 static void kb_mla_project_head(const mla_job *J, int64_t h)
{
    switch (J->s.n_q) {
    case 1: kb_mla_project_nq(J, h, 1); break;
    case 2: kb_mla_project_nq(J, h, 2); break;
    case 3: kb_mla_project_nq(J, h, 3); break;
    default: kb_mla_project_nq(J, h, 4); break;
    }
}

static void kb_mla_task_project(void *arg, int tid, int n)
{
    mla_job *J = arg;
    int64_t h0, h1;
    kb_split(J->s.H, 1, tid, n, &h0, &h1);
    for (int64_t h = h0; h < h1; h++)
        kb_mla_project_head(J, h);
}

/* A call: the job for the case, scratch for QT, the states (with scratch floats of the tile
 * function per thread, a multiple of 16) and ov, then the four passes. */
static inline void kb_mla_run(const kb_case *c, const kb_tensor *in, kb_tensor *out,
                              kb_pool *pool, kb_mla_tile_fn tile, int qt_bf16,
                              int64_t (*tile_floats)(const mla_job *J))
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
    J.qt_bf16 = qt_bf16;
    J.tile = tile;
    /* chunks: whole tiles, about 4 per thread (the two cores of a shared VM run at different
     * speeds: claiming evens that out), at most MLA_CHUNK_TILES tiles */
    const int64_t tiles = (J.s.T + MLA_NT - 1) / MLA_NT;
    int64_t ct = tiles / (4 * n);
    ct = ct < 1 ? 1 : ct > MLA_CHUNK_TILES ? MLA_CHUNK_TILES : ct;
    J.chunk_len = ct * MLA_NT;
    J.nchunk = (J.s.T + J.chunk_len - 1) / J.chunk_len;
    atomic_init(&J.next, 0);
    J.st_len = 2 * J.Mp + J.s.R * J.Mp + tile_floats(&J);
    const int64_t qt_floats = (qt_bf16 ? J.K / 2 : J.K) * J.Mp;
    const size_t floats = (size_t)(qt_floats + n * J.st_len + J.Mp * J.s.R);
    float *buf = kb_scratch(floats * sizeof(float));
    J.qt = buf;
    J.st = buf + qt_floats;
    J.ov = J.st + n * J.st_len;
    kb_pool_run(pool, kb_mla_task_absorb, &J);
    kb_pool_run(pool, kb_mla_task_split, &J);
    kb_pool_run(pool, kb_mla_task_merge, &J);
    kb_pool_run(pool, kb_mla_task_project, &J);
}

#endif
