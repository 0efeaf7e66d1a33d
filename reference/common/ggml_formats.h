/* GGML Q8_0 and Q4_0 block formats (KERNELS.md section 1). */
#ifndef KB_GGML_FORMATS_H
#define KB_GGML_FORMATS_H

#include <stdint.h>

#define QK 32 /* weights per block */

typedef struct {
    uint16_t d; /* f16 scale */
    int8_t qs[QK];
} block_q8_0; /* 34 bytes */

typedef struct {
    uint16_t d;          /* f16 scale */
    uint8_t qs[QK / 2];  /* qs[j] low nibble: weight j, high nibble: weight j + 16 */
} block_q4_0; /* 18 bytes */

_Static_assert(sizeof(block_q8_0) == 34, "q8_0 block is 34 bytes");
_Static_assert(sizeof(block_q4_0) == 18, "q4_0 block is 18 bytes");

/* n must be a multiple of 32. */
void kb_quantize_q8_0(const float *x, block_q8_0 *y, int64_t n);
void kb_dequantize_q8_0(const block_q8_0 *x, float *y, int64_t n);
void kb_quantize_q4_0(const float *x, block_q4_0 *y, int64_t n);
void kb_dequantize_q4_0(const block_q4_0 *x, float *y, int64_t n);

#endif
