/* The command line: bad input gets a clear message and a non-zero exit, never a crash; good
 * input gives well-formed CSV and JSON. Runs the real kbench binary (KBENCH from ctest). */
#include <unistd.h>

#include "kbtest_cli.h"

static void test_usage_errors(void **st)
{
    (void)st;
    expect("--bogus", 2, "unknown option '--bogus'");
    expect("--suite", 2, "needs a value");
    expect("--suite nosuch", 2, "no suite 'nosuch'");
    expect("--kernel nosuch", 2, "no family matches");
    expect("--kernel '('", 2, "not a valid regular expression");
    expect("--kernel matvec_q4_0 --shape cols=33", 2, "not a multiple of the block size");
    expect("--kernel matvec_q4_0 --shape rows=abc", 2, "not an integer");
    expect("--kernel matvec_q4_0 --shape depth=3", 2, "no selected family has parameter 'depth'");
    expect("--kernel 'read|matvec_q4_0' --shape rows=3,cols=32,mib=1 --check -q --no-vulkan", 0, NULL);
    expect("--kernel matvec_q4_0 --threads 0", 2, "--threads");
    expect("--kernel matvec_q4_0 --min-time -1", 2, "--min-time");
    expect("--kernel matvec_q4_0 --seed x", 2, "--seed");
    expect("--kernel matvec_q4_0 stray", 2, "unexpected argument");
#ifdef KB_HAVE_VULKAN
    /* loads Vulkan: lavapipe's own 128-byte leak must not fail sanitizer builds */
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    expect("--kernel matvec_q4_0 --device 63 --check", 2, "--device 63");
    unsetenv("ASAN_OPTIONS");
#endif
}

static void test_absurd_sizes(void **st)
{
    (void)st;
    /* in range for each parameter, but far beyond memory: refused before any allocation */
    expect("--kernel matvec_q8_0 --shape rows=16777216,cols=1048576 --check -q", 1, "GiB of memory");
    expect("--kernel matvec_q4_0 --shape rows=99999999999999999999", 2, "out of range");
    /* 64 GiB and its copies: beyond memory only where memory is smaller (the GPU machine's
     * 128 GiB host ran it whole, and passed) */
    const double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram < 100e9)
        expect("--kernel read --shape mib=65536 --check -q", 1, "GiB of memory");
}

static void test_help_and_list(void **st)
{
    (void)st;
    expect("--help", 0, "--suite NAME|FILE");
    expect("--list --no-vulkan", 0, "matvec_q4_0");
}

static void test_csv_is_well_formed(void **st)
{
    (void)st;
    expect("--kernel matvec_q4_0 --shape rows=7,cols=64 --impl ref --csv --min-time 0 "
           "--max-time 0.01 --min-samples 2 -q --no-vulkan",
           0, "family,label,shape,impl");
    int lines = 0, commas_header = -1;
    for (char *l = out, *nl; *l; l = nl + 1) {
        nl = strchr(l, '\n');
        assert_non_null(nl);
        int commas = 0;
        for (char *c = l; c < nl; c++)
            commas += *c == ',';
        if (commas_header < 0)
            commas_header = commas;
        assert_int_equal(commas, commas_header); /* every row has every column */
        lines++;
    }
    assert_int_equal(lines, 2); /* header + one row, no preamble */
}

static void test_json_written_whole(void **st)
{
    (void)st;
    char path[] = "/tmp/kbench_cli_json_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char args[512];
    snprintf(args, sizeof args,
             "--kernel read --shape mib=1 --min-time 0 --max-time 0.01 --min-samples 3 -q "
             "--threads 1 --json %s --no-vulkan",
             path);
    expect(args, 0, NULL);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    fclose(f);
    assert_non_null(strstr(out, "\"machine\""));
    assert_non_null(strstr(out, "\"sample_s\": ["));
    assert_true(n > 2 && out[n - 2] == '}'); /* complete document */
    remove(path);
    /* an unwritable path: refused before the run (exit 2), no partial file */
    expect("--kernel read --shape mib=1 --check -q --threads 1 --json /nonexistent/dir/x.json "
           "--no-vulkan",
           2, "cannot write");
}

static void test_failing_check_exits_nonzero_via_dump(void **st)
{
    (void)st;
    /* --dump writes .npy files with a valid header */
    char dir[] = "/tmp/kbench_cli_dump_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[512];
    snprintf(args, sizeof args,
             "--kernel matvec_q4_0 --shape rows=3,cols=32 --impl ref --check -q --dump %s --no-vulkan",
             dir);
    expect(args, 0, NULL);
    char path[1024];
    snprintf(path, sizeof path, "%s/000_matvec_q4_0_rows=3_cols=32_tokens=1/in_W.npy", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("missing %s", path);
    unsigned char hdr[128];
    size_t n = fread(hdr, 1, sizeof hdr, f);
    fclose(f);
    assert_true(n >= 64);
    assert_memory_equal(hdr, "\x93NUMPY", 6);
    assert_non_null(strstr((char *)hdr + 10, "'shape': (3, 18)"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),       cmocka_unit_test(test_absurd_sizes),
        cmocka_unit_test(test_help_and_list),      cmocka_unit_test(test_csv_is_well_formed),
        cmocka_unit_test(test_json_written_whole),
        cmocka_unit_test(test_failing_check_exits_nonzero_via_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
