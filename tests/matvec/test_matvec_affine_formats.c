/* MLX affine formats a8/a4/a2: known u32 words (LSB-first packing), code extraction, the
 * quantizer on exactly representable groups, constant groups, round-trip bounds; bf16 exactness. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "affine_formats.h"
#include "kbench.h"

static void test_pack_known_words(void **st)
{
    (void)st;
    /* a4: code j in bits 4j..4j+3 */
    const uint8_t c4[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint32_t w;
    kb_aff_pack(c4, &w, 8, 4);
    assert_int_equal(w, 0x87654321u);
    /* little-endian words: byte k holds codes 2k (low nibble) and 2k + 1 (high nibble) */
    uint8_t b[4];
    memcpy(b, &w, 4);
    assert_int_equal(b[0], 0x21);
    assert_int_equal(b[3], 0x87);
    /* a8: code j in byte j */
    const uint8_t c8[4] = {0x11, 0x22, 0x33, 0xFF};
    kb_aff_pack(c8, &w, 4, 8);
    assert_int_equal(w, 0xFF332211u);
    /* a2: code j in bits 2j, 2j + 1 */
    const uint8_t c2[16] = {1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
    kb_aff_pack(c2, &w, 16, 2);
    assert_int_equal(w, 0xC0000039u); /* 1 | 2 << 2 | 3 << 4 | 3 << 30 */
    memcpy(b, &w, 4);
    assert_int_equal(b[0], 0x39); /* byte 0: codes 0..3, lowest bits first */
    /* two words: code 8 of a4 starts the second word */
    const uint8_t c4b[16] = {0, 0, 0, 0, 0, 0, 0, 0xF, 0xA, 0, 0, 0, 0, 0, 0, 0};
    uint32_t w2[2];
    kb_aff_pack(c4b, w2, 16, 4);
    assert_int_equal(w2[0], 0xF0000000u);
    assert_int_equal(w2[1], 0x0000000Au);
}

static void test_code_extraction(void **st)
{
    (void)st;
    const uint32_t w4[2] = {0x87654321u, 0x0FEDCBA9u};
    for (int j = 0; j < 8; j++)
        assert_int_equal(kb_aff_code(w4, j, 4), j + 1);
    assert_int_equal(kb_aff_code(w4, 8, 4), 9);
    assert_int_equal(kb_aff_code(w4, 14, 4), 15);
    assert_int_equal(kb_aff_code(w4, 15, 4), 0);
    const uint32_t w2 = 0xC0000039u;
    const unsigned e2[16] = {1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
    for (int j = 0; j < 16; j++)
        assert_int_equal(kb_aff_code(&w2, j, 2), e2[j]);
    const uint32_t w8 = 0xFF332211u;
    assert_int_equal(kb_aff_code(&w8, 0, 8), 0x11);
    assert_int_equal(kb_aff_code(&w8, 3, 8), 0xFF);
    /* every code of every width survives pack -> extract */
    for (int bits = 2; bits <= 8; bits *= 2) {
        uint8_t c[128];
        uint32_t w[32];
        for (int j = 0; j < 128; j++)
            c[j] = (uint8_t)((j * 37 + 11) & ((1 << bits) - 1));
        kb_aff_pack(c, w, 128, bits);
        for (int j = 0; j < 128; j++)
            assert_int_equal(kb_aff_code(w, j, bits), c[j]);
    }
}

/* A group whose scale and bias are exact in bf16 quantizes to the intended codes exactly, and
 * dequantizes to the input exactly. */
static void test_quantize_exact_group(void **st)
{
    (void)st;
    for (int bits = 2; bits <= 8; bits *= 2) {
        for (int G = 32; G <= 128; G *= 2) {
            const int qmax = (1 << bits) - 1;
            const float s = 0.125f, bias = -1.5f; /* both exact in bf16 */
            float x[128], y[128];
            uint8_t want[128];
            for (int j = 0; j < G; j++) {
                want[j] = (uint8_t)((j * 7 + 3) % (qmax + 1));
                x[j] = bias + s * want[j];
            }
            want[0] = 0; /* the group spans the whole range: min = bias, max = bias + qmax s */
            x[0] = bias;
            want[G - 1] = (uint8_t)qmax;
            x[G - 1] = bias + s * (float)qmax;
            uint32_t w[32], wexp[32];
            uint16_t sc, bi;
            kb_quantize_affine(x, w, &sc, &bi, G, bits, G);
            assert_int_equal(sc, kb_f32_to_bf16(s));
            assert_int_equal(bi, kb_f32_to_bf16(bias));
            kb_aff_pack(want, wexp, G, bits);
            assert_memory_equal(w, wexp, (size_t)G * bits / 8);
            kb_dequantize_affine(w, &sc, &bi, y, G, bits, G);
            for (int j = 0; j < G; j++)
                assert_true(y[j] == x[j]);
        }
    }
}

static void test_constant_group(void **st)
{
    (void)st;
    float x[64], y[64];
    for (int j = 0; j < 64; j++)
        x[j] = 0.375f;
    uint32_t w[16];
    uint16_t sc, bi;
    kb_quantize_affine(x, w, &sc, &bi, 64, 4, 64); /* max == min: scale 0, codes 0, no NaN */
    assert_int_equal(sc, 0);
    assert_int_equal(bi, kb_f32_to_bf16(0.375f));
    for (int i = 0; i < 8; i++)
        assert_int_equal(w[i], 0);
    kb_dequantize_affine(w, &sc, &bi, y, 64, 4, 64);
    for (int j = 0; j < 64; j++)
        assert_true(y[j] == 0.375f);
}

/* |x - deq(q(x))| <= s'/2 inside the range, plus what the bf16 rounding of scale (s' vs s, at most
 * qmax |s - s'| at the clamped top) and bias (|min - b'|) can add: 2^-9 (max - min + |min|). */
static void test_round_trip_bounds(void **st)
{
    (void)st;
    kb_rng r;
    kb_rng_seed(&r, 11);
    enum { N = 128 * 64 };
    static float x[N], y[N];
    static uint32_t w[N / 4];
    static uint16_t sc[N / 32], bi[N / 32];
    for (int i = 0; i < N; i++)
        x[i] = 0.02f * kb_rng_normal(&r) + (i % 512 < 64 ? 0.05f : 0.0f); /* some offset groups */
    for (int bits = 2; bits <= 8; bits *= 2) {
        for (int G = 32; G <= 128; G *= 2) {
            kb_quantize_affine(x, w, sc, bi, N, bits, G);
            kb_dequantize_affine(w, sc, bi, y, N, bits, G);
            double worst = 0;
            for (int g = 0; g < N / G; g++) {
                float lo = x[g * G], hi = x[g * G];
                for (int j = 1; j < G; j++) {
                    lo = fminf(lo, x[g * G + j]);
                    hi = fmaxf(hi, x[g * G + j]);
                }
                const double s = kb_bf16_to_f32(sc[g]);
                const double bound = 0.5 * s + 0x1.0p-9 * ((hi - lo) + fabsf(lo)) + 1e-7;
                for (int j = 0; j < G; j++) {
                    const double e = fabs((double)x[g * G + j] - y[g * G + j]);
                    assert_true(e <= bound);
                    if (e / s > worst)
                        worst = e / s;
                }
            }
            assert_true(worst > 0.3); /* the bound is not vacuous: errors near half a step */
        }
    }
}

static void test_bf16_exact(void **st)
{
    (void)st;
    /* every finite bf16 survives bf16 -> f32 -> bf16, and the f32 is the bits shifted up */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7F80) == 0x7F80)
            continue;
        const float f = kb_bf16_to_f32((uint16_t)h);
        uint32_t u;
        memcpy(&u, &f, 4);
        assert_int_equal(u, h << 16);
        assert_int_equal(kb_f32_to_bf16(f), h);
    }
    /* q s, an 8-bit code times a bf16 scale (8 + 8 significant bits), is exact in f32 */
    const float s = kb_bf16_to_f32(kb_f32_to_bf16(0.0123f));
    for (int q = 0; q < 256; q++)
        assert_true((double)((float)q * s) == (double)q * (double)s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_known_words),     cmocka_unit_test(test_code_extraction),
        cmocka_unit_test(test_quantize_exact_group), cmocka_unit_test(test_constant_group),
        cmocka_unit_test(test_round_trip_bounds),    cmocka_unit_test(test_bf16_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
