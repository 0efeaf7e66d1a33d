/* A wrong tile edge must fail: each CPU path run with a planted bug in its own driver
 * (mma_cpu.h kb_mma_plant): the last partial tile of N, or of M, neither computed nor written
 * (left poisoned: "NaN"), or the last partial tile of N stored with its columns one place off
 * (finite and wrong: the conditioned check). Shapes leave partial tiles of every path's sizes
 * (N = 29: 12 x 2 + 5, 6 x 4 + 5; M = 45: 32 + 13); the same runs without a bug pass. */
#include "kbtest.h"
#include "mma_cpu.h"

typedef void (*gemm_fn)(const kb_case *, const kb_tensor *, kb_tensor *, kb_pool *, kb_mma_plant);

static gemm_fn g_gemm;
static kb_mma_plant g_plant;

static void planted(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    g_gemm(c, in, out, pool, g_plant);
}

static kb_result run_planted(const char *line, const char *family, gemm_fn gemm, double tol,
                             kb_mma_plant plant)
{
    kb_case_list cl = {0};
    kbt_cases(&cl, &line, 1);
    const kb_impl impl = {.family = family, .name = "planted", .backend = KB_BACKEND_CPU,
                          .tol_cond = tol, .cpu_run = planted};
    const kb_impl *ip = &impl;
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.no_vulkan = 1;
    o.n_threads = 1;
    o.threads[0] = 2;
    o.registry_impls_off = 1;
    o.extra_impls = &ip;
    o.n_extra_impls = 1;
    g_gemm = gemm;
    g_plant = plant;
    kb_results r = {0};
    kb_run(&o, &cl, &r);
    assert_int_equal(r.n, 1);
    kb_result x = r.v[0];
    x.samples = NULL;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    return x;
}

/* tol: the path's own tolerance (0: the family's) */
static void check_path(const char *line, const char *family, gemm_fn gemm, double tol,
                       const char *need)
{
    if (need) { /* the path cannot run here */
        print_message("%s: %s: planted bugs not run\n", family, need);
        return;
    }
    kb_result x = run_planted(line, family, gemm, tol, KB_MMA_PLANT_NONE);
    if (x.status != KB_PASS)
        fail_msg("%s %s without a bug: %s (%s)", family, line, kb_status_name(x.status), x.msg);
    static const struct { kb_mma_plant plant; const char *name, *says; } bugs[] = {
        {KB_MMA_PLANT_SKIP_N, "last partial N tile skipped", "NaN"},
        {KB_MMA_PLANT_SKIP_M, "last partial M tile skipped", "NaN"},
        {KB_MMA_PLANT_SHIFT_N, "last partial N tile's columns shifted", "conditioned error"},
    };
    for (int b = 0; b < 3; b++) {
        x = run_planted(line, family, gemm, tol, bugs[b].plant);
        if (x.status != KB_FAIL || !strstr(x.msg, bugs[b].says))
            fail_msg("%s %s, %s: %s (%s), not a FAIL saying '%s'", family, line, bugs[b].name,
                     kb_status_name(x.status), x.msg, bugs[b].says);
    }
}

static const char *need_avx512(void)
{
    const kb_cpu_features *f = kb_cpu();
    return f->avx512f && f->avx512bw && f->avx512vl && f->fma && f->f16c ? NULL : "CPU lacks avx512";
}

static void test_planted_avx512(void **st)
{
    (void)st;
    check_path("mma_q4_0 M=45 N=29 K=64", "mma_q4_0", kb_mma_avx512_gemm, 0, need_avx512());
    check_path("mma_f16 M=45 N=29 K=544", "mma_f16", kb_mma_avx512_gemm, 0, need_avx512());
}

static void test_planted_avx512vnni(void **st)
{
    (void)st;
    const char *need = need_avx512() ? need_avx512() : kb_cpu()->avx512vnni ? NULL : "CPU lacks avx512vnni";
    check_path("mma_q8_0 M=45 N=29 K=64", "mma_q8_0", kb_mma_avx512vnni_gemm, KB_MMA_I8_TOL, need);
    check_path("mma_a4 M=45 N=29 K=576 group=64", "mma_a4", kb_mma_avx512vnni_gemm, KB_MMA_I8_TOL, need);
}

static void test_planted_avx512bf16(void **st)
{
    (void)st;
    const char *need = need_avx512() ? need_avx512() : kb_cpu()->avx512bf16 ? NULL : "CPU lacks avx512bf16";
    check_path("mma_bf16 M=45 N=29 K=64", "mma_bf16", kb_mma_avx512bf16_gemm, 2.5e-3, need);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planted_avx512),
        cmocka_unit_test(test_planted_avx512vnni),
        cmocka_unit_test(test_planted_avx512bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
