/* Vulkan GatedDeltaNet recurrence (KERNELS.md section 5), f32 arithmetic:
 *   gdn_decode vk, gdn_prefill seq_vk: gdn_seq.comp, one subgroup per state row with the row in
 *     registers across the tokens, workgroups of RPW rows of one (sequence, value head);
 *   gdn_prefill chunk16_vk / chunk64_vk: gdn_chunk_prep.comp (the C x C matrices of every
 *     (head, chunk) at once), a barrier, then gdn_chunk.comp (a workgroup per (head, block of RB
 *     rows) through the chunks, state in shared memory; on a CPU device the chunks are split over
 *     several dispatches, see GV_CPU_LOOP_BUDGET).
 * Inputs are uploaded in prepare (untimed); the outputs carry their guard bytes up and back, so
 * a write past the end shows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdn_common.h"
#include "vk.h"
/* after <stdint.h> */
#include "gdn_chunk.spv.h"
#include "gdn_chunk_prep.spv.h"
#include "gdn_seq.spv.h"

#define GV_WG 128      /* gdn_seq.comp and gdn_chunk.comp */
#define GV_PREP_WG 64  /* gdn_chunk_prep.comp */

typedef struct gv_state {
    kb_vk_buf *in[6], *o, *S1, *prep;
    kb_vk_cmd *cmd;
    uint64_t obytes[2]; /* payload + guard */
} gv_state;

typedef struct seq_push {
    uint32_t ntok, hk, hv, dv, rpw;
} seq_push;

typedef struct prep_push {
    uint32_t ntok, hk, hv, nch;
} prep_push;

typedef struct chunk_push {
    uint32_t ntok, hk, hv, dv, nch, ch0, nseg, from_s0;
} chunk_push;

/* llvmpipe ends any shader invocation after 65535 loop iterations in all; gdn_chunk.comp runs
 * about DK + 2 C^2 RB / WG + C RB DK / WG of them per chunk, so on a CPU device a dispatch
 * takes at most this many iterations' worth of chunks. */
#define GV_CPU_LOOP_BUDGET 30000

static void gv_release(void *state)
{
    gv_state *s = state;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    for (int i = 0; i < 6; i++)
        kb_vk_buf_destroy(s->in[i]);
    kb_vk_buf_destroy(s->o);
    kb_vk_buf_destroy(s->S1);
    kb_vk_buf_destroy(s->prep);
    free(s);
}

static int fits(const kb_vk_limits *L, const char *name, uint64_t bytes, char *err, size_t errlen)
{
    if (bytes <= L->max_storage_range)
        return 1;
    snprintf(err, errlen, "%s (%llu bytes) exceeds the device's %llu-byte storage binding", name,
             (unsigned long long)bytes, (unsigned long long)L->max_storage_range);
    return 0;
}

/* Uploads the six inputs and both outputs (with guard bytes). */
static gv_state *upload(struct kb_vk *vk, const kb_tensor *in, const kb_tensor *out, char *err,
                        size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    for (int i = 0; i < 6; i++)
        if (!fits(L, in[i].name, in[i].bytes, err, errlen))
            return NULL;
    if (!fits(L, out[GD_O].name, out[GD_O].bytes, err, errlen))
        return NULL;
    gv_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < 6; i++)
        if (!(s->in[i] = kb_vk_buf_from(vk, in[i].data, in[i].bytes, err, errlen)))
            goto fail;
    s->obytes[0] = out[GD_O].bytes + KB_GUARD_BYTES;
    s->obytes[1] = out[GD_S1].bytes + KB_GUARD_BYTES;
    if (!(s->o = kb_vk_buf_from(vk, out[GD_O].data, s->obytes[0], err, errlen)) ||
        !(s->S1 = kb_vk_buf_from(vk, out[GD_S1].data, s->obytes[1], err, errlen)))
        goto fail;
    return s;
fail:
    gv_release(s);
    return NULL;
}

static kb_vk_bind bind(kb_vk_buf *b, const kb_tensor *t) { return (kb_vk_bind){b, 0, t->bytes}; }

/* ---- the recurrence token by token (decode, sequential prefill) ---- */

static void *seq_prepare(const kb_env *env, const gdn_shape *sh, const kb_tensor *in,
                         const kb_tensor *out, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    const uint32_t sg = L->subgroup_size < GV_WG ? L->subgroup_size : GV_WG;
    const uint32_t sg_min = L->subgroup_min < sg ? L->subgroup_min : sg;
    const uint32_t rpw = GV_WG / sg; /* one row per subgroup at the device's usual size */
    const uint32_t gx = (uint32_t)((sh->dv + rpw - 1) / rpw);
    if (GV_WG > L->max_wg_invocations || (uint64_t)sh->hv > L->max_wg_count[1] ||
        (uint64_t)sh->nseq > L->max_wg_count[2]) {
        snprintf(err, errlen, "grid %u x %lld x %lld exceeds the device's limits", gx,
                 (long long)sh->hv, (long long)sh->nseq);
        return NULL;
    }
    const uint32_t spec[3] = {GV_WG, (uint32_t)sh->dk, sg_min};
    kb_vk_pipe *p = kb_vk_pipe_get(vk, kb_spv_gdn_seq, sizeof kb_spv_gdn_seq, 8, sizeof(seq_push),
                                   spec, 3, err, errlen);
    if (!p)
        return NULL;
    gv_state *s = upload(vk, in, out, err, errlen);
    if (!s)
        return NULL;
    const kb_vk_bind b[8] = {bind(s->in[GD_Q], &in[GD_Q]),       bind(s->in[GD_K], &in[GD_K]),
                             bind(s->in[GD_V], &in[GD_V]),       bind(s->in[GD_G], &in[GD_G]),
                             bind(s->in[GD_BETA], &in[GD_BETA]), bind(s->in[GD_S0], &in[GD_S0]),
                             bind(s->o, &out[GD_O]),             bind(s->S1, &out[GD_S1])};
    const seq_push pc = {(uint32_t)sh->ntok, (uint32_t)sh->hk, (uint32_t)sh->hv,
                         (uint32_t)sh->dv, rpw};
    if (!(s->cmd = kb_vk_cmd_create(vk, 1, err, errlen)) ||
        kb_vk_cmd_dispatch(s->cmd, p, b, &pc, gx, (uint32_t)sh->hv, (uint32_t)sh->nseq, err,
                           errlen) != 0 ||
        kb_vk_cmd_end(s->cmd, err, errlen) != 0) {
        gv_release(s);
        return NULL;
    }
    return s;
}

static void *dec_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                         const kb_tensor *out, char *err, size_t errlen)
{
    gdn_shape sh;
    gdn_decode_shape(c->p, &sh);
    return seq_prepare(env, &sh, in, out, err, errlen);
}

static void *pseq_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                          const kb_tensor *out, char *err, size_t errlen)
{
    gdn_shape sh;
    gdn_prefill_shape(c->p, &sh);
    return seq_prepare(env, &sh, in, out, err, errlen);
}

/* ---- chunkwise prefill ---- */

static void *chunk_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                           const kb_tensor *out, const uint32_t C, char *err, size_t errlen)
{
    struct kb_vk *vk = env->vk;
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    gdn_shape sh;
    gdn_prefill_shape(c->p, &sh);
    const uint32_t DK = (uint32_t)sh.dk, nch = (uint32_t)((sh.ntok + C - 1) / C);
    /* rows per workgroup: the l groups of step 1 must divide C (WG / RB | C) */
    const uint32_t RB = C >= 64 ? 16 : 32;
    const uint64_t base_shared = 4ull * (RB * DK + 3ull * C * RB + 2ull * C);
    const uint32_t stage = base_shared + 8ull * C * C <= L->max_shared_bytes;
    if (base_shared + 4 > L->max_shared_bytes || GV_WG > L->max_wg_invocations ||
        nch > L->max_wg_count[0] || (uint64_t)sh.hv > L->max_wg_count[1]) {
        snprintf(err, errlen, "chunk C=%u: %llu bytes of shared memory or a grid of %u x %lld "
                 "exceed the device's limits", C, (unsigned long long)base_shared, nch,
                 (long long)sh.hv);
        return NULL;
    }
    const uint64_t pbytes = 4ull * (uint64_t)sh.hv * nch * (2ull * C * C + 2ull * C);
    if (!fits(L, "the chunk matrices", pbytes, err, errlen))
        return NULL;
    const uint32_t spec1[3] = {GV_PREP_WG, DK, C};
    const uint32_t spec2[5] = {GV_WG, DK, C, RB, stage};
    kb_vk_pipe *p1 = kb_vk_pipe_get(vk, kb_spv_gdn_chunk_prep, sizeof kb_spv_gdn_chunk_prep, 5,
                                    sizeof(prep_push), spec1, 3, err, errlen);
    kb_vk_pipe *p2 = p1 ? kb_vk_pipe_get(vk, kb_spv_gdn_chunk, sizeof kb_spv_gdn_chunk, 7,
                                         sizeof(chunk_push), spec2, 5, err, errlen)
                        : NULL;
    if (!p2)
        return NULL;
    gv_state *s = upload(vk, in, out, err, errlen);
    if (!s)
        return NULL;
    uint32_t seg = nch;
    if (L->is_cpu) {
        const uint32_t per = DK + 2 * C * C * RB / GV_WG + C * RB * DK / GV_WG;
        seg = GV_CPU_LOOP_BUDGET / per > 0 ? GV_CPU_LOOP_BUDGET / per : 1;
    }
    const uint32_t nseg = (nch + seg - 1) / seg;
    if (!(s->prep = kb_vk_buf_create(vk, pbytes, err, errlen)) ||
        !(s->cmd = kb_vk_cmd_create(vk, 1 + (int)nseg, err, errlen)))
        goto fail;
    const kb_vk_bind b1[5] = {bind(s->in[GD_Q], &in[GD_Q]), bind(s->in[GD_K], &in[GD_K]),
                              bind(s->in[GD_G], &in[GD_G]), bind(s->in[GD_BETA], &in[GD_BETA]),
                              {s->prep, 0, pbytes}};
    const kb_vk_bind b2[7] = {bind(s->in[GD_Q], &in[GD_Q]), bind(s->in[GD_K], &in[GD_K]),
                              bind(s->in[GD_V], &in[GD_V]), {s->prep, 0, pbytes},
                              bind(s->in[GD_S0], &in[GD_S0]), bind(s->o, &out[GD_O]),
                              bind(s->S1, &out[GD_S1])};
    const prep_push pc1 = {(uint32_t)sh.ntok, (uint32_t)sh.hk, (uint32_t)sh.hv, nch};
    if (kb_vk_cmd_dispatch(s->cmd, p1, b1, &pc1, nch, (uint32_t)sh.hv, 1, err, errlen) != 0)
        goto fail;
    for (uint32_t k = 0; k < nseg; k++) {
        const chunk_push pc2 = {(uint32_t)sh.ntok, (uint32_t)sh.hk, (uint32_t)sh.hv,
                                (uint32_t)sh.dv, nch, k * seg, seg, k == 0};
        kb_vk_cmd_barrier(s->cmd);
        if (kb_vk_cmd_dispatch(s->cmd, p2, b2, &pc2, (uint32_t)sh.dv / RB, (uint32_t)sh.hv, 1,
                               err, errlen) != 0)
            goto fail;
    }
    if (kb_vk_cmd_end(s->cmd, err, errlen) != 0)
        goto fail;
    return s;
fail:
    gv_release(s);
    return NULL;
}

static void *c16_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                         const kb_tensor *out, char *err, size_t errlen)
{
    return chunk_prepare(env, c, in, out, 16, err, errlen);
}

static void *c64_prepare(const kb_env *env, const kb_case *c, const kb_tensor *in,
                         const kb_tensor *out, char *err, size_t errlen)
{
    return chunk_prepare(env, c, in, out, 64, err, errlen);
}

/* ---- common ---- */

static int gv_run(void *state, const kb_env *env, double *gpu_seconds)
{
    gv_state *s = state;
    char err[256];
    (void)env;
    if (kb_vk_cmd_submit(s->cmd, gpu_seconds, err, sizeof err) != 0) {
        fprintf(stderr, "gdn vk: %s\n", err);
        return -1;
    }
    return 0;
}

/* The runner poisoned `out` again: the device copies too (kb_impl.reset). */
static int gv_reset(void *state, const kb_tensor *out)
{
    gv_state *s = state;
    char err[256];
    if (kb_vk_buf_write(s->o, 0, out[GD_O].data, s->obytes[0], err, sizeof err) != 0 ||
        kb_vk_buf_write(s->S1, 0, out[GD_S1].data, s->obytes[1], err, sizeof err) != 0) {
        fprintf(stderr, "gdn vk reset: %s\n", err);
        return -1;
    }
    return 0;
}

static int gv_finish(void *state, kb_tensor *out)
{
    gv_state *s = state;
    char err[256];
    if (kb_vk_buf_read(s->o, 0, out[GD_O].data, s->obytes[0], err, sizeof err) != 0 ||
        kb_vk_buf_read(s->S1, 0, out[GD_S1].data, s->obytes[1], err, sizeof err) != 0) {
        fprintf(stderr, "gdn vk: %s\n", err);
        return -1;
    }
    return 0;
}

static const char *gv_available(const kb_env *env)
{
    if (!env->vk)
        return "no Vulkan device";
    if (!kb_vk_get_limits(env->vk)->subgroup_arith)
        return "device lacks subgroup arithmetic in compute shaders";
    return NULL;
}

#define GV_IMPL(sym, fam, nm, prep)                                                        \
    const kb_impl sym = {.family = fam,         .name = nm,          .backend = KB_BACKEND_VULKAN, \
                         .available = gv_available, .prepare = prep, .run = gv_run,            \
                         .finish = gv_finish, .reset = gv_reset, .release = gv_release}

GV_IMPL(kb_impl_gdn_decode_vk, "gdn_decode", "vk", dec_prepare);
GV_IMPL(kb_impl_gdn_prefill_seq_vk, "gdn_prefill", "seq_vk", pseq_prepare);
GV_IMPL(kb_impl_gdn_prefill_chunk16_vk, "gdn_prefill", "chunk16_vk", c16_prepare);
GV_IMPL(kb_impl_gdn_prefill_chunk64_vk, "gdn_prefill", "chunk64_vk", c64_prepare);
