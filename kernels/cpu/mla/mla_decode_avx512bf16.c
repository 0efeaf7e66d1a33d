/* mla_decode, AVX-512 + AVX512-BF16: the passes of mla_decode_x86.h with both small GEMMs of a
 * tile on bf16 dot products (vdpbf16ps: 32 products per instruction, twice vfmadd231ps's 16 at
 * the same rate on Zen 4), f32 accumulation, as FlashMLA runs bf16 Q and P:
 *   scores: QT as bf16 pairs of k (q' rounded to bf16), the cache rows broadcast a pair of
 *     elements at a time straight from a bf16 cache (an f16 cache is rounded to bf16 once per
 *     tile);
 *   P V: P rounded to bf16 in pairs of positions, the tile repacked once into pairs of
 *     positions per latent element (CP[t / 2][R]), OT += CP^T P2.
 * Micro-tiles as the f32 kernel's: 8 positions (or latent elements) x 3 row vectors. */
#include "mla_decode_x86.h"

#define KB_TARGET_AVX512BF16 \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))

#define MT 8
#define RB 8
#define MV_MAX 3

static inline uint32_t ld32(const uint16_t *p) /* a pair of 16-bit elements */
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* S[MT][MV vectors] = rows [c_t ; k_pe_t] (bf16) x QT2: pairs of k, RP of c then PP of k_pe */
KB_TARGET_AVX512BF16 KB_INLINE void scores_mk(const uint16_t *const *rc, const uint16_t *const *rk,
                                              int64_t RP, int64_t PP, const uint32_t *qt,
                                              int64_t Mp, float *S, const int MV)
{
    __m512 acc[MT][MV_MAX];
#pragma GCC unroll 8
    for (int t = 0; t < MT; t++)
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            acc[t][v] = _mm512_setzero_ps();
    for (int part = 0; part < 2; part++) {
        const uint16_t *const *rows = part ? rk : rc;
        const uint32_t *q0 = part ? qt + RP * Mp : qt;
        for (int64_t kp = 0, n = part ? PP : RP; kp < n; kp++) {
            __m512i q[MV_MAX];
#pragma GCC unroll 3
            for (int v = 0; v < MV; v++)
                q[v] = _mm512_load_si512((const void *)(q0 + kp * Mp + 16 * v));
#pragma GCC unroll 8
            for (int t = 0; t < MT; t++) {
                const __m512i b = _mm512_set1_epi32((int)ld32(rows[t] + 2 * kp));
#pragma GCC unroll 3
                for (int v = 0; v < MV; v++)
                    acc[t][v] = _mm512_dpbf16_ps(acc[t][v], (__m512bh)q[v], (__m512bh)b);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < MT; t++)
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            _mm512_store_ps(S + t * Mp + 16 * v, acc[t][v]);
}

/* OT[RB rows][MV vectors] += sum over np position pairs of CP[pair][RB] P2[pair][MV vectors] */
KB_TARGET_AVX512BF16 KB_INLINE void pv_mk(const uint32_t *cp, int64_t R, const uint32_t *P2,
                                          int64_t Mp, float *ot, int np, const int MV)
{
    __m512 acc[RB][MV_MAX];
#pragma GCC unroll 8
    for (int j = 0; j < RB; j++)
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            acc[j][v] = _mm512_load_ps(ot + j * Mp + 16 * v);
    for (int jp = 0; jp < np; jp++) {
        __m512i p[MV_MAX];
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            p[v] = _mm512_load_si512((const void *)(P2 + jp * Mp + 16 * v));
#pragma GCC unroll 8
        for (int j = 0; j < RB; j++) {
            const __m512i b = _mm512_set1_epi32((int)cp[jp * R + j]);
#pragma GCC unroll 3
            for (int v = 0; v < MV; v++)
                acc[j][v] = _mm512_dpbf16_ps(acc[j][v], (__m512bh)p[v], (__m512bh)b);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < RB; j++)
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++)
            _mm512_store_ps(ot + j * Mp + 16 * v, acc[j][v]);
}

#define MLA_MK(MV)                                                                              \
    KB_TARGET_AVX512BF16 static void scores_##MV(const uint16_t *const *rc,                   \
                                                 const uint16_t *const *rk, int64_t RP,        \
                                                 int64_t PP, const uint32_t *qt, int64_t Mp,   \
                                                 float *S)                                     \
    {                                                                                           \
        scores_mk(rc, rk, RP, PP, qt, Mp, S, MV);                                               \
    }                                                                                           \
    KB_TARGET_AVX512BF16 static void pv_##MV(const uint32_t *cp, int64_t R, const uint32_t *P2, \
                                             int64_t Mp, float *ot, int np)                    \
    {                                                                                           \
        pv_mk(cp, R, P2, Mp, ot, np, MV);                                                       \
    }
MLA_MK(1)
MLA_MK(2)
MLA_MK(3)
typedef void (*scores_fn)(const uint16_t *const *, const uint16_t *const *, int64_t, int64_t,
                          const uint32_t *, int64_t, float *);
typedef void (*pv_fn)(const uint32_t *, int64_t, const uint32_t *, int64_t, float *, int);
static const scores_fn SCORES[4] = {NULL, scores_1, scores_2, scores_3};
static const pv_fn PV[4] = {NULL, pv_1, pv_2, pv_3};

/* Scratch per thread after the state: S[NT][Mp] f32, P2[NT / 2][Mp] and CP[NT / 2][R] bf16
 * pairs, C2[NT][K] bf16 (an f16 cache's rows rounded to bf16). */
static int64_t tile_floats(const mla_job *J)
{
    return MLA_NT * J->Mp + MLA_NT / 2 * J->Mp + MLA_NT / 2 * J->s.R + MLA_NT * J->K / 2;
}

/* 16 cache elements at p as bf16 (an f16 cache rounded to nearest even) */
KB_TARGET_AVX512BF16 KB_INLINE __m256i ld16_bf16(const uint16_t *p, const int f16)
{
    if (!f16)
        return _mm256_loadu_si256((const __m256i *)p);
    return kb_mla_to_bf16(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)));
}

KB_TARGET_AVX512BF16 static void tile(const mla_job *J, float *st, int64_t j0, int nt)
{
    const int64_t Mp = J->Mp, R = J->s.R, rope = J->s.rope, K = J->K, nv = J->nv;
    const int f16 = J->s.cache_f16;
    float *m = st, *l = st + Mp, *OT = st + 2 * Mp, *S = OT + R * Mp;
    uint32_t *P2 = (uint32_t *)(S + MLA_NT * Mp), *CP = P2 + MLA_NT / 2 * Mp;
    uint16_t *C2 = (uint16_t *)(CP + MLA_NT / 2 * R);
    const int ntp = (nt + MT - 1) / MT * MT, np = (nt + 1) / 2;
    /* the rows the scores read: the bf16 cache in place, or an f16 cache rounded to bf16 */
    const uint16_t *rc[MLA_NT], *rk[MLA_NT];
    for (int t = 0; t < ntp; t++) {
        const int64_t j = j0 + (t < nt ? t : nt - 1); /* past the end: masked below */
        rc[t] = J->c + j * R;
        rk[t] = J->kpe + j * rope;
        if (f16 && t < nt) {
            uint16_t *d = C2 + t * K;
            for (int64_t r = 0; r < R; r += 16)
                _mm256_storeu_si256((__m256i *)(d + r), ld16_bf16(rc[t] + r, 1));
            for (int64_t r = 0; r < rope; r += 16)
                _mm256_storeu_si256((__m256i *)(d + R + r), ld16_bf16(rk[t] + r, 1));
        }
    }
    if (f16)
        for (int t = 0; t < ntp; t++) {
            rc[t] = C2 + (t < nt ? t : nt - 1) * K;
            rk[t] = rc[t] + R;
        }
    /* CP: pairs of positions per latent element (a missing second position is 0) */
    for (int jp = 0; jp < np; jp++) {
        const uint16_t *a = J->c + (j0 + 2 * jp) * R;
        const int has_b = 2 * jp + 1 < nt;
        for (int64_t r = 0; r < R; r += 16) {
            const __m512i lo = _mm512_cvtepu16_epi32(ld16_bf16(a + r, f16));
            const __m512i hi = has_b ? _mm512_cvtepu16_epi32(ld16_bf16(a + R + r, f16))
                                     : _mm512_setzero_si512();
            _mm512_storeu_si512((void *)(CP + jp * R + r),
                                _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
    const uint32_t *qt = J->qt;
    for (int t = 0; t < ntp; t += MT) /* S = C QT */
        for (int64_t v = 0; v < nv; v += MV_MAX) {
            const int mv = nv - v < MV_MAX ? (int)(nv - v) : MV_MAX;
            SCORES[mv](rc + t, rk + t, R / 2, rope / 2, qt + 16 * v, Mp, S + t * Mp + 16 * v);
        }
    kb_mla_mask(J, S, j0, nt, ntp);
    for (int64_t v = 0; v < nv; v++)
        kb_mla_softmax_step(J, m, l, OT, S, ntp, v);
    /* P as bf16 pairs of positions: lane m holds (p[2jp][m], p[2jp + 1][m]) */
    const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                           24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17,
                                           1, 16, 0);
    for (int jp = 0; jp < np; jp++)
        for (int64_t v = 0; v < nv; v++) {
            const __m512 lo = _mm512_load_ps(S + 2 * jp * Mp + 16 * v);
            const __m512 hi = _mm512_load_ps(S + (2 * jp + 1) * Mp + 16 * v);
            const __m512i pb = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* lo in elements 0..15 */
            _mm512_store_si512((void *)(P2 + jp * Mp + 16 * v), _mm512_permutexvar_epi16(inter, pb));
        }
    for (int64_t r = 0; r < R; r += RB) /* OT += CP^T P2 */
        for (int64_t v = 0; v < nv; v += MV_MAX) {
            const int mv = nv - v < MV_MAX ? (int)(nv - v) : MV_MAX;
            PV[mv](CP + r, R, P2 + 16 * v, Mp, OT + r * Mp + 16 * v, np);
        }
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_mla_run(c, in, out, pool, tile, 1, tile_floats);
}

static const char *available(const kb_env *env)
{
    (void)env;
    const char *why = kb_need_avx512();
    if (why)
        return why;
    return kb_cpu()->avx512bf16 ? NULL : "CPU lacks avx512bf16";
}

const kb_impl kb_impl_mla_decode_avx512bf16 = {
    .family = "mla_decode",
    .name = "avx512bf16",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .tol_cond = 1e-2,
    .tol_why = "q' and q_pe (scaled) and the weights p rounded to bf16 for the dot products "
               "(and an f16 cache rounded to bf16)",
    .cpu_run = run,
};
