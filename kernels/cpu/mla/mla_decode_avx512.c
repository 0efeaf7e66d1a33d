/* mla_decode, AVX-512 (F, BW, VL) + F16C, f32 arithmetic: the absorbed form split over the
 * cache, all heads against each cache tile (the passes: mla_decode_x86.h). Per tile of MLA_NT
 * positions: the cache rows [c ; k_pe] to f32 once for all heads (CT[NT][R + rope]), S = CT QT
 * (8 positions x 3 row vectors of 16 per micro-tile: 24 accumulators, each QT vector used 8
 * times, each broadcast 3), the masks, the softmax step, OT += CT^T P (8 latent elements x 3
 * row vectors per micro-tile). */
#include "mla_decode_x86.h"

#define MT 8     /* positions per score micro-tile */
#define RB 8     /* latent elements per P V micro-tile */
#define MV_MAX 3 /* row vectors per micro-tile */

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

/* Scratch per thread after the state: CT[NT][K], S[NT][Mp]. */
static int64_t tile_floats(const mla_job *J) { return MLA_NT * J->K + MLA_NT * J->Mp; }

KB_TARGET_AVX512 static void tile(const mla_job *J, float *st, int64_t j0, int nt)
{
    const int64_t Mp = J->Mp, R = J->s.R, rope = J->s.rope, K = J->K, nv = J->nv;
    const int f16 = J->s.cache_f16;
    float *m = st, *l = st + Mp, *OT = st + 2 * Mp, *CT = OT + R * Mp, *S = CT + MLA_NT * K;
    const int ntp = (nt + MT - 1) / MT * MT;
    const float *qt = J->qt;
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
    for (int t = 0; t < ntp; t += MT) /* S = CT QT */
        for (int64_t v = 0; v < nv; v += MV_MAX) {
            const int mv = nv - v < MV_MAX ? (int)(nv - v) : MV_MAX;
            SCORES[mv](CT + t * K, K, qt + 16 * v, Mp, S + t * Mp + 16 * v);
        }
    kb_mla_mask(J, S, j0, nt, ntp);
    for (int64_t v = 0; v < nv; v++)
        kb_mla_softmax_step(J, m, l, OT, S, ntp, v);
    for (int64_t r = 0; r < R; r += RB) /* OT += CT^T P */
        for (int64_t v = 0; v < nv; v += MV_MAX) {
            const int mv = nv - v < MV_MAX ? (int)(nv - v) : MV_MAX;
            PV[mv](CT + r, K, S + 16 * v, Mp, OT + r * Mp + 16 * v, nt);
        }
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_mla_run(c, in, out, pool, tile, 0, tile_floats);
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
