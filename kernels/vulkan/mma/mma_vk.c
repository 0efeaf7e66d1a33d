/* Vulkan mma, scalar shared-memory tiles in the seed's three precisions (mma_tile.glsl):
 * vk_f32 (mma_f32.comp), vk_h (mma_h.comp: f16 operands, f32 sums), vk_hh (mma_hh.comp: f16
 * operands and sums; needs shaderFloat16), for every weight format: the shaders dequantize the
 * weights as stored while staging them. Tiles of 16 TM tokens x 16 TM weight rows, 256 threads:
 * TM = 8 on GPUs (128 x 128, 64 sums per thread), 4 on CPU drivers (lavapipe: smaller tiles,
 * less padding on test shapes); KB_VK_MMA_TM=4|8 overrides. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mma_f32.spv.h"
#include "mma_h.spv.h"
#include "mma_hh.spv.h"
#include "mma_vk.h"

typedef struct mm_kind {
    const uint32_t *spv;
    size_t spv_bytes;
    int f16_math; /* needs shaderFloat16 */
    uint32_t shared_per_tm; /* shared bytes per unit of TM (two arrays of 32 x 16 TM) */
} mm_kind;

static const mm_kind F32 = {kb_spv_mma_f32, sizeof kb_spv_mma_f32, 0, 2 * 32 * 16 * 4};
static const mm_kind H = {kb_spv_mma_h, sizeof kb_spv_mma_h, 0, 2 * 16 * 16 * 4};
static const mm_kind HH = {kb_spv_mma_hh, sizeof kb_spv_mma_hh, 1, 2 * 16 * 16 * 4};

static int choose_tm(const kb_vk_limits *L, const mm_kind *k, uint32_t *tm, char *err,
                     size_t errlen)
{
    uint32_t want = L->is_cpu ? 4 : 8;
    const char *e = getenv("KB_VK_MMA_TM");
    if (e) {
        if (strcmp(e, "4") != 0 && strcmp(e, "8") != 0) {
            snprintf(err, errlen, "KB_VK_MMA_TM=%s: want 4 or 8", e);
            return -1;
        }
        want = (uint32_t)atoi(e);
    }
    if (want == 8 && k->shared_per_tm * 8 > L->max_shared_bytes)
        want = 4;
    if (k->shared_per_tm * want > L->max_shared_bytes || L->max_wg_invocations < 256 ||
        L->max_wg_size_x < 256) {
        snprintf(err, errlen, "needs 256 threads and %u bytes of shared memory",
                 k->shared_per_tm * want);
        return -1;
    }
    *tm = want;
    return 0;
}

static void *mm_prepare(const mm_kind *k, const kb_env *env, const kb_case *c,
                        const kb_tensor *in, const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    uint32_t tm;
    if (choose_tm(kb_vk_get_limits(vk), k, &tm, err, errlen) != 0)
        return NULL;
    kb_mma_vk *st = kb_mma_vk_upload(vk, c, in, out, err, errlen);
    if (!st)
        return NULL;
    const uint32_t spec[3] = {kb_mma_vk_fmt(&st->s), (uint32_t)st->s.group, tm};
    const kb_vk_pipe *p = kb_vk_pipe_get(vk, k->spv, k->spv_bytes, 5, 8 * sizeof(uint32_t), spec,
                                         3, err, errlen);
    if (!p || kb_mma_vk_record(vk, st, p, 16 * tm, 16 * tm, err, errlen) != 0) {
        kb_mma_vk_release(st);
        return NULL;
    }
    return st;
}

static const char *avail_any(const kb_env *env)
{
    return env->vk ? NULL : "no Vulkan device";
}

static const char *avail_f16(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    return kb_vk_get_limits(env->vk)->float16 ? NULL : "device lacks shaderFloat16";
}

#define PREP(name, kind)                                                                           \
    static void *name(const kb_env *env, const kb_case *c, const kb_tensor *in,                   \
                      const kb_tensor *out, char *err, size_t errlen)                             \
    {                                                                                              \
        return mm_prepare(&kind, env, c, in, out, err, errlen);                                    \
    }
PREP(prep_f32, F32)
PREP(prep_h, H)
PREP(prep_hh, HH)


/* vk_h: both factors of every product rounded to f16 (2^-11 relative each, 2^-10 where a
 * driver's packHalf2x16 truncates) while they are in f16's normal range; weights below it
 * (tiny scales of --inputs extreme) round coarser. Measured up to 8e-4 with random and outlier
 * inputs, 2.5e-3 with extreme ones (lavapipe). vk_hh adds f16 products and sums: each of the K
 * additions rounds the running sum to 11 bits; measured up to 2e-3 (random), 8e-3 (outliers),
 * 1.4e-2 (extreme), K up to 14336 (results/zen4-2c/mma/README.md). */
#define TOL_H 5e-3
#define WHY_H "A and W rounded to f16 (2 x 2^-10 relative per product in f16's normal range)"
#define TOL_HH 3e-2
#define WHY_HH "A, W, products and the K-long sums in f16 (measured)"

#define MMA_VK(fmt, nm, prep, avail, tol, why)                                                     \
    const kb_impl kb_impl_mma_##fmt##_##nm = {                                                     \
        .family = "mma_" #fmt,                                                                     \
        .name = #nm,                                                                               \
        .backend = KB_BACKEND_VULKAN,                                                              \
        .available = avail,                                                                        \
        .tol_cond = tol,                                                                           \
        .tol_why = why,                                                                            \
        .prepare = prep,                                                                           \
        .run = kb_mma_vk_run,                                                                      \
        .finish = kb_mma_vk_finish,                                                                \
        .reset = kb_mma_vk_reset,                                                                  \
        .release = kb_mma_vk_release,                                                              \
    };
#define MMA_VK3(fmt)                                                                               \
    MMA_VK(fmt, vk_f32, prep_f32, avail_any, 0, NULL)                                              \
    MMA_VK(fmt, vk_h, prep_h, avail_any, TOL_H, WHY_H)                                             \
    MMA_VK(fmt, vk_hh, prep_hh, avail_f16, TOL_HH, WHY_HH)
MMA_VK3(q8_0)
MMA_VK3(q4_0)
MMA_VK3(a4)
MMA_VK3(f16)
MMA_VK3(bf16)
