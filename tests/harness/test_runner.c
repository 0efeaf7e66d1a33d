/* The timing loop and statistics: known samples give known medians and noise; a timed run
 * produces samples, rotated copies and throughput; the thread pool splits work exactly. */
#include <math.h>
#include <stdatomic.h>

#include "kbtest.h"
#include "stats.h"

static void test_stats_known(void **st)
{
    (void)st;
    double x[] = {5, 1, 4, 2, 3};
    kb_stats s;
    kb_stats_compute(x, 5, &s);
    assert_true(s.median == 3 && s.min == 1 && s.max == 5 && s.mean == 3);
    assert_true(fabs(s.p90 - 4.6) < 1e-12); /* linear interpolation between 4 and 5 */
    /* MAD of {2,1,1,0,2}... = 1 -> noise = 1.4826 / 3 */
    assert_true(fabs(s.noise_pct - 1.4826 / 3 * 100) < 1e-9);
    assert_true(x[0] == 5); /* input untouched */
    double y[] = {7, 7, 7, 7};
    kb_stats_compute(y, 4, &s);
    assert_true(s.noise_pct == 0 && s.median == 7);
    double z[] = {1, 2};
    kb_stats_compute(z, 2, &s);
    assert_true(s.median == 1.5);
}

static void test_timed_run(void **st)
{
    (void)st;
    kb_case_list cl = {0};
    const char *line = "matvec_q8_0 rows=64 cols=256";
    kbt_cases(&cl, &line, 1);
    kb_options o;
    kb_options_default(&o);
    o.no_vulkan = 1;
    o.impl_re = "^ref$";
    o.min_time = 0.01;
    o.max_time = 0.05;
    o.min_samples = 5;
    kb_results r = {0};
    assert_int_equal(kb_run(&o, &cl, &r), 0);
    assert_int_equal(r.n, 1);
    kb_result *x = &r.v[0];
    assert_int_equal(x->status, KB_PASS);
    assert_true(x->n_samples >= 5);
    assert_true(x->median > 0 && x->min <= x->median && x->median <= x->p90);
    assert_true(x->copies > 1); /* 17 KB of weights: rotated beyond the LLC */
    assert_true(fabs(x->gbps - x->bytes / x->median * 1e-9) < 1e-9 * x->gbps);
    kb_results_free(&r);
    kb_case_list_free(&cl);
}

static void test_interleaved_run(void **st)
{
    (void)st;
    kb_case_list cl = {0};
    static const char *const lines[] = {"matvec_q8_0 rows=64 cols=256", "read mib=1"};
    kbt_cases(&cl, lines, 2);
    kb_options o;
    kb_options_default(&o);
    o.no_vulkan = 1;
    o.impl_re = "^ref$";
    o.min_time = 0.01;
    o.max_time = 0.05;
    o.min_samples = 5;
    o.interleave = 1;
    kb_results r = {0};
    assert_int_equal(kb_run(&o, &cl, &r), 0);
    assert_int_equal(r.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r.v[i].status, KB_PASS);
        assert_true(r.v[i].n_samples >= 5);
        assert_true(r.v[i].median > 0 && isfinite(r.v[i].gbps));
    }
    kb_results_free(&r);
    kb_case_list_free(&cl);
}

static atomic_long hits[1000];

static void mark(void *arg, int tid, int n)
{
    int64_t lo, hi;
    kb_split(1000, 7, tid, n, &lo, &hi);
    assert_true(lo % 7 == 0 || lo == 1000);
    for (int64_t i = lo; i < hi; i++)
        atomic_fetch_add(&hits[i], 1);
}

static void test_pool_split_exact(void **st)
{
    (void)st;
    for (int n = 1; n <= 5; n++) {
        kb_pool *p = kb_pool_create(n, 0);
        for (int i = 0; i < 1000; i++)
            atomic_store(&hits[i], 0);
        for (int rep = 0; rep < 50; rep++)
            kb_pool_run(p, mark, NULL);
        for (int i = 0; i < 1000; i++)
            assert_int_equal(atomic_load(&hits[i]), 50);
        kb_pool_destroy(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_known),
        cmocka_unit_test(test_timed_run),
        cmocka_unit_test(test_interleaved_run),
        cmocka_unit_test(test_pool_split_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
