#include "runner.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diff.h"
#include "dump.h"
#include "npy.h"
#include "perfctl.h"
#include "stats.h"
#include "sysinfo.h"

#ifdef KB_HAVE_VULKAN
#include "calibrate_vk.h"
#include "vk.h"
#endif

#define MAX_COPIES 64
#define MAX_SAMPLES 200000
#define VK_ROTATE_BYTES (256.0 * 1024 * 1024) /* beyond any GPU L2 seen (H100: 50 MB) */
#define KB_REF_TIME_LIMIT 0.05 /* s: a ref row slower than this is not timed (--time-ref) */

void kb_options_default(kb_options *o)
{
    memset(o, 0, sizeof *o);
    o->device = -1;
    o->seed = 1234;
    o->min_time = 0.1;
    o->max_time = 1.0;
    o->noise_pct = 3.0;
    o->min_samples = 10;
    o->repetitions = 1;
}

const char *kb_status_name(kb_status s)
{
    static const char *n[] = {"pass", "FAIL", "skip", "ERROR"};
    return n[s];
}

void kb_results_free(kb_results *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->v[i].samples);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static kb_result *new_result(kb_results *r, const kb_case *c, const kb_impl *impl, int threads)
{
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        kb_result *v = realloc(r->v, sizeof(kb_result) * (size_t)cap);
        if (!v) {
            fprintf(stderr, "kbench: out of memory for results\n");
            exit(2);
        }
        r->v = v;
        r->cap = cap;
    }
    kb_result *x = &r->v[r->n++];
    memset(x, 0, sizeof *x);
    x->c = *c;
    x->impl = impl;
    x->threads = threads;
    x->nmse = x->max_abs = x->cosine = x->cond_err = x->median = x->min = x->p90 = x->wall_median = NAN;
    x->noise_pct = x->gbps = x->gflops = x->ci_lo = x->ci_hi = NAN;
    x->pct_peak_bw = x->pct_peak_flops = NAN;
    x->bytes = c->fam->bytes ? c->fam->bytes(c->p) : NAN;
    x->flops = c->fam->flops ? c->fam->flops(c->p) : NAN;
    return x;
}

/* ---- one case's data ------------------------------------------------------------------- */

typedef struct {
    int n_in, n_out;
    kb_tensor in[KB_MAX_TENSORS], ref[KB_MAX_TENSORS], out[KB_MAX_TENSORS];
    kb_tensor copies[MAX_COPIES][KB_MAX_TENSORS]; /* copies[0] aliases in */
    int n_copies;
    double rotated_bytes;
    double rotated_read; /* of rotated_bytes, what one call reads (sizes the copies) */
    unsigned next_copy;  /* the case's timed runs, all rows together, take copies in turn */
    double ref_seconds;  /* one run of the reference (in case_setup) */
    double *cond[KB_MAX_TENSORS]; /* the family's conditioning of each output, once per case */
} case_data;

static uint64_t case_seed(uint64_t seed, const kb_case *c)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull; /* FNV-1a over family name and parameters */
    for (const char *s = c->fam->name; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    for (int i = 0; i < c->fam->nparams; i++)
        h = (h ^ (uint64_t)c->p[i]) * 0x100000001b3ull;
    return h;
}

static void case_free(case_data *d)
{
    for (int k = 1; k < d->n_copies; k++)
        for (int i = 0; i < d->n_in; i++)
            if (d->copies[k][i].data != d->in[i].data)
                kb_tensor_free(&d->copies[k][i]);
    for (int i = 0; i < d->n_in; i++)
        kb_tensor_free(&d->in[i]);
    for (int i = 0; i < d->n_out; i++) {
        kb_tensor_free(&d->ref[i]);
        kb_tensor_free(&d->out[i]);
        free(d->cond[i]);
    }
    memset(d, 0, sizeof *d);
}

static double gib(double b) { return b / (1024.0 * 1024 * 1024); }

static unsigned rot_mask(const kb_case *c)
{
    return c->fam->rotate_mask_for ? c->fam->rotate_mask_for(c->p) : c->fam->rotate_mask;
}

static int case_setup(const kb_options *o, const kb_case *c, case_data *d, char *err, size_t n)
{
    memset(d, 0, sizeof *d);
    if (kb_case_check(c, err, n) != 0)
        return -1;
    kb_tensor din[KB_MAX_TENSORS], dout[KB_MAX_TENSORS];
    memset(din, 0, sizeof din);
    memset(dout, 0, sizeof dout);
    if (c->fam->describe(c->p, din, &d->n_in, dout, &d->n_out) != 0) {
        snprintf(err, n, "%s: the family cannot describe this shape", c->fam->name);
        return -1;
    }
    /* Sizes from the shape, in double so an absurd shape cannot overflow before we refuse it. */
    double need = 0;
    for (int i = 0; i < d->n_in; i++) {
        double b = (double)kb_dtype_size(din[i].dtype);
        for (int k = 0; k < din[i].ndim; k++)
            b *= (double)din[i].shape[k];
        need += b;
        if (rot_mask(c) & (1u << i))
            d->rotated_bytes += b;
    }
    for (int i = 0; i < d->n_out; i++) {
        double b = (double)kb_dtype_size(dout[i].dtype);
        for (int k = 0; k < dout[i].ndim; k++)
            b *= (double)dout[i].shape[k];
        need += 2 * b;
    }
    d->rotated_read = c->fam->rotated_read ? c->fam->rotated_read(c->p) : d->rotated_bytes;
    const kb_sysinfo *si = kb_sysinfo_get();
    double avail = si->mem_avail_bytes ? (double)si->mem_avail_bytes : (double)si->mem_bytes;
    if (avail > 0 && need > 0.8 * avail) {
        snprintf(err, n, "needs %.2f GiB of memory; %.2f GiB available", gib(need), gib(avail));
        return -1;
    }
    /* Reads past an input's end must be loud: in check runs an inaccessible page follows each
     * input (after < 64 bytes of NaN), in timed runs 64 bytes of NaN. */
    for (int i = 0; i < d->n_in; i++) {
        int rc = o->check_only
                     ? kb_tensor_alloc_fenced(&d->in[i], din[i].name, din[i].dtype, din[i].ndim, din[i].shape)
                     : kb_tensor_alloc(&d->in[i], din[i].name, din[i].dtype, din[i].ndim, din[i].shape);
        if (rc) {
            snprintf(err, n, "cannot allocate input %s (%.2f GiB)", din[i].name, gib(din[i].bytes));
            case_free(d);
            return -1;
        }
        if (!d->in[i].map)
            memset((char *)d->in[i].data + d->in[i].bytes, 0xFF, KB_GUARD_BYTES);
        memcpy(d->in[i].elem, din[i].elem, sizeof din[i].elem);
    }
    for (int i = 0; i < d->n_out; i++)
        if (kb_tensor_alloc(&d->ref[i], dout[i].name, dout[i].dtype, dout[i].ndim, dout[i].shape) ||
            kb_tensor_alloc(&d->out[i], dout[i].name, dout[i].dtype, dout[i].ndim, dout[i].shape)) {
            snprintf(err, n, "cannot allocate output %s", dout[i].name);
            case_free(d);
            return -1;
        }
    for (int i = 0; i < d->n_out; i++) {
        memcpy(d->ref[i].elem, dout[i].elem, sizeof dout[i].elem);
        memcpy(d->out[i].elem, dout[i].elem, sizeof dout[i].elem);
    }
    if (o->load_dir) {
        if (kb_load_inputs(o->load_dir, c, d->in, d->n_in, err, n) != 0) {
            case_free(d);
            return -1;
        }
    } else {
        kb_rng rng;
        kb_rng_seed(&rng, case_seed(o->seed, c));
        c->fam->generate(c->p, d->in, &rng, o->inputs);
    }
    for (int i = 0; i < d->n_out; i++)
        kb_tensor_poison(&d->ref[i]);
    double t0 = kb_now();
    c->fam->reference(c->p, d->in, d->ref);
    d->ref_seconds = kb_now() - t0;
    memcpy(d->copies[0], d->in, sizeof d->in);
    d->n_copies = 1;
    return 0;
}

/* Copies of the rotated inputs so that a timing loop reads beyond the cache (same contents,
 * other addresses). Returns the number of copies available (>= 1). */
static int ensure_copies(case_data *d, const kb_case *c, int want)
{
    if (want > MAX_COPIES)
        want = MAX_COPIES;
    const kb_sysinfo *si = kb_sysinfo_get();
    while (d->n_copies < want) {
        /* stay well inside memory */
        double avail = (double)si->mem_avail_bytes;
        if (avail > 0 && d->rotated_bytes * (d->n_copies + 1) > 0.5 * avail)
            break;
        int k = d->n_copies;
        int ok = 1;
        for (int i = 0; i < d->n_in; i++) {
            kb_tensor *src = &d->in[i];
            if (!(rot_mask(c) & (1u << i))) {
                d->copies[k][i] = *src;
                continue;
            }
            if (kb_tensor_alloc(&d->copies[k][i], src->name, src->dtype, src->ndim, src->shape)) {
                for (int j = 0; j < i; j++)
                    if (d->copies[k][j].data != d->in[j].data)
                        kb_tensor_free(&d->copies[k][j]);
                ok = 0;
                break;
            }
            memcpy(d->copies[k][i].data, src->data, src->bytes);
            memset((char *)d->copies[k][i].data + src->bytes, 0xFF, KB_GUARD_BYTES); /* NaN */
        }
        if (!ok)
            break;
        if (c->fam->rotate)
            c->fam->rotate(c->p, d->copies[k], k);
        d->n_copies++;
    }
    return d->n_copies;
}

static int copies_wanted(const kb_options *o, const case_data *d, kb_backend be)
{
    if (o->hot || d->rotated_read <= 0)
        return 1;
    double target = 3.0 * (double)kb_sysinfo_get()->llc_bytes;
    if (be == KB_BACKEND_VULKAN && target < VK_ROTATE_BYTES)
        target = VK_ROTATE_BYTES;
    int n = (int)ceil(target / d->rotated_read);
    return n < 1 ? 1 : (n > MAX_COPIES ? MAX_COPIES : n);
}

/* ---- dumps ------------------------------------------------------------------------------ */

static int g_dump_errors; /* files --dump could not write in this kb_run */

static void dump_tensors(const char *dir, const char *prefix, const kb_tensor *t, int nt)
{
    g_dump_errors += kb_dump_tensors(dir, prefix, t, nt);
}

/* ---- one implementation on one case ----------------------------------------------------- */

typedef struct {
    const kb_impl *impl;
    const kb_env *env;
    const kb_case *c;
    case_data *d;
    void *state[MAX_COPIES];
    int n_states;
} runctx;

/* One run on copy k. Returns 0, or -1 when the implementation reported an error. */
static int run_once(runctx *x, int k, double *gpu)
{
    *gpu = -1;
    if (x->impl->cpu_run) {
        x->impl->cpu_run(x->c, x->d->copies[k], x->d->out, x->env->pool);
        return 0;
    }
    return x->impl->run(x->state[k], x->env, gpu);
}

static void release_states(runctx *x)
{
    for (int k = 0; k < x->n_states; k++)
        if (x->state[k] && x->impl->release)
            x->impl->release(x->state[k]);
    x->n_states = 0;
}

/* The conditioned error of output o: max_i |out_i - ref_i| / scale_i (kbench.h, condition).
 * An element whose scale is 0 must match exactly. NaN when the family has no measure for it. */
static double cond_error(const kb_case *c, case_data *d, int o, char *msg, size_t msglen)
{
    const kb_family *f = c->fam;
    if (f->compare)
        return f->compare(c->p, d->in, o, &d->out[o], &d->ref[o], msg, msglen);
    if (!f->condition)
        return NAN;
    int64_t n = kb_tensor_numel(&d->ref[o]);
    double *scale = d->cond[o];
    if (!scale) { /* computed at the first check of the case, kept for its other rows */
        scale = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
        if (!scale) {
            snprintf(msg, msglen, "out of memory for the conditioned check");
            return INFINITY;
        }
        f->condition(c->p, d->in, o, scale);
        d->cond[o] = scale;
    }
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = kb_tensor_get(&d->out[o], i), b = kb_tensor_get(&d->ref[o], i);
        double e = fabs(a - b);
        if (e == 0)
            continue;
        double r = scale[i] > 0 ? e / scale[i] : INFINITY;
        if (!(r <= worst))
            worst = r;
    }
    return worst;
}

/* Diffs every output with the reference; fills r, returns 1 when all pass. Guards and NaN/Inf
 * first; then the conditioned error decides where the family has one, NMSE otherwise. */
static int check_outputs(kb_result *r, const kb_case *c, case_data *d)
{
    int pass = 1;
    r->nmse = 0;
    r->max_abs = 0;
    r->cosine = 1;
    r->cond_err = NAN;
    for (int i = 0; i < d->n_out; i++) {
        kb_diff df;
        kb_diff_tensors(&d->out[i], &d->ref[i], &df);
        if (df.nmse > r->nmse || isnan(df.nmse))
            r->nmse = df.nmse;
        if (df.max_abs > r->max_abs)
            r->max_abs = df.max_abs;
        if (df.cosine < r->cosine)
            r->cosine = df.cosine;
        if (!df.guard_ok) {
            snprintf(r->msg, sizeof r->msg, "wrote past the end of output %s (guard bytes changed)",
                     d->out[i].name);
            pass = 0;
        } else if (df.nonfinite) {
            snprintf(r->msg, sizeof r->msg,
                     "output %s: %lld of %lld elements NaN/Inf (first at %lld: unwritten?)",
                     d->out[i].name, (long long)df.nonfinite, (long long)kb_tensor_numel(&d->out[i]),
                     (long long)df.first_bad);
            pass = 0;
        } else if (r->tol_is_cond) {
            char why[200] = "";
            double ce = cond_error(c, d, i, why, sizeof why);
            if (isnan(r->cond_err) || ce > r->cond_err || isnan(ce))
                r->cond_err = ce;
            if (!(ce <= r->tol)) {
                if (why[0])
                    snprintf(r->msg, sizeof r->msg, "output %s: %s", d->out[i].name, why);
                else
                    snprintf(r->msg, sizeof r->msg,
                             "output %s: conditioned error %.3g > tolerance %.3g (nmse %.3g, max abs %.3g)",
                             d->out[i].name, ce, r->tol, df.nmse, df.max_abs);
                pass = 0;
            }
        } else if (!(df.nmse <= r->tol)) {
            snprintf(r->msg, sizeof r->msg, "output %s: nmse %.3g > tolerance %.3g (max abs %.3g)",
                     d->out[i].name, df.nmse, r->tol, df.max_abs);
            pass = 0;
        }
        if (!pass)
            break;
    }
    return pass;
}

/* The timing state of one row: samples so far and where its stopping rule stands. */
typedef struct timer {
    runctx x;
    kb_env env; /* the pool and device this row runs with (x.env points here) */
    int ri; /* result index (results may move when the array grows) */
    double *s, *wall;
    int n, cap, n_rep, rep;
    double busy; /* time spent in this repetition's runs: the clock the stopping rule reads */
    double busy_total;
    double rep_start; /* wall clock at the repetition's first run */
    int next_check;   /* sample count of the next noise check */
    int done;
} timer;

static void timer_init(const kb_options *o, timer *t)
{
    t->cap = 256;
    t->s = malloc(sizeof(double) * (size_t)t->cap);
    t->wall = malloc(sizeof(double) * (size_t)t->cap);
    /* warm-up: each copy once (pages touched, code and clocks warm), bounded in time; a GPU
     * also needs ~0.5 s of steady load to leave its idle clock (H200: 345 -> 1980 MHz) */
    double gpu, t0 = kb_now();
    double gpu_warm = t->x.impl->backend == KB_BACKEND_VULKAN ? 0.5 : 0;
    for (int k = 0; k < t->x.n_states && kb_now() - t0 < o->max_time / 4; k++)
        run_once(&t->x, k, &gpu);
    for (int k = 0; kb_now() - t0 < gpu_warm; k++)
        run_once(&t->x, k % t->x.n_states, &gpu);
}

/* One timed run. Returns 1 when the row is finished (stopping rule met, or an error). */
static int timer_step(const kb_options *o, timer *t, kb_result *r)
{
    double gpu;
    /* one rotation per case, not per row: interleaved rows of a case (1 and 2 threads, other
     * implementations) would otherwise read the same copy back to back, the second one warm */
    int k = (int)(t->x.d->next_copy++ % (unsigned)t->x.n_states);
    double a = kb_now();
    if (t->n_rep == 0)
        t->rep_start = a;
    if (run_once(&t->x, k, &gpu) != 0) {
        r->status = KB_ERROR;
        snprintf(r->msg, sizeof r->msg, "run failed during timing");
        return t->done = 1;
    }
    double b = kb_now();
    if (t->n == t->cap) {
        t->cap *= 2;
        t->s = realloc(t->s, sizeof(double) * (size_t)t->cap);
        t->wall = realloc(t->wall, sizeof(double) * (size_t)t->cap);
    }
    t->wall[t->n] = b - a;
    t->s[t->n] = gpu > 0 ? gpu : b - a;
    t->n++;
    t->n_rep++;
    t->busy += b - a;
    t->busy_total += b - a;
    int rep_done = 0;
    if (o->iterations > 0) /* a fixed amount of work, for profiling */
        rep_done = t->n_rep >= o->iterations;
    else if (o->duration > 0)
        rep_done = t->busy >= o->duration;
    else if (t->busy >= o->max_time || t->n >= MAX_SAMPLES ||
             b - t->rep_start >= 4 * o->max_time) /* wall cap: overheads of tiny kernels */
        rep_done = 1;
    else if (t->n_rep >= o->min_samples && t->busy >= o->min_time && t->n_rep >= t->next_check) {
        /* the noise check sorts the samples: at geometrically spaced counts, O(n log n) in all */
        t->next_check = t->n_rep + t->n_rep / 4 + 1;
        kb_stats st;
        kb_stats_compute(t->s + t->n - t->n_rep, t->n_rep, &st);
        rep_done = st.noise_pct <= o->noise_pct;
    }
    if (!rep_done)
        return 0;
    t->rep++;
    t->n_rep = 0;
    t->busy = 0;
    t->next_check = 0;
    return t->done = t->rep >= (o->repetitions > 0 ? o->repetitions : 1) || t->n >= MAX_SAMPLES;
}

static void timer_finish(timer *t, kb_result *r)
{
    kb_stats st, sw;
    kb_stats_compute(t->s, t->n, &st);
    kb_stats_compute(t->wall, t->n, &sw);
    /* keep at most KB_KEEP_SAMPLES, evenly spaced in run order: a long suite's rows then hold
     * kilobytes, not megabytes, each */
    int stride = (t->n + KB_KEEP_SAMPLES - 1) / KB_KEEP_SAMPLES;
    if (stride < 1)
        stride = 1;
    int kept = 0;
    for (int k = 0; k < t->n; k += stride)
        t->s[kept++] = t->s[k];
    double *small = realloc(t->s, sizeof(double) * (size_t)(kept ? kept : 1));
    r->samples = small ? small : t->s;
    r->n_samples = t->n;
    r->n_kept = kept;
    r->sample_stride = stride;
    r->median = st.median;
    r->min = st.min;
    r->p90 = st.p90;
    r->noise_pct = st.noise_pct;
    r->ci_lo = st.ci_lo;
    r->ci_hi = st.ci_hi;
    r->wall_median = sw.median;
    r->gbps = r->bytes / st.median * 1e-9;
    r->gflops = r->flops / st.median * 1e-9;
    free(t->wall);
    t->s = t->wall = NULL;
}

/* After timing, one more checked run: the output must still be right (catches kernels that
 * depend on state left by earlier runs). */
static void recheck(timer *t, kb_result *r)
{
    case_data *d = t->x.d;
    double gpu;
    if (r->status != KB_PASS)
        return;
    for (int i = 0; i < d->n_out; i++) {
        kb_tensor_poison(&d->out[i]);
        kb_tensor_guard_reset(&d->out[i]);
    }
    kb_result tmp = *r;
    if (t->x.impl->reset && t->x.impl->reset(t->x.state[0], d->out) != 0) {
        r->status = KB_ERROR;
        snprintf(r->msg, sizeof r->msg, "after timing: could not poison the outputs again");
        return;
    }
    if (run_once(&t->x, 0, &gpu) != 0 ||
        (t->x.impl->finish && t->x.impl->finish(t->x.state[0], d->out) != 0) ||
        !check_outputs(&tmp, t->x.c, d)) {
        r->status = KB_FAIL;
        snprintf(r->msg, sizeof r->msg, "after timing: %s", tmp.msg[0] ? tmp.msg : "run failed");
    }
}

/* Checks one implementation on copy 0 and, when it passes and timing is on, prepares its
 * states for the rotated copies in t (then t->x.n_states > 0). Otherwise releases everything. */
static void run_impl(const kb_options *o, const kb_impl *impl, const kb_env *env, const kb_case *c,
                     case_data *d, kb_result *r, const char *dumpdir, timer *t)
{
    runctx x = {.impl = impl, .env = env, .c = c, .d = d};
    char err[256] = "";
    memset(t, 0, sizeof *t);
    r->tol_is_cond = c->fam->condition || c->fam->compare;
    if (r->tol_is_cond)
        r->tol = impl->tol_cond_inputs[o->inputs] > 0 ? impl->tol_cond_inputs[o->inputs]
                 : impl->tol_cond > 0                 ? impl->tol_cond
                                                      : c->fam->tol_cond;
    else
        r->tol = impl->tol_nmse > 0 ? impl->tol_nmse : c->fam->tol_nmse;
    /* The ref row: the reference already ran once for the case (its output is what every row
     * is checked against), so a slow one is neither run again nor timed unless asked. */
    if (impl->cpu_run && strcmp(impl->name, "ref") == 0 && !o->time_ref &&
        d->ref_seconds > KB_REF_TIME_LIMIT) {
        r->status = KB_PASS;
        r->nmse = r->max_abs = 0;
        r->cosine = 1;
        r->cond_err = r->tol_is_cond ? 0 : NAN;
        snprintf(r->msg, sizeof r->msg,
                 "the reference itself; not timed (one run took %.3g s: --time-ref times it)",
                 d->ref_seconds);
        if (dumpdir)
            dump_tensors(dumpdir, "out_ref_t1_", d->ref, d->n_out);
        return;
    }
    for (int i = 0; i < d->n_out; i++) {
        kb_tensor_poison(&d->out[i]);
        kb_tensor_guard_reset(&d->out[i]);
    }
    double gpu;
    if (!impl->cpu_run) {
        x.state[0] = impl->prepare(env, c, d->copies[0], d->out, err, sizeof err);
        if (!x.state[0]) {
            r->status = KB_ERROR;
            snprintf(r->msg, sizeof r->msg, "prepare: %s", err[0] ? err : "failed");
            return;
        }
    }
    x.n_states = 1;
    if (run_once(&x, 0, &gpu) != 0 || (impl->finish && impl->finish(x.state[0], d->out) != 0)) {
        r->status = KB_ERROR;
        snprintf(r->msg, sizeof r->msg, "run failed");
        release_states(&x);
        return;
    }
    int pass = check_outputs(r, c, d);
    if (dumpdir) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "out_%s_t%d_", impl->name, r->threads);
        dump_tensors(dumpdir, prefix, d->out, d->n_out);
    }
    r->status = pass ? KB_PASS : KB_FAIL;
    if (!pass || o->check_only) {
        release_states(&x);
        return;
    }
    int want = copies_wanted(o, d, impl->backend);
    int have = ensure_copies(d, c, want);
    for (int k = 1; k < have; k++) {
        if (!impl->cpu_run) {
            x.state[k] = impl->prepare(env, c, d->copies[k], d->out, err, sizeof err);
            if (!x.state[k])
                break; /* e.g. device memory: time with the copies that fit */
        }
        x.n_states = k + 1;
    }
    r->copies = x.n_states;
    if (x.n_states < want)
        snprintf(r->msg, sizeof r->msg, "only %d of %d input copies fit: partly warm", x.n_states,
                 want);
    t->x = x;
    t->env = *env;
    t->x.env = &t->env;
}

/* Times a prepared row to the end (the sequential mode). */
static int stopped(const kb_options *o) { return o->stop && *o->stop; }

/* Times a prepared row to the end (the sequential mode). Returns -1 when the run was stopped
 * (kb_options.stop) before the row finished: the row is then incomplete. */
static int time_row(const kb_options *o, timer *t, kb_result *r)
{
    timer_init(o, t);
    int rc = 0;
    for (int rep = -1;;) { /* perf records only the timed region of each repetition */
        if (t->rep != rep) {
            if (rep >= 0)
                kb_perfctl_disable();
            kb_perfctl_enable();
            rep = t->rep;
        }
        if (stopped(o)) {
            rc = -1;
            break;
        }
        if (timer_step(o, t, r))
            break;
    }
    kb_perfctl_disable();
    if (rc == 0) {
        timer_finish(t, r);
        recheck(t, r);
    } else {
        free(t->s);
        free(t->wall);
        t->s = t->wall = NULL;
    }
    release_states(&t->x);
    return rc;
}

static void emit(const kb_options *o, kb_results *res, int i)
{
    if (o->on_row)
        o->on_row(&res->v[i], o->on_row_ctx);
}

/* ---- the run ---------------------------------------------------------------------------- */

static int re_match(const regex_t *re, const char *s) { return !re || regexec(re, s, 0, NULL, 0) == 0; }

int kb_run(const kb_options *o, const kb_case_list *cases, kb_results *res)
{
    regex_t kre, ire;
    int have_k = 0, have_i = 0;
    if (o->kernel_re) {
        if (regcomp(&kre, o->kernel_re, REG_EXTENDED | REG_NOSUB) != 0) {
            fprintf(stderr, "kbench: --kernel '%s' is not a valid regular expression\n", o->kernel_re);
            return 1;
        }
        have_k = 1;
    }
    if (o->impl_re) {
        if (regcomp(&ire, o->impl_re, REG_EXTENDED | REG_NOSUB) != 0) {
            fprintf(stderr, "kbench: --impl '%s' is not a valid regular expression\n", o->impl_re);
            if (have_k)
                regfree(&kre);
            return 1;
        }
        have_i = 1;
    }
    /* implementations in play */
    int nimpl = 0;
    const kb_impl **impls = malloc(sizeof(kb_impl *) * (size_t)(kb_impl_count() + o->n_extra_impls));
    if (!o->registry_impls_off)
        for (int i = 0; i < kb_impl_count(); i++)
            impls[nimpl++] = kb_impl_at(i);
    for (int i = 0; i < o->n_extra_impls; i++)
        impls[nimpl++] = o->extra_impls[i];

    int threads[KB_MAX_THREAD_COUNTS], nthr = o->n_threads;
    memcpy(threads, o->threads, sizeof threads);
    if (nthr == 0) {
        threads[0] = kb_sysinfo_get()->cores;
        nthr = 1;
    }
    kb_pool *pools[KB_MAX_THREAD_COUNTS] = {0};
    kb_env env = {0};
    int vk_tried = 0, vk_fault = 0;
    snprintf(res->vk_status, sizeof res->vk_status, "not used");

    /* count the work for the progress line */
    int total = 0, done = 0;
    for (int ci = 0; ci < cases->n; ci++) {
        if (have_k && !re_match(&kre, cases->v[ci].fam->name))
            continue;
        for (int ii = 0; ii < nimpl; ii++)
            if (strcmp(impls[ii]->family, cases->v[ci].fam->name) == 0 &&
                re_match(have_i ? &ire : NULL, impls[ii]->name))
                total += impls[ii]->backend == KB_BACKEND_CPU && strcmp(impls[ii]->name, "ref") ? nthr : 1;
    }

    int bad = 0;
    timer **timers = NULL; /* --interleave: rows timed together after every check */
    int ntimers = 0;
    case_data **live = NULL;
    int nlive = 0;
    for (int ci = 0; ci < cases->n; ci++) {
        const kb_case *c = &cases->v[ci];
        if (stopped(o)) {
            res->interrupted = 1;
            break;
        }
        if (have_k && !re_match(&kre, c->fam->name))
            continue;
        int any = 0;
        for (int ii = 0; ii < nimpl; ii++)
            any |= strcmp(impls[ii]->family, c->fam->name) == 0 &&
                   re_match(have_i ? &ire : NULL, impls[ii]->name);
        if (!any)
            continue;
        case_data *dp = calloc(1, sizeof *dp);
        char err[256];
        if (!dp) {
            fprintf(stderr, "kbench: out of memory\n");
            break;
        }
#define d (*dp)
        if (o->progress) {
            char shape[160];
            kb_case_format(c, shape, sizeof shape);
            if (o->progress == 1)
                fprintf(stderr, "\r\033[K[%d/%d] %s %s: inputs and reference", done, total,
                        c->fam->name, shape);
            else /* a log: one plain line per case */
                fprintf(stderr, "kbench: [%d/%d] %s %s\n", done, total, c->fam->name, shape);
        }
        if (o->inputs != KB_INPUTS_RANDOM && !(c->fam->inputs & KB_INPUTS_BIT(o->inputs))) {
            kb_result *r = new_result(res, c, NULL, 0);
            r->status = KB_SKIP;
            snprintf(r->msg, sizeof r->msg, "--inputs %s does not apply to %s",
                     kb_inputs_name(o->inputs), c->fam->name);
            if (!o->interleave)
                emit(o, res, res->n - 1);
            free(dp);
            continue;
        }
        if (case_setup(o, c, &d, err, sizeof err) != 0) {
            kb_result *r = new_result(res, c, NULL, 0);
            r->status = KB_ERROR;
            snprintf(r->msg, sizeof r->msg, "%s", err);
            if (!o->interleave)
                emit(o, res, res->n - 1);
            bad++;
            free(dp);
            continue;
        }
        char dumpdir[4096], *dd = NULL;
        const int first_row = res->n;
        if (o->dump_dir) {
            char name[300];
            kb_dump_dir_name(ci, c, name, sizeof name);
            snprintf(dumpdir, sizeof dumpdir, "%s/%s", o->dump_dir, name);
            mkdir(o->dump_dir, 0777);
            if (mkdir(dumpdir, 0777) != 0 && errno != EEXIST) {
                if (g_dump_errors++ < 5)
                    fprintf(stderr, "kbench: cannot create %s: %s\n", dumpdir, strerror(errno));
            } else {
                dd = dumpdir;
                dump_tensors(dd, "in_", d.in, d.n_in);
                dump_tensors(dd, "ref_", d.ref, d.n_out);
            }
        }
        for (int ii = 0; ii < nimpl; ii++) {
            const kb_impl *impl = impls[ii];
            if (strcmp(impl->family, c->fam->name) != 0 || !re_match(have_i ? &ire : NULL, impl->name))
                continue;
            int is_cpu = impl->backend == KB_BACKEND_CPU;
            int nt = is_cpu && strcmp(impl->name, "ref") != 0 ? nthr : 1;
            if (!is_cpu && !vk_tried) {
                vk_tried = 1;
#ifdef KB_HAVE_VULKAN
                if (!o->no_vulkan) {
                    char verr[200] = "";
                    env.vk = kb_vk_create(o->device, verr, sizeof verr);
                    if (env.vk) {
                        snprintf(res->vk_status, sizeof res->vk_status, "%s", kb_vk_describe(env.vk));
                        if (!o->check_only) /* full clock before the first timed row */
                            kb_vk_warm(env.vk, 2.0, verr, sizeof verr);
                    }
                    else {
                        snprintf(res->vk_status, sizeof res->vk_status, "%s: %s",
                                 kb_vk_create_fault() ? "failed to start" : "unavailable", verr);
                        vk_fault = kb_vk_create_fault();
                    }
                } else {
                    snprintf(res->vk_status, sizeof res->vk_status, "unavailable: --no-vulkan");
                }
#else
                snprintf(res->vk_status, sizeof res->vk_status, "unavailable: built without Vulkan");
#endif
            }
            for (int ti = 0; ti < nt; ti++) {
                int thr = is_cpu ? (nt == 1 && strcmp(impl->name, "ref") == 0 ? 1 : threads[ti]) : 0;
                kb_result *r = new_result(res, c, impl, thr);
                if (o->progress == 1) {
                    char shape[160];
                    kb_case_format(c, shape, sizeof shape);
                    fprintf(stderr, "\r\033[K[%d/%d] %s %s: %s t=%d", done, total, c->fam->name, shape,
                            impl->name, thr);
                }
                done++;
                const char *why = NULL;
                if (!is_cpu && !env.vk && vk_fault) { /* a device that exists but would not start */
                    r->status = KB_ERROR;
                    snprintf(r->msg, sizeof r->msg, "%s", res->vk_status);
                    bad++;
                    if (!o->interleave)
                        emit(o, res, res->n - 1);
                    continue;
                }
                if (!is_cpu && !env.vk)
                    why = res->vk_status;
                else if (impl->available)
                    why = impl->available(&env);
                if (why) {
                    r->status = KB_SKIP;
                    snprintf(r->msg, sizeof r->msg, "%s", why);
                    if (!o->interleave)
                        emit(o, res, res->n - 1);
                    continue;
                }
                if (is_cpu) {
                    int slot = thr == 1 && nt == 1 ? -1 : ti;
                    if (slot < 0) { /* ref: one thread */
                        env.pool = NULL;
                    } else {
                        if (!pools[slot])
                            pools[slot] = kb_pool_create(threads[slot], 1);
                        env.pool = pools[slot];
                    }
                }
                timer *t = calloc(1, sizeof *t);
                run_impl(o, impl, &env, c, &d, r, dd, t);
                if (t->x.n_states > 0 && o->interleave) {
                    t->ri = res->n - 1;
                    timers = realloc(timers, sizeof *timers * (size_t)(ntimers + 1));
                    timers[ntimers++] = t;
                    continue; /* counted after timing */
                }
                if (t->x.n_states > 0 && time_row(o, t, r) != 0) {
                    res->n--; /* stopped mid-row: only finished rows stay */
                    res->interrupted = 1;
                    free(t);
                    break;
                }
                free(t);
                if (r->status == KB_FAIL || r->status == KB_ERROR)
                    bad++;
                emit(o, res, res->n - 1);
            }
            if (res->interrupted)
                break;
        }
        if (dd && kb_dump_manifest(dd, o, c, case_seed(o->seed, c), d.in, d.n_in, d.ref, d.n_out,
                                   res->v + first_row, res->n - first_row) != 0)
            g_dump_errors++;
#undef d
        if (o->interleave) {
            live = realloc(live, sizeof *live * (size_t)(nlive + 1));
            live[nlive++] = dp;
        } else {
            case_free(dp);
            free(dp);
        }
    }
    if (ntimers) {
        /* Round-robin, one run per row per turn: a slow phase of a shared machine lands on
         * every row alike instead of on whichever row happened to be running. */
        for (int i = 0; i < ntimers; i++)
            timer_init(o, timers[i]);
        int active = ntimers;
        kb_perfctl_enable();
        while (active > 0) {
            if (stopped(o)) {
                res->interrupted = 1;
                break;
            }
            /* every row runs every turn until all are done: one shared time window */
            for (int i = 0; i < ntimers; i++) {
                timer *t = timers[i];
                int was = t->done;
                if (t->n >= MAX_SAMPLES || (was && t->busy_total > 8 * o->max_time))
                    continue;
                timer_step(o, t, &res->v[t->ri]);
                if (!was && t->done)
                    active--;
            }
            if (o->progress == 1)
                fprintf(stderr, "\r\033[Ktiming %d rows interleaved: %d left", ntimers, active);
        }
        kb_perfctl_disable();
        for (int i = 0; i < ntimers; i++) {
            kb_result *r = &res->v[timers[i]->ri];
            if (res->interrupted) { /* unfinished timing: the row goes */
                free(timers[i]->s);
                free(timers[i]->wall);
                r->impl = NULL;
                r->status = KB_ERROR; /* marked for removal below */
                r->msg[0] = 1;
            } else {
                timer_finish(timers[i], r);
                recheck(timers[i], r);
                if (r->status == KB_FAIL || r->status == KB_ERROR)
                    bad++;
            }
            release_states(&timers[i]->x);
            free(timers[i]);
        }
        if (res->interrupted) {
            int k = 0;
            for (int i = 0; i < res->n; i++)
                if (!(res->v[i].impl == NULL && res->v[i].msg[0] == 1))
                    res->v[k++] = res->v[i];
            res->n = k;
        }
    }
    if (o->interleave) /* rows are final only now: report them in order */
        for (int i = 0; i < res->n; i++)
            emit(o, res, i);
    free(timers);
    res->io_errors += g_dump_errors;
    g_dump_errors = 0;
    for (int i = 0; i < nlive; i++) {
        case_free(live[i]);
        free(live[i]);
    }
    free(live);
    if (o->progress == 1)
        fprintf(stderr, "\r\033[K");
    for (int i = 0; i < KB_MAX_THREAD_COUNTS; i++)
        kb_pool_destroy(pools[i]);
#ifdef KB_HAVE_VULKAN
    if (env.vk)
        kb_vk_destroy(env.vk);
#endif
    free(impls);
    if (have_k)
        regfree(&kre);
    if (have_i)
        regfree(&ire);
    return bad;
}
