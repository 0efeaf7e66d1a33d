/* gdn_prefill, chunkwise-parallel (WY/UT form), AVX-512: the body of the chunk16 and chunk64
 * implementations; the including file defines GC_C (tokens per chunk, a multiple of 16) and
 * GC_IMPL (the kb_impl's symbol) and GC_NAME.
 *
 * Per chunk of C tokens with local index l, decays Gamma_{l,i} = g_{i+1} ... g_l (i <= l) and
 * gamma_l = g_0 ... g_l (from the chunk's start state S0), the recurrence equals
 *     A_{l,i} = beta_l Gamma_{l,i} (k_i . k_l)  (i < l),     M_{l,i} = Gamma_{l,i} (k_i . q_l)  (i <= l)
 *     (I + A) U = B,   B_l = beta_l (v_l - gamma_l S0 k_l)          (U_l = the true delta_l)
 *     o_l = gamma_l S0 q_l + sum_{i<=l} M_{l,i} U_i
 *     S_C = gamma_{C-1} S0 + sum_i Gamma_{C-1,i} U_i k_i^T
 * Every term except the C x C matrices is per state row (value index r), and rows are
 * independent: the kernel works on a transposed state St[j][r] (j key index, r in lanes), so W =
 * S0 K^T, P = S0 Q^T, the forward substitution, o and the state update all run 16 rows per
 * vector with no horizontal sums; o_l lands as contiguous rows of the output.
 *
 * Gamma comes from running products of g, not exp of differences of cumulative log g: a chunk
 * that holds g near 0 then g near 1 has |sum log g| ~ 10^3, whose f32 difference loses 1e-4
 * relative; products lose (l - i) ulp at most, as the recurrence does. There is no log, so no
 * clamp is needed: g = 0 gives exact zeros (a complete reset), never NaN.
 *
 * A chunk shorter than C (the last) is padded with zero k and q rows, beta = 0 and g = 1: its
 * padded U rows are 0, gamma and Gamma's last row equal those of its last real token, and o
 * rows past the end are not stored.
 *
 * Work units are (value head, block of rows); a head is one unit unless there are fewer heads
 * than threads (then its rows split, each part recomputing the C x C matrices). */
#include "gdn_common.h"
#include "gdn_x86.h"

#define GC_LT 4 /* l rows per W/P tile (with 2 row vectors: 16 accumulators for W and P) */
#define GC_JT 8 /* key indices per state-update tile */

typedef struct gc_job {
    const float *q, *k, *v, *g, *beta, *S0;
    float *o, *S1;
    gdn_shape s;
    int64_t split; /* row blocks per head */
    float *scratch;     /* per_thread floats for each worker, 64-byte aligned */
    size_t per_thread;
} gc_job;

/* The thread's scratch, in floats: see gc_unit. */
static size_t gc_scratch_floats(int64_t dk, int64_t R)
{
    return (size_t)(dk * R + 3 * GC_C * dk + 3 * GC_C * GC_C + 3 * GC_C * R + 3 * GC_C + 16);
}

/* D[l][i] = X[l] . k_i over the vectors of i that reach the diagonal (i <= l); the vectors past
 * it are 0. Tiles of 4 rows l by their vectors: up to
 * 16 independent chains over dk. */
KB_TARGET_AVX512 static void gc_dots(const float *X, const float *Kt, float *D, int64_t dk)
{
    for (int64_t l0 = 0; l0 < GC_C; l0 += 4) {
        const int64_t nv = (l0 + 3) / 16 + 1;
        __m512 a[4][GC_C / 16];
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++)
#pragma GCC unroll 4
            for (int m = 0; m < GC_C / 16; m++)
                a[l][m] = _mm512_setzero_ps();
        for (int64_t j = 0; j < dk; j++) {
#pragma GCC unroll 4
            for (int l = 0; l < 4; l++) {
                const __m512 xb = _mm512_set1_ps(X[(l0 + l) * dk + j]);
#pragma GCC unroll 4
                for (int m = 0; m < GC_C / 16; m++)
                    if (m < nv)
                        a[l][m] = _mm512_fmadd_ps(xb, _mm512_load_ps(Kt + j * GC_C + 16 * m), a[l][m]);
            }
        }
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++)
#pragma GCC unroll 4
            for (int m = 0; m < GC_C / 16; m++)
                _mm512_store_ps(D + (l0 + l) * GC_C + 16 * m, a[l][m]);
    }
}

/* W[l][r] = sum_j K[l][j] St[j][r] and P likewise with Q, for all C rows l and RV row vectors. */
KB_TARGET_AVX512 static void gc_wp(const float *Kc, const float *Qc, const float *St, float *W,
                                   float *P, int64_t dk, int64_t R)
{
    const int64_t RV = R / 16;
    for (int64_t rv = 0; rv < RV; rv += 2) {
        const int two = rv + 1 < RV; /* RV is 1 or even */
        for (int64_t l0 = 0; l0 < GC_C; l0 += GC_LT) {
            __m512 aw[GC_LT][2], ap[GC_LT][2];
#pragma GCC unroll 4
            for (int l = 0; l < GC_LT; l++)
                aw[l][0] = aw[l][1] = ap[l][0] = ap[l][1] = _mm512_setzero_ps();
            for (int64_t j = 0; j < dk; j++) {
                const __m512 s0 = _mm512_load_ps(St + j * R + rv * 16);
                const __m512 s1 = two ? _mm512_load_ps(St + j * R + rv * 16 + 16) : s0;
#pragma GCC unroll 4
                for (int l = 0; l < GC_LT; l++) {
                    const __m512 kb = _mm512_set1_ps(Kc[(l0 + l) * dk + j]);
                    const __m512 qb = _mm512_set1_ps(Qc[(l0 + l) * dk + j]);
                    aw[l][0] = _mm512_fmadd_ps(kb, s0, aw[l][0]);
                    aw[l][1] = _mm512_fmadd_ps(kb, s1, aw[l][1]);
                    ap[l][0] = _mm512_fmadd_ps(qb, s0, ap[l][0]);
                    ap[l][1] = _mm512_fmadd_ps(qb, s1, ap[l][1]);
                }
            }
#pragma GCC unroll 4
            for (int l = 0; l < GC_LT; l++) {
                _mm512_store_ps(W + (l0 + l) * R + rv * 16, aw[l][0]);
                _mm512_store_ps(P + (l0 + l) * R + rv * 16, ap[l][0]);
                if (two) {
                    _mm512_store_ps(W + (l0 + l) * R + rv * 16 + 16, aw[l][1]);
                    _mm512_store_ps(P + (l0 + l) * R + rv * 16 + 16, ap[l][1]);
                }
            }
        }
    }
}

/* St[j][r] = gl St[j][r] + sum_i Kc[i][j] U[i][r] (U already scaled by Gamma_{C-1,i}). */
KB_TARGET_AVX512 static void gc_update(const float *Kc, const float *U, float *St, float gl,
                                       int64_t dk, int64_t R)
{
    const int64_t RV = R / 16;
    const __m512 g16 = _mm512_set1_ps(gl);
    for (int64_t rv = 0; rv < RV; rv += 2) {
        const int two = rv + 1 < RV;
        for (int64_t j0 = 0; j0 < dk; j0 += GC_JT) {
            __m512 a[GC_JT][2];
#pragma GCC unroll 8
            for (int j = 0; j < GC_JT; j++) {
                a[j][0] = _mm512_mul_ps(g16, _mm512_load_ps(St + (j0 + j) * R + rv * 16));
                a[j][1] = two ? _mm512_mul_ps(g16, _mm512_load_ps(St + (j0 + j) * R + rv * 16 + 16))
                              : a[j][0];
            }
            for (int64_t i = 0; i < GC_C; i++) {
                const __m512 u0 = _mm512_load_ps(U + i * R + rv * 16);
                const __m512 u1 = two ? _mm512_load_ps(U + i * R + rv * 16 + 16) : u0;
#pragma GCC unroll 8
                for (int j = 0; j < GC_JT; j++) {
                    const __m512 kb = _mm512_set1_ps(Kc[i * dk + j0 + j]);
                    a[j][0] = _mm512_fmadd_ps(kb, u0, a[j][0]);
                    a[j][1] = _mm512_fmadd_ps(kb, u1, a[j][1]);
                }
            }
#pragma GCC unroll 8
            for (int j = 0; j < GC_JT; j++) {
                _mm512_store_ps(St + (j0 + j) * R + rv * 16, a[j][0]);
                if (two)
                    _mm512_store_ps(St + (j0 + j) * R + rv * 16 + 16, a[j][1]);
            }
        }
    }
}

/* U by forward substitution of (I + A) U = B (B_l = beta_l (v_l - gamma_l W_l)), then o_l =
 * gamma_l P_l + sum_{i<=l} M_{l,i} U_i, stored for the chunk's c real tokens; RVc row vectors
 * (R = 16 RVc rows) side by side in registers, so the l-long sums run RVc chains at once. */
KB_TARGET_AVX512 KB_INLINE void gc_solve_out(const gc_job *J, int64_t h, int64_t r0, int64_t c0,
                                            int64_t c, const float *A, const float *M,
                                            const float *W, const float *P, float *U,
                                            const float *gam, const float *bet, int64_t R,
                                            const int RVc)
{
    const gdn_shape *s = &J->s;
    for (int64_t l = 0; l < GC_C; l++) {
        const float *vl = J->v + ((c0 + l) * s->hv + h) * s->dv + r0;
        const __m512 bl = _mm512_set1_ps(bet[l]), gml = _mm512_set1_ps(gam[l]);
        __m512 u[8];
#pragma GCC unroll 8
        for (int rv = 0; rv < RVc; rv++) {
            const __m512 vv = l < c ? _mm512_loadu_ps(vl + 16 * rv) : _mm512_setzero_ps();
            u[rv] = _mm512_mul_ps(bl, _mm512_fnmadd_ps(gml, _mm512_load_ps(W + l * R + 16 * rv), vv));
        }
        for (int64_t i = 0; i < l; i++) {
            const __m512 a = _mm512_set1_ps(A[l * GC_C + i]);
#pragma GCC unroll 8
            for (int rv = 0; rv < RVc; rv++)
                u[rv] = _mm512_fnmadd_ps(a, _mm512_load_ps(U + i * R + 16 * rv), u[rv]);
        }
#pragma GCC unroll 8
        for (int rv = 0; rv < RVc; rv++)
            _mm512_store_ps(U + l * R + 16 * rv, u[rv]);
    }
    for (int64_t l = 0; l < c; l++) {
        float *ol = J->o + ((c0 + l) * s->hv + h) * s->dv + r0;
        const __m512 gml = _mm512_set1_ps(gam[l]);
        __m512 y[8];
#pragma GCC unroll 8
        for (int rv = 0; rv < RVc; rv++)
            y[rv] = _mm512_mul_ps(gml, _mm512_load_ps(P + l * R + 16 * rv));
        for (int64_t i = 0; i <= l; i++) {
            const __m512 m = _mm512_set1_ps(M[l * GC_C + i]);
#pragma GCC unroll 8
            for (int rv = 0; rv < RVc; rv++)
                y[rv] = _mm512_fmadd_ps(m, _mm512_load_ps(U + i * R + 16 * rv), y[rv]);
        }
#pragma GCC unroll 8
        for (int rv = 0; rv < RVc; rv++)
            _mm512_storeu_ps(ol + 16 * rv, y[rv]);
    }
}

/* One unit: value head h, rows [r0, r0 + R). */
KB_TARGET_AVX512 static void gc_unit(const gc_job *J, int tid, int64_t h, int64_t r0, int64_t R)
{
    const gdn_shape *s = &J->s;
    const int64_t dk = s->dk, dv = s->dv, RV = R / 16, kh = h / (s->hv / s->hk);
    float *St = J->scratch + (size_t)tid * J->per_thread;
    float *Kc = St + dk * R, *Qc = Kc + GC_C * dk, *Kt = Qc + GC_C * dk;
    float *G = Kt + GC_C * dk, *A = G + GC_C * GC_C, *M = A + GC_C * GC_C;
    float *W = M + GC_C * GC_C, *P = W + GC_C * R, *U = P + GC_C * R;
    float *gam = U + GC_C * R, *bet = gam + GC_C, *gv = bet + GC_C;

    const float *S0 = J->S0 + h * dv * dk;
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < dk; j++)
            St[j * R + r] = S0[(r0 + r) * dk + j];

    for (int64_t c0 = 0; c0 < s->ntok; c0 += GC_C) {
        const int64_t c = s->ntok - c0 < GC_C ? s->ntok - c0 : GC_C;
        /* the chunk's k, q (zero rows past its end), gates (g = 1, beta = 0 past it) */
        for (int64_t l = 0; l < GC_C; l++) {
            const int in = l < c;
            const float *kl = J->k + ((c0 + l) * s->hk + kh) * dk, *ql = J->q + ((c0 + l) * s->hk + kh) * dk;
            for (int64_t j = 0; j < dk; j += 16) {
                const __m512 kx = in ? _mm512_loadu_ps(kl + j) : _mm512_setzero_ps();
                _mm512_store_ps(Kc + l * dk + j, kx);
                _mm512_store_ps(Qc + l * dk + j, in ? _mm512_loadu_ps(ql + j) : _mm512_setzero_ps());
            }
            gv[l] = in ? J->g[(c0 + l) * s->hv + h] : 1.0f;
            bet[l] = in ? J->beta[(c0 + l) * s->hv + h] : 0.0f;
        }
        /* Kt[j][i] = k_i[j], 16 x 16 blocks through registers */
        for (int64_t i0 = 0; i0 < GC_C; i0 += 16)
            for (int64_t j0 = 0; j0 < dk; j0 += 16) {
                __m512 b[16];
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++)
                    b[i] = _mm512_load_ps(Kc + (i0 + i) * dk + j0);
                gdn_transpose16(b, b);
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++)
                    _mm512_store_ps(Kt + (j0 + j) * GC_C + i0, b[j]);
            }
        /* decays: gamma_l, Gamma_{l,i} (row l, 0 above the diagonal) */
        for (int64_t l = 0; l < GC_C; l++) {
            gam[l] = (l ? gam[l - 1] : 1.0f) * gv[l];
            float *Gl = G + l * GC_C;
            Gl[l] = 1.0f;
            for (int64_t i = l - 1; i >= 0; i--)
                Gl[i] = Gl[i + 1] * gv[i + 1];
            for (int64_t i = l + 1; i < GC_C; i++)
                Gl[i] = 0.0f;
        }
        /* k_i . k_l into A and k_i . q_l into M (lower parts), then the decays and beta */
        gc_dots(Kc, Kt, A, dk);
        gc_dots(Qc, Kt, M, dk);
        for (int64_t l = 0; l < GC_C; l++) {
            const __m512 bl = _mm512_set1_ps(bet[l]);
            for (int64_t m = 0; m < GC_C / 16; m++) {
                const __m512 gl = _mm512_load_ps(G + l * GC_C + 16 * m); /* 0 past i = l */
                const __mmask16 strict = (__mmask16)(l >= 16 * m + 16 ? 0xFFFF
                                                     : l <= 16 * m  ? 0
                                                                    : (1u << (l - 16 * m)) - 1);
                float *a = A + l * GC_C + 16 * m, *mm = M + l * GC_C + 16 * m;
                _mm512_store_ps(a, _mm512_maskz_mul_ps(strict, bl, _mm512_mul_ps(gl, _mm512_load_ps(a))));
                _mm512_store_ps(mm, _mm512_mul_ps(gl, _mm512_load_ps(mm)));
            }
        }
        gc_wp(Kc, Qc, St, W, P, dk, R);
        switch (RV) { /* U and o with the row vectors in registers */
        case 1: gc_solve_out(J, h, r0, c0, c, A, M, W, P, U, gam, bet, R, 1); break;
        case 2: gc_solve_out(J, h, r0, c0, c, A, M, W, P, U, gam, bet, R, 2); break;
        case 4: gc_solve_out(J, h, r0, c0, c, A, M, W, P, U, gam, bet, R, 4); break;
        default: gc_solve_out(J, h, r0, c0, c, A, M, W, P, U, gam, bet, R, 8); break;
        }
        /* S_C = gamma_{C-1} S0 + sum_i Gamma_{C-1,i} U_i k_i^T */
        for (int64_t i = 0; i < GC_C; i++) {
            const __m512 gi = _mm512_set1_ps(G[(GC_C - 1) * GC_C + i]);
            for (int64_t rv = 0; rv < RV; rv++)
                _mm512_store_ps(U + i * R + 16 * rv, _mm512_mul_ps(gi, _mm512_load_ps(U + i * R + 16 * rv)));
        }
        gc_update(Kc, U, St, gam[GC_C - 1], dk, R);
    }

    float *S1 = J->S1 + h * dv * dk;
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = 0; j < dk; j++)
            S1[(r0 + r) * dk + j] = St[j * R + r];
}

KB_TARGET_AVX512 static void gc_task(void *arg, int tid, int nt)
{
    const gc_job *J = arg;
    const int64_t R = J->s.dv / J->split;
    int64_t lo, hi;
    kb_split(J->s.hv * J->split, 1, tid, nt, &lo, &hi);
    for (int64_t u = lo; u < hi; u++)
        gc_unit(J, tid, u / J->split, (u % J->split) * R, R);
}

static void gc_run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    gc_job J = {.q = in[GD_Q].data, .k = in[GD_K].data, .v = in[GD_V].data,
                .g = in[GD_G].data, .beta = in[GD_BETA].data, .S0 = in[GD_S0].data,
                .o = out[GD_O].data, .S1 = out[GD_S1].data};
    gdn_prefill_shape(c->p, &J.s);
    /* fewer heads than threads: split rows (blocks of a multiple of 16, dividing dv) */
    const int nt = kb_pool_size(pool);
    J.split = 1;
    while (J.s.hv * J.split < nt && J.s.dv / (J.split * 2) >= 16)
        J.split *= 2;
    /* each worker's scratch in one buffer of the calling thread's (kb_scratch in a worker
     * would be that worker's thread-local buffer, lost when a pool of other size replaces it) */
    J.per_thread = (gc_scratch_floats(J.s.dk, J.s.dv / J.split) + 15) / 16 * 16;
    J.scratch = kb_scratch(sizeof(float) * J.per_thread * (size_t)nt);
    kb_pool_run(pool, gc_task, &J);
}

static const char *gc_available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl GC_IMPL = {
    .family = "gdn_prefill",
    .name = GC_NAME,
    .backend = KB_BACKEND_CPU,
    .available = gc_available,
    .cpu_run = gc_run,
};
