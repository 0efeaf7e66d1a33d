/* Vulkan moe_route, moe_ffn and moe_layer (shaders moe_route, moe_bucket, moe_sgate,
 * moe_expert, moe_combine .comp).
 *
 * Every expert's weights are uploaded by prepare (untimed), in up to two banks of whole experts
 * (bindings of at most the device's storage range: 128 MiB on lavapipe, 4 GiB on NVIDIA), so
 * that the run can pick any expert: the ids are read on the device. One command list per call:
 *   moe_route: route (one workgroup per token);
 *   moe_ffn decode (one token): [sgate], gate_up (workgroup row = slot, the expert from ids),
 *     barrier, down + combine (a subgroup owns rows of y and loops over the slots);
 *   moe_ffn prefill: bucket (pairs by expert), [sgate], barrier, gate_up (workgroup row =
 *     expert, its pairs from the lists), barrier, down (out[pair]), barrier, combine;
 *   moe_layer: route (writing ids and weights into the same device buffer the FFN reads),
 *     barrier, then moe_ffn's list. The ids never travel to the host.
 * q4_0 is repacked at upload into a4's nibble order with group 32, scale d and bias -8d (f16
 * pairs): the same shader path. Small per-call data (ids, weights, lists, the shared gates)
 * share one buffer, `meta`, in sections aligned for binding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_formats.h"
#include "moe_bucket.spv.h"
#include "moe_combine.spv.h"
#include "moe_expert.spv.h"
#include "moe_ffn.h"
#include "moe_layer.h"
#include "moe_route.h"
#include "moe_route.spv.h"
#include "moe_sgate.spv.h"
#include "vk.h"

#define MV_NBANK 2
#define MV_WG 128

typedef struct {
    uint32_t rows, cols, rw4, ng, epb, ew4, eg, moff, mgoff, moff2, mgoff2, K, S, E, off_ids,
        off_w, off_eoff, off_pl, off_cv;
} mv_push_expert;

typedef struct {
    uint32_t E, K, groups, topk_group;
    float scale;
} mv_push_route;

typedef struct mv_state {
    kb_vk_buf *bank[MV_NBANK], *sb[MV_NBANK];
    kb_vk_buf *x, *h, *sg, *meta, *act, *oute, *logits, *bias;
    kb_vk_buf *out[2]; /* y; or ids, weights (moe_route) */
    uint64_t out_bytes[2];
    int nout;
    kb_vk_cmd *cmd;
} mv_state;

static void mv_release(void *state)
{
    mv_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    for (int i = 0; i < MV_NBANK; i++) {
        kb_vk_buf_destroy(s->bank[i]);
        kb_vk_buf_destroy(s->sb[i]);
    }
    kb_vk_buf *b[] = {s->x, s->h, s->sg, s->meta, s->act, s->oute, s->logits, s->bias, s->out[0], s->out[1]};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        kb_vk_buf_destroy(b[i]);
    free(s);
}

static int mv_run(void *state, const kb_env *env, double *gpu_seconds)
{
    mv_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "moe vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again: the device copies too (kb_impl.reset). */
static int mv_reset_outputs(void *state, const kb_tensor *out)
{
    mv_state *s = state;
    char err[256];
    for (int o = 0; o < s->nout; o++)
        if (kb_vk_buf_write(s->out[o], 0, out[o].data, s->out_bytes[o], err, sizeof err) != 0) {
            fprintf(stderr, "moe vk reset: %s\n", err);
            return -1;
        }
    return 0;
}

static int mv_finish_outputs(void *state, kb_tensor *out)
{
    mv_state *s = state;
    char err[256];
    for (int o = 0; o < s->nout; o++)
        if (kb_vk_buf_read(s->out[o], 0, out[o].data, s->out_bytes[o], err, sizeof err) != 0) {
            fprintf(stderr, "moe vk: %s\n", err);
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

static uint32_t wg_size(const kb_vk_limits *L)
{
    uint32_t w = MV_WG;
    if (w > L->max_wg_invocations)
        w = L->max_wg_invocations;
    if (w > L->max_wg_size_x)
        w = L->max_wg_size_x;
    if (w < L->subgroup_size)
        w = L->subgroup_size;
    return w;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* An output buffer holding the payload and the guard bytes of out (so that finish brings both
 * back, and a write past the end shows). */
static kb_vk_buf *out_buf(struct kb_vk *vk, const kb_tensor *t, uint64_t *bytes, char *err,
                          size_t n)
{
    *bytes = t->bytes + KB_GUARD_BYTES;
    return kb_vk_buf_from(vk, t->data, *bytes, err, n);
}

static int check_range(const kb_vk_limits *L, const char *what, uint64_t bytes, char *err,
                       size_t n)
{
    if (bytes > L->max_storage_range) {
        snprintf(err, n, "%s (%llu bytes) exceeds the device's %llu-byte storage binding", what,
                 (unsigned long long)bytes, (unsigned long long)L->max_storage_range);
        return -1;
    }
    return 0;
}

/* ---- routing --------------------------------------------------------------------------- */

static kb_vk_pipe *route_pipe(struct kb_vk *vk, const kb_moe_route *r, mv_push_route *pc,
                              uint32_t *wg, char *err, size_t n)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    *wg = wg_size(L);
    const uint32_t spec[4] = {*wg, (uint32_t)((r->E + *wg - 1) / *wg), r->mode == MOE_SIGMOID_GROUPED,
                              (uint32_t)r->renorm};
    *pc = (mv_push_route){(uint32_t)r->E, (uint32_t)r->K, (uint32_t)r->groups,
                          (uint32_t)r->topk_group, (float)MOE_ROUTED_SCALE};
    return kb_vk_pipe_get(vk, kb_spv_moe_route, sizeof kb_spv_moe_route, 4, sizeof *pc, spec, 4,
                          err, n);
}

static void *route_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                           const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const int64_t *p = c->p;
    const kb_moe_route r = {(int)p[MR_E], (int)p[MR_K], (int)p[MR_MODE], (int)p[MR_RENORM],
                            (int)p[MR_GROUPS], (int)p[MR_TOPK_GROUP]};
    mv_state *s = calloc(1, sizeof *s);
    mv_push_route pc;
    uint32_t wg;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    kb_vk_pipe *pipe = route_pipe(vk, &r, &pc, &wg, err, errlen);
    if (!pipe || check_range(kb_vk_get_limits(vk), "logits", in[MR_LOGITS].bytes, err, errlen))
        goto fail;
    s->nout = 2;
    if (!(s->logits = kb_vk_buf_from(vk, in[MR_LOGITS].data, in[MR_LOGITS].bytes, err, errlen)) ||
        !(s->bias = r.mode == MOE_SIGMOID_GROUPED
                        ? kb_vk_buf_from(vk, in[MR_BIAS].data, in[MR_BIAS].bytes, err, errlen)
                        : kb_vk_buf_create(vk, 16, err, errlen)) ||
        !(s->out[0] = out_buf(vk, &out[MR_IDS], &s->out_bytes[0], err, errlen)) ||
        !(s->out[1] = out_buf(vk, &out[MR_WEIGHTS], &s->out_bytes[1], err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, 1, err, errlen)))
        goto fail;
    const kb_vk_bind b[4] = {{s->logits, 0, 0},
                             {s->bias, 0, 0},
                             {s->out[0], 0, out[MR_IDS].bytes},
                             {s->out[1], 0, out[MR_WEIGHTS].bytes}};
    if (kb_vk_cmd_dispatch(s->cmd, pipe, b, &pc, (uint32_t)p[MR_TOKENS], 1, 1, err, errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    mv_release(s);
    return NULL;
}

const kb_impl kb_impl_moe_route_vk = {
    .family = "moe_route",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = mv_available,
    .prepare = route_prepare,
    .run = mv_run,
    .finish = mv_finish_outputs,
    .reset = mv_reset_outputs,
    .release = mv_release,
};

/* ---- the FFN: weights, meta, dispatches ------------------------------------------------- */

/* Device geometry of the weights: uvec4 of codes and groups per row, expert, matrix. */
typedef struct {
    int bits, G, f16sb;
    uint64_t rw4_h, rw4_f, ew4, ng_h, ng_f, eg;
    int epb, nbank;
} mv_geom;

static int geometry(const kb_vk_limits *L, const kb_moe_ffn *f, mv_geom *g, char *err, size_t n)
{
    g->bits = f->bits;
    g->G = f->group;
    g->f16sb = !f->affine;
    g->rw4_h = (uint64_t)f->hidden * f->bits / 128;
    g->rw4_f = (uint64_t)f->ffn * f->bits / 128;
    g->ew4 = 2 * (uint64_t)f->ffn * g->rw4_h + (uint64_t)f->hidden * g->rw4_f;
    g->ng_h = (uint64_t)(f->hidden / f->group);
    g->ng_f = (uint64_t)(f->ffn / f->group);
    g->eg = 2 * (uint64_t)f->ffn * g->ng_h + (uint64_t)f->hidden * g->ng_f;
    uint64_t cap = L->max_storage_range < L->max_buffer_bytes ? L->max_storage_range : L->max_buffer_bytes;
    uint64_t epb = cap / (16 * g->ew4);
    if (cap / (4 * g->eg) < epb)
        epb = cap / (4 * g->eg);
    if (epb > (uint64_t)f->NE)
        epb = (uint64_t)f->NE;
    if (epb == 0 || (f->NE + epb - 1) / epb > MV_NBANK) {
        snprintf(err, n, "%d experts of %llu bytes do not fit %d bindings of %llu bytes", f->NE,
                 (unsigned long long)(16 * g->ew4), MV_NBANK, (unsigned long long)cap);
        return -1;
    }
    g->epb = (int)epb;
    g->nbank = (int)((f->NE + epb - 1) / epb);
    return 0;
}

/* One expert's codes and scale-bias words in the device layout. */
static void pack_expert(const kb_moe_ffn *f, const mv_geom *g, const uint8_t *W,
                        const uint16_t *sc, const uint16_t *bi, int e, uint8_t *q, uint32_t *sb)
{
    const uint8_t *src = W + (int64_t)e * f->expert_bytes;
    if (f->affine) {
        memcpy(q, src, (size_t)f->expert_bytes);
        const uint16_t *s = sc + (int64_t)e * f->expert_groups, *b = bi + (int64_t)e * f->expert_groups;
        for (int64_t i = 0; i < f->expert_groups; i++)
            sb[i] = (uint32_t)s[i] | (uint32_t)b[i] << 16;
        return;
    }
    /* q4_0 -> a4 nibble order (weights 2i, 2i+1 in byte i), d and -8d per block of 32 */
    const int64_t nrows = 2 * f->ffn + f->hidden, nblk = (int64_t)(sizeof(block_q4_0));
    int64_t grp = 0;
    for (int64_t r = 0; r < nrows; r++) {
        const int64_t cols = r < 2 * f->ffn ? f->hidden : f->ffn;
        const uint8_t *row = src + (r < 2 * f->ffn ? r * f->rb_h : 2 * f->ffn * f->rb_h + (r - 2 * f->ffn) * f->rb_f);
        for (int64_t b = 0; b < cols / 32; b++, grp++) {
            block_q4_0 blk;
            memcpy(&blk, row + b * nblk, sizeof blk);
            uint8_t code[32];
            for (int j = 0; j < 16; j++) {
                code[j] = blk.qs[j] & 15;
                code[j + 16] = blk.qs[j] >> 4;
            }
            for (int i = 0; i < 16; i++)
                q[i] = (uint8_t)(code[2 * i] | code[2 * i + 1] << 4);
            q += 16;
            const float d = kb_f16_to_f32(blk.d);
            sb[grp] = (uint32_t)blk.d | (uint32_t)kb_f32_to_f16(-8.0f * d) << 16;
        }
    }
}

static int upload_weights(mv_state *s, struct kb_vk *vk, const kb_moe_ffn *f, const mv_geom *g,
                          const uint8_t *W, const uint16_t *sc, const uint16_t *bi, char *err,
                          size_t n)
{
    const uint64_t qe = 16 * g->ew4, se = 4 * g->eg; /* bytes per expert */
    int per = (int)((64u << 20) / (qe + se)); /* experts per host batch: ~64 MiB */
    per = per < 1 ? 1 : per;
    uint8_t *tmp = malloc((size_t)per * (qe + se));
    if (!tmp) {
        snprintf(err, n, "out of host memory packing the weights");
        return -1;
    }
    int rc = 0;
    for (int b = 0; b < g->nbank && rc == 0; b++) {
        const int e0 = b * g->epb, ne = f->NE - e0 < g->epb ? f->NE - e0 : g->epb;
        if (!(s->bank[b] = kb_vk_buf_create(vk, qe * (uint64_t)ne, err, n)) ||
            !(s->sb[b] = kb_vk_buf_create(vk, se * (uint64_t)ne, err, n))) {
            rc = -1;
            break;
        }
        for (int e = 0; e < ne && rc == 0; e += per) {
            const int cnt = ne - e < per ? ne - e : per;
            uint8_t *qd = tmp;
            uint32_t *sd = (uint32_t *)(tmp + (size_t)cnt * qe);
            for (int i = 0; i < cnt; i++)
                pack_expert(f, g, W, sc, bi, e0 + e + i, qd + (size_t)i * qe, sd + (size_t)i * g->eg);
            rc = kb_vk_buf_write(s->bank[b], (uint64_t)e * qe, qd, (uint64_t)cnt * qe, err, n);
            if (rc == 0)
                rc = kb_vk_buf_write(s->sb[b], (uint64_t)e * se, sd, (uint64_t)cnt * se, err, n);
        }
    }
    free(tmp);
    return rc;
}

/* Word offsets of the sections of `meta`, each aligned for binding. */
typedef struct {
    uint64_t ids, w, eoff, pl, cv, words;
} mv_meta;

static mv_meta meta_layout(const kb_vk_limits *L, const kb_moe_ffn *f)
{
    const uint64_t a = (L->storage_align > 256 ? L->storage_align : 256) / 4;
    const uint64_t T = (uint64_t)f->tokens, P = T * (uint64_t)f->S;
    mv_meta m;
    m.ids = 0;
    m.w = align_up(m.ids + T * f->K, a);
    m.eoff = align_up(m.w + T * f->K, a);
    m.pl = align_up(m.eoff + f->NE + 1, a);
    m.cv = align_up(m.pl + P, a);
    m.words = align_up(m.cv + T, a);
    return m;
}

/* Records the FFN after whatever the list holds (moe_layer: the routing) and ends it. Inputs
 * x, h, sg and the weights are in s; ids and weights in meta. */
static int record_ffn(mv_state *s, struct kb_vk *vk, const kb_moe_ffn *f, const mv_geom *g,
                      const mv_meta *m, char *err, size_t n)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint32_t wg = wg_size(L), nsg = wg / L->subgroup_size > 0 ? wg / L->subgroup_size : 1;
    const int decode = f->tokens == 1;
    const uint32_t T = (uint32_t)f->tokens, P = T * (uint32_t)f->S;
    mv_push_expert pe = {0};
    pe.epb = (uint32_t)g->epb;
    pe.ew4 = (uint32_t)g->ew4;
    pe.eg = (uint32_t)g->eg;
    pe.K = (uint32_t)f->K;
    pe.S = (uint32_t)f->S;
    pe.E = (uint32_t)f->E;
    pe.off_ids = (uint32_t)m->ids;
    pe.off_w = (uint32_t)m->w;
    pe.off_eoff = (uint32_t)m->eoff;
    pe.off_pl = (uint32_t)m->pl;
    pe.off_cv = (uint32_t)m->cv;
    kb_vk_buf *b1 = g->nbank > 1 ? s->bank[1] : s->bank[0], *s1 = g->nbank > 1 ? s->sb[1] : s->sb[0];

    if (!decode) { /* pairs by expert */
        const uint32_t pb[8] = {P, (uint32_t)f->K, (uint32_t)f->S, (uint32_t)f->E, (uint32_t)f->NE,
                                (uint32_t)m->ids, (uint32_t)m->eoff, (uint32_t)m->pl};
        const uint32_t nospec[1] = {0}; /* no constants (a pointer all the same) */
        kb_vk_pipe *pp = kb_vk_pipe_get(vk, kb_spv_moe_bucket, sizeof kb_spv_moe_bucket, 1,
                                        sizeof pb, nospec, 0, err, n);
        const kb_vk_bind bb[1] = {{s->meta, 0, 0}};
        if (!pp || kb_vk_cmd_dispatch(s->cmd, pp, bb, pb, 1, 1, 1, err, n) != 0)
            return -1;
    }
    if (f->shared == MOE_SHARED_GATED) {
        const uint32_t spec[1] = {wg < 128 ? wg : 128};
        const uint32_t pg[2] = {(uint32_t)f->hidden, (uint32_t)m->cv};
        kb_vk_pipe *pp = kb_vk_pipe_get(vk, kb_spv_moe_sgate, sizeof kb_spv_moe_sgate, 3,
                                        sizeof pg, spec, 1, err, n);
        const kb_vk_bind bb[3] = {{s->x, 0, 0}, {s->sg, 0, 0}, {s->meta, 0, 0}};
        if (!pp || kb_vk_cmd_dispatch(s->cmd, pp, bb, pg, T, 1, 1, err, n) != 0)
            return -1;
    }
    kb_vk_cmd_barrier(s->cmd);
    for (int proj = 0; proj < 2; proj++) {
        const uint32_t rps = proj == 0 ? 2 : 4, tt = decode ? 1 : 4;
        const uint32_t spec[9] = {wg, (uint32_t)g->bits, (uint32_t)g->G, (uint32_t)g->f16sb,
                                  (uint32_t)proj, decode ? 0u : 1u, rps, tt, (uint32_t)f->shared};
        kb_vk_pipe *pp = kb_vk_pipe_get(vk, kb_spv_moe_expert, sizeof kb_spv_moe_expert, 8,
                                        sizeof pe, spec, 9, err, n);
        if (!pp)
            return -1;
        if (proj == 0) {
            pe.rows = (uint32_t)f->ffn;
            pe.cols = (uint32_t)f->hidden;
            pe.rw4 = (uint32_t)g->rw4_h;
            pe.ng = (uint32_t)g->ng_h;
            pe.moff = 0;
            pe.mgoff = 0;
            pe.moff2 = (uint32_t)(f->ffn * g->rw4_h);
            pe.mgoff2 = (uint32_t)(f->ffn * g->ng_h);
        } else {
            pe.rows = (uint32_t)f->hidden;
            pe.cols = (uint32_t)f->ffn;
            pe.rw4 = (uint32_t)g->rw4_f;
            pe.ng = (uint32_t)g->ng_f;
            pe.moff = pe.moff2 = (uint32_t)(2 * f->ffn * g->rw4_h);
            pe.mgoff = pe.mgoff2 = (uint32_t)(2 * f->ffn * g->ng_h);
        }
        kb_vk_buf *vout = proj == 0 ? s->act : decode ? s->out[0] : s->oute;
        const kb_vk_bind bb[8] = {{s->bank[0], 0, 0}, {b1, 0, 0},       {s->sb[0], 0, 0},
                                  {s1, 0, 0},         {proj == 0 ? s->x : s->act, 0, 0},
                                  {vout, 0, proj == 1 && decode ? (uint64_t)f->hidden * 4 : 0},
                                  {s->meta, 0, 0},    {s->h, 0, 0}};
        uint64_t groups = (pe.rows + rps - 1) / rps, wgs = (groups + nsg - 1) / nsg;
        if (wgs > L->max_wg_count[0])
            wgs = L->max_wg_count[0];
        const uint32_t gy = decode ? (proj == 0 ? (uint32_t)f->S : 1u) : (uint32_t)f->NE;
        if (kb_vk_cmd_dispatch(s->cmd, pp, bb, &pe, (uint32_t)wgs, gy, 1, err, n) != 0)
            return -1;
        kb_vk_cmd_barrier(s->cmd);
    }
    if (!decode) {
        const uint32_t spec[2] = {wg, (uint32_t)f->shared};
        const uint32_t pcb[5] = {(uint32_t)f->hidden, (uint32_t)f->K, (uint32_t)f->S,
                                 (uint32_t)m->w, (uint32_t)m->cv};
        kb_vk_pipe *pp = kb_vk_pipe_get(vk, kb_spv_moe_combine, sizeof kb_spv_moe_combine, 4,
                                        sizeof pcb, spec, 2, err, n);
        const kb_vk_bind bb[4] = {{s->oute, 0, 0}, {s->meta, 0, 0}, {s->h, 0, 0},
                                  {s->out[0], 0, (uint64_t)(f->tokens * f->hidden) * 4}};
        if (!pp || kb_vk_cmd_dispatch(s->cmd, pp, bb, pcb, (uint32_t)((f->hidden + wg - 1) / wg),
                                      T, 1, err, n) != 0)
            return -1;
    }
    return kb_vk_cmd_end(s->cmd, err, n);
}

/* Buffers of the FFN: weights, x, h, sg, meta (ids, weights written when given), act, out. */
static int ffn_buffers(mv_state *s, struct kb_vk *vk, const kb_moe_ffn *f, const mv_geom *g,
                       const mv_meta *m, const kb_moe_ffn_data *d, const int32_t *ids,
                       const float *w, const kb_tensor *y, char *err, size_t n)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint64_t T = (uint64_t)f->tokens, P = T * (uint64_t)f->S, xb = T * (uint64_t)f->hidden * 4;
    const uint64_t actb = P * (uint64_t)f->ffn * 4, outb = P * (uint64_t)f->hidden * 4;
    if (check_range(L, "x", xb, err, n) || check_range(L, "the activations", actb, err, n) ||
        check_range(L, "meta", m->words * 4, err, n) ||
        (f->tokens > 1 && check_range(L, "the expert outputs", outb, err, n)))
        return -1;
    if (upload_weights(s, vk, f, g, d->W, d->sc, d->bi, err, n) != 0)
        return -1;
    s->nout = 1;
    if (!(s->x = kb_vk_buf_from(vk, d->x, xb, err, n)) ||
        !(s->h = kb_vk_buf_from(vk, d->h, xb, err, n)) ||
        !(s->sg = d->sg ? kb_vk_buf_from(vk, d->sg, (uint64_t)f->hidden * 4, err, n)
                        : kb_vk_buf_create(vk, 16, err, n)) ||
        !(s->meta = kb_vk_buf_create(vk, m->words * 4, err, n)) ||
        !(s->act = kb_vk_buf_create(vk, actb, err, n)) ||
        !(s->oute = kb_vk_buf_create(vk, f->tokens > 1 ? outb : 16, err, n)) ||
        !(s->out[0] = out_buf(vk, y, &s->out_bytes[0], err, n)))
        return -1;
    if (ids && (kb_vk_buf_write(s->meta, m->ids * 4, ids, T * (uint64_t)f->K * 4, err, n) ||
                kb_vk_buf_write(s->meta, m->w * 4, w, T * (uint64_t)f->K * 4, err, n)))
        return -1;
    return 0;
}

static void *ffn_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                         const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    kb_moe_ffn f;
    mv_geom g;
    kb_moe_ffn_from_params(c->p, &f);
    const kb_moe_ffn_in ix = kb_moe_ffn_inputs(&f, MF_W + 1);
    const kb_moe_ffn_data d = {in[MF_X].data, in[MF_H].data, in[MF_W].data,
                               ix.sc >= 0 ? in[ix.sc].data : NULL,
                               ix.bi >= 0 ? in[ix.bi].data : NULL,
                               ix.sg >= 0 ? in[ix.sg].data : NULL};
    mv_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (geometry(kb_vk_get_limits(vk), &f, &g, err, errlen) != 0)
        goto fail;
    const mv_meta m = meta_layout(kb_vk_get_limits(vk), &f);
    if (ffn_buffers(s, vk, &f, &g, &m, &d, in[MF_IDS].data, in[MF_WEIGHTS].data, &out[MF_Y], err,
                    errlen) != 0 ||
        !(s->cmd = kb_vk_cmd_create(vk, 8, err, errlen)) ||
        record_ffn(s, vk, &f, &g, &m, err, errlen) != 0)
        goto fail;
    return s;
fail:
    mv_release(s);
    return NULL;
}

const kb_impl kb_impl_moe_ffn_vk = {
    .family = "moe_ffn",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = mv_available,
    .prepare = ffn_prepare,
    .run = mv_run,
    .finish = mv_finish_outputs,
    .reset = mv_reset_outputs,
    .release = mv_release,
};

/* ---- moe_layer: the routing writes ids and weights into meta, the FFN reads them --------- */

static void *layer_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                           const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    kb_moe_ffn f;
    kb_moe_route r;
    mv_geom g;
    kb_moe_layer_from_params(c->p, &f, &r);
    const kb_moe_layer_in ix = kb_moe_layer_inputs(&f, &r);
    const kb_moe_ffn_data d = {in[ix.x].data, in[ix.h].data, in[ix.W].data,
                               ix.sc >= 0 ? in[ix.sc].data : NULL,
                               ix.bi >= 0 ? in[ix.bi].data : NULL,
                               ix.sg >= 0 ? in[ix.sg].data : NULL};
    mv_state *s = calloc(1, sizeof *s);
    mv_push_route pr;
    uint32_t wg;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (geometry(L, &f, &g, err, errlen) != 0)
        goto fail;
    const mv_meta m = meta_layout(L, &f);
    kb_vk_pipe *rp = route_pipe(vk, &r, &pr, &wg, err, errlen);
    if (!rp || check_range(L, "logits", in[ix.logits].bytes, err, errlen) ||
        ffn_buffers(s, vk, &f, &g, &m, &d, NULL, NULL, &out[0], err, errlen) != 0 ||
        !(s->logits = kb_vk_buf_from(vk, in[ix.logits].data, in[ix.logits].bytes, err, errlen)) ||
        !(s->bias = ix.bias >= 0 ? kb_vk_buf_from(vk, in[ix.bias].data, in[ix.bias].bytes, err, errlen)
                                 : kb_vk_buf_create(vk, 16, err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, 9, err, errlen)))
        goto fail;
    const uint64_t tk = (uint64_t)(f.tokens * f.K) * 4;
    const kb_vk_bind b[4] = {{s->logits, 0, 0},
                             {s->bias, 0, 0},
                             {s->meta, m.ids * 4, tk},
                             {s->meta, m.w * 4, tk}};
    if (kb_vk_cmd_dispatch(s->cmd, rp, b, &pr, (uint32_t)f.tokens, 1, 1, err, errlen) != 0)
        goto fail;
    kb_vk_cmd_barrier(s->cmd);
    if (record_ffn(s, vk, &f, &g, &m, err, errlen) != 0)
        goto fail;
    return s;
fail:
    mv_release(s);
    return NULL;
}

const kb_impl kb_impl_moe_layer_vk = {
    .family = "moe_layer",
    .name = "vk",
    .backend = KB_BACKEND_VULKAN,
    .available = mv_available,
    .prepare = layer_prepare,
    .run = mv_run,
    .finish = mv_finish_outputs,
    .reset = mv_reset_outputs,
    .release = mv_release,
};
