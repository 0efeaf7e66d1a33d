/* The checks catch broken kernels: a test-only implementation that writes one element too
 * many, one that leaves an element unwritten, one slightly wrong, one that fails to prepare,
 * must each be reported as failing (and a correct one as passing). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kbtest.h"

/* A correct f32 matvec for Q8_0 on which the broken ones are built. */
static void good_core(const kb_case *c, const kb_tensor *in, kb_tensor *out)
{
    const kb_family *f = kb_family_find("matvec_q8_0");
    f->reference(c->p, in, out);
}

static void good(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    good_core(c, in, out);
}

static void one_too_many(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    good_core(c, in, out);
    float *y = out->data;
    y[kb_tensor_numel(out)] = 0.0f; /* past the end: lands in the guard bytes */
}

static void one_unwritten(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    kb_tensor tmp = *out;
    tmp.data = malloc(out->bytes);
    good_core(c, in, &tmp);
    memcpy(out->data, tmp.data, out->bytes - sizeof(float)); /* the last element stays poisoned */
    free(tmp.data);
}

static void slightly_wrong(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    good_core(c, in, out);
    float *y = out->data;
    y[kb_tensor_numel(out) / 2] *= 1.01f; /* one element 1% off */
}

static void *no_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    snprintf(err, errlen, "deliberately refused");
    return NULL;
}

/* Reads one float past the end of x (128 bytes at cols=32: the inaccessible page follows at
 * once; an input of another size has up to 63 bytes of NaN before it). */
static void reads_past_x(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    good_core(c, in, out);
    const float *x = in[1].data;
    float *y = out->data;
    y[0] += 0.0f * x[kb_tensor_numel(&in[1])];
}

/* A device-like implementation: its output lives in a buffer of its own (as on a GPU), and its
 * kernel writes it on the first run only. The check after timing must catch that: the runner
 * poisons the private copy again through reset. */
typedef struct {
    const kb_case *c;
    const kb_tensor *in;
    unsigned char *priv;
    size_t bytes;
    int runs;
} lazy_state;

static void *lazy_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                          const kb_tensor *out, char *err, size_t errlen)
{
    lazy_state *s = calloc(1, sizeof *s);
    s->c = c;
    s->in = in;
    s->bytes = out->bytes + KB_GUARD_BYTES;
    s->priv = malloc(s->bytes);
    memcpy(s->priv, out->data, s->bytes);
    return s;
}

static int lazy_run(void *state, const kb_env *env, double *gpu)
{
    lazy_state *s = state;
    if (s->runs++ == 0) {
        int n_in, n_out;
        kb_tensor din[KB_MAX_TENSORS], dout[KB_MAX_TENSORS];
        s->c->fam->describe(s->c->p, din, &n_in, dout, &n_out);
        dout[0].data = s->priv;
        good_core(s->c, s->in, dout);
    }
    return 0;
}

static int lazy_finish(void *state, kb_tensor *out)
{
    lazy_state *s = state;
    memcpy(out->data, s->priv, s->bytes);
    return 0;
}

static int lazy_reset(void *state, const kb_tensor *out)
{
    lazy_state *s = state;
    memcpy(s->priv, out->data, s->bytes);
    return 0;
}

static void lazy_release(void *state)
{
    lazy_state *s = state;
    free(s->priv);
    free(s);
}

#define IMPL(n, fn) \
    static const kb_impl n = {.family = "matvec_q8_0", .name = #n, .backend = KB_BACKEND_CPU, .cpu_run = fn}
IMPL(t_good, good);
IMPL(t_one_too_many, one_too_many);
IMPL(t_one_unwritten, one_unwritten);
IMPL(t_slightly_wrong, slightly_wrong);
IMPL(t_reads_past_x, reads_past_x);
static const kb_impl t_lazy = {.family = "matvec_q8_0", .name = "t_lazy", .backend = KB_BACKEND_CPU,
                               .prepare = lazy_prepare, .run = lazy_run, .finish = lazy_finish,
                               .reset = lazy_reset, .release = lazy_release};
static const kb_impl t_no_prepare = {.family = "matvec_q8_0", .name = "t_no_prepare",
                                     .backend = KB_BACKEND_CPU, .prepare = no_prepare};

static kb_result run_timed(const kb_impl *impl, const char *line, int timed)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, &line, 1);
    kb_options o;
    kb_options_default(&o);
    o.check_only = !timed;
    o.min_time = 0;
    o.max_time = 0.01;
    o.min_samples = 2;
    o.no_vulkan = 1;
    o.n_threads = 1;
    o.threads[0] = 1;
    o.registry_impls_off = 1;
    o.extra_impls = &impl;
    o.n_extra_impls = 1;
    kb_results r = {0};
    kb_run(&o, &cl, &r);
    assert_int_equal(r.n, 1);
    kb_result x = r.v[0];
    x.samples = NULL;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    return x;
}

static kb_result run_one(const kb_impl *impl, const char *line) { return run_timed(impl, line, 0); }

static void test_good_passes(void **st)
{
    (void)st;
    kb_result x = run_one(&t_good, "matvec_q8_0 rows=33 cols=64 tokens=2");
    assert_int_equal(x.status, KB_PASS);
}

static void test_write_past_end_fails(void **st)
{
    (void)st;
    kb_result x = run_one(&t_one_too_many, "matvec_q8_0 rows=33 cols=64 tokens=2");
    assert_int_equal(x.status, KB_FAIL);
    assert_non_null(strstr(x.msg, "guard"));
}

static void test_unwritten_fails(void **st)
{
    (void)st;
    kb_result x = run_one(&t_one_unwritten, "matvec_q8_0 rows=33 cols=64 tokens=2");
    assert_int_equal(x.status, KB_FAIL);
    assert_non_null(strstr(x.msg, "NaN"));
}

static void test_slightly_wrong_fails(void **st)
{
    (void)st;
    kb_result x = run_one(&t_slightly_wrong, "matvec_q8_0 rows=1000 cols=256");
    assert_int_equal(x.status, KB_FAIL);
    assert_non_null(strstr(x.msg, "nmse"));
}

static void test_prepare_error_reported(void **st)
{
    (void)st;
    kb_result x = run_one(&t_no_prepare, "matvec_q8_0 rows=8 cols=32");
    assert_int_equal(x.status, KB_ERROR);
    assert_non_null(strstr(x.msg, "deliberately refused"));
}

/* An input over-read gives NaN (the slack after each input) or a SIGSEGV (the page after it):
 * run in a child, either is a catch. */
static void test_input_overread_is_loud(void **st)
{
    (void)st;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* cmocka's handler would turn it into a plain failure */
        kb_result x = run_one(&t_reads_past_x, "matvec_q8_0 rows=33 cols=32 tokens=1");
        _exit(x.status == KB_FAIL && strstr(x.msg, "NaN") ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        assert_int_equal(WTERMSIG(status), SIGSEGV);
    else
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* A kernel that stops writing its (device-resident) output after the first run fails the check
 * after timing. */
static void test_stops_writing_fails_after_timing(void **st)
{
    (void)st;
    kb_result x = run_timed(&t_lazy, "matvec_q8_0 rows=33 cols=64 tokens=2", 1);
    assert_int_equal(x.status, KB_FAIL);
    assert_non_null(strstr(x.msg, "after timing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_passes),         cmocka_unit_test(test_write_past_end_fails),
        cmocka_unit_test(test_unwritten_fails),     cmocka_unit_test(test_slightly_wrong_fails),
        cmocka_unit_test(test_prepare_error_reported),
        cmocka_unit_test(test_input_overread_is_loud),
        cmocka_unit_test(test_stops_writing_fails_after_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
