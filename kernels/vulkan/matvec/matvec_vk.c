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

static void *mv_prepare(const mv_format *f, const kb_env *env, const kb_case *c,
                        const kb_tensor *in, const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const int64_t rows = c->p[MV_ROWS], cols = c->p[MV_COLS], tokens = c->p[MV_TOKENS];
    const mv_geom g = geometry(f, cols);
    uint32_t wg, rps;
    choose_shape(L, rows, tokens, &wg, &rps);

    /* Chunk rows so that each chunk's codes and scales fit one binding. */
    const uint64_t align = L->storage_align > 16 ? L->storage_align : 16;
    uint64_t cap = L->max_storage_range < (1ull << 31) ? L->max_storage_range : (1ull << 31);
    cap = cap / 16 * 16;
    int64_t chunk = (int64_t)(cap / g.qrow);
    if (chunk > rows)
        chunk = rows;
    if (chunk < 1) {
        snprintf(err, errlen, "one row (%llu bytes of codes) exceeds the %llu-byte binding range",
                 (unsigned long long)g.qrow, (unsigned long long)cap);
        return NULL;
    }
    const uint64_t xbytes = in[MV_X].bytes, ybytes = out[MV_Y].bytes;
    if (xbytes > L->max_storage_range || ybytes > L->max_storage_range) {
        snprintf(err, errlen, "x (%llu bytes) or y (%llu bytes) exceeds the %llu-byte binding",
                 (unsigned long long)xbytes, (unsigned long long)ybytes,
                 (unsigned long long)L->max_storage_range);
        return NULL;
    }
    const int nchunks = (int)((rows + chunk - 1) / chunk);
    uint64_t total = 0;
    for (int k = 0; k < nchunks; k++) {
        int64_t n = rows - k * chunk < chunk ? rows - k * chunk : chunk;
        total += round_up((uint64_t)n * g.qrow, align) + round_up((uint64_t)n * g.drow, align);
    }

    uint32_t spec[4] = {wg, rps, (uint32_t)tokens, g.nv % (32 * f->groups) != 0};
    kb_vk_pipe *pipe = kb_vk_pipe_get(vk, f->spv, f->spv_bytes, 4, sizeof(mv_push), spec, 4,
                                      err, errlen);
    mv_state *s = calloc(1, sizeof *s);
    if (!pipe || !s) {
        if (!s)
            snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    s->ybytes = ybytes + KB_GUARD_BYTES;
    if (!(s->w = kb_vk_buf_create(vk, total, err, errlen)) ||
        !(s->x = kb_vk_buf_from(vk, in[MV_X].data, xbytes, err, errlen)) ||
        !(s->y = kb_vk_buf_from(vk, out[MV_Y].data, s->ybytes, err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, nchunks, err, errlen)))
        goto fail;

    const uint32_t nsg = wg / L->subgroup_size; /* subgroups per workgroup, as expected */
    uint64_t off = 0;
    for (int k = 0; k < nchunks; k++) {
        const int64_t r0 = k * chunk, n = rows - r0 < chunk ? rows - r0 : chunk;
        const uint64_t qlen = (uint64_t)n * g.qrow, dlen = (uint64_t)n * g.drow;
        const uint64_t qoff = off, doff = off + round_up(qlen, align);
        off = doff + round_up(dlen, align);
        if (upload_rows(s, f, &g, in[MV_W].data, r0, n, qoff, doff, err, errlen) != 0)
            goto fail;
        kb_vk_bind b[4] = {{s->w, qoff, qlen}, {s->w, doff, dlen}, {s->x, 0, xbytes},
                           {s->y, 0, ybytes}};
        mv_push pc = {(uint32_t)n, (uint32_t)g.nv, (uint32_t)g.nchunk, (uint32_t)r0,
                      (uint32_t)rows};
        uint64_t groups = ((uint64_t)n + rps - 1) / rps, wgs = (groups + nsg - 1) / nsg;
        if (wgs > L->max_wg_count[0])
            wgs = L->max_wg_count[0];
        if (kb_vk_cmd_dispatch(s->cmd, pipe, b, &pc, (uint32_t)wgs, 1, 1, err, errlen) != 0)
            goto fail;
    }
    if (kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    mv_release(s);
    return NULL;
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
};
