/* Vulkan matvec for GGML Q4_0 and Q8_0 (matvec_q4_0.comp, matvec_q8_0.comp).
 * prepare (untimed) repacks each row into its blocks' quants back to back (16-byte aligned
 * units) plus the f16 scales apart: the same 18 or 34 bytes per 32 weights the kernel reads.
 * Rows are split into chunks that each fit one storage-buffer binding (lavapipe: 128 MiB), one
 * dispatch per chunk, so an LM head of any size the device can allocate runs. */
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
    uint32_t qbytes; /* quant bytes per block */
    uint32_t unit_per_block;
} mv_format;

static const mv_format Q4 = {kb_spv_matvec_q4_0, sizeof kb_spv_matvec_q4_0, 16, 1};
static const mv_format Q8 = {kb_spv_matvec_q8_0, sizeof kb_spv_matvec_q8_0, 32, 2};

typedef struct mv_push {
    uint32_t rows, nb, row0, ystride;
} mv_push;

typedef struct mv_state {
    kb_vk_buf *w, *x, *y;
    kb_vk_cmd *cmd;
    uint64_t ybytes; /* payload + guard */
} mv_state;

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* 128 threads (4 subgroups of 32): each holds RPW rows' 16-byte units in flight. Fewer
 * threads when a row has few units; fewer rows per workgroup when many tokens (registers). */
static void choose_shape(const kb_vk_limits *L, uint64_t units, int64_t tokens, uint32_t *wg,
                         uint32_t *rpw)
{
    uint32_t w = 128;
    while (w > L->subgroup_size && w / 2 >= units)
        w /= 2;
    if (w > L->max_wg_invocations)
        w = L->max_wg_invocations;
    if (w > L->max_wg_size_x)
        w = L->max_wg_size_x;
    if (w < L->subgroup_size)
        w = L->subgroup_size;
    *wg = w;
    *rpw = tokens <= 8 ? 8 : 4;
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

/* Copies rows [r0, r0+n) into quants at qoff and scales at doff of the weight buffer. */
static int upload_chunk(mv_state *s, const mv_format *f, const uint8_t *w, int64_t row_bytes,
                        int64_t nb, int64_t r0, int64_t n, uint64_t qoff, uint64_t doff,
                        char *err, size_t errlen)
{
    const uint64_t qb = (uint64_t)n * (uint64_t)nb * f->qbytes, db = (uint64_t)n * (uint64_t)nb * 2;
    const size_t bb = 2 + f->qbytes;
    uint8_t *tmp = malloc(qb + db);
    if (!tmp) {
        snprintf(err, errlen, "out of host memory repacking %.1f MiB", (double)(qb + db) / (1 << 20));
        return -1;
    }
    uint8_t *qd = tmp, *dd = tmp + qb;
    for (int64_t r = 0; r < n; r++) {
        const uint8_t *src = w + (r0 + r) * row_bytes;
        for (int64_t b = 0; b < nb; b++, src += bb) {
            memcpy(dd, src, 2);
            memcpy(qd, src + 2, f->qbytes);
            dd += 2;
            qd += f->qbytes;
        }
    }
    int rc = kb_vk_buf_write(s->w, qoff, tmp, qb, err, errlen);
    if (rc == 0)
        rc = kb_vk_buf_write(s->w, doff, tmp + qb, db, err, errlen);
    free(tmp);
    return rc;
}

static void *mv_prepare(const mv_format *f, const kb_env *env, const kb_case *c,
                        const kb_tensor *in, const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const int64_t rows = c->p[MV_ROWS], cols = c->p[MV_COLS], tokens = c->p[MV_TOKENS];
    const int64_t nb = cols / QK, row_bytes = nb * (2 + f->qbytes);
    uint32_t wg, rpw;
    choose_shape(L, (uint64_t)nb * f->unit_per_block, tokens, &wg, &rpw);

    /* Chunk rows so that each chunk's quants and scales fit one binding and one dispatch. */
    const uint64_t align = L->storage_align > 16 ? L->storage_align : 16;
    uint64_t cap = L->max_storage_range < (1ull << 31) ? L->max_storage_range : (1ull << 31);
    cap = cap / 16 * 16;
    const uint64_t qrow = (uint64_t)nb * f->qbytes;
    int64_t chunk = (int64_t)(cap / qrow);
    if ((uint64_t)chunk > (uint64_t)L->max_wg_count[0] * rpw)
        chunk = (int64_t)L->max_wg_count[0] * rpw;
    if (chunk > rows)
        chunk = rows;
    if (chunk < 1) {
        snprintf(err, errlen, "one row (%llu bytes of quants) exceeds the %llu-byte binding range",
                 (unsigned long long)qrow, (unsigned long long)cap);
        return NULL;
    }
    const uint64_t xbytes = in[MV_X].bytes, ybytes = out[MV_Y].bytes;
    if (xbytes > L->max_storage_range || ybytes > L->max_storage_range) {
        snprintf(err, errlen, "x (%llu bytes) or y (%llu bytes) exceeds the %llu-byte binding range",
                 (unsigned long long)xbytes, (unsigned long long)ybytes,
                 (unsigned long long)L->max_storage_range);
        return NULL;
    }
    const int nchunks = (int)((rows + chunk - 1) / chunk);
    uint64_t total = 0;
    for (int k = 0; k < nchunks; k++) {
        int64_t n = rows - k * chunk < chunk ? rows - k * chunk : chunk;
        total += round_up((uint64_t)n * qrow, align) + round_up((uint64_t)n * nb * 2, align);
    }

    uint32_t spec[4] = {wg, L->subgroup_min, rpw, (uint32_t)tokens};
    kb_vk_pipe *pipe = kb_vk_pipe_get(vk, f->spv, f->spv_bytes, 4, sizeof(mv_push), spec, 4, err,
                                      errlen);
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

    uint64_t off = 0;
    for (int k = 0; k < nchunks; k++) {
        const int64_t r0 = k * chunk, n = rows - r0 < chunk ? rows - r0 : chunk;
        const uint64_t qlen = (uint64_t)n * qrow, dlen = round_up((uint64_t)n * nb * 2, 4);
        const uint64_t qoff = off, doff = off + round_up(qlen, align);
        off = doff + round_up((uint64_t)n * nb * 2, align);
        if (upload_chunk(s, f, in[MV_W].data, row_bytes, nb, r0, n, qoff, doff, err, errlen) != 0)
            goto fail;
        kb_vk_bind b[4] = {{s->w, qoff, qlen}, {s->w, doff, dlen}, {s->x, 0, xbytes},
                           {s->y, 0, ybytes}};
        mv_push pc = {(uint32_t)n, (uint32_t)nb, (uint32_t)r0, (uint32_t)rows};
        uint32_t groups = (uint32_t)((n + rpw - 1) / rpw);
        if (kb_vk_cmd_dispatch(s->cmd, pipe, b, &pc, groups, 1, 1, err, errlen) != 0)
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
    .release = mv_release,
};
