/* The reports of `kbench model`: a text summary (configuration, per-backend tokens/s against
 * the roofline, logits diffs, hidden-state RMS per layer, the decode breakdown with the kbench
 * line of each row), CSV (kind,... rows: summary, step, breakdown) and JSON (all of it). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_run.h"
#include "sysinfo.h"

static void config_line(FILE *f, const mdl_report *r)
{
    const mdl_config *c = &r->m->cfg;
    fprintf(f, "# kbench model %s: %d layers, hidden %d, %d q / %d kv heads x %d (rot %d), FFN %d, "
               "vocab %d, %s weights (embedding %s%s), %.2f GB of weights; prompt %d, gen %d, "
               "seed %llu\n",
            c->name, c->layers, c->hidden, c->heads, c->kv_heads, c->head_dim, c->rot, c->ffn,
            c->vocab, kb_wf_name(c->wfmt), kb_wf_name(c->emb_fmt), c->tied ? ", tied LM head" : "",
            r->weight_bytes * 1e-9, r->o->prompt, r->o->gen, (unsigned long long)r->o->seed);
    if (c->qk_norm || c->out_gate)
        fprintf(f, "#   %s%s%s\n", c->qk_norm ? "QK-norm" : "", c->qk_norm && c->out_gate ? ", " : "",
                c->out_gate ? "output gate" : "");
    if (c->scaled[0])
        fprintf(f, "#   scaled: %s\n", c->scaled);
    const kb_sysinfo *si = kb_sysinfo_get();
    fprintf(f, "#   machine: %s, %d cores, %s | %s | commit %s\n", si->cpu, si->cores, si->flags,
            si->compiler, si->commit);
    fprintf(f, "#   %s\n", r->note);
}

void mdl_report_text(FILE *f, const mdl_report *r)
{
    const mdl_opts *o = r->o;
    config_line(f, r);
    for (int k = 0; k < r->nb; k++) {
        const mdl_bres *b = &r->b[k];
        char thr[32] = "";
        if (strcmp(b->name, "cpu") == 0)
            snprintf(thr, sizeof thr, " (%d threads)", o->threads);
        fprintf(f, "# backend %s%s: %s\n", b->name, thr, b->ran ? b->impls : b->err);
        if (b->low_precision)
            fprintf(f, "#   lower precision, logits tolerance %.0e: %s\n", b->tol, b->precision_why);
    }
    fprintf(f, "\n%-4s %12s %12s %10s %10s %10s %10s %10s %7s %10s %9s %10s %6s\n", "bkd",
            "prefill t/s", "decode t/s", "step ms", "MB/step", "read GB/s", "roof t/s", "share",
            "top-1", "max NMSE", "tol", "1st diff", "check");
    for (int k = 0; k < r->nb; k++) {
        const mdl_bres *b = &r->b[k];
        if (!b->ran) {
            fprintf(f, "%-4s ERROR: %s\n", b->name, b->err);
            continue;
        }
        char top[32] = "-", nm[32] = "-", fd[32] = "-", rb[32] = "-", rt[32] = "-", sh[32] = "-";
        if (b->compared) {
            snprintf(top, sizeof top, "%d/%d", b->n_agree, b->compared);
            snprintf(nm, sizeof nm, "%.2e", b->max_nmse);
            if (b->first_diff >= 0)
                snprintf(fd, sizeof fd, "%d", b->first_diff);
            else
                snprintf(fd, sizeof fd, "none");
        }
        if (b->read_gbps > 0) {
            snprintf(rb, sizeof rb, "%.1f", b->read_gbps);
            snprintf(rt, sizeof rt, "%.1f", b->roofline_tps);
            snprintf(sh, sizeof sh, "%.1f%%", 100 * b->share);
        }
        fprintf(f, "%-4s %12.2f %12.3f %10.2f %10.1f %10s %10s %10s %7s %10s %9.0e %10s %6s\n",
                b->name, b->prefill_tps, b->decode_tps, 1e3 / b->decode_tps, b->bytes_step * 1e-6,
                rb, rt, sh, top, nm, b->compared ? b->tol : NAN, fd,
                b->pass ? "pass" : "FAIL");
    }
    fprintf(f, "# decode t/s: 1 / median step time (GPU timestamps on Vulkan, wall clock on the CPU); "
               "roof t/s: read GB/s / bytes a step must move (cost models: weights, K/V cache, "
               "activations); share: decode / roof\n");
    for (int k = 0; k < r->nb; k++) {
        const mdl_bres *b = &r->b[k];
        if (b->ran && strcmp(b->name, "vk") == 0)
            fprintf(f, "# vk wall (recording + submission + readback): decode %.3f t/s, prefill "
                       "%.3f s\n", b->decode_tps_wall, b->prefill_wall);
        if (b->ran && b->read_gbps > 0)
            fprintf(f, "# %s read: %s\n", b->name, b->read_src);
        if (b->ran && b->first_diff >= 0)
            fprintf(f, "# %s: first argmax difference at step %d (reference top-1 margin there "
                       "%.3g)\n", b->name, b->first_diff, b->margin[b->first_diff]);
    }
    for (int k = 0; k < r->nb; k++) {
        const mdl_bres *b = &r->b[k];
        if (!b->ran || !b->rms)
            continue;
        fprintf(f, "\nhidden-state RMS (%s, last token): embedding %.3g", b->name, b->rms[0]);
        for (int l = 0; l < r->m->cfg.layers; l++)
            fprintf(f, "%s%d:%.3g", l % 8 == 0 ? "\n  " : "  ", l, b->rms[l + 1]);
        fprintf(f, "\n");
        break;
    }
    for (int k = 0; k < r->nb; k++) {
        const mdl_bres *b = &r->b[k];
        if (!b->ran || !b->nrows)
            continue;
        double tot = 0;
        for (int i = 0; i < b->nrows; i++)
            tot += b->rows[i].sec;
        fprintf(f, "\ndecode breakdown, %s (per token; medians over %d steps; %.3f ms in all):\n",
                b->name, o->gen, tot * 1e3);
        fprintf(f, "%-13s %-46s %5s %9s %6s %8s  %s\n", "family", "shape", "calls", "ms/token",
                "share", "GB/s", "alone");
        for (int i = 0; i < b->nrows; i++) {
            const mdl_brow *w = &b->rows[i];
            char line[400];
            mdl_kbench_line(w->fam, w->shape, w->impl, o->threads, line, sizeof line);
            fprintf(f, "%-13s %-46s %5d %9.4f %5.1f%% %8.2f  %s\n", w->fam->name, w->shape,
                    w->calls, w->sec * 1e3, tot > 0 ? 100 * w->sec / tot : 0,
                    w->sec > 0 ? w->bytes / w->sec * 1e-9 : 0, line);
        }
    }
}

static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void mdl_report_csv(FILE *f, const mdl_report *r)
{
    const mdl_config *c = &r->m->cfg;
    fprintf(f, "kind,preset,layers,backend,step,family,shape,calls,seconds,bytes,gbps,"
               "prefill_tps,decode_tps,roofline_tps,share,read_gbps,nmse,top1,check,impl,command\n");
    for (int k = 0; k < r->nb; k++) {
        const mdl_bres *b = &r->b[k];
        if (!b->ran) {
            fprintf(f, "summary,%s,%d,%s,,,,,,,,,,,,,,,ERROR,", c->name, c->layers, b->name);
            csv_str(f, b->err);
            fprintf(f, ",\n");
            continue;
        }
        fprintf(f, "summary,%s,%d,%s,,,,,%.6g,%.6g,,%.6g,%.6g,%.6g,%.4f,%.4g,%.4g,%d,%s,", c->name,
                c->layers, b->name, 1.0 / b->decode_tps, b->bytes_step, b->prefill_tps,
                b->decode_tps, b->roofline_tps, b->share, b->read_gbps,
                b->compared ? b->max_nmse : NAN, b->n_agree, b->pass ? "pass" : "FAIL");
        csv_str(f, b->impls);
        fprintf(f, ",\n");
        for (int s = 0; s <= r->o->gen; s++)
            fprintf(f, "step,%s,%d,%s,%d,,,,%.6g,,,,,,,,%.4g,%d,,,\n", c->name, c->layers, b->name,
                    s, s == 0 ? b->prefill_s : b->step_s[s - 1], b->compared ? b->nmse[s] : NAN,
                    b->compared ? b->agree[s] : -1);
        for (int i = 0; i < b->nrows; i++) {
            const mdl_brow *w = &b->rows[i];
            char line[400];
            mdl_kbench_line(w->fam, w->shape, w->impl, r->o->threads, line, sizeof line);
            fprintf(f, "breakdown,%s,%d,%s,,%s,", c->name, c->layers, b->name, w->fam->name);
            csv_str(f, w->shape);
            fprintf(f, ",%d,%.6g,%.6g,%.4g,,,,,,,,,%s,", w->calls, w->sec, w->bytes,
                    w->sec > 0 ? w->bytes / w->sec * 1e-9 : 0, w->impl ? w->impl->name : "ref");
            csv_str(f, line);
            fprintf(f, "\n");
        }
    }
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fprintf(f, "null");
}

int mdl_report_json(const char *path, const mdl_report *r)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    const mdl_config *c = &r->m->cfg;
    const kb_sysinfo *si = kb_sysinfo_get();
    fprintf(f, "{\n  \"kbench\": {\"commit\": ");
    json_str(f, si->commit);
    fprintf(f, ", \"command\": ");
    char cmd[2048] = "";
    for (int i = 0; i < r->o->argc; i++)
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), "%s%s", i ? " " : "", r->o->argv[i]);
    json_str(f, cmd);
    fprintf(f, "},\n  \"machine\": {\"cpu\": ");
    json_str(f, si->cpu);
    fprintf(f, ", \"cores\": %d, \"flags\": ", si->cores);
    json_str(f, si->flags);
    fprintf(f, "},\n  \"model\": {\"preset\": ");
    json_str(f, c->name);
    fprintf(f, ", \"layers\": %d, \"hidden\": %d, \"heads\": %d, \"kv_heads\": %d, \"head_dim\": %d, "
               "\"rot\": %d, \"ffn\": %d, \"vocab\": %d, \"qk_norm\": %d, \"out_gate\": %d, "
               "\"weights\": \"%s\", \"embedding\": \"%s\", \"weight_bytes\": %.0f, \"scaled\": ",
            c->layers, c->hidden, c->heads, c->kv_heads, c->head_dim, c->rot, c->ffn, c->vocab,
            c->qk_norm, c->out_gate, kb_wf_name(c->wfmt), kb_wf_name(c->emb_fmt), r->weight_bytes);
    json_str(f, c->scaled);
    fprintf(f, ", \"prompt\": %d, \"gen\": %d, \"seed\": %llu, \"threads\": %d},\n  \"note\": ",
            r->o->prompt, r->o->gen, (unsigned long long)r->o->seed, r->o->threads);
    json_str(f, r->note);
    fprintf(f, ",\n  \"backends\": [");
    for (int k = 0; k < r->nb; k++) {
        const mdl_bres *b = &r->b[k];
        fprintf(f, "%s\n    {\"backend\": \"%s\", \"ran\": %d, ", k ? "," : "", b->name, b->ran);
        if (!b->ran) {
            fprintf(f, "\"error\": ");
            json_str(f, b->err);
            fprintf(f, "}");
            continue;
        }
        fprintf(f, "\"impls\": ");
        json_str(f, b->impls);
        fprintf(f, ", \"precision\": ");
        json_str(f, b->low_precision ? b->precision_why : "f32 arithmetic");
        fprintf(f, ", \"tolerance_nmse\": ");
        json_num(f, b->tol);
        fprintf(f, ", \"check\": \"%s\", \"prefill_s\": ", b->pass ? "pass" : "FAIL");
        json_num(f, b->prefill_s);
        fprintf(f, ", \"prefill_tps\": ");
        json_num(f, b->prefill_tps);
        fprintf(f, ", \"decode_tps\": ");
        json_num(f, b->decode_tps);
        fprintf(f, ", \"decode_tps_wall\": ");
        json_num(f, b->decode_tps_wall);
        fprintf(f, ", \"bytes_per_step\": ");
        json_num(f, b->bytes_step);
        fprintf(f, ", \"read_gbps\": ");
        json_num(f, b->read_gbps);
        fprintf(f, ", \"read_source\": ");
        json_str(f, b->read_src);
        fprintf(f, ", \"roofline_tps\": ");
        json_num(f, b->roofline_tps);
        fprintf(f, ", \"share\": ");
        json_num(f, b->share);
        fprintf(f, ", \"compared_steps\": %d, \"top1_agree\": %d, \"first_argmax_diff\": %d, "
                   "\"max_nmse\": ", b->compared, b->n_agree, b->first_diff);
        json_num(f, b->compared ? b->max_nmse : NAN);
        fprintf(f, ",\n     \"steps\": [");
        for (int s = 0; s <= r->o->gen; s++) {
            fprintf(f, "%s{\"step\": %d, \"seconds\": ", s ? ", " : "", s);
            json_num(f, s == 0 ? b->prefill_s : b->step_s[s - 1]);
            fprintf(f, ", \"argmax\": %d, \"nmse\": ", b->argmax[s]);
            json_num(f, b->compared ? b->nmse[s] : NAN);
            fprintf(f, ", \"agree\": %d}", b->compared ? b->agree[s] : -1);
        }
        fprintf(f, "],\n     \"hidden_rms\": ");
        if (b->rms) {
            fprintf(f, "[");
            for (int l = 0; l <= c->layers; l++) {
                fprintf(f, l ? ", " : "");
                json_num(f, b->rms[l]);
            }
            fprintf(f, "]");
        } else {
            fprintf(f, "null");
        }
        fprintf(f, ",\n     \"breakdown\": [");
        for (int i = 0; i < b->nrows; i++) {
            const mdl_brow *w = &b->rows[i];
            char line[400];
            mdl_kbench_line(w->fam, w->shape, w->impl, r->o->threads, line, sizeof line);
            fprintf(f, "%s\n       {\"family\": \"%s\", \"shape\": ", i ? "," : "", w->fam->name);
            json_str(f, w->shape);
            fprintf(f, ", \"impl\": \"%s\", \"calls\": %d, \"seconds\": ",
                    w->impl ? w->impl->name : "ref", w->calls);
            json_num(f, w->sec);
            fprintf(f, ", \"bytes\": ");
            json_num(f, w->bytes);
            fprintf(f, ", \"command\": ");
            json_str(f, line);
            fprintf(f, "}");
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n  ]\n}\n");
    int ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}
