/* End-to-end runs of the available presets, made small (--set: hidden 128, 2 layers, a vocab of
 * 300), on the ref and cpu backends (test_model_run_vk.c: this file again with ref and vk, on
 * lavapipe without a GPU; apart, so that the CPU runs keep the sanitizer build's leak check,
 * which Mesa's own leak turns off for Vulkan tests): each backend's logits at every step against
 * the reference backend's; the f32-arithmetic CPU path agrees on every greedy token; prefill
 * over several chunks; presets this build cannot run say why. */
#include <math.h>
#include <stdlib.h>

#include "kbtest.h"
#include "model_run.h"

#ifndef MR_BACKENDS
#define MR_BACKENDS "ref,cpu"
#endif

static void tiny(mdl_config *c, const char *name, kb_wfmt f, int qk_norm, int out_gate, int ctx)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->layers = 2;
    c->hidden = 128;
    c->heads = 4;
    c->kv_heads = 2;
    c->head_dim = 64;
    c->rot = out_gate ? 16 : 64; /* Qwen3.5's partial rotary: a quarter of the head */
    c->ffn = 256;
    c->vocab = 300;
    c->eps_exp = qk_norm ? 6 : 5;
    c->theta = qk_norm ? 1e6 : 5e5;
    c->qk_norm = qk_norm;
    c->out_gate = out_gate;
    c->wfmt = c->emb_fmt = f;
    c->ctx = ctx;
}

/* Runs cfg on backends with impl; fails the test on an error or a failed check. */
static void run(const mdl_config *cfg, const char *backends, const char *impl, int prompt, int gen,
                mdl_report *r, mdl_model *m)
{
    char err[512];
    assert_int_equal(mdl_build(m, cfg, 7, NULL, err, sizeof err), 0);
    mdl_opts o = {.prompt = prompt, .gen = gen, .threads = 3, .device = -1, .seed = 7,
                  .wfmt = -1, .backends = backends, .impl = impl, .quiet = 1, .no_roofline = 1};
    int bad = mdl_run_all(&o, m, r);
    for (int k = 0; k < r->nb; k++) {
        const mdl_bres *b = &r->b[k];
        if (!b->ran && strcmp(b->name, "vk") == 0 && strstr(b->err, "Vulkan")) {
            print_message("vk not run here: %s\n", b->err);
            bad--;
            continue;
        }
        if (!b->ran)
            fail_msg("%s %s: %s", cfg->name, b->name, b->err);
        if (!b->pass)
            fail_msg("%s %s: logits NMSE %g > %g", cfg->name, b->name, b->max_nmse, b->tol);
        print_message("%s %s: max NMSE %.2e, top-1 %d/%d%s\n", cfg->name, b->name, b->max_nmse,
                      b->n_agree, b->compared, b->low_precision ? " (lower precision)" : "");
    }
    assert_int_equal(bad, 0);
}

static void free_all(mdl_report *r, mdl_model *m)
{
    mdl_report_free(r);
    mdl_free(m);
}

static void test_llama_q4_0(void **st)
{
    (void)st;
    mdl_config c;
    tiny(&c, "llama3-8b", KB_WF_Q4_0, 0, 0, 36);
    mdl_report r;
    mdl_model m;
    run(&c, MR_BACKENDS, NULL, 20, 16, &r, &m); /* prefill: chunks of 16 and 4 */
    free_all(&r, &m);
}

static void test_llama_q8_0(void **st)
{
    (void)st;
    mdl_config c;
    tiny(&c, "llama3-8b", KB_WF_Q8_0, 0, 0, 24);
    mdl_report r;
    mdl_model m;
    run(&c, MR_BACKENDS, NULL, 8, 16, &r, &m);
    free_all(&r, &m);
}

/* The f32-activation kernels (avx512, else avx2): every greedy token equal to the reference's,
 * logits NMSE within the f32 tolerance. */
static void test_llama_f32_path(void **st)
{
    (void)st;
    mdl_config c;
    tiny(&c, "llama3-8b", KB_WF_Q4_0, 0, 0, 40);
    c.layers = 4;
    mdl_report r;
    mdl_model m;
    run(&c, "ref,cpu", kb_cpu()->avx512f ? "avx512" : "avx2", 8, 32, &r, &m);
    const mdl_bres *b = &r.b[1];
    assert_int_equal(b->low_precision, 0);
    assert_true(b->max_nmse < 1e-8);
    assert_int_equal(b->n_agree, b->compared);
    assert_int_equal(b->first_diff, -1);
    free_all(&r, &m);
}

static void test_qwen3_dense(void **st)
{
    (void)st;
    mdl_config c;
    tiny(&c, "qwen3-dense", KB_WF_BF16, 1, 0, 26);
    mdl_report r;
    mdl_model m;
    run(&c, MR_BACKENDS, NULL, 17, 8, &r, &m);
    free_all(&r, &m);
}

/* Qwen3.5's full-attention block: QK-norm, output gate, partial rotary (its GatedDeltaNet and
 * MoE layers wait for their families). */
static void test_out_gate_partial_rope(void **st)
{
    (void)st;
    mdl_config c;
    tiny(&c, "qwen35-full", KB_WF_BF16, 1, 1, 24);
    c.kv_heads = 1;
    mdl_report r;
    mdl_model m;
    run(&c, MR_BACKENDS, NULL, 16, 8, &r, &m);
    free_all(&r, &m);
}

/* A broken kernel must be caught: the reference backend against a CPU run whose embedding is
 * deliberately off (an impl spec naming a kernel of another precision is not that; here the
 * logits of a different seed's weights stand in): the diff reports a large NMSE. */
static void test_diff_detects(void **st)
{
    (void)st;
    mdl_config c;
    tiny(&c, "llama3-8b", KB_WF_Q8_0, 0, 0, 12);
    mdl_model m1, m2;
    char err[256];
    assert_int_equal(mdl_build(&m1, &c, 1, NULL, err, sizeof err), 0);
    assert_int_equal(mdl_build(&m2, &c, 2, NULL, err, sizeof err), 0);
    mdl_backend *a = mdl_backend_ref(&m1, err, sizeof err), *b = mdl_backend_ref(&m2, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    mdl_graph g;
    assert_int_equal(mdl_graph_build(&m1, 4, 0, 1, &g, err, sizeof err), 0);
    const int32_t ids[4] = {1, 2, 3, 4};
    const int32_t *pid = ids;
    float *la = malloc(sizeof(float) * 300), *lb = malloc(sizeof(float) * 300);
    double s, w;
    assert_int_equal(a->run(a, &g, 1, &pid, NULL, &s, &w, la, err, sizeof err), 0);
    mdl_graph g2;
    assert_int_equal(mdl_graph_build(&m2, 4, 0, 1, &g2, err, sizeof err), 0);
    assert_int_equal(b->run(b, &g2, 1, &pid, NULL, &s, &w, lb, err, sizeof err), 0);
    double se = 0, r2 = 0;
    for (int i = 0; i < 300; i++) {
        se += ((double)la[i] - lb[i]) * ((double)la[i] - lb[i]);
        r2 += (double)la[i] * la[i];
    }
    assert_true(se / r2 > 1e-2); /* other weights: logits far apart, as a broken kernel gives */
    free(la);
    free(lb);
    mdl_graph_free(&g);
    mdl_graph_free(&g2);
    a->free(a);
    b->free(b);
    mdl_free(&m1);
    mdl_free(&m2);
}

static void test_presets_listed(void **st)
{
    (void)st;
    assert_null(mdl_preset_missing(mdl_preset_find("llama3-8b")));
    assert_null(mdl_preset_missing(mdl_preset_find("qwen3-dense")));
    const char *why = mdl_preset_missing(mdl_preset_find("qwen35-moe"));
    assert_non_null(why);
    assert_non_null(strstr(why, "gdn"));
    why = mdl_preset_missing(mdl_preset_find("deepseek-v3"));
    assert_non_null(why);
    assert_non_null(strstr(why, "mla"));
}

/* The CLI: an unavailable preset exits 2 with the reason; a small run passes. */
static void test_cli(void **st)
{
    (void)st;
    const char *kb = getenv("KBENCH");
    if (!kb)
        skip();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s model deepseek-v3 2>&1 | grep -q 'cannot run'", kb);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s model deepseek-v3 >/dev/null 2>&1; test $? -eq 2", kb);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "%s model llama3-8b --set hidden=128,heads=4,kv_heads=2,head_dim=64,ffn=256,vocab=300 "
             "--layers 2 --prompt 5 --gen 3 --backend ref,cpu --csv -q > /dev/null", kb);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s model llama3-8b --gguf /nonexistent.gguf 2>&1 | grep -q "
             "'/nonexistent.gguf: No such file'", kb);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_q4_0),          cmocka_unit_test(test_llama_q8_0),
        cmocka_unit_test(test_llama_f32_path),      cmocka_unit_test(test_qwen3_dense),
        cmocka_unit_test(test_out_gate_partial_rope), cmocka_unit_test(test_diff_detects),
        cmocka_unit_test(test_presets_listed),      cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
