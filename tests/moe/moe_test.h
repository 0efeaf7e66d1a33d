/* What the moe tests share: checking suite lines with an input distribution, and the shape
 * errors. */
#ifndef KB_MOE_TEST_H
#define KB_MOE_TEST_H

#include "kbtest.h"

/* Checks the lines with implementations matching impl_re on `dist` inputs, CPU threads 1, 2, 3
 * (vk: the Vulkan ones, skipped when no device); fails on FAIL/ERROR rows and when nothing but
 * ref passed. */
static inline void moe_check(const char *impl_re, int vk, kb_inputs dist, const char *const *lines,
                             int n)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kbt_check_options(&o);
    o.no_vulkan = !vk;
    o.impl_re = impl_re;
    o.inputs = dist;
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int checked = 0, skipped = 0;
    for (int i = 0; i < r.n; i++) {
        checked += r.v[i].status == KB_PASS && strcmp(r.v[i].impl->name, "ref") != 0;
        skipped += r.v[i].status == KB_SKIP;
    }
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
    if (vk && checked == 0 && skipped > 0) {
        print_message("%s not run here (no Vulkan device)\n", impl_re);
        skip();
    }
    assert_true(checked > 0);
}

static inline void moe_expect_error(const char *line, const char *msg)
{
    kb_case_list cl = {0};
    char err[512] = "";
    assert_int_equal(kb_suite_parse_line(line, &cl, err, sizeof err), -1);
    if (!strstr(err, msg))
        fail_msg("'%s': error '%s' does not say '%s'", line, err, msg);
    kb_case_list_free(&cl);
}

#endif
