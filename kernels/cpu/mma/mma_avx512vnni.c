/* mma_q8_0, mma_q4_0, mma_a4: AVX512-VNNI (vpdpbusd) with int8 activations (GGML's trick, as
 * the matvec _i8/vnni kernels do it): A is quantized per token and 32-block inside the timed run,
 * d = max|a| / 127, q = round(a / d), and meets the weights' integer codes in 32-bit lanes.
 *
 * Layout, as in the f32 path (mma_avx512.c): tiles of 32 tokens x NR = 6 weight rows, vectors
 * along the tokens. A tile's block of A is 8 k-quads x 32 tokens x 4 bytes (one zmm per 16
 * tokens and quad), then its 32 scales and sums of q. The weights are unpacked per item and K
 * block into rows of unsigned codes in k order (Q8_0: q + 128; Q4_0: the 0..15 codes; a4: the
 * codes), broadcast four at a time as vpdpbusd's unsigned operand; A is the signed one.
 * Per block, a lane sums 32 products exactly in int32, started at -bias * sum(q_a) so that the
 * codes' offset cancels (Q8_0 128, Q4_0 8); then it is converted and added to the f32 sum with
 * the scale d_a d_w (a4: plus its group's bias times d_a sum(q_a)). */
#include <stdint.h>
#include <string.h>

#include "ggml_formats.h"
#include "mma_x86.h"

#define MR KB_MMA_MR /* tokens per tile */
#define NR 6         /* weight rows per tile: 12 int32 + 12 f32 accumulators */
#define KC 512       /* K block */
#define NBK (KC / QK) /* 32-blocks per K block */
#define NC 192       /* weight rows per item: 32 tiles */
#define MCT 8        /* M tiles per A block */

typedef struct ablk {  /* a 32-token tile's 32-block of A, quantized */
    int8_t q[8][MR][4]; /* [k quad][token][4 k's] */
    float d[MR];        /* per token: scale */
    int32_t s[MR];      /* sum of q */
    float ds[MR];       /* d * sum of q (a4's bias term) */
} ablk;
_Static_assert(sizeof(ablk) % 64 == 0, "ablk keeps tiles 64-byte aligned");

typedef struct job {
    kb_mma s;
    kb_mma_items it;
    ablk *aq;         /* [nmt][K / 32] */
    uint8_t *scratch; /* per thread: codes, scales, biases, tile sums */
    size_t per_thread;
    int64_t mt_per, nb;
    int phase;
    kb_mma_plant plant;
} job;

/* Per-thread panel: codes [NC][KC], scales and biases [NC][NBK], then the tile sums. */
#define PAN_Q 0
#define PAN_D ((size_t)NC * KC)
#define PAN_B (PAN_D + sizeof(float) * NC * NBK)
#define PAN_CT (PAN_B + sizeof(float) * NC * NBK)

/* ---- A: quantized per token and block, in tiles -------------------------------------------- */

KB_TARGET_AVX512VNNI static void quant_a(const job *j, int64_t mt)
{
    const kb_mma *s = &j->s;
    for (int64_t b = 0; b < j->nb; b++) {
        ablk *o = j->aq + mt * j->nb + b;
        for (int r = 0; r < MR; r++) {
            const int64_t m = mt * MR + r;
            if (m >= s->M) { /* padding tokens: zero */
                for (int kq = 0; kq < 8; kq++)
                    memset(o->q[kq][r], 0, 4);
                o->d[r] = o->ds[r] = 0.0f;
                o->s[r] = 0;
                continue;
            }
            const float *a = s->a + m * s->K + QK * b;
            const __m512 v0 = _mm512_loadu_ps(a), v1 = _mm512_loadu_ps(a + 16);
            const float amax =
                _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            const __m512 id = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
            /* round to nearest even (the MXCSR default), |q| <= 127 */
            const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
            const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
            const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            int32_t quads[8];
            _mm_storeu_si128((__m128i *)quads, _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(quads + 4), _mm512_cvtepi32_epi8(q1));
            for (int kq = 0; kq < 8; kq++)
                memcpy(o->q[kq][r], &quads[kq], 4);
            o->d[r] = amax / 127.0f;
            o->s[r] = sum;
            o->ds[r] = o->d[r] * (float)sum;
        }
    }
}

/* ---- weights: rows n0..n0+nn-1, k0..k0+kc-1 to unsigned codes in k order ------------------- */

static inline float bf16f(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

KB_TARGET_AVX512VNNI static void panel(const kb_mma *s, int64_t n0, int64_t nn, int64_t k0,
                                       int64_t kc, uint8_t *pan)
{
    uint8_t *bq = pan + PAN_Q;
    float *bd = (float *)(pan + PAN_D), *bb = (float *)(pan + PAN_B);
    const __m128i m4 = _mm_set1_epi8(0x0F), flip = _mm_set1_epi8((char)0x80);
    const int64_t nbk = kc / QK, ng = s->K / s->group;
    for (int64_t r = 0; r < nn; r++) {
        const uint8_t *row = (const uint8_t *)s->w + (n0 + r) * s->row_bytes;
        uint8_t *dst = bq + r * KC;
        if (r + 2 < nn) /* the next rows' slices into L2 (a stride no prefetcher follows) */
            kb_mma_prefetch(row + 2 * s->row_bytes + k0 * s->row_bytes / s->K,
                            kc * s->row_bytes / s->K);
        for (int64_t b = 0; b < nbk; b++) {
            const int64_t kb = k0 / QK + b;
            switch (s->fmt) {
            case KB_MMA_Q8_0: {
                const block_q8_0 *blk = (const block_q8_0 *)row + kb;
                bd[r * NBK + b] = _cvtsh_ss(blk->d);
                const __m128i q0 = _mm_loadu_si128((const __m128i *)blk->qs);
                const __m128i q1 = _mm_loadu_si128((const __m128i *)(blk->qs + 16));
                _mm_storeu_si128((__m128i *)(dst + QK * b), _mm_xor_si128(q0, flip));
                _mm_storeu_si128((__m128i *)(dst + QK * b + 16), _mm_xor_si128(q1, flip));
                break;
            }
            case KB_MMA_Q4_0: {
                const block_q4_0 *blk = (const block_q4_0 *)row + kb;
                bd[r * NBK + b] = _cvtsh_ss(blk->d);
                const __m128i v = _mm_loadu_si128((const __m128i *)blk->qs);
                _mm_storeu_si128((__m128i *)(dst + QK * b), _mm_and_si128(v, m4));
                _mm_storeu_si128((__m128i *)(dst + QK * b + 16),
                                 _mm_and_si128(_mm_srli_epi16(v, 4), m4));
                break;
            }
            default: { /* a4: byte i holds codes 2i (low nibble) and 2i + 1 */
                const int64_t g = kb * QK / s->group;
                bd[r * NBK + b] = bf16f(s->scales[(n0 + r) * ng + g]);
                bb[r * NBK + b] = bf16f(s->biases[(n0 + r) * ng + g]);
                const __m128i v = _mm_loadu_si128((const __m128i *)(row + kb * 16));
                const __m128i lo = _mm_and_si128(v, m4), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
                _mm_storeu_si128((__m128i *)(dst + QK * b), _mm_unpacklo_epi8(lo, hi));
                _mm_storeu_si128((__m128i *)(dst + QK * b + 16), _mm_unpackhi_epi8(lo, hi));
                break;
            }
            }
        }
    }
    for (int64_t r = nn; r < (nn + NR - 1) / NR * NR; r++) { /* rows past N: zero */
        memset(bq + r * KC, 0, (size_t)kc);
        memset(bd + r * NBK, 0, sizeof(float) * NBK);
        memset(bb + r * NBK, 0, sizeof(float) * NBK);
    }
}

/* ---- the microkernel: 32 (MV = 2) or 16 (MV = 1) tokens x 6 weight rows -------------------- */

KB_TARGET_AVX512VNNI KB_INLINE void ukr(const int MV, const int bias, const int affine,
                                        int64_t nbk, const ablk *ab, const uint8_t *bq,
                                        const float *bd, const float *bb, float *ct, int first)
{
    __m512 f0[NR], f1[NR];
#pragma GCC unroll 6
    for (int j = 0; j < NR; j++) {
        f0[j] = first ? _mm512_setzero_ps() : _mm512_load_ps(ct + j * MR);
        f1[j] = MV == 2 && !first ? _mm512_load_ps(ct + j * MR + 16) : _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nbk; b++, ab++) {
        __m512i z0 = _mm512_setzero_si512(), z1 = z0;
        if (bias) { /* start at -bias * sum(q_a): the codes' offset cancels */
            z0 = _mm512_mullo_epi32(_mm512_load_si512(ab->s), _mm512_set1_epi32(-bias));
            if (MV == 2)
                z1 = _mm512_mullo_epi32(_mm512_load_si512(ab->s + 16), _mm512_set1_epi32(-bias));
        }
        __m512i i0[NR], i1[NR];
#pragma GCC unroll 6
        for (int j = 0; j < NR; j++) {
            i0[j] = z0;
            i1[j] = z1;
        }
#pragma GCC unroll 8
        for (int kq = 0; kq < 8; kq++) {
            const __m512i a0 = _mm512_load_si512(ab->q[kq][0]);
            const __m512i a1 = MV == 2 ? _mm512_load_si512(ab->q[kq][16]) : a0;
#pragma GCC unroll 6
            for (int j = 0; j < NR; j++) {
                int32_t w4;
                memcpy(&w4, bq + j * KC + QK * b + 4 * kq, 4);
                const __m512i w = _mm512_set1_epi32(w4);
                i0[j] = _mm512_dpbusd_epi32(i0[j], w, a0);
                if (MV == 2)
                    i1[j] = _mm512_dpbusd_epi32(i1[j], w, a1);
            }
        }
        const __m512 d0 = _mm512_load_ps(ab->d), d1 = MV == 2 ? _mm512_load_ps(ab->d + 16) : d0;
#pragma GCC unroll 6
        for (int j = 0; j < NR; j++) {
            const __m512 dw = _mm512_set1_ps(bd[j * NBK + b]);
            f0[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0[j]), _mm512_mul_ps(d0, dw), f0[j]);
            if (MV == 2)
                f1[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1[j]), _mm512_mul_ps(d1, dw), f1[j]);
        }
        if (affine) { /* sum_k d_a q_a (s q_w + bias) = s d_a sum(q_a q_w) + bias d_a sum(q_a) */
            const __m512 s0 = _mm512_load_ps(ab->ds);
            const __m512 s1 = MV == 2 ? _mm512_load_ps(ab->ds + 16) : s0;
#pragma GCC unroll 6
            for (int j = 0; j < NR; j++) {
                const __m512 bj = _mm512_set1_ps(bb[j * NBK + b]);
                f0[j] = _mm512_fmadd_ps(s0, bj, f0[j]);
                if (MV == 2)
                    f1[j] = _mm512_fmadd_ps(s1, bj, f1[j]);
            }
        }
    }
#pragma GCC unroll 6
    for (int j = 0; j < NR; j++) {
        _mm512_store_ps(ct + j * MR, f0[j]);
        if (MV == 2)
            _mm512_store_ps(ct + j * MR + 16, f1[j]);
    }
}

#define UKR(name, MV, BIAS, AFF)                                                                   \
    KB_TARGET_AVX512VNNI static void name(int64_t nbk, const ablk *ab, const uint8_t *bq,         \
                                          const float *bd, const float *bb, float *ct, int first) \
    {                                                                                              \
        ukr(MV, BIAS, AFF, nbk, ab, bq, bd, bb, ct, first);                                        \
    }
UKR(ukr_q8_32, 2, 128, 0)
UKR(ukr_q8_16, 1, 128, 0)
UKR(ukr_q4_32, 2, 8, 0)
UKR(ukr_q4_16, 1, 8, 0)
UKR(ukr_a4_32, 2, 0, 1)
UKR(ukr_a4_16, 1, 0, 1)

typedef void (*ukr_fn)(int64_t, const ablk *, const uint8_t *, const float *, const float *,
                       float *, int);

/* ---- items ------------------------------------------------------------------------------ */

static void item(const job *j, int tid, int64_t i)
{
    const kb_mma *s = &j->s;
    uint8_t *pan = j->scratch + (size_t)tid * j->per_thread;
    const uint8_t *bq = pan + PAN_Q;
    const float *bd = (const float *)(pan + PAN_D), *bb = (const float *)(pan + PAN_B);
    float *ct = (float *)(pan + PAN_CT);
    const ukr_fn k32 = s->fmt == KB_MMA_Q8_0 ? ukr_q8_32 : s->fmt == KB_MMA_Q4_0 ? ukr_q4_32 : ukr_a4_32;
    const ukr_fn k16 = s->fmt == KB_MMA_Q8_0 ? ukr_q8_16 : s->fmt == KB_MMA_Q4_0 ? ukr_q4_16 : ukr_a4_16;
    int64_t ncb, mt_lo, mt_hi;
    kb_mma_item(&j->it, i, &ncb, &mt_lo, &mt_hi);
    const int64_t n0 = ncb * NC, nn = s->N - n0 < NC ? s->N - n0 : NC;
    const int64_t ntiles = (nn + NR - 1) / NR;
    const int64_t bad_nt = (n0 + nn == s->N && nn % NR) ? ntiles - 1 : -1;
    const int64_t bad_mt = s->M % MR ? j->it.nmt - 1 : -1;
    for (int64_t k0 = 0; k0 < s->K; k0 += KC) {
        const int64_t kc = s->K - k0 < KC ? s->K - k0 : KC;
        panel(s, n0, nn, k0, kc, pan);
        for (int64_t mb = mt_lo; mb < mt_hi; mb += MCT) {
            const int64_t me = mb + MCT < mt_hi ? mb + MCT : mt_hi;
            for (int64_t nt = 0; nt < ntiles; nt++) {
                if (j->plant == KB_MMA_PLANT_SKIP_N && nt == bad_nt)
                    continue;
                for (int64_t mt = mb; mt < me; mt++) {
                    if (j->plant == KB_MMA_PLANT_SKIP_M && mt == bad_mt)
                        continue;
                    float *tile = ct + ((mt - mt_lo) * ntiles + nt) * NR * MR;
                    const ablk *ab = j->aq + mt * j->nb + k0 / QK;
                    const int64_t r0 = nt * NR;
                    (s->M - mt * MR <= 16 ? k16 : k32)(kc / QK, ab, bq + r0 * KC, bd + r0 * NBK,
                                                        bb + r0 * NBK, tile, k0 == 0);
                }
            }
        }
    }
    for (int64_t mt = mt_lo; mt < mt_hi; mt++) {
        if (j->plant == KB_MMA_PLANT_SKIP_M && mt == bad_mt)
            continue;
        const int64_t rows = s->M - mt * MR < MR ? s->M - mt * MR : MR;
        for (int64_t nt = 0; nt < ntiles; nt++) {
            if (j->plant == KB_MMA_PLANT_SKIP_N && nt == bad_nt)
                continue;
            const int64_t cols = nn - nt * NR < NR ? nn - nt * NR : NR;
            const int shift = j->plant == KB_MMA_PLANT_SHIFT_N && nt == bad_nt;
            kb_mma_flush_tile(ct + ((mt - mt_lo) * ntiles + nt) * NR * MR, NR, rows, cols, shift,
                              s->c + mt * MR * s->N + n0 + nt * NR, s->N);
        }
    }
}

static void task(void *arg, int tid, int nthreads)
{
    const job *j = arg;
    int64_t lo, hi;
    if (j->phase == 0) {
        kb_split(j->it.nmt, 1, tid, nthreads, &lo, &hi);
        for (int64_t mt = lo; mt < hi; mt++)
            quant_a(j, mt);
        return;
    }
    kb_split(j->it.count, 1, tid, nthreads, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        item(j, tid, i);
}

void kb_mma_avx512vnni_gemm(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool,
                            kb_mma_plant plant)
{
    job j;
    memset(&j, 0, sizeof j);
    kb_mma_from_case(c, in, out, &j.s);
    j.plant = plant;
    j.nb = j.s.K / QK;
    const int nthreads = kb_pool_size(pool);
    kb_mma_items_plan(j.s.N, NC, (j.s.M + MR - 1) / MR, nthreads, &j.it);
    j.mt_per = (j.it.nmt + j.it.msplit - 1) / j.it.msplit;
    j.per_thread = PAN_CT + sizeof(float) * (size_t)j.mt_per * NC * MR;
    const size_t aqb = sizeof(ablk) * (size_t)(j.it.nmt * j.nb);
    uint8_t *mem = kb_scratch(aqb + (size_t)nthreads * j.per_thread);
    j.aq = (ablk *)mem;
    j.scratch = mem + aqb;
    j.phase = 0;
    kb_pool_run(pool, task, &j);
    j.phase = 1;
    kb_pool_run(pool, task, &j);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_mma_avx512vnni_gemm(c, in, out, pool, KB_MMA_PLANT_NONE);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512vnni();
}

#define MMA_VNNI(fmt)                                                                              \
    const kb_impl kb_impl_mma_##fmt##_avx512vnni = {                                               \
        .family = "mma_" #fmt,                                                                     \
        .name = "avx512vnni",                                                                      \
        .backend = KB_BACKEND_CPU,                                                                 \
        .available = available,                                                                    \
        .tol_cond = KB_MMA_I8_TOL,                                                                 \
        .tol_cond_inputs = {[KB_INPUTS_OUTLIERS] = KB_MMA_I8_TOL_OUTLIERS},                        \
        .tol_why = KB_MMA_I8_WHY,                                                                  \
        .cpu_run = run,                                                                            \
    };
MMA_VNNI(q8_0)
MMA_VNNI(q4_0)
MMA_VNNI(a4)
