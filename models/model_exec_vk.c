/* The Vulkan backend: every buffer resident on the device (weights in the layout of the kernel
 * that reads them, uploaded once through its rec_layout/rec_upload; caches with the zero rows
 * past their end that rec_pad asks for), and a step (a decode token, or all chunks of a
 * prefill) recorded into one command list through the implementations' recording forms:
 * token ids go up inside the list (vkCmdUpdateBuffer), only the logits come back (a copy
 * into a host-visible buffer at its end).
 * Barriers go only where an op reads or writes a range that an op since the last barrier
 * wrote (or writes one it read), so independent ops (the q, k, v projections) overlap; a
 * timestamp at each barrier times the group of ops before it, whose time is split among them
 * by their cost model's bytes (the breakdown). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#ifndef KB_HAVE_VULKAN
/* A build without Vulkan (the fuzz preset): the backend says so. */
mdl_backend *mdl_backend_vk(const mdl_model *m, int device, const char *spec, char *err,
                            size_t errlen)
{
    (void)m, (void)device, (void)spec;
    snprintf(err, errlen, "this kbench was built without Vulkan");
    return NULL;
}
#else
#include "stats.h"
#include "vk.h"

typedef struct packed {
    int buf;
    const kb_impl *impl;
    kb_vk_buf *dev;
    uint64_t bytes;
} packed;

typedef struct vk_be {
    mdl_backend b;
    kb_env env;
    kb_vk_buf **dev;      /* per model buffer: its bytes as they are (NULL: not needed) */
    uint64_t *pad;        /* per buffer: zero bytes kept after it (rec_pad) */
    packed *pk;
    int npk;
    const kb_impl **impl; /* per family */
    kb_vk_buf *scratch, *logits_host;
    uint64_t scratch_bytes;
    kb_vk_cmd *cmd;
    int cmd_marks;
    /* recording state: ranges read and written since the last barrier */
    struct rng { int buf; uint64_t lo, hi; } rd[64], wr[64];
    int nrd, nwr;
    int *group_of;     /* per op of the run: its group (a barrier ends a group) */
    double *op_bytes;
    int ngroups, cap_ops;
} vk_be;

#define SCRATCH_BUF (-2)

static packed *find_packed(vk_be *s, int buf, const kb_impl *im)
{
    for (int i = 0; i < s->npk; i++)
        if (s->pk[i].buf == buf && s->pk[i].impl == im)
            return &s->pk[i];
    return NULL;
}

static void vk_free(mdl_backend *b)
{
    vk_be *s = (vk_be *)b;
    if (!s)
        return;
    kb_vk_cmd_destroy(s->cmd);
    for (int i = 0; s->dev && i < b->m->nbufs; i++)
        kb_vk_buf_destroy(s->dev[i]);
    for (int i = 0; i < s->npk; i++)
        kb_vk_buf_destroy(s->pk[i].dev);
    kb_vk_buf_destroy(s->scratch);
    kb_vk_buf_destroy(s->logits_host);
    free(s->dev);
    free(s->pad);
    free(s->pk);
    free(s->impl);
    free(s->group_of);
    free(s->op_bytes);
    if (s->env.vk)
        kb_vk_destroy(s->env.vk);
    free(s);
}

/* Host tensors of op's inputs, data where the model holds them (weights, tables), else NULL. */
static void host_inputs(const mdl_model *m, const mdl_op *op, kb_tensor *in)
{
    kb_tensor out[KB_MAX_TENSORS];
    mdl_op_tensors(op, in, out);
    for (int i = 0; i < op->n_in; i++) {
        const mdl_buf *bf = &m->bufs[op->in[i].buf];
        in[i].data = bf->host ? (char *)bf->host + op->in[i].off : NULL;
    }
}

/* Device copies for every input the ops of g read, in the layout their kernel wants. */
static int place_inputs(vk_be *s, const mdl_graph *g, char *err, size_t errlen)
{
    const mdl_model *m = s->b.m;
    for (int i = 0; i < g->n; i++) {
        const mdl_op *op = &g->ops[i];
        const kb_impl *im = s->impl[kb_family_index(op->fam)];
        kb_tensor in[KB_MAX_TENSORS];
        host_inputs(m, op, in);
        for (int k = 0; k < op->n_in; k++) {
            const int bi = op->in[k].buf;
            const mdl_buf *bf = &m->bufs[bi];
            const uint64_t pad = im->rec_pad ? im->rec_pad(&s->env, &op->c, k) : 0;
            if (pad > s->pad[bi])
                s->pad[bi] = pad;
            if (bf->kind != MB_WEIGHT)
                continue;
            const uint64_t lay = im->rec_layout ? im->rec_layout(&s->env, &op->c, k) : 0;
            if (lay == 0 || lay == KB_REC_FOLDED || find_packed(s, bi, im))
                continue;
            packed *np = realloc(s->pk, sizeof *np * (size_t)(s->npk + 1));
            if (!np) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            s->pk = np;
            packed *p = &s->pk[s->npk++];
            *p = (packed){bi, im, NULL, lay};
            if (!(p->dev = kb_vk_buf_create(s->env.vk, lay, err, errlen)))
                return -1;
            const kb_vk_bind dst = {p->dev, 0, lay};
            if (im->rec_upload(&s->env, &op->c, k, in, &dst, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

/* Every buffer some op reads as it is or writes, with its padding (caches: zeros). */
static int place_buffers(vk_be *s, const mdl_graph *gs, int ng, char *err, size_t errlen)
{
    const mdl_model *m = s->b.m;
    char *need = calloc((size_t)m->nbufs, 1);
    if (!need) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int gi = 0; gi < ng; gi++)
        for (int i = 0; i < gs[gi].n; i++) {
            const mdl_op *op = &gs[gi].ops[i];
            const kb_impl *im = s->impl[kb_family_index(op->fam)];
            for (int k = 0; k < op->n_in; k++) {
                const uint64_t lay = im->rec_layout ? im->rec_layout(&s->env, &op->c, k) : 0;
                if (lay == 0)
                    need[op->in[k].buf] = 1;
            }
            for (int k = 0; k < op->n_out; k++)
                need[op->out[k].buf] = 1;
        }
    need[m->b_ids] = need[m->b_logits] = 1;
    int rc = 0;
    for (int i = 0; i < m->nbufs && rc == 0; i++) {
        const mdl_buf *bf = &m->bufs[i];
        if (!need[i])
            continue;
        const uint64_t n = bf->bytes + s->pad[i];
        if (!(s->dev[i] = kb_vk_buf_create(s->env.vk, n, err, errlen))) {
            rc = -1;
            break;
        }
        if (bf->host) {
            rc = kb_vk_buf_write(s->dev[i], 0, bf->host, bf->bytes, err, errlen);
            if (rc == 0 && s->pad[i]) {
                void *z = calloc(1, s->pad[i]);
                rc = z ? kb_vk_buf_write(s->dev[i], bf->bytes, z, s->pad[i], err, errlen) : -1;
                free(z);
            }
        } else if (bf->kind == MB_CACHE) { /* positions not yet written stay zero (rec_pad) */
            void *z = calloc(1, n);
            rc = z ? kb_vk_buf_write(s->dev[i], 0, z, n, err, errlen) : -1;
            free(z);
        }
        if (rc != 0 && !err[0])
            snprintf(err, errlen, "out of memory zeroing %s", bf->name);
    }
    free(need);
    return rc;
}

/* ---- recording ---- */

static int overlaps(const struct rng *v, int n, int buf, uint64_t lo, uint64_t hi)
{
    for (int i = 0; i < n; i++)
        if (v[i].buf == buf && lo < v[i].hi && v[i].lo < hi)
            return 1;
    return 0;
}

/* Ends the current group: a barrier and a timestamp. */
static void close_group(vk_be *s)
{
    kb_vk_cmd_barrier(s->cmd);
    kb_vk_cmd_mark(s->cmd); /* mark ngroups; without timestamps there is no breakdown */
    s->ngroups++;
    s->nrd = s->nwr = 0;
}

static int bind_of(vk_be *s, const mdl_op *op, int k, int is_out, const kb_tensor *t,
                   kb_vk_bind *b, char *err, size_t errlen)
{
    const mdl_model *m = s->b.m;
    const mdl_ref *r = is_out ? &op->out[k] : &op->in[k];
    const kb_impl *im = s->impl[kb_family_index(op->fam)];
    const uint64_t lay = !is_out && im->rec_layout ? im->rec_layout(&s->env, &op->c, k) : 0;
    if (lay == KB_REC_FOLDED) {
        *b = (kb_vk_bind){0};
        return 0;
    }
    if (lay) {
        packed *p = find_packed(s, r->buf, im);
        if (!p) {
            snprintf(err, errlen, "%s: %s was not uploaded", op->role, m->bufs[r->buf].name);
            return -1;
        }
        *b = (kb_vk_bind){p->dev, 0, p->bytes};
        return 0;
    }
    const uint64_t al = kb_vk_get_limits(s->env.vk)->storage_align;
    if (!s->dev[r->buf] || r->off % al || r->off + t->bytes > m->bufs[r->buf].bytes) {
        snprintf(err, errlen, "%s (%s, layer %d): %s at byte %llu of %s: %s", op->fam->name,
                 op->role, op->layer, t->name, (unsigned long long)r->off, m->bufs[r->buf].name,
                 !s->dev[r->buf] ? "not on the device"
                 : r->off % al   ? "not at a multiple of the device's storage alignment"
                                 : "past the buffer's end");
        return -1;
    }
    *b = (kb_vk_bind){s->dev[r->buf], r->off, t->bytes};
    return 0;
}

static int record_op(vk_be *s, const mdl_op *op, int idx, char *err, size_t errlen)
{
    const kb_impl *im = s->impl[kb_family_index(op->fam)];
    kb_tensor in[KB_MAX_TENSORS], out[KB_MAX_TENSORS];
    kb_vk_bind bi[KB_MAX_TENSORS], bo[KB_MAX_TENSORS], sc;
    mdl_op_tensors(op, in, out);
    for (int k = 0; k < op->n_in; k++)
        if (bind_of(s, op, k, 0, &in[k], &bi[k], err, errlen) != 0)
            return -1;
    for (int k = 0; k < op->n_out; k++)
        if (bind_of(s, op, k, 1, &out[k], &bo[k], err, errlen) != 0)
            return -1;
    const uint64_t scr = im->rec_scratch ? im->rec_scratch(&s->env, &op->c) : 0;
    if (scr > s->scratch_bytes) {
        snprintf(err, errlen, "%s: scratch of %llu bytes not sized", op->role,
                 (unsigned long long)scr);
        return -1;
    }
    /* hazards against the group so far */
    int hz = scr && (overlaps(s->wr, s->nwr, SCRATCH_BUF, 0, scr) ||
                     overlaps(s->rd, s->nrd, SCRATCH_BUF, 0, scr));
    for (int k = 0; k < op->n_in; k++)
        hz |= bi[k].buf && overlaps(s->wr, s->nwr, op->in[k].buf, op->in[k].off,
                                    op->in[k].off + in[k].bytes);
    for (int k = 0; k < op->n_out; k++)
        hz |= overlaps(s->wr, s->nwr, op->out[k].buf, op->out[k].off,
                       op->out[k].off + out[k].bytes) ||
              overlaps(s->rd, s->nrd, op->out[k].buf, op->out[k].off,
                       op->out[k].off + out[k].bytes);
    if (hz || s->nrd + op->n_in + 1 > 64 || s->nwr + op->n_out + 1 > 64)
        close_group(s);
    for (int k = 0; k < op->n_in; k++)
        if (bi[k].buf)
            s->rd[s->nrd++] = (struct rng){op->in[k].buf, op->in[k].off,
                                           op->in[k].off + in[k].bytes};
    for (int k = 0; k < op->n_out; k++)
        s->wr[s->nwr++] = (struct rng){op->out[k].buf, op->out[k].off,
                                       op->out[k].off + out[k].bytes};
    if (scr)
        s->wr[s->nwr++] = (struct rng){SCRATCH_BUF, 0, scr};
    sc = (kb_vk_bind){s->scratch, 0, scr};
    s->group_of[idx] = s->ngroups;
    s->op_bytes[idx] = op->fam->bytes ? op->fam->bytes(op->c.p) : 1.0;
    if (im->record(&s->env, &op->c, s->cmd, bi, bo, scr ? &sc : NULL, err, errlen) != 0) {
        char e2[256];
        snprintf(e2, sizeof e2, "%s", err);
        snprintf(err, errlen, "%s %s (%s, layer %d): %s", op->fam->name, im->name, op->role,
                 op->layer, e2);
        return -1;
    }
    return 0;
}

static int vk_run(mdl_backend *b, const mdl_graph *g, int ng, const int32_t *const *ids,
                  double *op_s, double *seconds, double *wall, float *logits, char *err,
                  size_t errlen)
{
    vk_be *s = (vk_be *)b;
    const mdl_model *m = b->m;
    const double t0 = kb_now();
    int nops = 0;
    uint64_t scr = 0;
    for (int c = 0; c < ng; c++)
        for (int i = 0; i < g[c].n; i++) {
            const kb_impl *im = s->impl[kb_family_index(g[c].ops[i].fam)];
            const uint64_t x = im->rec_scratch ? im->rec_scratch(&s->env, &g[c].ops[i].c) : 0;
            scr = x > scr ? x : scr;
            nops++;
        }
    if (scr > s->scratch_bytes) {
        kb_vk_buf_destroy(s->scratch);
        s->scratch_bytes = 0;
        if (!(s->scratch = kb_vk_buf_create(s->env.vk, scr, err, errlen)))
            return -1;
        s->scratch_bytes = scr;
    }
    if (nops > s->cap_ops) {
        free(s->group_of);
        free(s->op_bytes);
        s->group_of = malloc(sizeof *s->group_of * (size_t)nops);
        s->op_bytes = malloc(sizeof *s->op_bytes * (size_t)nops);
        if (!s->group_of || !s->op_bytes) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s->cap_ops = nops;
    }
    const int marks = nops + 2 * ng + 4;
    if (marks > s->cmd_marks) {
        kb_vk_cmd_destroy(s->cmd);
        s->cmd_marks = 0;
        if (!(s->cmd = kb_vk_cmd_create_marked(s->env.vk, marks, err, errlen)))
            return -1;
        s->cmd_marks = marks;
    } else if (kb_vk_cmd_reset(s->cmd, err, errlen) != 0) {
        return -1;
    }
    s->ngroups = s->nrd = s->nwr = 0;
    int k = 0;
    for (int c = 0; c < ng; c++) {
        if (c > 0)
            close_group(s);
        if (kb_vk_cmd_update(s->cmd, s->dev[m->b_ids], 0, ids[c],
                             sizeof(int32_t) * (size_t)g[c].ntok, err, errlen) != 0)
            return -1;
        for (int i = 0; i < g[c].n; i++, k++)
            if (record_op(s, &g[c].ops[i], k, err, errlen) != 0)
                return -1;
    }
    close_group(s);
    const uint64_t lb = 4ull * (uint64_t)m->cfg.vocab;
    if (kb_vk_cmd_copy(s->cmd, s->dev[m->b_logits], 0, s->logits_host, 0, lb, err, errlen) != 0 ||
        kb_vk_cmd_submit(s->cmd, seconds, err, errlen) != 0)
        return -1;
    *wall = kb_now() - t0;
    memcpy(logits, kb_vk_buf_map(s->logits_host), lb);
    if (op_s) {
        double *t = malloc(sizeof *t * (size_t)(s->ngroups + 1));
        double *gb = calloc((size_t)s->ngroups + 1, sizeof *gb);
        if (!t || !gb || kb_vk_cmd_mark_times(s->cmd, t, s->ngroups, err, errlen) != 0) {
            free(t);
            free(gb);
            for (int i = 0; i < nops; i++) /* no timestamps: the whole, by bytes */
                op_s[i] = 0;
            return 0;
        }
        for (int i = 0; i < nops; i++)
            gb[s->group_of[i]] += s->op_bytes[i];
        for (int i = 0; i < nops; i++) {
            const int gi = s->group_of[i]; /* group gi ends at mark gi */
            const double dt = t[gi] - (gi > 0 ? t[gi - 1] : 0.0);
            op_s[i] = gb[gi] > 0 ? dt * s->op_bytes[i] / gb[gi] : 0;
        }
        free(t);
        free(gb);
    }
    return 0;
}

mdl_backend *mdl_backend_vk(const mdl_model *m, int device, const char *spec, char *err,
                            size_t errlen)
{
    vk_be *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->b.m = m;
    s->b.name = "vk";
    s->b.run = vk_run;
    s->b.free = vk_free;
    s->dev = calloc((size_t)m->nbufs, sizeof *s->dev);
    s->pad = calloc((size_t)m->nbufs, sizeof *s->pad);
    s->impl = calloc((size_t)kb_family_count(), sizeof *s->impl);
    if (!s->dev || !s->pad || !s->impl) {
        snprintf(err, errlen, "out of memory");
        vk_free(&s->b);
        return NULL;
    }
    char verr[512];
    if (!(s->env.vk = kb_vk_create(device, verr, sizeof verr))) {
        snprintf(err, errlen, "Vulkan: %s", verr);
        vk_free(&s->b);
        return NULL;
    }
    /* a decode step at the last position and a prefill chunk at the end of the cache: every
     * family, every weight, the largest padding */
    mdl_graph gs[2];
    int ng = 0;
    const int pre = m->cfg.ctx >= 2 ? (m->cfg.ctx < MDL_CHUNK ? m->cfg.ctx : MDL_CHUNK) : 1;
    err[0] = 0;
    if (mdl_choose_impls(&s->b, KB_BACKEND_VULKAN, &s->env, spec, s->impl, err, errlen) != 0 ||
        mdl_graph_build(m, 1, m->cfg.ctx - 1, 1, &gs[ng++], err, errlen) != 0 ||
        mdl_graph_build(m, pre, m->cfg.ctx - pre, 1, &gs[ng++], err, errlen) != 0)
        goto fail;
    int rc = 0;
    for (int i = 0; i < ng && rc == 0; i++)
        rc = place_inputs(s, &gs[i], err, errlen);
    if (rc == 0)
        rc = place_buffers(s, gs, ng, err, errlen);
    if (rc == 0 && !(s->logits_host = kb_vk_buf_create_host(s->env.vk, 4ull * (uint64_t)m->cfg.vocab,
                                                            err, errlen)))
        rc = -1;
    for (int i = 0; i < ng; i++)
        mdl_graph_free(&gs[i]);
    if (rc != 0) {
        char e2[256];
        snprintf(e2, sizeof e2, "%s", err);
        snprintf(err, errlen, "Vulkan set-up: %s", e2);
        vk_free(&s->b);
        return NULL;
    }
    snprintf(s->b.impls + strlen(s->b.impls), sizeof s->b.impls - strlen(s->b.impls),
             " | %s", kb_vk_describe(s->env.vk));
    return &s->b;
fail:
    for (int i = 0; i < ng; i++)
        mdl_graph_free(&gs[i]);
    vk_free(&s->b);
    return NULL;
}
#endif /* KB_HAVE_VULKAN */
