/* rope_yarn on Vulkan (rope_yarn.comp): one dispatch, a workgroup per (token, block of
 * RY_VK_HB heads). Inputs uploaded in prepare (untimed); y has its guard bytes uploaded with it
 * and read back in finish. */
#include <stdio.h>
#include <stdlib.h>

#include "rope_yarn.h"
#include "rope_yarn.spv.h"
#include "vk.h"

#define RY_VK_HB 8 /* heads per workgroup */

typedef struct ry_state {
    kb_vk_buf *x, *f, *ms, *y;
    kb_vk_cmd *cmd;
    uint64_t ybytes; /* payload + guard */
} ry_state;

typedef struct ry_push {
    uint32_t H, pos;
} ry_push;

static void ry_release(void *state)
{
    ry_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    kb_vk_buf_destroy(s->x);
    kb_vk_buf_destroy(s->f);
    kb_vk_buf_destroy(s->ms);
    kb_vk_buf_destroy(s->y);
    free(s);
}

static void *ry_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const int64_t *p = c->p;
    const uint64_t hb = (uint64_t)(p[RY_HEADS] + RY_VK_HB - 1) / RY_VK_HB;
    if (in[RY_IN_X].bytes > L->max_storage_range || (uint64_t)p[RY_TOKENS] > L->max_wg_count[0] ||
        hb > L->max_wg_count[1]) {
        snprintf(err, errlen, "x (%llu bytes) or the grid exceeds the device's limits",
                 (unsigned long long)in[RY_IN_X].bytes);
        return NULL;
    }
    const uint32_t spec[2] = {(uint32_t)p[RY_ROT], RY_VK_HB};
    kb_vk_pipe *pipe = kb_vk_pipe_get(vk, kb_spv_rope_yarn, sizeof kb_spv_rope_yarn, 4,
                                      sizeof(ry_push), spec, 2, err, errlen);
    if (!pipe)
        return NULL;
    ry_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->ybytes = out[RY_OUT].bytes + KB_GUARD_BYTES;
    if (!(s->x = kb_vk_buf_from(vk, in[RY_IN_X].data, in[RY_IN_X].bytes, err, errlen)) ||
        !(s->f = kb_vk_buf_from(vk, in[RY_IN_FREQ].data, in[RY_IN_FREQ].bytes, err, errlen)) ||
        !(s->ms = kb_vk_buf_from(vk, in[RY_IN_MSCALE].data, 4, err, errlen)) ||
        !(s->y = kb_vk_buf_from(vk, out[RY_OUT].data, s->ybytes, err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, 1, err, errlen)))
        goto fail;
    const kb_vk_bind b[4] = {{s->x, 0, 0}, {s->f, 0, 0}, {s->ms, 0, 0},
                             {s->y, 0, out[RY_OUT].bytes}};
    const ry_push pc = {(uint32_t)p[RY_HEADS], (uint32_t)p[RY_POS]};
    if (kb_vk_cmd_dispatch(s->cmd, pipe, b, &pc, (uint32_t)p[RY_TOKENS], (uint32_t)hb, 1, err,
                           errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    ry_release(s);
    return NULL;
}

static int ry_run(void *state, const kb_env *env, double *gpu_seconds)
{
    ry_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "rope_yarn vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again: the device copy too (kb_impl.reset). */
static int ry_reset(void *state, const kb_tensor *out)
{
    ry_state *s = state;
    char err[256];
    if (kb_vk_buf_write(s->y, 0, out[RY_OUT].data, s->ybytes, err, sizeof err) != 0) {
        fprintf(stderr, "rope_yarn vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

static int ry_finish(void *state, kb_tensor *out)
{
    ry_state *s = state;
    char err[256];
    if (kb_vk_buf_read(s->y, 0, out[RY_OUT].data, s->ybytes, err, sizeof err) != 0) {
        fprintf(stderr, "rope_yarn vk: %s\n", err);
        return -1;
    }
    return 0;
}

static const char *ry_available(const kb_env *env)
{
    return env->vk ? NULL : "no Vulkan device";
}

const kb_impl kb_impl_rope_yarn_vk = {
    .family = "rope_yarn",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = ry_available,
    .prepare = ry_prepare,
    .run = ry_run,
    .finish = ry_finish,
    .reset = ry_reset,
    .release = ry_release,
};
