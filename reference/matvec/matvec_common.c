#include "matvec_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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
    snprintf(in[MV_W].elem, sizeof in[MV_W].elem, "%s blocks, %lld bytes each",
             row_bytes * 32 / p[MV_COLS] == 34 ? "q8_0" : "q4_0", (long long)(row_bytes * 32 / p[MV_COLS]));
    desc(&in[MV_X], "x", KB_F32, p[MV_TOKENS], p[MV_COLS]);
    desc(&out[MV_Y], "y", KB_F32, p[MV_TOKENS], p[MV_ROWS]);
    *n_in = 2;
    *n_out = 1;
    return 0;
}

void kb_mv_generate_x(const int64_t *p, kb_tensor *x, kb_rng *rng, kb_inputs dist)
{
    float *xf = x->data;
    const int64_t cols = p[MV_COLS];
    for (int64_t i = 0; i < p[MV_TOKENS] * cols; i++)
        xf[i] = dist == KB_INPUTS_ZEROS ? 0.0f : kb_rng_normal(rng); /* after a norm: unit scale */
    if (dist == KB_INPUTS_OUTLIERS) {
        int64_t n = cols / 128 > 0 ? cols / 128 : 1;
        for (int64_t k = 0; k < n; k++) {
            int64_t c = (int64_t)(kb_rng_u64(rng) % (uint64_t)cols);
            for (int64_t t = 0; t < p[MV_TOKENS]; t++)
                xf[t * cols + c] *= 100.0f;
        }
    }
}

void kb_mv_condition(const int64_t *p, const kb_tensor *in, double *scale,
                     void (*dequant_row)(const kb_tensor *w, int64_t r, int64_t cols, double *out))
{
    const int64_t rows = p[MV_ROWS], cols = p[MV_COLS];
    double *w = malloc(sizeof(double) * (size_t)cols);
    if (!w)
        abort();
    for (int64_t r = 0; r < rows; r++) {
        dequant_row(&in[MV_W], r, cols, w);
        for (int64_t t = 0; t < p[MV_TOKENS]; t++) {
            const float *x = (const float *)in[MV_X].data + t * cols;
            double acc = 0;
            for (int64_t c = 0; c < cols; c++)
                acc += fabs(w[c] * x[c]);
            scale[t * rows + r] = acc;
        }
    }
    free(w);
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
