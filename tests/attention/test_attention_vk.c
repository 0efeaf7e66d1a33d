/* The Vulkan attention implementations against the reference (lavapipe on machines without a
 * GPU): decode with T = 1, lengths that end mid-tile and span several splits, every head_dim,
 * GQA ratios 1/2/3/4/16 (16 takes two head chunks per kv head), f16 and f32 caches, for every
 * variant (direct, the default; staged with several tile sizes; persistent with the merge
 * fused, with few and many workgroups, and run again after timing: KB_VK_ATTN_DECODE); prefill
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

/* The persistent decode (attn_decode_persist.comp): one workgroup per item, then few
 * workgroups walking many items (the merge inside a workgroup that goes on to other items),
 * one split (every workgroup is its cell's last) and few splits. */
static void test_vk_decode_persistent(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_decode heads=8 kv_heads=2 head_dim=64,128,256 T=1,1000,4099 kv_f16=0,1",
    };
    setenv("KB_VK_ATTN_DECODE", "persistent", 1);
    kbt_check_vk("^vk$", DEC_LENGTHS, 1);
    kbt_check_vk("^vk$", DEC_GQA, 5);
    static const char *const grids[] = {"persistent:1", "persistent:3"};
    for (int i = 0; i < 2; i++) {
        setenv("KB_VK_ATTN_DECODE", grids[i], 1);
        kbt_check_vk("^vk$", lines, 1);
    }
    setenv("KB_VK_ATTN_SPLITS", "1", 1);
    kbt_check_vk("^vk$", lines, 1);
    setenv("KB_VK_ATTN_SPLITS", "3", 1);
    kbt_check_vk("^vk$", lines, 1);
}

/* The counters go back to 0 after each run: timed runs, then the runner's check after timing
 * (which fails when that run skipped the merge: finish leaves NaN in O on the device). */
static void test_vk_decode_persistent_rerun(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "attn_decode heads=8 kv_heads=2 head_dim=128 T=1,300,1000 kv_f16=1",
    };
    setenv("KB_VK_ATTN_DECODE", "persistent:2", 1);
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, 1);
    kb_options o;
    kb_options_default(&o);
    o.impl_re = "^vk$";
    o.kernel_re = "attn_decode";
    o.iterations = 3;
    o.hot = 1;
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int timed = 0, skipped = 0;
    for (int i = 0; i < r.n; i++) {
        timed += r.v[i].status == KB_PASS && r.v[i].n_samples >= 3;
        skipped += r.v[i].status == KB_SKIP;
    }
    kb_results_free(&r);
    kb_case_list_free(&cl);
    if (timed == 0 && skipped > 0 && bad == 0) {
        print_message("no Vulkan device\n");
        skip();
    }
    assert_int_equal(bad, 0);
    assert_int_equal(timed, 3);
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

/* A malformed KB_VK_ATTN_SPLITS or KB_VK_ATTN_DECODE is an error naming the variable, not a
 * silent default. */
static void test_vk_decode_splits_malformed(void **st)
{
    (void)st;
    static const char *const lines[] = {"attn_decode heads=8 kv_heads=2 head_dim=64 T=100"};
    static const char *const bad_values[][2] = {
        {"KB_VK_ATTN_SPLITS", "3x"},           {"KB_VK_ATTN_SPLITS", "0"},
        {"KB_VK_ATTN_SPLITS", "-2"},           {"KB_VK_ATTN_SPLITS", ""},
        {"KB_VK_ATTN_DECODE", "persistent:0"}, {"KB_VK_ATTN_DECODE", "persistent:x"},
        {"KB_VK_ATTN_DECODE", "persist"},      {"KB_VK_ATTN_DECODE", "staged:3"},
    };
    for (int i = 0; i < 8; i++) {
        dec_env_clear(NULL);
        setenv(bad_values[i][0], bad_values[i][1], 1);
        kb_results r = {0};
        int bad = run_vk(lines, 1, &r);
        int errors = 0, skipped = 0;
        for (int j = 0; j < r.n; j++) {
            skipped += r.v[j].status == KB_SKIP;
            if (r.v[j].status == KB_ERROR) {
                errors++;
                assert_non_null(strstr(r.v[j].msg, bad_values[i][0]));
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
        cmocka_unit_test_teardown(test_vk_decode_persistent, dec_env_clear),
        cmocka_unit_test_teardown(test_vk_decode_persistent_rerun, dec_env_clear),
        cmocka_unit_test_teardown(test_vk_decode_splits, dec_env_clear),
        cmocka_unit_test_teardown(test_vk_decode_splits_malformed, dec_env_clear),
        cmocka_unit_test(test_vk_prefill),
        cmocka_unit_test(test_vk_prefill_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
