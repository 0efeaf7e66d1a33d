/* gdn_decode, AVX-512: one token per sequence; the state is read once and written once, so the
 * kernel is a copy with arithmetic on the way. Per (sequence, value head), rows of 8:
 *   pass 1: each row's S k and S q (the state before the decay: u = g S k, S' q = g S q +
 *           delta k.q, so one read of S serves both) into 16 vectors, one transpose-reduction
 *           for all 16 sums; delta and o for the 8 rows in one vector;
 *   pass 2: S1 = g S + delta k^T from the rows pass 1 just read (L1), streamed out with
 *           non-temporal stores: S1 is not read again by this call, and a store that skips the
 *           read-for-ownership moves 8 bytes per element instead of 12.
 * Threads take contiguous ranges of (sequence, head) pairs: one long read stream and one write
 * stream each. */
#include "gdn_common.h"
#include "gdn_x86.h"

typedef struct dec_job {
    const float *q, *k, *v, *g, *beta, *S0;
    float *o, *S1;
    gdn_shape s;
} dec_job;

/* One head's state [dv][DK]: DK = 64 or 128, a constant in each instance. */
KB_TARGET_AVX512 KB_INLINE void dec_head(const float *S0, float *S1, const float *k,
                                        const float *q, const float *v, float *o, float g,
                                        float beta, int64_t dv, const int DK)
{
    const int NV = DK / 16;
    __m512 kq16 = _mm512_setzero_ps();
    for (int j = 0; j < NV; j++)
        kq16 = _mm512_fmadd_ps(_mm512_loadu_ps(k + 16 * j), _mm512_loadu_ps(q + 16 * j), kq16);
    const __m256 kq = _mm256_set1_ps(_mm512_reduce_add_ps(kq16));
    const __m256 g8 = _mm256_set1_ps(g), b8 = _mm256_set1_ps(beta);
    const __m512 g16 = _mm512_set1_ps(g);
    for (int64_t r0 = 0; r0 < dv; r0 += 8) {
        const float *S = S0 + r0 * DK;
        __m512 acc[16];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const float *Sr = S + i * DK;
            __m512 x = _mm512_load_ps(Sr);
            __m512 ak = _mm512_mul_ps(x, _mm512_loadu_ps(k)), aq = _mm512_mul_ps(x, _mm512_loadu_ps(q));
#pragma GCC unroll 8
            for (int j = 1; j < NV; j++) {
                x = _mm512_load_ps(Sr + 16 * j);
                ak = _mm512_fmadd_ps(x, _mm512_loadu_ps(k + 16 * j), ak);
                aq = _mm512_fmadd_ps(x, _mm512_loadu_ps(q + 16 * j), aq);
            }
            acc[i] = ak;
            acc[8 + i] = aq;
        }
        const __m512 red = gdn_sum16x16(acc); /* lanes 0-7: S k, 8-15: S q of the 8 rows */
        const __m256 sk = _mm512_castps512_ps256(red);
        const __m256 sq = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(red), 1));
        const __m256 delta = _mm256_mul_ps(b8, _mm256_fnmadd_ps(g8, sk, _mm256_loadu_ps(v + r0)));
        _mm256_storeu_ps(o + r0, _mm256_fmadd_ps(delta, kq, _mm256_mul_ps(g8, sq)));
        float d[8];
        _mm256_storeu_ps(d, delta);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const float *Sr = S + i * DK;
            float *Dr = S1 + (r0 + i) * DK;
            const __m512 di = _mm512_set1_ps(d[i]);
#pragma GCC unroll 8
            for (int j = 0; j < NV; j++)
                _mm512_stream_ps(Dr + 16 * j,
                                 _mm512_fmadd_ps(g16, _mm512_load_ps(Sr + 16 * j),
                                                 _mm512_mul_ps(di, _mm512_loadu_ps(k + 16 * j))));
        }
    }
}

KB_TARGET_AVX512 static void dec_task(void *arg, int tid, int nt)
{
    const dec_job *J = arg;
    const gdn_shape *s = &J->s;
    const int64_t hd = s->dv * s->dk, group = s->hv / s->hk;
    int64_t lo, hi;
    kb_split(s->nseq * s->hv, 1, tid, nt, &lo, &hi);
    for (int64_t it = lo; it < hi; it++) {
        const int64_t b = it / s->hv, h = it % s->hv, kh = h / group;
        const float *k = J->k + (b * s->hk + kh) * s->dk, *q = J->q + (b * s->hk + kh) * s->dk;
        if (s->dk == 128)
            dec_head(J->S0 + it * hd, J->S1 + it * hd, k, q, J->v + it * s->dv, J->o + it * s->dv,
                     J->g[it], J->beta[it], s->dv, 128);
        else
            dec_head(J->S0 + it * hd, J->S1 + it * hd, k, q, J->v + it * s->dv, J->o + it * s->dv,
                     J->g[it], J->beta[it], s->dv, 64);
    }
    _mm_sfence(); /* the streamed rows are visible before the pool's barrier */
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    dec_job J = {.q = in[GD_Q].data, .k = in[GD_K].data, .v = in[GD_V].data,
                 .g = in[GD_G].data, .beta = in[GD_BETA].data, .S0 = in[GD_S0].data,
                 .o = out[GD_O].data, .S1 = out[GD_S1].data};
    gdn_decode_shape(c->p, &J.s);
    kb_pool_run(pool, dec_task, &J);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_gdn_decode_avx512 = {
    .family = "gdn_decode",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
