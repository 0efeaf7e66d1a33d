/* Vulkan read yardstick (read.comp): the array is split into chunks of at most one binding's
 * range; each chunk's workgroups write partial sums, then one workgroup sums the partials. */
#include <stdio.h>
#include <stdlib.h>

#include "kbench.h"
#include "read.spv.h"
#include "vk.h"

#define READ_WG 256
#define VEC4_PER_THREAD 16 /* sizes the grid; 8..64 and 128..1024 threads measured alike */

typedef struct rd_push {
    uint32_t n4, base;
} rd_push;

typedef struct rd_state {
    kb_vk_buf *x, *part, *out;
    kb_vk_cmd *cmd;
    uint64_t obytes; /* payload + guard */
} rd_state;

static void rd_release(void *state)
{
    rd_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    kb_vk_buf_destroy(s->x);
    kb_vk_buf_destroy(s->part);
    kb_vk_buf_destroy(s->out);
    free(s);
}

static void *rd_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint64_t bytes = in[0].bytes;
    (void)c;
    if (bytes % 16 != 0) {
        snprintf(err, errlen, "read: %llu bytes is not a whole number of vec4",
                 (unsigned long long)bytes);
        return NULL;
    }
    uint32_t wg = READ_WG;
    if (wg > L->max_wg_invocations)
        wg = L->max_wg_invocations;
    if (wg > L->max_wg_size_x)
        wg = L->max_wg_size_x;
    const uint64_t align = L->storage_align > 16 ? L->storage_align : 16;
    uint64_t cap = L->max_storage_range < (1ull << 31) ? L->max_storage_range : (1ull << 31);
    cap = cap / align * align; /* chunk offsets stay aligned */
    const int nchunks = (int)((bytes + cap - 1) / cap);

    /* Partial-sum slots: one per workgroup of every chunk, padded with zeros to vec4s. */
    uint32_t *groups = calloc((size_t)nchunks, sizeof *groups);
    rd_state *s = calloc(1, sizeof *s);
    float *zeros = NULL;
    uint64_t nparts = 0;
    if (!groups || !s) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int k = 0; k < nchunks; k++) {
        uint64_t len = bytes - (uint64_t)k * cap < cap ? bytes - (uint64_t)k * cap : cap;
        const uint64_t per_group = (uint64_t)wg * VEC4_PER_THREAD;
        uint64_t g = (len / 16 + per_group - 1) / per_group;
        groups[k] = (uint32_t)(g < 1 ? 1 : g > L->max_wg_count[0] ? L->max_wg_count[0] : g);
        nparts += groups[k];
    }
    const uint64_t npad = (nparts + 3) / 4 * 4;
    zeros = calloc(npad, sizeof *zeros);
    uint32_t spec[2] = {wg, L->subgroup_min};
    kb_vk_pipe *pipe = kb_vk_pipe_get(vk, kb_spv_read, sizeof kb_spv_read, 2, sizeof(rd_push),
                                      spec, 2, err, errlen);
    if (!zeros) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->obytes = out[0].bytes + KB_GUARD_BYTES;
    if (!pipe || !(s->x = kb_vk_buf_from(vk, in[0].data, bytes, err, errlen)) ||
        !(s->part = kb_vk_buf_from(vk, zeros, npad * 4, err, errlen)) ||
        !(s->out = kb_vk_buf_from(vk, out[0].data, s->obytes, err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, nchunks + 1, err, errlen)))
        goto fail;

    uint32_t base = 0;
    for (int k = 0; k < nchunks; k++) {
        uint64_t off = (uint64_t)k * cap, len = bytes - off < cap ? bytes - off : cap;
        kb_vk_bind b[2] = {{s->x, off, len}, {s->part, 0, npad * 4}};
        rd_push pc = {(uint32_t)(len / 16), base};
        if (kb_vk_cmd_dispatch(s->cmd, pipe, b, &pc, groups[k], 1, 1, err, errlen) != 0)
            goto fail;
        base += groups[k];
    }
    kb_vk_cmd_barrier(s->cmd);
    kb_vk_bind fb[2] = {{s->part, 0, npad * 4}, {s->out, 0, out[0].bytes}};
    rd_push fpc = {(uint32_t)(npad / 4), 0};
    if (kb_vk_cmd_dispatch(s->cmd, pipe, fb, &fpc, 1, 1, 1, err, errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    free(groups);
    free(zeros);
    return s;
fail:
    free(groups);
    free(zeros);
    rd_release(s);
    return NULL;
}

static int rd_run(void *state, const kb_env *env, double *gpu_seconds)
{
    rd_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "read vk: %s\n", err);
        return -1;
    }
    return 0;
}

static int rd_finish(void *state, kb_tensor *out)
{
    rd_state *s = state;
    char err[256];
    if (kb_vk_buf_read(s->out, 0, out[0].data, s->obytes, err, sizeof err) != 0) {
        fprintf(stderr, "read vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again (after timing): the device copy too, so the last check sees
 * only what the kernel writes in that run. */
static int rd_reset(void *state, const kb_tensor *out)
{
    rd_state *s = state;
    char err[256];
    if (kb_vk_buf_write(s->out, 0, out[0].data, s->obytes, err, sizeof err) != 0) {
        fprintf(stderr, "vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

static const char *rd_available(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    if (!kb_vk_get_limits(env->vk)->subgroup_arith)
        return "device lacks subgroup arithmetic in compute shaders";
    return NULL;
}

const kb_impl kb_impl_read_vk = {
    .family = "read",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = rd_available,
    .prepare = rd_prepare,
    .run = rd_run,
    .finish = rd_finish,
    .reset = rd_reset,
    .release = rd_release,
};
