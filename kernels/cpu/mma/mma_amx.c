/* mma on AMX tiles (Sapphire Rapids and later), written to be plainly right rather than fast:
 *   q8_0, q4_0, a4: INT8 tiles (tdpbssd). A is quantized per token and 32-block (d = max|a| /
 *     127, as the VNNI path does) into rows of int8; a weight tile of 16 rows is unpacked per
 *     block into the layout tdpbssd reads (per k quad, 16 rows x 4 signed codes: q8_0 as stored,
 *     q4_0 code - 8, a4 the 0..15 code). Per 16 x 16 tile of C and 32-block: one tdpbssd (K =
 *     32) into a zeroed int32 tile, stored, converted and added to 16 f32 rows with the scale
 *     d_a[m] d_w[n] (a4: plus bias[n] d_a[m] sum(q_a[m])).
 *   bf16, f16: BF16 tiles (tdpbf16ps). A rounded to bf16 rows; 16 weight rows repacked into
 *     pairs (W[n][2p], W[n][2p+1]) per tile row p (f16 rounded to bf16); C tiles in f32 across
 *     all of K, 32 values of K per tdpbf16ps.
 * Rows of A past M are zero (A's copy is padded to 16 rows), weight rows past N are zero, and
 * only C's M x N elements are written. Threads take 16-row weight tiles in turn.
 * available() asks for the CPU's AMX-INT8 / AMX-BF16 and for the OS's permission to use the
 * tile state (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), requested by
 * harness/cpu.c). NOT RUN on the development machine (Zen 4, no AMX): checked only by the tests
 * on an AMX machine. */
#include <stdint.h>
#include <string.h>

#include "ggml_formats.h"
#include "mma_x86.h"

#define KB_TARGET_AMX                                                                              \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,"           \
                          "amx-int8,amx-bf16")))

typedef struct job {
    kb_mma s;
    int64_t mp;       /* M rounded up to 16 */
    int64_t nb;       /* 32-blocks of K */
    int8_t *aq;       /* int8: [mp][K] */
    float *ad, *ads;  /* int8: [mp][nb] scales, d * sum(q) */
    int32_t *as;      /* int8: [mp][nb] sums of q */
    uint16_t *ab;     /* bf16: [mp][K] */
    uint8_t *scratch; /* per thread: the weight tile's repacking */
    size_t per_thread;
    int phase;
} job;

/* The tile configuration (palette 1): tile 0 C 16 x 64 bytes, tile 1 A 16 rows x ka bytes,
 * tile 2 B kb rows x 64 bytes. */
typedef struct __attribute__((packed)) tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;
_Static_assert(sizeof(tilecfg) == 64, "the tile configuration is 64 bytes");

static void config(tilecfg *t, int ka, int kb)
{
    memset(t, 0, sizeof *t);
    t->palette = 1;
    t->rows[0] = 16;
    t->colsb[0] = 64;
    t->rows[1] = 16;
    t->colsb[1] = (uint16_t)ka;
    t->rows[2] = (uint8_t)kb;
    t->colsb[2] = 64;
}

static inline float bf16f(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- phase 0: A as the tiles read it ------------------------------------------------------ */

KB_TARGET_AMX static void prep_a(const job *j, int64_t m)
{
    const kb_mma *s = &j->s;
    const int bf = s->fmt == KB_MMA_F16 || s->fmt == KB_MMA_BF16;
    for (int64_t b = 0; b < j->nb; b++) {
        const int64_t k0 = 32 * b;
        __m512 v0 = _mm512_setzero_ps(), v1 = v0;
        if (m < s->M) {
            v0 = _mm512_loadu_ps(s->a + m * s->K + k0);
            v1 = _mm512_loadu_ps(s->a + m * s->K + k0 + 16);
        }
        if (bf) {
            _mm512_storeu_si512((void *)(j->ab + m * s->K + k0), (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
            continue;
        }
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const __m512 id = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
        const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
        const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
        _mm_storeu_si128((__m128i *)(j->aq + m * s->K + k0), _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(j->aq + m * s->K + k0 + 16), _mm512_cvtepi32_epi8(q1));
        const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        j->ad[m * j->nb + b] = amax / 127.0f;
        j->as[m * j->nb + b] = sum;
        j->ads[m * j->nb + b] = amax / 127.0f * (float)sum;
    }
}

/* ---- INT8 tiles: q8_0, q4_0, a4 -------------------------------------------------------------- */

/* Weight rows n0..n0+15 (zeros past N): codes [nb][8 quads][16 rows][4], scales and biases
 * [nb][16]. */
static void unpack_w8(const job *j, int64_t n0, int8_t *bt, float *bd, float *bb)
{
    const kb_mma *s = &j->s;
    const int64_t ng = s->K / s->group;
    memset(bt, 0, (size_t)j->nb * 512);
    memset(bd, 0, sizeof(float) * (size_t)j->nb * 16);
    memset(bb, 0, sizeof(float) * (size_t)j->nb * 16);
    for (int r = 0; r < 16 && n0 + r < s->N; r++) {
        const uint8_t *row = (const uint8_t *)s->w + (n0 + r) * s->row_bytes;
        for (int64_t b = 0; b < j->nb; b++) {
            int8_t code[32];
            if (s->fmt == KB_MMA_Q8_0) {
                const block_q8_0 *blk = (const block_q8_0 *)row + b;
                bd[b * 16 + r] = kb_f16_to_f32(blk->d);
                memcpy(code, blk->qs, 32);
            } else if (s->fmt == KB_MMA_Q4_0) {
                const block_q4_0 *blk = (const block_q4_0 *)row + b;
                bd[b * 16 + r] = kb_f16_to_f32(blk->d);
                for (int i = 0; i < 16; i++) {
                    code[i] = (int8_t)((blk->qs[i] & 15) - 8);
                    code[i + 16] = (int8_t)((blk->qs[i] >> 4) - 8);
                }
            } else { /* a4: byte i holds codes 2i (low nibble) and 2i + 1 */
                const int64_t g = 32 * b / s->group;
                bd[b * 16 + r] = bf16f(s->scales[(n0 + r) * ng + g]);
                bb[b * 16 + r] = bf16f(s->biases[(n0 + r) * ng + g]);
                for (int i = 0; i < 16; i++) {
                    code[2 * i] = (int8_t)(row[16 * b + i] & 15);
                    code[2 * i + 1] = (int8_t)(row[16 * b + i] >> 4);
                }
            }
            for (int q = 0; q < 8; q++)
                memcpy(bt + b * 512 + q * 64 + r * 4, code + 4 * q, 4);
        }
    }
}

KB_TARGET_AMX static void ntile_i8(const job *j, uint8_t *mem, int64_t n0)
{
    const kb_mma *s = &j->s;
    int8_t *bt = (int8_t *)mem;
    float *bd = (float *)(mem + (size_t)j->nb * 512), *bb = bd + j->nb * 16;
    int32_t *ci = (int32_t *)(bb + j->nb * 16); /* 16 x 16, 64-byte aligned */
    unpack_w8(j, n0, bt, bd, bb);
    const int64_t cols = s->N - n0 < 16 ? s->N - n0 : 16;
    const __mmask16 keep = (__mmask16)((1u << cols) - 1);
    for (int64_t m0 = 0; m0 < s->M; m0 += 16) {
        __m512 acc[16];
        for (int r = 0; r < 16; r++)
            acc[r] = _mm512_setzero_ps();
        for (int64_t b = 0; b < j->nb; b++) {
            _tile_zero(0);
            _tile_loadd(1, j->aq + m0 * s->K + 32 * b, s->K);
            _tile_loadd(2, bt + b * 512, 64);
            _tile_dpbssd(0, 1, 2);
            _tile_stored(0, ci, 64);
            const __m512 dw = _mm512_loadu_ps(bd + b * 16), bw = _mm512_loadu_ps(bb + b * 16);
            for (int r = 0; r < 16; r++) {
                const int64_t i = (m0 + r) * j->nb + b;
                const __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(j->ad[i]));
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(ci + 16 * r)), sc,
                                         acc[r]);
                if (s->fmt == KB_MMA_A4)
                    acc[r] = _mm512_fmadd_ps(bw, _mm512_set1_ps(j->ads[i]), acc[r]);
            }
        }
        for (int r = 0; r < 16 && m0 + r < s->M; r++)
            _mm512_mask_storeu_ps(s->c + (m0 + r) * s->N + n0, keep, acc[r]);
    }
}

/* ---- BF16 tiles: bf16, f16 ------------------------------------------------------------------- */

/* Weight rows n0..n0+15 (zeros past N) as [K/2 pairs][16 rows][2] bf16. */
static void repack_wbf(const job *j, int64_t n0, uint16_t *bt)
{
    const kb_mma *s = &j->s;
    memset(bt, 0, sizeof(uint16_t) * (size_t)s->K * 16);
    for (int r = 0; r < 16 && n0 + r < s->N; r++) {
        const uint16_t *row = (const uint16_t *)s->w + (n0 + r) * s->K;
        for (int64_t k = 0; k < s->K; k++) {
            const uint16_t v = s->fmt == KB_MMA_BF16 ? row[k] : kb_f32_to_bf16(kb_f16_to_f32(row[k]));
            bt[(k / 2) * 32 + r * 2 + (k & 1)] = v;
        }
    }
}

KB_TARGET_AMX static void ntile_bf(const job *j, uint8_t *mem, int64_t n0)
{
    const kb_mma *s = &j->s;
    uint16_t *bt = (uint16_t *)mem;
    float *cf = (float *)(mem + sizeof(uint16_t) * (size_t)s->K * 16); /* 16 x 16 */
    repack_wbf(j, n0, bt);
    const int64_t cols = s->N - n0 < 16 ? s->N - n0 : 16;
    for (int64_t m0 = 0; m0 < s->M; m0 += 16) {
        _tile_zero(0);
        for (int64_t k0 = 0; k0 < s->K; k0 += 32) {
            _tile_loadd(1, j->ab + m0 * s->K + k0, 2 * s->K);
            _tile_loadd(2, bt + (k0 / 2) * 32, 64);
            _tile_dpbf16ps(0, 1, 2);
        }
        _tile_stored(0, cf, 64);
        for (int r = 0; r < 16 && m0 + r < s->M; r++)
            memcpy(s->c + (m0 + r) * s->N + n0, cf + 16 * r, sizeof(float) * (size_t)cols);
    }
}

KB_TARGET_AMX static void task(void *arg, int tid, int nthreads)
{
    const job *j = arg;
    const kb_mma *s = &j->s;
    int64_t lo, hi;
    if (j->phase == 0) {
        kb_split(j->mp, 1, tid, nthreads, &lo, &hi);
        for (int64_t m = lo; m < hi; m++)
            prep_a(j, m);
        return;
    }
    const int bf = s->fmt == KB_MMA_F16 || s->fmt == KB_MMA_BF16;
    tilecfg cfg __attribute__((aligned(64)));
    config(&cfg, bf ? 64 : 32, bf ? 16 : 8);
    _tile_loadconfig(&cfg);
    uint8_t *mem = j->scratch + (size_t)tid * j->per_thread;
    kb_split((s->N + 15) / 16, 1, tid, nthreads, &lo, &hi);
    for (int64_t t = lo; t < hi; t++) {
        if (bf)
            ntile_bf(j, mem, 16 * t);
        else
            ntile_i8(j, mem, 16 * t);
    }
    _tile_release();
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    job j;
    memset(&j, 0, sizeof j);
    kb_mma_from_case(c, in, out, &j.s);
    const kb_mma *s = &j.s;
    const int bf = s->fmt == KB_MMA_F16 || s->fmt == KB_MMA_BF16;
    j.mp = (s->M + 15) / 16 * 16;
    j.nb = s->K / 32;
    const int nthreads = kb_pool_size(pool);
    size_t abytes, per;
    if (bf) {
        abytes = sizeof(uint16_t) * (size_t)(j.mp * s->K);
        per = sizeof(uint16_t) * (size_t)s->K * 16 + 1024;
    } else {
        abytes = (size_t)(j.mp * s->K) + 3 * sizeof(float) * (size_t)(j.mp * j.nb);
        per = (size_t)j.nb * 512 + 2 * sizeof(float) * (size_t)j.nb * 16 + 1024;
    }
    abytes = (abytes + 63) / 64 * 64;
    j.per_thread = (per + 63) / 64 * 64;
    uint8_t *mem = kb_scratch(abytes + (size_t)nthreads * j.per_thread);
    if (bf) {
        j.ab = (uint16_t *)mem;
    } else {
        j.aq = (int8_t *)mem;
        j.ad = (float *)(mem + j.mp * s->K);
        j.ads = j.ad + j.mp * j.nb;
        j.as = (int32_t *)(j.ads + j.mp * j.nb);
    }
    j.scratch = mem + abytes;
    j.phase = 0;
    kb_pool_run(pool, task, &j);
    j.phase = 1;
    kb_pool_run(pool, task, &j);
}

static const char *need_amx(int bf16)
{
    const char *why = kb_need_avx512();
    if (why)
        return why;
    const kb_cpu_features *f = kb_cpu();
    if (!f->amx_int8)
        return "CPU lacks AMX (amx-int8)";
    if (bf16 && (!f->amx_bf16 || !f->avx512bf16))
        return "CPU lacks amx-bf16 or avx512bf16";
    if (!f->amx_os)
        return "the OS does not grant AMX tile data (XCR0 or arch_prctl ARCH_REQ_XCOMP_PERM)";
    return NULL;
}

static const char *avail_i8(const kb_env *env)
{
    (void)env;
    return need_amx(0);
}

static const char *avail_bf(const kb_env *env)
{
    (void)env;
    return need_amx(1);
}

#define MMA_AMX(fmt, avail, tol, why)                                                              \
    const kb_impl kb_impl_mma_##fmt##_amx = {                                                      \
        .family = "mma_" #fmt,                                                                     \
        .name = "amx",                                                                             \
        .backend = KB_BACKEND_CPU,                                                                 \
        .available = avail,                                                                        \
        .tol_cond = tol,                                                                           \
        .tol_cond_inputs = {[KB_INPUTS_OUTLIERS] = KB_MMA_I8_TOL_OUTLIERS},                        \
        .tol_why = why,                                                                            \
        .cpu_run = run,                                                                            \
    };
MMA_AMX(q8_0, avail_i8, KB_MMA_I8_TOL, KB_MMA_I8_WHY)
MMA_AMX(q4_0, avail_i8, KB_MMA_I8_TOL, KB_MMA_I8_WHY)
MMA_AMX(a4, avail_i8, KB_MMA_I8_TOL, KB_MMA_I8_WHY)
/* the bounds of the AVX512-BF16 path (mma_avx512bf16.c) */
MMA_AMX(bf16, avail_bf, 4e-3, "A rounded to bf16 (2^-8 relative per product: a bound)")
MMA_AMX(f16, avail_bf, 8e-3, "A and the f16 weights rounded to bf16 (2 x 2^-8 relative per "
                             "product: a bound)")
