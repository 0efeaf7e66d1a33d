/* The checks catch broken kernels: a test-only implementation that writes one element too
 * many, one that leaves an element unwritten, one slightly wrong, one that fails to prepare,
 * must each be reported as failing (and a correct one as passing). */
#include <stdlib.h>

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

#define IMPL(n, fn) \
    static const kb_impl n = {.family = "matvec_q8_0", .name = #n, .backend = KB_BACKEND_CPU, .cpu_run = fn}
IMPL(t_good, good);
IMPL(t_one_too_many, one_too_many);
IMPL(t_one_unwritten, one_unwritten);
IMPL(t_slightly_wrong, slightly_wrong);
static const kb_impl t_no_prepare = {.family = "matvec_q8_0", .name = "t_no_prepare",
                                     .backend = KB_BACKEND_CPU, .prepare = no_prepare};

static kb_result run_one(const kb_impl *impl, const char *line)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, &line, 1);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_passes),         cmocka_unit_test(test_write_past_end_fails),
        cmocka_unit_test(test_unwritten_fails),     cmocka_unit_test(test_slightly_wrong_fails),
        cmocka_unit_test(test_prepare_error_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
