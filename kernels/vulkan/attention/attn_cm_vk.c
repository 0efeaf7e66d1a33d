/* Vulkan attention on cooperative matrices: attn_cm.glsl (see its comment) for attn_prefill, and
 * for attn_decode with split-KV records merged by attn_decode_combine.comp, as the scalar "vk"
 * decode does. Two implementations of each family from the one source, with the same host
 * code, tiles and tolerance:
 *   "vk_cm"      GL_NV_cooperative_matrix (attn_cm.coopmat.comp): built where glslang compiles
 *                it (KB_HAVE_COOPMAT_NV), run on devices with VK_NV_cooperative_matrix
 *                f16 16x16x16 -> f32 (kb_vk_limits.coopmat_nv);
 *   "vk_cm_khr"  GL_KHR_cooperative_matrix (attn_cm_khr.coopmat_khr.comp): built where glslang
 *                compiles it and the Vulkan headers know it (KB_HAVE_COOPMAT_KHR: glslang 15,
 *                scripts/install-deps.sh), run on devices offering VK_KHR_cooperative_matrix
 *                f16 16x16x16 -> f32 at subgroup scope (kb_vk_limits.coopmat_khr): tensor
 *                cores on GPUs without the NV extension.
 * Tuning: KB_VK_CM_TILE=NR,BK[,PREFETCH[,QSHARED]] (subgroups per workgroup, keys per subgroup
 * and tile, next tile into registers, Q from shared memory) replaces the choice;
 * KB_VK_ATTN_SPLITS=N sets the decode's number of key ranges; KB_VK_CM_RESCALE=X sets the
 * shader's lazy-rescale threshold TH (log2 units, default 8; tests use 0, which rescales on
 * every rise of a row's max, to exercise that path). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn_common.h"
#include "attn_vk_env.h"
#include "vk.h"

#if defined(KB_HAVE_COOPMAT_NV) || defined(KB_HAVE_COOPMAT_KHR)
#define CM_ANY 1
#endif

#ifdef CM_ANY
#include <math.h>

#include "attn_decode_combine.spv.h"
#ifdef KB_HAVE_COOPMAT_NV
#include "attn_cm.spv.h"
#endif
#ifdef KB_HAVE_COOPMAT_KHR
#include "attn_cm_khr.spv.h"
#endif

/* Decode workgroups to aim for (kv heads x row blocks x splits): about one per SM of an
 * H100 (132). Few long workgroups beat many short ones there, T = 32768: Llama-3-8B heads,
 * tile {4,16,1,1}: 69 us with 128 (16 splits), 78 us with 256; Qwen3.5 (2 kv x 256), tile
 * {2,16,0,1}: 83 us with 128 (64 splits), 109 us with 64, 106 us with 256, 148 us with 512. */
#define CM_DEC_TARGET_WG 128

typedef struct cm_push {
    uint32_t n_q, p0, T, H, hkv, G, nrows, nblk, nsplit, split_len;
    float scale;
} cm_push;

typedef struct cm_state {
    kb_vk_buf *q, *k, *v, *o, *part_o, *part_ml;
    kb_vk_cmd *cmd;
    uint64_t obytes; /* payload + guard */
} cm_state;

typedef struct cm_tile {
    uint32_t nr, bk, prefetch, qshared;
} cm_tile;

static void cm_release(void *state)
{
    cm_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    kb_vk_buf_destroy(s->q);
    kb_vk_buf_destroy(s->k);
    kb_vk_buf_destroy(s->v);
    kb_vk_buf_destroy(s->o);
    kb_vk_buf_destroy(s->part_o);
    kb_vk_buf_destroy(s->part_ml);
    free(s);
}

static uint32_t cm_tk(const cm_tile *t, int decode) { return decode ? t->nr * t->bk : t->bk; }

/* Bytes of shared memory attn_cm.coopmat.comp declares. */
static uint64_t cm_shared(const cm_tile *t, int decode, uint32_t D, uint32_t sgs)
{
    const uint64_t lpr = sgs >= 16 ? sgs / 16 : 1, nq = t->qshared ? (decode ? 1 : t->nr) : 0;
    return 2ull * cm_tk(t, decode) * (D + 8) * 2 +
           (uint64_t)t->nr * 16 * ((t->bk + 4 * lpr) * 4 + (t->bk + 8) * 2 + 4) +
           (nq ? nq * 16 * (D + 8) * 2 : 16);
}

/* Preferred first, as measured on the H100 (n_q = T = 4096 prefill: 1.31 ms with {4,16,1},
 * 1.56 ms with {4,32,1}, 1.87 ms with {4,32,0}, 1.93 ms with Q in shared memory; decode
 * T = 32768, 128 workgroups: 69 us with {4,16,1,1}, 82 us with {2,16,1,1}). Prefill: row
 * blocks share each staged K/V tile, the next tile prefetched into registers; decode: its
 * subgroups share the rows (Q read once into shared memory) and split each tile's keys.
 * D = 256 has twice the accumulators and Q fragments: no prefetch, fewer keys per subgroup,
 * and for decode (one Q block per workgroup) Q in shared memory (H100: 255 registers and
 * spills otherwise). */
static const cm_tile CM_PRE[] = {
    {4, 16, 1, 0}, {4, 32, 1, 0}, {2, 16, 1, 0}, {2, 16, 0, 0}, {1, 16, 0, 0}};
static const cm_tile CM_PRE_256[] = {{4, 16, 0, 0}, {2, 16, 0, 0}, {1, 16, 0, 0}};
static const cm_tile CM_DEC[] = {
    {4, 16, 1, 1}, {2, 16, 1, 1}, {2, 16, 1, 0}, {2, 16, 0, 0}, {1, 16, 0, 0}};
static const cm_tile CM_DEC_256[] = {{2, 16, 0, 1}, {1, 16, 0, 1}, {1, 16, 0, 0}};

/* KB_VK_CM_TILE=NR,BK[,PREFETCH[,QSHARED]] replaces the list with that tile. */
static int cm_choose(const kb_vk_limits *L, uint32_t D, int decode, cm_tile *t, char *err,
                     size_t errlen)
{
    const char *e = getenv("KB_VK_CM_TILE");
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
    const cm_tile *list =
        decode ? (D > 128 ? CM_DEC_256 : CM_DEC) : (D > 128 ? CM_PRE_256 : CM_PRE);
    size_t n = decode ? (D > 128 ? N_OF(CM_DEC_256) : N_OF(CM_DEC))
                      : (D > 128 ? N_OF(CM_PRE_256) : N_OF(CM_PRE));
    cm_tile forced;
    if (e) {
        forced.prefetch = forced.qshared = 0;
        if (sscanf(e, "%u,%u,%u,%u", &forced.nr, &forced.bk, &forced.prefetch,
                   &forced.qshared) < 2 ||
            forced.nr == 0 || forced.nr > 16 || forced.bk == 0 || forced.bk % 16 != 0 ||
            forced.bk > 128 || forced.prefetch > 1 || forced.qshared > 1) {
            snprintf(err, errlen, "KB_VK_CM_TILE=%s: want NR,BK[,PREFETCH[,QSHARED]] (NR 1..16, "
                     "BK a multiple of 16 up to 128, PREFETCH and QSHARED 0 or 1)", e);
            return -1;
        }
        list = &forced;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const uint32_t wg = list[i].nr * L->subgroup_size;
        if (cm_shared(&list[i], decode, D, L->subgroup_size) <= L->max_shared_bytes &&
            wg <= L->max_wg_invocations && wg <= L->max_wg_size_x) {
            *t = list[i];
            return 0;
        }
    }
    snprintf(err, errlen, "no cooperative-matrix tile fits %u bytes of shared memory",
             L->max_shared_bytes);
    return -1;
}

/* Q, O (with guard) as they are; K and V with a tile (tk rows) of zeros after the last
 * position, since the shader stages whole tiles (zeros: 0 * V stays 0 where p = 0). */
static cm_state *cm_upload(struct kb_vk *vk, const kb_attn_shape *sh, uint32_t tk,
                           const kb_tensor *in, const kb_tensor *out, char *err, size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint64_t pad = (uint64_t)tk * sh->kv_heads * sh->D * (sh->kv_f16 ? 2 : 4);
    for (int i = 0; i < 3; i++)
        if (in[i].bytes + (i == AT_Q ? 0 : pad) > L->max_storage_range) {
            snprintf(err, errlen, "%s (%llu bytes) exceeds the %llu-byte storage binding",
                     in[i].name, (unsigned long long)in[i].bytes,
                     (unsigned long long)L->max_storage_range);
            return NULL;
        }
    cm_state *s = calloc(1, sizeof *s);
    void *zeros = calloc(1, pad);
    if (!s || !zeros) {
        free(s);
        free(zeros);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->obytes = out[AT_O].bytes + KB_GUARD_BYTES;
    int ok = (s->q = kb_vk_buf_from(vk, in[AT_Q].data, in[AT_Q].bytes, err, errlen)) &&
             (s->o = kb_vk_buf_from(vk, out[AT_O].data, s->obytes, err, errlen)) &&
             (s->k = kb_vk_buf_create(vk, in[AT_K].bytes + pad, err, errlen)) &&
             (s->v = kb_vk_buf_create(vk, in[AT_V].bytes + pad, err, errlen)) &&
             kb_vk_buf_write(s->k, 0, in[AT_K].data, in[AT_K].bytes, err, errlen) == 0 &&
             kb_vk_buf_write(s->k, in[AT_K].bytes, zeros, pad, err, errlen) == 0 &&
             kb_vk_buf_write(s->v, 0, in[AT_V].data, in[AT_V].bytes, err, errlen) == 0 &&
             kb_vk_buf_write(s->v, in[AT_V].bytes, zeros, pad, err, errlen) == 0;
    free(zeros);
    if (!ok) {
        cm_release(s);
        return NULL;
    }
    return s;
}

/* Both families' plan for a case: the tile, grid, pipelines, split records (decode). Shared
 * by prepare (the suites) and the recording form (model runs). */
typedef struct cm_plan {
    kb_vk_pipe *p, *pc;
    cm_push push;
    uint32_t tk, groups, kv_heads, heads, D, ns;
    int decode;
    uint64_t pad;                       /* bytes of zero rows K and V need past T */
    uint64_t pobytes, pmbytes, scratch; /* decode records; scratch = both, aligned */
} cm_plan;

/* The shader of either extension (khr: GL_KHR_cooperative_matrix), NULL where not built. */
static const uint32_t *cm_spv(int khr, size_t *bytes)
{
#ifdef KB_HAVE_COOPMAT_KHR
    if (khr) {
        *bytes = sizeof kb_spv_attn_cm_khr;
        return kb_spv_attn_cm_khr;
    }
#endif
#ifdef KB_HAVE_COOPMAT_NV
    if (!khr) {
        *bytes = sizeof kb_spv_attn_cm;
        return kb_spv_attn_cm;
    }
#endif
    *bytes = 0;
    return NULL;
}

static int cm_make_plan(struct kb_vk *vk, const kb_attn_shape *sh, int decode, int khr,
                        cm_plan *pl, char *err, size_t errlen)
{
    size_t spv_bytes;
    const uint32_t *spv = cm_spv(khr, &spv_bytes);
    if (!spv) {
        snprintf(err, errlen, "this build has no %s shader", khr ? "KHR" : "NV");
        return -1;
    }
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint32_t D = (uint32_t)sh->D, G = (uint32_t)(sh->heads / sh->kv_heads);
    cm_tile tile;
    if (cm_choose(L, D, decode, &tile, err, errlen) != 0)
        return -1;
    const uint32_t tk = cm_tk(&tile, decode);
    const uint64_t nrows = (uint64_t)sh->n_q * G, nblk = (nrows + 15) / 16;
    const uint64_t tiles = ((uint64_t)sh->T + tk - 1) / tk;
    uint64_t nsplit = 1, split_len = tiles * tk;
    if (decode) {
        const uint64_t per = sh->kv_heads * nblk; /* workgroups per split */
        uint64_t want = (CM_DEC_TARGET_WG + per - 1) / per;
        if (kb_vk_attn_env_splits(&want, err, errlen) != 0)
            return -1;
        want = want < 1 ? 1 : want > tiles ? tiles : want;
        split_len = (tiles + want - 1) / want * tk;
        nsplit = ((uint64_t)sh->T + split_len - 1) / split_len;
    }
    /* decode: a workgroup per (row block, split); prefill: NR row blocks per workgroup */
    const uint64_t groups = decode ? nblk * nsplit : (nblk + tile.nr - 1) / tile.nr;
    if (groups > L->max_wg_count[0] || (uint64_t)sh->kv_heads > L->max_wg_count[1] ||
        (uint64_t)sh->T * sh->kv_heads * D + (uint64_t)tk * sh->kv_heads * D > UINT32_MAX) {
        snprintf(err, errlen, "grid %llu x %lld (or the cache's element count) exceeds the "
                 "device's limits", (unsigned long long)groups, (long long)sh->kv_heads);
        return -1;
    }
    float th = 8.0f;
    const char *eth = getenv("KB_VK_CM_RESCALE");
    if (eth) {
        char *end;
        th = strtof(eth, &end);
        if (end == eth || *end || !(th >= 0.0f && th <= 14.0f)) {
            snprintf(err, errlen, "KB_VK_CM_RESCALE=%s: want a number from 0 to 14 (p <= 2^TH "
                     "must fit f16)", eth);
            return -1;
        }
    }
    uint32_t th_bits;
    memcpy(&th_bits, &th, sizeof th_bits);
    const uint32_t spec[10] = {tile.nr * L->subgroup_size, tile.nr, L->subgroup_size, D,
                               tile.bk, (uint32_t)sh->kv_f16, (uint32_t)decode, th_bits,
                               tile.prefetch != 0, tile.qshared != 0};
    pl->p = kb_vk_pipe_get(vk, spv, spv_bytes, 5, sizeof(cm_push), spec, 10, err, errlen);
    if (!pl->p)
        return -1;
    pl->pc = NULL;
    if (decode) {
        const uint32_t spec2[1] = {D};
        pl->pc = kb_vk_pipe_get(vk, kb_spv_attn_decode_combine,
                                sizeof kb_spv_attn_decode_combine, 3, sizeof(uint32_t), spec2, 1,
                                err, errlen);
        if (!pl->pc)
            return -1;
    }
    const uint64_t nrec = (uint64_t)sh->heads * nsplit * tile.nr; /* decode: per subgroup */
    pl->pobytes = decode ? nrec * D * 4 : 0;
    pl->pmbytes = decode ? nrec * 8 : 0;
    pl->scratch = decode ? (pl->pobytes + L->storage_align - 1) / L->storage_align *
                                   L->storage_align + pl->pmbytes
                         : 0;
    pl->pad = (uint64_t)tk * sh->kv_heads * sh->D * (sh->kv_f16 ? 2 : 4);
    pl->push = (cm_push){(uint32_t)sh->n_q, (uint32_t)sh->p0, (uint32_t)sh->T,
                         (uint32_t)sh->heads, (uint32_t)sh->kv_heads, G, (uint32_t)nrows,
                         (uint32_t)nblk, (uint32_t)nsplit, (uint32_t)split_len,
                         (float)(1.4426950408889634 / sqrt((double)D))};
    pl->tk = tk;
    pl->groups = (uint32_t)groups;
    pl->kv_heads = (uint32_t)sh->kv_heads;
    pl->heads = (uint32_t)sh->heads;
    pl->D = D;
    pl->ns = (uint32_t)(nsplit * tile.nr);
    pl->decode = decode;
    return 0;
}

/* q, k and v (ranges reaching pad bytes past T), o; decode records in po, pm. */
static int cm_record_plan(const cm_plan *pl, kb_vk_cmd *cmd, const kb_vk_bind *q,
                          const kb_vk_bind *k, const kb_vk_bind *v, const kb_vk_bind *o,
                          const kb_vk_bind *po, const kb_vk_bind *pm, char *err, size_t errlen)
{
    const kb_vk_bind b[5] = {*q, *k, *v, pl->decode ? *po : *o, pl->decode ? *pm : *o};
    if (kb_vk_cmd_dispatch(cmd, pl->p, b, &pl->push, pl->groups, pl->kv_heads, 1, err, errlen) !=
        0)
        return -1;
    if (!pl->decode)
        return 0;
    const kb_vk_bind b2[3] = {*po, *pm, *o};
    kb_vk_cmd_barrier(cmd);
    return kb_vk_cmd_dispatch(cmd, pl->pc, b2, &pl->ns, pl->D / 32, pl->heads, 1, err, errlen);
}

static void *cm_prepare(const kb_env *env, const kb_attn_shape *sh, int decode, int khr,
                        const kb_tensor *in, const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    cm_plan pl;
    if (cm_make_plan(vk, sh, decode, khr, &pl, err, errlen) != 0)
        return NULL;
    cm_state *s = cm_upload(vk, sh, pl.tk, in, out, err, errlen);
    if (!s)
        return NULL;
    if (decode && pl.pobytes > kb_vk_get_limits(vk)->max_storage_range) {
        snprintf(err, errlen, "split records (%llu bytes) exceed the storage binding",
                 (unsigned long long)pl.pobytes);
        goto fail;
    }
    if ((decode && (!(s->part_o = kb_vk_buf_create(vk, pl.pobytes, err, errlen)) ||
                    !(s->part_ml = kb_vk_buf_create(vk, pl.pmbytes, err, errlen)))) ||
        !(s->cmd = kb_vk_cmd_create(vk, 2, err, errlen)))
        goto fail;
    const kb_vk_bind q = {s->q, 0, in[AT_Q].bytes}, k = {s->k, 0, 0}, v = {s->v, 0, 0},
                     o = {s->o, 0, out[AT_O].bytes}, po = {s->part_o, 0, pl.pobytes},
                     pm = {s->part_ml, 0, pl.pmbytes};
    if (cm_record_plan(&pl, s->cmd, &q, &k, &v, &o, &po, &pm, err, errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    cm_release(s);
    return NULL;
}

static void cm_shape(const kb_case *c, kb_attn_shape *sh)
{
    if (strcmp(c->fam->name, "attn_decode") == 0)
        kb_attn_decode_shape(c->p, sh);
    else
        kb_attn_prefill_shape(c->p, sh);
}

static uint64_t cm_rec_scratch(const kb_env *env, const kb_case *c, int khr)
{
    kb_attn_shape sh;
    cm_plan pl;
    char err[256];
    cm_shape(c, &sh);
    return cm_make_plan(env->vk, &sh, strcmp(c->fam->name, "attn_decode") == 0, khr,
                        &pl, err, sizeof err) == 0 ? pl.scratch : 0;
}

static uint64_t cm_rec_pad(const kb_env *env, const kb_case *c, int input, int khr)
{
    kb_attn_shape sh;
    cm_plan pl;
    char err[256];
    cm_shape(c, &sh);
    if (input != AT_K && input != AT_V)
        return 0;
    return cm_make_plan(env->vk, &sh, strcmp(c->fam->name, "attn_decode") == 0, khr, &pl, err,
                        sizeof err) == 0 ? pl.pad : 0;
}

static int cm_record(const kb_env *env, const kb_case *c, int khr, kb_vk_cmd *cmd,
                     const kb_vk_bind *in, const kb_vk_bind *out, const kb_vk_bind *scratch,
                     char *err, size_t errlen)
{
    kb_attn_shape sh;
    cm_plan pl;
    cm_shape(c, &sh);
    const int decode = strcmp(c->fam->name, "attn_decode") == 0;
    if (cm_make_plan(env->vk, &sh, decode, khr, &pl, err, errlen) != 0)
        return -1;
    if (decode && (!scratch || scratch->range < pl.scratch)) {
        snprintf(err, errlen, "decode attention needs %llu bytes of scratch",
                 (unsigned long long)pl.scratch);
        return -1;
    }
    /* the caller keeps pl.pad zero bytes after K and V (rec_pad): whole tiles are staged */
    const kb_vk_bind k = {in[AT_K].buf, in[AT_K].offset, in[AT_K].range + pl.pad};
    const kb_vk_bind v = {in[AT_V].buf, in[AT_V].offset, in[AT_V].range + pl.pad};
    const uint64_t al = kb_vk_get_limits(env->vk)->storage_align;
    kb_vk_bind po = {0}, pm = {0};
    if (decode) {
        po = (kb_vk_bind){scratch->buf, scratch->offset, pl.pobytes};
        pm = (kb_vk_bind){scratch->buf, scratch->offset + (pl.pobytes + al - 1) / al * al,
                          pl.pmbytes};
    }
    return cm_record_plan(&pl, cmd, &in[AT_Q], &k, &v, &out[AT_O], &po, &pm, err, errlen);
}

static int cm_run(void *state, const kb_env *env, double *gpu_seconds)
{
    cm_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "attention vk_cm: %s\n", err);
        return -1;
    }
    return 0;
}

static int cm_finish(void *state, kb_tensor *out)
{
    cm_state *s = state;
    char err[256];
    if (kb_vk_buf_read(s->o, 0, out[AT_O].data, s->obytes, err, sizeof err) != 0) {
        fprintf(stderr, "attention vk_cm: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again (after timing): the device copy too, so the last check sees
 * only what the kernel writes in that run. */
static int cm_reset(void *state, const kb_tensor *out)
{
    cm_state *s = state;
    char err[256];
    if (kb_vk_buf_write(s->o, 0, out[AT_O].data, s->obytes, err, sizeof err) != 0) {
        fprintf(stderr, "vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

/* What both need of the device besides the extension. */
static const char *cm_fits(const kb_env *env)
{
    const kb_vk_limits *L = kb_vk_get_limits(env->vk);
    if (L->subgroup_size < 8 || L->subgroup_size > 64 || L->subgroup_min != L->subgroup_size)
        return "needs a fixed subgroup size of 8 to 64";
    return NULL;
}
#else
#define cm_run NULL
#define cm_finish NULL
#define cm_reset NULL
#define cm_release NULL
#endif /* CM_ANY */

/* One implementation per extension: its prepare and recording functions (NULL where not
 * built) and why it is unavailable (no device, no extension or shape, not built). */
#define CM_VARIANT(X, KHR, HAVE, NAME)                                                         \
    static void *X##_dec_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,   \
                                 const kb_tensor *out, char *err, size_t errlen)             \
    {                                                                                        \
        kb_attn_shape sh;                                                                    \
        kb_attn_decode_shape(c->p, &sh);                                                     \
        return cm_prepare(env, &sh, 1, KHR, in, out, err, errlen);                           \
    }                                                                                        \
    static void *X##_pre_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,   \
                                 const kb_tensor *out, char *err, size_t errlen)             \
    {                                                                                        \
        kb_attn_shape sh;                                                                    \
        kb_attn_prefill_shape(c->p, &sh);                                                    \
        return cm_prepare(env, &sh, 0, KHR, in, out, err, errlen);                           \
    }                                                                                        \
    static uint64_t X##_rec_scratch(const kb_env *env, const kb_case *c)                     \
    {                                                                                        \
        return cm_rec_scratch(env, c, KHR);                                                  \
    }                                                                                        \
    static uint64_t X##_rec_pad(const kb_env *env, const kb_case *c, int input)              \
    {                                                                                        \
        return cm_rec_pad(env, c, input, KHR);                                               \
    }                                                                                        \
    static int X##_record(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,               \
                          const kb_vk_bind *in, const kb_vk_bind *out,                       \
                          const kb_vk_bind *scratch, char *err, size_t errlen)               \
    {                                                                                        \
        return cm_record(env, c, KHR, cmd, in, out, scratch, err, errlen);                   \
    }                                                                                        \
    static const char *X##_available(const kb_env *env)                                     \
    {                                                                                        \
        if (!env->vk)                                                                        \
            return "no Vulkan device";                                                       \
        if (!kb_vk_get_limits(env->vk)->HAVE)                                                \
            return "device lacks " NAME " (f16 16x16x16 -> f32) or what it needs";           \
        return cm_fits(env);                                                                 \
    }

#ifdef KB_HAVE_COOPMAT_NV
CM_VARIANT(cm_nv, 0, coopmat_nv, "VK_NV_cooperative_matrix")
#define CM_NV(f) f
#else
static const char *cm_nv_available(const kb_env *env)
{
    (void)env;
    return "not built: glslang lacks GL_NV_cooperative_matrix";
}
#define CM_NV(f) NULL
#endif

#ifdef KB_HAVE_COOPMAT_KHR
CM_VARIANT(cm_khr, 1, coopmat_khr, "VK_KHR_cooperative_matrix at subgroup scope")
#define CM_KHR(f) f
#else
static const char *cm_khr_available(const kb_env *env)
{
    (void)env;
    return "not built: needs glslang 15 and Vulkan headers with GL/VK_KHR_cooperative_matrix "
           "(scripts/install-deps.sh fetches them; then reconfigure)";
}
#define CM_KHR(f) NULL
#endif

#define CM_TOL 2e-5
#define CM_TOL_COND 5e-3 /* f16 Q and P: 2^-11 of each score's and weight's magnitude, summed */
#define CM_TOL_WHY "Q, P (and an f32 cache) rounded to f16 for the tensor-core products"

#define CM_IMPL(FAM, NAME, AVAIL, V, KIND)                                                     \
    {                                                                                        \
        .family = FAM, .name = NAME, .backend = KB_BACKEND_VULKAN, .available = AVAIL,      \
        .tol_nmse = CM_TOL, .tol_cond = CM_TOL_COND, .tol_why = CM_TOL_WHY,                 \
        .prepare = V(KIND##_prepare), .run = cm_run, .finish = cm_finish, .reset = cm_reset, \
        .release = cm_release, .rec_scratch = V(KIND##_rec_scratch),                         \
        .rec_pad = V(KIND##_rec_pad), .record = V(KIND##_record),                            \
    }

/* the recording functions are per extension, not per family: cm_nv_dec_rec_scratch and the
 * like name the same function */
#define cm_nv_dec_rec_scratch cm_nv_rec_scratch
#define cm_nv_pre_rec_scratch cm_nv_rec_scratch
#define cm_nv_dec_rec_pad cm_nv_rec_pad
#define cm_nv_pre_rec_pad cm_nv_rec_pad
#define cm_nv_dec_record cm_nv_record
#define cm_nv_pre_record cm_nv_record
#define cm_khr_dec_rec_scratch cm_khr_rec_scratch
#define cm_khr_pre_rec_scratch cm_khr_rec_scratch
#define cm_khr_dec_rec_pad cm_khr_rec_pad
#define cm_khr_pre_rec_pad cm_khr_rec_pad
#define cm_khr_dec_record cm_khr_record
#define cm_khr_pre_record cm_khr_record

const kb_impl kb_impl_attn_decode_vk_cm =
    CM_IMPL("attn_decode", "vk_cm", cm_nv_available, CM_NV, cm_nv_dec);
const kb_impl kb_impl_attn_prefill_vk_cm =
    CM_IMPL("attn_prefill", "vk_cm", cm_nv_available, CM_NV, cm_nv_pre);
const kb_impl kb_impl_attn_decode_vk_cm_khr =
    CM_IMPL("attn_decode", "vk_cm_khr", cm_khr_available, CM_KHR, cm_khr_dec);
const kb_impl kb_impl_attn_prefill_vk_cm_khr =
    CM_IMPL("attn_prefill", "vk_cm_khr", cm_khr_available, CM_KHR, cm_khr_pre);
