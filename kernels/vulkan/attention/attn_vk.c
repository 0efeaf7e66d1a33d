/* Vulkan attention (KERNELS.md section 4), f32 arithmetic, K/V cache in f16 (read as 32-bit
 * words and unpacked) or f32.
 *   attn_decode: split-KV flash decoding. Pass 1 gives every (split, kv head, chunk of its
 *     query heads) a workgroup that leaves per-head records (m, l, o); after a barrier
 *     attn_decode_combine.comp merges the splits of each head. The split length is a multiple
 *     of 128 positions, chosen so that about DEC_TARGET_WG workgroups fill the GPU
 *     (KB_VK_ATTN_SPLITS=N overrides the number of splits, for tuning). Pass 1 is
 *     attn_decode.comp (a thread per K row, no staging). KB_VK_ATTN_DECODE=staged[:N] runs
 *     attn_decode_staged.comp instead (coalesced loads a tile ahead, K staged in shared
 *     memory; N rows per lane per tile: 1, 2, 4, 8 or 16, at most the 16-byte units of a
 *     row; without N, DEC_LPT halved until its shared memory fits). On the H100 it took
 *     217 us where attn_decode.comp took 87 us (T = 32768, Llama-3-8B heads), hence not the
 *     default; it stays for tuning on other devices.
 *     KB_VK_ATTN_RESCALE=X sets the staged shader's lazy-rescale slack (log2 units, 0 .. 32,
 *     default DEC_SLACK; tests use 0, which rescales at every rise of a lane's max).
 *     KB_VK_ATTN_DECODE=persistent[:N] runs attn_decode_persist.comp instead of both passes: N
 *     workgroups (default: one per item) walk the (split, kv head, head chunk) items of the
 *     direct pass 1, and the last workgroup to finish a cell's splits merges them into O (a
 *     per-cell counter in a device buffer, set back to 0 by that workgroup): one dispatch, no
 *     barrier between passes, the merge of early cells overlapping later cells' pass 1. That
 *     merge runs in one workgroup per cell, so its cost grows with the splits: the split
 *     target is DEC_PERSIST_ITEMS items, not DEC_TARGET_WG (KB_VK_ATTN_SPLITS overrides both).
 *     Suites only (the recording form of model runs says it has none). Not the default.
 *   attn_prefill: attn_prefill.comp, one workgroup per (block of queries, head), K/V tiles in
 *     shared memory; the block and tile sizes are the largest of a fixed list that fit the
 *     device's shared memory.
 * Inputs are uploaded in prepare (untimed); O has its guard bytes uploaded with it and read
 * back in finish, so a write past the end shows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_common.h"
#include "attn_vk_env.h"
#include "attn_decode.spv.h"
#include "attn_decode_combine.spv.h"
#include "attn_decode_persist.spv.h"
#include "attn_decode_staged.spv.h"
#include "attn_prefill.spv.h"
#include "vk.h"

#define DEC_WG 128        /* threads of pass 1; positions per tile of attn_decode.comp */
#define DEC_LPT 8         /* staged rows per lane per tile: 16 KiB of K and of V per tile */
#define DEC_SLACK 8.0f    /* staged: p <= 2^DEC_SLACK between rescales */
#define DEC_GH_MAX 8      /* query heads per workgroup at most */
#define DEC_TARGET_WG 1024 /* workgroups pass 1 aims for (H100: 132 SMs x ~8) */
#define DEC_PERSIST_ITEMS 256 /* persistent: items aimed for (Llama-3-8B: 32 splits per kv head) */

typedef struct at_state {
    kb_vk_buf *q, *k, *v, *o, *part_o, *part_ml;
    kb_vk_buf *arrived; /* persistent decode: per-cell counters */
    kb_vk_cmd *cmd;
    uint64_t obytes; /* payload + guard */
} at_state;

typedef struct dec_push {
    uint32_t T, hkv, G, split_len, nsplit, nhc;
    float scale;
} dec_push;

typedef struct persist_push {
    dec_push d;
    uint32_t nitems, nwg;
} persist_push;

typedef struct comb_push {
    uint32_t nsplit;
} comb_push;

typedef struct pre_push {
    uint32_t n_q, p0, H, hkv, G, nblk;
    float scale;
} pre_push;

static void at_release(void *state)
{
    at_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    kb_vk_buf_destroy(s->q);
    kb_vk_buf_destroy(s->k);
    kb_vk_buf_destroy(s->v);
    kb_vk_buf_destroy(s->o);
    kb_vk_buf_destroy(s->part_o);
    kb_vk_buf_destroy(s->part_ml);
    kb_vk_buf_destroy(s->arrived);
    free(s);
}

/* Uploads Q, K, V and O (with its guard bytes) after checking the binding ranges. */
static at_state *upload(struct kb_vk *vk, const kb_tensor *in, const kb_tensor *out, char *err,
                        size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    for (int i = 0; i < 3; i++)
        if (in[i].bytes > L->max_storage_range) {
            snprintf(err, errlen, "%s (%llu bytes) exceeds the %llu-byte storage binding",
                     in[i].name, (unsigned long long)in[i].bytes,
                     (unsigned long long)L->max_storage_range);
            return NULL;
        }
    at_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->obytes = out[AT_O].bytes + KB_GUARD_BYTES;
    if (!(s->q = kb_vk_buf_from(vk, in[AT_Q].data, in[AT_Q].bytes, err, errlen)) ||
        !(s->k = kb_vk_buf_from(vk, in[AT_K].data, in[AT_K].bytes, err, errlen)) ||
        !(s->v = kb_vk_buf_from(vk, in[AT_V].data, in[AT_V].bytes, err, errlen)) ||
        !(s->o = kb_vk_buf_from(vk, out[AT_O].data, s->obytes, err, errlen))) {
        at_release(s);
        return NULL;
    }
    return s;
}

static float log2e_scale(int64_t D) { return (float)(1.4426950408889634 / sqrt((double)D)); }

/* ---- decode ---- */

#define DEC_PERSISTENT (-3)

/* KB_VK_ATTN_DECODE: the staged pass 1's rows per lane per tile (0: automatic), -1 for the
 * direct one, DEC_PERSISTENT (workgroups in *nwg, 0: automatic), or -2 after writing why the
 * value is not understood. */
static int dec_variant(uint32_t *nwg, char *err, size_t errlen)
{
    const char *e = getenv("KB_VK_ATTN_DECODE");
    unsigned n;
    char tail;
    *nwg = 0;
    if (!e || !*e || strcmp(e, "direct") == 0)
        return -1;
    if (strcmp(e, "staged") == 0)
        return 0;
    if (sscanf(e, "staged:%u%c", &n, &tail) == 1 && n >= 1 && n <= 16 && (n & (n - 1)) == 0)
        return (int)n;
    if (strcmp(e, "persistent") == 0)
        return DEC_PERSISTENT;
    if (sscanf(e, "persistent:%u%c", &n, &tail) == 1 && n >= 1 && n <= 65535) {
        *nwg = n;
        return DEC_PERSISTENT;
    }
    snprintf(err, errlen,
             "KB_VK_ATTN_DECODE=%s: expected staged, staged:N (N = 1, 2, 4, 8, 16), "
             "persistent, persistent:N (N = 1 .. 65535 workgroups) or direct", e);
    return -2;
}

/* Shared memory of attn_decode_staged.comp (its declarations, in order). */
static uint64_t dec_staged_shared(uint32_t lpt, uint32_t D, uint32_t gh, uint32_t kv_f16)
{
    const uint64_t nu = D / (kv_f16 ? 8 : 4), r = DEC_WG / nu, gh4 = (gh + 3) / 4;
    return (uint64_t)gh * D * 4 + r * lpt * (nu + 1) * 16 + DEC_WG * gh4 * 16 +
           2 * r * gh4 * 16 + r * D * 4;
}

/* The decode's plan for a case: pipelines, grid, split records (scratch). Shared by prepare
 * (the suites) and the recording form (model runs). */
typedef struct dec_plan {
    kb_vk_pipe *p1, *p2; /* p2 NULL: persistent (p1 merges) */
    dec_push pc1;
    uint32_t persist_wg; /* persistent: workgroups asked for, 0 automatic */
    uint32_t nsplit, cells, heads, D;
    uint64_t pobytes, pmbytes, scratch; /* records: o, (m, l); scratch = both, aligned */
} dec_plan;

static int dec_make_plan(struct kb_vk *vk, const kb_case *c, dec_plan *pl, char *err,
                         size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    kb_attn_shape sh;
    kb_attn_decode_shape(c->p, &sh);
    const int64_t G = sh.heads / sh.kv_heads;
    const uint32_t gh = (uint32_t)(G < DEC_GH_MAX ? G : DEC_GH_MAX);
    const uint32_t nhc = (uint32_t)((G + gh - 1) / gh);
    const uint64_t cells = (uint64_t)sh.kv_heads * nhc;
    const uint64_t tiles = ((uint64_t)sh.T + DEC_WG - 1) / DEC_WG;

    const int variant = dec_variant(&pl->persist_wg, err, errlen);
    if (variant == -2)
        return -1;
    const int persist = variant == DEC_PERSISTENT;

    /* splits: about DEC_TARGET_WG workgroups (persistent: DEC_PERSIST_ITEMS items), whole
     * tiles each */
    const uint64_t target = persist ? DEC_PERSIST_ITEMS : DEC_TARGET_WG;
    uint64_t want = (target + cells - 1) / cells;
    if (kb_vk_attn_env_splits(&want, err, errlen) != 0)
        return -1;
    if (want > tiles)
        want = tiles;
    if (want < 1)
        want = 1;
    const uint64_t tps = (tiles + want - 1) / want; /* tiles per split */
    const uint32_t split_len = (uint32_t)(tps * DEC_WG);
    const uint32_t nsplit = (uint32_t)(((uint64_t)sh.T + split_len - 1) / split_len);
    if (nsplit > L->max_wg_count[0] || cells > L->max_wg_count[1] ||
        (uint64_t)nsplit * cells > UINT32_MAX ||
        (uint64_t)sh.heads > L->max_wg_count[1] || DEC_WG > L->max_wg_invocations) {
        snprintf(err, errlen, "decode grid %u x %llu exceeds the device's limits", nsplit,
                 (unsigned long long)cells);
        return -1;
    }

    const uint32_t kv_f16 = (uint32_t)sh.kv_f16, D = (uint32_t)sh.D;
    const uint32_t nu = D / (kv_f16 ? 8 : 4); /* 16-byte units per row: 8 .. 64 */
    uint32_t lpt = 0; /* staged rows per lane per tile; 0: direct */
    if (variant >= 0) {
        const uint32_t asked = (uint32_t)(variant ? variant : DEC_LPT);
        const uint32_t lpt0 = asked < nu ? asked : nu; /* at least one unit per A thread */
        lpt = lpt0;
        while (lpt > 0 && dec_staged_shared(lpt, D, gh, kv_f16) > L->max_shared_bytes)
            lpt = variant ? 0 : lpt / 2;
        if (variant > 0 && lpt == 0) {
            snprintf(err, errlen, "staged decode with %u rows per lane needs %llu bytes of "
                     "shared memory, the device has %u", lpt0,
                     (unsigned long long)dec_staged_shared(lpt0, D, gh, kv_f16),
                     L->max_shared_bytes);
            return -1;
        }
    }
    const uint32_t sg_min = L->subgroup_min < DEC_WG ? L->subgroup_min : DEC_WG;
    if (persist) {
        const uint32_t spec1[5] = {DEC_WG, sg_min, D, gh, kv_f16};
        pl->p1 = kb_vk_pipe_get(vk, kb_spv_attn_decode_persist, sizeof kb_spv_attn_decode_persist,
                                7, sizeof(persist_push), spec1, 5, err, errlen);
    } else if (lpt > 0) {
        float slack = DEC_SLACK;
        const char *e = getenv("KB_VK_ATTN_RESCALE");
        if (e && *e) {
            char *end;
            slack = strtof(e, &end);
            if (*end || !(slack >= 0.0f && slack <= 32.0f)) {
                snprintf(err, errlen, "KB_VK_ATTN_RESCALE=%s: expected a number in 0 .. 32", e);
                return -1;
            }
        }
        uint32_t spec1[6] = {DEC_WG, D, gh, kv_f16, lpt, 0};
        memcpy(&spec1[5], &slack, sizeof slack); /* a float specialization constant */
        pl->p1 = kb_vk_pipe_get(vk, kb_spv_attn_decode_staged, sizeof kb_spv_attn_decode_staged,
                                5, sizeof(dec_push), spec1, 6, err, errlen);
    } else {
        const uint32_t spec1[5] = {DEC_WG, sg_min, D, gh, kv_f16};
        pl->p1 = kb_vk_pipe_get(vk, kb_spv_attn_decode, sizeof kb_spv_attn_decode, 5,
                                sizeof(dec_push), spec1, 5, err, errlen);
    }
    if (!pl->p1)
        return -1;
    const uint32_t spec2[1] = {D};
    pl->p2 = NULL;
    if (!persist &&
        !(pl->p2 = kb_vk_pipe_get(vk, kb_spv_attn_decode_combine,
                                  sizeof kb_spv_attn_decode_combine, 3, sizeof(comb_push), spec2,
                                  1, err, errlen)))
        return -1;
    const uint64_t nrec = (uint64_t)sh.heads * nsplit;
    pl->pobytes = nrec * (uint64_t)D * 4;
    pl->pmbytes = nrec * 8;
    if (pl->pobytes > L->max_storage_range) {
        snprintf(err, errlen, "split records (%llu bytes) exceed the storage binding",
                 (unsigned long long)pl->pobytes);
        return -1;
    }
    const uint64_t al = L->storage_align;
    pl->scratch = (pl->pobytes + al - 1) / al * al + pl->pmbytes;
    pl->pc1 = (dec_push){(uint32_t)sh.T, (uint32_t)sh.kv_heads, (uint32_t)G, split_len, nsplit,
                         nhc, log2e_scale(sh.D)};
    pl->nsplit = nsplit;
    pl->cells = (uint32_t)cells;
    pl->heads = (uint32_t)sh.heads;
    pl->D = D;
    return 0;
}

/* Pass 1, a barrier, the combine: q, k, v, o as bindings, records in po and pm. */
static int dec_record_plan(const dec_plan *pl, kb_vk_cmd *cmd, const kb_vk_bind *q,
                           const kb_vk_bind *k, const kb_vk_bind *v, const kb_vk_bind *o,
                           const kb_vk_bind *po, const kb_vk_bind *pm, char *err, size_t errlen)
{
    const kb_vk_bind b1[5] = {*q, *k, *v, *po, *pm};
    const kb_vk_bind b2[3] = {*po, *pm, *o};
    const comb_push pc2 = {pl->nsplit};
    if (kb_vk_cmd_dispatch(cmd, pl->p1, b1, &pl->pc1, pl->nsplit, pl->cells, 1, err, errlen) != 0)
        return -1;
    kb_vk_cmd_barrier(cmd);
    return kb_vk_cmd_dispatch(cmd, pl->p2, b2, &pc2, pl->D / 32, pl->heads, 1, err, errlen);
}

static void *dec_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                         const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    dec_plan pl;
    if (dec_make_plan(vk, c, &pl, err, errlen) != 0)
        return NULL;
    at_state *s = upload(vk, in, out, err, errlen);
    if (!s)
        return NULL;
    if (!(s->part_o = kb_vk_buf_create(vk, pl.pobytes, err, errlen)) ||
        !(s->part_ml = kb_vk_buf_create(vk, pl.pmbytes, err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, 2, err, errlen)))
        goto fail;
    const kb_vk_bind q = {s->q, 0, in[AT_Q].bytes}, k = {s->k, 0, in[AT_K].bytes},
                     v = {s->v, 0, in[AT_V].bytes}, o = {s->o, 0, out[AT_O].bytes},
                     po = {s->part_o, 0, pl.pobytes}, pm = {s->part_ml, 0, pl.pmbytes};
    if (!pl.p2) {
        /* persistent: one dispatch, the items over min(items, N) workgroups; the counters
         * start at 0 and the last merger of each cell sets its counter back */
        const kb_vk_limits *L = kb_vk_get_limits(vk);
        const uint64_t items = (uint64_t)pl.nsplit * pl.cells;
        uint64_t nwg = pl.persist_wg && pl.persist_wg < items ? pl.persist_wg : items;
        if (nwg > L->max_wg_count[0])
            nwg = L->max_wg_count[0];
        uint32_t *zeros = calloc(pl.cells, sizeof *zeros);
        if (!zeros) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        s->arrived = kb_vk_buf_from(vk, zeros, pl.cells * sizeof *zeros, err, errlen);
        free(zeros);
        if (!s->arrived)
            goto fail;
        const kb_vk_bind bp[7] = {q, k, v, po, pm, o, {s->arrived, 0, 0}};
        const persist_push pp = {pl.pc1, (uint32_t)items, (uint32_t)nwg};
        if (kb_vk_cmd_dispatch(s->cmd, pl.p1, bp, &pp, (uint32_t)nwg, 1, 1, err, errlen) != 0 ||
            kb_vk_cmd_end(s->cmd, err, errlen) != 0)
            goto fail;
        return s;
    }
    if (dec_record_plan(&pl, s->cmd, &q, &k, &v, &o, &po, &pm, err, errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    at_release(s);
    return NULL;
}

static uint64_t dec_rec_scratch(const kb_env *env, const kb_case *c)
{
    dec_plan pl;
    char err[256];
    return dec_make_plan(env->vk, c, &pl, err, sizeof err) == 0 ? pl.scratch : 0;
}

static int dec_record(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd, const kb_vk_bind *in,
                      const kb_vk_bind *out, const kb_vk_bind *scratch, char *err, size_t errlen)
{
    dec_plan pl;
    if (dec_make_plan(env->vk, c, &pl, err, errlen) != 0)
        return -1;
    if (!pl.p2) {
        snprintf(err, errlen, "KB_VK_ATTN_DECODE=persistent has no recording form (suites only)");
        return -1;
    }
    if (!scratch || scratch->range < pl.scratch) {
        snprintf(err, errlen, "decode attention needs %llu bytes of scratch",
                 (unsigned long long)pl.scratch);
        return -1;
    }
    const uint64_t al = kb_vk_get_limits(env->vk)->storage_align;
    const kb_vk_bind po = {scratch->buf, scratch->offset, pl.pobytes};
    const kb_vk_bind pm = {scratch->buf, scratch->offset + (pl.pobytes + al - 1) / al * al,
                           pl.pmbytes};
    return dec_record_plan(&pl, cmd, &in[AT_Q], &in[AT_K], &in[AT_V], &out[AT_O], &po, &pm, err,
                           errlen);
}

/* ---- prefill ---- */

typedef struct pre_tile {
    uint32_t bq, rq, bk;
} pre_tile;

/* Preferred first: more work per barrier and per shared-memory load. */
static const pre_tile PRE_TILES[] = {{64, 4, 32}, {32, 2, 32}, {64, 4, 16}, {32, 2, 16},
                                     {16, 1, 32}, {16, 1, 16}, {16, 1, 8},  {8, 1, 8}};

/* Q, K (rows padded by one vec4), V as f32, scores (rows padded by 4). */
static uint64_t pre_shared(const pre_tile *t, uint32_t D)
{
    return (uint64_t)t->bq * D * 4 + (uint64_t)t->bk * (D + 4) * 4 + (uint64_t)t->bk * D * 4 +
           (uint64_t)t->bq * (t->bk + 4) * 4;
}

/* KB_VK_ATTN_TILE=BQ,RQ,BK (for tests and tuning) replaces the list with that one tile. */
static const pre_tile *pre_choose(const kb_vk_limits *L, uint32_t D, pre_tile *forced)
{
    const char *e = getenv("KB_VK_ATTN_TILE");
    const pre_tile *list = PRE_TILES;
    size_t n = sizeof PRE_TILES / sizeof PRE_TILES[0];
    if (e && sscanf(e, "%u,%u,%u", &forced->bq, &forced->rq, &forced->bk) == 3) {
        if (forced->rq == 0 || forced->bq % forced->rq != 0 || forced->bk % 8 != 0 ||
            forced->bk == 0 || (8 * forced->bq / forced->rq) % 8 != 0)
            return NULL;
        list = forced;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const pre_tile *t = &list[i];
        const uint32_t wg = 8 * t->bq / t->rq;
        if (t->rq * D / 8 > 32) /* accumulator registers per thread */
            continue;
        if (wg > L->max_wg_invocations || wg > L->max_wg_size_x)
            continue;
        if (pre_shared(t, D) <= L->max_shared_bytes)
            return t;
    }
    return NULL;
}

/* The prefill's pipeline, grid and push constants for a case. */
typedef struct pre_plan {
    kb_vk_pipe *p;
    pre_push pc;
    uint32_t nblk, heads;
} pre_plan;

static int pre_make_plan(struct kb_vk *vk, const kb_case *c, pre_plan *pl, char *err,
                         size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    kb_attn_shape sh;
    kb_attn_prefill_shape(c->p, &sh);
    const uint32_t D = (uint32_t)sh.D;
    pre_tile forced;
    const pre_tile *tile = pre_choose(L, D, &forced);
    if (!tile) {
        snprintf(err, errlen, "no prefill tile (of KB_VK_ATTN_TILE) fits %u bytes of shared "
                 "memory", L->max_shared_bytes);
        return -1;
    }
    const uint32_t nblk = (uint32_t)((sh.n_q + tile->bq - 1) / tile->bq);
    if (nblk > L->max_wg_count[0] || (uint64_t)sh.heads > L->max_wg_count[1]) {
        snprintf(err, errlen, "prefill grid %u x %lld exceeds the device's limits", nblk,
                 (long long)sh.heads);
        return -1;
    }
    const uint32_t spec[6] = {8 * tile->bq / tile->rq, D, tile->bq, tile->rq, tile->bk,
                              (uint32_t)sh.kv_f16};
    pl->p = kb_vk_pipe_get(vk, kb_spv_attn_prefill, sizeof kb_spv_attn_prefill, 4,
                           sizeof(pre_push), spec, 6, err, errlen);
    if (!pl->p)
        return -1;
    pl->pc = (pre_push){(uint32_t)sh.n_q,
                        (uint32_t)sh.p0,
                        (uint32_t)sh.heads,
                        (uint32_t)sh.kv_heads,
                        (uint32_t)(sh.heads / sh.kv_heads),
                        nblk,
                        log2e_scale(sh.D)};
    pl->nblk = nblk;
    pl->heads = (uint32_t)sh.heads;
    return 0;
}

static int pre_record_plan(const pre_plan *pl, kb_vk_cmd *cmd, const kb_vk_bind *in,
                           const kb_vk_bind *out, char *err, size_t errlen)
{
    const kb_vk_bind b[4] = {in[AT_Q], in[AT_K], in[AT_V], out[AT_O]};
    return kb_vk_cmd_dispatch(cmd, pl->p, b, &pl->pc, pl->nblk, pl->heads, 1, err, errlen);
}

static void *pre_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                         const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    pre_plan pl;
    if (pre_make_plan(vk, c, &pl, err, errlen) != 0)
        return NULL;
    at_state *s = upload(vk, in, out, err, errlen);
    if (!s)
        return NULL;
    if (!(s->cmd = kb_vk_cmd_create(vk, 1, err, errlen)))
        goto fail;
    const kb_vk_bind b[3] = {{s->q, 0, in[AT_Q].bytes},
                             {s->k, 0, in[AT_K].bytes},
                             {s->v, 0, in[AT_V].bytes}};
    const kb_vk_bind o = {s->o, 0, out[AT_O].bytes};
    if (pre_record_plan(&pl, s->cmd, b, &o, err, errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    at_release(s);
    return NULL;
}

static int pre_record(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd, const kb_vk_bind *in,
                      const kb_vk_bind *out, const kb_vk_bind *scratch, char *err, size_t errlen)
{
    (void)scratch;
    pre_plan pl;
    if (pre_make_plan(env->vk, c, &pl, err, errlen) != 0)
        return -1;
    return pre_record_plan(&pl, cmd, in, out, err, errlen);
}

/* ---- shared ---- */

static int at_run(void *state, const kb_env *env, double *gpu_seconds)
{
    at_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "attention vk: %s\n", err);
        return -1;
    }
    return 0;
}

static int at_finish(void *state, kb_tensor *out)
{
    at_state *s = state;
    char err[256];
    if (kb_vk_buf_read(s->o, 0, out[AT_O].data, s->obytes, err, sizeof err) != 0) {
        fprintf(stderr, "attention vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again (after timing): the device copy too, so the last check sees
 * only what the kernel writes in that run. */
static int at_reset(void *state, const kb_tensor *out)
{
    at_state *s = state;
    char err[256];
    if (kb_vk_buf_write(s->o, 0, out[AT_O].data, s->obytes, err, sizeof err) != 0) {
        fprintf(stderr, "vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

static const char *dec_available(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    if (!kb_vk_get_limits(env->vk)->subgroup_arith)
        return "device lacks subgroup arithmetic in compute shaders";
    return NULL;
}

static const char *pre_available(const kb_env *env)
{
    return env->vk ? NULL : "no Vulkan device";
}

const kb_impl kb_impl_attn_decode_vk = {
    .family = "attn_decode",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = dec_available,
    .prepare = dec_prepare,
    .run = at_run,
    .finish = at_finish,
    .reset = at_reset,
    .release = at_release,
    .rec_scratch = dec_rec_scratch,
    .record = dec_record,
};

const kb_impl kb_impl_attn_prefill_vk = {
    .family = "attn_prefill",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = pre_available,
    .prepare = pre_prepare,
    .run = at_run,
    .finish = at_finish,
    .reset = at_reset,
    .release = at_release,
    .record = pre_record,
};
