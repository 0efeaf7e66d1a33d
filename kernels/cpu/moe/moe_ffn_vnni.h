/* The int8-activation building blocks of the AVX512-VNNI MoE kernels: quantized vectors and the
 * row dot products of the three weight formats (a4, a8, q4_0).
 *
 * A vector (x of a token, or an expert's activation silu(g) * u) is quantized per block of 32
 * values, d = max|v| / 127, q = round(v / d) (ties to even), GGML's Q8 activation trick, and
 * laid out per chunk of 128 values to meet the weight bytes of its format in one zmm:
 *   a4:   bytes 0..63 = q[2i], 64..127 = q[2i+1] (a zmm of 64 code bytes holds codes 2i in its
 *         low nibbles, 2i+1 in its high ones: LSB-first packing);
 *   a8:   q in order (a zmm holds 64 codes);
 *   q4_0: block u of the chunk (u < 4): bytes 16u..16u+15 = its q[0..15], 64+16u.. = q[16..31]
 *         (a zmm of four blocks' 16 nibble bytes: low nibbles weights 0..15, high 16..31).
 * Then vpdpbusd (unsigned codes x signed activations) sums 4 byte products into each i32 lane:
 * for a4 and q4_0 lane j covers values 8j..8j+7 of the chunk (block j/4), for a8 (two zmm a
 * chunk, half h) values 64h+4j..64h+4j+3 (block 2h + j/8). Each lane's integer sum converts to
 * f32 and meets its factor (weight group scale x activation block scale) in one FMA.
 * Affine biases meet the group sums of the quantized vector once per row (sum_j (q s + b) x_j
 * = s sum q x + b sum x, against the x the integers saw); Q4_0's codes are biased by 8: its
 * rows subtract 8 d_w sum_blocks(d_x sum q). Vectors are zero past their length (q, d = 0), so
 * a row's tail chunk contributes nothing there; weight loads never pass a row's end. */
#ifndef KB_MOE_FFN_VNNI_H
#define KB_MOE_FFN_VNNI_H

#include "moe_ref.h"
#include "simd_x86.h"

#define KB_TARGET_MOE512 \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

#define MF_TMAX 4          /* tokens (vectors) a row meets per pass */
#define MF_MAX_COLS 16384  /* hidden and ffn ranges of the families */
#define MF_MAX_NG (MF_MAX_COLS / 32)

typedef struct {
    int8_t *q;  /* [nv][np] */
    float *d;   /* [nv][nbp] block scales */
    float *ds;  /* [nv][nbp] d * sum(q) of the block */
    float *gs;  /* [nv][ngp] affine: group sums of ds, zero past the groups */
    int64_t np, nbp, ngp;
} mf_vec;

static inline int64_t mf_round(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

/* Sizes of vectors of n values in groups of G. */
static inline void mf_vec_dims(mf_vec *v, int64_t n, int G)
{
    v->np = mf_round(n, 128);
    v->nbp = v->np / 32;
    v->ngp = mf_round(n / G, 16);
}

static inline size_t mf_vec_bytes(const mf_vec *v, int64_t nv)
{
    return (size_t)nv * (size_t)(v->np + 4 * (2 * v->nbp + v->ngp));
}

/* Carves nv vectors out of mem (64-byte aligned, mf_vec_bytes). */
static inline void mf_vec_place(mf_vec *v, void *mem, int64_t nv)
{
    v->q = mem;
    v->d = (float *)(v->q + nv * v->np);
    v->ds = v->d + nv * v->nbp;
    v->gs = v->ds + nv * v->nbp;
}

/* Quantizes values src[0 .. c1 - c0) into positions c0 .. c1 (multiples of 32; c0 and c1 also
 * of G) of vector iv; src == NULL writes zeros (the padding). Affine group sums of those groups
 * are set too. */
KB_TARGET_MOE512 KB_INLINE void mf_quantize(const int fmt, const int G, const mf_vec *v,
                                            int64_t iv, const float *src, int64_t c0, int64_t c1)
{
    int8_t *q = v->q + iv * v->np;
    float *d = v->d + iv * v->nbp, *ds = v->ds + iv * v->nbp, *gs = v->gs + iv * v->ngp;
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    for (int64_t c = c0; c < c1; c += 32) {
        const int64_t b = c / 32, ch = c / 128, u = b % 4;
        __m512 v0 = _mm512_setzero_ps(), v1 = v0;
        if (src) {
            v0 = _mm512_loadu_ps(src + (c - c0));
            v1 = _mm512_loadu_ps(src + (c - c0) + 16);
        }
        const float amax = _mm512_reduce_max_ps(
            _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float dd = amax / 127.0f;
        const __m512 id = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
        const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id)); /* nearest even */
        const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
        d[b] = dd;
        ds[b] = dd * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        int8_t *qc = q + ch * 128;
        if (fmt == MOE_FMT_A4) {
            _mm_storeu_si128((__m128i *)(qc + 16 * u),
                             _mm512_cvtsepi32_epi8(_mm512_permutex2var_epi32(i0, ev, i1)));
            _mm_storeu_si128((__m128i *)(qc + 64 + 16 * u),
                             _mm512_cvtsepi32_epi8(_mm512_permutex2var_epi32(i0, od, i1)));
        } else if (fmt == MOE_FMT_A8) {
            _mm_storeu_si128((__m128i *)(qc + 32 * u), _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(qc + 32 * u + 16), _mm512_cvtsepi32_epi8(i1));
        } else {
            _mm_storeu_si128((__m128i *)(qc + 16 * u), _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(qc + 64 + 16 * u), _mm512_cvtsepi32_epi8(i1));
        }
    }
    if (fmt != MOE_FMT_Q4_0)
        for (int64_t g = c0 / G; g < c1 / G; g++) {
            float s = 0;
            for (int64_t b = g * G / 32; b < (g + 1) * G / 32; b++)
                s += ds[b];
            gs[g] = s;
        }
}

/* Zeros vector iv from position c (a multiple of 32) to its padded end, and its group sums
 * from group g on. */
static inline void mf_pad(const int fmt, const mf_vec *v, int64_t iv, int64_t c, int64_t g)
{
    int8_t *q = v->q + iv * v->np;
    float *d = v->d + iv * v->nbp, *ds = v->ds + iv * v->nbp, *gs = v->gs + iv * v->ngp;
    for (int64_t b = c / 32; b < v->nbp; b++) {
        const int64_t ch = b / 4, u = b % 4; /* where the layout keeps the block's bytes */
        if (fmt == MOE_FMT_A8) {
            memset(q + ch * 128 + 32 * u, 0, 32);
        } else {
            memset(q + ch * 128 + 16 * u, 0, 16);
            memset(q + ch * 128 + 64 + 16 * u, 0, 16);
        }
        d[b] = ds[b] = 0;
    }
    for (; g < v->ngp; g++)
        gs[g] = 0;
}

/* ---- row dot products: one weight row against T <= MF_TMAX vectors vi[t] ---------------- */

/* n bf16 at p as f32 into o (o padded: 16 more floats are written, zeros past n). */
KB_TARGET_MOE512 KB_INLINE void mf_bf16_row(const uint16_t *p, int64_t n, float *o)
{
    for (int64_t i = 0; i < n + 16; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : n > i ? (__mmask16)((1u << (n - i)) - 1) : 0;
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p + i));
        _mm512_storeu_ps(o + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
}

/* a + bias_g gs[g] over a row's ng groups (gs zero-padded to a multiple of 16), lane-wise:
 * the caller's one reduction sums both. */
KB_TARGET_MOE512 KB_INLINE __m512 mf_bias_dot(const uint16_t *bi, int64_t ng, const float *gs,
                                              __m512 a)
{
    for (int64_t g = 0; g < ng; g += 16) {
        const __mmask16 m = ng - g >= 16 ? 0xFFFF : (__mmask16)((1u << (ng - g)) - 1);
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, bi + g));
        a = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)),
                            _mm512_loadu_ps(gs + g), a);
    }
    return a;
}

/* lane j of a4/q4_0 -> block j/4 of the chunk; of a8 half h -> block 2h + j/8 */
#define MF_IDX4 _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)

/* A chunk's 4 floats at p, spread to the 16 lanes by idx. */
KB_TARGET_MOE512 KB_INLINE __m512 mf_spread(__m512i idx, const float *p)
{
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_loadu_ps(p)));
}

/* a4: n codes (a multiple of 32) at w, group G. */
KB_TARGET_MOE512 KB_INLINE void mf_dot_a4(const int G, const int T, const uint8_t *w,
                                          const uint16_t *sc, const uint16_t *bi, int64_t n,
                                          const mf_vec *v, const int64_t *vi, float *out)
{
    const int gpc = 128 / G; /* groups per chunk (G <= 128) */
    const int64_t ng = n / G, nch = (n + 127) / 128, rb = n / 2;
    float sf[MF_MAX_NG + 32];
    mf_bf16_row(sc, ng, sf);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* lane j -> values 8j.. -> group 8j / G of the chunk */
    const __m512i is = gpc == 4 ? MF_IDX4
                       : gpc == 2 ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
                                  : _mm512_setzero_si512();
    const __m512i id = MF_IDX4;
    __m512 acc[MF_TMAX];
    const int8_t *xq[MF_TMAX];
    const float *xd[MF_TMAX];
    for (int t = 0; t < T; t++) {
        acc[t] = _mm512_setzero_ps();
        xq[t] = v->q + vi[t] * v->np;
        xd[t] = v->d + vi[t] * v->nbp;
    }
    for (int64_t c = 0; c < nch; c++) {
        const uint8_t *p = w + 64 * c;
        _mm_prefetch((const char *)(p + 1024), _MM_HINT_T0);
        const __m512i wv = rb - 64 * c >= 64
                               ? _mm512_loadu_si512(p)
                               : _mm512_maskz_loadu_epi8((1ull << (rb - 64 * c)) - 1, p);
        const __m512i lo = _mm512_and_si512(wv, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), m4);
        const __m512 sv = gpc == 1 ? _mm512_set1_ps(sf[c]) : mf_spread(is, sf + c * gpc);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512i ip = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
                                             _mm512_loadu_si512(xq[t] + 128 * c));
            ip = _mm512_dpbusd_epi32(ip, hi, _mm512_loadu_si512(xq[t] + 128 * c + 64));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ip),
                                     _mm512_mul_ps(sv, mf_spread(id, xd[t] + 4 * c)), acc[t]);
        }
    }
    for (int t = 0; t < T; t++)
        out[t] = _mm512_reduce_add_ps(mf_bias_dot(bi, ng, v->gs + vi[t] * v->ngp, acc[t]));
}

/* a8: n codes at w, group G. */
KB_TARGET_MOE512 KB_INLINE void mf_dot_a8(const int G, const int T, const uint8_t *w,
                                          const uint16_t *sc, const uint16_t *bi, int64_t n,
                                          const mf_vec *v, const int64_t *vi, float *out)
{
    const int gpc = 128 / G;
    const int64_t ng = n / G, nch = (n + 127) / 128;
    float sf[MF_MAX_NG + 32];
    mf_bf16_row(sc, ng, sf);
    /* half h, lane j -> values 64h + 4j.. -> group (64h + 4j) / G, block 2h + j / 8 */
    const __m512i lo8 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i is0 = gpc == 4 ? lo8 : _mm512_setzero_si512();
    const __m512i is1 = gpc == 4   ? _mm512_add_epi32(lo8, _mm512_set1_epi32(2))
                        : gpc == 2 ? _mm512_set1_epi32(1)
                                   : _mm512_setzero_si512();
    const __m512i id0 = lo8, id1 = _mm512_add_epi32(lo8, _mm512_set1_epi32(2));
    __m512 acc[MF_TMAX];
    const int8_t *xq[MF_TMAX];
    const float *xd[MF_TMAX];
    for (int t = 0; t < T; t++) {
        acc[t] = _mm512_setzero_ps();
        xq[t] = v->q + vi[t] * v->np;
        xd[t] = v->d + vi[t] * v->nbp;
    }
    for (int64_t c = 0; c < nch; c++) {
        const uint8_t *p = w + 128 * c;
        _mm_prefetch((const char *)(p + 1024), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + 1088), _MM_HINT_T0);
        const int64_t left = n - 128 * c; /* 32, 64, 96 or >= 128 */
        const __m512 s4 = gpc == 1 ? _mm512_set1_ps(sf[c]) : _mm512_setzero_ps();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            if (left <= 64 * h)
                break;
            const __m512i wv = left - 64 * h >= 64
                                   ? _mm512_loadu_si512(p + 64 * h)
                                   : _mm512_maskz_loadu_epi8((1ull << (left - 64 * h)) - 1, p + 64 * h);
            const __m512 sv = gpc == 1 ? s4 : mf_spread(h ? is1 : is0, sf + c * gpc);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const __m512i ip = _mm512_dpbusd_epi32(
                    _mm512_setzero_si512(), wv, _mm512_loadu_si512(xq[t] + 128 * c + 64 * h));
                acc[t] = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(ip),
                    _mm512_mul_ps(sv, mf_spread(h ? id1 : id0, xd[t] + 4 * c)), acc[t]);
            }
        }
    }
    for (int t = 0; t < T; t++)
        out[t] = _mm512_reduce_add_ps(mf_bias_dot(bi, ng, v->gs + vi[t] * v->ngp, acc[t]));
}

/* q4_0: n weights (n / 32 blocks of 18 bytes) at w. */
KB_TARGET_MOE512 KB_INLINE void mf_dot_q4_0(const int T, const uint8_t *w, int64_t n,
                                            const mf_vec *v, const int64_t *vi, float *out)
{
    const int64_t nb = n / 32, nq = (nb + 3) / 4;
    const __m512i m4 = _mm512_set1_epi8(0x0F), id = MF_IDX4;
    __m512 acc[MF_TMAX];
    __m128 bacc[MF_TMAX];
    const int8_t *xq[MF_TMAX];
    const float *xd[MF_TMAX], *xs[MF_TMAX];
    for (int t = 0; t < T; t++) {
        acc[t] = _mm512_setzero_ps();
        bacc[t] = _mm_setzero_ps();
        xq[t] = v->q + vi[t] * v->np;
        xd[t] = v->d + vi[t] * v->nbp;
        xs[t] = v->ds + vi[t] * v->nbp;
    }
    uint8_t tail[72] __attribute__((aligned(16)));
    for (int64_t c = 0; c < nq; c++) {
        const uint8_t *p = w + 72 * c;
        _mm_prefetch((const char *)(p + 1152), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + 1216), _MM_HINT_T0);
        if (4 * c + 4 > nb) { /* the row's last blocks: zero blocks (d = 0) after them */
            memset(tail, 0, sizeof tail);
            memcpy(tail, p, (size_t)(nb - 4 * c) * 18);
            p = tail;
        }
        __m512i wv = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p + 2)));
        wv = _mm512_inserti32x4(wv, _mm_loadu_si128((const __m128i *)(p + 20)), 1);
        wv = _mm512_inserti32x4(wv, _mm_loadu_si128((const __m128i *)(p + 38)), 2);
        wv = _mm512_inserti32x4(wv, _mm_loadu_si128((const __m128i *)(p + 56)), 3);
        uint16_t h4[4];
        for (int u = 0; u < 4; u++)
            memcpy(&h4[u], p + 18 * u, 2);
        uint64_t hh;
        memcpy(&hh, h4, 8);
        const __m128 dw = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)hh));
        const __m512i lo = _mm512_and_si512(wv, m4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), m4);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m512i ip = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
                                             _mm512_loadu_si512(xq[t] + 128 * c));
            ip = _mm512_dpbusd_epi32(ip, hi, _mm512_loadu_si512(xq[t] + 128 * c + 64));
            const __m128 f = _mm_mul_ps(dw, _mm_loadu_ps(xd[t] + 4 * c));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ip),
                                     _mm512_permutexvar_ps(id, _mm512_castps128_ps512(f)), acc[t]);
            bacc[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(xs[t] + 4 * c), bacc[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        __m128 b = _mm_add_ps(bacc[t], _mm_movehl_ps(bacc[t], bacc[t]));
        b = _mm_add_ss(b, _mm_movehdup_ps(b));
        out[t] = _mm512_reduce_add_ps(acc[t]) - 8.0f * _mm_cvtss_f32(b);
    }
}

/* Row dot for any format, G and 1..MF_TMAX vectors (every combination instantiated once). */
typedef void (*mf_dot_fn)(const uint8_t *w, const uint16_t *sc, const uint16_t *bi, int64_t n,
                          const mf_vec *v, const int64_t *vi, float *out);

#endif
