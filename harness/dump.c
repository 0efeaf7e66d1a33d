#include "dump.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "npy.h"
#include "report.h"
#include "sysinfo.h"

void kb_dump_dir_name(int case_idx, const kb_case *c, char *buf, size_t n)
{
    char shape[160];
    kb_case_format(c, shape, sizeof shape);
    for (char *s = shape; *s; s++)
        if (*s == ' ')
            *s = '_';
    snprintf(buf, n, "%03d_%s_%s", case_idx, c->fam->name, shape);
}

int kb_dump_tensors(const char *dir, const char *prefix, const kb_tensor *t, int nt)
{
    char path[4096];
    int bad = 0;
    for (int i = 0; i < nt; i++) {
        snprintf(path, sizeof path, "%s/%s%s.npy", dir, prefix, t[i].name);
        if (kb_npy_write(path, &t[i]) != 0) {
            if (bad++ == 0)
                fprintf(stderr, "kbench: cannot write %s: %s\n", path, strerror(errno));
        }
    }
    return bad;
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

static void file_entry(FILE *f, int first, const char *file, const char *role, const char *impl,
                       int threads, const kb_tensor *t)
{
    fprintf(f, "%s\n    {\"file\": ", first ? "" : ",");
    kb_json_str(f, file);
    fputs(", \"role\": ", f);
    kb_json_str(f, role);
    if (impl) {
        fputs(", \"impl\": ", f);
        kb_json_str(f, impl);
        fprintf(f, ", \"threads\": %d", threads);
    }
    fputs(", \"tensor\": ", f);
    kb_json_str(f, t->name);
    fprintf(f, ", \"dtype\": \"%s\", \"npy_dtype\": \"%s\", \"shape\": [", kb_dtype_name(t->dtype),
            kb_npy_descr(t->dtype));
    for (int k = 0; k < t->ndim; k++)
        fprintf(f, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
    fputs("], \"element\": ", f);
    kb_json_str(f, t->elem[0] ? t->elem : kb_dtype_name(t->dtype));
    fputc('}', f);
}

int kb_dump_manifest(const char *dir, const kb_options *o, const kb_case *c, uint64_t case_seed,
                     const kb_tensor *in, int n_in, const kb_tensor *out, int n_out,
                     const kb_result *rows, int nrows)
{
    char path[4096], tmp[4200], file[256];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    FILE *f = kb_tmpfile_for(path, tmp, sizeof tmp);
    if (!f)
        return -1;
    fputs("{\n  \"family\": ", f);
    kb_json_str(f, c->fam->name);
    fputs(", \"label\": ", f);
    kb_json_str(f, c->label);
    fputs(",\n  \"params\": {", f);
    for (int k = 0; k < c->fam->nparams; k++)
        fprintf(f, "%s\"%s\": %lld", k ? ", " : "", c->fam->params[k].name, (long long)c->p[k]);
    fprintf(f, "},\n  \"seed\": %llu, \"case_seed\": %llu, \"inputs\": \"%s\", \"loaded_from\": ",
            (unsigned long long)o->seed, (unsigned long long)case_seed, kb_inputs_name(o->inputs));
    kb_json_str(f, o->load_dir ? o->load_dir : "");
    fputs(", \"commit\": ", f);
    kb_json_str(f, kb_sysinfo_get()->commit);
    fputs(",\n  \"files\": [", f);
    int first = 1;
    for (int i = 0; i < n_in; i++, first = 0) {
        snprintf(file, sizeof file, "in_%s.npy", in[i].name);
        file_entry(f, first, file, "input", NULL, 0, &in[i]);
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(file, sizeof file, "ref_%s.npy", out[i].name);
        file_entry(f, 0, file, "reference output (the definition, in double, rounded)", NULL, 0,
                   &out[i]);
    }
    for (int r = 0; r < nrows; r++) {
        if (!rows[r].impl || rows[r].status == KB_SKIP || rows[r].status == KB_ERROR)
            continue;
        for (int i = 0; i < n_out; i++) {
            snprintf(file, sizeof file, "out_%s_t%d_%s.npy", rows[r].impl->name, rows[r].threads,
                     out[i].name);
            file_entry(f, 0, file, "implementation output (its checked run)", rows[r].impl->name,
                       rows[r].threads, &out[i]);
        }
    }
    fputs("\n  ],\n  \"rows\": [", f);
    for (int r = 0; r < nrows; r++) {
        const kb_result *x = &rows[r];
        fprintf(f, "%s\n    {\"impl\": ", r ? "," : "");
        kb_json_str(f, x->impl ? x->impl->name : "-");
        fprintf(f, ", \"threads\": %d, \"status\": \"%s\", \"tolerance\": ", x->threads,
                kb_status_name(x->status));
        json_num(f, x->tol);
        fprintf(f, ", \"tol_kind\": \"%s\", \"cond_err\": ", x->tol_is_cond ? "cond" : "nmse");
        json_num(f, x->cond_err);
        fputs(", \"nmse\": ", f);
        json_num(f, x->nmse);
        fputs(", \"max_abs\": ", f);
        json_num(f, x->max_abs);
        fputs(", \"tol_why\": ", f);
        kb_json_str(f, x->impl && x->impl->tol_why ? x->impl->tol_why : "");
        fputs(", \"message\": ", f);
        kb_json_str(f, x->msg);
        fputc('}', f);
    }
    fputs("\n  ]\n}\n", f);
    return kb_tmpfile_commit(f, tmp, path);
}

/* dir itself when it holds the case's first input, else the folder under dir whose name ends
 * in _FAMILY_SHAPE. */
static int case_dir(const char *dir, const kb_case *c, const kb_tensor *in, char *out, size_t n)
{
    struct stat st;
    char probe[4200], want[256], name[300];
    snprintf(probe, sizeof probe, "%s/in_%s.npy", dir, in[0].name);
    if (stat(probe, &st) == 0) {
        snprintf(out, n, "%s", dir);
        return 0;
    }
    kb_dump_dir_name(0, c, name, sizeof name);
    snprintf(want, sizeof want, "%s", name + 3); /* _FAMILY_SHAPE */
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    int found = -1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), wl = strlen(want);
        if (len > wl && strcmp(e->d_name + len - wl, want) == 0) {
            snprintf(out, n, "%s/%s", dir, e->d_name);
            found = 0;
            break;
        }
    }
    closedir(d);
    return found;
}

int kb_load_inputs(const char *dir, const kb_case *c, kb_tensor *in, int n_in, char *err,
                   size_t errlen)
{
    char cdir[4096], path[4400];
    if (case_dir(dir, c, in, cdir, sizeof cdir) != 0) {
        char name[300];
        kb_dump_dir_name(0, c, name, sizeof name);
        snprintf(err, errlen, "--load %s: no in_%s.npy there, nor a folder NNN%s", dir, in[0].name,
                 name + 3);
        return -1;
    }
    for (int i = 0; i < n_in; i++) {
        snprintf(path, sizeof path, "%s/in_%s.npy", cdir, in[i].name);
        if (kb_npy_read(path, &in[i], err, errlen) != 0)
            return -1;
    }
    return 0;
}
