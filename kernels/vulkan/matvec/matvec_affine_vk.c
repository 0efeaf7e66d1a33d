/* Vulkan matvec for the MLX affine formats (matvec_a8, matvec_a4, matvec_a2) and bf16
 * (matvec_bf16), with tokens and MoE experts: matvec_a8/a4/a2/bf16.comp, all four the kernel of
 * matvec_affine.glsl (its header has the layout and the work split).
 *
 * prepare (untimed) repacks every row into 16-byte units whose 4-weight groups line up with
 * coalesced x loads, and the bf16 scale and bias of each group into one u32 next to the scales
 * and biases of the other groups a lane meets: the format's bytes per weight, plus the zero
 * padding of a row's last chunk when cols is not a multiple of 128 * 32 / bits weights.
 *
 * Experts: prepare reads idx only to decide what to upload: the distinct matrices idx names
 * (not all E, which with E = 512 can pass the device's memory), each in a slot, and a table
 * etab[E] from matrix to slot. The kernel reads idx[k] and etab from device buffers, so the
 * timed region does the MoE lookup. Rows are split into chunks whose codes (and whose scales)
 * for all slots fit one storage-buffer binding (lavapipe: 128 MiB), one buffer and one dispatch
 * per chunk, the dispatch's workgroup row y = the expert k. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "affine_formats.h"
#include "matvec_a2.spv.h"
#include "matvec_a4.spv.h"
#include "matvec_a8.spv.h"
#include "matvec_affine_common.h"
#include "matvec_bf16.spv.h"
#include "vk.h"

#define AV_MAX_CHUNKS 64
#define AV_NBIND 6

typedef struct av_push {
    uint32_t rows, nv, nchunk, row0, ystride, xk, ne;
} av_push;

typedef struct av_geom {
    int bits, gp;       /* gp: groups of 4 weights per 16-byte unit */
    int64_t nv, nchunk; /* x vec4s per row; chunks of 32 units per row */
    int64_t nlg, lg;    /* affine: lane groups per chunk, lanes per lane group (G / 4) */
    uint64_t qrow;      /* repacked code bytes per row */
    uint64_t drow;      /* repacked scale + bias bytes per row (0 for bf16) */
} av_geom;

typedef struct av_state {
    kb_vk_buf *w[AV_MAX_CHUNKS];
    kb_vk_buf *x, *y, *idx, *etab;
    kb_vk_cmd *cmd;
    uint64_t ybytes; /* payload + guard */
} av_state;

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static av_geom geometry(const kb_mva *s)
{
    av_geom g;
    g.bits = s->bits;
    g.gp = s->bits == MVA_BF16_BITS ? 2 : 32 / s->bits;
    g.nv = s->cols / 4;
    g.nchunk = (g.nv + 32 * g.gp - 1) / (32 * g.gp);
    g.qrow = (uint64_t)g.nchunk * 32 * 16;
    if (s->bits == MVA_BF16_BITS) {
        g.lg = g.nlg = 0;
        g.drow = 0;
    } else {
        g.lg = s->group / 4;
        g.nlg = 32 / g.lg;
        g.drow = (uint64_t)g.nchunk * (uint64_t)(g.nlg * g.gp) * 4;
    }
    return g;
}

/* Repacks n rows: codes (or bf16 weights) wsrc (row_bytes each) into qd[n][qrow], scales and
 * biases ssrc, bsrc (ngroups bf16 each) into dd[n][drow]. qd and dd are zeroed by the caller. */
static void repack_rows(const kb_mva *s, const av_geom *g, const uint8_t *wsrc,
                        const uint16_t *ssrc, const uint16_t *bsrc, int64_t n, uint8_t *qd,
                        uint8_t *dd)
{
    const int64_t per_chunk = 32 * (int64_t)g->gp; /* x vec4s per chunk */
    for (int64_t r = 0; r < n; r++) {
        const uint8_t *wr = wsrc + r * s->row_bytes;
        uint8_t *q = qd + r * g->qrow;
        for (int64_t V = 0; V < g->nv; V++) {
            const int64_t c = V / per_chunk, rem = V % per_chunk, k = rem / 32, l = rem % 32;
            uint8_t *unit = q + (c * 32 + l) * 16;
            if (g->bits == MVA_BF16_BITS) {
                memcpy(unit + 8 * k, wr + 8 * V, 8);
                continue;
            }
            const int b = g->bits, fpw = 8 / b;
            const int64_t j = k / fpw, h = k % fpw;
            for (int i = 0; i < 4; i++) {
                const int64_t code_i = 4 * V + i; /* byte code_i * b / 8 of the row */
                const unsigned code =
                    (wr[code_i * b / 8] >> (b * (code_i % fpw))) & ((1u << b) - 1);
                unit[4 * j + i] |= (uint8_t)(code << (b * h));
            }
        }
        if (g->bits == MVA_BF16_BITS)
            continue;
        const uint16_t *sr = ssrc + r * s->ngroups, *br = bsrc + r * s->ngroups;
        uint8_t *d = dd + r * g->drow;
        for (int64_t c = 0; c < g->nchunk; c++)
            for (int64_t lgi = 0; lgi < g->nlg; lgi++)
                for (int64_t k = 0; k < g->gp; k++) {
                    const int64_t V = per_chunk * c + 32 * k + lgi * g->lg;
                    const int64_t gi = 4 * V / s->group;
                    if (V >= g->nv)
                        continue;
                    uint8_t *e = d + ((c * g->nlg + lgi) * g->gp + k) * 4;
                    memcpy(e, &sr[gi], 2);   /* scale: low half */
                    memcpy(e + 2, &br[gi], 2); /* bias: high half */
                }
    }
}

/* Repacks rows [r0, r0+n) of matrix m into slot `slot` of a chunk buffer (codes at qoff,
 * scales at doff, each [slot][n][...]), a few MiB at a time. */
static int upload_rows(kb_vk_buf *buf, const kb_mva *s, const av_geom *g, const kb_tensor *in,
                       int64_t m, int64_t r0, int64_t n, int64_t slot, uint64_t qoff,
                       uint64_t doff, char *err, size_t errlen)
{
    const int bf = s->bits == MVA_BF16_BITS;
    const uint64_t per_row = g->qrow + g->drow;
    int64_t step = (int64_t)((16u << 20) / per_row);
    step = step < 1 ? 1 : step > n ? n : step;
    uint8_t *tmp = malloc((size_t)step * per_row);
    if (!tmp) {
        snprintf(err, errlen, "out of host memory repacking weights");
        return -1;
    }
    const uint8_t *w = in[bf ? BF_W : AF_W].data;
    const uint16_t *sc = bf ? NULL : in[AF_S].data, *bi = bf ? NULL : in[AF_B].data;
    int rc = 0;
    for (int64_t r = 0; r < n && rc == 0; r += step) {
        const int64_t cnt = n - r < step ? n - r : step, row = m * s->rows + r0 + r;
        uint8_t *qd = tmp, *dd = tmp + (size_t)cnt * g->qrow;
        memset(tmp, 0, (size_t)cnt * per_row);
        repack_rows(s, g, w + (size_t)row * (size_t)s->row_bytes,
                    bf ? NULL : sc + (size_t)row * (size_t)s->ngroups,
                    bf ? NULL : bi + (size_t)row * (size_t)s->ngroups, cnt, qd, dd);
        const uint64_t at = (uint64_t)(slot * n + r);
        rc = kb_vk_buf_write(buf, qoff + at * g->qrow, qd, (uint64_t)cnt * g->qrow, err, errlen);
        if (rc == 0 && g->drow)
            rc = kb_vk_buf_write(buf, doff + at * g->drow, dd, (uint64_t)cnt * g->drow, err,
                                 errlen);
    }
    free(tmp);
    return rc;
}

/* 128 threads; RPS rows per subgroup pass (as matvec_vk.c: 2 for small work and few tokens,
 * else 4; a2 always 2: its scale words take 4 uvec4 per row). */
static void choose_shape(const kb_vk_limits *L, const kb_mva *s, uint32_t *wg, uint32_t *rps)
{
    uint32_t w = 128;
    if (w > L->max_wg_invocations)
        w = L->max_wg_invocations;
    if (w > L->max_wg_size_x)
        w = L->max_wg_size_x;
    if (w < L->subgroup_size)
        w = L->subgroup_size;
    *wg = w;
    *rps = (s->rows * s->k < 8192 && s->tokens <= 4) || s->bits == 2 ? 2 : 4;
}

static void av_release(void *state)
{
    av_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    for (int i = 0; i < AV_MAX_CHUNKS; i++)
        kb_vk_buf_destroy(s->w[i]);
    kb_vk_buf_destroy(s->x);
    kb_vk_buf_destroy(s->y);
    kb_vk_buf_destroy(s->idx);
    kb_vk_buf_destroy(s->etab);
    free(s);
}

static void *av_prepare(int bits, const uint32_t *spv, size_t spv_bytes, const kb_env *env,
                        const kb_case *c, const kb_tensor *in, const kb_tensor *out, char *err,
                        size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    kb_mva m;
    kb_mva_get(c->p, bits, &m);
    const int bf = bits == MVA_BF16_BITS;
    const av_geom g = geometry(&m);
    const kb_tensor *tx = &in[bf ? BF_X : AF_X];
    uint32_t wg, rps;
    choose_shape(L, &m, &wg, &rps);

    /* Slots: the distinct matrices idx names, in order of first use. */
    int32_t idx[MVA_MAX_K];
    uint32_t *etab = malloc(sizeof *etab * (size_t)m.e);
    int64_t slot_mat[MVA_MAX_K], nslots = 0;
    av_state *s = calloc(1, sizeof *s);
    if (!etab || !s) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int64_t e = 0; e < m.e; e++)
        etab[e] = 0xFFFFFFFFu;
    for (int64_t k = 0; k < m.k; k++) {
        idx[k] = m.experts ? ((const int32_t *)in[bf ? BF_IDX : AF_IDX].data)[k] : 0;
        if (idx[k] < 0 || idx[k] >= m.e) {
            snprintf(err, errlen, "idx[%lld] = %d is outside 0..%lld", (long long)k, idx[k],
                     (long long)m.e - 1);
            goto fail;
        }
        if (etab[idx[k]] == 0xFFFFFFFFu) {
            etab[idx[k]] = (uint32_t)nslots;
            slot_mat[nslots++] = idx[k];
        }
    }

    /* Row chunks: all slots' codes (and scales) of a chunk fit one binding. */
    const uint64_t align = L->storage_align > 16 ? L->storage_align : 16;
    uint64_t cap = L->max_storage_range < (1ull << 31) ? L->max_storage_range : (1ull << 31);
    cap = cap / 16 * 16;
    int64_t chunk = (int64_t)(cap / ((uint64_t)nslots * g.qrow));
    if (g.drow && (int64_t)(cap / ((uint64_t)nslots * g.drow)) < chunk)
        chunk = (int64_t)(cap / ((uint64_t)nslots * g.drow));
    if (chunk > m.rows)
        chunk = m.rows;
    const int64_t nchunks = chunk < 1 ? 0 : (m.rows + chunk - 1) / chunk;
    if (chunk < 1 || nchunks > AV_MAX_CHUNKS) {
        snprintf(err, errlen, "%lld matrices of %lld rows (%llu bytes of codes a row) do not fit "
                 "%d bindings of %llu bytes", (long long)nslots, (long long)m.rows,
                 (unsigned long long)g.qrow, AV_MAX_CHUNKS, (unsigned long long)cap);
        goto fail;
    }
    const uint64_t xbytes = tx->bytes, ybytes = out[MVA_Y].bytes;
    if (xbytes > L->max_storage_range || ybytes > L->max_storage_range) {
        snprintf(err, errlen, "x (%llu bytes) or y (%llu bytes) exceeds the %llu-byte binding",
                 (unsigned long long)xbytes, (unsigned long long)ybytes,
                 (unsigned long long)L->max_storage_range);
        goto fail;
    }

    uint32_t spec[5] = {wg, rps, (uint32_t)m.tokens, g.nv % (32 * g.gp) != 0,
                        bf ? 32u : (uint32_t)m.group};
    kb_vk_pipe *pipe = kb_vk_pipe_get(vk, spv, spv_bytes, AV_NBIND, sizeof(av_push), spec, 5,
                                      err, errlen);
    if (!pipe)
        goto fail;
    s->ybytes = ybytes + KB_GUARD_BYTES;
    if (!(s->x = kb_vk_buf_from(vk, tx->data, xbytes, err, errlen)) ||
        !(s->y = kb_vk_buf_from(vk, out[MVA_Y].data, s->ybytes, err, errlen)) ||
        !(s->idx = kb_vk_buf_from(vk, idx, sizeof *idx * (size_t)m.k, err, errlen)) ||
        !(s->etab = kb_vk_buf_from(vk, etab, sizeof *etab * (size_t)m.e, err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, (int)nchunks, err, errlen)))
        goto fail;

    const uint32_t nsg = wg / L->subgroup_size; /* subgroups per workgroup, as expected */
    for (int64_t ch = 0; ch < nchunks; ch++) {
        const int64_t r0 = ch * chunk, n = m.rows - r0 < chunk ? m.rows - r0 : chunk;
        const uint64_t qlen = (uint64_t)(nslots * n) * g.qrow;
        const uint64_t dlen = (uint64_t)(nslots * n) * g.drow;
        const uint64_t doff = round_up(qlen, align);
        if (!(s->w[ch] = kb_vk_buf_create(vk, doff + (dlen ? dlen : 16), err, errlen)))
            goto fail;
        for (int64_t sl = 0; sl < nslots; sl++)
            if (upload_rows(s->w[ch], &m, &g, in, slot_mat[sl], r0, n, sl, 0, doff, err,
                            errlen) != 0)
                goto fail;
        kb_vk_bind b[AV_NBIND] = {
            {s->w[ch], 0, qlen},
            dlen ? (kb_vk_bind){s->w[ch], doff, dlen} : (kb_vk_bind){s->etab, 0, 0},
            {s->x, 0, xbytes},
            {s->y, 0, ybytes},
            {s->idx, 0, 0},
            {s->etab, 0, 0},
        };
        av_push pc = {(uint32_t)n,
                      (uint32_t)g.nv,
                      (uint32_t)g.nchunk,
                      (uint32_t)r0,
                      (uint32_t)m.rows,
                      m.shared_x ? 0u : (uint32_t)(m.tokens * g.nv),
                      (uint32_t)m.e};
        uint64_t groups = ((uint64_t)n + rps - 1) / rps, wgs = (groups + nsg - 1) / nsg;
        if (wgs > L->max_wg_count[0])
            wgs = L->max_wg_count[0];
        if (kb_vk_cmd_dispatch(s->cmd, pipe, b, &pc, (uint32_t)wgs, (uint32_t)m.k, 1, err,
                               errlen) != 0)
            goto fail;
    }
    if (kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    free(etab);
    return s;
fail:
    free(etab);
    av_release(s);
    return NULL;
}

static int av_run(void *state, const kb_env *env, double *gpu_seconds)
{
    av_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "matvec affine vk: %s\n", err);
        return -1;
    }
    return 0;
}

static int av_finish(void *state, kb_tensor *out)
{
    av_state *s = state;
    char err[256];
    if (kb_vk_buf_read(s->y, 0, out[MVA_Y].data, s->ybytes, err, sizeof err) != 0) {
        fprintf(stderr, "matvec affine vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again (after timing): the device copy too, so the last check sees
 * only what the kernel writes in that run. */
static int av_reset(void *state, const kb_tensor *out)
{
    av_state *s = state;
    char err[256];
    if (kb_vk_buf_write(s->y, 0, out[MVA_Y].data, s->ybytes, err, sizeof err) != 0) {
        fprintf(stderr, "vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

static const char *av_available(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    if (!kb_vk_get_limits(env->vk)->subgroup_arith)
        return "device lacks subgroup arithmetic in compute shaders";
    return NULL;
}

/* ---- recording form (one matrix: experts = 0; the moe group adds experts) ----
 * The weight layout in one range: chunks of rows as prepare makes them (codes, then scales and
 * biases at storage_align), one after another, then 16 zero bytes that serve as idx = {0} and
 * etab = {0}. Scales and biases are folded into it (KB_REC_FOLDED). */
typedef struct av_plan {
    kb_mva m;
    av_geom g;
    int64_t chunk, nchunks;
    uint64_t align, zoff, total;
    uint32_t wg, rps;
} av_plan;

static int av_make_plan(int bits, const kb_vk_limits *L, const kb_case *c, av_plan *pl, char *err,
                        size_t errlen)
{
    kb_mva_get(c->p, bits, &pl->m);
    if (pl->m.experts) {
        snprintf(err, errlen, "the recording form takes one matrix (experts = 0) for now");
        return -1;
    }
    pl->g = geometry(&pl->m);
    choose_shape(L, &pl->m, &pl->wg, &pl->rps);
    pl->align = L->storage_align > 16 ? L->storage_align : 16;
    uint64_t cap = L->max_storage_range < (1ull << 31) ? L->max_storage_range : (1ull << 31);
    cap = cap / 16 * 16;
    int64_t chunk = (int64_t)(cap / pl->g.qrow);
    if (pl->g.drow && (int64_t)(cap / pl->g.drow) < chunk)
        chunk = (int64_t)(cap / pl->g.drow);
    if (chunk > pl->m.rows)
        chunk = pl->m.rows;
    if (chunk < 1) {
        snprintf(err, errlen, "one row (%llu bytes of codes) exceeds the %llu-byte binding",
                 (unsigned long long)pl->g.qrow, (unsigned long long)cap);
        return -1;
    }
    pl->chunk = chunk;
    pl->nchunks = (pl->m.rows + chunk - 1) / chunk;
    uint64_t off = 0;
    for (int64_t k = 0; k < pl->nchunks; k++) {
        const int64_t n = pl->m.rows - k * chunk < chunk ? pl->m.rows - k * chunk : chunk;
        off += round_up((uint64_t)n * pl->g.qrow, pl->align) +
               round_up((uint64_t)n * pl->g.drow, pl->align);
    }
    pl->zoff = off;
    pl->total = off + pl->align;
    return 0;
}

/* Chunk k: rows [*r0, *r0 + *n), codes at *qoff, scales at *doff (offsets in the layout). */
static void av_chunk(const av_plan *pl, int64_t k, int64_t *r0, int64_t *n, uint64_t *qoff,
                     uint64_t *doff)
{
    uint64_t off = 0;
    for (int64_t i = 0;; i++) {
        const int64_t s0 = i * pl->chunk;
        const int64_t m = pl->m.rows - s0 < pl->chunk ? pl->m.rows - s0 : pl->chunk;
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

static uint64_t av_layout(int bits, const kb_env *env, const kb_case *c, int input)
{
    av_plan pl;
    char err[128];
    if (av_make_plan(bits, kb_vk_get_limits(env->vk), c, &pl, err, sizeof err) != 0)
        return 0;
    if (input == 0)
        return pl.total;
    return bits != MVA_BF16_BITS && (input == AF_S || input == AF_B) ? KB_REC_FOLDED : 0;
}

static int av_upload(int bits, const kb_env *env, const kb_case *c, int input, const kb_tensor *in,
                     const kb_vk_bind *dst, char *err, size_t errlen)
{
    av_plan pl;
    if (input != 0 || av_make_plan(bits, kb_vk_get_limits(env->vk), c, &pl, err, errlen) != 0)
        return -1;
    for (int64_t k = 0; k < pl.nchunks; k++) {
        int64_t r0, n;
        uint64_t qoff, doff;
        av_chunk(&pl, k, &r0, &n, &qoff, &doff);
        if (upload_rows(dst->buf, &pl.m, &pl.g, in, 0, r0, n, 0, dst->offset + qoff,
                        dst->offset + doff, err, errlen) != 0)
            return -1;
    }
    const uint8_t zeros[16] = {0};
    return kb_vk_buf_write(dst->buf, dst->offset + pl.zoff, zeros, sizeof zeros, err, errlen);
}

static int av_record(int bits, const uint32_t *spv, size_t spv_bytes, const kb_env *env,
                     const kb_case *c, kb_vk_cmd *cmd, const kb_vk_bind *in,
                     const kb_vk_bind *out, char *err, size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(env->vk);
    av_plan pl;
    if (av_make_plan(bits, L, c, &pl, err, errlen) != 0)
        return -1;
    const int bf = bits == MVA_BF16_BITS;
    const kb_vk_bind *w = &in[0], *x = &in[bf ? BF_X : AF_X];
    uint32_t spec[5] = {pl.wg, pl.rps, (uint32_t)pl.m.tokens, pl.g.nv % (32 * pl.g.gp) != 0,
                        bf ? 32u : (uint32_t)pl.m.group};
    kb_vk_pipe *pipe = kb_vk_pipe_get(env->vk, spv, spv_bytes, AV_NBIND, sizeof(av_push), spec, 5,
                                      err, errlen);
    if (!pipe)
        return -1;
    const kb_vk_bind z = {w->buf, w->offset + pl.zoff, 16};
    const uint32_t nsg = pl.wg / L->subgroup_size;
    for (int64_t k = 0; k < pl.nchunks; k++) {
        int64_t r0, n;
        uint64_t qoff, doff;
        av_chunk(&pl, k, &r0, &n, &qoff, &doff);
        const uint64_t qlen = (uint64_t)n * pl.g.qrow, dlen = (uint64_t)n * pl.g.drow;
        const kb_vk_bind b[AV_NBIND] = {
            {w->buf, w->offset + qoff, qlen},
            dlen ? (kb_vk_bind){w->buf, w->offset + doff, dlen} : z,
            *x, out[MVA_Y], z, z};
        const av_push pc = {(uint32_t)n,    (uint32_t)pl.g.nv, (uint32_t)pl.g.nchunk,
                            (uint32_t)r0,   (uint32_t)pl.m.rows, 0u, 1u};
        uint64_t groups = ((uint64_t)n + pl.rps - 1) / pl.rps, wgs = (groups + nsg - 1) / nsg;
        if (wgs > L->max_wg_count[0])
            wgs = L->max_wg_count[0];
        if (kb_vk_cmd_dispatch(cmd, pipe, b, &pc, (uint32_t)wgs, 1, 1, err, errlen) != 0)
            return -1;
    }
    return 0;
}

#define AV_IMPL(fam, bits, spv)                                                                    \
    static void *prepare_##fam(const kb_env *env, const kb_case *c, const kb_tensor *in,          \
                               const kb_tensor *out, char *err, size_t errlen)                    \
    {                                                                                              \
        return av_prepare(bits, spv, sizeof spv, env, c, in, out, err, errlen);                    \
    }                                                                                              \
    static uint64_t layout_##fam(const kb_env *env, const kb_case *c, int input)                  \
    {                                                                                              \
        return av_layout(bits, env, c, input);                                                     \
    }                                                                                              \
    static int upload_##fam(const kb_env *env, const kb_case *c, int input, const kb_tensor *in,  \
                            const kb_vk_bind *dst, char *err, size_t errlen)                       \
    {                                                                                              \
        return av_upload(bits, env, c, input, in, dst, err, errlen);                               \
    }                                                                                              \
    static int record_##fam(const kb_env *env, const kb_case *c, kb_vk_cmd *cmd,                   \
                            const kb_vk_bind *in, const kb_vk_bind *out,                           \
                            const kb_vk_bind *scratch, char *err, size_t errlen)                   \
    {                                                                                              \
        (void)scratch;                                                                             \
        return av_record(bits, spv, sizeof spv, env, c, cmd, in, out, err, errlen);                \
    }                                                                                              \
    const kb_impl kb_impl_##fam##_vk = {                                                           \
        .family = #fam,                                                                            \
        .name = "vk",                                                                              \
        .backend = KB_BACKEND_VULKAN,                                                              \
        .available = av_available,                                                                 \
        .prepare = prepare_##fam,                                                                  \
        .run = av_run,                                                                             \
        .finish = av_finish,                                                                       \
        .reset = av_reset,                                                                         \
        .release = av_release,                                                                     \
        .rec_layout = layout_##fam,                                                                \
        .rec_upload = upload_##fam,                                                                \
        .record = record_##fam,                                                                    \
    };

AV_IMPL(matvec_a8, 8, kb_spv_matvec_a8)
AV_IMPL(matvec_a4, 4, kb_spv_matvec_a4)
AV_IMPL(matvec_a2, 2, kb_spv_matvec_a2)
AV_IMPL(matvec_bf16, MVA_BF16_BITS, kb_spv_matvec_bf16)
