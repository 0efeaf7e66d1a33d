/* The CPU backends: "ref" runs every op's reference (the definition, double accumulation),
 * "cpu" the chosen CPU implementation's cpu_run (or its prepare/run/finish) on the same
 * buffers; each has its own activations and caches, the weights are the model's. Each op is
 * timed with the wall clock. */
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "stats.h"

typedef struct cpu_be {
    mdl_backend b;
    int ref;
    kb_pool *pool;
    kb_env env;
    void **mem; /* per buffer */
    const kb_impl **impl; /* per family (registry index) */
    double *rms;          /* layers + 1 */
} cpu_be;

/* ---- choosing implementations ---- */

/* The spec's choice for family f: "family=impl" for it, or a bare name (any family that has
 * an implementation of that name). NULL when the spec says nothing for f. */
static const char *spec_for(const char *spec, const char *fam, char *buf, size_t n)
{
    if (!spec)
        return NULL;
    const char *found = NULL;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", spec);
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (eq) {
            *eq = 0;
            if (strcmp(t, fam) == 0) {
                snprintf(buf, n, "%s", eq + 1);
                return buf; /* a named family wins over a bare name */
            }
        } else if (!found) {
            for (int i = 0; i < kb_impl_count(); i++)
                if (strcmp(kb_impl_at(i)->family, fam) == 0 && strcmp(kb_impl_at(i)->name, t) == 0) {
                    snprintf(buf, n, "%s", t);
                    found = buf;
                }
        }
    }
    return found;
}

int mdl_impl_spec_check(const char *spec, char *err, size_t errlen)
{
    if (!spec)
        return 0;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", spec);
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        const char *fam = eq ? t : NULL, *name = eq ? eq + 1 : t;
        if (eq)
            *eq = 0;
        int ok = 0;
        for (int i = 0; i < kb_impl_count(); i++)
            ok |= (!fam || strcmp(kb_impl_at(i)->family, fam) == 0) &&
                  strcmp(kb_impl_at(i)->name, name) == 0;
        if (!ok) {
            snprintf(err, errlen, "--impl: no implementation %s%s%s (kbench --list)",
                     fam ? fam : "", fam ? "=" : "", name);
            return -1;
        }
    }
    return 0;
}

const kb_impl *mdl_pick_impl(const kb_family *f, kb_backend be, const kb_env *env,
                             const char *spec, int need_record, char *why, size_t whylen)
{
    char want_buf[64];
    const char *want = spec_for(spec, f->name, want_buf, sizeof want_buf);
    const kb_impl *best = NULL;
    const char *reason = NULL;
    for (int i = 0; i < kb_impl_count(); i++) {
        const kb_impl *m = kb_impl_at(i);
        if (strcmp(m->family, f->name) != 0 || m->backend != be || strcmp(m->name, "ref") == 0)
            continue;
        if (want && strcmp(m->name, want) != 0)
            continue;
        const char *no = need_record && !m->record ? "no recording form" : NULL;
        if (!no && be == KB_BACKEND_VULKAN && !env->vk)
            no = "no Vulkan device";
        if (!no && m->available)
            no = m->available(env);
        if (no) {
            reason = no;
            if (want) {
                snprintf(why, whylen, "%s %s: %s", f->name, m->name, no);
                return NULL;
            }
            continue;
        }
        best = m; /* the registry lists a family's kernels from the plainest ISA up */
    }
    if (!best)
        snprintf(why, whylen, "%s: no %s implementation runs here%s%s", f->name,
                 be == KB_BACKEND_CPU ? "CPU" : "Vulkan", reason ? " (" : "",
                 reason ? reason : "");
    if (!best && reason)
        snprintf(why + strlen(why), whylen - strlen(why), ")");
    return best;
}

/* ---- running ---- */

static int tensors_of(const mdl_model *m, void **mem, const mdl_op *op, kb_tensor *in,
                      kb_tensor *out, char *err, size_t errlen)
{
    mdl_op_tensors(op, in, out);
    for (int k = 0; k < op->n_in + op->n_out; k++) {
        kb_tensor *t = k < op->n_in ? &in[k] : &out[k - op->n_in];
        const mdl_ref *r = k < op->n_in ? &op->in[k] : &op->out[k - op->n_in];
        if (r->buf < 0 || r->off + t->bytes > m->bufs[r->buf].bytes) {
            snprintf(err, errlen, "%s (%s): tensor %s outside buffer %s", op->fam->name,
                     op->role, t->name, r->buf < 0 ? "(none)" : m->bufs[r->buf].name);
            return -1;
        }
        t->data = (char *)mem[r->buf] + r->off;
    }
    return 0;
}

static void layer_rms(cpu_be *s, const mdl_graph *g, int slot)
{
    const mdl_model *m = s->b.m;
    const int64_t H = m->cfg.hidden;
    const float *x = (const float *)s->mem[m->b_x] + (int64_t)(g->ntok - 1) * H;
    double a = 0;
    for (int64_t i = 0; i < H; i++)
        a += (double)x[i] * x[i];
    s->rms[slot] = sqrt(a / (double)H);
}

static int cpu_run_chunks(mdl_backend *b, const mdl_graph *g, int ng, const int32_t *const *ids,
                          double *op_s, double *seconds, double *wall, float *logits, char *err,
                          size_t errlen)
{
    cpu_be *s = (cpu_be *)b;
    const mdl_model *m = b->m;
    const double t0 = kb_now();
    int k = 0;
    for (int c = 0; c < ng; c++) {
        memcpy(s->mem[m->b_ids], ids[c], sizeof(int32_t) * (size_t)g[c].ntok);
        for (int i = 0; i < g[c].n; i++, k++) {
            const mdl_op *op = &g[c].ops[i];
            kb_tensor in[KB_MAX_TENSORS], out[KB_MAX_TENSORS];
            if (tensors_of(m, s->mem, op, in, out, err, errlen) != 0)
                return -1;
            const double a = kb_now();
            if (s->ref) {
                op->fam->reference(op->c.p, in, out);
            } else {
                const kb_impl *im = s->impl[kb_family_index(op->fam)];
                if (im->cpu_run) {
                    im->cpu_run(&op->c, in, out, s->pool);
                } else { /* the general form: repacking CPU kernels */
                    void *st = im->prepare(&s->env, &op->c, in, out, err, errlen);
                    int rc = st ? im->run(st, &s->env, NULL) : -1;
                    if (st && rc == 0 && im->finish)
                        rc = im->finish(st, out);
                    if (st && im->release)
                        im->release(st);
                    if (rc != 0) {
                        if (!st)
                            return -1;
                        snprintf(err, errlen, "%s %s failed", op->fam->name, im->name);
                        return -1;
                    }
                }
            }
            if (op_s)
                op_s[k] = kb_now() - a;
            if (op->layer < 0 && strcmp(op->role, "embed") == 0)
                layer_rms(s, &g[c], 0);
            else if (strcmp(op->role, "ffn_residual") == 0)
                layer_rms(s, &g[c], op->layer + 1);
        }
    }
    *seconds = *wall = kb_now() - t0;
    if (logits)
        memcpy(logits, s->mem[m->b_logits], sizeof(float) * (size_t)m->cfg.vocab);
    return 0;
}

static const double *cpu_rms(mdl_backend *b) { return ((cpu_be *)b)->rms; }

static void cpu_free(mdl_backend *b)
{
    cpu_be *s = (cpu_be *)b;
    if (!s)
        return;
    const mdl_model *m = b->m;
    for (int i = 0; s->mem && i < m->nbufs; i++)
        if (m->bufs[i].kind == MB_ACT || m->bufs[i].kind == MB_CACHE || m->bufs[i].kind == MB_IDS)
            free(s->mem[i]);
    free(s->mem);
    free(s->impl);
    free(s->rms);
    kb_pool_destroy(s->pool);
    free(s);
}

/* The families a model's graphs use (a chunk and a decode step cover them all). */
static int families_used(const mdl_model *m, const kb_family **fams, int max, char *err,
                         size_t errlen)
{
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        mdl_graph g;
        const int ntok = pass == 0 ? 1 : (m->cfg.ctx >= 2 ? 2 : 1);
        if (mdl_graph_build(m, ntok, 0, 1, &g, err, errlen) != 0)
            return -1;
        for (int i = 0; i < g.n; i++) {
            int seen = 0;
            for (int j = 0; j < n; j++)
                seen |= fams[j] == g.ops[i].fam;
            if (!seen && n < max)
                fams[n++] = g.ops[i].fam;
        }
        mdl_graph_free(&g);
    }
    return n;
}

/* Chooses every family's implementation for backend be; fills the description. */
int mdl_choose_impls(mdl_backend *b, kb_backend be, const kb_env *env, const char *spec,
                     const kb_impl **impl, char *err, size_t errlen)
{
    const kb_family *fams[64];
    int n = families_used(b->m, fams, 64, err, errlen);
    if (n < 0)
        return -1;
    b->impls[0] = 0;
    b->precision_why[0] = 0;
    for (int i = 0; i < n; i++) {
        const kb_impl *im = mdl_pick_impl(fams[i], be, env, spec, be == KB_BACKEND_VULKAN, err,
                                          errlen);
        if (!im)
            return -1;
        impl[kb_family_index(fams[i])] = im;
        snprintf(b->impls + strlen(b->impls), sizeof b->impls - strlen(b->impls), "%s%s=%s",
                 b->impls[0] ? " " : "", fams[i]->name, im->name);
        /* lower precision: a tolerance 100x the family's or more (int8 activations, f16
         * products), not the few ulp of a GLSL exp */
        const double ft = fams[i]->condition ? fams[i]->tol_cond : fams[i]->tol_nmse;
        const double it = fams[i]->condition ? im->tol_cond : im->tol_nmse;
        if (im->tol_why && it >= 100 * ft) {
            b->low_precision = 1;
            snprintf(b->precision_why + strlen(b->precision_why),
                     sizeof b->precision_why - strlen(b->precision_why), "%s%s %s: %s",
                     b->precision_why[0] ? "; " : "", fams[i]->name, im->name, im->tol_why);
        }
    }
    return 0;
}

static cpu_be *cpu_new(const mdl_model *m, int ref, char *err, size_t errlen)
{
    cpu_be *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->b.m = m;
    s->b.name = ref ? "ref" : "cpu";
    s->b.run = cpu_run_chunks;
    s->b.hidden_rms = cpu_rms;
    s->b.free = cpu_free;
    s->ref = ref;
    s->mem = calloc((size_t)m->nbufs, sizeof *s->mem);
    s->impl = calloc((size_t)kb_family_count(), sizeof *s->impl);
    s->rms = calloc((size_t)m->cfg.layers + 1, sizeof *s->rms);
    if (!s->mem || !s->impl || !s->rms)
        goto oom;
    for (int i = 0; i < m->nbufs; i++) {
        const mdl_buf *bf = &m->bufs[i];
        if (bf->kind == MB_WEIGHT || bf->kind == MB_TABLE) {
            s->mem[i] = bf->host;
        } else {
            s->mem[i] = calloc(1, bf->bytes ? bf->bytes : 1);
            if (!s->mem[i]) {
                snprintf(err, errlen, "cannot allocate %.1f MiB for %s", (double)bf->bytes / (1 << 20),
                         bf->name);
                cpu_free(&s->b);
                return NULL;
            }
        }
    }
    return s;
oom:
    snprintf(err, errlen, "out of memory");
    cpu_free(&s->b);
    return NULL;
}

mdl_backend *mdl_backend_ref(const mdl_model *m, char *err, size_t errlen)
{
    cpu_be *s = cpu_new(m, 1, err, errlen);
    if (!s)
        return NULL;
    snprintf(s->b.impls, sizeof s->b.impls, "every family's reference (double accumulation)");
    return &s->b;
}

mdl_backend *mdl_backend_cpu(const mdl_model *m, int threads, const char *spec, char *err,
                             size_t errlen)
{
    cpu_be *s = cpu_new(m, 0, err, errlen);
    if (!s)
        return NULL;
    s->pool = kb_pool_create(threads, 1);
    s->env.pool = s->pool;
    if (!s->pool || mdl_choose_impls(&s->b, KB_BACKEND_CPU, &s->env, spec, s->impl, err,
                                     errlen) != 0) {
        if (!s->pool)
            snprintf(err, errlen, "cannot start %d threads", threads);
        cpu_free(&s->b);
        return NULL;
    }
    return &s->b;
}
