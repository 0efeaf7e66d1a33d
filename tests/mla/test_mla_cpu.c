/* mla_decode: the reference's two groupings agree; every CPU implementation against the
 * reference (T = 1 and odd lengths off every tile and chunk, n_q = 1..4, heads 5/16/32/128,
 * small and DeepSeek-V3 widths, bf16 and f16 caches, f32 and bf16 weights, threads 1/2/3,
 * random, peaky and outlier inputs); shape errors (and the CLI's exit status 2); the
 * tolerance fails a kernel that drops one position. */
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "kbtest.h"
#include "mla_common.h"

/* Runs the lines' cases on the CPU implementations at threads 1, 2, 3 with inputs dist; fails
 * on any FAIL or ERROR; prints the worst conditioned error of the non-reference rows. */
static void check_cpu_inputs(const char *const *lines, int n, kb_inputs dist)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, lines, n);
    kb_options o;
    kbt_check_options(&o);
    o.no_vulkan = 1;
    o.inputs = dist;
    kb_results r = {0};
    const int bad = kb_run(&o, &cl, &r);
    kbt_print_failures(&r);
    int checked = 0;
    for (int i = 0; i < r.n; i++)
        checked += r.v[i].status == KB_PASS && strcmp(r.v[i].impl->name, "ref") != 0;
    for (int k = 0; k < kb_impl_count(); k++) { /* the worst per implementation */
        const kb_impl *im = kb_impl_at(k);
        double worst = -1, nmse = 0;
        for (int i = 0; i < r.n; i++)
            if (r.v[i].impl == im && r.v[i].status == KB_PASS && strcmp(im->name, "ref") != 0) {
                worst = r.v[i].cond_err > worst ? r.v[i].cond_err : worst;
                nmse = r.v[i].nmse > nmse ? r.v[i].nmse : nmse;
            }
        if (worst >= 0)
            print_message("%s inputs, %s: worst conditioned error %.3g, nmse %.3g\n",
                          kb_inputs_name(dist), im->name, worst, nmse);
    }
    kb_results_free(&r);
    kb_case_list_free(&cl);
    assert_int_equal(bad, 0);
    assert_true(checked > 0);
}

static void test_cpu_short(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "mla_decode heads=16 T=1,2,7,63,64,65,130 cache=0,1 w_bf16=0,1",
        "mla_decode heads=16 T=4,9,100 n_q=2,3,4",
        "mla_decode heads=5 T=33 n_q=3 rank=64,128 rope=16,32 v_dim=16,48 cache=1",
        "mla_decode heads=1 T=5 n_q=4 rank=64 rope=16 v_dim=16",
    };
    check_cpu_inputs(lines, 4, KB_INPUTS_RANDOM);
}

static void test_cpu_long(void **st)
{
    (void)st;
    static const char *const lines[] = {
        /* chunks of several tiles at 1, 2 and 3 threads, odd ends */
        "mla_decode heads=16 T=2500 rank=128 n_q=1,2 cache=0,1",
        "mla_decode heads=32 T=777 n_q=1,2 w_bf16=0",
        "mla_decode heads=128 T=70,300 n_q=1,2 label=deepseek-v3",
    };
    check_cpu_inputs(lines, KBT_SANITIZED ? 1 : 3, KB_INPUTS_RANDOM); /* see KBT_SANITIZED */
}

static void test_cpu_peaky_outliers(void **st)
{
    (void)st;
    static const char *const lines[] = {
        "mla_decode heads=16 T=1,3,500 cache=0,1",
        "mla_decode heads=16 T=3,500 n_q=3 cache=0,1",
        "mla_decode heads=32 T=1500 rank=128 n_q=2",
    };
    check_cpu_inputs(lines, 3, KB_INPUTS_PEAKY);
    check_cpu_inputs(lines, 3, KB_INPUTS_OUTLIERS);
}

/* ---- the reference's two groupings --------------------------------------------------------- */

static void forms_agree(const char *line, kb_inputs dist)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, &line, 1);
    const kb_case *c = &cl.v[0];
    kb_tensor d_in[KB_MAX_TENSORS], d_out[KB_MAX_TENSORS];
    kb_tensor in[KB_MAX_TENSORS], out[KB_MAX_TENSORS], o2[KB_MAX_TENSORS];
    int ni, no;
    c->fam->describe(c->p, d_in, &ni, d_out, &no);
    for (int i = 0; i < ni; i++) /* alloc clears its tensor: from the descriptors' copies */
        assert_int_equal(
            kb_tensor_alloc(&in[i], d_in[i].name, d_in[i].dtype, d_in[i].ndim, d_in[i].shape), 0);
    assert_int_equal(kb_tensor_alloc(&out[0], "out", KB_F32, d_out[0].ndim, d_out[0].shape), 0);
    assert_int_equal(kb_tensor_alloc(&o2[0], "out", KB_F32, d_out[0].ndim, d_out[0].shape), 0);
    kb_rng rng;
    kb_rng_seed(&rng, 77);
    c->fam->generate(c->p, in, &rng, dist);
    kb_mla_reference_form(c->p, in, out, 1);
    kb_mla_reference_form(c->p, in, o2, 0);
    const float *a = out[0].data, *b = o2[0].data;
    int64_t off = 0;
    for (int64_t i = 0; i < kb_tensor_numel(&out[0]); i++) /* the same double, rounded to f32 */
        off += fabsf(a[i] - b[i]) > ldexpf(fabsf(b[i]), -22) + 1e-30f;
    if (off)
        fail_msg("%s (%s): %lld elements of the two groupings differ by more than an f32 ulp",
                 line, kb_inputs_name(dist), (long long)off);
    for (int i = 0; i < ni; i++)
        kb_tensor_free(&in[i]);
    kb_tensor_free(&out[0]);
    kb_tensor_free(&o2[0]);
    kb_case_list_free(&cl);
}

static void test_reference_forms(void **st)
{
    (void)st;
    forms_agree("mla_decode heads=3 T=37 n_q=2 rank=64 rope=16 v_dim=32", KB_INPUTS_RANDOM);
    forms_agree("mla_decode heads=4 T=130 n_q=4 cache=1 w_bf16=0", KB_INPUTS_RANDOM);
    forms_agree("mla_decode heads=4 T=65 n_q=3", KB_INPUTS_PEAKY);
    forms_agree("mla_decode heads=4 T=65 n_q=1 rank=256", KB_INPUTS_OUTLIERS);
}

/* ---- shapes ------------------------------------------------------------------------------- */

static void expect_error(const char *line, const char *needle)
{
    kb_case_list cl = {0};
    char err[512] = "";
    assert_int_equal(kb_suite_parse_line(line, &cl, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("'%s': error '%s' lacks '%s'", line, err, needle);
    kb_case_list_free(&cl);
}

static void test_validation(void **st)
{
    (void)st;
    expect_error("mla_decode T=2 n_q=3", "n_q=3 exceeds T=2");
    expect_error("mla_decode rank=96", "rank=96: must be a multiple of 64");
    expect_error("mla_decode rope=40", "rope=40: must be a multiple of 16");
    expect_error("mla_decode v_dim=100", "v_dim=100: must be a multiple of 16");
    expect_error("mla_decode T=0", "out of range");
    expect_error("mla_decode T=131073", "out of range");
    expect_error("mla_decode n_q=5", "out of range");
    expect_error("mla_decode heads=257", "out of range");
    expect_error("mla_decode cache=2", "out of range");
    expect_error("mla_decode w_bf16=2", "out of range");
    /* the cost model: query i attends T - n_q + i + 1 positions */
    kb_case_list cl = {0};
    char err[512];
    assert_int_equal(kb_suite_parse_line("mla_decode heads=2 T=10 n_q=2 rank=64 rope=16 v_dim=32",
                                         &cl, err, sizeof err), 0);
    const double per_row = 2.0 * 9.5 * (2 * 64 + 16) + 2.0 * (128 + 32) * 64;
    assert_float_equal(cl.v[0].fam->flops(cl.v[0].p), per_row * 4, 0);
    assert_float_equal(cl.v[0].fam->bytes(cl.v[0].p),
                       10.0 * 80 * 2 + 2.0 * 160 * 64 * 2 + 4.0 * (128 + 16 + 32) * 4, 0);
    kb_case_list_free(&cl);
    /* the CLI: a bad shape is a usage error, exit status 2, with the message */
    const char *bin = getenv("KBENCH");
    if (bin) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s --kernel mla_decode --shape rank=100 --check 2>&1", bin);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char text[4096] = "";
        size_t n = fread(text, 1, sizeof text - 1, p);
        text[n] = 0;
        const int rc = pclose(p);
        assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
        if (!strstr(text, "rank=100: must be a multiple of 64"))
            fail_msg("kbench said '%s'", text);
    }
}

/* ---- the tolerance catches a lost position ------------------------------------------------ */

/* The reference over positions 1..T-1 only: a kernel that drops position 0 (an off-by-one in a
 * tile or chunk loop). */
static void drop_first(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    kb_mla_shape s;
    kb_mla_shape_of(c->p, &s);
    kb_tensor sub[6];
    memcpy(sub, in, sizeof sub);
    sub[MLA_IN_C].data = (uint16_t *)in[MLA_IN_C].data + s.R;
    sub[MLA_IN_KPE].data = (uint16_t *)in[MLA_IN_KPE].data + s.rope;
    int64_t p[KB_MAX_PARAMS];
    memcpy(p, c->p, sizeof p);
    p[MLA_T] -= 1;
    kb_mla_reference_form(p, sub, out, 0);
}

static void test_tolerance_catches_lost_position(void **st)
{
    (void)st;
    static const kb_impl broken = {.family = "mla_decode", .name = "t_drop_first",
                                   .backend = KB_BACKEND_CPU, .cpu_run = drop_first};
    const kb_impl *impls[] = {&broken};
    const char *line = "mla_decode heads=8 T=64,4096";
    kb_case_list cl = {0};
    kbt_cases(&cl, &line, 1);
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.no_vulkan = 1;
    o.n_threads = 1;
    o.threads[0] = 1;
    o.registry_impls_off = 1;
    o.extra_impls = impls;
    o.n_extra_impls = 1;
    kb_results r = {0};
    assert_int_equal(kb_run(&o, &cl, &r), 2);
    for (int i = 0; i < r.n; i++)
        print_message("dropping position 0 at T=%lld: conditioned error %.3g (tolerance %.3g)\n",
                      (long long)kb_case_param(&r.v[i].c, "T"), r.v[i].cond_err, r.v[i].tol);
    kb_results_free(&r);
    kb_case_list_free(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_reference_forms),
        cmocka_unit_test(test_tolerance_catches_lost_position),
        cmocka_unit_test(test_cpu_short),
        cmocka_unit_test(test_cpu_long),
        cmocka_unit_test(test_cpu_peaky_outliers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
