/* gdn_gatednorm, AVX-512: per (token, value head) row of dv: the mean square of o, the row's
 * factor in double, then o * factor * w * silu(z). Rows split across threads. */
#include <math.h>

#include "gdn_common.h"
#include "gdn_x86.h"

typedef struct gn_job {
    const float *o, *z, *w;
    float *y;
    int64_t rows, dv;
} gn_job;

KB_TARGET_AVX512 static void gn_task(void *arg, int tid, int nt)
{
    const gn_job *J = arg;
    const int64_t dv = J->dv;
    int64_t lo, hi;
    kb_split(J->rows, 1, tid, nt, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *o = J->o + r * dv, *z = J->z + r * dv;
        float *y = J->y + r * dv;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        for (int64_t j = 0; j < dv; j += 32) {
            const __m512 a = _mm512_loadu_ps(o + j), b = _mm512_loadu_ps(o + j + 16);
            s0 = _mm512_fmadd_ps(a, a, s0);
            s1 = _mm512_fmadd_ps(b, b, s1);
        }
        const double ms = (double)_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (double)dv;
        const __m512 f = _mm512_set1_ps((float)(1.0 / sqrt(ms + GD_NORM_EPS)));
        for (int64_t j = 0; j < dv; j += 16) {
            const __m512 ow = _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(o + j), f), _mm512_loadu_ps(J->w + j));
            _mm512_storeu_ps(y + j, _mm512_mul_ps(ow, gdn_silu512(_mm512_loadu_ps(z + j))));
        }
    }
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    gn_job J = {.o = in[0].data, .z = in[1].data, .w = in[2].data, .y = out[0].data,
                .rows = c->p[0] * c->p[1], .dv = c->p[2]};
    kb_pool_run(pool, gn_task, &J);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_gdn_gatednorm_avx512 = {
    .family = "gdn_gatednorm",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
