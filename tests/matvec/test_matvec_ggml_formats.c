/* Weight formats: f16/bf16 conversions, Q8_0/Q4_0 known bytes, nibble order, round-trip bounds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ggml_formats.h"
#include "kbench.h"

static void test_f16_known(void **st)
{
    (void)st;
    assert_int_equal(kb_f32_to_f16(1.0f), 0x3C00);
    assert_int_equal(kb_f32_to_f16(-2.0f), 0xC000);
    assert_int_equal(kb_f32_to_f16(65504.0f), 0x7BFF);
    assert_int_equal(kb_f32_to_f16(65520.0f), 0x7C00);     /* rounds to inf */
    assert_int_equal(kb_f32_to_f16(0x1.0p-24f), 0x0001);   /* smallest subnormal */
    assert_int_equal(kb_f32_to_f16(0x1.0p-25f), 0x0000);   /* half of it: ties to even (0) */
    assert_int_equal(kb_f32_to_f16(0x1.8p-24f), 0x0002);   /* 1.5 ulp: ties to even (2) */
    assert_int_equal(kb_f32_to_f16(1.0f + 0x1.0p-11f), 0x3C00); /* tie, even stays */
    assert_int_equal(kb_f32_to_f16(1.0f + 0x1.8p-10f), 0x3C02); /* tie, odd rounds up */
    assert_true(kb_f16_to_f32(0x3555) > 0.333f && kb_f16_to_f32(0x3555) < 0.3334f);
    assert_true(isnan(kb_f16_to_f32(0x7E00)));
    assert_true(isinf(kb_f16_to_f32(0xFC00)) && kb_f16_to_f32(0xFC00) < 0);
    /* every finite f16 survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00)
            continue;
        assert_int_equal(kb_f32_to_f16(kb_f16_to_f32((uint16_t)h)), h);
    }
}

static void test_bf16_known(void **st)
{
    (void)st;
    assert_int_equal(kb_f32_to_bf16(1.0f), 0x3F80);
    assert_true(kb_bf16_to_f32(0x3F80) == 1.0f);
    assert_int_equal(kb_f32_to_bf16(1.00390625f), 0x3F80); /* tie to even */
    assert_int_equal(kb_f32_to_bf16(1.01171875f), 0x3F82); /* tie, odd rounds up */
}

static void test_q8_0_known_bytes(void **st)
{
    (void)st;
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 16) / 16.0f * 1.27f; /* max |x| = 1.27 at i = 0 -> d = 0.01 */
    block_q8_0 b;
    kb_quantize_q8_0(x, &b, 32);
    assert_int_equal(b.d, kb_f32_to_f16(0.01f));
    assert_int_equal(b.qs[0], -127);
    assert_int_equal(b.qs[16], 0);
    assert_int_equal(b.qs[31], 119); /* 15/16 * 127 = 119.06 */
    unsigned char bytes[34];
    memcpy(bytes, &b, 34);
    /* little-endian f16 first, then the int8 codes in order */
    assert_int_equal(bytes[0], kb_f32_to_f16(0.01f) & 0xFF);
    assert_int_equal(bytes[1], kb_f32_to_f16(0.01f) >> 8);
    assert_int_equal((int8_t)bytes[2], -127);
    assert_int_equal((int8_t)bytes[33], 119);
}

static void test_q4_0_nibble_order(void **st)
{
    (void)st;
    /* d = m / -8 with m = -8 (largest magnitude, negative) -> d = 1, q = x + 8 */
    float x[32];
    for (int j = 0; j < 16; j++) {
        x[j] = (float)(j % 8) - 8 + (j >= 8 ? 8 : 0); /* -8..-1 then 0..7 */
        x[j + 16] = (float)(7 - (j % 8)) * (j < 8 ? 1 : -1); /* 7..0 then -7..0 */
    }
    x[0] = -8;
    block_q4_0 b;
    kb_quantize_q4_0(x, &b, 32);
    assert_int_equal(b.d, 0x3C00); /* 1.0 */
    for (int j = 0; j < 16; j++) {
        assert_int_equal(b.qs[j] & 15, (int)x[j] + 8);      /* low nibble: weight j */
        assert_int_equal(b.qs[j] >> 4, (int)x[j + 16] + 8); /* high nibble: weight j + 16 */
    }
    /* a hand-made byte vector: d = 0.5, qs[0] = 0x1F -> w[0] = 0.5*(15-8), w[16] = 0.5*(1-8) */
    block_q4_0 h;
    memset(&h, 0x88, sizeof h); /* every code 8 -> weight 0 */
    h.d = 0x3800;               /* 0.5 */
    h.qs[0] = 0x1F;
    h.qs[15] = 0x80;
    float y[32];
    kb_dequantize_q4_0(&h, y, 32);
    assert_true(y[0] == 3.5f);
    assert_true(y[16] == -3.5f);
    assert_true(y[15] == -4.0f);
    assert_true(y[31] == 0.0f);
}

static void test_round_trip_bounds(void **st)
{
    (void)st;
    kb_rng r;
    kb_rng_seed(&r, 7);
    enum { N = 32 * 512 };
    static float x[N], y[N];
    static block_q8_0 q8[N / 32];
    static block_q4_0 q4[N / 32];
    for (int i = 0; i < N; i++)
        x[i] = kb_rng_normal(&r) * (i % 97 == 0 ? 10.0f : 1.0f);
    kb_quantize_q8_0(x, q8, N);
    kb_dequantize_q8_0(q8, y, N);
    for (int b = 0; b < N / 32; b++) {
        float d = kb_f16_to_f32(q8[b].d);
        for (int i = 0; i < 32; i++) /* half a step, plus the f16 rounding of d times 127 */
            assert_true(fabsf(x[b * 32 + i] - y[b * 32 + i]) <= 0.51f * d + 127 * d * 0x1.0p-11f);
    }
    kb_quantize_q4_0(x, q4, N);
    kb_dequantize_q4_0(q4, y, N);
    for (int b = 0; b < N / 32; b++) {
        float d = fabsf(kb_f16_to_f32(q4[b].d));
        for (int i = 0; i < 32; i++) /* half a step inside the range; one step at the +7 clamp */
            assert_true(fabsf(x[b * 32 + i] - y[b * 32 + i]) <= 1.01f * d + 8 * d * 0x1.0p-11f);
    }
    /* an all-zero block quantizes to d = 0 and dequantizes to zeros, no NaN */
    memset(x, 0, sizeof(float) * 32);
    kb_quantize_q4_0(x, q4, 32);
    kb_dequantize_q4_0(q4, y, 32);
    for (int i = 0; i < 32; i++)
        assert_true(y[i] == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_known),         cmocka_unit_test(test_bf16_known),
        cmocka_unit_test(test_q8_0_known_bytes),  cmocka_unit_test(test_q4_0_nibble_order),
        cmocka_unit_test(test_round_trip_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
