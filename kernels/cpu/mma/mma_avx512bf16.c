/* mma_bf16, mma_f16: AVX512-BF16 (vdpbf16ps): per f32 lane, two bf16 x bf16 products (exact
 * in f32) added to the accumulator. A is rounded to bf16 once per call (to nearest even) and
 * packed into tiles of 32 tokens, k-pair-major: per k pair, two zmm of 16 tokens x (a[2p],
 * a[2p+1]). The weights' k pairs are the dwords of a bf16 row as stored, so the panel is a copy
 * of the rows (at a padded stride, against L1 set conflicts: rows K apart alias); f16 weights
 * are converted to bf16 there (rounding to 8 significant bits: a loss the tolerance states).
 * The rest is the f32 path's (mma_avx512.c): 32 x 12 tiles, 24 accumulators, tile sums across
 * K blocks in a per-thread buffer, written to C once. vdpbf16ps treats bf16 subnormals as
 * zero (below 1.2e-38: nothing a weight matrix holds). Built for AVX512-BF16 machines (Zen 4,
 * Cooper Lake, Sapphire Rapids). */
#include <stdint.h>
#include <string.h>

#include "mma_x86.h"

#ifndef KB_TARGET_AVX512BF16
#define KB_TARGET_AVX512BF16                                                                       \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

#define MR KB_MMA_MR  /* tokens per tile */
#define NR 12         /* weight rows per tile */
#define KC 512        /* K block (256 pairs) */
#define KCP (KC + 32) /* panel row stride in bf16: 1088 bytes */
#define NC 192
#define MCT 8

typedef struct job {
    kb_mma s;
    kb_mma_items it;
    uint32_t *ap;     /* [nmt][K / 2][MR] bf16 pairs */
    uint8_t *scratch; /* per thread: panel (bf16), then tile sums */
    size_t per_thread;
    int64_t mt_per;
    int phase;
    kb_mma_plant plant;
} job;

#define PAN_BYTES ((size_t)NC * KCP * 2)

KB_TARGET_AVX512BF16 static void pack_a(const job *j, int64_t mt)
{
    const kb_mma *s = &j->s;
    uint32_t *dst = j->ap + mt * (s->K / 2) * MR;
    for (int64_t k0 = 0; k0 < s->K; k0 += 32) {
        for (int h = 0; h < 2; h++) { /* tokens 16h .. 16h + 15 */
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                const int64_t m = mt * MR + 16 * h + i;
                if (m < s->M) {
                    const float *a = s->a + m * s->K + k0;
                    const __m512bh p = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + 16),
                                                           _mm512_loadu_ps(a));
                    r[i] = (__m512)p; /* 16 dwords: the pairs (a[2p], a[2p+1]) */
                } else {
                    r[i] = _mm512_setzero_ps();
                }
            }
            kb_mma_transpose16(r); /* a bit-pattern transpose of the dwords */
#pragma GCC unroll 16
            for (int p = 0; p < 16; p++)
                _mm512_store_ps((float *)(dst + (k0 / 2 + p) * MR + 16 * h), r[p]);
        }
    }
}

/* Rows n0..n0+nn-1, k0..k0+kc-1 as bf16 rows of KCP; rows past N: zeros. */
KB_TARGET_AVX512BF16 static void panel(const kb_mma *s, int64_t n0, int64_t nn, int64_t k0,
                                       int64_t kc, uint16_t *bp)
{
    for (int64_t r = 0; r < nn; r++) {
        const uint16_t *src = (const uint16_t *)s->w + (n0 + r) * s->K + k0;
        uint16_t *dst = bp + r * KCP;
        if (r + 2 < nn)
            kb_mma_prefetch(src + 2 * s->K, 2 * kc);
        if (s->fmt == KB_MMA_BF16) {
            memcpy(dst, src, 2 * (size_t)kc);
            continue;
        }
        for (int64_t k = 0; k < kc; k += 32) { /* f16 -> f32 (exact) -> bf16 (rounded) */
            const __m512 lo = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + k)));
            const __m512 hi = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + k + 16)));
            _mm512_store_si512((void *)(dst + k), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
    for (int64_t r = nn; r < (nn + NR - 1) / NR * NR; r++)
        memset(bp + r * KCP, 0, 2 * (size_t)kc);
}

KB_TARGET_AVX512BF16 KB_INLINE void ukr(const int MV, int64_t kc, const uint32_t *ap,
                                        const uint16_t *bp, float *ct, int first)
{
    __m512 acc0[NR], acc1[NR];
#pragma GCC unroll 12
    for (int j = 0; j < NR; j++) {
        acc0[j] = first ? _mm512_setzero_ps() : _mm512_load_ps(ct + j * MR);
        acc1[j] = MV == 2 && !first ? _mm512_load_ps(ct + j * MR + 16) : _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < kc / 2; p++) {
        const __m512bh a0 = (__m512bh)_mm512_load_si512((const void *)(ap + p * MR));
        const __m512bh a1 =
            MV == 2 ? (__m512bh)_mm512_load_si512((const void *)(ap + p * MR + 16)) : a0;
#pragma GCC unroll 12
        for (int j = 0; j < NR; j++) {
            uint32_t w2;
            memcpy(&w2, bp + j * KCP + 2 * p, 4);
            const __m512bh b = (__m512bh)_mm512_set1_epi32((int)w2);
            acc0[j] = _mm512_dpbf16_ps(acc0[j], a0, b);
            if (MV == 2)
                acc1[j] = _mm512_dpbf16_ps(acc1[j], a1, b);
        }
    }
#pragma GCC unroll 12
    for (int j = 0; j < NR; j++) {
        _mm512_store_ps(ct + j * MR, acc0[j]);
        if (MV == 2)
            _mm512_store_ps(ct + j * MR + 16, acc1[j]);
    }
}

KB_TARGET_AVX512BF16 static void ukr_32(int64_t kc, const uint32_t *ap, const uint16_t *bp,
                                        float *ct, int first)
{
    ukr(2, kc, ap, bp, ct, first);
}

KB_TARGET_AVX512BF16 static void ukr_16(int64_t kc, const uint32_t *ap, const uint16_t *bp,
                                        float *ct, int first)
{
    ukr(1, kc, ap, bp, ct, first);
}

static void item(const job *j, int tid, int64_t i)
{
    const kb_mma *s = &j->s;
    uint16_t *bp = (uint16_t *)(j->scratch + (size_t)tid * j->per_thread);
    float *ct = (float *)((uint8_t *)bp + PAN_BYTES);
    int64_t ncb, mt_lo, mt_hi;
    kb_mma_item(&j->it, i, &ncb, &mt_lo, &mt_hi);
    const int64_t n0 = ncb * NC, nn = s->N - n0 < NC ? s->N - n0 : NC;
    const int64_t ntiles = (nn + NR - 1) / NR;
    const int64_t bad_nt = (n0 + nn == s->N && nn % NR) ? ntiles - 1 : -1;
    const int64_t bad_mt = s->M % MR ? j->it.nmt - 1 : -1;
    for (int64_t k0 = 0; k0 < s->K; k0 += KC) {
        const int64_t kc = s->K - k0 < KC ? s->K - k0 : KC;
        panel(s, n0, nn, k0, kc, bp);
        for (int64_t mb = mt_lo; mb < mt_hi; mb += MCT) {
            const int64_t me = mb + MCT < mt_hi ? mb + MCT : mt_hi;
            for (int64_t nt = 0; nt < ntiles; nt++) {
                if (j->plant == KB_MMA_PLANT_SKIP_N && nt == bad_nt)
                    continue;
                for (int64_t mt = mb; mt < me; mt++) {
                    if (j->plant == KB_MMA_PLANT_SKIP_M && mt == bad_mt)
                        continue;
                    float *tile = ct + ((mt - mt_lo) * ntiles + nt) * NR * MR;
                    const uint32_t *ap = j->ap + (mt * (s->K / 2) + k0 / 2) * MR;
                    if (s->M - mt * MR <= 16)
                        ukr_16(kc, ap, bp + nt * NR * KCP, tile, k0 == 0);
                    else
                        ukr_32(kc, ap, bp + nt * NR * KCP, tile, k0 == 0);
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
            pack_a(j, mt);
        return;
    }
    kb_split(j->it.count, 1, tid, nthreads, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        item(j, tid, i);
}

void kb_mma_avx512bf16_gemm(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool,
                            kb_mma_plant plant)
{
    job j;
    memset(&j, 0, sizeof j);
    kb_mma_from_case(c, in, out, &j.s);
    j.plant = plant;
    const int nthreads = kb_pool_size(pool);
    kb_mma_items_plan(j.s.N, NC, (j.s.M + MR - 1) / MR, nthreads, &j.it);
    j.mt_per = (j.it.nmt + j.it.msplit - 1) / j.it.msplit;
    j.per_thread = PAN_BYTES + sizeof(float) * (size_t)j.mt_per * NC * MR;
    const size_t apb = sizeof(uint32_t) * (size_t)(j.it.nmt * (j.s.K / 2) * MR);
    uint8_t *mem = kb_scratch(apb + (size_t)nthreads * j.per_thread);
    j.ap = (uint32_t *)mem;
    j.scratch = mem + apb;
    j.phase = 0;
    kb_pool_run(pool, task, &j);
    j.phase = 1;
    kb_pool_run(pool, task, &j);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_mma_avx512bf16_gemm(c, in, out, pool, KB_MMA_PLANT_NONE);
}

static const char *available(const kb_env *env)
{
    (void)env;
    const char *why = kb_need_avx512();
    if (why)
        return why;
    return kb_cpu()->avx512bf16 ? NULL : "CPU lacks avx512bf16";
}

/* Every product has its A factor within a rounding to bf16 (8 significant bits: 2^-8 relative at
 * most) of the exact one, so |C - C_ref| <= (2^-8 + f32 sums) sum|A W| for bf16 weights, and
 * about twice that when the f16 weights are rounded too: bounds, not statistics (measured
 * 3.8e-3 and 6.8e-3 at K = 32: results/zen4-2c/mma/README.md). */
const kb_impl kb_impl_mma_bf16_avx512bf16 = {
    .family = "mma_bf16",
    .name = "avx512bf16",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .tol_cond = 4e-3,
    .tol_why = "A rounded to bf16 (2^-8 relative per product: a bound)",
    .cpu_run = run,
};

const kb_impl kb_impl_mma_f16_avx512bf16 = {
    .family = "mma_f16",
    .name = "avx512bf16",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .tol_cond = 8e-3,
    .tol_why = "A and the f16 weights rounded to bf16 (2 x 2^-8 relative per product: a bound)",
    .cpu_run = run,
};
