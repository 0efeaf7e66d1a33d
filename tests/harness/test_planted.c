/* Every registered family, on its test_shape, with bugs planted in its own reference: an output
 * element left unwritten, an element written one past the end, one element off by 1% of the
 * output's RMS. The runner must fail each (and pass the unmodified reference), so a new family
 * is covered by registering it. Also: every family names a test_shape and a suite that exists. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "kbtest.h"

enum { BUG_NONE, BUG_UNWRITTEN, BUG_PAST_END, BUG_OFF };
static int g_bug;

/* The output a bug is planted in: the last one (a state, the ids, or the only one). */
static void planted(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    int n_in = 0, n_out = 0;
    kb_tensor din[KB_MAX_TENSORS], dout[KB_MAX_TENSORS];
    c->fam->describe(c->p, din, &n_in, dout, &n_out);
    c->fam->reference(c->p, in, out);
    kb_tensor *t = &out[n_out - 1];
    int64_t n = kb_tensor_numel(t), mid = n / 2;
    switch (g_bug) {
    case BUG_UNWRITTEN:
        kb_tensor_poison(t); /* as if the kernel never wrote it: every element poisoned */
        if (n > 1) {         /* ... but for one, to be precise: rewrite all the others */
            kb_tensor tmp[KB_MAX_TENSORS];
            memcpy(tmp, out, sizeof tmp[0] * (size_t)n_out);
            void *buf = malloc(t->bytes + KB_GUARD_BYTES);
            tmp[n_out - 1].data = buf;
            c->fam->reference(c->p, in, tmp);
            size_t es = kb_dtype_size(t->dtype);
            memcpy(t->data, buf, (size_t)(n - 1) * es);
            free(buf);
        }
        break;
    case BUG_PAST_END:
        ((unsigned char *)t->data)[t->bytes] ^= 0xFF;
        break;
    case BUG_OFF:
        if (t->dtype == KB_F32) {
            float *y = t->data;
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += (double)y[i] * y[i];
            double rms = sqrt(s / (double)n);
            y[mid] += (float)(0.01 * (rms > 0 ? rms : 1.0));
        } else if (t->dtype == KB_F16) { /* an f16 output (cvt_f16): the same in f16 */
            uint16_t *y = t->data;
            double s = 0;
            for (int64_t i = 0; i < n; i++)
                s += (double)kb_f16_to_f32(y[i]) * kb_f16_to_f32(y[i]);
            double rms = sqrt(s / (double)n);
            y[mid] = kb_f32_to_f16(kb_f16_to_f32(y[mid]) + (float)(0.01 * (rms > 0 ? rms : 1.0)));
        } else if (t->dtype == KB_I32) {
            ((int32_t *)t->data)[mid] += 1;
        } else {
            fail_msg("%s: planted error for dtype %s not written", c->fam->name, kb_dtype_name(t->dtype));
        }
        break;
    }
}

static kb_result run_planted(const kb_family *f, int bug)
{
    char line[512];
    snprintf(line, sizeof line, "%s %s", f->name, f->test_shape);
    kb_case_list cl = {0};
    const char *l = line;
    kbt_cases(&cl, &l, 1);
    kb_impl impl = {.family = f->name, .name = "planted", .backend = KB_BACKEND_CPU, .cpu_run = planted};
    const kb_impl *ip = &impl;
    kb_options o;
    kb_options_default(&o);
    o.check_only = 1;
    o.no_vulkan = 1;
    o.n_threads = 1;
    o.threads[0] = 1;
    o.registry_impls_off = 1;
    o.extra_impls = &ip;
    o.n_extra_impls = 1;
    g_bug = bug;
    kb_results r = {0};
    kb_run(&o, &cl, &r);
    assert_int_equal(r.n, 1);
    kb_result x = r.v[0];
    x.samples = NULL;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    return x;
}

static void test_every_family_has_a_test_shape_and_suite(void **st)
{
    (void)st;
    for (int i = 0; i < kb_family_count(); i++) {
        const kb_family *f = kb_family_at(i);
        if (!f->test_shape)
            fail_msg("family %s has no test_shape", f->name);
        char path[1024];
        snprintf(path, sizeof path, "%s/suites/%s.suite", KB_SOURCE_DIR, f->suite);
        if (access(path, R_OK) != 0)
            fail_msg("family %s: its suite %s does not exist", f->name, path);
    }
}

static void test_planted_bugs_fail(void **st)
{
    (void)st;
    for (int i = 0; i < kb_family_count(); i++) {
        const kb_family *f = kb_family_at(i);
        kb_result x = run_planted(f, BUG_NONE);
        if (x.status != KB_PASS)
            fail_msg("%s %s: the unmodified reference gives %s: %s", f->name, f->test_shape,
                     kb_status_name(x.status), x.msg);
        static const struct { int bug; const char *name, *says; } bugs[] = {
            {BUG_UNWRITTEN, "an unwritten element", "NaN"},
            {BUG_PAST_END, "a write past the end", "guard"},
            {BUG_OFF, "one element off by 1% of the RMS", ""},
        };
        for (int b = 0; b < 3; b++) {
            x = run_planted(f, bugs[b].bug);
            if (x.status != KB_FAIL || !strstr(x.msg, bugs[b].says))
                fail_msg("%s %s: %s gives %s (%s), not a FAIL saying '%s'", f->name, f->test_shape,
                         bugs[b].name, kb_status_name(x.status), x.msg, bugs[b].says);
        }
    }
}

/* Vulkan outputs live on the device: without reset the check after timing cannot poison them */
static void test_every_vulkan_impl_has_reset(void **st)
{
    (void)st;
    for (int i = 0; i < kb_impl_count(); i++) {
        const kb_impl *m = kb_impl_at(i);
        if (m->backend == KB_BACKEND_VULKAN && !m->reset)
            fail_msg("%s %s: a Vulkan implementation without reset (kbench.h)", m->family, m->name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_family_has_a_test_shape_and_suite),
        cmocka_unit_test(test_planted_bugs_fail),
        cmocka_unit_test(test_every_vulkan_impl_has_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
