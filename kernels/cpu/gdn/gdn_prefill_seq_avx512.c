/* gdn_prefill, sequential, AVX-512: the recurrence token by token, SIMD over the state.
 * Rows of a state are independent (a row's update reads only that row, k, q, v_r, g, beta), so a
 * thread owns groups of 8 rows and runs every token over them, in blocks of GB_TOK tokens: the
 * 8 rows (4 KiB at dk = 128) stay in L1 for the block, the block's k and q (GB_TOK KiB) in L2
 * for all the head's row groups. Per token and group of 8 rows, as gdn_decode_avx512:
 *   pass 1: S k and S q of each row from the state before the decay (u = g S k; o = g S q +
 *           delta k.q), one transpose-reduction for the 16 sums, delta and o in one vector;
 *   pass 2: S = g S + delta k^T.
 * The state lives in S1 from the start (S0 copied in), updated in place. Threads take
 * contiguous ranges of (head, row group) pairs. */
#include "gdn_common.h"
#include "gdn_x86.h"

#define GB_TOK 64 /* tokens per block */

typedef struct seq_job {
    const float *q, *k, *v, *g, *beta, *S0;
    float *o, *S1;
    gdn_shape s;
} seq_job;

/* Tokens [t0, t1) over the 8 rows at S (row stride DK) of head h, rows r0.. of it. */
KB_TARGET_AVX512 KB_INLINE void seq_rows(const seq_job *J, int64_t h, int64_t r0, float *S,
                                        int64_t t0, int64_t t1, const float *kq, const int DK)
{
    const gdn_shape *s = &J->s;
    const int NV = DK / 16;
    const int64_t kh = h / (s->hv / s->hk);
    for (int64_t t = t0; t < t1; t++) {
        const float *k = J->k + (t * s->hk + kh) * DK, *q = J->q + (t * s->hk + kh) * DK;
        const float g = J->g[t * s->hv + h], beta = J->beta[t * s->hv + h];
        __m512 kv[8], acc[16];
#pragma GCC unroll 8
        for (int j = 0; j < NV; j++)
            kv[j] = _mm512_loadu_ps(k + 16 * j);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const float *Sr = S + i * DK;
            __m512 x = _mm512_load_ps(Sr);
            __m512 ak = _mm512_mul_ps(x, kv[0]), aq = _mm512_mul_ps(x, _mm512_loadu_ps(q));
#pragma GCC unroll 8
            for (int j = 1; j < NV; j++) {
                x = _mm512_load_ps(Sr + 16 * j);
                ak = _mm512_fmadd_ps(x, kv[j], ak);
                aq = _mm512_fmadd_ps(x, _mm512_loadu_ps(q + 16 * j), aq);
            }
            acc[i] = ak;
            acc[8 + i] = aq;
        }
        const __m512 red = gdn_sum16x16(acc);
        const __m256 g8 = _mm256_set1_ps(g);
        const __m256 sk = _mm512_castps512_ps256(red);
        const __m256 sq = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(red), 1));
        const float *v = J->v + (t * s->hv + h) * s->dv + r0;
        const __m256 delta = _mm256_mul_ps(_mm256_set1_ps(beta), _mm256_fnmadd_ps(g8, sk, _mm256_loadu_ps(v)));
        _mm256_storeu_ps(J->o + (t * s->hv + h) * s->dv + r0,
                         _mm256_fmadd_ps(delta, _mm256_set1_ps(kq[t - t0]), _mm256_mul_ps(g8, sq)));
        float d[8];
        _mm256_storeu_ps(d, delta);
        const __m512 g16 = _mm512_set1_ps(g);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            float *Sr = S + i * DK;
            const __m512 di = _mm512_set1_ps(d[i]);
#pragma GCC unroll 8
            for (int j = 0; j < NV; j++)
                _mm512_store_ps(Sr + 16 * j, _mm512_fmadd_ps(g16, _mm512_load_ps(Sr + 16 * j),
                                                             _mm512_mul_ps(di, kv[j])));
        }
    }
}

KB_TARGET_AVX512 static void seq_task(void *arg, int tid, int nt)
{
    const seq_job *J = arg;
    const gdn_shape *s = &J->s;
    const int64_t groups = s->dv / 8, hd = s->dv * s->dk, dk = s->dk;
    int64_t lo, hi;
    kb_split(s->hv * groups, 1, tid, nt, &lo, &hi);
    float kq[GB_TOK];
    for (int64_t it = lo; it < hi;) {
        const int64_t h = it / groups, g0 = it % groups;
        const int64_t g1 = (hi - h * groups) < groups ? hi - h * groups : groups; /* this head's part */
        const int64_t kh = h / (s->hv / s->hk);
        float *Sh = J->S1 + h * hd;
        for (int64_t i = g0 * 8 * dk; i < g1 * 8 * dk; i++)
            Sh[i] = J->S0[h * hd + i];
        for (int64_t t0 = 0; t0 < s->ntok; t0 += GB_TOK) {
            const int64_t t1 = t0 + GB_TOK < s->ntok ? t0 + GB_TOK : s->ntok;
            for (int64_t t = t0; t < t1; t++) { /* k.q of the block's tokens, for o */
                const float *k = J->k + (t * s->hk + kh) * dk, *q = J->q + (t * s->hk + kh) * dk;
                __m512 a = _mm512_setzero_ps();
                for (int64_t j = 0; j < dk; j += 16)
                    a = _mm512_fmadd_ps(_mm512_loadu_ps(k + j), _mm512_loadu_ps(q + j), a);
                kq[t - t0] = _mm512_reduce_add_ps(a);
            }
            for (int64_t gi = g0; gi < g1; gi++) {
                if (dk == 128)
                    seq_rows(J, h, gi * 8, Sh + gi * 8 * dk, t0, t1, kq, 128);
                else
                    seq_rows(J, h, gi * 8, Sh + gi * 8 * dk, t0, t1, kq, 64);
            }
        }
        it = h * groups + g1;
    }
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    seq_job J = {.q = in[GD_Q].data, .k = in[GD_K].data, .v = in[GD_V].data,
                 .g = in[GD_G].data, .beta = in[GD_BETA].data, .S0 = in[GD_S0].data,
                 .o = out[GD_O].data, .S1 = out[GD_S1].data};
    gdn_prefill_shape(c->p, &J.s);
    kb_pool_run(pool, seq_task, &J);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_gdn_prefill_seq_avx512 = {
    .family = "gdn_prefill",
    .name = "seq_avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
