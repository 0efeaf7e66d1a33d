/* rmsnorm for the vector width of glue_vec.h: per row, the sum of squares in four f32 vector
 * accumulators, s = 1/sqrt(mean + eps) in double, then y = (x * w) * s. Rows split over the
 * threads (QK-norm has tokens x heads rows; a decode norm one). y may alias x. */
#ifndef KB_RMSNORM_X86_H
#define KB_RMSNORM_X86_H

#include <math.h>

#include "glue_vec.h"

double kb_rmsnorm_eps(const int64_t *p); /* reference/model/rmsnorm.c */

typedef struct rn_job {
    const float *x, *w;
    float *y;
    int64_t rows, cols;
    double eps;
} rn_job;

GV_TARGET static void rn_row(const rn_job *j, int64_t r)
{
    const int64_t n = j->cols;
    const float *x = j->x + r * n;
    float *y = j->y + r * n;
    gv_f s0 = gv_zero(), s1 = s0, s2 = s0, s3 = s0;
    int64_t c = 0;
    for (; c + 4 * GV_W <= n; c += 4 * GV_W) {
        const gv_f a = gv_load(x + c), b = gv_load(x + c + GV_W);
        const gv_f d = gv_load(x + c + 2 * GV_W), e = gv_load(x + c + 3 * GV_W);
        s0 = gv_fma(a, a, s0);
        s1 = gv_fma(b, b, s1);
        s2 = gv_fma(d, d, s2);
        s3 = gv_fma(e, e, s3);
    }
    for (; c < n; c += GV_W) {
        const gv_f a = gv_loadn(x + c, n - c < GV_W ? (int)(n - c) : GV_W);
        s0 = gv_fma(a, a, s0);
    }
    const float ss = gv_hsum(gv_add(gv_add(s0, s1), gv_add(s2, s3)));
    const gv_f s = gv_set1((float)(1.0 / sqrt((double)ss / (double)n + j->eps)));
    for (c = 0; c + GV_W <= n; c += GV_W)
        gv_store(y + c, gv_mul(gv_mul(gv_load(x + c), gv_load(j->w + c)), s));
    if (c < n) {
        const int k = (int)(n - c);
        gv_storen(y + c, gv_mul(gv_mul(gv_loadn(x + c, k), gv_loadn(j->w + c, k)), s), k);
    }
}

static void rn_task(void *arg, int tid, int nthreads)
{
    const rn_job *j = arg;
    int64_t lo, hi;
    kb_split(j->rows, 1, tid, nthreads, &lo, &hi);
    for (int64_t r = lo; r < hi; r++)
        rn_row(j, r);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    rn_job j = {in[0].data, in[1].data, out[0].data, c->p[0], c->p[1], kb_rmsnorm_eps(c->p)};
    gv_run(pool, j.rows * j.cols, rn_task, &j);
}

#endif
