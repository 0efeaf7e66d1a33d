/* Suite-file parsing: sweeps, defaults, labels, comments; every malformed line is an error
 * with a message that names the problem. Also loads the shipped suites. */
#include <stdlib.h>

#include "kbtest.h"

static void expect_error(const char *line, const char *needle)
{
    kb_case_list cl = {0};
    char err[512] = "";
    int rc = kb_suite_parse_line(line, &cl, err, sizeof err);
    if (rc == 0)
        fail_msg("'%s' parsed, expected an error containing '%s'", line, needle);
    if (!strstr(err, needle))
        fail_msg("'%s': error '%s' does not mention '%s'", line, err, needle);
    kb_case_list_free(&cl);
}

static void test_sweep_and_defaults(void **st)
{
    (void)st;
    kb_case_list cl = {0};
    char err[512];
    assert_int_equal(kb_suite_parse_line("matvec_q4_0 rows=1,7 tokens=2,4,8 label=x.y  # note",
                                         &cl, err, sizeof err), 0);
    assert_int_equal(cl.n, 6);
    assert_int_equal(kb_case_param(&cl.v[0], "rows"), 1);
    assert_int_equal(kb_case_param(&cl.v[0], "tokens"), 2);
    assert_int_equal(kb_case_param(&cl.v[5], "rows"), 7);
    assert_int_equal(kb_case_param(&cl.v[5], "tokens"), 8);
    assert_int_equal(kb_case_param(&cl.v[3], "cols"), 4096); /* the default */
    assert_string_equal(cl.v[4].label, "x.y");
    assert_int_equal(kb_suite_parse_line("   # only a comment", &cl, err, sizeof err), 0);
    assert_int_equal(kb_suite_parse_line("", &cl, err, sizeof err), 0);
    assert_int_equal(cl.n, 6);
    kb_case_list_free(&cl);
}

static void test_malformed_lines(void **st)
{
    (void)st;
    expect_error("matvec_q5_1 rows=4", "unknown family");
    expect_error("matvec_q4_0 rowz=4", "no parameter 'rowz'");
    expect_error("matvec_q4_0 rows", "not key=value");
    expect_error("matvec_q4_0 rows=", "not key=value");
    expect_error("matvec_q4_0 =4", "not key=value");
    expect_error("matvec_q4_0 rows=abc", "not an integer");
    expect_error("matvec_q4_0 rows=4x", "not an integer");
    expect_error("matvec_q4_0 rows=1,,2", "not an integer");
    expect_error("matvec_q4_0 rows=99999999999999999999999", "out of range");
    expect_error("matvec_q4_0 rows=0", "out of range");
    expect_error("matvec_q4_0 cols=33", "not a multiple of the block size");
    expect_error("matvec_q4_0 tokens=17", "out of range");
    expect_error("matvec_q4_0 rows=1 rows=2", "given twice");
    expect_error("matvec_q4_0 rows=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17 "
                 "cols=32,64,96,128,160,192,224,256,288,320,352,384,416,448,480,512 "
                 "tokens=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
                 "more than");
}

static void test_load_file_reports_line(void **st)
{
    (void)st;
    char path[] = "/tmp/kbench_test_suite_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# header\nread mib=1\n\nmatvec_q4_0 cols=31\n", f);
    fclose(f);
    kb_case_list cl = {0};
    char err[512] = "";
    assert_int_equal(kb_suite_load(path, &cl, err, sizeof err), -1);
    assert_non_null(strstr(err, ":4: "));
    kb_case_list_free(&cl);
    remove(path);
    assert_int_equal(kb_suite_load("/nonexistent/x.suite", &cl, err, sizeof err), -1);
}

static void test_shipped_suites_parse(void **st)
{
    (void)st;
    char *p = kb_suite_find("matvec");
    assert_non_null(p);
    kb_case_list cl = {0};
    char err[512] = "";
    if (kb_suite_load(p, &cl, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(cl.n > 20);
    free(p);
    kb_case_list_free(&cl);
    /* every shipped suite, whole and its quick lines (what `kbench` with no selection loads):
     * a malformed line in any one of them breaks the README's main command */
    for (int quick = 0; quick <= 1; quick++) {
        kb_case_list all = {0};
        if (kb_suite_load_all(quick, &all, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_true(all.n > 0);
        kb_case_list_free(&all);
    }
}

static void test_shape_match(void **st)
{
    (void)st;
    kb_case_list cl = {0};
    char err[512];
    kb_suite_parse_line("matvec_q4_0 rows=7 cols=64", &cl, err, sizeof err);
    assert_int_equal(kb_shape_match(&cl.v[0], "rows=1,7,cols=64", err, sizeof err), 1);
    assert_int_equal(kb_shape_match(&cl.v[0], "rows=8", err, sizeof err), 0);
    assert_int_equal(kb_shape_match(&cl.v[0], "mib=8", err, sizeof err), 1); /* not its key */
    assert_int_equal(kb_shape_match(&cl.v[0], "7", err, sizeof err), -1);
    kb_case_list_free(&cl);
    assert_int_equal(kb_shape_parse(kb_family_find("matvec_q8_0"), "rows=3,5,tokens=2", &cl, err,
                                    sizeof err), 0);
    assert_int_equal(cl.n, 2);
    assert_int_equal(kb_case_param(&cl.v[1], "rows"), 5);
    kb_case_list_free(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_and_defaults),   cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_load_file_reports_line), cmocka_unit_test(test_shipped_suites_parse),
        cmocka_unit_test(test_shape_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
