/* Quantizer and dequantizer for the MLX affine formats, exactly as affine_formats.h states. */
#include "affine_formats.h"

#include <math.h>
#include <string.h>

#include "kbench.h"

void kb_aff_pack(const uint8_t *codes, uint32_t *words, int64_t n, int bits)
{
    const int per = 32 / bits;
    memset(words, 0, (size_t)(n / per) * sizeof *words);
    for (int64_t j = 0; j < n; j++)
        words[j / per] |= (uint32_t)codes[j] << (bits * (j % per));
}

void kb_quantize_affine(const float *x, uint32_t *words, uint16_t *scales, uint16_t *biases,
                        int64_t n, int bits, int group)
{
    const int per = 32 / bits;
    const float qmax = (float)((1 << bits) - 1);
    memset(words, 0, (size_t)(n / per) * sizeof *words);
    for (int64_t g = 0; g < n / group; g++) {
        const float *xg = x + g * group;
        float lo = xg[0], hi = xg[0];
        for (int i = 1; i < group; i++) {
            lo = fminf(lo, xg[i]);
            hi = fmaxf(hi, xg[i]);
        }
        /* quantize against the values the format stores, so the codes fit what dequantizes */
        const uint16_t sb = kb_f32_to_bf16((hi - lo) / qmax), bb = kb_f32_to_bf16(lo);
        const float s = kb_bf16_to_f32(sb), b = kb_bf16_to_f32(bb);
        scales[g] = sb;
        biases[g] = bb;
        for (int i = 0; i < group; i++) {
            float q = s > 0 ? roundf((xg[i] - b) / s) : 0.0f;
            q = fminf(fmaxf(q, 0.0f), qmax);
            const int64_t j = g * group + i;
            words[j / per] |= (uint32_t)q << (bits * (j % per));
        }
    }
}

void kb_dequantize_affine(const uint32_t *words, const uint16_t *scales, const uint16_t *biases,
                          float *y, int64_t n, int bits, int group)
{
    for (int64_t j = 0; j < n; j++) {
        const float s = kb_bf16_to_f32(scales[j / group]), b = kb_bf16_to_f32(biases[j / group]);
        y[j] = (float)kb_aff_code(words, j, bits) * s + b;
    }
}
