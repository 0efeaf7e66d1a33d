/* gdn_qknorm, AVX-512: per (token, key head) row of dk: the mean square by FMAs and one
 * horizontal sum, the row's factor in double (one per row: free), then a scaled copy. Rows of q
 * and of k split across threads together. */
#include <math.h>

#include "gdn_common.h"
#include "gdn_x86.h"

typedef struct qkn_job {
    const float *x[2];
    float *y[2];
    int64_t rows, dk;
} qkn_job;

KB_TARGET_AVX512 static void qkn_task(void *arg, int tid, int nt)
{
    const qkn_job *J = arg;
    const int64_t dk = J->dk;
    int64_t lo, hi;
    kb_split(2 * J->rows, 1, tid, nt, &lo, &hi);
    for (int64_t u = lo; u < hi; u++) {
        const int isk = u >= J->rows;
        const int64_t r = isk ? u - J->rows : u;
        const float *x = J->x[isk] + r * dk;
        float *y = J->y[isk] + r * dk;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        for (int64_t j = 0; j < dk; j += 32) {
            const __m512 a = _mm512_loadu_ps(x + j), b = _mm512_loadu_ps(x + j + 16);
            s0 = _mm512_fmadd_ps(a, a, s0);
            s1 = _mm512_fmadd_ps(b, b, s1);
        }
        const double ms = (double)_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (double)dk;
        const double c = isk ? 1.0 / sqrt((double)dk) : 1.0 / (double)dk;
        const __m512 f = _mm512_set1_ps((float)(c / sqrt(ms + GD_NORM_EPS)));
        for (int64_t j = 0; j < dk; j += 16)
            _mm512_storeu_ps(y + j, _mm512_mul_ps(_mm512_loadu_ps(x + j), f));
    }
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    qkn_job J = {.x = {in[0].data, in[1].data}, .y = {out[0].data, out[1].data},
                 .rows = c->p[0] * c->p[1], .dk = c->p[2]};
    kb_pool_run(pool, qkn_task, &J);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_gdn_qknorm_avx512 = {
    .family = "gdn_qknorm",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
