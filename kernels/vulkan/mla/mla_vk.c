/* Vulkan MLA decode (KERNELS.md section 6), scalar f32 arithmetic ("vk"), and what it shares
 * with the cooperative-matrix one (mla_vk.h). Three passes in one command list, all timed:
 *   mla_absorb.comp          qa = [s log2(e) W_UK^T q_nope ; s log2(e) q_pe] per row;
 *   mla_decode.comp          per (split, block of GH rows): online-softmax records over the
 *                            split's positions (one dispatch per binding part of the cache);
 *   mla_decode_finalize.comp per row: the records merged, normalized, times W_UV.
 * The split pass's rows per workgroup GH and tile NT are the largest of a list that fit the
 * device's shared memory (KB_VK_MLA_TILE=GH,NT forces one, for tests); splits aim at
 * MLA_VK_TARGET_WG workgroups. Inputs are uploaded in prepare (untimed); out has its guard
 * bytes uploaded with it and read back in finish, so a write past the end shows. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mla_vk.h"
#include "mla_absorb.spv.h"
#include "mla_decode.spv.h"
#include "mla_decode_finalize.spv.h"

#define MLA_VK_WG 128          /* threads of the split pass */
#define MLA_VK_TARGET_WG 1024  /* split-pass workgroups to aim for (H100: 132 SMs x ~8) */

/* A whole number from the environment variable name in [lo, hi]: 1 and *v set, 0 when unset,
 * -1 with err when malformed (never silently ignored). */
static int env_uint(const char *name, unsigned long lo, unsigned long hi, unsigned long *v,
                    char *err, size_t errlen)
{
    const char *e = getenv(name);
    if (!e)
        return 0;
    char *end;
    errno = 0;
    const unsigned long n = strtoul(e, &end, 10);
    if (end == e || *end || errno || n < lo || n > hi) {
        snprintf(err, errlen, "%s=%s: want a whole number from %lu to %lu", name, e, lo, hi);
        return -1;
    }
    *v = n;
    return 1;
}

int kb_mla_vk_rescale(float *th, char *err, size_t errlen)
{
    *th = 8.0f;
    const char *e = getenv("KB_VK_MLA_RESCALE");
    if (!e)
        return 0;
    char *end;
    const float x = strtof(e, &end);
    if (end == e || *end || !(x >= 0.0f && x <= 14.0f)) {
        snprintf(err, errlen, "KB_VK_MLA_RESCALE=%s: want a number from 0 to 14 (weights "
                 "<= 2^TH must fit f16)", e);
        return -1;
    }
    *th = x;
    return 0;
}

int kb_mla_vk_plan(const struct kb_vk *vk, const kb_mla_shape *s, uint32_t tile,
                   uint64_t row_blocks, uint64_t target, mla_vk_plan *pl, char *err,
                   size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint64_t tiles = ((uint64_t)s->T + tile - 1) / tile, M = (uint64_t)(s->n_q * s->H);
    unsigned long want = (unsigned long)((target + row_blocks - 1) / row_blocks), n;
    const int e = env_uint("KB_VK_MLA_SPLITS", 1, 65535, &n, err, errlen);
    if (e < 0)
        return -1;
    if (e > 0)
        want = n;
    /* the records of all splits in one binding */
    const uint64_t rec = M * (uint64_t)s->R * 4;
    if (want > L->max_storage_range / rec)
        want = (unsigned long)(L->max_storage_range / rec);
    want = want < 1 ? 1 : want > tiles ? (unsigned long)tiles : want;
    pl->split_len = (uint32_t)((tiles + want - 1) / want * tile);
    pl->nsplit = (uint32_t)(((uint64_t)s->T + pl->split_len - 1) / pl->split_len);
    /* parts: whole splits, each within one binding (c is the larger of the two caches) */
    uint64_t part = L->max_storage_range / ((uint64_t)s->R * 2) / pl->split_len * pl->split_len;
    const int ep = env_uint("KB_VK_MLA_PART", 1, MLA_MAX_T, &n, err, errlen);
    if (ep < 0)
        return -1;
    if (ep > 0 && n < part)
        part = n < pl->split_len ? pl->split_len : n / pl->split_len * pl->split_len;
    if (part == 0) {
        snprintf(err, errlen, "one split of %u positions (%llu bytes) exceeds the %llu-byte "
                 "storage binding", pl->split_len, (unsigned long long)pl->split_len * s->R * 2,
                 (unsigned long long)L->max_storage_range);
        return -1;
    }
    pl->part_len = part > (uint64_t)s->T ? (uint32_t)s->T : (uint32_t)part;
    /* part starts must be valid binding offsets */
    if (pl->part_len < (uint64_t)s->T &&
        (((uint64_t)pl->part_len * s->rope * 2) % L->storage_align ||
         ((uint64_t)pl->part_len * s->R * 2) % L->storage_align)) {
        snprintf(err, errlen, "parts of %u positions do not start on the device's %llu-byte "
                 "storage offset alignment", pl->part_len, (unsigned long long)L->storage_align);
        return -1;
    }
    if (pl->nsplit > L->max_wg_count[0] || row_blocks > L->max_wg_count[1] ||
        M > L->max_wg_count[0]) {
        snprintf(err, errlen, "grid of %u splits x %llu row blocks exceeds the device's limits",
                 pl->nsplit, (unsigned long long)row_blocks);
        return -1;
    }
    return 0;
}

void kb_mla_vk_release(void *state)
{
    mla_vk_state *st = state;
    if (!st)
        return;
    kb_vk_cmd_destroy(st->cmd);
    kb_vk_buf *b[] = {st->qn, st->qpe, st->c, st->kpe, st->wuk, st->wuv,
                      st->out, st->qa, st->part_o, st->part_ml};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        kb_vk_buf_destroy(b[i]);
    free(st);
}

mla_vk_state *kb_mla_vk_setup(struct kb_vk *vk, const kb_mla_shape *s, const mla_vk_plan *pl,
                              uint32_t rows, const kb_tensor *in, const kb_tensor *out,
                              char *err, size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint64_t M = rows, K = (uint64_t)(s->R + s->rope);
    const uint64_t qab = M * K * 4, pob = (uint64_t)pl->nsplit * M * s->R * 4;
    const uint64_t pmb = (uint64_t)pl->nsplit * M * 8;
    for (int i = 0; i < 6; i++) {
        const uint64_t bind = i == MLA_IN_C || i == MLA_IN_KPE ? 0 : in[i].bytes;
        if (bind > L->max_storage_range) {
            snprintf(err, errlen, "%s (%llu bytes) exceeds the %llu-byte storage binding",
                     in[i].name, (unsigned long long)bind,
                     (unsigned long long)L->max_storage_range);
            return NULL;
        }
    }
    if (qab > L->max_storage_range || pob > L->max_storage_range) {
        snprintf(err, errlen, "absorbed queries or split records exceed the storage binding");
        return NULL;
    }
    mla_vk_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->obytes = out[MLA_OUT].bytes + KB_GUARD_BYTES;
    st->rows = rows;
    void *zeros = calloc(1, qab);
    if (!zeros) {
        free(st);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const uint32_t nparts = (uint32_t)(((uint64_t)s->T + pl->part_len - 1) / pl->part_len);
    if (!(st->qn = kb_vk_buf_from(vk, in[MLA_IN_QNOPE].data, in[MLA_IN_QNOPE].bytes, err, errlen)) ||
        !(st->qpe = kb_vk_buf_from(vk, in[MLA_IN_QPE].data, in[MLA_IN_QPE].bytes, err, errlen)) ||
        !(st->c = kb_vk_buf_from(vk, in[MLA_IN_C].data, in[MLA_IN_C].bytes, err, errlen)) ||
        !(st->kpe = kb_vk_buf_from(vk, in[MLA_IN_KPE].data, in[MLA_IN_KPE].bytes, err, errlen)) ||
        !(st->wuk = kb_vk_buf_from(vk, in[MLA_IN_WUK].data, in[MLA_IN_WUK].bytes, err, errlen)) ||
        !(st->wuv = kb_vk_buf_from(vk, in[MLA_IN_WUV].data, in[MLA_IN_WUV].bytes, err, errlen)) ||
        !(st->out = kb_vk_buf_from(vk, out[MLA_OUT].data, st->obytes, err, errlen)) ||
        !(st->qa = kb_vk_buf_from(vk, zeros, qab, err, errlen)) ||
        !(st->part_o = kb_vk_buf_create(vk, pob, err, errlen)) ||
        !(st->part_ml = kb_vk_buf_create(vk, pmb, err, errlen)) ||
        !(st->cmd = kb_vk_cmd_create(vk, 2 + (int)nparts, err, errlen))) {
        free(zeros);
        kb_mla_vk_release(st);
        return NULL;
    }
    free(zeros);
    return st;
}

typedef struct absorb_push {
    uint32_t H;
    float scale;
} absorb_push;

int kb_mla_vk_absorb(struct kb_vk *vk, mla_vk_state *st, const kb_mla_shape *s, char *err,
                     size_t errlen)
{
    const uint32_t spec[4] = {(uint32_t)s->R, (uint32_t)s->rope, (uint32_t)s->n_q,
                              (uint32_t)s->w_bf16};
    kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_mla_absorb, sizeof kb_spv_mla_absorb, 4,
                                   sizeof(absorb_push), spec, 4, err, errlen);
    if (!p)
        return -1;
    const uint64_t K = (uint64_t)(s->R + s->rope);
    const kb_vk_bind b[4] = {{st->qn, 0, 0}, {st->qpe, 0, 0}, {st->wuk, 0, 0}, {st->qa, 0, 0}};
    const absorb_push pc = {(uint32_t)s->H, (float)(kb_mla_scale(s) * 1.4426950408889634)};
    if (kb_vk_cmd_dispatch(st->cmd, p, b, &pc, (uint32_t)((K + 63) / 64), (uint32_t)s->H, 1,
                           err, errlen) != 0)
        return -1;
    kb_vk_cmd_barrier(st->cmd);
    return 0;
}

void kb_mla_vk_part(const mla_vk_state *st, const kb_mla_shape *s, const mla_vk_plan *pl,
                    uint32_t p, kb_vk_bind *c, kb_vk_bind *kpe)
{
    const uint64_t j0 = (uint64_t)p * pl->part_len;
    const uint64_t n = (uint64_t)s->T - j0 < pl->part_len ? (uint64_t)s->T - j0 : pl->part_len;
    *c = (kb_vk_bind){st->c, j0 * s->R * 2, n * s->R * 2};
    *kpe = (kb_vk_bind){st->kpe, j0 * s->rope * 2, n * s->rope * 2};
}

typedef struct fin_push {
    uint32_t H, M, rows, nsplit;
} fin_push;

int kb_mla_vk_finalize(struct kb_vk *vk, mla_vk_state *st, const kb_mla_shape *s,
                       const mla_vk_plan *pl, char *err, size_t errlen)
{
    const uint32_t spec[3] = {(uint32_t)s->R, (uint32_t)s->v_dim, (uint32_t)s->w_bf16};
    kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_mla_decode_finalize,
                                   sizeof kb_spv_mla_decode_finalize, 4, sizeof(fin_push), spec,
                                   3, err, errlen);
    if (!p)
        return -1;
    const uint32_t M = (uint32_t)(s->n_q * s->H);
    const kb_vk_bind b[4] = {{st->part_o, 0, 0}, {st->part_ml, 0, 0}, {st->wuv, 0, 0},
                             {st->out, 0, (uint64_t)M * s->v_dim * 4}};
    const fin_push pc = {(uint32_t)s->H, M, st->rows, pl->nsplit};
    kb_vk_cmd_barrier(st->cmd);
    if (kb_vk_cmd_dispatch(st->cmd, p, b, &pc, M, 1, 1, err, errlen) != 0)
        return -1;
    return kb_vk_cmd_end(st->cmd, err, errlen);
}

int kb_mla_vk_run(void *state, const kb_env *env, double *gpu_seconds)
{
    mla_vk_state *st = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(st->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "mla vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again: the device copy too (kb_impl.reset). */
int kb_mla_vk_reset(void *state, const kb_tensor *out)
{
    mla_vk_state *st = state;
    char err[256];
    if (kb_vk_buf_write(st->out, 0, out[MLA_OUT].data, st->obytes, err, sizeof err) != 0) {
        fprintf(stderr, "mla vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

int kb_mla_vk_finish(void *state, kb_tensor *out)
{
    mla_vk_state *st = state;
    char err[256];
    if (kb_vk_buf_read(st->out, 0, out[MLA_OUT].data, st->obytes, err, sizeof err) != 0) {
        fprintf(stderr, "mla vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---- the scalar split pass ---------------------------------------------------------------- */

typedef struct vk_tile {
    uint32_t gh, nt;
} vk_tile;

/* Preferred first: more rows per cache tile read, longer tiles per barrier. */
static const vk_tile VK_TILES[] = {{8, 16}, {4, 16}, {4, 8}, {2, 8}, {1, 8}};

/* Shared memory of mla_decode.comp (its declarations, in order). */
static uint64_t vk_shared(const vk_tile *t, const kb_mla_shape *s)
{
    const uint64_t K = (uint64_t)(s->R + s->rope);
    return (uint64_t)t->nt * (K / 2 + 1) * 4 + t->gh * K * 4 + (uint64_t)t->gh * t->nt * 4 +
           t->gh * 4;
}

/* KB_VK_MLA_TILE=GH,NT replaces the list with that tile (GH 1..16, NT a multiple of 8 up to 64). */
static int vk_choose(const kb_vk_limits *L, const kb_mla_shape *s, vk_tile *t, char *err,
                     size_t errlen)
{
    const char *e = getenv("KB_VK_MLA_TILE");
    const vk_tile *list = VK_TILES;
    size_t n = sizeof VK_TILES / sizeof VK_TILES[0];
    vk_tile forced;
    if (e) {
        char tail;
        if (sscanf(e, "%u,%u%c", &forced.gh, &forced.nt, &tail) != 2 || forced.gh < 1 ||
            forced.gh > 16 || forced.nt < 8 || forced.nt > 64 || forced.nt % 8) {
            snprintf(err, errlen, "KB_VK_MLA_TILE=%s: want GH,NT (GH 1..16, NT a multiple of 8 "
                     "up to 64)", e);
            return -1;
        }
        list = &forced;
        n = 1;
    }
    for (size_t i = 0; i < n; i++)
        if (vk_shared(&list[i], s) <= L->max_shared_bytes) {
            *t = list[i];
            return 0;
        }
    snprintf(err, errlen, "no split tile fits %u bytes of shared memory", L->max_shared_bytes);
    return -1;
}

typedef struct split_push {
    uint32_t T, p0, H, M, split_len, part_j0, split0;
} split_push;

static void *vk_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    kb_mla_shape s;
    kb_mla_shape_of(c->p, &s);
    vk_tile tile;
    float th;
    if (vk_choose(L, &s, &tile, err, errlen) != 0 || kb_mla_vk_rescale(&th, err, errlen) != 0)
        return NULL;
    const uint64_t M = (uint64_t)(s.n_q * s.H), rb = (M + tile.gh - 1) / tile.gh;
    mla_vk_plan pl;
    if (MLA_VK_WG > L->max_wg_invocations || MLA_VK_WG > L->max_wg_size_x) {
        snprintf(err, errlen, "the split pass needs %d threads per workgroup", MLA_VK_WG);
        return NULL;
    }
    if (kb_mla_vk_plan(vk, &s, tile.nt, rb, MLA_VK_TARGET_WG, &pl, err, errlen) != 0)
        return NULL;
    uint32_t th_bits;
    memcpy(&th_bits, &th, sizeof th_bits);
    const uint32_t spec[7] = {MLA_VK_WG, tile.gh, tile.nt, (uint32_t)s.R, (uint32_t)s.rope,
                              (uint32_t)s.cache_f16, th_bits};
    kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_mla_decode, sizeof kb_spv_mla_decode, 5,
                                   sizeof(split_push), spec, 7, err, errlen);
    if (!p)
        return NULL;
    mla_vk_state *st = kb_mla_vk_setup(vk, &s, &pl, (uint32_t)M, in, out, err, errlen);
    if (!st)
        return NULL;
    if (kb_mla_vk_absorb(vk, st, &s, err, errlen) != 0)
        goto fail;
    const uint64_t K = (uint64_t)(s.R + s.rope);
    for (uint32_t j0 = 0, part = 0; j0 < (uint32_t)s.T; j0 += pl.part_len, part++) {
        kb_vk_bind bc, bk;
        kb_mla_vk_part(st, &s, &pl, part, &bc, &bk);
        const uint32_t s0 = j0 / pl.split_len;
        const uint32_t s1 = (uint32_t)(((uint64_t)j0 + pl.part_len < (uint64_t)s.T
                                            ? (uint64_t)j0 + pl.part_len
                                            : (uint64_t)s.T) +
                                       pl.split_len - 1) / pl.split_len;
        const kb_vk_bind b[5] = {{st->qa, 0, M * K * 4}, bc, bk, {st->part_o, 0, 0},
                                 {st->part_ml, 0, 0}};
        const split_push pc = {(uint32_t)s.T, (uint32_t)(s.T - s.n_q), (uint32_t)s.H,
                               (uint32_t)M, pl.split_len, j0, s0};
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

static const char *vk_available(const kb_env *env)
{
    return env->vk ? NULL : "no Vulkan device";
}

const kb_impl kb_impl_mla_decode_vk = {
    .family = "mla_decode",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = vk_available,
    .prepare = vk_prepare,
    .run = kb_mla_vk_run,
    .finish = kb_mla_vk_finish,
    .reset = kb_mla_vk_reset,
    .release = kb_mla_vk_release,
};
