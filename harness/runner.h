/* The runner: for each case, inputs, reference, then each implementation: check, then time. */
#ifndef KB_RUNNER_H
#define KB_RUNNER_H

#include "kbench.h"
#include "suite.h"

#define KB_MAX_THREAD_COUNTS 8

struct kb_result;

typedef struct kb_options {
    const char *kernel_re; /* families to run (POSIX ERE), NULL = all */
    const char *impl_re;   /* implementations to run, NULL = all */
    int threads[KB_MAX_THREAD_COUNTS], n_threads; /* CPU thread counts to run */
    int device;            /* Vulkan device index, -1 = automatic */
    int no_vulkan;         /* do not touch Vulkan at all */
    uint64_t seed;
    kb_inputs inputs; /* input distribution (--inputs), default KB_INPUTS_RANDOM */
    double min_time, max_time, noise_pct; /* seconds, seconds, percent */
    int min_samples;
    int repetitions; /* timing loops per row (samples pooled), default 1 */
    int iterations;  /* > 0: exactly this many timed runs per repetition (no noise rule) */
    double duration; /* > 0: time each repetition exactly this long (no noise rule) */
    int hot;        /* no rotation of inputs beyond the LLC */
    int check_only; /* correctness only, no timing */
    int interleave; /* time all rows round-robin after all checks (noisy machines) */
    int progress;   /* progress on stderr: 1 a line redrawn in place (a terminal), 2 one plain
                     * line per case (a log) */
    int time_ref;   /* time the ref rows too (otherwise only where one run is short) */
    const char *dump_dir;
    const char *load_dir; /* --load: inputs from .npy files (dump.h) instead of generated */
    const kb_impl *const *extra_impls; /* tests: implementations beyond the registry */
    int n_extra_impls;
    int registry_impls_off; /* tests: only extra_impls */
    /* Called once per row when it is final (checked, timed, rechecked), in the order of the
     * results; pct_peak_* are not set yet. NULL: nothing. */
    void (*on_row)(struct kb_result *r, void *ctx);
    void *on_row_ctx;
    /* Set asynchronously (a signal handler) to stop the run: the row in progress is dropped,
     * finished rows stay in the results. NULL: never stops. */
    volatile int *stop;
} kb_options;

void kb_options_default(kb_options *o);

typedef enum { KB_PASS, KB_FAIL, KB_SKIP, KB_ERROR } kb_status;
const char *kb_status_name(kb_status s);

#define KB_KEEP_SAMPLES 1000 /* samples kept per row (evenly spaced; statistics use them all) */

typedef struct kb_result {
    kb_case c;
    const kb_impl *impl; /* NULL for a case that could not be set up */
    int threads;         /* CPU threads; 0 for Vulkan */
    kb_status status;
    char msg[256];
    double nmse, max_abs, cosine;
    double cond_err; /* largest conditioned error (families with `condition`/`compare`), else NaN */
    double tol;      /* the tolerance that decided: conditioned, or NMSE where the family has none */
    int tol_is_cond; /* 1: tol is a conditioned tolerance */
    int copies;          /* rotated input copies used for timing */
    int n_samples;       /* timed runs */
    double *samples;     /* seconds (GPU time for Vulkan): every sample_stride-th, at most
                          * KB_KEEP_SAMPLES of them (n_kept) */
    int n_kept, sample_stride;
    double median, min, p90, noise_pct;
    double ci_lo, ci_hi; /* 95% confidence interval of the median */
    double wall_median;  /* Vulkan: host wall time per run, submission included */
    double bytes, flops, gbps, gflops;
    double pct_peak_bw, pct_peak_flops; /* of the calibrated (or measured) ceilings */
} kb_result;

typedef struct kb_results {
    kb_result *v;
    int n, cap;
    int interrupted; /* the run was stopped (kb_options.stop) before its end */
    int io_errors;   /* --dump files that could not be written */
    char vk_status[256]; /* the Vulkan device used, or why none */
    char peaks_source[512]; /* where pct_peak_* come from */
} kb_results;

void kb_results_free(kb_results *r);
/* Runs every case with every selected implementation. Returns the number of FAIL and ERROR rows. */
int kb_run(const kb_options *o, const kb_case_list *cases, kb_results *res);

#endif
