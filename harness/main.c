/* kbench: the command line. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <unistd.h>

#include "calibrate.h"
#include "kb_build_info.h"
#include "kbench.h"
#include "perfctl.h"
#include "report.h"
#include "runner.h"
#include "suite.h"
#include "sysinfo.h"

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
    "  --dump DIR           inputs, reference and every output of each case as NumPy .npy files\n"
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
        if (shape) {
            int k = 0;
            for (int i = 0; i < cl->n; i++) {
                int m = kb_shape_match(&cl->v[i], shape, err, sizeof err);
                if (m < 0) {
                    fprintf(stderr, "kbench: %s\n", err);
                    return 2;
                }
                if (m)
                    cl->v[k++] = cl->v[i];
            }
            cl->n = k;
        }
        return 0;
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

/* Writes the table or CSV to path through a temporary file. */
static int write_text(const char *path, const kb_results *res, int csv)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    if (csv)
        kb_report_csv(f, res);
    else
        kb_report_table(f, res);
    int ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_SUITE = 256, O_KERNEL, O_IMPL, O_SHAPE, O_LIST, O_CSV, O_JSON, O_DUMP, O_SEED,
           O_THREADS, O_DEVICE, O_NOVK, O_MINT, O_MAXT, O_MINS, O_NOISE, O_HOT, O_CHECK, O_REPS, O_ITERS, O_DUR, O_PERF, O_CAL, O_INTER, O_INPUTS };
    static const struct option opts[] = {
        {"suite", 1, 0, O_SUITE},     {"kernel", 1, 0, O_KERNEL}, {"impl", 1, 0, O_IMPL},
        {"shape", 1, 0, O_SHAPE},     {"list", 0, 0, O_LIST},     {"csv", 0, 0, O_CSV},
        {"json", 1, 0, O_JSON},       {"dump", 1, 0, O_DUMP},     {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, O_THREADS}, {"device", 1, 0, O_DEVICE}, {"no-vulkan", 0, 0, O_NOVK},
        {"min-time", 1, 0, O_MINT},   {"max-time", 1, 0, O_MAXT}, {"min-samples", 1, 0, O_MINS},
        {"noise", 1, 0, O_NOISE},     {"hot", 0, 0, O_HOT},       {"check", 0, 0, O_CHECK},
        {"repetitions", 1, 0, O_REPS}, {"iterations", 1, 0, O_ITERS}, {"duration", 1, 0, O_DUR},
        {"perf-ctl", 1, 0, O_PERF},   {"calibration", 1, 0, O_CAL},
        {"interleave", 0, 0, O_INTER},   {"inputs", 1, 0, O_INPUTS},   {"output", 1, 0, 'o'},        {"quiet", 0, 0, 'q'},       {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    kb_options o;
    kb_options_default(&o);
    const char *suite = NULL, *shape = NULL, *json = NULL, *output = NULL, *perf_spec = NULL,
               *cal_path = NULL;
    int calibrate = argc > 1 && strcmp(argv[1], "calibrate") == 0;
    if (calibrate) { /* a subcommand: shift it away */
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    int list = 0, csv = 0, quiet = 0, c;
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
            if (parse_double(optarg, &d))
                return die_usage("--min-time '%s': expected seconds", optarg);
            o.min_time = d;
            break;
        case O_MAXT:
            if (parse_double(optarg, &d) || d <= 0)
                return die_usage("--max-time '%s': expected seconds > 0", optarg);
            o.max_time = d;
            break;
        case O_MINS:
            if (parse_int(optarg, 1, 1000000, &v))
                return die_usage("--min-samples '%s': expected 1..1000000", optarg);
            o.min_samples = (int)v;
            break;
        case O_NOISE:
            if (parse_double(optarg, &d))
                return die_usage("--noise '%s': expected a percentage", optarg);
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
            if (parse_double(optarg, &d) || d <= 0)
                return die_usage("--duration '%s': expected seconds > 0", optarg);
            o.duration = d;
            break;
        case O_PERF: perf_spec = optarg; break;
        case O_CAL: cal_path = optarg; break;
        case O_INTER: o.interleave = 1; break;
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
        kb_peaks pk;
        const char *path = output ? output : default_cal;
        if (kb_calibrate(&o, path, &pk) != 0) {
            fprintf(stderr, "kbench calibrate: cannot write %s: %s\n", path, strerror(errno));
            return 1;
        }
        printf("calibration written to %s\n", path);
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
    if (!suite && !o.kernel_re)
        return die_usage("%snothing to run: give --suite NAME or --kernel REGEX (--list shows them)",
                         "");
    kb_case_list cl = {0};
    int rc = build_cases(suite, o.kernel_re, shape, &cl);
    if (rc) {
        kb_case_list_free(&cl);
        return rc;
    }
    if (cl.n == 0) {
        fprintf(stderr, "kbench: no case matches the selection\n");
        kb_case_list_free(&cl);
        return 2;
    }
    o.progress = !quiet && isatty(2);
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
    kb_results res = {0};
    int bad = kb_run(&o, &cl, &res);
    if (!o.check_only) {
        kb_peaks pk;
        const char *cp = cal_path ? cal_path : default_cal;
        if (kb_calibration_load(cp, &pk) != 0) {
            if (cal_path)
                fprintf(stderr, "kbench: cannot read calibration %s; measuring read bandwidth\n",
                        cal_path);
            memset(&pk, 0, sizeof pk);
        }
        kb_peaks_fill(&o, &res, &pk);
        kb_peaks_apply(&pk, &res);
        snprintf(res.peaks_source, sizeof res.peaks_source, "%s", pk.source);
    }
    if (res.n == 0) {
        fprintf(stderr, "kbench: no implementation matches --impl '%s'\n",
                o.impl_re ? o.impl_re : "");
        bad = 1;
    }
    int io = 0;
    if (output) {
        if (write_text(output, &res, csv) != 0) {
            fprintf(stderr, "kbench: cannot write %s: %s\n", output, strerror(errno));
            io = 1;
        }
    } else if (csv) {
        kb_report_csv(stdout, &res);
    } else {
        kb_report_table(stdout, &res);
    }
    if (json && kb_report_json(json, &res, &o, argc, argv) != 0) {
        fprintf(stderr, "kbench: cannot write %s: %s\n", json, strerror(errno));
        io = 1;
    }
    if (bad)
        fprintf(stderr, "kbench: %d row(s) failed or errored\n", bad);
    kb_results_free(&res);
    kb_case_list_free(&cl);
    kb_perfctl_close();
    return bad || io ? 1 : 0;
}
