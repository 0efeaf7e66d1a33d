/* Quantizers and dequantizers for Q8_0 and Q4_0, exactly as KERNELS.md section 1 states. */
#include "ggml_formats.h"

#include <math.h>

#include "kbench.h"

void kb_quantize_q8_0(const float *x, block_q8_0 *y, int64_t n)
{
    for (int64_t b = 0; b < n / QK; b++) {
        const float *xb = x + b * QK;
        float amax = 0;
        for (int i = 0; i < QK; i++)
            amax = fmaxf(amax, fabsf(xb[i]));
        float d = amax / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = kb_f32_to_f16(d);
        for (int i = 0; i < QK; i++)
            y[b].qs[i] = (int8_t)roundf(xb[i] * id);
    }
}

void kb_dequantize_q8_0(const block_q8_0 *x, float *y, int64_t n)
{
    for (int64_t b = 0; b < n / QK; b++) {
        float d = kb_f16_to_f32(x[b].d);
        for (int i = 0; i < QK; i++)
            y[b * QK + i] = d * (float)x[b].qs[i];
    }
}

void kb_quantize_q4_0(const float *x, block_q4_0 *y, int64_t n)
{
    for (int64_t b = 0; b < n / QK; b++) {
        const float *xb = x + b * QK;
        float amax = 0, m = 0; /* m: the element of largest magnitude, with its sign */
        for (int i = 0; i < QK; i++) {
            if (fabsf(xb[i]) > amax) {
                amax = fabsf(xb[i]);
                m = xb[i];
            }
        }
        float d = m / -8.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = kb_f32_to_f16(d);
        for (int j = 0; j < QK / 2; j++) {
            float v0 = xb[j] * id + 8.5f, v1 = xb[j + 16] * id + 8.5f;
            uint8_t q0 = (uint8_t)fminf(15.0f, truncf(v0));
            uint8_t q1 = (uint8_t)fminf(15.0f, truncf(v1));
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void kb_dequantize_q4_0(const block_q4_0 *x, float *y, int64_t n)
{
    for (int64_t b = 0; b < n / QK; b++) {
        float d = kb_f16_to_f32(x[b].d);
        for (int j = 0; j < QK / 2; j++) {
            y[b * QK + j] = d * (float)((x[b].qs[j] & 15) - 8);
            y[b * QK + j + 16] = d * (float)((x[b].qs[j] >> 4) - 8);
        }
    }
}
