/* The run of `kbench model`: options, per-backend results, and the reports (model_run.c,
 * model_report.c). */
#ifndef KB_MODEL_RUN_H
#define KB_MODEL_RUN_H

#include "model.h"

typedef struct mdl_opts {
    const char *preset, *gguf, *impl, *backends, *json, *output, *calibration, *set;
    int layers, experts, prompt, gen, threads, device, csv, quiet;
    uint64_t seed;
    int wfmt; /* -1: the preset's default */
    int no_roofline; /* tests: no read measurement */
    int argc;
    char **argv;
} mdl_opts;

/* One line of a decode breakdown: the ops of one family and shape in a step. */
typedef struct mdl_brow {
    const kb_family *fam;
    const kb_impl *impl; /* NULL for ref */
    char shape[160];     /* suite keys of the last step's case */
    int calls;           /* per token */
    double sec;          /* per token: the sum of the ops' median times over the steps */
    double bytes;        /* per token: the cost model's bytes */
} mdl_brow;

typedef struct mdl_bres {
    const char *name;
    int ran;
    char err[512];
    char impls[768];
    int low_precision;
    char precision_why[256];
    double prefill_s, prefill_wall;
    double *step_s, *step_wall; /* [gen] */
    double *nmse;               /* [gen + 1] against ref: prefill's logits, then each step */
    int *agree;                 /* [gen + 1]: argmax equal to ref's */
    int32_t *argmax;            /* [gen + 1]: this backend's greedy choice */
    double *margin;             /* [gen + 1]: ref's top-1 minus top-2 logit */
    int compared, first_diff, n_agree;
    double max_nmse, tol;
    int pass;
    double bytes_step, read_gbps, roofline_tps, decode_tps, decode_tps_wall, prefill_tps, share;
    char read_src[200];
    mdl_brow *rows;
    int nrows;
    double *rms; /* [layers + 1]; NULL when not readable */
} mdl_bres;

typedef struct mdl_report {
    const mdl_opts *o;
    const mdl_model *m;
    mdl_bres b[MDL_MAX_BACKENDS];
    int nb;
    double weight_bytes;
    int32_t *prompt;
    char note[512]; /* teacher forcing, what was measured where */
} mdl_report;

int mdl_run_all(const mdl_opts *o, mdl_model *m, mdl_report *r);
void mdl_report_free(mdl_report *r);
void mdl_report_text(FILE *f, const mdl_report *r);
void mdl_report_csv(FILE *f, const mdl_report *r);
int mdl_report_json(const char *path, const mdl_report *r);
/* The kbench line that times op's case alone with impl (NULL: ref). */
void mdl_kbench_line(const kb_family *f, const char *shape, const kb_impl *impl, int threads,
                     char *buf, size_t n);

#endif
