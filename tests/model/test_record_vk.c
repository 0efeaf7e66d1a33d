/* Every implementation with a recording form (kb_impl.record), run through the general form
 * built on it (kb_vk_rec_prepare & co.: its own rec_layout/rec_upload, scratch, padding) and
 * checked against the reference by the runner, on its family's test_shape and a model shape:
 * what a model run records is what the suites check. Skipped without a Vulkan device. */
#include <stdlib.h>

#include "kbtest.h"
#include "vk.h"

static const kb_impl *g_cur; /* the implementation under test */

static void *wrap_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                          const kb_tensor *out, char *err, size_t errlen)
{
    return kb_vk_rec_prepare(g_cur, env, c, in, out, err, errlen);
}

/* Extra shapes per family (beyond test_shape): model-like ones, odd ones. */
static const char *extra_shape(const char *fam)
{
    static const struct { const char *fam, *shape; } x[] = {
        {"matvec_q4_0", "rows=300 cols=4128 tokens=3"},
        {"matvec_q8_0", "rows=300 cols=4128 tokens=1"},
        {"matvec_bf16", "rows=65 cols=96 tokens=16"},
        {"matvec_a4", "rows=65 cols=256 tokens=2"},
        {"attn_decode", "heads=8 kv_heads=2 head_dim=128 T=300"},
        {"attn_prefill", "heads=8 kv_heads=2 head_dim=128 n_q=16 p0=40"},
        {"rmsnorm", "rows=16 cols=4096"},
        {"rope", "heads=8 head_dim=256 rot=64 tokens=2 p0=999"},
        {"embed_q4_0", "rows=1000 cols=256 tokens=16"},
    };
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        if (strcmp(x[i].fam, fam) == 0)
            return x[i].shape;
    return NULL;
}

static void test_every_recording(void **st)
{
    (void)st;
    int ran = 0, skipped = 0;
    for (int i = 0; i < kb_impl_count(); i++) {
        const kb_impl *m = kb_impl_at(i);
        if (!m->record)
            continue;
        const kb_family *f = kb_family_find(m->family);
        assert_non_null(f);
        kb_impl w = *m;
        char name[64];
        snprintf(name, sizeof name, "rec:%s", m->name);
        w.name = name;
        w.prepare = wrap_prepare;
        w.run = kb_vk_rec_run;
        w.finish = kb_vk_rec_finish;
        w.release = kb_vk_rec_release;
        g_cur = m;
        char l1[512], l2[512];
        snprintf(l1, sizeof l1, "%s %s", f->name, f->test_shape);
        const char *es = extra_shape(f->name);
        snprintf(l2, sizeof l2, "%s %s", f->name, es ? es : f->test_shape);
        const char *lines[2] = {l1, l2};
        kb_case_list cl = {0};
        kbt_cases(&cl, lines, 2);
        const kb_impl *ip = &w;
        kb_options o;
        kb_options_default(&o);
        o.check_only = 1;
        o.registry_impls_off = 1;
        o.extra_impls = &ip;
        o.n_extra_impls = 1;
        kb_results r = {0};
        int bad = kb_run(&o, &cl, &r);
        kbt_print_failures(&r);
        for (int k = 0; k < r.n; k++) {
            ran += r.v[k].status == KB_PASS;
            skipped += r.v[k].status == KB_SKIP;
        }
        kb_results_free(&r);
        kb_case_list_free(&cl);
        if (bad)
            fail_msg("%s %s: the recording form failed", m->family, m->name);
    }
    print_message("recordings checked: %d rows passed, %d skipped\n", ran, skipped);
    if (ran == 0)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_recording)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
