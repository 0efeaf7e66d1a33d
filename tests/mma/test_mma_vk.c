/* The Vulkan mma implementations against the reference (lavapipe on machines without a GPU):
 * M = 1 and sizes off the 64- and 128-token tiles, N off the weight-row tiles, K = 32 (the
 * smallest legal) and a few blocks, every format and a4 group. vk_hh needs shaderFloat16 and
 * vk_cm cooperative matrices: each test skips, with the reason, where the device lacks them. */
#include "kbtest.h"

static const char *const odd[] = {
    "mma_q8_0 M=1,70 N=1,13,130 K=32,96",
    "mma_q4_0 M=1,70 N=1,13,130 K=32,96",
    "mma_f16  M=1,70 N=1,13,130 K=32,96",
    "mma_bf16 M=1,70 N=1,13,130 K=32,96",
    "mma_a4   M=1,70 N=13,130 K=128 group=32,64,128",
    "mma_a4   M=3 N=5 K=32 group=32",
};
#define NODD (int)(sizeof odd / sizeof odd[0])

/* past one 128 x 128 tile both ways and a few K stages (the GPU tiles) */
static const char *const big[] = {
    "mma_q4_0 M=137 N=263 K=256",
    "mma_a4   M=137 N=263 K=256 group=128",
    "mma_f16  M=137 N=263 K=192",
};
#define NBIG (int)(sizeof big / sizeof big[0])

static void test_vk_f32(void **st)
{
    (void)st;
    kbt_check_vk("^vk_f32$", odd, NODD);
    kbt_check_vk("^vk_f32$", big, NBIG);
}

static void test_vk_h(void **st)
{
    (void)st;
    kbt_check_vk("^vk_h$", odd, NODD);
    kbt_check_vk("^vk_h$", big, NBIG);
}

static void test_vk_hh(void **st)
{
    (void)st;
    kbt_check_vk("^vk_hh$", odd, NODD);
    kbt_check_vk("^vk_hh$", big, NBIG);
}

static void test_vk_cm(void **st)
{
    (void)st;
    kbt_check_vk("^vk_cm$", odd, NODD);
    kbt_check_vk("^vk_cm$", big, NBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vk_f32),
        cmocka_unit_test(test_vk_h),
        cmocka_unit_test(test_vk_hh),
        cmocka_unit_test(test_vk_cm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
