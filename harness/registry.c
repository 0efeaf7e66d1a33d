/* Families and implementations, from registry.def. */
#include "kbench.h"

#include <string.h>

#define KB_FAMILY(x) extern const kb_family kb_family_##x;
#define KB_IMPL(x) extern const kb_impl kb_impl_##x;
#ifdef KB_HAVE_VULKAN
#define KB_IMPL_VK(x) extern const kb_impl kb_impl_##x;
#else
#define KB_IMPL_VK(x)
#endif
#include "registry.def"
#undef KB_FAMILY
#undef KB_IMPL
#undef KB_IMPL_VK

static const kb_family *const families[] = {
#define KB_FAMILY(x) &kb_family_##x,
#define KB_IMPL(x)
#define KB_IMPL_VK(x)
#include "registry.def"
#undef KB_FAMILY
#undef KB_IMPL
#undef KB_IMPL_VK
};

static const kb_impl *const impls[] = {
#define KB_FAMILY(x)
#define KB_IMPL(x) &kb_impl_##x,
#ifdef KB_HAVE_VULKAN
#define KB_IMPL_VK(x) &kb_impl_##x,
#else
#define KB_IMPL_VK(x)
#endif
#include "registry.def"
#undef KB_FAMILY
#undef KB_IMPL
#undef KB_IMPL_VK
    NULL /* keeps the array non-empty */
};

#define NFAM ((int)(sizeof families / sizeof families[0]))
#define NIMPL ((int)(sizeof impls / sizeof impls[0]) - 1)

static void ref_run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)pool;
    c->fam->reference(c->p, in, out);
}

static kb_impl ref_impls[NFAM];

static void init_refs(void)
{
    static int done;
    if (done)
        return;
    for (int i = 0; i < NFAM; i++) {
        ref_impls[i] = (kb_impl){.family = families[i]->name,
                                 .name = "ref",
                                 .backend = KB_BACKEND_CPU,
                                 .cpu_run = ref_run};
    }
    done = 1;
}

int kb_family_count(void) { return NFAM; }
const kb_family *kb_family_at(int i) { return i >= 0 && i < NFAM ? families[i] : NULL; }

const kb_family *kb_family_find(const char *name)
{
    for (int i = 0; i < NFAM; i++)
        if (strcmp(families[i]->name, name) == 0)
            return families[i];
    return NULL;
}

/* The ref implementation of each family comes first, then the table's, in order. */
int kb_impl_count(void) { return NFAM + NIMPL; }

const kb_impl *kb_impl_at(int i)
{
    init_refs();
    if (i < 0)
        return NULL;
    if (i < NFAM)
        return &ref_impls[i];
    i -= NFAM;
    return i < NIMPL ? impls[i] : NULL;
}

int64_t kb_case_param(const kb_case *c, const char *name)
{
    for (int i = 0; i < c->fam->nparams; i++)
        if (strcmp(c->fam->params[i].name, name) == 0)
            return c->p[i];
    return -1;
}

const char *kb_inputs_name(kb_inputs d)
{
    static const char *const n[KB_INPUTS_COUNT] = {"random", "outliers", "peaky", "extreme", "zeros"};
    return d >= 0 && d < KB_INPUTS_COUNT ? n[d] : "?";
}
