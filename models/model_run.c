/* The run of `kbench model`: the same prompt through each backend (prefill in chunks of
 * MDL_CHUNK tokens, then --gen greedy decode steps), logits diffed against the reference
 * backend step by step, times per op (the breakdown), and the roofline: the bytes a decode step
 * must move (the families' cost models) over the read bandwidth.
 *
 * Teacher forcing: when the reference backend runs, every other backend decodes the
 * reference's greedy tokens, so that each step's logits are comparable; a backend's own argmax
 * is compared with the reference's at every step (the first step where they differ is
 * reported, with the reference's top-1 margin there). */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate.h"
#include "model_run.h"
#include "runner.h"
#include "stats.h"
#include "suite.h"
#include "sysinfo.h"

/* Logits NMSE a backend may show against the reference (f64) after a whole forward pass:
 * f32 arithmetic measured ~1e-12..1e-9 (8 Llama-3-8B layers); 1e-6 leaves margin for other
 * summation orders and depths while a wrong kernel gives ~1. Backends with a lower-precision
 * kernel (int8 activations: each matvec ~3e-5, compounding over layers; f16 attention
 * products) are held to 3e-2, which still fails a broken one, and say which kernels. */
#define TOL_F32 1e-6
#define TOL_LOW 3e-2

static int argmax(const float *v, int n, double *margin)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i; /* ties to the lower id */
    if (margin) {
        double second = -INFINITY;
        for (int i = 0; i < n; i++)
            if (i != best && v[i] > second)
                second = v[i];
        *margin = (double)v[best] - second;
    }
    return best;
}

static double nmse(const float *a, const float *ref, int n)
{
    double se = 0, r2 = 0;
    for (int i = 0; i < n; i++) {
        const double d = (double)a[i] - ref[i];
        se += d * d;
        r2 += (double)ref[i] * ref[i];
    }
    return r2 > 0 ? se / r2 : (se > 0 ? INFINITY : 0);
}

static double median_of(const double *x, int n)
{
    if (n <= 0)
        return NAN;
    kb_stats st;
    kb_stats_compute(x, n, &st);
    return st.median;
}

void mdl_kbench_line(const kb_family *f, const char *shape, const kb_impl *impl, int threads,
                     char *buf, size_t n)
{
    char sh[200];
    snprintf(sh, sizeof sh, "%s", shape);
    for (char *p = sh; *p; p++)
        if (*p == ' ')
            *p = ',';
    int k = snprintf(buf, n, "kbench --kernel '^%s$' --shape %s --impl '^%s$'", f->name, sh,
                     impl ? impl->name : "ref");
    if (impl && impl->backend == KB_BACKEND_CPU && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, " --threads %d", threads);
}

/* The read bandwidth for the roofline: the calibration file's, or a read measured now (the
 * suites' yardstick: the best implementation, median of a cold 512 MiB read). */
static double read_bw(const mdl_opts *o, int vk, int threads, char *src, size_t n)
{
    if (o->calibration) {
        kb_peaks pk;
        char why[256];
        const int rc = kb_calibration_load(o->calibration, &pk, why, sizeof why);
        if (rc == -2)
            fprintf(stderr, "kbench model: %s; measuring the read instead\n", why);
        if (rc == 0) {
            const double v = vk ? pk.vk_read_gbps
                                : threads <= KB_CAL_MAX_THREADS ? pk.read_gbps[threads] : 0;
            if (v > 0) {
                snprintf(src, n, "%s", o->calibration);
                return v;
            }
        }
    }
    kb_case_list cl = {0};
    char err[256];
    if (kb_suite_parse_line(vk ? "read mib=256" : "read mib=512", &cl, err, sizeof err) != 0)
        return 0;
    kb_options ro;
    kb_options_default(&ro);
    ro.impl_re = vk ? "^vk$" : kb_cpu()->avx512f ? "^avx512$" : "^avx2$";
    ro.n_threads = 1;
    ro.threads[0] = threads;
    ro.min_time = 0.3;
    ro.max_time = 1.0;
    ro.device = o->device;
    ro.no_vulkan = !vk;
    kb_results r = {0};
    kb_run(&ro, &cl, &r);
    double bw = 0;
    for (int i = 0; i < r.n; i++)
        if (r.v[i].status == KB_PASS && r.v[i].median > 0)
            bw = r.v[i].bytes / r.v[i].median * 1e-9;
    kb_results_free(&r);
    kb_case_list_free(&cl);
    snprintf(src, n, "read measured in this run (kbench --kernel read --shape mib=%d --impl '%s'%s)",
             vk ? 256 : 512, ro.impl_re, vk ? "" : threads == 2 ? " --threads 2" : "");
    return bw;
}

/* Per-op medians over the decode steps, grouped by family and shape of the last step. */
static int breakdown(mdl_bres *br, const mdl_graph *last, double *const *op_s, int steps,
                     const kb_impl *const *impl_of)
{
    double *v = malloc(sizeof *v * (size_t)(steps > 0 ? steps : 1));
    br->rows = calloc((size_t)last->n, sizeof *br->rows);
    if (!v || !br->rows) {
        free(v);
        return -1;
    }
    for (int i = 0; i < last->n; i++) {
        const mdl_op *op = &last->ops[i];
        for (int s = 0; s < steps; s++)
            v[s] = op_s[s][i];
        const double t = median_of(v, steps);
        char shape[160];
        kb_case_format(&op->c, shape, sizeof shape);
        mdl_brow *row = NULL;
        for (int k = 0; k < br->nrows; k++)
            if (br->rows[k].fam == op->fam && strcmp(br->rows[k].shape, shape) == 0)
                row = &br->rows[k];
        if (!row) {
            row = &br->rows[br->nrows++];
            row->fam = op->fam;
            row->impl = impl_of ? impl_of[kb_family_index(op->fam)] : NULL;
            snprintf(row->shape, sizeof row->shape, "%s", shape);
        }
        row->calls++;
        row->sec += t;
        row->bytes += op->fam->bytes ? op->fam->bytes(op->c.p) : 0;
    }
    free(v);
    /* largest first */
    for (int a = 0; a < br->nrows; a++)
        for (int b = a + 1; b < br->nrows; b++)
            if (br->rows[b].sec > br->rows[a].sec) {
                mdl_brow t = br->rows[a];
                br->rows[a] = br->rows[b];
                br->rows[b] = t;
            }
    return 0;
}

/* The implementation table a backend chose (for the kbench lines); NULL for ref. */
static const kb_impl **impls_of(const mdl_backend *b, const mdl_model *m)
{
    if (strcmp(b->name, "ref") == 0)
        return NULL;
    const kb_impl **t = calloc((size_t)kb_family_count(), sizeof *t);
    if (!t)
        return NULL;
    /* parse "family=impl ..." back: the backend's own table is private */
    char buf[768];
    snprintf(buf, sizeof buf, "%s", b->impls);
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        if (!eq)
            continue;
        *eq = 0;
        const kb_family *f = kb_family_find(w);
        for (int i = 0; f && i < kb_impl_count(); i++) {
            const kb_impl *im = kb_impl_at(i);
            if (strcmp(im->family, w) == 0 && strcmp(im->name, eq + 1) == 0 &&
                (im->backend == KB_BACKEND_VULKAN) == (strcmp(b->name, "vk") == 0))
                t[kb_family_index(f)] = im;
        }
    }
    (void)m;
    return t;
}

static int wants(const char *list, const char *name)
{
    if (!list || strcmp(list, "all") == 0)
        return 1;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
        if (strcmp(w, name) == 0)
            return 1;
    return 0;
}

/* One backend: prefill, decode, diffs, breakdown. ref_logits [gen+1][vocab] are written when
 * this is the reference, read otherwise (NULL: no reference). tokens[gen] are the tokens
 * decoded (the reference's when it ran first). */
static int run_backend(const mdl_opts *o, mdl_model *m, mdl_backend *be, mdl_bres *br,
                       const int32_t *prompt, float *ref_logits, int is_ref, int have_ref,
                       int32_t *tokens, char *err, size_t errlen)
{
    const mdl_config *c = &m->cfg;
    const int P = o->prompt, G = o->gen, V = c->vocab;
    const int nch = (P + MDL_CHUNK - 1) / MDL_CHUNK;
    mdl_graph *pg = calloc((size_t)nch, sizeof *pg);
    const int32_t **ids = calloc((size_t)nch, sizeof *ids);
    float *logits = malloc(sizeof(float) * (size_t)V);
    double **op_s = calloc((size_t)(G > 0 ? G : 1), sizeof *op_s);
    br->step_s = calloc((size_t)G + 1, sizeof(double));
    br->step_wall = calloc((size_t)G + 1, sizeof(double));
    br->nmse = calloc((size_t)G + 1, sizeof(double));
    br->agree = calloc((size_t)G + 1, sizeof(int));
    br->argmax = calloc((size_t)G + 1, sizeof(int32_t));
    br->margin = calloc((size_t)G + 1, sizeof(double));
    mdl_graph dg = {0};
    int rc = -1;
    if (!pg || !ids || !logits || !op_s || !br->step_s || !br->step_wall || !br->nmse ||
        !br->agree || !br->argmax || !br->margin) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int k = 0; k < nch; k++) {
        const int p0 = k * MDL_CHUNK, n = P - p0 < MDL_CHUNK ? P - p0 : MDL_CHUNK;
        if (mdl_graph_build(m, n, p0, k == nch - 1, &pg[k], err, errlen) != 0)
            goto out;
        ids[k] = prompt + p0;
    }
    br->first_diff = -1;
    br->max_nmse = 0;
    for (int s = 0; s <= G; s++) {
        double sec, wall;
        if (s == 0) {
            if (be->run(be, pg, nch, ids, NULL, &sec, &wall, logits, err, errlen) != 0)
                goto out;
            br->prefill_s = sec;
            br->prefill_wall = wall;
        } else {
            const int32_t *tok = &tokens[s - 1];
            mdl_graph_free(&dg);
            if (mdl_graph_build(m, 1, P + s - 1, 1, &dg, err, errlen) != 0)
                goto out;
            if (!(op_s[s - 1] = malloc(sizeof(double) * (size_t)dg.n))) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            if (be->run(be, &dg, 1, &tok, op_s[s - 1], &sec, &wall, logits, err, errlen) != 0)
                goto out;
            br->step_s[s - 1] = sec;
            br->step_wall[s - 1] = wall;
            for (int i = 0; i < dg.n; i++)
                br->bytes_step += dg.ops[i].fam->bytes ? dg.ops[i].fam->bytes(dg.ops[i].c.p) : 0;
        }
        double margin;
        br->argmax[s] = argmax(logits, V, &margin);
        float *rl = ref_logits ? ref_logits + (size_t)s * V : NULL;
        if (is_ref && rl)
            memcpy(rl, logits, sizeof(float) * (size_t)V);
        if (!have_ref || is_ref) /* greedy on its own logits */
            tokens[s] = br->argmax[s];
        if (have_ref && !is_ref) {
            br->nmse[s] = nmse(logits, rl, V);
            br->agree[s] = br->argmax[s] == argmax(rl, V, &br->margin[s]);
            br->n_agree += br->agree[s];
            if (!br->agree[s] && br->first_diff < 0)
                br->first_diff = s;
            if (!(br->nmse[s] <= br->max_nmse))
                br->max_nmse = br->nmse[s];
            br->compared++;
        }
        if (!o->quiet)
            fprintf(stderr, "\r\033[K%s: %s %d of %d", be->name, s == 0 ? "prefill" : "decode", s,
                    G);
    }
    if (!o->quiet)
        fprintf(stderr, "\r\033[K");
    br->bytes_step = G > 0 ? br->bytes_step / G : 0;
    /* figures */
    br->prefill_tps = P / br->prefill_s;
    double med = median_of(br->step_s, G), medw = median_of(br->step_wall, G);
    br->decode_tps = G > 0 ? 1.0 / med : NAN;
    br->decode_tps_wall = G > 0 ? 1.0 / medw : NAN;
    if (G > 0) {
        const kb_impl **t = impls_of(be, m);
        if (breakdown(br, &dg, op_s, G, t) != 0) {
            free(t);
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        free(t);
    }
    if (be->hidden_rms) {
        br->rms = malloc(sizeof(double) * (size_t)(c->layers + 1));
        if (br->rms)
            memcpy(br->rms, be->hidden_rms(be), sizeof(double) * (size_t)(c->layers + 1));
    }
    rc = 0;
out:
    for (int k = 0; pg && k < nch; k++)
        mdl_graph_free(&pg[k]);
    for (int s = 0; op_s && s < G; s++)
        free(op_s[s]);
    mdl_graph_free(&dg);
    free(pg);
    free(ids);
    free(logits);
    free(op_s);
    return rc;
}

int mdl_run_all(const mdl_opts *o, mdl_model *m, mdl_report *r)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->m = m;
    const mdl_config *c = &m->cfg;
    r->weight_bytes = mdl_weight_bytes(m);
    const int G = o->gen, V = c->vocab;
    r->prompt = malloc(sizeof(int32_t) * (size_t)(o->prompt > 0 ? o->prompt : 1));
    int32_t *tokens = calloc((size_t)G + 1, sizeof *tokens);
    float *ref_logits = NULL;
    if (!r->prompt || !tokens)
        return -1;
    kb_rng rng;
    kb_rng_seed(&rng, o->seed ^ 0x5eedull);
    for (int i = 0; i < o->prompt; i++)
        r->prompt[i] = (int32_t)(kb_rng_u64(&rng) % (uint64_t)V);
    const char *names[MDL_MAX_BACKENDS] = {"ref", "cpu", "vk"};
    int have_ref = wants(o->backends, "ref");
    if (have_ref && !(ref_logits = malloc(sizeof(float) * (size_t)V * (size_t)(G + 1)))) {
        free(tokens);
        return -1;
    }
    int bad = 0;
    for (int k = 0; k < MDL_MAX_BACKENDS; k++) {
        if (!wants(o->backends, names[k]))
            continue;
        mdl_bres *br = &r->b[r->nb++];
        br->name = names[k];
        char err[512] = "";
        mdl_backend *be = k == 0   ? mdl_backend_ref(m, err, sizeof err)
                          : k == 1 ? mdl_backend_cpu(m, o->threads, o->impl, err, sizeof err)
                                   : mdl_backend_vk(m, o->device, o->impl, err, sizeof err);
        if (!be) {
            snprintf(br->err, sizeof br->err, "%s", err);
            bad++;
            have_ref &= k != 0; /* no reference to diff against */
            continue;
        }
        snprintf(br->impls, sizeof br->impls, "%s", be->impls);
        br->low_precision = be->low_precision;
        snprintf(br->precision_why, sizeof br->precision_why, "%s", be->precision_why);
        br->tol = be->low_precision ? TOL_LOW : TOL_F32;
        if (run_backend(o, m, be, br, r->prompt, ref_logits, k == 0, have_ref, tokens, err,
                        sizeof err) != 0) {
            snprintf(br->err, sizeof br->err, "%s", err);
            bad++;
            be->free(be);
            have_ref &= k != 0;
            continue;
        }
        be->free(be);
        br->ran = 1;
        br->pass = !have_ref || k == 0 || br->max_nmse <= br->tol;
        bad += !br->pass;
        if (k != 0 && G > 0 && !o->no_roofline) {
            br->read_gbps = read_bw(o, k == 2, o->threads, br->read_src, sizeof br->read_src);
            if (br->read_gbps > 0 && br->bytes_step > 0) {
                br->roofline_tps = br->read_gbps * 1e9 / br->bytes_step;
                br->share = br->decode_tps / br->roofline_tps;
            }
        }
    }
    snprintf(r->note, sizeof r->note, "%s",
             have_ref ? "every backend decodes the reference's greedy tokens (teacher forcing); "
                        "NMSE and top-1 against the reference's logits at each step"
                      : "no reference backend: greedy decoding on each backend's own logits, no "
                        "diff");
    free(tokens);
    free(ref_logits);
    return bad;
}

void mdl_report_free(mdl_report *r)
{
    for (int k = 0; k < r->nb; k++) {
        mdl_bres *b = &r->b[k];
        free(b->step_s);
        free(b->step_wall);
        free(b->nmse);
        free(b->agree);
        free(b->argmax);
        free(b->margin);
        free(b->rows);
        free(b->rms);
    }
    free(r->prompt);
    memset(r, 0, sizeof *r);
}
