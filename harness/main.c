/* kbench: the command line. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "calibrate.h"
#include "fileio.h"
#include "kb_build_info.h"
#include "kbench.h"
#include "perfctl.h"
#include "report.h"
#include "runner.h"
#include "stats.h"
#include "suite.h"
#include "sysinfo.h"

int kb_model_main(int argc, char **argv); /* models/model_cli.c */

#ifdef KB_HAVE_VULKAN
struct kb_vk *kb_vk_create(int device_index, char *err, size_t errlen);
void kb_vk_destroy(struct kb_vk *vk);
int kb_vk_list(FILE *f);
#endif

static const char usage[] =
    "usage: kbench [options]\n"
    "       kbench calibrate [--threads ...] [--no-vulkan] [-o FILE]\n"
    "\n"
    "Checks kernel implementations against their reference and times them.\n"
    "'calibrate' measures this machine's ceilings (read/copy/triad bandwidth per thread count,\n"
    "peak f32 FMA rate, Vulkan read bandwidth) into results/calibration-<machine>.json; runs then\n"
    "report pct_peak_bw and pct_peak_flops against it (without one, read bandwidth is measured\n"
    "in the run itself).\n"
    "\n"
    "What to run:\n"
    "  --suite NAME|FILE    cases from suites/NAME.suite (or a file path)\n"
    "  --kernel REGEX       families whose name matches (POSIX extended regex); without --suite,\n"
    "                       runs each matching family once at --shape (or its defaults)\n"
    "  --impl REGEX         implementations whose name matches (ref, avx2, avx512, vk, ...)\n"
    "  --shape K=V,...      without --suite: the shape to run (a key may list values:\n"
    "                       rows=1,7,cols=64 sweeps rows); with --suite: keep only cases matching\n"
    "  --list               families, implementations (available here or why not), suites\n"
    "\n"
    "How:\n"
    "  --threads N[,N...]   CPU thread counts to run (default: all cores), threads pinned to cores\n"
    "  --device N           Vulkan device index (default: a discrete GPU first); --list shows them\n"
    "  --no-vulkan          do not load Vulkan\n"
    "  --seed N             input seed (default 1234): same seed, same inputs\n"
    "  --inputs DIST        input distribution: random (default), outliers (a few activation\n"
    "                       channels 100x larger), peaky (dominant attention/routing scores),\n"
    "                       extreme (every code value, negative and tiny scales, subnormals),\n"
    "                       zeros (zero activations); a family it does not apply to is skipped\n"
    "  --check              correctness only, no timing\n"
    "  --min-time S         time each row at least S seconds (default 0.1)\n"
    "  --max-time S         and at most S seconds (default 1)\n"
    "  --min-samples N      at least N timed runs (default 10)\n"
    "  --noise PCT          stop once the robust noise (1.4826*MAD/median) is below PCT (default 3)\n"
    "  --hot                do not rotate inputs beyond the last-level cache (warm-cache timing)\n"
    "  --interleave         check every row first, then time all rows round-robin, one run each\n"
    "                       per turn, so a slow phase of a shared machine hits all rows alike\n"
    "                       (every selected case stays in memory: select a few)\n"
    "  --repetitions R      repeat each row's timing loop R times, samples pooled (default 1)\n"
    "  --iterations N       exactly N timed runs per repetition (fixed work, e.g. for perf)\n"
    "  --duration S         time each repetition exactly S seconds\n"
    "  --calibration FILE   ceilings for pct_peak_* (default results/calibration-<machine>.json)\n"
    "  --perf-ctl CTL[,ACK] perf control FIFOs: perf is enabled only around timed regions\n"
    "                       (perf record --control fifo:CTL,ACK -D -1; scripts/perf-kernel.sh)\n"
    "\n"
    "Output:\n"
    "  (default)            an aligned table on stdout\n"
    "  --csv                CSV on stdout: one header line, one row per case and implementation\n"
    "  --json FILE          rows with all samples and machine facts (written whole or not at all)\n"
    "  -o, --output FILE    write the table or CSV to FILE instead of stdout (whole or not at all)\n"
    "  --dump DIR           each case's inputs, reference outputs and every implementation's\n"
    "                       outputs as NumPy .npy files, with a manifest.json saying what each\n"
    "                       file is (role, dtype, true element type: q4_0 blocks, bf16 bits,\n"
    "                       u32 words of codes), the seeds and every row's tolerance and error:\n"
    "                       DIR/NNN_FAMILY_SHAPE/{manifest.json, in_X.npy, ref_Y.npy,\n"
    "                       out_IMPL_tTHREADS_Y.npy}\n"
    "  --load DIR           read each case's inputs from in_X.npy files in that layout (DIR: a\n"
    "                       case folder, or a --dump folder holding one per case) instead of\n"
    "                       generating them: check a kernel on your own data. Dtype and shape\n"
    "                       must match the case exactly\n"
    "  -q, --quiet          no progress line (it is shown only when stderr is a terminal)\n"
    "\n"
    "Exit status: 0 when every check passed, 1 when any failed or errored, 2 for a usage error.\n"
    "Rows whose implementation cannot run here (CPU feature, no Vulkan device) are 'skip' with\n"
    "the reason, and do not fail the run.\n"
    "\n"
    "Examples:\n"
    "  kbench --suite matvec --csv > matvec.csv\n"
    "  kbench --kernel matvec_q4_0 --shape rows=14336,cols=4096 --threads 1,2\n"
    "  kbench --suite matvec --impl 'avx2|vk' --json out.json\n";

#define KB_MAX_SECONDS 3600.0 /* bound of every timing option */

static int die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "kbench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(kbench --help explains the options)\n");
    return 2;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return errno == 0 && end != s && *end == 0 && isfinite(*v) && *v >= 0 ? 0 : -1;
}

static int parse_int(const char *s, long long lo, long long hi, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno == 0 && end != s && *end == 0 && *v >= lo && *v <= hi ? 0 : -1;
}

static void list_all(int device, int no_vulkan)
{
    printf("Families (parameters: default [min, max]):\n");
    for (int i = 0; i < kb_family_count(); i++) {
        const kb_family *f = kb_family_at(i);
        printf("  %-14s %s\n", f->name, f->help);
        for (int k = 0; k < f->nparams; k++)
            printf("      %-8s %lld [%lld, %lld]  %s\n", f->params[k].name,
                   (long long)f->params[k].def, (long long)f->params[k].min,
                   (long long)f->params[k].max, f->params[k].help);
    }
    kb_env env = {0};
#ifdef KB_HAVE_VULKAN
    char verr[256] = "--no-vulkan";
    if (!no_vulkan)
        env.vk = kb_vk_create(device, verr, sizeof verr);
#else
    const char *verr = "built without Vulkan";
#endif
    printf("\nImplementations:\n");
    for (int i = 0; i < kb_impl_count(); i++) {
        const kb_impl *m = kb_impl_at(i);
        const char *why = NULL;
        if (m->backend == KB_BACKEND_VULKAN && !env.vk)
            why = verr;
        else if (m->available)
            why = m->available(&env);
        printf("  %-14s %-12s %-7s %s%s\n", m->family, m->name,
               m->backend == KB_BACKEND_CPU ? "cpu" : "vulkan", why ? "unavailable: " : "available",
               why ? why : "");
    }
    /* which optional shader variants this build compiled, from cmake/shaders.cmake */
    static const struct {
        const char *files, *ext;
        int built;
        const char *what; /* the shaders, or why none */
    } variants[] = {KB_BUILD_SHADER_VARIANTS};
    printf("\nShader variants (compiler: %s):\n", KB_BUILD_GLSLANG);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        printf("  %-18s %-26s %s%s\n", variants[i].files, variants[i].ext,
               variants[i].built ? "built: " : "not built: ", variants[i].what);
    printf("\nVulkan devices:\n");
#ifdef KB_HAVE_VULKAN
    if (no_vulkan)
        printf("  not loaded (--no-vulkan)\n");
    else
        kb_vk_list(stdout);
    if (env.vk)
        kb_vk_destroy(env.vk);
#else
    printf("  built without Vulkan\n");
#endif
    printf("\nSuites:\n");
    kb_suite_list(stdout);
    const kb_sysinfo *s = kb_sysinfo_get();
    printf("\nMachine: %s, %d cores, LLC %zu MiB, features: %s\n", s->cpu, s->cores,
           s->llc_bytes >> 20, s->flags);
}

/* Keeps the cases of a suite that --shape selects: the family has at least one of its keys and
 * every key it has matches. A key that no family of the suite has is an error, and so is a
 * selection that keeps nothing (exit 2). */
static int filter_shape(kb_case_list *cl, const char *shape, const char *what)
{
    char err[512], part[1024];
    if (!shape)
        return 0;
    unsigned used = 0;
    int nkeys = 0;
    const kb_family *seen[64];
    int nseen = 0;
    for (int i = 0; i < cl->n; i++) {
        int dup = 0;
        for (int k = 0; k < nseen; k++)
            dup |= seen[k] == cl->v[i].fam;
        if (dup || nseen == 64)
            continue;
        seen[nseen++] = cl->v[i].fam;
        nkeys = kb_shape_filter(cl->v[i].fam, shape, part, sizeof part, &used, err, sizeof err);
        if (nkeys < 0) {
            fprintf(stderr, "kbench: %s\n", err);
            return 2;
        }
    }
    for (int k = 0; k < nkeys; k++)
        if (!(used & (1u << k))) {
            char key[32];
            kb_shape_key(shape, k, key, sizeof key);
            fprintf(stderr, "kbench: --shape: no family of %s has parameter '%s' (kbench --list)\n",
                    what, key);
            return 2;
        }
    int k = 0;
    for (int i = 0; i < cl->n; i++) {
        unsigned u = 0;
        if (kb_shape_filter(cl->v[i].fam, shape, part, sizeof part, &u, err, sizeof err) < 0 || !u)
            continue; /* the family has none of the keys */
        int m = kb_shape_match(&cl->v[i], shape, err, sizeof err);
        if (m < 0) {
            fprintf(stderr, "kbench: %s\n", err);
            return 2;
        }
        if (m)
            cl->v[k++] = cl->v[i];
    }
    cl->n = k;
    if (k == 0) {
        fprintf(stderr, "kbench: no case of %s matches --shape %s\n", what, shape);
        return 2;
    }
    return 0;
}

/* The cases: from a suite (filtered by --shape) or ad hoc from --kernel and --shape. */
static int build_cases(const char *suite, const char *kernel, const char *shape, kb_case_list *cl)
{
    char err[512];
    if (suite) {
        char *path = kb_suite_find(suite);
        if (!path) {
            fprintf(stderr, "kbench: no suite '%s'. Suites:\n", suite);
            kb_suite_list(stderr);
            return 2;
        }
        int rc = kb_suite_load(path, cl, err, sizeof err);
        free(path);
        if (rc != 0) {
            fprintf(stderr, "kbench: %s\n", err);
            return 2;
        }
        return filter_shape(cl, shape, suite);
    }
    regex_t re;
    if (regcomp(&re, kernel, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "kbench: --kernel '%s' is not a valid regular expression\n", kernel);
        return 2;
    }
    int matched = 0, nkeys = 0;
    unsigned used = 0;
    for (int i = 0; i < kb_family_count(); i++) {
        const kb_family *f = kb_family_at(i);
        if (regexec(&re, f->name, 0, NULL, 0) != 0)
            continue;
        matched++;
        /* each family takes the --shape keys it has; a key no selected family has is an error */
        char part[1024] = "";
        if (shape && (nkeys = kb_shape_filter(f, shape, part, sizeof part, &used, err,
                                              sizeof err)) < 0) {
            fprintf(stderr, "kbench: %s\n", err);
            regfree(&re);
            return 2;
        }
        int rc = part[0] ? kb_shape_parse(f, part, cl, err, sizeof err)
                         : kb_suite_parse_line(f->name, cl, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "kbench: %s\n", err);
            regfree(&re);
            return 2;
        }
    }
    regfree(&re);
    for (int k = 0; matched && k < nkeys; k++)
        if (!(used & (1u << k))) {
            char key[32];
            kb_shape_key(shape, k, key, sizeof key);
            fprintf(stderr, "kbench: --shape: no selected family has parameter '%s' (kbench --list)\n",
                    key);
            return 2;
        }
    if (!matched) {
        fprintf(stderr, "kbench: no family matches --kernel '%s'. Families:", kernel);
        for (int i = 0; i < kb_family_count(); i++)
            fprintf(stderr, " %s", kb_family_at(i)->name);
        fprintf(stderr, "\n");
        return 2;
    }
    return 0;
}

/* ---- streaming output: rows as they finish --------------------------------------------- */

typedef struct {
    FILE *f;         /* the table or CSV: stdout, or the -o temporary file */
    char tmp[4200];  /* -o: the temporary file, renamed to the target at the end */
    int csv, vk_line;
    kb_results *res;
    kb_peaks *pk;
    int timed;
    int n[4];        /* rows by status */
    char skip_why[4][160]; /* the most common skip reasons, counted in skip_n */
    int skip_n[4];
} stream_ctx;

static void count_skip(stream_ctx *s, const char *why)
{
    for (int i = 0; i < 4; i++) {
        if (s->skip_n[i] && strcmp(s->skip_why[i], why) == 0) {
            s->skip_n[i]++;
            return;
        }
        if (!s->skip_n[i]) {
            snprintf(s->skip_why[i], sizeof s->skip_why[i], "%s", why);
            s->skip_n[i] = 1;
            return;
        }
    }
}

static void on_row(kb_result *r, void *ctx)
{
    stream_ctx *s = ctx;
    if (s->timed)
        kb_peaks_apply_row(s->pk, r);
    s->n[r->status]++;
    if (r->status == KB_SKIP)
        count_skip(s, r->msg);
    if (!s->csv && !s->vk_line && r->impl && r->impl->backend == KB_BACKEND_VULKAN) {
        fprintf(s->f, "# vulkan: %s\n", s->res->vk_status);
        s->vk_line = 1;
    }
    if (s->csv)
        kb_report_csv_row(s->f, r);
    else
        kb_report_table_row(s->f, r);
    fflush(s->f);
}

/* Inputs end at an inaccessible page in check runs (tensor.c): say what a SIGSEGV there most
 * likely is before dying of it. */
static void on_segv(int sig)
{
    static const char msg[] =
        "kbench: SIGSEGV. In --check runs every input ends at an inaccessible page, so a kernel "
        "that reads past the end of an input stops here (rerun the case alone with --check, one "
        "--impl at a time); otherwise a driver (lavapipe short of memory) or kbench crashed.\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static volatile int g_stop;
static int g_signal;

static void on_signal(int sig)
{
    g_stop = 1;
    g_signal = sig;
    signal(sig, SIG_DFL); /* a second one ends the process at once */
}

static void print_summary(const stream_ctx *s, const kb_results *res, double seconds,
                          const char *const *files, int nfiles)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int total = s->n[KB_PASS] + s->n[KB_FAIL] + s->n[KB_SKIP] + s->n[KB_ERROR];
    fprintf(stderr, "kbench: %s%d rows: %d pass, %d FAIL, %d skip, %d ERROR", res->interrupted ? "INTERRUPTED after " : "",
            total, s->n[KB_PASS], s->n[KB_FAIL], s->n[KB_SKIP], s->n[KB_ERROR]);
    int best = -1;
    for (int i = 0; i < 4; i++)
        if (s->skip_n[i] && (best < 0 || s->skip_n[i] > s->skip_n[best]))
            best = i;
    if (best >= 0)
        fprintf(stderr, " (most skipped: %s, %d)", s->skip_why[best], s->skip_n[best]);
    int m = (int)(seconds / 60);
    fprintf(stderr, "; %dm%02ds; peak memory %.2f GiB", m, (int)(seconds - 60 * m),
            (double)ru.ru_maxrss / (1024.0 * 1024.0));
    for (int i = 0; i < nfiles; i++)
        fprintf(stderr, "%s%s", i ? ", " : "; wrote ", files[i]);
    fputc('\n', stderr);
}

/* The selected implementations of the selected cases: is any a Vulkan one? Does any exist? */
static void selected_impls(const kb_options *o, const kb_case_list *cl, int *any, int *vk)
{
    regex_t ire;
    int have = o->impl_re && regcomp(&ire, o->impl_re, REG_EXTENDED | REG_NOSUB) == 0;
    *any = *vk = 0;
    for (int i = 0; i < kb_impl_count(); i++) {
        const kb_impl *m = kb_impl_at(i);
        if (have && regexec(&ire, m->name, 0, NULL, 0) != 0)
            continue;
        for (int c = 0; c < cl->n; c++)
            if (strcmp(cl->v[c].fam->name, m->family) == 0) {
                *any = 1;
                *vk |= m->backend == KB_BACKEND_VULKAN;
                break;
            }
    }
    if (have)
        regfree(&ire);
}

int main(int argc, char **argv)
{
    enum { O_SUITE = 256, O_KERNEL, O_IMPL, O_SHAPE, O_LIST, O_CSV, O_JSON, O_DUMP, O_SEED,
           O_THREADS, O_DEVICE, O_NOVK, O_MINT, O_MAXT, O_MINS, O_NOISE, O_HOT, O_CHECK, O_REPS, O_ITERS, O_DUR, O_PERF, O_CAL, O_INTER, O_INPUTS, O_VERSION, O_TIMEREF, O_QUICK, O_FULL, O_LOAD };
    static const struct option opts[] = {
        {"suite", 1, 0, O_SUITE},     {"kernel", 1, 0, O_KERNEL}, {"impl", 1, 0, O_IMPL},
        {"shape", 1, 0, O_SHAPE},     {"list", 0, 0, O_LIST},     {"csv", 0, 0, O_CSV},
        {"json", 1, 0, O_JSON},       {"dump", 1, 0, O_DUMP},     {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, O_THREADS}, {"device", 1, 0, O_DEVICE}, {"no-vulkan", 0, 0, O_NOVK},
        {"min-time", 1, 0, O_MINT},   {"max-time", 1, 0, O_MAXT}, {"min-samples", 1, 0, O_MINS},
        {"noise", 1, 0, O_NOISE},     {"hot", 0, 0, O_HOT},       {"check", 0, 0, O_CHECK},
        {"repetitions", 1, 0, O_REPS}, {"iterations", 1, 0, O_ITERS}, {"duration", 1, 0, O_DUR},
        {"perf-ctl", 1, 0, O_PERF},   {"calibration", 1, 0, O_CAL},
        {"interleave", 0, 0, O_INTER},   {"inputs", 1, 0, O_INPUTS},  {"version", 0, 0, O_VERSION},
        {"time-ref", 0, 0, O_TIMEREF},   {"quick", 0, 0, O_QUICK},    {"full", 0, 0, O_FULL},
        {"load", 1, 0, O_LOAD},   {"output", 1, 0, 'o'},        {"quiet", 0, 0, 'q'},       {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    kb_options o;
    kb_options_default(&o);
    const char *suite = NULL, *shape = NULL, *json = NULL, *output = NULL, *perf_spec = NULL,
               *cal_path = NULL;
    if (argc > 1 && strcmp(argv[1], "model") == 0) /* kbench model: models/model_cli.c */
        return kb_model_main(argc - 1, argv + 1);
    int calibrate = argc > 1 && strcmp(argv[1], "calibrate") == 0;
    if (calibrate) { /* a subcommand: shift it away */
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    int list = 0, csv = 0, quiet = 0, quick = 0, full = 0, times_set = 0, c;
    long long v;
    double d;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:qh", opts, NULL)) != -1) {
        switch (c) {
        case O_SUITE: suite = optarg; break;
        case O_KERNEL: o.kernel_re = optarg; break;
        case O_IMPL: o.impl_re = optarg; break;
        case O_SHAPE: shape = optarg; break;
        case O_LIST: list = 1; break;
        case O_CSV: csv = 1; break;
        case O_JSON: json = optarg; break;
        case O_DUMP: o.dump_dir = optarg; break;
        case O_SEED:
            if (parse_int(optarg, 0, INT64_MAX, &v))
                return die_usage("--seed '%s': expected a non-negative integer", optarg);
            o.seed = (uint64_t)v;
            break;
        case O_INPUTS: {
            int found = -1;
            for (int k = 0; k < KB_INPUTS_COUNT; k++)
                if (strcmp(optarg, kb_inputs_name((kb_inputs)k)) == 0)
                    found = k;
            if (found < 0)
                return die_usage("--inputs '%s': expected random, outliers, peaky, extreme or zeros",
                                 optarg);
            o.inputs = (kb_inputs)found;
            break;
        }
        case O_THREADS: {
            char buf[256], *save = NULL;
            snprintf(buf, sizeof buf, "%s", optarg);
            o.n_threads = 0;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o.n_threads == KB_MAX_THREAD_COUNTS || parse_int(t, 1, 1024, &v))
                    return die_usage("--threads '%s': expected up to 8 counts in 1..1024, e.g. 1,2",
                                     optarg);
                int dup = 0; /* 1,1 runs one thread once */
                for (int k = 0; k < o.n_threads; k++)
                    dup |= o.threads[k] == (int)v;
                if (!dup)
                    o.threads[o.n_threads++] = (int)v;
            }
            if (!o.n_threads)
                return die_usage("--threads '%s': empty", optarg);
            break;
        }
        case O_DEVICE:
            if (parse_int(optarg, 0, 64, &v))
                return die_usage("--device '%s': expected a device index (kbench --list)", optarg);
            o.device = (int)v;
            break;
        case O_NOVK: o.no_vulkan = 1; break;
        case O_MINT:
            if (parse_double(optarg, &d) || d > KB_MAX_SECONDS)
                return die_usage("--min-time '%s': expected seconds in [0, 3600]", optarg);
            o.min_time = d;
            times_set = 1;
            break;
        case O_MAXT:
            if (parse_double(optarg, &d) || d <= 0 || d > KB_MAX_SECONDS)
                return die_usage("--max-time '%s': expected seconds in (0, 3600]", optarg);
            o.max_time = d;
            times_set = 1;
            break;
        case O_MINS:
            if (parse_int(optarg, 1, 1000000, &v))
                return die_usage("--min-samples '%s': expected 1..1000000", optarg);
            o.min_samples = (int)v;
            break;
        case O_NOISE:
            if (parse_double(optarg, &d) || d > 100)
                return die_usage("--noise '%s': expected a percentage in [0, 100]", optarg);
            o.noise_pct = d;
            break;
        case O_HOT: o.hot = 1; break;
        case O_CHECK: o.check_only = 1; break;
        case O_REPS:
            if (parse_int(optarg, 1, 1000, &v))
                return die_usage("--repetitions '%s': expected 1..1000", optarg);
            o.repetitions = (int)v;
            break;
        case O_ITERS:
            if (parse_int(optarg, 1, 100000000, &v))
                return die_usage("--iterations '%s': expected a count >= 1", optarg);
            o.iterations = (int)v;
            break;
        case O_DUR:
            if (parse_double(optarg, &d) || d <= 0 || d > KB_MAX_SECONDS)
                return die_usage("--duration '%s': expected seconds in (0, 3600]", optarg);
            o.duration = d;
            break;
        case O_PERF: perf_spec = optarg; break;
        case O_CAL: cal_path = optarg; break;
        case O_INTER: o.interleave = 1; break;
        case O_VERSION:
            printf("kbench %s (commit %s)\n", KB_VERSION, kb_sysinfo_get()->commit);
            return 0;
        case O_TIMEREF: o.time_ref = 1; break;
        case O_QUICK: quick = 1; break;
        case O_FULL: full = 1; break;
        case O_LOAD: o.load_dir = optarg; break;
        case 'o': output = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case ':': return die_usage("option '%s' needs a value", argv[optind - 1]);
        default: return die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return die_usage("unexpected argument '%s'", argv[optind]);
    if (o.max_time < o.min_time)
        o.max_time = o.min_time;
    if (list) {
        list_all(o.device, o.no_vulkan);
        return 0;
    }
    char default_cal[4096];
    kb_calibration_path(default_cal, sizeof default_cal);
    if (calibrate) {
        if (suite || o.kernel_re || o.impl_re || shape || json || o.dump_dir || quick || full ||
            o.check_only || o.interleave)
            return die_usage("%scalibrate takes --threads, --device, --no-vulkan and -o FILE only",
                             "");
        kb_peaks pk;
        const char *path = output ? output : default_cal;
        char cerr[512];
        if (kb_check_writable(path, cerr, sizeof cerr) != 0) {
            fprintf(stderr, "kbench calibrate: %s\n", cerr);
            return 2;
        }
        if (kb_calibrate(&o, path, &pk) != 0) {
            fprintf(stderr, "kbench calibrate: cannot write %s: %s\n", path, strerror(errno));
            return 1;
        }
        printf("calibration written to %s\n  for this machine: %s\n", path,
               kb_sysinfo_get()->machine_key);
        for (int t = 1; t <= KB_CAL_MAX_THREADS; t++)
            if (pk.read_gbps[t] > 0)
                printf("  %d thread(s): read %.2f GB/s, copy %.2f GB/s, triad %.2f GB/s\n", t,
                   pk.read_gbps[t], pk.copy_gbps[t], pk.triad_gbps[t]);
        printf("  peak f32 FMA, one thread: avx2 %.1f GFLOP/s, avx512 %.1f GFLOP/s\n",
               pk.fma_gflops_1t_avx2, pk.fma_gflops_1t_avx512);
        if (o.no_vulkan)
            printf("  vulkan: not measured (--no-vulkan)\n");
        else
            printf("  vulkan: %s\n  vulkan read %.1f GB/s, copy %.1f GB/s, FMA f32 %.1f GFLOP/s, "
                   "f16 %.1f GFLOP/s\n",
                   pk.vk_device, pk.vk_read_gbps, pk.vk_copy_gbps, pk.vk_fma_gflops,
                   pk.vk_fma16_gflops);
        return 0;
    }
    if (quick && full)
        return die_usage("%s--quick and --full: choose one", "");
    if ((quick || full) && o.kernel_re && !suite)
        return die_usage("%s--quick and --full select suite lines: give --suite, or neither", "");
    /* Nothing selected: the quick run, every suite's lines tagged quick, short timing. */
    int quick_run = quick || (!suite && !o.kernel_re && !full);
    kb_case_list cl = {0};
    int rc;
    if (!suite && !o.kernel_re) {
        char serr[600];
        if (kb_suite_load_all(quick_run, &cl, serr, sizeof serr) != 0) {
            fprintf(stderr, "kbench: %s\n", serr);
            kb_case_list_free(&cl);
            return 2;
        }
        rc = filter_shape(&cl, shape, quick_run ? "the quick run" : "the suites");
        if (!quiet && !rc)
            fprintf(stderr, "kbench: %s: %d cases from every suite (--suite NAME for one; --help)\n",
                    quick_run ? "the quick run (suite lines tagged quick; --full for everything)"
                              : "the full run",
                    cl.n);
    } else {
        rc = build_cases(suite, o.kernel_re, shape, &cl);
        if (!rc && suite && quick) {
            int k = 0;
            for (int i = 0; i < cl.n; i++)
                if (cl.v[i].tags & KB_TAG_QUICK)
                    cl.v[k++] = cl.v[i];
            cl.n = k;
        }
    }
    if (rc) {
        kb_case_list_free(&cl);
        return rc;
    }
    if (quick_run && !times_set) { /* a first look: shorter timing */
        o.min_time = 0.05;
        o.max_time = 0.25;
    }
    /* The selection must select something: a family filter, an implementation filter. */
    if (suite && o.kernel_re) {
        regex_t re;
        if (regcomp(&re, o.kernel_re, REG_EXTENDED | REG_NOSUB) != 0) {
            kb_case_list_free(&cl);
            return die_usage("--kernel '%s' is not a valid regular expression", o.kernel_re);
        }
        int k = 0;
        for (int i = 0; i < cl.n; i++)
            if (regexec(&re, cl.v[i].fam->name, 0, NULL, 0) == 0)
                cl.v[k++] = cl.v[i];
        cl.n = k;
        regfree(&re);
        o.kernel_re = NULL; /* applied */
    }
    if (cl.n == 0) {
        fprintf(stderr, "kbench: no case matches the selection%s%s%s%s%s\n", suite ? " (--suite " : "",
                suite ? suite : "", suite ? ")" : "", quick ? " (--quick: no line tagged quick)" : "",
                shape ? " (--shape)" : "");
        kb_case_list_free(&cl);
        return 2;
    }
    if (o.impl_re) {
        regex_t re;
        if (regcomp(&re, o.impl_re, REG_EXTENDED | REG_NOSUB) != 0) {
            kb_case_list_free(&cl);
            return die_usage("--impl '%s' is not a valid regular expression", o.impl_re);
        }
        regfree(&re);
    }
    int any_impl = 0, any_vk = 0;
    selected_impls(&o, &cl, &any_impl, &any_vk);
    if (!any_impl) {
        fprintf(stderr, "kbench: --impl '%s' matches no implementation of the selected families "
                        "(kbench --list shows them)\n", o.impl_re ? o.impl_re : "");
        kb_case_list_free(&cl);
        return 2;
    }
    /* Every file this run writes is checked now, not after an hour of work. */
    char ferr[4400];
    if ((output && kb_check_writable(output, ferr, sizeof ferr) != 0) ||
        (json && kb_check_writable(json, ferr, sizeof ferr) != 0) ||
        (o.dump_dir && kb_check_dir(o.dump_dir, ferr, sizeof ferr) != 0)) {
        fprintf(stderr, "kbench: %s%s\n", o.dump_dir && strstr(ferr, o.dump_dir) ? "--dump: " : "",
                ferr);
        kb_case_list_free(&cl);
        return 2;
    }
    o.progress = quiet ? 0 : isatty(2) ? 1 : 2;
#ifdef KB_HAVE_VULKAN
    if (o.device >= 0 && !o.no_vulkan) { /* a device asked for by name must exist */
        char verr[512] = "";
        struct kb_vk *vk = kb_vk_create(o.device, verr, sizeof verr);
        if (!vk) {
            fprintf(stderr, "kbench: --device %d: %s\n", o.device, verr);
            kb_case_list_free(&cl);
            return 2;
        }
        kb_vk_destroy(vk);
    }
#endif
    if (perf_spec) {
        char perr[1200];
        if (kb_perfctl_open(perf_spec, perr, sizeof perr) != 0) {
            fprintf(stderr, "kbench: %s\n", perr);
            kb_case_list_free(&cl);
            return 2;
        }
    }
    double t_start = kb_now();
    kb_results res = {0};
    kb_peaks pk;
    memset(&pk, 0, sizeof pk);
    if (!o.check_only) { /* the ceilings every row is read against, before the first row */
        const char *cp = cal_path ? cal_path : default_cal;
        char why[1200] = "";
        int lr = kb_calibration_load(cp, &pk, why, sizeof why);
        if (lr != 0) {
            if (lr == -2 || cal_path)
                fprintf(stderr, "kbench: %s; measuring read bandwidth in this run\n", why);
            memset(&pk, 0, sizeof pk);
        }
        kb_peaks_measure(&o, any_vk, &pk);
        snprintf(res.peaks_source, sizeof res.peaks_source, "%s", pk.source);
    }
    stream_ctx st = {.csv = csv, .res = &res, .pk = &pk, .timed = !o.check_only};
    st.f = stdout;
    if (output) {
        st.f = kb_tmpfile_for(output, st.tmp, sizeof st.tmp);
        if (!st.f) {
            fprintf(stderr, "kbench: cannot write %s: %s\n", output, strerror(errno));
            kb_case_list_free(&cl);
            return 2;
        }
    }
    snprintf(res.vk_status, sizeof res.vk_status, "not used");
    if (csv) {
        kb_report_csv_head(st.f);
    } else {
        const kb_sysinfo *si = kb_sysinfo_get();
        fprintf(st.f, "# kbench %s | %s | %d cores | L2 %zu KiB, LLC %zu MiB | %.1f GiB | %s\n",
                si->commit, si->cpu, si->cores, si->l2_bytes >> 10, si->llc_bytes >> 20,
                (double)si->mem_bytes / (1 << 30), si->flags);
        if (res.peaks_source[0])
            fprintf(st.f, "# %%bw: share of the streaming-read bandwidth at the same thread count, from %s\n",
                    res.peaks_source);
        kb_report_table_head(st.f);
    }
    fflush(st.f);
    o.on_row = on_row;
    o.on_row_ctx = &st;
    o.stop = &g_stop;
    if (o.check_only)
        signal(SIGSEGV, on_segv);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int bad = kb_run(&o, &cl, &res);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (!csv && !st.vk_line && strcmp(res.vk_status, "not used") != 0)
        fprintf(st.f, "# vulkan: %s\n", res.vk_status);
    int io = 0;
    const char *files[3];
    int nfiles = 0;
    if (output) {
        if (kb_tmpfile_commit(st.f, st.tmp, output) != 0) {
            fprintf(stderr, "kbench: cannot write %s: %s; the rows follow on stdout\n", output,
                    strerror(errno));
            if (csv)
                kb_report_csv(stdout, &res);
            else
                kb_report_table(stdout, &res);
            io = 1;
        } else {
            files[nfiles++] = output;
        }
    }
    if (json) {
        if (kb_report_json(json, &res, &o, argc, argv) != 0) {
            fprintf(stderr, "kbench: cannot write %s: %s\n", json, strerror(errno));
            io = 1;
        } else {
            files[nfiles++] = json;
        }
    }
    if (o.dump_dir) {
        files[nfiles++] = o.dump_dir;
        if (res.io_errors) {
            fprintf(stderr, "kbench: --dump: %d file(s) could not be written into %s\n",
                    res.io_errors, o.dump_dir);
            io = 1;
        }
    }
    if (!quiet)
        print_summary(&st, &res, kb_now() - t_start, files, nfiles);
    else if (bad)
        fprintf(stderr, "kbench: %d row(s) failed or errored\n", bad);
    int interrupted = res.interrupted;
    kb_results_free(&res);
    kb_case_list_free(&cl);
    kb_perfctl_close();
    if (interrupted)
        return 128 + (g_signal ? g_signal : SIGINT);
    return bad || io ? 1 : 0;
}
