#include "calibrate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calibrate_cpu.h"
#include "fileio.h"
#include "stats.h"
#include "sysinfo.h"

#ifdef KB_HAVE_VULKAN
#include "calibrate_vk.h"
#include "vk.h"
#endif

void kb_calibration_path(char *buf, size_t n)
{
    const kb_sysinfo *s = kb_sysinfo_get();
    char key[96];
    snprintf(key, sizeof key, "%s-%dc-%.8s", s->cpu, s->cores, s->machine_hash);
    for (char *c = key; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-')
            *c = '_';
    snprintf(buf, n, "%s/results/calibration-%s.json", KB_SOURCE_DIR, key);
}

/* ---- CPU loops: kernels/cpu/read/calib_x86.c, through calibrate_cpu.h ---------------- */

static double best_of(kb_pool *p, kb_task_fn fn, void *arg, int reps)
{
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = kb_now();
        kb_pool_run(p, fn, arg);
        double t = kb_now() - t0;
        if (t < best)
            best = t;
    }
    return best;
}

/* Best read GB/s of the registered read implementations matching impl_re at `threads`. */
static double measure_read(const kb_options *base, const char *impl_re, int threads, int mib)
{
    kb_case_list cl = {0};
    char line[64], err[256];
    snprintf(line, sizeof line, "read mib=%d", mib);
    if (kb_suite_parse_line(line, &cl, err, sizeof err) != 0)
        return 0;
    kb_options o = *base;
    o.impl_re = impl_re;
    o.kernel_re = NULL;
    o.check_only = 0;
    o.n_threads = 1;
    o.threads[0] = threads;
    o.min_time = 0.2;
    o.max_time = 0.5;
    o.repetitions = 1;
    o.iterations = 0;
    o.duration = 0;
    o.progress = 0;
    o.dump_dir = NULL;
    o.on_row = NULL;
    o.inputs = KB_INPUTS_RANDOM;
    o.interleave = 0;
    o.hot = 0;
    kb_results r = {0};
    kb_run(&o, &cl, &r);
    double best = 0;
    for (int i = 0; i < r.n; i++)
        if (r.v[i].status == KB_PASS && r.v[i].bytes / r.v[i].min * 1e-9 > best)
            best = r.v[i].bytes / r.v[i].min * 1e-9; /* ceiling: the fastest run */
    kb_results_free(&r);
    kb_case_list_free(&cl);
    return best;
}

static const char *cpu_read_impls(void)
{
    return kb_cpu()->avx512f ? "^(avx2|avx512)$" : kb_cpu()->avx2 ? "^avx2$" : "^ref$";
}

static void json_map(FILE *f, const char *key, const double *v, int n, int last)
{
    fprintf(f, "    \"%s\": {", key);
    int first = 1;
    for (int t = 1; t <= n; t++)
        if (v[t] > 0) {
            fprintf(f, "%s\"%d\": %.4g", first ? "" : ", ", t, v[t]);
            first = 0;
        }
    fprintf(f, "}%s\n", last ? "" : ",");
}

int kb_calibrate(const kb_options *o, const char *path, kb_peaks *pk)
{
    memset(pk, 0, sizeof *pk);
    const kb_sysinfo *si = kb_sysinfo_get();
    int maxt = si->cores < KB_CAL_MAX_THREADS ? si->cores : KB_CAL_MAX_THREADS;
    size_t n = (size_t)256 << 18; /* 256 MiB per array: far beyond any LLC */
    float *a = aligned_alloc(64, n * 4), *b = aligned_alloc(64, n * 4), *c = aligned_alloc(64, n * 4);
    if (!a || !b || !c) {
        fprintf(stderr, "kbench calibrate: cannot allocate 768 MiB\n");
        free(a), free(b), free(c);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        a[i] = 0, b[i] = 1, c[i] = 2;
    /* --threads picks the counts; default 1..cores */
    int counts[KB_CAL_MAX_THREADS], ncounts = 0;
    if (o->n_threads > 0)
        for (int i = 0; i < o->n_threads; i++)
            counts[ncounts++] = o->threads[i] < KB_CAL_MAX_THREADS ? o->threads[i] : KB_CAL_MAX_THREADS;
    else
        for (int t = 1; t <= maxt; t++)
            counts[ncounts++] = t;
    for (int ci = 0; ci < ncounts; ci++) {
        int t = counts[ci];
        if (t > maxt)
            maxt = t;
        fprintf(stderr, "calibrate: %d thread(s): read", t);
        pk->read_gbps[t] = measure_read(o, cpu_read_impls(), t, 1024);
        kb_pool *p = kb_pool_create(t, 1);
        kb_task_fn bw = kb_calib_bw_task();
        if (bw) {
            fprintf(stderr, ", copy, triad");
            kb_calib_bw_job j = {a, b, c, n, 0};
            pk->copy_gbps[t] = 8.0 * n / best_of(p, bw, &j, 5) * 1e-9; /* read + write */
            j.triad = 1;
            pk->triad_gbps[t] = 12.0 * n / best_of(p, bw, &j, 5) * 1e-9;
        }
        if (ci == 0) { /* per-thread FMA rate, one thread */
            kb_pool_destroy(p);
            p = kb_pool_create(1, 1);
            fprintf(stderr, ", fma");
            kb_calib_fma_job fj = {.iters = 2e7};
            kb_task_fn f8 = kb_calib_fma_task(8), f16 = kb_calib_fma_task(16);
            if (f8)
                pk->fma_gflops_1t_avx2 = 2.0 * 8 * 8 * fj.iters / best_of(p, f8, &fj, 3) * 1e-9;
            if (f16)
                pk->fma_gflops_1t_avx512 = 2.0 * 16 * 8 * fj.iters / best_of(p, f16, &fj, 3) * 1e-9;
        }
        fprintf(stderr, "\n");
        kb_pool_destroy(p);
    }
    free(a), free(b), free(c);
#ifdef KB_HAVE_VULKAN
    if (!o->no_vulkan) {
        char err[256] = "";
        struct kb_vk *vk = kb_vk_create(o->device, err, sizeof err);
        if (vk) {
            snprintf(pk->vk_device, sizeof pk->vk_device, "%s", kb_vk_describe(vk));
            fprintf(stderr, "calibrate: vulkan copy, fma\n");
            if (kb_calibrate_vk(vk, &pk->vk_copy_gbps, &pk->vk_fma_gflops, err, sizeof err) != 0)
                fprintf(stderr, "calibrate: vulkan: %s\n", err);
            pk->vk_fma16_gflops = kb_calibrate_vk_f16(vk, err, sizeof err);
            if (pk->vk_fma16_gflops <= 0)
                fprintf(stderr, "calibrate: vulkan f16: %s\n", err);
            kb_vk_destroy(vk);
            fprintf(stderr, "calibrate: vulkan read\n");
            pk->vk_read_gbps = measure_read(o, "^vk$", 1, 1024);
        } else {
            snprintf(pk->vk_device, sizeof pk->vk_device, "unavailable: %s", err);
        }
    }
#endif
    char tmp[4200];
    FILE *f = kb_tmpfile_for(path, tmp, sizeof tmp);
    if (!f)
        return -1;
    fprintf(f, "{\n  \"machine\": {\"cpu\": \"%s\", \"cores\": %d, \"llc_bytes\": %zu, \"flags\": \"%s\", "
               "\"commit\": \"%s\", \"key\": \"%s\", \"key_hash\": \"%s\"},\n",
            si->cpu, si->cores, si->llc_bytes, si->flags, si->commit, si->machine_key,
            si->machine_hash);
    fprintf(f, "  \"cpu\": {\n");
    json_map(f, "read_gbps", pk->read_gbps, maxt, 0);
    json_map(f, "copy_gbps", pk->copy_gbps, maxt, 0);
    json_map(f, "triad_gbps", pk->triad_gbps, maxt, 0);
    fprintf(f, "    \"peak_gflops_1thread\": {\"avx2\": %.4g, \"avx512\": %.4g},\n",
            pk->fma_gflops_1t_avx2, pk->fma_gflops_1t_avx512);
    fprintf(f, "    \"peak_gflops\": {\"avx2\": %.4g, \"avx512\": %.4g}\n  },\n",
            pk->fma_gflops_1t_avx2 * maxt, pk->fma_gflops_1t_avx512 * maxt);
    if (o->no_vulkan)
        snprintf(pk->vk_device, sizeof pk->vk_device, "not measured (--no-vulkan)");
    fprintf(f, "  \"vulkan\": {\"device\": \"");
    for (const char *q = pk->vk_device; *q; q++) /* JSON-safe: drop quotes and backslashes */
        if (*q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            fputc(*q, f);
    fprintf(f, "\", \"read_gbps\": %.4g, \"copy_gbps\": %.4g, \"peak_gflops_f32\": %.4g, "
               "\"peak_gflops_f16\": %.4g}\n}\n",
            pk->vk_read_gbps, pk->vk_copy_gbps, pk->vk_fma_gflops, pk->vk_fma16_gflops);
    if (kb_tmpfile_commit(f, tmp, path) != 0)
        return -1;
    snprintf(pk->source, sizeof pk->source, "%s", path);
    return 0;
}

/* Our own file: find "key": { "1": x, ... } inside the object that follows `section`. */
static void load_map(const char *text, const char *key, double *v)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": {", key);
    const char *p = strstr(text, pat);
    if (!p)
        return;
    p += strlen(pat);
    while (*p && *p != '}') {
        int t;
        double x;
        int used;
        if (sscanf(p, " \"%d\": %lf%n", &t, &x, &used) == 2) {
            if (t >= 1 && t <= KB_CAL_MAX_THREADS)
                v[t] = x;
            p += used;
        } else {
            p++;
        }
    }
}

static double load_num(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    double x = 0;
    if (p)
        sscanf(p + strlen(key), " : %lf", &x);
    return x;
}

/* The string value of "key" in text ("" when absent). */
static void load_str(const char *text, const char *key, char *out, size_t n)
{
    out[0] = 0;
    const char *p = strstr(text, key);
    if (!p)
        return;
    p = strchr(p + strlen(key), '"');
    if (!p)
        return;
    p++;
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < n)
        out[i++] = *p++;
    out[i] = 0;
}

int kb_calibration_load(const char *path, kb_peaks *pk, char *why, size_t whylen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    /* valid only for the machine it was measured on (sysinfo.h: machine_key) */
    const kb_sysinfo *si = kb_sysinfo_get();
    char hash[32], key[256];
    load_str(text, "\"key_hash\":", hash, sizeof hash);
    load_str(text, "\"key\":", key, sizeof key);
    if (strcmp(hash, si->machine_hash) != 0) {
        if (!hash[0])
            snprintf(why, whylen,
                     "%s has no machine key (made by an older kbench): not used; run kbench calibrate",
                     path);
        else
            snprintf(why, whylen, "%s was measured on another machine (%s; this is %s): not used",
                     path, key, si->machine_key);
        return -2;
    }
    memset(pk, 0, sizeof *pk);
    load_map(text, "read_gbps", pk->read_gbps);
    load_map(text, "copy_gbps", pk->copy_gbps);
    load_map(text, "triad_gbps", pk->triad_gbps);
    const char *one = strstr(text, "\"peak_gflops_1thread\"");
    if (one) {
        pk->fma_gflops_1t_avx2 = load_num(one, "\"avx2\"");
        pk->fma_gflops_1t_avx512 = load_num(one, "\"avx512\"");
    }
    const char *vk = strstr(text, "\"vulkan\"");
    if (vk) {
        pk->vk_read_gbps = load_num(vk, "\"read_gbps\"");
        pk->vk_copy_gbps = load_num(vk, "\"copy_gbps\"");
        pk->vk_fma_gflops = load_num(vk, "\"peak_gflops_f32\"");
    }
    snprintf(pk->source, sizeof pk->source, "%s", path);
    if (pk->read_gbps[1] <= 0) {
        snprintf(why, whylen, "%s holds no read bandwidth", path);
        return -1;
    }
    return 0;
}

void kb_peaks_measure(const kb_options *o, int vk, kb_peaks *pk)
{
    int measured = 0;
    int n = o->n_threads ? o->n_threads : 1;
    for (int i = 0; i < n; i++) {
        int t = o->n_threads ? o->threads[i] : kb_sysinfo_get()->cores;
        if (t >= 1 && t <= KB_CAL_MAX_THREADS && pk->read_gbps[t] <= 0) {
            if (o->progress)
                fprintf(stderr, "kbench: measuring read bandwidth at %d thread(s) (no calibration)\n", t);
            pk->read_gbps[t] = measure_read(o, cpu_read_impls(), t, 256);
            measured = 1;
        }
    }
    if (vk && pk->vk_read_gbps <= 0 && !o->no_vulkan) {
        if (o->progress)
            fprintf(stderr, "kbench: measuring Vulkan read bandwidth (no calibration)\n");
        pk->vk_read_gbps = measure_read(o, "^vk$", 1, 256);
        if (pk->vk_read_gbps <= 0)
            pk->vk_read_gbps = -1; /* tried */
        measured = 1;
    }
    if (measured && !pk->source[0])
        snprintf(pk->source, sizeof pk->source,
                 "read bandwidth measured at the start of this run (no calibration file for this "
                 "machine; kbench calibrate makes one)");
}

void kb_peaks_apply_row(const kb_peaks *pk, kb_result *x)
{
    x->pct_peak_bw = x->pct_peak_flops = NAN;
    if (!x->impl || !isfinite(x->gbps))
        return;
    double bw = 0, fl = 0;
    if (x->impl->backend == KB_BACKEND_CPU) {
        int t = x->threads >= 1 && x->threads <= KB_CAL_MAX_THREADS ? x->threads : 1;
        bw = pk->read_gbps[t];
        double one = strstr(x->impl->name, "avx512") ? pk->fma_gflops_1t_avx512 : 0;
        if (one <= 0)
            one = pk->fma_gflops_1t_avx2 > pk->fma_gflops_1t_avx512 ? pk->fma_gflops_1t_avx2
                                                                     : pk->fma_gflops_1t_avx512;
        fl = one * t;
    } else {
        bw = pk->vk_read_gbps;
        fl = pk->vk_fma_gflops;
    }
    if (bw > 0)
        x->pct_peak_bw = x->gbps / bw * 100;
    if (fl > 0)
        x->pct_peak_flops = x->gflops / fl * 100;
    /* A memory-bound kernel cannot beat the machine's read bandwidth by much: above 110% the
     * ceiling is wrong (or the data came from a cache), and the row says so. */
    if (x->pct_peak_bw > 110) {
        size_t n = strlen(x->msg);
        snprintf(x->msg + n, sizeof x->msg - n,
                 "%s%%bw %.0f%% > 110%%: the read ceiling is low for this row (a cache? a noisy "
                 "read measurement?)",
                 n ? "; " : "", x->pct_peak_bw);
    }
}

void kb_peaks_apply(const kb_peaks *pk, kb_results *res)
{
    for (int i = 0; i < res->n; i++)
        kb_peaks_apply_row(pk, &res->v[i]);
}
