/* Vulkan mma on cooperative matrices ("vk_cm"): mma_cm.coopmat.comp (see its comment), every
 * weight format, f16 operands (the weights dequantized to f16 while staged) and f32 sums.
 * Optional twice over, as attention's vk_cm: built only where glslang compiles
 * GL_NV_cooperative_matrix (KB_HAVE_COOPMAT_NV), run only on devices with
 * VK_NV_cooperative_matrix f16 16x16x16 -> f32 (kb_vk_limits.coopmat_nv).
 * Tuning: KB_VK_MMA_CM=WM,WN,FM,FN[,BKB[,PREFETCH]] (subgroups along M and N, 16x16 fragments
 * per subgroup along M and N, 32-blocks of K per stage, next stage's loads into registers)
 * replaces the list of tiles below. Untested on hardware when written (the development
 * machine has no cooperative matrices): the first tile is a plan, not a measurement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mma_vk.h"

#ifdef KB_HAVE_COOPMAT_NV
#include "mma_cm.spv.h"

typedef struct cm_tile {
    uint32_t wm, wn, fm, fn, bkb, prefetch;
} cm_tile;

/* Preferred first: 128 x 128 tiles of 8 subgroups, each 64 x 32 (8 accumulators), K in stages
 * of 64, the next stage prefetched into registers; then smaller ones for smaller devices. */
static const cm_tile CM_TILES[] = {
    {2, 4, 4, 2, 2, 1}, {2, 4, 4, 2, 1, 1}, {2, 2, 4, 2, 1, 1}, {2, 2, 2, 2, 1, 0}, {1, 1, 2, 2, 1, 0},
};

/* Bytes of shared memory mma_cm.coopmat.comp declares. */
static uint64_t cm_shared(const cm_tile *t)
{
    const uint64_t bm = 16ull * t->fm * t->wm, bn = 16ull * t->fn * t->wn;
    const uint64_t ls8 = (32ull * t->bkb + 8) / 8;
    return (bm + bn) * ls8 * 16 + (uint64_t)t->wm * t->wn * 64 * 16;
}

static int cm_choose(const kb_vk_limits *L, int64_t K, cm_tile *t, char *err, size_t errlen)
{
    const char *e = getenv("KB_VK_MMA_CM");
    const cm_tile *list = CM_TILES;
    size_t n = sizeof CM_TILES / sizeof CM_TILES[0];
    cm_tile forced = {0, 0, 0, 0, 1, 1};
    if (e) {
        if (sscanf(e, "%u,%u,%u,%u,%u,%u", &forced.wm, &forced.wn, &forced.fm, &forced.fn,
                   &forced.bkb, &forced.prefetch) < 4 ||
            forced.wm < 1 || forced.wm > 8 || forced.wn < 1 || forced.wn > 8 || forced.fm < 1 ||
            forced.fm > 8 || forced.fn < 1 || forced.fn > 8 || forced.bkb < 1 || forced.bkb > 4 ||
            forced.prefetch > 1) {
            snprintf(err, errlen, "KB_VK_MMA_CM=%s: want WM,WN,FM,FN[,BKB[,PREFETCH]] (1..8 each, "
                     "BKB 1..4, PREFETCH 0 or 1)", e);
            return -1;
        }
        list = &forced;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const uint32_t wg = list[i].wm * list[i].wn * L->subgroup_size;
        if (cm_shared(&list[i]) <= L->max_shared_bytes && wg <= L->max_wg_invocations &&
            wg <= L->max_wg_size_x && K % (32 * (int64_t)list[i].bkb) == 0) {
            *t = list[i];
            return 0;
        }
    }
    snprintf(err, errlen, "no cooperative-matrix tile fits %u bytes of shared memory and K=%lld",
             L->max_shared_bytes, (long long)K);
    return -1;
}

static void *cm_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    cm_tile t;
    if (cm_choose(L, c->p[MMA_K], &t, err, errlen) != 0)
        return NULL;
    kb_mma_vk *st = kb_mma_vk_upload(vk, c, in, out, err, errlen);
    if (!st)
        return NULL;
    const uint32_t spec[10] = {t.wm * t.wn * L->subgroup_size, L->subgroup_size,
                               kb_mma_vk_fmt(&st->s), (uint32_t)st->s.group, t.wm, t.wn, t.fm,
                               t.fn, t.bkb, t.prefetch};
    const kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_mma_cm, sizeof kb_spv_mma_cm, 5,
                                         8 * sizeof(uint32_t), spec, 10, err, errlen);
    if (!p || kb_mma_vk_record(vk, st, p, 16 * t.fm * t.wm, 16 * t.fn * t.wn, err, errlen) != 0) {
        kb_mma_vk_release(st);
        return NULL;
    }
    return st;
}

static const char *cm_available(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    const kb_vk_limits *L = kb_vk_get_limits(env->vk);
    if (!L->coopmat_nv)
        return "device lacks VK_NV_cooperative_matrix (f16 16x16x16 -> f32) or what it needs";
    if (L->subgroup_size < 16 || L->subgroup_size > 64 || L->subgroup_min != L->subgroup_size)
        return "needs a fixed subgroup size of 16 to 64";
    return NULL;
}

#define CM_PREPARE cm_prepare
#define CM_RUN kb_mma_vk_run
#define CM_FINISH kb_mma_vk_finish
#define CM_RESET kb_mma_vk_reset
#define CM_RELEASE kb_mma_vk_release
#else
/* Not built: the implementations list, and say why. */
static const char *cm_available(const kb_env *env)
{
    (void)env;
    return "not built: glslang lacks GL_NV_cooperative_matrix";
}
#define CM_PREPARE NULL
#define CM_RUN NULL
#define CM_FINISH NULL
#define CM_RESET NULL
#define CM_RELEASE NULL
#endif

/* f16 operands, f32 sums: vk_h's tolerance (mma_vk.c). */
#define CM_TOL 5e-3
#define CM_WHY "A and W rounded to f16 for the tensor-core products (2 x 2^-10 relative per " \
               "product in f16's normal range)"

#define MMA_CM(fmt)                                                                                \
    const kb_impl kb_impl_mma_##fmt##_vk_cm = {                                                    \
        .family = "mma_" #fmt,                                                                     \
        .name = "vk_cm",                                                                           \
        .backend = KB_BACKEND_VULKAN,                                                              \
        .available = cm_available,                                                                 \
        .tol_cond = CM_TOL,                                                                        \
        .tol_why = CM_WHY,                                                                         \
        .prepare = CM_PREPARE,                                                                     \
        .run = CM_RUN,                                                                             \
        .finish = CM_FINISH,                                                                       \
        .reset = CM_RESET,                                                                         \
        .release = CM_RELEASE,                                                                     \
    };
MMA_CM(q8_0)
MMA_CM(q4_0)
MMA_CM(a4)
MMA_CM(f16)
MMA_CM(bf16)
