/* MLX affine formats a8, a4, a2 (KERNELS.md section 1): b-bit codes packed LSB-first in u32
 * words (32/b codes per word), one bf16 scale and one bf16 bias per group of G weights (G = 32,
 * 64, 128), w = q * scale + bias.
 *
 * Code j of a row: (word[j / (32/b)] >> (b * (j % (32/b)))) & (2^b - 1). Because words are
 * little-endian, this is also a plain byte stream: byte k of the row holds codes 8k/b ..
 * 8(k+1)/b - 1, lowest bits first (kernels read it as bytes). In kb_tensor the words are KB_U32. */
#ifndef KB_AFFINE_FORMATS_H
#define KB_AFFINE_FORMATS_H

#include <stdint.h>

/* Codes per u32 word. bits is 2, 4 or 8. */
static inline int kb_aff_per_word(int bits) { return 32 / bits; }

/* Code j of a row of words. */
static inline unsigned kb_aff_code(const uint32_t *row, int64_t j, int bits)
{
    const int per = 32 / bits;
    return (row[j / per] >> (bits * (j % per))) & ((1u << bits) - 1);
}

/* Packs n codes (each < 2^bits) into n * bits / 32 words; n a multiple of 32/bits. */
void kb_aff_pack(const uint8_t *codes, uint32_t *words, int64_t n, int bits);

/* n weights (a multiple of group) to codes, scales and biases (bf16), n / group of each:
 * bias = min, scale = (max - min) / (2^b - 1), both rounded to bf16 first, then
 * q = clamp(round((x - bias) / scale), 0, 2^b - 1) with the stored (bf16) values, ties away from
 * zero; a constant group (max == min) gets scale 0 and q = 0. */
void kb_quantize_affine(const float *x, uint32_t *words, uint16_t *scales, uint16_t *biases,
                        int64_t n, int bits, int group);
void kb_dequantize_affine(const uint32_t *words, const uint16_t *scales, const uint16_t *biases,
                          float *y, int64_t n, int bits, int group);

#endif
