/* The model group's CPU glue kernels (AVX2, AVX-512) against their references: odd sizes (off
 * every vector width), the smallest, model shapes, threads 1/2/3; the shape errors. */
#include <math.h>
#include <stdlib.h>

#include "kbtest.h"

static void test_glue_cpu(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "embed_f32 rows=7 cols=1,13,64 tokens=1,5",
        "embed_f16 rows=7 cols=1,13,40 tokens=3",
        "embed_bf16 rows=7 cols=1,13,40 tokens=3",
        "embed_q8_0 rows=1,7 cols=32,96 tokens=1,4",
        "embed_q4_0 rows=1,7 cols=32,96 tokens=1,4",
        "embed_q4_0 rows=4000 cols=4096 tokens=16",
        "rmsnorm rows=1,3 cols=1,15,16,17,63,64,65,200",
        "rmsnorm rows=1,40 cols=4096 eps_exp=5,6",
        "rope heads=1,3 head_dim=2,18,130 rot=2 tokens=1,3 p0=0,77",
        "rope heads=3 head_dim=130 rot=64,130 tokens=2 p0=5",
        "rope heads=32 head_dim=128 rot=128 tokens=16 p0=1000",
        "swiglu cols=1,7,8,9,16,17,33 tokens=1,3",
        "swiglu cols=14336 tokens=2",
        "outgate cols=1,7,17,33 tokens=1,3",
        "outgate cols=8192 tokens=2",
        "residual cols=1,7,17,33 tokens=1,3",
        "residual cols=4096 tokens=16",
        "cvt_f16 cols=1,7,17,33 tokens=1,3",
        "cvt_f16 cols=1024 tokens=16",
    };
    kbt_check_cpu(NULL, lines, (int)(sizeof lines / sizeof lines[0]));
}

static void test_glue_outliers(void **st)
{
    (void)st;
    static const char *const lines[] = {"rmsnorm rows=3 cols=4096", "swiglu cols=777 tokens=2",
                                        "rope heads=4 head_dim=64 rot=64 tokens=2 p0=9"};
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, 3);
    kb_options o;
    kbt_check_options(&o);
    o.no_vulkan = 1;
    o.inputs = KB_INPUTS_OUTLIERS;
    kb_results r = {0};
    int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
}

static void test_glue_shape_errors(void **st)
{
    (void)st;
    static const struct { const char *line, *says; } bad[] = {
        {"embed_q4_0 rows=3 cols=33", "cols=33 is not a multiple of the q4_0 block size 32"},
        {"embed_q8_0 rows=3 cols=48", "block size 32"},
        {"rope heads=1 head_dim=8 rot=10", "rot=10 must be even and at most head_dim=8"},
        {"rope heads=1 head_dim=8 rot=3", "must be even"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kb_case_list cl = {0};
        char err[512] = "";
        if (kb_suite_parse_line(bad[i].line, &cl, err, sizeof err) == 0 &&
            (cl.n != 1 || kb_case_check(&cl.v[0], err, sizeof err) == 0))
            fail_msg("%s: accepted", bad[i].line);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: '%s' does not say '%s'", bad[i].line, err, bad[i].says);
        kb_case_list_free(&cl);
    }
}

/* The exp behind swiglu and outgate, at the ends of its range: sigmoid's tails. */
static void test_glue_sigmoid_tails(void **st)
{
    (void)st;
    const kb_family *f = kb_family_find("swiglu");
    kb_case c = {.fam = f};
    c.p[0] = 16;
    c.p[1] = 1;
    kb_tensor in[2], out[1], ref[1];
    const int64_t shape[2] = {1, 16};
    assert_int_equal(kb_tensor_alloc(&in[0], "gate", KB_F32, 2, shape), 0);
    assert_int_equal(kb_tensor_alloc(&in[1], "up", KB_F32, 2, shape), 0);
    assert_int_equal(kb_tensor_alloc(&out[0], "y", KB_F32, 2, shape), 0);
    assert_int_equal(kb_tensor_alloc(&ref[0], "y", KB_F32, 2, shape), 0);
    static const float g[16] = {-100, -87.5f, -80, -40, -20, -10, -1.2785f, -1e-6f,
                                0,    1e-6f,  1,   5,   15,  30,  88,       100};
    for (int i = 0; i < 16; i++) {
        ((float *)in[0].data)[i] = g[i];
        ((float *)in[1].data)[i] = 1.5f;
    }
    f->reference(c.p, in, ref);
    double *scale = malloc(sizeof(double) * 16);
    f->condition(c.p, in, 0, scale);
    for (int i = 0; i < kb_impl_count(); i++) {
        const kb_impl *m = kb_impl_at(i);
        if (strcmp(m->family, "swiglu") || m->backend != KB_BACKEND_CPU || !m->cpu_run ||
            (m->available && m->available(&(kb_env){0})))
            continue;
        m->cpu_run(&c, in, out, NULL);
        for (int k = 0; k < 16; k++) {
            const double e = fabs((double)((float *)out[0].data)[k] - ((float *)ref[0].data)[k]);
            if (e / scale[k] > f->tol_cond)
                fail_msg("swiglu %s at g = %g: %g vs %g", m->name, g[k],
                         ((float *)out[0].data)[k], ((float *)ref[0].data)[k]);
        }
    }
    free(scale);
    kb_tensor_free(&in[0]);
    kb_tensor_free(&in[1]);
    kb_tensor_free(&out[0]);
    kb_tensor_free(&ref[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glue_cpu),
        cmocka_unit_test(test_glue_outliers),
        cmocka_unit_test(test_glue_shape_errors),
        cmocka_unit_test(test_glue_sigmoid_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
