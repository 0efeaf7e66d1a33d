#include "report.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "sysinfo.h"

static const char *impl_name(const kb_result *x) { return x->impl ? x->impl->name : "-"; }
static const char *backend(const kb_result *x)
{
    return !x->impl ? "-" : x->impl->backend == KB_BACKEND_CPU ? "cpu" : "vulkan";
}

void kb_report_header(FILE *f, const kb_results *r)
{
    const kb_sysinfo *s = kb_sysinfo_get();
    fprintf(f, "# kbench %s | %s | %d cores | L2 %zu KiB, LLC %zu MiB | %.1f GiB | %s\n",
            s->commit, s->cpu, s->cores, s->l2_bytes >> 10, s->llc_bytes >> 20,
            (double)s->mem_bytes / (1 << 30), s->flags);
    fprintf(f, "# vulkan: %s\n", r->vk_status);
    if (r->peaks_source[0])
        fprintf(f, "# %%bw: share of the streaming-read bandwidth at the same thread count, from %s\n",
                r->peaks_source);
}

static void fmt_time(char *b, size_t n, double s)
{
    if (isnan(s))
        snprintf(b, n, "-");
    else if (s < 1e-3)
        snprintf(b, n, "%.2f us", s * 1e6);
    else if (s < 1)
        snprintf(b, n, "%.3f ms", s * 1e3);
    else
        snprintf(b, n, "%.3f s", s);
}

static void fmt_num(char *b, size_t n, const char *fmt, double v)
{
    if (isnan(v))
        snprintf(b, n, "-");
    else
        snprintf(b, n, fmt, v);
}

void kb_report_table_head(FILE *f)
{
    fprintf(f, "%-12s %-22s %-38s %-11s %3s %-5s %9s %11s %9s %5s %9s %6s %7s %5s\n", "family", "label",
            "shape", "impl", "thr", "check", "nmse", "median", "GB/s", "%bw", "GFLOP/s", "noise", "ci95", "n");
}

void kb_report_table_row(FILE *f, const kb_result *x)
{
    char shape[160], t[32], nm[32], gb[32], gf[32], nz[32], ci[32], thr[8], pb[16];
    kb_case_format(&x->c, shape, sizeof shape);
    fmt_time(t, sizeof t, x->median);
    fmt_num(nm, sizeof nm, "%.2e", x->nmse);
    fmt_num(gb, sizeof gb, "%.2f", x->gbps);
    fmt_num(gf, sizeof gf, "%.2f", x->gflops);
    fmt_num(nz, sizeof nz, "%.1f%%", x->noise_pct);
    fmt_num(pb, sizeof pb, "%.0f%%", x->pct_peak_bw);
    fmt_num(ci, sizeof ci, "+-%.1f%%", (x->ci_hi - x->ci_lo) / 2 / x->median * 100);
    snprintf(thr, sizeof thr, x->threads ? "%d" : "-", x->threads);
    fprintf(f, "%-12s %-22s %-38s %-11s %3s %-5s %9s %11s %9s %5s %9s %6s %7s %5d",
            x->c.fam->name, x->c.label[0] ? x->c.label : "-", shape, impl_name(x), thr,
            kb_status_name(x->status), nm, t, gb, pb, gf, nz, ci, x->n_samples);
    if (x->msg[0])
        fprintf(f, "  %s", x->msg);
    fputc('\n', f);
}

void kb_report_table(FILE *f, const kb_results *r)
{
    kb_report_header(f, r);
    kb_report_table_head(f);
    for (int i = 0; i < r->n; i++)
        kb_report_table_row(f, &r->v[i]);
}

/* RFC 4180 field: quoted when it holds a comma, quote or newline. */
static void csv_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, ",%.6g", v);
    else
        fputs(",", f); /* empty: not measured */
}

void kb_report_csv_head(FILE *f)
{
    fputs("family,label,shape,impl,backend,threads,status,nmse,max_abs,cosine,cond_err,tolerance,tol_kind,samples,"
          "copies,median_s,min_s,p90_s,noise_pct,ci_lo_s,ci_hi_s,wall_median_s,bytes,flops,gbps,gflops,pct_peak_bw,pct_peak_flops,message\n",
          f);
}

void kb_report_csv_row(FILE *f, const kb_result *x)
{
    char shape[160];
    kb_case_format(&x->c, shape, sizeof shape);
    fprintf(f, "%s,", x->c.fam->name);
    csv_str(f, x->c.label);
    fprintf(f, ",%s,%s,%s,%d,%s", shape, impl_name(x), backend(x), x->threads,
            kb_status_name(x->status));
    csv_num(f, x->nmse);
    csv_num(f, x->max_abs);
    csv_num(f, x->cosine);
    csv_num(f, x->cond_err);
    csv_num(f, x->tol);
    fprintf(f, ",%s", isfinite(x->tol) && x->impl ? (x->tol_is_cond ? "cond" : "nmse") : "");
    fprintf(f, ",%d,%d", x->n_samples, x->copies);
    csv_num(f, x->median);
    csv_num(f, x->min);
    csv_num(f, x->p90);
    csv_num(f, x->noise_pct);
    csv_num(f, x->ci_lo);
    csv_num(f, x->ci_hi);
    csv_num(f, x->wall_median);
    csv_num(f, x->bytes);
    csv_num(f, x->flops);
    csv_num(f, x->gbps);
    csv_num(f, x->gflops);
    csv_num(f, x->pct_peak_bw);
    csv_num(f, x->pct_peak_flops);
    fputc(',', f);
    csv_str(f, x->msg);
    fputc('\n', f);
}

void kb_report_csv(FILE *f, const kb_results *r)
{
    kb_report_csv_head(f);
    for (int i = 0; i < r->n; i++)
        kb_report_csv_row(f, &r->v[i]);
}

void kb_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, const char *key, double v)
{
    fprintf(f, ", \"%s\": ", key);
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

int kb_report_json(const char *path, const kb_results *r, const kb_options *o, int argc,
                   char **argv)
{
    char tmp[4200];
    FILE *f = kb_tmpfile_for(path, tmp, sizeof tmp);
    if (!f)
        return -1;
    const kb_sysinfo *s = kb_sysinfo_get();
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fputs("{\n  \"kbench\": {\"commit\": ", f);
    kb_json_str(f, s->commit);
    fputs(", \"date\": ", f);
    kb_json_str(f, when);
    fputs(", \"command\": ", f);
    char cmd[4096] = "";
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(cmd);
        snprintf(cmd + n, sizeof cmd - n, "%s%s", i ? " " : "", argv[i]);
    }
    kb_json_str(f, cmd);
    fprintf(f, ", \"seed\": %llu, \"min_time_s\": %g, \"max_time_s\": %g, \"noise_target_pct\": %g, "
               "\"min_samples\": %d, \"repetitions\": %d, \"interleave\": %s, \"hot\": %s},\n",
            (unsigned long long)o->seed, o->min_time, o->max_time, o->noise_pct, o->min_samples,
            o->repetitions, o->interleave ? "true" : "false",
            o->hot ? "true" : "false");
    fputs("  \"machine\": {\"cpu\": ", f);
    kb_json_str(f, s->cpu);
    fputs(", \"flags\": ", f);
    kb_json_str(f, s->flags);
    fprintf(f, ", \"cores\": %d, \"pus\": %d, \"l2_bytes\": %zu, \"llc_bytes\": %zu, "
               "\"mem_bytes\": %zu, \"os\": ",
            s->cores, s->pus, s->l2_bytes, s->llc_bytes, s->mem_bytes);
    kb_json_str(f, s->os);
    fputs(", \"hostname\": ", f);
    kb_json_str(f, s->hostname);
    fputs(", \"compiler\": ", f);
    kb_json_str(f, s->compiler);
    fputs(", \"vulkan\": ", f);
    kb_json_str(f, r->vk_status);
    fputs(", \"peaks\": ", f);
    kb_json_str(f, r->peaks_source);
    fprintf(f, ", \"interrupted\": %s", r->interrupted ? "true" : "false");
    fputs("},\n  \"rows\": [\n", f);
    for (int i = 0; i < r->n; i++) {
        const kb_result *x = &r->v[i];
        char shape[160];
        kb_case_format(&x->c, shape, sizeof shape);
        fputs("    {\"family\": ", f);
        kb_json_str(f, x->c.fam->name);
        fputs(", \"label\": ", f);
        kb_json_str(f, x->c.label);
        fputs(", \"shape\": ", f);
        kb_json_str(f, shape);
        fputs(", \"params\": {", f);
        for (int k = 0; k < x->c.fam->nparams; k++)
            fprintf(f, "%s\"%s\": %lld", k ? ", " : "", x->c.fam->params[k].name,
                    (long long)x->c.p[k]);
        fputs("}, \"impl\": ", f);
        kb_json_str(f, impl_name(x));
        fputs(", \"backend\": ", f);
        kb_json_str(f, backend(x));
        fprintf(f, ", \"threads\": %d, \"status\": ", x->threads);
        kb_json_str(f, kb_status_name(x->status));
        json_num(f, "nmse", x->nmse);
        json_num(f, "max_abs", x->max_abs);
        json_num(f, "cosine", x->cosine);
        json_num(f, "cond_err", x->cond_err);
        json_num(f, "tolerance", x->tol);
        fputs(", \"tol_kind\": ", f);
        kb_json_str(f, isfinite(x->tol) && x->impl ? (x->tol_is_cond ? "cond" : "nmse") : "");
        fprintf(f, ", \"samples\": %d, \"copies\": %d", x->n_samples, x->copies);
        json_num(f, "median_s", x->median);
        json_num(f, "min_s", x->min);
        json_num(f, "p90_s", x->p90);
        json_num(f, "noise_pct", x->noise_pct);
        json_num(f, "ci_lo_s", x->ci_lo);
        json_num(f, "ci_hi_s", x->ci_hi);
        json_num(f, "wall_median_s", x->wall_median);
        json_num(f, "bytes", x->bytes);
        json_num(f, "flops", x->flops);
        json_num(f, "gbps", x->gbps);
        json_num(f, "gflops", x->gflops);
        json_num(f, "pct_peak_bw", x->pct_peak_bw);
        json_num(f, "pct_peak_flops", x->pct_peak_flops);
        fputs(", \"message\": ", f);
        kb_json_str(f, x->msg);
        /* the runner keeps every sample_stride-th sample, at most KB_KEEP_SAMPLES (statistics
         * used them all) */
        fprintf(f, ", \"sample_stride\": %d, \"sample_s\": [", x->sample_stride > 0 ? x->sample_stride : 1);
        for (int k = 0; k < x->n_kept; k++)
            fprintf(f, "%s%.9g", k ? ", " : "", x->samples[k]);
        fprintf(f, "]}%s\n", i + 1 < r->n ? "," : "");
    }
    fputs("  ]\n}\n", f);
    return kb_tmpfile_commit(f, tmp, path);
}
