/* The cooperative-matrix attention against the reference, both extensions of attn_cm.glsl:
 * "vk_cm" (GL_NV_cooperative_matrix) and "vk_cm_khr" (GL_KHR_cooperative_matrix), each test run
 * once per implementation (its regex is the test's state):
 * decode with T = 1 and lengths off every tile, GQA 1/4/16/32 (32: two row blocks per kv
 * head), forced and automatic splits; prefill with n_q = 1, GQA groups that straddle the
 * 16-row blocks (G = 2, 3), p0 > 0, f16 and f32 caches, every head_dim; the rarely taken
 * rescale path forced on (KB_VK_CM_RESCALE=0) and other tiles (KB_VK_CM_TILE). Skipped, with
 * the reason, where the build or the device lacks the variant (Debian 12's lavapipe: always;
 * Mesa 26's lavapipe runs vk_cm_khr with KB_VK_COOPMAT_KHR_ANY_SHAPE=1, harness/vk.c). */
#include <stdlib.h>

#include "kbtest.h"

static const char *const decode_lines[] = {
    "attn_decode heads=4 kv_heads=1 head_dim=64,128,256 T=1,2,17,129,300 kv_f16=0,1",
    "attn_decode heads=16 kv_heads=16,4,1 head_dim=128 T=1,57,1000 kv_f16=0,1",
    "attn_decode heads=32 kv_heads=1 head_dim=64 T=77,700 kv_f16=1",
    "attn_decode heads=6 kv_heads=2 head_dim=64 T=13,200 kv_f16=1",
};

static const char *const prefill_lines[] = {
    "attn_prefill heads=4 kv_heads=1 head_dim=64,128,256 n_q=1,5,33,70 p0=0,3 kv_f16=0,1",
    "attn_prefill heads=6 kv_heads=3,2 head_dim=64 n_q=11,30 p0=0,41 kv_f16=1",
    "attn_prefill heads=8 kv_heads=2 head_dim=128 n_q=130 p0=0,300 kv_f16=0,1",
    "attn_prefill heads=32 kv_heads=2 head_dim=256 n_q=40 p0=17 kv_f16=1",
};

static void test_cm_decode(void **st)
{
    const char *re = *st;
    kbt_check_vk(re, decode_lines, 4);
    setenv("KB_VK_ATTN_SPLITS", "3", 1);
    kbt_check_vk(re, decode_lines, 4);
    setenv("KB_VK_ATTN_SPLITS", "1", 1);
    kbt_check_vk(re, decode_lines, 2);
    unsetenv("KB_VK_ATTN_SPLITS");
}

static void test_cm_prefill(void **st)
{
    const char *re = *st;
    kbt_check_vk(re, prefill_lines, 4);
}

/* Every rise of a row's max rescales O: the path the default threshold takes rarely. */
static void test_cm_rescale(void **st)
{
    const char *re = *st;
    setenv("KB_VK_CM_RESCALE", "0", 1);
    kbt_check_vk(re, prefill_lines, 4);
    kbt_check_vk(re, decode_lines, 2);
    unsetenv("KB_VK_CM_RESCALE");
}

/* Other tiles than the automatic choice (odd NR, prefetch, Q in shared memory), at D <= 128
 * where they all fit. */
static void test_cm_tiles(void **st)
{
    const char *re = *st;
    static const char *const lines[] = {
        "attn_decode heads=8 kv_heads=2 head_dim=64,128 T=1,100,777 kv_f16=0,1",
        "attn_prefill heads=6 kv_heads=2 head_dim=64,128 n_q=1,45 p0=0,70 kv_f16=0,1",
    };
    static const char *const tiles[] = {"1,16",  "3,16,1",   "1,48,1",
                                        "4,16", "2,16,1,1", "3,16,0,1"};
    for (int i = 0; i < 6; i++) {
        setenv("KB_VK_CM_TILE", tiles[i], 1);
        kbt_check_vk(re, lines, 2);
    }
    unsetenv("KB_VK_CM_TILE");
}

/* The tests' environment variables, cleared after each (also after a failure). */
static int env_clear(void **st)
{
    (void)st;
    unsetenv("KB_VK_ATTN_SPLITS");
    unsetenv("KB_VK_CM_RESCALE");
    unsetenv("KB_VK_CM_TILE");
    return 0;
}

#define BOTH(f)                                                                                \
    cmocka_unit_test_prestate_setup_teardown(f, NULL, env_clear, (void *)"^vk_cm$"),           \
        cmocka_unit_test_prestate_setup_teardown(f, NULL, env_clear, (void *)"^vk_cm_khr$")

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_cm_decode),
        BOTH(test_cm_prefill),
        BOTH(test_cm_rescale),
        BOTH(test_cm_tiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
