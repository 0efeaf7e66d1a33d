#include "matvec_common.h"

#include <stdio.h>
#include <string.h>

int kb_mv_validate(const int64_t *p, int block, char *err, size_t errlen)
{
    if (p[MV_COLS] % block != 0) {
        snprintf(err, errlen, "cols=%lld is not a multiple of the block size %d",
                 (long long)p[MV_COLS], block);
        return -1;
    }
    return 0;
}

static void desc(kb_tensor *t, const char *name, kb_dtype dt, int64_t d0, int64_t d1)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = 2;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->bytes = (size_t)(d0 * d1) * kb_dtype_size(dt);
}

int kb_mv_describe(const int64_t *p, int64_t row_bytes, kb_tensor *in, int *n_in, kb_tensor *out,
                   int *n_out)
{
    desc(&in[MV_W], "W", KB_U8, p[MV_ROWS], row_bytes);
    desc(&in[MV_X], "x", KB_F32, p[MV_TOKENS], p[MV_COLS]);
    desc(&out[MV_Y], "y", KB_F32, p[MV_TOKENS], p[MV_ROWS]);
    *n_in = 2;
    *n_out = 1;
    return 0;
}

void kb_mv_generate_x(const int64_t *p, kb_tensor *x, kb_rng *rng)
{
    float *xf = x->data;
    for (int64_t i = 0; i < p[MV_TOKENS] * p[MV_COLS]; i++)
        xf[i] = kb_rng_normal(rng); /* activations after a norm: roughly unit scale */
}

double kb_mv_bytes(const int64_t *p, int64_t row_bytes)
{
    return (double)p[MV_ROWS] * (double)row_bytes +
           4.0 * (double)p[MV_TOKENS] * (double)(p[MV_COLS] + p[MV_ROWS]);
}

double kb_mv_flops(const int64_t *p)
{
    return 2.0 * (double)p[MV_ROWS] * (double)p[MV_COLS] * (double)p[MV_TOKENS];
}
