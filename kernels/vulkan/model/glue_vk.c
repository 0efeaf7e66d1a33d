/* Vulkan glue of the model group (embed.comp, rmsnorm.comp, rope.comp, glue_ew.comp): each
 * implementation is its recording form (kbench.h, kb_impl.record) and gets the general form
 * for the suites from kb_vk_rec_prepare & co. (vk.c): one code path for both uses. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "embed.spv.h"
#include "glue_common.h"
#include "glue_ew.spv.h"
#include "rmsnorm.spv.h"
#include "rope.spv.h"
#include "vk.h"

double kb_rmsnorm_eps(const int64_t *p); /* reference/model/rmsnorm.c */

static uint32_t cap_groups(uint64_t want, uint32_t limit)
{
    return want < 1 ? 1 : want > limit ? limit : (uint32_t)want;
}

static const char *need_vk(const kb_env *env)
{
    return env->vk ? NULL : "no Vulkan device";
}

static const char *need_vk16(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    return kb_vk_get_limits(env->vk)->storage16 ? NULL : "device lacks 16-bit storage buffers";
}

/* ---- embed ---- */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int embed_record(kb_wfmt f, const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,
                        const kb_vk_bind *in, const kb_vk_bind *out, char *err, size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(env->vk);
    const uint64_t rows = (uint64_t)c->p[0], cols = (uint64_t)c->p[1], tokens = (uint64_t)c->p[2];
    const uint64_t rb = (uint64_t)kb_wf_row_bytes(f, c->p[1]);
    /* rows per binding: a whole number of rows within the range limit (and 16-bit word indexes
     * within 2^32), each binding starting at a multiple of storage_align */
    const uint64_t step = L->storage_align / gcd64(rb, L->storage_align);
    uint64_t lim = L->max_storage_range < (1ull << 32) ? L->max_storage_range : (1ull << 32) - 2;
    uint64_t rpc = lim / rb / step * step;
    if (rpc > rows)
        rpc = rows;
    if (rpc == 0 || (rows + rpc - 1) / rpc > 6) {
        snprintf(err, errlen, "embedding table of %llu rows x %llu bytes needs more than 6 "
                 "bindings of %llu bytes", (unsigned long long)rows, (unsigned long long)rb,
                 (unsigned long long)L->max_storage_range);
        return -1;
    }
    const uint64_t nch = (rows + rpc - 1) / rpc;
    if (cols > 64ull * L->max_wg_count[0] || tokens > L->max_wg_count[1]) {
        snprintf(err, errlen, "embed grid exceeds the device's limits");
        return -1;
    }
    const uint32_t spec[1] = {(uint32_t)f};
    kb_vk_pipe *p = kb_vk_pipe_get(env->vk, kb_spv_embed, sizeof kb_spv_embed, 8, 5 * 4, spec, 1,
                                   err, errlen);
    if (!p)
        return -1;
    kb_vk_bind b[8] = {in[1], out[0]};
    for (uint64_t k = 0; k < 6; k++) {
        const uint64_t r0 = k < nch ? k * rpc : 0;
        const uint64_t n = rows - r0 < rpc ? rows - r0 : rpc;
        b[2 + k] = (kb_vk_bind){in[0].buf, in[0].offset + r0 * rb, n * rb};
    }
    const uint32_t pc[5] = {(uint32_t)rows, (uint32_t)cols, (uint32_t)tokens, (uint32_t)rpc,
                            (uint32_t)(rb / 2)};
    return kb_vk_cmd_dispatch(cmd, p, b, pc, (uint32_t)((cols + 63) / 64), (uint32_t)tokens, 1,
                              err, errlen);
}

#define EMBED_VK(NAME, FMT)                                                                    \
    extern const kb_impl kb_impl_##NAME##_vk;                                                  \
    static int record_##NAME(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,              \
                             const kb_vk_bind *in, const kb_vk_bind *out,                      \
                             const kb_vk_bind *scratch, char *err, size_t errlen)              \
    {                                                                                          \
        (void)scratch;                                                                         \
        return embed_record(FMT, env, c, cmd, in, out, err, errlen);                           \
    }                                                                                          \
    static void *prepare_##NAME(const kb_env *env, const kb_case *c, const kb_tensor *in,      \
                                const kb_tensor *out, char *err, size_t errlen)                \
    {                                                                                          \
        return kb_vk_rec_prepare(&kb_impl_##NAME##_vk, env, c, in, out, err, errlen);          \
    }                                                                                          \
    const kb_impl kb_impl_##NAME##_vk = {                                                      \
        .family = #NAME,                                                                       \
        .name = "vk",                                                                          \
        .backend = KB_BACKEND_VULKAN,                                                          \
        .available = need_vk16,                                                                \
        .prepare = prepare_##NAME,                                                             \
        .run = kb_vk_rec_run,                                                                  \
        .finish = kb_vk_rec_finish,                                                            \
        .reset = kb_vk_rec_reset,                                                              \
        .release = kb_vk_rec_release,                                                          \
        .record = record_##NAME,                                                               \
    };

EMBED_VK(embed_f32, KB_WF_F32)
EMBED_VK(embed_f16, KB_WF_F16)
EMBED_VK(embed_bf16, KB_WF_BF16)
EMBED_VK(embed_q8_0, KB_WF_Q8_0)
EMBED_VK(embed_q4_0, KB_WF_Q4_0)

/* ---- rmsnorm ---- */

static int rmsnorm_record(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,
                          const kb_vk_bind *in, const kb_vk_bind *out, const kb_vk_bind *scratch,
                          char *err, size_t errlen)
{
    (void)scratch;
    const kb_vk_limits *L = kb_vk_get_limits(env->vk);
    uint32_t wg = 256;
    while (wg > L->max_wg_invocations || wg > L->max_wg_size_x)
        wg /= 2;
    const uint32_t spec[1] = {wg};
    kb_vk_pipe *p = kb_vk_pipe_get(env->vk, kb_spv_rmsnorm, sizeof kb_spv_rmsnorm, 3, 12, spec, 1,
                                   err, errlen);
    if (!p)
        return -1;
    const kb_vk_bind b[3] = {in[0], in[1], out[0]};
    struct {
        uint32_t rows, cols;
        float eps;
    } pc = {(uint32_t)c->p[0], (uint32_t)c->p[1], (float)kb_rmsnorm_eps(c->p)};
    return kb_vk_cmd_dispatch(cmd, p, b, &pc, cap_groups((uint64_t)c->p[0], L->max_wg_count[0]),
                              1, 1, err, errlen);
}

/* ---- rope ---- */

static int rope_record(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd, const kb_vk_bind *in,
                       const kb_vk_bind *out, const kb_vk_bind *scratch, char *err,
                       size_t errlen)
{
    (void)scratch;
    const kb_vk_limits *L = kb_vk_get_limits(env->vk);
    const int64_t *p = c->p; /* heads, head_dim, rot, tokens, p0, theta */
    const uint32_t nospec[1] = {0}; /* no constants (a pointer all the same: memcpy, memcmp) */
    kb_vk_pipe *pipe = kb_vk_pipe_get(env->vk, kb_spv_rope, sizeof kb_spv_rope, 4, 20, nospec, 0,
                                      err, errlen);
    if (!pipe)
        return -1;
    const uint64_t half = (uint64_t)p[2] / 2, items = (uint64_t)(p[3] * p[0]);
    const kb_vk_bind b[4] = {in[0], in[1], in[2], out[0]};
    const uint32_t pc[5] = {(uint32_t)p[0], (uint32_t)p[1], (uint32_t)half, (uint32_t)p[4],
                            (uint32_t)items};
    return kb_vk_cmd_dispatch(cmd, pipe, b, pc, (uint32_t)(((uint64_t)p[1] - half + 63) / 64),
                              cap_groups(items, L->max_wg_count[1]), 1, err, errlen);
}

/* ---- elementwise ---- */

static int ew_record(uint32_t op, int n_in, const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,
                     const kb_vk_bind *in, const kb_vk_bind *out, char *err, size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(env->vk);
    const uint32_t spec[1] = {op};
    kb_vk_pipe *p = kb_vk_pipe_get(env->vk, kb_spv_glue_ew, sizeof kb_spv_glue_ew, 3, 4, spec, 1,
                                   err, errlen);
    if (!p)
        return -1;
    const uint64_t n = (uint64_t)(c->p[EW_COLS] * c->p[EW_TOKENS]);
    const kb_vk_bind b[3] = {in[0], in[n_in > 1 ? 1 : 0], out[0]};
    const uint32_t pc = (uint32_t)n;
    return kb_vk_cmd_dispatch(cmd, p, b, &pc, cap_groups((n + 255) / 256, L->max_wg_count[0]), 1,
                              1, err, errlen);
}

#define EW_REC(NAME, OP, NIN)                                                                  \
    static int NAME##_record(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,              \
                             const kb_vk_bind *in, const kb_vk_bind *out,                      \
                             const kb_vk_bind *scratch, char *err, size_t errlen)              \
    {                                                                                          \
        (void)scratch;                                                                         \
        return ew_record(OP, NIN, env, c, cmd, in, out, err, errlen);                          \
    }
EW_REC(swiglu, 0, 2)
EW_REC(outgate, 1, 2)
EW_REC(residual, 2, 2)
EW_REC(cvt_f16, 3, 1)

#define GLUE_VK(NAME, AVAIL, TOL, WHY)                                                         \
    extern const kb_impl kb_impl_##NAME##_vk;                                                  \
    static void *NAME##_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,      \
                                const kb_tensor *out, char *err, size_t errlen)                \
    {                                                                                          \
        return kb_vk_rec_prepare(&kb_impl_##NAME##_vk, env, c, in, out, err, errlen);          \
    }                                                                                          \
    const kb_impl kb_impl_##NAME##_vk = {                                                      \
        .family = #NAME,                                                                       \
        .name = "vk",                                                                          \
        .backend = KB_BACKEND_VULKAN,                                                          \
        .available = AVAIL,                                                                    \
        .tol_cond = TOL,                                                                       \
        .tol_why = WHY,                                                                        \
        .prepare = NAME##_prepare,                                                             \
        .run = kb_vk_rec_run,                                                                  \
        .finish = kb_vk_rec_finish,                                                            \
        .reset = kb_vk_rec_reset,                                                              \
        .release = kb_vk_rec_release,                                                          \
        .record = NAME##_record,                                                               \
    };

#define EXP_WHY "GLSL exp is exact to 3 + 2|x| ulp only (Vulkan's precision rules): ~1e-5 of |y| at |g| = 88"
GLUE_VK(rmsnorm, need_vk, 0, NULL)
GLUE_VK(rope, need_vk, 0, NULL)
GLUE_VK(swiglu, need_vk, 3e-5, EXP_WHY)
GLUE_VK(outgate, need_vk, 3e-5, EXP_WHY)
GLUE_VK(residual, need_vk, 0, NULL)
GLUE_VK(cvt_f16, need_vk16, 0, NULL)
