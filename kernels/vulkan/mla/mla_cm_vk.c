/* Vulkan MLA decode on cooperative matrices ("vk_cm"): mla_absorb.comp, the split pass
 * mla_cm.coopmat.comp (heads as the M dimension, see its comment), mla_decode_finalize.comp.
 * Optional twice over, as attention's vk_cm: built only where glslang compiles
 * GL_NV_cooperative_matrix (KB_HAVE_COOPMAT_NV), run only on devices with
 * VK_NV_cooperative_matrix f16 16x16x16 -> f32 (kb_vk_limits.coopmat_nv).
 * Tuning: KB_VK_MLA_CM_TILE=NR,NT[,PREFETCH] (row blocks of 16 per workgroup, positions per
 * tile, next tile into registers) replaces the choice; KB_VK_MLA_SPLITS=N sets the number of
 * splits; KB_VK_MLA_RESCALE=X the lazy-rescale slack (tests: 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mla_vk.h"

#ifdef KB_HAVE_COOPMAT_NV
#include "mla_cm.spv.h"

#define CM_NC 4 /* column groups (subgroups) per row block: R / 4 latent columns each */
/* Split-pass workgroups to aim for: about 4 per SM of an H100 (132), a first guess (the
 * decode attention's best was 1 per SM for its larger workgroups); KB_VK_MLA_SPLITS tunes. */
#define CM_TARGET_WG 512

typedef struct cm_tile {
    uint32_t nr, nt, prefetch;
} cm_tile;

/* Preferred first. NR = 1 keeps a workgroup at 128 threads (registers: 64 for O, 36 for Q,
 * 36 for the prefetched tile); NT = 16 keeps the staged tile at 18 KiB. */
static const cm_tile CM_TILES[] = {{1, 16, 1}, {2, 16, 1}, {1, 32, 1}, {1, 16, 0}};

/* Bytes of shared memory mla_cm.coopmat.comp declares. */
static uint64_t cm_shared(const cm_tile *t, const kb_mla_shape *s)
{
    const uint64_t ku = (uint64_t)(s->R + s->rope) / 8;
    return (uint64_t)t->nt * (ku + 1) * 16 + (uint64_t)t->nr * CM_NC * 16 * (t->nt / 4 + 1) * 16 +
           (uint64_t)t->nr * 16 * (t->nt / 8 + 1) * 16 + (uint64_t)t->nr * 16 * 4 + t->nr * 4;
}

static int cm_choose(const kb_vk_limits *L, const kb_mla_shape *s, cm_tile *t, char *err,
                     size_t errlen)
{
    const char *e = getenv("KB_VK_MLA_CM_TILE");
    const cm_tile *list = CM_TILES;
    size_t n = sizeof CM_TILES / sizeof CM_TILES[0];
    cm_tile forced = {0, 0, 1};
    if (e) {
        char tail;
        const int k = sscanf(e, "%u,%u,%u%c", &forced.nr, &forced.nt, &forced.prefetch, &tail);
        if (k < 2 || k > 3 || forced.nr < 1 || forced.nr > 4 || forced.nt < 16 ||
            forced.nt > 64 || forced.nt % 16 || forced.prefetch > 1) {
            snprintf(err, errlen, "KB_VK_MLA_CM_TILE=%s: want NR,NT[,PREFETCH] (NR 1..4, NT 16, "
                     "32, 48 or 64, PREFETCH 0 or 1)", e);
            return -1;
        }
        list = &forced;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const uint32_t wg = list[i].nr * CM_NC * L->subgroup_size;
        if (cm_shared(&list[i], s) <= L->max_shared_bytes && wg <= L->max_wg_invocations &&
            wg <= L->max_wg_size_x) {
            *t = list[i];
            return 0;
        }
    }
    snprintf(err, errlen, "no cooperative-matrix tile fits %u bytes of shared memory",
             L->max_shared_bytes);
    return -1;
}

typedef struct cm_push {
    uint32_t T, p0, H, M, rows, split_len, part_j0, split0;
} cm_push;

static void *cm_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    kb_mla_shape s;
    kb_mla_shape_of(c->p, &s);
    cm_tile tile;
    float th;
    if (cm_choose(L, &s, &tile, err, errlen) != 0 || kb_mla_vk_rescale(&th, err, errlen) != 0)
        return NULL;
    const uint64_t M = (uint64_t)(s.n_q * s.H), rbr = 16ull * tile.nr;
    const uint64_t rb = (M + rbr - 1) / rbr, rows = rb * rbr;
    mla_vk_plan pl;
    if (kb_mla_vk_plan(vk, &s, tile.nt, rb, CM_TARGET_WG, &pl, err, errlen) != 0)
        return NULL;
    uint32_t th_bits;
    memcpy(&th_bits, &th, sizeof th_bits);
    const uint32_t spec[9] = {tile.nr * CM_NC * L->subgroup_size, tile.nr, CM_NC,
                              (uint32_t)s.R, (uint32_t)s.rope, tile.nt, (uint32_t)s.cache_f16,
                              th_bits, tile.prefetch};
    kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_mla_cm, sizeof kb_spv_mla_cm, 5, sizeof(cm_push),
                                   spec, 9, err, errlen);
    if (!p)
        return NULL;
    mla_vk_state *st = kb_mla_vk_setup(vk, &s, &pl, (uint32_t)rows, in, out, err, errlen);
    if (!st)
        return NULL;
    if (kb_mla_vk_absorb(vk, st, &s, err, errlen) != 0)
        goto fail;
    for (uint32_t j0 = 0, part = 0; j0 < (uint32_t)s.T; j0 += pl.part_len, part++) {
        kb_vk_bind bc, bk;
        kb_mla_vk_part(st, &s, &pl, part, &bc, &bk);
        const uint64_t je = (uint64_t)j0 + pl.part_len < (uint64_t)s.T
                                ? (uint64_t)j0 + pl.part_len
                                : (uint64_t)s.T;
        const uint32_t s0 = j0 / pl.split_len;
        const uint32_t s1 = (uint32_t)((je + pl.split_len - 1) / pl.split_len);
        const kb_vk_bind b[5] = {{st->qa, 0, 0}, bc, bk, {st->part_o, 0, 0},
                                 {st->part_ml, 0, 0}};
        const cm_push pc = {(uint32_t)s.T, (uint32_t)(s.T - s.n_q), (uint32_t)s.H,
                            (uint32_t)M, (uint32_t)rows, pl.split_len, j0, s0};
        if (kb_vk_cmd_dispatch(st->cmd, p, b, &pc, s1 - s0, (uint32_t)rb, 1, err, errlen) != 0)
            goto fail;
    }
    if (kb_mla_vk_finalize(vk, st, &s, &pl, err, errlen) != 0)
        goto fail;
    return st;
fail:
    kb_mla_vk_release(st);
    return NULL;
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
#define CM_RUN kb_mla_vk_run
#define CM_FINISH kb_mla_vk_finish
#define CM_RESET kb_mla_vk_reset
#define CM_RELEASE kb_mla_vk_release
#else
/* Not built: the implementation lists, and says why. */
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

const kb_impl kb_impl_mla_decode_vk_cm = {
    .family = "mla_decode",
    .name = "vk_cm",
    .backend = KB_BACKEND_VULKAN,
    .available = cm_available,
    .tol_cond = 2e-3,
    .tol_why = "q' and q_pe (scaled) and the weights p rounded to f16 for the tensor-core "
               "products (the cache converts to f16 exactly in f16's normal range)",
    .prepare = CM_PREPARE,
    .run = CM_RUN,
    .finish = CM_FINISH,
    .reset = CM_RESET,
    .release = CM_RELEASE,
};
