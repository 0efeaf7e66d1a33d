/* Checks that hold on any seed and any input (issue 18): every family under every input
 * distribution it knows, with every implementation (CPU at 1 and 3 threads, Vulkan); and a seed
 * sweep (1..200) at every family's smallest shape, where a dot product of 32 terms or one output
 * makes an NMSE ill-conditioned: the conditioned error must pass every correct kernel there.
 * The sanitizer build runs a subset (KBT_SANITIZED): two distributions per family, 40 seeds. */
#include "kbtest.h"

/* lavapipe leaks 128 bytes in an initialiser of its own (tests/CMakeLists.txt) */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }

static int run_line(const kb_family *f, const char *shape, uint64_t seed, kb_inputs dist, int vk,
                    int *checked)
{
    char line[512];
    snprintf(line, sizeof line, "%s %s", f->name, shape);
    kb_case_list cl = {0};
    const char *l = line;
    kbt_cases(&cl, &l, 1);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.seed = seed;
    o.inputs = dist;
    o.no_vulkan = !vk;
    o.n_threads = 2;
    o.threads[0] = 1;
    o.threads[1] = 3;
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    if (bad) {
        print_error("%s %s, seed %llu, --inputs %s:\n", f->name, shape, (unsigned long long)seed,
                    kb_inputs_name(dist));
        kbt_print_failures(&r);
    }
    for (int i = 0; i < r.n; i++)
        *checked += r.v[i].status == KB_PASS && r.v[i].impl && strcmp(r.v[i].impl->name, "ref") != 0;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    return bad;
}

static void test_every_distribution(void **st)
{
    (void)st;
    int bad = 0;
    for (int i = 0; i < kb_family_count(); i++) {
        const kb_family *f = kb_family_at(i);
        int other = 0; /* the sanitizer build: random and one other distribution per family */
        for (int d = 0; d < KB_INPUTS_COUNT; d++) {
            if (d != KB_INPUTS_RANDOM && !(f->inputs & KB_INPUTS_BIT(d)))
                continue;
            if (KBT_SANITIZED && d != KB_INPUTS_RANDOM && other++ != i % 2)
                continue;
            int checked = 0;
            bad += run_line(f, f->test_shape, 1234, (kb_inputs)d, 1, &checked);
            if (!checked)
                fail_msg("%s --inputs %s: no implementation but ref ran", f->name,
                         kb_inputs_name((kb_inputs)d));
        }
    }
    assert_int_equal(bad, 0);
}

static void test_seed_sweep_smallest_shapes(void **st)
{
    (void)st;
    int bad = 0;
    for (int i = 0; i < kb_family_count(); i++) {
        const kb_family *f = kb_family_at(i);
        const char *shape = f->smallest_shape ? f->smallest_shape : f->test_shape;
        int checked = 0;
        /* Vulkan for the first 20 seeds: lavapipe is slow; the sanitizer build: 40 and 5 */
        const uint64_t nseed = KBT_SANITIZED ? 40 : 200, nvk = KBT_SANITIZED ? 5 : 20;
        for (uint64_t seed = 1; seed <= nseed; seed++)
            bad += run_line(f, shape, seed, KB_INPUTS_RANDOM, seed <= nvk, &checked);
        assert_true(checked > 0);
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_distribution),
        cmocka_unit_test(test_seed_sweep_smallest_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
