/* The Vulkan MLX affine (a8, a4, a2) and bf16 matvecs against the reference (lavapipe on
 * machines without a GPU): odd row counts, partial last chunks, every group size, tokens, MoE
 * experts picked from a larger set with shared and per-expert x. Skipped, with the reason, when
 * the machine has no Vulkan device. */
#include "kbtest.h"

/* Mesa's lavapipe leaks 128 bytes in an initialiser of its own (see tests/CMakeLists.txt, which
 * turns leak checking off for the Vulkan tests): the same here, in sanitizer builds only. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }

/* cols 64: one partial chunk; 1088 (a multiple of 32 and 64, not of 128): a full chunk of a8
 * and a partial one after it; 2048: whole chunks of every format. */
static void test_vk_affine_odd(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_a8 rows=1,7,33 cols=64,1088 group=32,64",
        "matvec_a4 rows=1,7,33 cols=64,1088 group=32,64",
        "matvec_a2 rows=1,7,33 cols=64,1088 group=32,64",
        "matvec_a8 rows=7 cols=128,2048 group=128",
        "matvec_a4 rows=7 cols=128,2048 group=128",
        "matvec_a2 rows=7 cols=128,2048 group=128",
        "matvec_bf16 rows=1,7,33 cols=32,1056,2048",
    };
    kbt_check_vk("^vk", lines, 7);
}

static void test_vk_affine_tokens(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_a8 rows=45 cols=256 tokens=2,3,16",
        "matvec_a4 rows=45 cols=256 tokens=2,3,16 group=32",
        "matvec_a2 rows=45 cols=256 tokens=2,3,16 group=128",
        "matvec_bf16 rows=45 cols=256 tokens=2,3,16",
    };
    kbt_check_vk("^vk", lines, 4);
}

static void test_vk_affine_experts(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "matvec_a8 rows=33 cols=128 experts=1,3 n_experts=16 shared_x=0,1",
        "matvec_a4 rows=33 cols=128 tokens=1,3 experts=3,10 n_experts=16,512 shared_x=0,1",
        "matvec_a2 rows=33 cols=128 tokens=2 experts=3 n_experts=0,16 shared_x=0,1",
        "matvec_bf16 rows=33 cols=128 tokens=1,3 experts=3 n_experts=512 shared_x=0,1",
    };
    kbt_check_vk("^vk", lines, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vk_affine_odd),
        cmocka_unit_test(test_vk_affine_tokens),
        cmocka_unit_test(test_vk_affine_experts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
