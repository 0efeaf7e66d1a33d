/* Hostile input and faults (the fuzzing pass of issue 19, the report pass of issue 20): each
 * finding as a test that failed before its fix. Runs the real kbench binary. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "kbtest_cli.h"

#define Q "--check -q --no-vulkan --threads 1"

static char tmpdir[64];

static int setup(void **st)
{
    (void)st;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kbench_hostile_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return n;
}

/* 1: a bad --impl regex, or one that matches nothing, is a usage error */
static void test_impl_filters(void **st)
{
    (void)st;
    expect("--kernel read --impl '(' " Q, 2, "not a valid regular expression");
    expect("--kernel read --impl nosuch " Q, 2, "matches no implementation");
}

/* 2: --dump that cannot write is refused before the run; '' is not "/" */
static void test_dump_targets(void **st)
{
    (void)st;
    expect("--kernel read --shape mib=1 --dump '' " Q, 2, "empty directory name");
    expect("--kernel read --shape mib=1 --dump /nonexistent/a/b " Q, 2, "cannot create directory");
    char file[128], args[512];
    snprintf(file, sizeof file, "%s/plainfile", tmpdir);
    write_file(file, "x", 1);
    snprintf(args, sizeof args, "--kernel read --shape mib=1 --dump %s " Q, file);
    expect(args, 2, "not a directory");
}

/* 3: unique temporary names; a directory or an unwritable -o is refused before the run */
static void test_output_temporaries(void **st)
{
    (void)st;
    char path[128], tmp[160], args[512], buf[64];
    snprintf(path, sizeof path, "%s/out.csv", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    write_file(tmp, "precious", 8); /* a file of the user's that a fixed .tmp name would clobber */
    snprintf(args, sizeof args, "--kernel read --shape mib=1 --csv -o %s " Q, path);
    expect(args, 0, NULL);
    assert_int_equal(read_file(tmp, buf, sizeof buf), 8);
    assert_string_equal(buf, "precious");
    assert_true(read_file(path, out, sizeof out) > 0);
    assert_non_null(strstr(out, "family,label,shape"));
    /* a device is written in place, never replaced by a rename (kbench runs as root in CI) */
    char fifo[128];
    snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(args, sizeof args, "--kernel read --shape mib=1 --csv -o %s " Q " & cat %s > /dev/null; wait", fifo, fifo);
    expect(args, 0, NULL);
    struct stat sb;
    assert_int_equal(stat(fifo, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    expect("--kernel read --shape mib=1 --csv -o /dev/null " Q, 0, NULL);
    assert_int_equal(stat("/dev/null", &sb), 0);
    assert_true(S_ISCHR(sb.st_mode));
    snprintf(args, sizeof args, "--kernel read --shape mib=1 -o %s/ " Q, tmpdir);
    expect(args, 2, "Is a directory");
    expect("--kernel read --shape mib=1 -o /nonexistent/x.csv " Q, 2, "cannot write");
}

/* 4 and 20: with --suite, a --shape key no family of the suite has, or a selection of nothing,
 * is a usage error */
static void test_suite_shape_selection(void **st)
{
    (void)st;
    expect("--suite matvec --shape row=7 " Q, 2, "no family of matvec has parameter 'row'");
    expect("--suite matvec --shape rows=12345 " Q, 2, "no case of matvec matches --shape rows=12345");
}

/* 5: a long label is cut on a UTF-8 character boundary */
static void test_label_utf8(void **st)
{
    (void)st;
    char suite[128], args[512], line[256];
    snprintf(suite, sizeof suite, "%s/label.suite", tmpdir);
    /* 62 ASCII bytes, then a 3-byte character straddling byte 63 */
    snprintf(line, sizeof line, "read mib=1 label=%s\xe2\x82\xac\xe2\x82\xac\n",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    write_file(suite, line, strlen(line));
    snprintf(args, sizeof args, "--suite %s --csv " Q, suite);
    expect(args, 0, NULL);
    /* valid UTF-8: every lead byte is followed by its continuation bytes */
    const unsigned char *p = (const unsigned char *)out;
    while (*p) {
        int cont = *p >= 0xF0 ? 3 : *p >= 0xE0 ? 2 : *p >= 0xC0 ? 1 : 0;
        if (*p >= 0x80 && *p < 0xC0)
            fail_msg("a stray continuation byte in the CSV: %s", out);
        p++;
        for (int i = 0; i < cont; i++, p++)
            if ((*p & 0xC0) != 0x80)
                fail_msg("a cut UTF-8 character in the CSV: %s", out);
    }
}

/* 6: --perf-ctl must be a FIFO; a regular file is left alone */
static void test_perf_ctl_needs_fifo(void **st)
{
    (void)st;
    char file[128], args[512], buf[64];
    snprintf(file, sizeof file, "%s/victim", tmpdir);
    write_file(file, "keep me", 7);
    snprintf(args, sizeof args, "--kernel read --shape mib=1 --perf-ctl %s " Q, file);
    expect(args, 2, "not a FIFO");
    read_file(file, buf, sizeof buf);
    assert_string_equal(buf, "keep me");
}

/* 7: NUL bytes and over-long lines in a suite are errors with the line number */
static void test_suite_bytes(void **st)
{
    (void)st;
    char suite[128], args[512];
    snprintf(suite, sizeof suite, "%s/nul.suite", tmpdir);
    write_file(suite, "read mib=1\nread mib=2\0 garbage\n", 31);
    snprintf(args, sizeof args, "--suite %s " Q, suite);
    expect(args, 2, ":2: a NUL byte");
    static char big[5000];
    memset(big, 'x', sizeof big);
    big[0] = '#';
    memcpy(big + 4000, "\nread mib=1\n", 12); /* the tail of a long comment must not parse */
    write_file(suite, big, 4012);
    expect(args, 2, ":1: line too long");
}

/* 8: a total case limit */
static void test_case_limit(void **st)
{
    (void)st;
    char suite[128], args[512];
    snprintf(suite, sizeof suite, "%s/many.suite", tmpdir);
    FILE *f = fopen(suite, "w");
    assert_non_null(f);
    for (int i = 0; i < 40; i++) /* 40 x 4096 cases */
        fprintf(f, "matvec_q4_0 rows=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 cols=32,64,96,128,160,192,"
                   "224,256,288,320,352,384,416,448,480,512 tokens=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n");
    fclose(f);
    snprintf(args, sizeof args, "--suite %s " Q, suite);
    expect(args, 2, "cases in all");
}

/* 9: timing values are bounded */
static void test_timing_bounds(void **st)
{
    (void)st;
    expect("--kernel read --min-time 1e30", 2, "--min-time");
    expect("--kernel read --duration 1e30", 2, "--duration");
    expect("--kernel read --max-time 1e9", 2, "--max-time");
    expect("--kernel read --noise 1000", 2, "--noise");
}

/* 11: duplicates and repeats */
static void test_duplicates(void **st)
{
    (void)st;
    expect("--kernel read --shape mib=1,1 --impl ref --csv " Q, 0, NULL);
    int rows = -1; /* the header line, then one row */
    for (char *p = out; (p = strchr(p, '\n')); p++)
        rows++;
    assert_int_equal(rows, 1);
    expect("--kernel read --shape mib=1 --impl avx2 --csv --check -q --no-vulkan --threads 1,1", 0, NULL);
    rows = -1;
    for (char *p = out; (p = strchr(p, '\n')); p++)
        rows++;
    assert_int_equal(rows, 1);
    char suite[128], args[512];
    snprintf(suite, sizeof suite, "%s/label2.suite", tmpdir);
    write_file(suite, "read mib=1 label=a label=b\n", 27);
    snprintf(args, sizeof args, "--suite %s " Q, suite);
    expect(args, 2, "label given twice");
    expect("calibrate --suite matvec", 2, "calibrate takes");
}

/* 20: a calibration made on another machine is refused, and %bw comes from this run */
static void test_foreign_calibration(void **st)
{
    (void)st;
    char cal[128], args[512];
    snprintf(cal, sizeof cal, "%s/cal.json", tmpdir);
    const char *other = "{\n  \"machine\": {\"cpu\": \"Other CPU\", \"cores\": 2, \"key\": \"Other CPU|1.2.3\", "
                        "\"key_hash\": \"0123456789abcdef\"},\n  \"cpu\": {\n    \"read_gbps\": {\"1\": 0.001}\n  }\n}\n";
    write_file(cal, other, strlen(other));
    snprintf(args, sizeof args,
             "--kernel read --shape mib=8 --impl avx2 --threads 1 --no-vulkan --min-time 0 "
             "--max-time 0.05 --csv --calibration %s",
             cal);
    expect(args, 0, "measured on another machine");
    /* the foreign 0.001 GB/s would give a %bw in the millions (flagged as "%bw N% > 110%") */
    for (const char *p = out; (p = strstr(p, "%bw ")); p++)
        assert_true(atof(p + 4) < 1000);
    const char *old = "{\n  \"machine\": {\"cpu\": \"AMD EPYC\", \"cores\": 2},\n  \"cpu\": {\n    "
                      "\"read_gbps\": {\"1\": 0.001}\n  }\n}\n";
    write_file(cal, old, strlen(old));
    expect(args, 0, "has no machine key");
}

/* 20: SIGINT mid-run leaves a valid CSV and JSON holding the finished rows, and says so */
/* A file in dir whose name starts with prefix holds a header line and at least one row. */
static int first_row_streamed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int lines = 0, c;
        while ((c = fgetc(f)) != EOF)
            lines += c == '\n';
        fclose(f);
        found = lines >= 2;
    }
    closedir(d);
    return found;
}

static void test_interrupt_keeps_rows(void **st)
{
    (void)st;
    const char *bin = getenv("KBENCH");
    if (!bin)
        bin = "./kbench";
    char csv[128], json[128];
    snprintf(csv, sizeof csv, "%s/int.csv", tmpdir);
    snprintf(json, sizeof json, "%s/int.json", tmpdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, bin, "--kernel", "read", "--shape", "mib=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
              "--impl", "ref", "--threads", "1", "--no-vulkan", "--time-ref", "--min-time", "0.3",
              "--max-time", "0.3", "--csv", "-o", csv, "--json", json, (char *)NULL);
        _exit(127);
    }
    /* interrupt once the first row is in the streamed temporary file (.int.csv.XXXXXX beside
     * the target): a fixed delay failed on a machine without a calibration file, where the
     * read measured at start took longer than the delay */
    for (int tries = 0; tries < 600 && !first_row_streamed(tmpdir, ".int.csv."); tries++) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGINT);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 128 + SIGINT);
    size_t n = read_file(csv, out, sizeof out);
    assert_true(n > 0);
    int rows = -1;
    for (char *p = out; (p = strchr(p, '\n')); p++)
        rows++;
    assert_true(rows >= 1 && rows < 16);
    n = read_file(json, out, sizeof out);
    assert_true(n > 2 && out[n - 2] == '}'); /* whole */
    assert_non_null(strstr(out, "\"interrupted\": true"));
    int jrows = 0;
    for (char *p = out; (p = strstr(p, "{\"family\"")); p++)
        jrows++;
    assert_int_equal(jrows, rows);
}

/* 11: a Vulkan device that exists but cannot start (lavapipe under a memory limit) is an ERROR,
 * not a skip. Not under ASan (it needs far more address space than the limit). */
static void test_vk_start_failure_is_error(void **st)
{
    (void)st;
#if defined(KB_HAVE_VULKAN) && !defined(__SANITIZE_ADDRESS__)
    expect("--kernel read --shape mib=1 --impl '^vk$' --check -q", 0, NULL);
    if (strstr(out, "skip")) {
        print_message("no Vulkan device here: %s\n", out);
        skip();
    }
    const char *bin = getenv("KBENCH");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "ulimit -v 200000; %s --kernel read --shape mib=1 --impl '^vk$' --check -q 2>&1",
             bin ? bin : "./kbench");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int stt = pclose(p);
    if (!strstr(out, "failed to start")) {
        print_message("the memory limit did not stop the driver here: %s\n", out);
        skip();
    }
    assert_true(WIFEXITED(stt) && WEXITSTATUS(stt) == 1);
    assert_non_null(strstr(out, "ERROR"));
#else
    skip();
#endif
}

/* 20: --version names the commit */
static void test_version(void **st)
{
    (void)st;
    expect("--version", 0, "(commit ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impl_filters),        cmocka_unit_test(test_dump_targets),
        cmocka_unit_test(test_output_temporaries),  cmocka_unit_test(test_suite_shape_selection),
        cmocka_unit_test(test_label_utf8),          cmocka_unit_test(test_perf_ctl_needs_fifo),
        cmocka_unit_test(test_suite_bytes),         cmocka_unit_test(test_case_limit),
        cmocka_unit_test(test_timing_bounds),       cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_foreign_calibration), cmocka_unit_test(test_interrupt_keeps_rows),
        cmocka_unit_test(test_version),             cmocka_unit_test(test_vk_start_failure_is_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
