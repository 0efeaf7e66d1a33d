/* rope for the vector width of glue_vec.h: per (token, head), the first rot/2 dims against the
 * next rot/2 with the table's cos and sin of the token's position, then the pass-through dims
 * copied (when y is not x). (token, head) pairs split over the threads. y may alias x. */
#ifndef KB_ROPE_X86_H
#define KB_ROPE_X86_H

#include <string.h>

#include "glue_vec.h"

enum { RPX_HEADS, RPX_D, RPX_ROT, RPX_TOKENS, RPX_P0 };

typedef struct rp_job {
    const float *x, *cs, *sn;
    float *y;
    int64_t heads, D, half, p0;
    int64_t items; /* tokens x heads */
} rp_job;

GV_TARGET static void rp_item(const rp_job *j, int64_t it)
{
    const int64_t t = it / j->heads, half = j->half;
    const float *x = j->x + it * j->D, *c = j->cs + (j->p0 + t) * half;
    const float *s = j->sn + (j->p0 + t) * half;
    float *y = j->y + it * j->D;
    int64_t i = 0;
    for (; i + GV_W <= half; i += GV_W) {
        const gv_f a = gv_load(x + i), b = gv_load(x + i + half);
        const gv_f cv = gv_load(c + i), sv = gv_load(s + i);
        gv_store(y + i, gv_fms(a, cv, gv_mul(b, sv)));
        gv_store(y + i + half, gv_fma(b, cv, gv_mul(a, sv)));
    }
    if (i < half) {
        const int k = (int)(half - i);
        const gv_f a = gv_loadn(x + i, k), b = gv_loadn(x + i + half, k);
        const gv_f cv = gv_loadn(c + i, k), sv = gv_loadn(s + i, k);
        gv_storen(y + i, gv_fms(a, cv, gv_mul(b, sv)), k);
        gv_storen(y + i + half, gv_fma(b, cv, gv_mul(a, sv)), k);
    }
    if (y != x && 2 * half < j->D)
        memcpy(y + 2 * half, x + 2 * half, sizeof(float) * (size_t)(j->D - 2 * half));
}

static void rp_task(void *arg, int tid, int nthreads)
{
    const rp_job *j = arg;
    int64_t lo, hi;
    kb_split(j->items, 1, tid, nthreads, &lo, &hi);
    for (int64_t it = lo; it < hi; it++)
        rp_item(j, it);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    const int64_t *p = c->p;
    rp_job j = {in[0].data, in[1].data, in[2].data, out[0].data, p[RPX_HEADS], p[RPX_D],
                p[RPX_ROT] / 2, p[RPX_P0], p[RPX_TOKENS] * p[RPX_HEADS]};
    gv_run(pool, j.items * j.D, rp_task, &j);
}

#endif
