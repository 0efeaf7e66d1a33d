/* The Vulkan GatedDeltaNet implementations against the recurrence in double (lavapipe on
 * machines without a GPU): decode and the sequential prefill (a subgroup per state row), the
 * chunkwise prefill C = 16 and 64 (chunk edges, GQA, dk/dv 64 and 128, extreme gates, a longer
 * sequence), and the companions. Skipped, with the reason, when there is no Vulkan device. */
#include "kbtest.h"

/* kbt_check_vk with an input distribution */
static void check_vk_dist(const char *impl_re, const char *const *lines, int n, kb_inputs dist)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.impl_re = impl_re;
    o.inputs = dist;
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int passed = 0, skipped = 0;
    for (int i = 0; i < r.n; i++) {
        passed += r.v[i].status == KB_PASS;
        skipped += r.v[i].status == KB_SKIP;
    }
    kb_results_free(&r);
    kb_case_list_free(&cl);
    if (passed == 0 && skipped > 0 && bad == 0)
        skip();
    assert_int_equal(bad, 0);
    assert_true(passed > 0);
}

static void test_vk_decode(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "gdn_decode batch=1,3 hk=1 hv=1,3 dk=64,128 dv=64,128",
        "gdn_decode batch=2 hk=16 hv=64 dk=128 dv=128 label=qwen35",
    };
    kbt_check_vk("^vk$", lines, 2);
    static const char *const ext[] = {"gdn_decode batch=9 hk=2 hv=4 dk=128 dv=64"};
    check_vk_dist("^vk$", ext, 1, KB_INPUTS_EXTREME);
    check_vk_dist("^vk$", ext, 1, KB_INPUTS_OUTLIERS);
}

static void test_vk_prefill(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "gdn_prefill n=1,15,16,17,64,65,130 hk=1 hv=2 dk=64,128 dv=64",
        "gdn_prefill n=33 hk=2 hv=6 dk=128 dv=128",
        "gdn_prefill n=40 hk=16 hv=32 dk=128 dv=128 label=qwen3-next",
    };
    kbt_check_vk("vk$", lines, 3);
    static const char *const ext[] = {"gdn_prefill n=200 hk=1 hv=2 dk=64 dv=128"};
    check_vk_dist("vk$", ext, 1, KB_INPUTS_EXTREME);
    check_vk_dist("vk$", ext, 1, KB_INPUTS_OUTLIERS);
}

/* a longer sequence through both chunk sizes and the sequential kernel: no drift */
static void test_vk_prefill_long(void **st)
{
    (void)st;
    static const char *const lines[] = {"gdn_prefill n=2000 hk=1 hv=2 dk=64 dv=64"};
    check_vk_dist("vk$", lines, 1, KB_INPUTS_EXTREME);
}

static void test_vk_companions(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "gdn_conv batch=1,3 n=1,2,3,4,37 channels=1,17,300",
        "gdn_gates n=1,9,200 hv=1,13,64",
        "gdn_qknorm n=1,7 hk=1,5 dk=64,128",
        "gdn_gatednorm n=1,7 hv=1,5 dv=64,128",
    };
    kbt_check_vk("^vk$", lines, 4);
    static const char *const ext[] = {"gdn_gates n=300 hv=64"};
    check_vk_dist("^vk$", ext, 1, KB_INPUTS_EXTREME);
    static const char *const out[] = {"gdn_conv batch=2 n=9 channels=100",
                                      "gdn_qknorm n=7 hk=3 dk=64,128",
                                      "gdn_gatednorm n=7 hv=3 dv=64,128"};
    check_vk_dist("^vk$", out, 3, KB_INPUTS_OUTLIERS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vk_decode),
        cmocka_unit_test(test_vk_prefill),
        cmocka_unit_test(test_vk_prefill_long),
        cmocka_unit_test(test_vk_companions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
