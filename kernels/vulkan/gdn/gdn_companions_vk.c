/* Vulkan GatedDeltaNet companions, f32: gdn_conv (gdn_conv.comp, a thread per (channel,
 * sequence)), gdn_gates (gdn_gates.comp, a thread per element), gdn_qknorm and gdn_gatednorm
 * (gdn_rownorm.comp, a subgroup per row). Inputs are uploaded in prepare; the outputs carry
 * their guard bytes up and back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn_common.h"
#include "vk.h"
/* after <stdint.h> */
#include "gdn_conv.spv.h"
#include "gdn_gates.spv.h"
#include "gdn_rownorm.spv.h"

#define GC_MAX_T 4 /* tensors on a side */

typedef struct gcv_state {
    kb_vk_buf *in[GC_MAX_T], *out[GC_MAX_T];
    int n_in, n_out;
    uint64_t obytes[GC_MAX_T];
    kb_vk_cmd *cmd;
} gcv_state;

static void gcv_release(void *state)
{
    gcv_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    for (int i = 0; i < GC_MAX_T; i++) {
        kb_vk_buf_destroy(s->in[i]);
        kb_vk_buf_destroy(s->out[i]);
    }
    free(s);
}

/* Uploads n_in inputs and n_out outputs (with their guard bytes) and makes a command list. */
static gcv_state *gcv_upload(struct kb_vk *vk, const kb_tensor *in, int n_in, const kb_tensor *out,
                             int n_out, char *err, size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    for (int i = 0; i < n_in + n_out; i++) {
        const kb_tensor *t = i < n_in ? &in[i] : &out[i - n_in];
        if (t->bytes > L->max_storage_range) {
            snprintf(err, errlen, "%s (%llu bytes) exceeds the device's %llu-byte storage binding",
                     t->name, (unsigned long long)t->bytes,
                     (unsigned long long)L->max_storage_range);
            return NULL;
        }
    }
    gcv_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->n_in = n_in;
    s->n_out = n_out;
    for (int i = 0; i < n_in; i++)
        if (!(s->in[i] = kb_vk_buf_from(vk, in[i].data, in[i].bytes, err, errlen)))
            goto fail;
    for (int i = 0; i < n_out; i++) {
        s->obytes[i] = out[i].bytes + KB_GUARD_BYTES;
        if (!(s->out[i] = kb_vk_buf_from(vk, out[i].data, s->obytes[i], err, errlen)))
            goto fail;
    }
    if (!(s->cmd = kb_vk_cmd_create(vk, 1, err, errlen)))
        goto fail;
    return s;
fail:
    gcv_release(s);
    return NULL;
}

static int gcv_dispatch(gcv_state *s, kb_vk_pipe *p, const kb_vk_bind *b, const void *pc,
                        uint32_t gx, uint32_t gy, char *err, size_t errlen)
{
    if (!p || kb_vk_cmd_dispatch(s->cmd, p, b, pc, gx, gy, 1, err, errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0) {
        gcv_release(s);
        return -1;
    }
    return 0;
}

static kb_vk_bind bi(kb_vk_buf *b, const kb_tensor *t) { return (kb_vk_bind){b, 0, t->bytes}; }

static uint32_t cap_groups(const kb_vk_limits *L, uint64_t want)
{
    const uint64_t m = L->max_wg_count[0] < 65535 ? L->max_wg_count[0] : 65535;
    return (uint32_t)(want < 1 ? 1 : want > m ? m : want);
}

/* ---- conv ---- */

static void *conv_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                          const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint32_t WG = 256 <= L->max_wg_invocations ? 256 : L->max_wg_invocations;
    const uint32_t n = (uint32_t)c->p[1], ch = (uint32_t)c->p[2];
    const uint32_t gx = (ch + WG - 1) / WG;
    if (gx > L->max_wg_count[0] || (uint64_t)c->p[0] > L->max_wg_count[1]) {
        snprintf(err, errlen, "conv grid exceeds the device's limits");
        return NULL;
    }
    const uint32_t spec[1] = {WG}, pc[2] = {n, ch};
    kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_gdn_conv, sizeof kb_spv_gdn_conv, 5, sizeof pc,
                                   spec, 1, err, errlen);
    if (!p)
        return NULL;
    gcv_state *s = gcv_upload(vk, in, 3, out, 2, err, errlen);
    if (!s)
        return NULL;
    const kb_vk_bind b[5] = {bi(s->in[0], &in[0]), bi(s->in[1], &in[1]), bi(s->in[2], &in[2]),
                             bi(s->out[0], &out[0]), bi(s->out[1], &out[1])};
    return gcv_dispatch(s, p, b, pc, gx, (uint32_t)c->p[0], err, errlen) ? NULL : s;
}

/* ---- gates ---- */

static void *gates_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                           const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint32_t WG = 256 <= L->max_wg_invocations ? 256 : L->max_wg_invocations;
    const uint64_t total = (uint64_t)(c->p[0] * c->p[1]);
    const uint32_t spec[1] = {WG}, pc[2] = {(uint32_t)total, (uint32_t)c->p[1]};
    kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_gdn_gates, sizeof kb_spv_gdn_gates, 6, sizeof pc,
                                   spec, 1, err, errlen);
    if (!p)
        return NULL;
    gcv_state *s = gcv_upload(vk, in, 4, out, 2, err, errlen);
    if (!s)
        return NULL;
    const kb_vk_bind b[6] = {bi(s->in[0], &in[0]),   bi(s->in[1], &in[1]),
                             bi(s->in[2], &in[2]),   bi(s->in[3], &in[3]),
                             bi(s->out[0], &out[0]), bi(s->out[1], &out[1])};
    return gcv_dispatch(s, p, b, pc, cap_groups(L, (total + WG - 1) / WG), 1, err, errlen) ? NULL : s;
}

/* ---- the row norms ---- */

static void *rownorm_prepare(const kb_env *env, const kb_tensor *in, const kb_tensor *out,
                             uint64_t rows, uint32_t D, int gated, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint32_t WG = 128;
    const uint32_t sg = L->subgroup_size < WG ? L->subgroup_size : WG;
    const uint32_t sg_min = L->subgroup_min < sg ? L->subgroup_min : sg;
    const uint64_t total = gated ? rows : 2 * rows, per_wg = WG / sg;
    const uint32_t spec[4] = {WG, D, sg_min, (uint32_t)gated}, pc[1] = {(uint32_t)rows};
    kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_gdn_rownorm, sizeof kb_spv_gdn_rownorm, 4,
                                   sizeof pc, spec, 4, err, errlen);
    if (!p)
        return NULL;
    gcv_state *s = gated ? gcv_upload(vk, in, 3, out, 1, err, errlen)
                         : gcv_upload(vk, in, 2, out, 2, err, errlen);
    if (!s)
        return NULL;
    kb_vk_bind b[4];
    if (gated) { /* o, z, y, w */
        b[0] = bi(s->in[0], &in[0]);
        b[1] = bi(s->in[1], &in[1]);
        b[2] = bi(s->out[0], &out[0]);
        b[3] = bi(s->in[2], &in[2]);
    } else { /* q, k, q', k' */
        b[0] = bi(s->in[0], &in[0]);
        b[1] = bi(s->in[1], &in[1]);
        b[2] = bi(s->out[0], &out[0]);
        b[3] = bi(s->out[1], &out[1]);
    }
    return gcv_dispatch(s, p, b, pc, cap_groups(L, (total + per_wg - 1) / per_wg), 1, err,
                        errlen) ? NULL : s;
}

static void *qkn_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                         const kb_tensor *out, char *err, size_t errlen)
{
    return rownorm_prepare(env, in, out, (uint64_t)(c->p[0] * c->p[1]), (uint32_t)c->p[2], 0,
                           err, errlen);
}

static void *gn_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    return rownorm_prepare(env, in, out, (uint64_t)(c->p[0] * c->p[1]), (uint32_t)c->p[2], 1,
                           err, errlen);
}

/* ---- common ---- */

static int gcv_run(void *state, const kb_env *env, double *gpu_seconds)
{
    gcv_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "gdn vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again: the device copies too (kb_impl.reset). */
static int gcv_reset(void *state, const kb_tensor *out)
{
    gcv_state *s = state;
    char err[256];
    for (int i = 0; i < s->n_out; i++)
        if (kb_vk_buf_write(s->out[i], 0, out[i].data, s->obytes[i], err, sizeof err) != 0) {
            fprintf(stderr, "gdn vk reset: %s\n", err);
            return -1;
        }
    return 0;
}

static int gcv_finish(void *state, kb_tensor *out)
{
    gcv_state *s = state;
    char err[256];
    for (int i = 0; i < s->n_out; i++)
        if (kb_vk_buf_read(s->out[i], 0, out[i].data, s->obytes[i], err, sizeof err) != 0) {
            fprintf(stderr, "gdn vk: %s\n", err);
            return -1;
        }
    return 0;
}

static const char *gcv_available(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    if (!kb_vk_get_limits(env->vk)->subgroup_arith)
        return "device lacks subgroup arithmetic in compute shaders";
    return NULL;
}

#define GCV_IMPL(sym, fam, prep)                                                             \
    const kb_impl sym = {.family = fam,           .name = "vk",     .backend = KB_BACKEND_VULKAN, \
                         .available = gcv_available, .prepare = prep, .run = gcv_run,            \
                         .finish = gcv_finish, .reset = gcv_reset, .release = gcv_release}

GCV_IMPL(kb_impl_gdn_conv_vk, "gdn_conv", conv_prepare);
GCV_IMPL(kb_impl_gdn_gates_vk, "gdn_gates", gates_prepare);
GCV_IMPL(kb_impl_gdn_qknorm_vk, "gdn_qknorm", qkn_prepare);
GCV_IMPL(kb_impl_gdn_gatednorm_vk, "gdn_gatednorm", gn_prepare);
