/* mla_decode, the scalar Vulkan implementation ("vk") against the reference: T = 1 and odd
 * lengths, n_q = 1..4, heads 5/16/32/128, small and DeepSeek-V3 widths, bf16 and f16 caches,
 * f32 and bf16 weights; forced split counts (1, 3, many), every split tile, the cache cut into
 * binding parts (KB_VK_MLA_PART), the rescale path on every rise of a max
 * (KB_VK_MLA_RESCALE=0), peaky and outlier inputs, malformed settings. Lavapipe runs it here. */
#include <stdlib.h>

#include "kbtest.h"

static const char *const lines[] = {
    "mla_decode heads=16 T=1,2,17,130 cache=0,1 w_bf16=0,1",
    "mla_decode heads=16 T=4,33 n_q=2,3,4",
    "mla_decode heads=5 T=40 n_q=3 rank=64,128 rope=16,32 v_dim=16,48 cache=1",
    "mla_decode heads=32 T=300 n_q=2 rank=128",
    "mla_decode heads=128 T=100 label=deepseek-v3",
};
#define NL (int)(sizeof lines / sizeof lines[0])

static void test_vk_shapes(void **st)
{
    (void)st;
    kbt_check_vk("^vk$", lines, NL);
}

static void test_vk_splits_parts(void **st)
{
    (void)st;
    static const char *const more[] = {
        "mla_decode heads=16 T=1,17,200 rank=64 rope=16 cache=0,1",
        "mla_decode heads=16 T=17,200 n_q=2 rank=64 rope=16",
        "mla_decode heads=8 T=333 n_q=4 rank=128",
    };
    setenv("KB_VK_MLA_SPLITS", "1", 1);
    kbt_check_vk("^vk$", more, 3);
    setenv("KB_VK_MLA_SPLITS", "3", 1);
    kbt_check_vk("^vk$", more, 3);
    setenv("KB_VK_MLA_SPLITS", "64", 1);
    kbt_check_vk("^vk$", more, 3);
    /* parts of 32 positions (one or two splits each), so the split pass is dispatched per part
     * with bindings that start inside the cache */
    setenv("KB_VK_MLA_SPLITS", "20", 1);
    setenv("KB_VK_MLA_PART", "32", 1);
    kbt_check_vk("^vk$", more, 3);
    unsetenv("KB_VK_MLA_PART");
    unsetenv("KB_VK_MLA_SPLITS");
}

static void test_vk_tiles_rescale(void **st)
{
    (void)st;
    static const char *const more[] = {
        "mla_decode heads=6 T=1,45,200 rank=64 rope=16 v_dim=32 cache=0,1",
        "mla_decode heads=6 T=45,200 n_q=3 rank=64 rope=16 v_dim=32",
    };
    static const char *const tiles[] = {"1,8", "3,8", "4,16", "8,16", "2,24", "5,64"};
    for (int i = 0; i < 6; i++) {
        setenv("KB_VK_MLA_TILE", tiles[i], 1);
        kbt_check_vk("^vk$", more, 2);
    }
    unsetenv("KB_VK_MLA_TILE");
    setenv("KB_VK_MLA_RESCALE", "0", 1);
    kbt_check_vk("^vk$", more, 2);
    kbt_check_vk("^vk$", lines, 2);
    unsetenv("KB_VK_MLA_RESCALE");
}

static void check_vk_inputs(kb_inputs dist)
{
    static const char *const more[] = {
        "mla_decode heads=16 T=1,150 cache=0,1",
        "mla_decode heads=16 T=150 n_q=3 rank=128",
    };
    kb_case_list cl = {0};
    kbt_cases(&cl, more, 2);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.impl_re = "^vk$";
    o.inputs = dist;
    kb_results r = {0};
    const int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int passed = 0;
    for (int i = 0; i < r.n; i++)
        passed += r.v[i].status == KB_PASS;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
    if (passed == 0)
        skip(); /* no Vulkan device here */
}

static void test_vk_peaky_outliers(void **st)
{
    (void)st;
    check_vk_inputs(KB_INPUTS_PEAKY);
    check_vk_inputs(KB_INPUTS_OUTLIERS);
}

/* A malformed setting is an error naming the variable, never the default under another name. */
static void test_vk_bad_settings(void **st)
{
    (void)st;
    static const char *const one[] = {"mla_decode heads=4 T=20 rank=64 rope=16 v_dim=16"};
    static const char *const vars[][2] = {{"KB_VK_MLA_SPLITS", "0"},  {"KB_VK_MLA_SPLITS", "x"},
                                          {"KB_VK_MLA_PART", "-5"},   {"KB_VK_MLA_TILE", "3"},
                                          {"KB_VK_MLA_TILE", "2,12"}, {"KB_VK_MLA_RESCALE", "20"}};
    for (int v = 0; v < 6; v++) {
        setenv(vars[v][0], vars[v][1], 1);
        kb_case_list cl = {0};
        kbt_cases(&cl, one, 1);
        kb_options o;
        kb_options_default(&o);
        o.check_only = 1;
        o.impl_re = "^vk$";
        kb_results r = {0};
        kb_run(&o, &cl, &r);
        for (int i = 0; i < r.n; i++) {
            if (r.v[i].status == KB_SKIP)
                continue;
            assert_int_equal(r.v[i].status, KB_ERROR);
            if (!strstr(r.v[i].msg, vars[v][0]))
                fail_msg("%s=%s: message '%s'", vars[v][0], vars[v][1], r.v[i].msg);
        }
        kb_results_free(&r);
        kb_case_list_free(&cl);
        unsetenv(vars[v][0]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vk_shapes),
        cmocka_unit_test(test_vk_splits_parts),
        cmocka_unit_test(test_vk_tiles_rescale),
        cmocka_unit_test(test_vk_peaky_outliers),
        cmocka_unit_test(test_vk_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
