#include "glue_common.h"

#include <stdio.h>
#include <string.h>

void kb_glue_desc(kb_tensor *t, const char *name, kb_dtype dt, int ndim, int64_t d0, int64_t d1,
                  int64_t d2)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)t->shape[i];
    t->bytes = n * kb_dtype_size(dt);
}

void kb_glue_fill(float *x, int64_t rows, int64_t cols, float sigma, kb_rng *rng, kb_inputs dist)
{
    for (int64_t i = 0; i < rows * cols; i++)
        x[i] = dist == KB_INPUTS_ZEROS ? 0.0f : sigma * kb_rng_normal(rng);
    if (dist != KB_INPUTS_OUTLIERS)
        return;
    for (int k = 0; k < 4 && k < cols; k++) { /* channels 7, 7 + cols/4, ...: fixed per row */
        int64_t c = (7 + k * (cols / 4)) % cols;
        for (int64_t r = 0; r < rows; r++)
            x[r * cols + c] *= 100.0f;
    }
}

void kb_rope_table(double theta, int64_t rot, int64_t npos, float *cos_t, float *sin_t)
{
    const int64_t half = rot / 2;
    for (int64_t i = 0; i < half; i++) {
        const double inv_freq = pow(theta, -2.0 * (double)i / (double)rot);
        for (int64_t p = 0; p < npos; p++) {
            const double a = (double)p * inv_freq;
            cos_t[p * half + i] = (float)cos(a);
            sin_t[p * half + i] = (float)sin(a);
        }
    }
}

#include "ggml_formats.h"

const char *kb_wf_name(kb_wfmt f)
{
    static const char *n[] = {"f32", "f16", "bf16", "q8_0", "q4_0"};
    return (unsigned)f < KB_WF_COUNT ? n[f] : "?";
}

int kb_wf_block(kb_wfmt f) { return f == KB_WF_Q8_0 || f == KB_WF_Q4_0 ? QK : 1; }

int64_t kb_wf_row_bytes(kb_wfmt f, int64_t cols)
{
    switch (f) {
    case KB_WF_F32: return cols * 4;
    case KB_WF_F16: case KB_WF_BF16: return cols * 2;
    case KB_WF_Q8_0: return cols / QK * (int64_t)sizeof(block_q8_0);
    case KB_WF_Q4_0: return cols / QK * (int64_t)sizeof(block_q4_0);
    default: return 0;
    }
}

void kb_wf_dequant_row(kb_wfmt f, const void *table, int64_t row, int64_t cols, float *out)
{
    const uint8_t *r = (const uint8_t *)table + row * kb_wf_row_bytes(f, cols);
    switch (f) {
    case KB_WF_F32: memcpy(out, r, (size_t)cols * 4); break;
    case KB_WF_F16:
        for (int64_t c = 0; c < cols; c++)
            out[c] = kb_f16_to_f32(((const uint16_t *)r)[c]);
        break;
    case KB_WF_BF16:
        for (int64_t c = 0; c < cols; c++)
            out[c] = kb_bf16_to_f32(((const uint16_t *)r)[c]);
        break;
    case KB_WF_Q8_0: kb_dequantize_q8_0((const block_q8_0 *)r, out, cols); break;
    case KB_WF_Q4_0: kb_dequantize_q4_0((const block_q4_0 *)r, out, cols); break;
    default: break;
    }
}

void kb_ew_describe(const int64_t *p, int n_in, const char *const *names, kb_dtype out_dt,
                    kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    for (int i = 0; i < n_in; i++)
        kb_glue_desc(&in[i], names[i], KB_F32, 2, p[EW_TOKENS], p[EW_COLS], 0);
    kb_glue_desc(&out[0], names[n_in], out_dt, 2, p[EW_TOKENS], p[EW_COLS], 0);
    *ni = n_in;
    *no = 1;
}

double kb_ew_bytes(const int64_t *p, int n_in, int out_bytes)
{
    return (double)(p[EW_TOKENS] * p[EW_COLS]) * (4.0 * n_in + out_bytes);
}
