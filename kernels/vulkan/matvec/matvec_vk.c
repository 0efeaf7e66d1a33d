/* Vulkan matvec for GGML Q4_0 and Q8_0 (matvec_q4_0.comp, matvec_q8_0.comp).
 * prepare (untimed) repacks the rows into the layout of matvec_common.glsl (16-byte units
 * whose 4-weight groups line up with coalesced x loads; the f16 scales apart): the same 18 or
 * 34 bytes per 32 weights, except the zero padding of a row's last chunk when cols is not a
 * multiple of 1024 (Q4_0) or 512 (Q8_0). Rows are split into chunks that each fit one
 * storage-buffer binding (lavapipe: 128 MiB), one dispatch per chunk, so an LM head of any
 * size the device can allocate runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_formats.h"
#include "matvec_common.h"
#include "matvec_q4_0.spv.h"
#include "matvec_q8_0.spv.h"
#include "vk.h"

typedef struct mv_format {
    const uint32_t *spv;
    size_t spv_bytes;
    uint32_t block_bytes; /* GGML block: 18 or 34 */
    uint32_t groups;      /* groups of 4 weights per 16-byte unit: Q4_0 8, Q8_0 4 */
    void (*codes)(const uint8_t *blk, int part, int k, uint8_t *unit);
} mv_format;

/* Codes of weights 4*part .. 4*part+3 of a block, into group k of a unit. */
static void codes_q4(const uint8_t *blk, int part, int k, uint8_t *unit)
{
    const uint8_t *qs = blk + 2;
    for (int i = 0; i < 4; i++) {
        int j = 4 * part + i;
        uint8_t code = j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
        unit[(k >> 1) * 4 + i] |= (uint8_t)(k & 1 ? code << 4 : code);
    }
}

static void codes_q8(const uint8_t *blk, int part, int k, uint8_t *unit)
{
    memcpy(unit + 4 * k, blk + 2 + 4 * part, 4);
}

static const mv_format Q4 = {kb_spv_matvec_q4_0, sizeof kb_spv_matvec_q4_0, 18, 8, codes_q4};
static const mv_format Q8 = {kb_spv_matvec_q8_0, sizeof kb_spv_matvec_q8_0, 34, 4, codes_q8};

typedef struct mv_push {
    uint32_t rows, nv, nchunk, row0, ystride;
} mv_push;

typedef struct mv_state {
    kb_vk_buf *w, *x, *y;
    kb_vk_cmd *cmd;
    uint64_t ybytes; /* payload + guard */
} mv_state;

/* A row's repacked size: chunks of 32 units (16 bytes of codes each) and their scales. */
typedef struct mv_geom {
    int64_t nb, nv, nchunk;
    uint64_t qrow, drow; /* bytes per row of codes, of scales */
} mv_geom;

static mv_geom geometry(const mv_format *f, int64_t cols)
{
    mv_geom g;
    g.nb = cols / QK;
    g.nv = cols / 4;
    g.nchunk = (g.nv + 32 * f->groups - 1) / (32 * f->groups);
    g.qrow = (uint64_t)g.nchunk * 32 * 16;
    g.drow = (uint64_t)g.nchunk * 4 * 2 * f->groups;
    return g;
}

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* 128 threads (4 subgroups of 32). RPS rows per subgroup pass: 4 reuses each x load 4 times;
 * 2 when the matrix is small and tokens few, for more subgroups in flight (H200, T=1: 4096
 * rows 15-30% faster with 2, 14336 rows equal or 5% slower, 128256 rows 15% slower). One row
 * group per subgroup unless the grid would pass the device's limit (then they loop). */
static void choose_shape(const kb_vk_limits *L, int64_t rows, int64_t tokens, uint32_t *wg,
                         uint32_t *rps)
{
    uint32_t w = 128;
    if (w > L->max_wg_invocations)
        w = L->max_wg_invocations;
    if (w > L->max_wg_size_x)
        w = L->max_wg_size_x;
    if (w < L->subgroup_size)
        w = L->subgroup_size;
    *wg = w;
    *rps = rows < 8192 && tokens <= 4 ? 2 : 4;
}

static void mv_release(void *state)
{
    mv_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    kb_vk_buf_destroy(s->w);
    kb_vk_buf_destroy(s->x);
    kb_vk_buf_destroy(s->y);
    free(s);
}

/* Repacks n GGML rows into codes qd[n][qrow] and scales dd[n][drow] (zeroed by the caller). */
static void repack_rows(const mv_format *f, const mv_geom *g, const uint8_t *src, int64_t n,
                        uint8_t *qd, uint8_t *dd)
{
    const int G = (int)f->groups;
    const size_t bb = f->block_bytes;
    for (int64_t r = 0; r < n; r++, src += (size_t)g->nb * bb, qd += g->qrow, dd += g->drow)
        for (int64_t c = 0; c < g->nchunk; c++) {
            for (int l = 0; l < 32; l++)
                for (int k = 0; k < G; k++) {
                    int64_t V = 32 * G * c + 32 * k + l; /* x vec4 index: weights 4V.. */
                    if (V < g->nv)
                        f->codes(src + (V / 8) * bb, (int)(V % 8), k, qd + (c * 32 + l) * 16);
                }
            for (int lg = 0; lg < 4; lg++)
                for (int k = 0; k < G; k++) {
                    int64_t b = 4 * G * c + 4 * k + lg; /* the block lane group lg meets at k */
                    if (b < g->nb)
                        memcpy(dd + ((c * 4 + lg) * G + k) * 2, src + b * bb, 2);
                }
        }
}

/* Repacks rows [r0, r0+n) into codes at qoff and scales at doff of the weight buffer, a few
 * MiB at a time (bounded host scratch even for an LM head). */
static int upload_rows(mv_state *s, const mv_format *f, const mv_geom *g, const uint8_t *w,
                       int64_t r0, int64_t n, uint64_t qoff, uint64_t doff, char *err,
                       size_t errlen)
{
    const uint64_t per_row = g->qrow + g->drow;
    int64_t step = (int64_t)((64u << 20) / per_row);
    step = step < 1 ? 1 : step > n ? n : step;
    uint8_t *tmp = malloc((size_t)step * per_row);
    if (!tmp) {
        snprintf(err, errlen, "out of host memory repacking weights");
        return -1;
    }
    int rc = 0;
    for (int64_t r = 0; r < n && rc == 0; r += step) {
        const int64_t m = n - r < step ? n - r : step;
        uint8_t *qd = tmp, *dd = tmp + (size_t)m * g->qrow;
        memset(tmp, 0, (size_t)m * per_row);
        repack_rows(f, g, w + (size_t)(r0 + r) * g->nb * f->block_bytes, m, qd, dd);
        rc = kb_vk_buf_write(s->w, qoff + (uint64_t)r * g->qrow, qd, (uint64_t)m * g->qrow, err,
                             errlen);
        if (rc == 0)
            rc = kb_vk_buf_write(s->w, doff + (uint64_t)r * g->drow, dd, (uint64_t)m * g->drow,
                                 err, errlen);
    }
    free(tmp);
    return rc;
}

/* Where a matrix's rows go on the device (one buffer, offsets from its start): chunks of rows
 * whose codes fit one binding, each chunk's codes then its scales, at storage_align. The same
 * plan serves prepare (the suites) and the recording form (model runs). */
typedef struct mv_plan {
    mv_geom g;
    int64_t rows, tokens, chunk;
    int nchunks;
    uint64_t align, total;
    uint32_t wg, rps;
} mv_plan;

static int mv_make_plan(const mv_format *f, const kb_vk_limits *L, const kb_case *c, mv_plan *pl,
                        char *err, size_t errlen)
{
    const int64_t rows = c->p[MV_ROWS], cols = c->p[MV_COLS], tokens = c->p[MV_TOKENS];
    pl->g = geometry(f, cols);
    pl->rows = rows;
    pl->tokens = tokens;
    choose_shape(L, rows, tokens, &pl->wg, &pl->rps);
    /* Chunk rows so that each chunk's codes and scales fit one binding. */
    pl->align = L->storage_align > 16 ? L->storage_align : 16;
    uint64_t cap = L->max_storage_range < (1ull << 31) ? L->max_storage_range : (1ull << 31);
    cap = cap / 16 * 16;
    int64_t chunk = (int64_t)(cap / pl->g.qrow);
    if (chunk > rows)
        chunk = rows;
    if (chunk < 1) {
        snprintf(err, errlen, "one row (%llu bytes of codes) exceeds the %llu-byte binding range",
                 (unsigned long long)pl->g.qrow, (unsigned long long)cap);
        return -1;
    }
    pl->chunk = chunk;
    pl->nchunks = (int)((rows + chunk - 1) / chunk);
    pl->total = 0;
    for (int k = 0; k < pl->nchunks; k++) {
        int64_t n = rows - k * chunk < chunk ? rows - k * chunk : chunk;
        pl->total += round_up((uint64_t)n * pl->g.qrow, pl->align) +
                     round_up((uint64_t)n * pl->g.drow, pl->align);
    }
    return 0;
}

/* Chunk k: its rows [*r0, *r0 + *n) and the offsets of its codes and scales. */
static void mv_chunk(const mv_plan *pl, int k, int64_t *r0, int64_t *n, uint64_t *qoff,
                     uint64_t *doff)
{
    uint64_t off = 0;
    for (int i = 0;; i++) {
        const int64_t s0 = i * pl->chunk, m = pl->rows - s0 < pl->chunk ? pl->rows - s0 : pl->chunk;
        const uint64_t q = off, d = off + round_up((uint64_t)m * pl->g.qrow, pl->align);
        if (i == k) {
            *r0 = s0;
            *n = m;
            *qoff = q;
            *doff = d;
            return;
        }
        off = d + round_up((uint64_t)m * pl->g.drow, pl->align);
    }
}

static int mv_upload_plan(kb_vk_buf *w, uint64_t base, const mv_format *f, const mv_plan *pl,
                          const uint8_t *src, char *err, size_t errlen)
{
    mv_state tmp = {.w = w};
    for (int k = 0; k < pl->nchunks; k++) {
        int64_t r0, n;
        uint64_t qoff, doff;
        mv_chunk(pl, k, &r0, &n, &qoff, &doff);
        if (upload_rows(&tmp, f, &pl->g, src, r0, n, base + qoff, base + doff, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* The dispatches of one matvec: w, x, y as bindings (w spanning the whole plan). */
static int mv_record_plan(const mv_format *f, struct kb_vk *vk, const mv_plan *pl, kb_vk_cmd *cmd,
                          const kb_vk_bind *w, const kb_vk_bind *x, const kb_vk_bind *y,
                          char *err, size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    uint32_t spec[4] = {pl->wg, pl->rps, (uint32_t)pl->tokens,
                        pl->g.nv % (32 * f->groups) != 0};
    kb_vk_pipe *pipe = kb_vk_pipe_get(vk, f->spv, f->spv_bytes, 4, sizeof(mv_push), spec, 4,
                                      err, errlen);
    if (!pipe)
        return -1;
    if (x->range > L->max_storage_range || y->range > L->max_storage_range) {
        snprintf(err, errlen, "x (%llu bytes) or y (%llu bytes) exceeds the %llu-byte binding",
                 (unsigned long long)x->range, (unsigned long long)y->range,
                 (unsigned long long)L->max_storage_range);
        return -1;
    }
    const uint32_t nsg = pl->wg / L->subgroup_size; /* subgroups per workgroup, as expected */
    for (int k = 0; k < pl->nchunks; k++) {
        int64_t r0, n;
        uint64_t qoff, doff;
        mv_chunk(pl, k, &r0, &n, &qoff, &doff);
        const uint64_t qlen = (uint64_t)n * pl->g.qrow, dlen = (uint64_t)n * pl->g.drow;
        kb_vk_bind b[4] = {{w->buf, w->offset + qoff, qlen}, {w->buf, w->offset + doff, dlen},
                           *x, *y};
        mv_push pc = {(uint32_t)n, (uint32_t)pl->g.nv, (uint32_t)pl->g.nchunk, (uint32_t)r0,
                      (uint32_t)pl->rows};
        uint64_t groups = ((uint64_t)n + pl->rps - 1) / pl->rps, wgs = (groups + nsg - 1) / nsg;
        if (wgs > L->max_wg_count[0])
            wgs = L->max_wg_count[0];
        if (kb_vk_cmd_dispatch(cmd, pipe, b, &pc, (uint32_t)wgs, 1, 1, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static void *mv_prepare(const mv_format *f, const kb_env *env, const kb_case *c,
                        const kb_tensor *in, const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    mv_plan pl;
    if (mv_make_plan(f, kb_vk_get_limits(vk), c, &pl, err, errlen) != 0)
        return NULL;
    const uint64_t xbytes = in[MV_X].bytes, ybytes = out[MV_Y].bytes;
    mv_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->ybytes = ybytes + KB_GUARD_BYTES;
    if (!(s->w = kb_vk_buf_create(vk, pl.total, err, errlen)) ||
        !(s->x = kb_vk_buf_from(vk, in[MV_X].data, xbytes, err, errlen)) ||
        !(s->y = kb_vk_buf_from(vk, out[MV_Y].data, s->ybytes, err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, pl.nchunks, err, errlen)))
        goto fail;
    const kb_vk_bind w = {s->w, 0, pl.total}, x = {s->x, 0, xbytes}, y = {s->y, 0, ybytes};
    if (mv_upload_plan(s->w, 0, f, &pl, in[MV_W].data, err, errlen) != 0 ||
        mv_record_plan(f, vk, &pl, s->cmd, &w, &x, &y, err, errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    mv_release(s);
    return NULL;
}

/* ---- recording form ---- */

static uint64_t mv_layout(const mv_format *f, const kb_env *env, const kb_case *c, int input)
{
    mv_plan pl;
    char err[16];
    if (input != MV_W || mv_make_plan(f, kb_vk_get_limits(env->vk), c, &pl, err, sizeof err))
        return 0;
    return pl.total;
}

static int mv_upload(const mv_format *f, const kb_env *env, const kb_case *c, int input,
                     const kb_tensor *in, const kb_vk_bind *dst, char *err, size_t errlen)
{
    mv_plan pl;
    if (input != MV_W || mv_make_plan(f, kb_vk_get_limits(env->vk), c, &pl, err, errlen) != 0)
        return -1;
    return mv_upload_plan(dst->buf, dst->offset, f, &pl, in[MV_W].data, err, errlen);
}

static int mv_record(const mv_format *f, const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,
                     const kb_vk_bind *in, const kb_vk_bind *out, char *err, size_t errlen)
{
    mv_plan pl;
    if (mv_make_plan(f, kb_vk_get_limits(env->vk), c, &pl, err, errlen) != 0)
        return -1;
    return mv_record_plan(f, env->vk, &pl, cmd, &in[MV_W], &in[MV_X], &out[MV_Y], err, errlen);
}

static int mv_run(void *state, const kb_env *env, double *gpu_seconds)
{
    mv_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "matvec vk: %s\n", err);
        return -1;
    }
    return 0;
}

static int mv_finish(void *state, kb_tensor *out)
{
    mv_state *s = state;
    char err[256];
    if (kb_vk_buf_read(s->y, 0, out[MV_Y].data, s->ybytes, err, sizeof err) != 0) {
        fprintf(stderr, "matvec vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again (after timing): the device copy too, so the last check sees
 * only what the kernel writes in that run. */
static int mv_reset(void *state, const kb_tensor *out)
{
    mv_state *s = state;
    char err[256];
    if (kb_vk_buf_write(s->y, 0, out[MV_Y].data, s->ybytes, err, sizeof err) != 0) {
        fprintf(stderr, "vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

static const char *mv_available(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    if (!kb_vk_get_limits(env->vk)->subgroup_arith)
        return "device lacks subgroup arithmetic in compute shaders";
    return NULL;
}

#define MV_REC(NAME, F)                                                                          \
    static uint64_t layout_##NAME(const kb_env *env, const kb_case *c, int input)                \
    {                                                                                            \
        return mv_layout(&F, env, c, input);                                                     \
    }                                                                                            \
    static int upload_##NAME(const kb_env *env, const kb_case *c, int input, const kb_tensor *in,\
                             const kb_vk_bind *dst, char *err, size_t errlen)                    \
    {                                                                                            \
        return mv_upload(&F, env, c, input, in, dst, err, errlen);                               \
    }                                                                                            \
    static int record_##NAME(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,                \
                             const kb_vk_bind *in, const kb_vk_bind *out,                        \
                             const kb_vk_bind *scratch, char *err, size_t errlen)                \
    {                                                                                            \
        (void)scratch;                                                                           \
        return mv_record(&F, env, c, cmd, in, out, err, errlen);                                 \
    }
MV_REC(q4, Q4)
MV_REC(q8, Q8)

static void *prepare_q4(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    return mv_prepare(&Q4, env, c, in, out, err, errlen);
}

static void *prepare_q8(const kb_env *env, const kb_case *c, const kb_tensor *in,
                        const kb_tensor *out, char *err, size_t errlen)
{
    return mv_prepare(&Q8, env, c, in, out, err, errlen);
}

const kb_impl kb_impl_matvec_q4_0_vk = {
    .family = "matvec_q4_0",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = mv_available,
    .prepare = prepare_q4,
    .run = mv_run,
    .finish = mv_finish,
    .reset = mv_reset,
    .release = mv_release,
    .rec_layout = layout_q4,
    .rec_upload = upload_q4,
    .record = record_q4,
};

const kb_impl kb_impl_matvec_q8_0_vk = {
    .family = "matvec_q8_0",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = mv_available,
    .prepare = prepare_q8,
    .run = mv_run,
    .finish = mv_finish,
    .reset = mv_reset,
    .release = mv_release,
    .rec_layout = layout_q8,
    .rec_upload = upload_q8,
    .record = record_q8,
};
