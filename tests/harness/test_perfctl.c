/* perf's control protocol: a fake perf reads the control FIFO and acknowledges; kbench must
 * send exactly enable/disable around each timed repetition, and nothing around the checks. */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kbtest.h"
#include "perfctl.h"

static char ctl_path[256], ack_path[256], got[4096];

static void *fake_perf(void *arg)
{
    (void)arg;
    int ctl = open(ctl_path, O_RDONLY), ack = open(ack_path, O_WRONLY);
    size_t n = 0;
    char buf[64];
    ssize_t r;
    while ((r = read(ctl, buf, sizeof buf)) > 0) {
        memcpy(got + n, buf, (size_t)r);
        n += (size_t)r;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] == '\n' && write(ack, "ack\n", 5) != 5) /* perf sends the NUL too */
                break;
    }
    got[n] = 0;
    close(ctl);
    close(ack);
    return NULL;
}

static void test_enable_disable_around_timing(void **st)
{
    (void)st;
    char dir[] = "/tmp/kbench_perfctl_XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(ctl_path, sizeof ctl_path, "%s/ctl", dir);
    snprintf(ack_path, sizeof ack_path, "%s/ack", dir);
    assert_int_equal(mkfifo(ctl_path, 0600), 0);
    assert_int_equal(mkfifo(ack_path, 0600), 0);
    pthread_t th;
    pthread_create(&th, NULL, fake_perf, NULL);
    char spec[600], err[256];
    snprintf(spec, sizeof spec, "%s,%s", ctl_path, ack_path);
    assert_int_equal(kb_perfctl_open(spec, err, sizeof err), 0);

    kb_case_list cl = {0};
    const char *line = "matvec_q8_0 rows=16 cols=64";
    kbt_cases(&cl, &line, 1);
    kb_options o;
    kb_options_default(&o);
    o.no_vulkan = 1;
    o.impl_re = "^ref$";
    o.iterations = 3;
    o.repetitions = 2;
    kb_results r = {0};
    assert_int_equal(kb_run(&o, &cl, &r), 0);
    assert_int_equal(r.v[0].n_samples, 6); /* --iterations 3 x --repetitions 2 */
    kb_perfctl_close();
    pthread_join(th, NULL);
    assert_string_equal(got, "enable\ndisable\nenable\ndisable\n");
    kb_results_free(&r);
    kb_case_list_free(&cl);
    unlink(ctl_path);
    unlink(ack_path);
    rmdir(dir);
}

static void test_missing_fifo_is_an_error(void **st)
{
    (void)st;
    char err[256] = "";
    assert_int_equal(kb_perfctl_open("/nonexistent/ctl,/nonexistent/ack", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open /nonexistent/ctl"));
    assert_false(kb_perfctl_active());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enable_disable_around_timing),
        cmocka_unit_test(test_missing_fifo_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
