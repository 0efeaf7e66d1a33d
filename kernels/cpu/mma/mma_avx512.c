/* mma (every weight format), AVX-512 FMA on dequantized weights, BLIS-style, f32 throughout.
 *
 * A is packed once per call into tiles of MR = 32 tokens, k-major: Ap[tile][k][32] (two zmm per
 * k, zero rows past M). Per work item (NC = 192 weight rows times a range of M tiles, mma_cpu.h)
 * and K block of KC = 256: the item's weight rows are dequantized into a panel of f32 rows in
 * their natural order (Bp[row][k], no transposition: the format's blocks are read as stored),
 * which then serves every M tile of the item. The microkernel computes a tile of 32 tokens x
 * NR = 12 weight rows: per k, two zmm of A and twelve broadcast weights, 24 FMAs into 24 zmm
 * accumulators (vectors along M). Tile sums live in a per-thread buffer (Ct, tile by tile, as
 * the registers hold them) across K blocks and are written to C, transposed, once at the end.
 * Cache plan (Zen 4: 32 KB L1, 1 MB L2 per core): the micro-panel of weights (12 x 256 floats,
 * 12 KB) stays in L1 while the tiles of an A block (8 x 32 tokens x 256, 256 KB) stream from L2;
 * the panel (192 KB), the A block and the tile sums of an item fit L2 together. */
#include <stdint.h>
#include <string.h>

#include "ggml_formats.h"
#include "mma_x86.h"

#define MR KB_MMA_MR    /* tokens per tile (two zmm) */
#define NR 12         /* weight rows per tile (broadcast) */
#define KC 256        /* K block */
#define KCP (KC + 16) /* panel row stride in floats: 1088 bytes, so rows spread over L1 sets */
#define NC 192        /* weight rows per item: 16 tiles */
#define MCT 8         /* M tiles per A block */

typedef struct job {
    kb_mma s;
    kb_mma_items it;
    float *ap;        /* [nmt][K][MR] */
    uint8_t *scratch; /* per thread: panel, then tile sums */
    size_t per_thread;
    int64_t mt_per;   /* most M tiles in an item */
    int phase;        /* 0: pack A; 1: the items */
    kb_mma_plant plant;
} job;

/* ---- A: rows to 32-token tiles, k-major ---------------------------------------------------- */

KB_TARGET_AVX512 static void pack_a(const job *j, int64_t mt)
{
    const kb_mma *s = &j->s;
    float *dst = j->ap + mt * s->K * MR;
    for (int64_t k0 = 0; k0 < s->K; k0 += 16) {
        for (int h = 0; h < 2; h++) { /* tokens 16h .. 16h+15 */
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                const int64_t m = mt * MR + 16 * h + i;
                r[i] = m < s->M ? _mm512_loadu_ps(s->a + m * s->K + k0) : _mm512_setzero_ps();
            }
            kb_mma_transpose16(r);
#pragma GCC unroll 16
            for (int kk = 0; kk < 16; kk++)
                _mm512_store_ps(dst + (k0 + kk) * MR + 16 * h, r[kk]);
        }
    }
}

/* ---- weight panels: rows n0..n0+nn-1, k0..k0+kc-1 to f32 rows of KCP ------------------------ */

/* Row n's bytes of k0..k0+kc-1 into L2, two rows ahead of their dequantization: a panel reads
 * a slice of each row, a stride the hardware prefetchers do not follow from row to row. */
#define PF_AHEAD 2
static void prefetch_row(const kb_mma *s, int64_t n, int64_t k0, int64_t kc)
{
    const uint8_t *row = (const uint8_t *)s->w + n * s->row_bytes;
    switch (s->fmt) {
    case KB_MMA_Q8_0: kb_mma_prefetch(row + k0 / QK * 34, kc / QK * 34); break;
    case KB_MMA_Q4_0: kb_mma_prefetch(row + k0 / QK * 18, kc / QK * 18); break;
    case KB_MMA_A4: kb_mma_prefetch(row + k0 / 2, kc / 2); break;
    default: kb_mma_prefetch(row + 2 * k0, 2 * kc); break;
    }
}

KB_TARGET_AVX512 static void panel_q8_0(const kb_mma *s, int64_t n0, int64_t nn, int64_t k0,
                                        int64_t kc, float *bp)
{
    for (int64_t r = 0; r < nn; r++) {
        if (r + PF_AHEAD < nn)
            prefetch_row(s, n0 + r + PF_AHEAD, k0, kc);
        const block_q8_0 *blk =
            (const block_q8_0 *)((const uint8_t *)s->w + (n0 + r) * s->row_bytes) + k0 / QK;
        float *dst = bp + r * KCP;
        for (int64_t b = 0; b < kc / QK; b++) {
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(blk[b].d));
            const __m128i q0 = _mm_loadu_si128((const __m128i *)blk[b].qs);
            const __m128i q1 = _mm_loadu_si128((const __m128i *)(blk[b].qs + 16));
            _mm512_store_ps(dst + QK * b, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
            _mm512_store_ps(dst + QK * b + 16,
                            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
        }
    }
}

KB_TARGET_AVX512 static void panel_q4_0(const kb_mma *s, int64_t n0, int64_t nn, int64_t k0,
                                        int64_t kc, float *bp)
{
    const __m512i m4 = _mm512_set1_epi32(15), eight = _mm512_set1_epi32(8);
    for (int64_t r = 0; r < nn; r++) {
        if (r + PF_AHEAD < nn)
            prefetch_row(s, n0 + r + PF_AHEAD, k0, kc);
        const block_q4_0 *blk =
            (const block_q4_0 *)((const uint8_t *)s->w + (n0 + r) * s->row_bytes) + k0 / QK;
        float *dst = bp + r * KCP;
        for (int64_t b = 0; b < kc / QK; b++) {
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(blk[b].d));
            const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)blk[b].qs));
            const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(v, m4), eight); /* weights 0..15 */
            const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(v, 4), eight); /* 16..31 */
            _mm512_store_ps(dst + QK * b, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
            _mm512_store_ps(dst + QK * b + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
        }
    }
}

static inline float bf16f(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

KB_TARGET_AVX512 static void panel_a4(const kb_mma *s, int64_t n0, int64_t nn, int64_t k0,
                                      int64_t kc, float *bp)
{
    const __m512i m4 = _mm512_set1_epi32(15);
    /* byte i holds codes 2i (low nibble) and 2i+1: interleave the two halves back in order */
    const __m512i i0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(8));
    const int64_t ng = s->K / s->group;
    for (int64_t r = 0; r < nn; r++) {
        if (r + PF_AHEAD < nn)
            prefetch_row(s, n0 + r + PF_AHEAD, k0, kc);
        const uint8_t *codes = (const uint8_t *)s->w + (n0 + r) * s->row_bytes + k0 / 2;
        const uint16_t *sc = s->scales + (n0 + r) * ng, *bi = s->biases + (n0 + r) * ng;
        float *dst = bp + r * KCP;
        for (int64_t b = 0; b < kc / QK; b++) {
            const int64_t g = (k0 + QK * b) / s->group;
            const __m512 sv = _mm512_set1_ps(bf16f(sc[g])), bv = _mm512_set1_ps(bf16f(bi[g]));
            const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(codes + 16 * b)));
            const __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_srli_epi32(v, 4);
            const __m512i c0 = _mm512_permutex2var_epi32(lo, i0, hi);
            const __m512i c1 = _mm512_permutex2var_epi32(lo, i1, hi);
            _mm512_store_ps(dst + QK * b, _mm512_fmadd_ps(_mm512_cvtepi32_ps(c0), sv, bv));
            _mm512_store_ps(dst + QK * b + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(c1), sv, bv));
        }
    }
}

KB_TARGET_AVX512 static void panel_f16(const kb_mma *s, int64_t n0, int64_t nn, int64_t k0,
                                       int64_t kc, float *bp)
{
    for (int64_t r = 0; r < nn; r++) {
        if (r + PF_AHEAD < nn)
            prefetch_row(s, n0 + r + PF_AHEAD, k0, kc);
        const uint16_t *src = (const uint16_t *)s->w + (n0 + r) * s->K + k0;
        float *dst = bp + r * KCP;
        for (int64_t k = 0; k < kc; k += 16)
            _mm512_store_ps(dst + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + k))));
    }
}

KB_TARGET_AVX512 static void panel_bf16(const kb_mma *s, int64_t n0, int64_t nn, int64_t k0,
                                        int64_t kc, float *bp)
{
    for (int64_t r = 0; r < nn; r++) {
        if (r + PF_AHEAD < nn)
            prefetch_row(s, n0 + r + PF_AHEAD, k0, kc);
        const uint16_t *src = (const uint16_t *)s->w + (n0 + r) * s->K + k0;
        float *dst = bp + r * KCP;
        for (int64_t k = 0; k < kc; k += 16) {
            const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + k)));
            _mm512_store_ps(dst + k, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
        }
    }
}

static void panel(const kb_mma *s, int64_t n0, int64_t nn, int64_t k0, int64_t kc, float *bp)
{
    switch (s->fmt) {
    case KB_MMA_Q8_0: panel_q8_0(s, n0, nn, k0, kc, bp); break;
    case KB_MMA_Q4_0: panel_q4_0(s, n0, nn, k0, kc, bp); break;
    case KB_MMA_A4: panel_a4(s, n0, nn, k0, kc, bp); break;
    case KB_MMA_F16: panel_f16(s, n0, nn, k0, kc, bp); break;
    case KB_MMA_BF16: panel_bf16(s, n0, nn, k0, kc, bp); break;
    }
    for (int64_t r = nn; r < (nn + NR - 1) / NR * NR; r++) /* rows past N: zeros */
        memset(bp + r * KCP, 0, sizeof(float) * (size_t)kc);
}

/* ---- the microkernel: 32 (MV = 2) or 16 (MV = 1) tokens x 12 weight rows -------------------- */

KB_TARGET_AVX512 KB_INLINE void ukr(const int MV, int64_t kc, const float *ap, const float *bp,
                                    float *ct, int first)
{
    __m512 acc0[NR], acc1[NR];
#pragma GCC unroll 12
    for (int j = 0; j < NR; j++) {
        acc0[j] = first ? _mm512_setzero_ps() : _mm512_load_ps(ct + j * MR);
        acc1[j] = MV == 2 && !first ? _mm512_load_ps(ct + j * MR + 16) : _mm512_setzero_ps();
    }
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        const __m512 a0 = _mm512_load_ps(ap + k * MR);
        const __m512 a1 = MV == 2 ? _mm512_load_ps(ap + k * MR + 16) : a0;
#pragma GCC unroll 12
        for (int j = 0; j < NR; j++) {
            const __m512 b = _mm512_set1_ps(bp[j * KCP + k]);
            acc0[j] = _mm512_fmadd_ps(a0, b, acc0[j]);
            if (MV == 2)
                acc1[j] = _mm512_fmadd_ps(a1, b, acc1[j]);
        }
    }
#pragma GCC unroll 12
    for (int j = 0; j < NR; j++) {
        _mm512_store_ps(ct + j * MR, acc0[j]);
        if (MV == 2)
            _mm512_store_ps(ct + j * MR + 16, acc1[j]);
    }
}

KB_TARGET_AVX512 static void ukr_32(int64_t kc, const float *ap, const float *bp, float *ct,
                                    int first)
{
    ukr(2, kc, ap, bp, ct, first);
}

KB_TARGET_AVX512 static void ukr_16(int64_t kc, const float *ap, const float *bp, float *ct,
                                    int first)
{
    ukr(1, kc, ap, bp, ct, first);
}

/* ---- items ------------------------------------------------------------------------------ */

static void item(const job *j, int tid, int64_t i)
{
    const kb_mma *s = &j->s;
    float *bp = (float *)(j->scratch + (size_t)tid * j->per_thread);
    float *ct = bp + (size_t)NC * KCP;
    int64_t ncb, mt_lo, mt_hi;
    kb_mma_item(&j->it, i, &ncb, &mt_lo, &mt_hi);
    const int64_t n0 = ncb * NC, nn = s->N - n0 < NC ? s->N - n0 : NC;
    const int64_t ntiles = (nn + NR - 1) / NR;
    /* the planted bugs' tiles: the matrix's last partial tiles */
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
                    const float *ap = j->ap + (mt * s->K + k0) * MR;
                    if (s->M - mt * MR <= 16)
                        ukr_16(kc, ap, bp + nt * NR * KCP, tile, k0 == 0);
                    else
                        ukr_32(kc, ap, bp + nt * NR * KCP, tile, k0 == 0);
                }
            }
        }
    }
    /* the tiles' sums to C: tile[j][r] is C[m0 + r][n0 + j] */
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

void kb_mma_avx512_gemm(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool,
                        kb_mma_plant plant)
{
    job j;
    memset(&j, 0, sizeof j);
    kb_mma_from_case(c, in, out, &j.s);
    j.plant = plant;
    const int nthreads = kb_pool_size(pool);
    kb_mma_items_plan(j.s.N, NC, (j.s.M + MR - 1) / MR, nthreads, &j.it);
    j.mt_per = (j.it.nmt + j.it.msplit - 1) / j.it.msplit;
    j.per_thread = sizeof(float) * ((size_t)NC * KCP + (size_t)j.mt_per * NC * MR);
    const size_t apb = sizeof(float) * (size_t)(j.it.nmt * j.s.K * MR);
    uint8_t *mem = kb_scratch(apb + (size_t)nthreads * j.per_thread);
    j.ap = (float *)mem;
    j.scratch = mem + apb;
    j.phase = 0;
    kb_pool_run(pool, task, &j);
    j.phase = 1;
    kb_pool_run(pool, task, &j);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_mma_avx512_gemm(c, in, out, pool, KB_MMA_PLANT_NONE);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

#define MMA_AVX512(fmt)                                                                            \
    const kb_impl kb_impl_mma_##fmt##_avx512 = {                                                   \
        .family = "mma_" #fmt,                                                                     \
        .name = "avx512",                                                                          \
        .backend = KB_BACKEND_CPU,                                                                 \
        .available = available,                                                                    \
        .cpu_run = run,                                                                            \
    };
MMA_AVX512(q8_0)
MMA_AVX512(q4_0)
MMA_AVX512(a4)
MMA_AVX512(f16)
MMA_AVX512(bf16)
