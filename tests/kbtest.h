/* Helpers shared by the tests: run cases through the real runner in check-only mode. */
#ifndef KB_TEST_H
#define KB_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* The sanitizer build (ASan, -O1) runs the tests' references several times slower: its long
 * sweeps run a subset there (the default build runs them whole), so CI stays well inside its
 * time. */
#if defined(__SANITIZE_ADDRESS__)
#define KBT_SANITIZED 1
#else
#define KBT_SANITIZED 0
#endif

#include "kbench.h"
#include "runner.h"
#include "suite.h"

/* Parses suite lines into cases; fails the test on a parse error. */
static inline void kbt_cases(kb_case_list *cl, const char *const *lines, int n)
{
    char err[512];
    for (int i = 0; i < n; i++) {
        if (kb_suite_parse_line(lines[i], cl, err, sizeof err) != 0)
            fail_msg("suite line '%s': %s", lines[i], err);
    }
}

/* Check-only options for threads 1, 2 and 3 (3 makes uneven row splits on any machine). */
static inline void kbt_check_options(kb_options *o)
{
    kb_options_default(o);
    o->check_only = 1;
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->threads[2] = 3;
    o->n_threads = 3;
}

static inline void kbt_print_failures(const kb_results *r)
{
    for (int i = 0; i < r->n; i++) {
        const kb_result *x = &r->v[i];
        if (x->status == KB_FAIL || x->status == KB_ERROR) {
            char shape[160];
            kb_case_format(&x->c, shape, sizeof shape);
            print_error("%s %s %s t=%d: %s %s\n", x->c.fam->name, shape,
                        x->impl ? x->impl->name : "-", x->threads, kb_status_name(x->status),
                        x->msg);
        }
    }
}

/* Checks the lines' cases with the CPU implementations matching impl_re (NULL: all, ref
 * included) at threads 1, 2 and 3; fails on any FAIL or ERROR row, and when no implementation
 * other than ref passed (an optimized kernel must have run, or the test proves nothing). */
static inline void kbt_check_cpu(const char *impl_re, const char *const *lines, int n)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kbt_check_options(&o);
    o.no_vulkan = 1; /* each group's Vulkan implementations have their own test */
    o.impl_re = impl_re;
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int checked = 0;
    for (int i = 0; i < r.n; i++)
        checked += r.v[i].status == KB_PASS && strcmp(r.v[i].impl->name, "ref") != 0;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
    assert_true(checked > 0);
}

/* Checks the lines' cases with the Vulkan implementations matching impl_re ("^vk$", ...).
 * Skips the test, with the reason, when none can run here (no device, or the build or device
 * lacks the variant's feature); otherwise fails on any FAIL or ERROR row. */
static inline void kbt_check_vk(const char *impl_re, const char *const *lines, int n)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.impl_re = impl_re;
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int passed = 0, skipped = 0;
    char why[256] = "";
    for (int i = 0; i < r.n; i++) {
        passed += r.v[i].status == KB_PASS;
        if (r.v[i].status == KB_SKIP) {
            if (!skipped)
                snprintf(why, sizeof why, "%s", r.v[i].msg[0] ? r.v[i].msg : r.vk_status);
            skipped++;
        }
    }
    kb_results_free(&r);
    kb_case_list_free(&cl);
    if (passed == 0 && skipped > 0 && bad == 0) {
        print_message("%s not run here: %s\n", impl_re, why);
        skip();
    }
    assert_int_equal(bad, 0);
    assert_true(passed > 0);
}

#endif
