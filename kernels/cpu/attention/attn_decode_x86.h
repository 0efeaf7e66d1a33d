/* What the x86 decode kernels share around their score and P V loops (AVX2 helpers, inlined
 * into the AVX-512 kernel too): the prefetch stream, the online-softmax step on the lane pattern
 * of attn_x86.h, the rescale of the accumulators and the final partial records. */
#ifndef KB_ATTN_DECODE_X86_H
#define KB_ATTN_DECODE_X86_H

#include "attn_decode_plan.h"
#include "attn_x86.h"

/* A software prefetch stream: n lines per step, in address order, up to end. */
typedef struct {
    const char *p, *end;
    int n;
} kb_pf_stream;

KB_TARGET_AVX2 KB_INLINE void kb_pf_step(kb_pf_stream *s)
{
    const char *p = s->p, *e = p + 64 * s->n < s->end ? p + 64 * s->n : s->end;
    for (; p + 256 <= e; p += 256) {
        _mm_prefetch(p, _MM_HINT_T0);
        _mm_prefetch(p + 64, _MM_HINT_T0);
        _mm_prefetch(p + 128, _MM_HINT_T0);
        _mm_prefetch(p + 192, _MM_HINT_T0);
    }
    for (; p < e; p += 64)
        _mm_prefetch(p, _MM_HINT_T0);
    s->p = p;
}

/* The online-softmax step of one head block over the tile's scores p[0 .. 8 * nv) (in place:
 * they become the weights); returns alpha in the lane pattern. */
KB_TARGET_AVX2 KB_INLINE __m256 kb_dec_softmax_step(float *p, int nt, __m256 *mst, __m256 *lst,
                                             const int GB)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    const int nv = (nt + 7) / 8 * GB;
    if (nt % 8) /* lanes past the tile's end: -inf */
        for (int v = nt / 8 * GB; v < nv; v++) {
            float pos[8];
            for (int i = 0; i < 8; i++)
                pos[i] = (float)(v * 8 / GB + i / GB);
            const __m256 past =
                _mm256_cmp_ps(_mm256_loadu_ps(pos), _mm256_set1_ps((float)nt), _CMP_GE_OQ);
            _mm256_store_ps(p + 8 * v, _mm256_blendv_ps(_mm256_load_ps(p + 8 * v), ninf, past));
        }
    __m256 mx = ninf;
    for (int v = 0; v < nv; v++)
        mx = _mm256_max_ps(mx, _mm256_load_ps(p + 8 * v));
    const __m256 m_old = *mst;
    const __m256 m_new = _mm256_max_ps(m_old, kb_pattern_max(mx, GB));
    /* the rules of attn_softmax.h, lane-wise: subtract 0 while the max is -inf; alpha = 0
     * while the old max is -inf */
    const __m256 m_use =
        _mm256_blendv_ps(m_new, _mm256_setzero_ps(), _mm256_cmp_ps(m_new, ninf, _CMP_EQ_OQ));
    const __m256 alpha = _mm256_andnot_ps(_mm256_cmp_ps(m_old, ninf, _CMP_EQ_OQ),
                                          kb_exp2_avx2(_mm256_sub_ps(m_old, m_use)));
    __m256 psum = _mm256_setzero_ps();
    for (int v = 0; v < nv; v++) {
        const __m256 e = kb_exp2_avx2(_mm256_sub_ps(_mm256_load_ps(p + 8 * v), m_use));
        psum = _mm256_add_ps(psum, e);
        _mm256_store_ps(p + 8 * v, e);
    }
    *lst = _mm256_fmadd_ps(*lst, alpha, psum);
    *mst = m_new;
    return alpha;
}

/* o[g][0..D) *= alpha of head g (lane g of the pattern), unless every alpha is 1. */
KB_TARGET_AVX2 KB_INLINE void kb_dec_rescale(float *const *o, int64_t D, __m256 alpha,
                                             const int GB)
{
    if (!_mm256_movemask_ps(_mm256_cmp_ps(alpha, _mm256_set1_ps(1.0f), _CMP_NEQ_UQ)))
        return;
    float a[8] __attribute__((aligned(32)));
    _mm256_store_ps(a, alpha);
    for (int g = 0; g < GB; g++) {
        const __m256 ag = _mm256_set1_ps(a[g]);
        for (int64_t d = 0; d < D; d += 8)
            _mm256_store_ps(o[g] + d, _mm256_mul_ps(ag, _mm256_load_ps(o[g] + d)));
    }
}

/* Writes m and l of the heads h0..h0+GB-1 (from the pattern vectors) into their records. */
KB_TARGET_AVX2 KB_INLINE void kb_dec_finish(float *recs, int64_t rec, int64_t h0, __m256 mst,
                                            __m256 lst, const int GB)
{
    float m[8], l[8];
    _mm256_storeu_ps(m, mst);
    _mm256_storeu_ps(l, kb_pattern_sum(lst, GB));
    for (int g = 0; g < GB; g++) {
        recs[(h0 + g) * rec + KB_SM_M] = m[g];
        recs[(h0 + g) * rec + KB_SM_L] = l[g];
    }
}

/* The prefetch streams of the tile after the one at j, of kv heads [kv0, kv1), up to T (past
 * the cell's end too: the next chunk is most often this thread's next): K spread over nk steps,
 * V over nv steps. A window of two pages or more starts and ends on page
 * boundaries (the lines it leaves out are the next window's): with windows that start inside a
 * page, the kernel ran 5-15% slower at T = 8192 on Zen 3, by how far inside (the cache is
 * 64 bytes into its first page in kbench), and as fast as this at page-aligned starts. */
KB_TARGET_AVX2 KB_INLINE void kb_dec_prefetch_next(const kb_dec_job *J, int64_t j, int64_t kv0,
                                                   int64_t kv1, int64_t tile, int64_t nk,
                                                   int64_t nv, kb_pf_stream *pk, kb_pf_stream *pv)
{
    *pk = *pv = (kb_pf_stream){NULL, NULL, 0};
    const int64_t j1 = J->s.T;
    if (j + tile >= j1)
        return;
    const int64_t D = J->s.D, stride = J->s.kv_heads * D, esz = J->s.kv_f16 ? 2 : 4;
    const int64_t e = j + 2 * tile < j1 ? j + 2 * tile : j1;
    const int64_t o0 = ((j + tile) * stride + kv0 * D) * esz;
    const int64_t o1 = ((e - 1) * stride + kv1 * D) * esz;
    const int64_t lines = (o1 - o0 + 63) / 64;
    const char *k0 = (const char *)J->k + o0, *k1 = (const char *)J->k + o1;
    const char *v0 = (const char *)J->v + o0, *v1 = (const char *)J->v + o1;
    if (o1 - o0 >= 8192) { /* o0 >= o1 - o0 (a tile lies before it): stays inside the cache */
        k0 = (const char *)((uintptr_t)k0 & ~(uintptr_t)4095);
        k1 = (const char *)((uintptr_t)k1 & ~(uintptr_t)4095);
        v0 = (const char *)((uintptr_t)v0 & ~(uintptr_t)4095);
        v1 = (const char *)((uintptr_t)v1 & ~(uintptr_t)4095);
    }
    *pk = (kb_pf_stream){k0, k1, (int)((lines + nk - 1) / nk)};
    *pv = (kb_pf_stream){v0, v1, (int)((lines + nv - 1) / nv)};
}

/* The instances of a cell function FN (ISA target attribute TARGET), cell_GB_F16_D, and the
 * table kb_dec_run takes (name[gb][f16][d index]). D is a constant in each instance (64, 128 or
 * 256): 5-6% faster at T = 8192 than D read from the shape. Each starts on a 64-byte boundary,
 * so where its loops fall does not move with unrelated code before it (placement alone moved
 * this kernel by a few percent). */
#define KB_DEC_INSTANCE(TARGET, FN, GB, F16, D)                                             \
    TARGET __attribute__((aligned(64))) static void cell_##GB##_##F16##_##D(                \
        const kb_dec_job *J, int64_t c, int64_t j0, int64_t j1, int64_t kv0, int64_t kv1)   \
    {                                                                                       \
        FN(J, c, j0, j1, kv0, kv1, GB, F16, D);                                             \
    }
#define KB_DEC_INSTANCES_GB(TARGET, FN, GB)                                                 \
    KB_DEC_INSTANCE(TARGET, FN, GB, 0, 64)                                                  \
    KB_DEC_INSTANCE(TARGET, FN, GB, 0, 128)                                                 \
    KB_DEC_INSTANCE(TARGET, FN, GB, 0, 256)                                                 \
    KB_DEC_INSTANCE(TARGET, FN, GB, 1, 64)                                                  \
    KB_DEC_INSTANCE(TARGET, FN, GB, 1, 128)                                                 \
    KB_DEC_INSTANCE(TARGET, FN, GB, 1, 256)
#define KB_DEC_TABLE_ROW(GB)                                                                \
    {{cell_##GB##_0_64, cell_##GB##_0_128, cell_##GB##_0_256},                              \
     {cell_##GB##_1_64, cell_##GB##_1_128, cell_##GB##_1_256}}
#define KB_DEC_TABLE(name, TARGET, FN)                                                      \
    KB_DEC_INSTANCES_GB(TARGET, FN, 1)                                                      \
    KB_DEC_INSTANCES_GB(TARGET, FN, 2)                                                      \
    KB_DEC_INSTANCES_GB(TARGET, FN, 4)                                                      \
    static const kb_dec_cell_fn name[5][2][3] = {                                           \
        [1] = KB_DEC_TABLE_ROW(1), [2] = KB_DEC_TABLE_ROW(2), [4] = KB_DEC_TABLE_ROW(4)}

#endif
