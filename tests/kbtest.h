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

#endif
