/* The Vulkan attention implementations against the reference (lavapipe on machines without a
 * GPU): decode with T = 1, lengths that end mid-tile and span several splits, every head_dim,
 * GQA ratios 1/2/3/4/16 (16 takes two head chunks per kv head), f16 and f32 caches, for both
 * pass-1 variants (direct, the default, and staged with several tile sizes:
 * KB_VK_ATTN_DECODE); prefill
 * with n_q = 1, partial query blocks, p0 > 0 and diagonal tiles. Skipped, with the reason,
 * when the machine has no Vulkan device. */
#include <stdlib.h>
#include <string.h>

#include "kbtest.h"

/* Checks the lines' cases with the "vk" implementations only; returns kb_run's count of bad rows. */
static int run_vk(const char *const *lines, int n, kb_results *r)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.impl_re = "^vk$";
    int bad = kb_run(&o, &cl, r);
    kb_case_list_free(&cl);
    return bad;
}

/* The decode tests' environment variables, cleared after each (also after a failure). */
static int dec_env_clear(void **st)
{
    (void)st;
    unsetenv("KB_VK_ATTN_DECODE");
    unsetenv("KB_VK_ATTN_SPLITS");
    unsetenv("KB_VK_ATTN_RESCALE");
    return 0;
}

static const char *const DEC_LENGTHS[] = {
    "attn_decode heads=4 kv_heads=1 head_dim=64,128,256 T=1,2,17,129,300 kv_f16=0,1",
};

/* GQA 1, 4, 16 (two chunks of 8), 3, 12 (chunks of 8 and 4), 2; 16 at D = 256 takes a smaller
 * staged tile where shared memory is 32 KiB (lavapipe). */
static const char *const DEC_GQA[] = {
    "attn_decode heads=16 kv_heads=16,4,1 head_dim=128 T=1,57,1000 kv_f16=0,1",
    "attn_decode heads=6 kv_heads=2 head_dim=64 T=13,200 kv_f16=1",
    "attn_decode heads=12 kv_heads=1 head_dim=64 T=77 kv_f16=0",
    "attn_decode heads=8 kv_heads=4 head_dim=256 T=1,300 kv_f16=0,1",
    "attn_decode heads=16 kv_heads=1 head_dim=256 T=2,1000 kv_f16=1",
};

static void test_vk_decode_lengths(void **st)
{
    (void)st;
    kbt_check_vk("^vk$", DEC_LENGTHS, 1);
}

static void test_vk_decode_gqa(void **st)
{
    (void)st;
    kbt_check_vk("^vk$", DEC_GQA, 5);
}

/* The staged pass 1 (attn_decode_staged.comp) on the same cases. */
static void test_vk_decode_staged(void **st)
{
    (void)st;
    setenv("KB_VK_ATTN_DECODE", "staged", 1);
    kbt_check_vk("^vk$", DEC_LENGTHS, 1);
    kbt_check_vk("^vk$", DEC_GQA, 5);
}

/* Staged tiles other than the default: more A threads per row (down to one unit each, 64 per
 * row at D = 256 f32) and fewer rows per lane; then a rescale at every rise of a lane's max
 * (random scores rarely rise by the default slack after a lane's first row). */
static void test_vk_decode_staged_tiles(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_decode heads=8 kv_heads=2 head_dim=64,128,256 T=1,100,1000 kv_f16=0,1",
        "attn_decode heads=16 kv_heads=1 head_dim=128 T=300 kv_f16=1",
    };
    static const char *const tiles[] = {"staged:1", "staged:2", "staged:4"};
    for (int i = 0; i < 3; i++) {
        setenv("KB_VK_ATTN_DECODE", tiles[i], 1);
        kbt_check_vk("^vk$", lines, 2);
    }
    setenv("KB_VK_ATTN_DECODE", "staged", 1);
    setenv("KB_VK_ATTN_RESCALE", "0", 1);
    kbt_check_vk("^vk$", lines, 2);
    kbt_check_vk("^vk$", DEC_GQA, 5);
}

/* Few splits of many tiles each (KB_VK_ATTN_SPLITS; direct, then staged), then the automatic
 * choice. */
static void test_vk_decode_splits(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_decode heads=8 kv_heads=2 head_dim=128,256 T=1000,4099 kv_f16=0,1",
    };
    setenv("KB_VK_ATTN_SPLITS", "3", 1);
    kbt_check_vk("^vk$", lines, 1);
    setenv("KB_VK_ATTN_DECODE", "staged", 1);
    kbt_check_vk("^vk$", lines, 1);
    unsetenv("KB_VK_ATTN_DECODE");
    unsetenv("KB_VK_ATTN_SPLITS");
    kbt_check_vk("^vk$", lines, 1);
}

/* A malformed KB_VK_ATTN_SPLITS is an error naming the variable, not a silent default. */
static void test_vk_decode_splits_malformed(void **st)
{
    (void)st;
    static const char *const lines[] = {"attn_decode heads=8 kv_heads=2 head_dim=64 T=100"};
    static const char *const bad_values[] = {"3x", "0", "-2", ""};
    for (int i = 0; i < 4; i++) {
        setenv("KB_VK_ATTN_SPLITS", bad_values[i], 1);
        kb_results r = {0};
        int bad = run_vk(lines, 1, &r);
        int errors = 0, skipped = 0;
        for (int j = 0; j < r.n; j++) {
            skipped += r.v[j].status == KB_SKIP;
            if (r.v[j].status == KB_ERROR) {
                errors++;
                assert_non_null(strstr(r.v[j].msg, "KB_VK_ATTN_SPLITS"));
            }
        }
        kb_results_free(&r);
        if (errors == 0 && skipped > 0) {
            print_message("no Vulkan device\n");
            skip();
        }
        assert_true(bad > 0);
        assert_true(errors > 0);
    }
}

static void test_vk_prefill(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_prefill heads=4 kv_heads=1 head_dim=64,128,256 n_q=1,5,33,70 p0=0,3 kv_f16=0,1",
        "attn_prefill heads=6 kv_heads=3,2 head_dim=64 n_q=11,30 p0=0,41 kv_f16=1",
    };
    kbt_check_vk("^vk$", lines, 2);
}

static void test_vk_prefill_long(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_prefill heads=8 kv_heads=2 head_dim=128 n_q=130 p0=0,300 kv_f16=0,1",
    };
    kbt_check_vk("^vk$", lines, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_vk_decode_lengths, dec_env_clear),
        cmocka_unit_test_teardown(test_vk_decode_gqa, dec_env_clear),
        cmocka_unit_test_teardown(test_vk_decode_staged, dec_env_clear),
        cmocka_unit_test_teardown(test_vk_decode_staged_tiles, dec_env_clear),
        cmocka_unit_test_teardown(test_vk_decode_splits, dec_env_clear),
        cmocka_unit_test_teardown(test_vk_decode_splits_malformed, dec_env_clear),
        cmocka_unit_test(test_vk_prefill),
        cmocka_unit_test(test_vk_prefill_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
