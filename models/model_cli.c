/* `kbench model PRESET [options]`: the command line, the configuration of a run (the preset,
 * scaled to fit the machine's memory, or a GGUF file), and the reports. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_run.h"
#include "sysinfo.h"

static const char usage[] =
    "usage: kbench model PRESET [options]\n"
    "       kbench model --list\n"
    "\n"
    "Runs a decoder made of kbench's kernels end to end: the same prompt through each backend\n"
    "(prefill in chunks of 16 tokens, then greedy decoding), the logits of every step diffed\n"
    "against the reference backend (double accumulation), tokens/s against the roofline (the\n"
    "bytes a decode step must move over the read bandwidth) and the time of every family per\n"
    "token, each row with the kbench line that times it alone. Weights are synthetic and\n"
    "deterministic from the seed, or read from a GGUF file (llama architecture).\n"
    "\n"
    "  --list               the presets, and why one cannot run in this build\n"
    "  --layers N           layers (default: the preset's, fewer when memory is short)\n"
    "  --experts N          experts kept per MoE layer (MoE presets)\n"
    "  --prompt P           prefill tokens (default 16)\n"
    "  --gen G              decode steps (default 16)\n"
    "  --weights FMT        q4_0, q8_0 or bf16 (the preset's first choice by default)\n"
    "  --backend LIST       ref, cpu, vk, a comma list, or all (default)\n"
    "  --impl SPEC          implementations: family=impl,... or a bare name (avx2), applied to\n"
    "                       every family that has it; default: the most capable one available\n"
    "  --threads N          CPU threads (default: all cores)\n"
    "  --device N           Vulkan device (default: a discrete GPU first)\n"
    "  --seed N             weights and prompt (default 1)\n"
    "  --gguf FILE          weights and shape from a GGUF file (llama; F32, F16, Q4_0, Q8_0)\n"
    "  --calibration FILE   read bandwidth for the roofline (default: measured in the run)\n"
    "  --set K=V,...        override the preset's shape (hidden, heads, kv_heads, head_dim, rot,\n"
    "                       ffn, vocab, qk_norm, out_gate): small models for tests\n"
    "  --csv                CSV on stdout (summary, step and breakdown rows)\n"
    "  --json FILE          everything as JSON\n"
    "  -o, --output FILE    the text (or CSV) to FILE\n"
    "  -q, --quiet          no progress line\n"
    "\n"
    "Exit status: 0 when every backend ran and its logits are within its tolerance of the\n"
    "reference's, 1 otherwise, 2 for a usage error or a preset this build cannot run.\n";

static int die(const char *fmt, const char *arg)
{
    fprintf(stderr, "kbench model: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(kbench model --help explains the options)\n");
    return 2;
}

static int parse_ll(const char *s, long long lo, long long hi, long long *v)
{
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno == 0 && end != s && *end == 0 && *v >= lo && *v <= hi ? 0 : -1;
}

static void list_presets(FILE *f)
{
    fprintf(f, "Presets (KERNELS.md 8):\n");
    for (int i = 0; i < mdl_preset_count(); i++) {
        const mdl_preset *p = mdl_preset_at(i);
        const char *why = mdl_preset_missing(p);
        char fm[64] = "";
        for (int k = 0; k < 2; k++)
            if (p->wfmt[k] != KB_WF_COUNT)
                snprintf(fm + strlen(fm), sizeof fm - strlen(fm), "%s%s", k ? "/" : "",
                         kb_wf_name(p->wfmt[k]));
        fprintf(f, "  %-12s %d layers, hidden %d, %s  [%s]\n      %s\n", p->name, p->layers,
                p->hidden, fm[0] ? fm : "a4", why ? why : "runs", p->source);
    }
}

/* --set hidden=64,... onto the configuration. */
static int apply_set(mdl_config *c, const char *spec, char *err, size_t errlen)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        long long v;
        if (!eq || parse_ll(eq + 1, 0, 1 << 24, &v) != 0) {
            snprintf(err, errlen, "--set '%s': expected KEY=integer", t);
            return -1;
        }
        *eq = 0;
        struct { const char *k; int *p; } keys[] = {
            {"hidden", &c->hidden}, {"heads", &c->heads},     {"kv_heads", &c->kv_heads},
            {"head_dim", &c->head_dim}, {"rot", &c->rot},     {"ffn", &c->ffn},
            {"vocab", &c->vocab},   {"qk_norm", &c->qk_norm}, {"out_gate", &c->out_gate},
            {"layers", &c->layers}};
        int found = 0;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strcmp(keys[i].k, t) == 0) {
                *keys[i].p = (int)v;
                found = 1;
            }
        if (!found) {
            snprintf(err, errlen, "--set: no key '%s' (hidden, heads, kv_heads, head_dim, rot, "
                     "ffn, vocab, qk_norm, out_gate, layers)", t);
            return -1;
        }
    }
    return 0;
}

/* Host bytes of a run: the weights, each CPU backend's activations and caches, and, for
 * Vulkan on a CPU device (lavapipe: device memory is host memory), a second copy. */
static double run_bytes(const mdl_config *c, int n_cpu_backends, int vk)
{
    const double H = c->hidden, QD = (double)c->heads * c->head_dim,
                 KD = (double)c->kv_heads * c->head_dim;
    const double rb = (double)kb_wf_row_bytes(c->wfmt, 1 << 10) / 1024.0; /* per weight */
    const double layer = rb * (2 * QD * H + 2 * KD * H + 3.0 * c->ffn * H +
                               (c->out_gate ? QD * H : 0));
    const double emb = (double)kb_wf_row_bytes(c->emb_fmt, c->hidden) * c->vocab;
    const double weights = layer * c->layers + emb + (c->tied ? 0 : rb * c->vocab * H);
    const double cache = 4.0 * c->ctx * KD * c->layers;
    return weights + n_cpu_backends * cache + (vk ? weights + cache : 0);
}

static int make_config(const mdl_opts *o, const mdl_preset *p, mdl_config *c, char *err,
                       size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", p->name);
    c->layers = p->layers;
    c->hidden = p->hidden;
    c->heads = p->heads;
    c->kv_heads = p->kv_heads;
    c->head_dim = p->head_dim;
    c->rot = p->rot;
    c->ffn = p->ffn;
    c->vocab = p->vocab;
    c->eps_exp = p->eps_exp;
    c->theta = p->theta;
    c->qk_norm = p->qk_norm;
    c->out_gate = p->out_gate;
    c->wfmt = p->wfmt[0];
    if (o->wfmt >= 0) {
        if (o->wfmt != (int)p->wfmt[0] && o->wfmt != (int)p->wfmt[1]) {
            snprintf(err, errlen, "--weights %s: %s runs with %s%s%s", kb_wf_name((kb_wfmt)o->wfmt),
                     p->name, kb_wf_name(p->wfmt[0]), p->wfmt[1] != KB_WF_COUNT ? " or " : "",
                     p->wfmt[1] != KB_WF_COUNT ? kb_wf_name(p->wfmt[1]) : "");
            return -1;
        }
        c->wfmt = (kb_wfmt)o->wfmt;
    }
    c->emb_fmt = c->wfmt;
    c->ctx = o->prompt + o->gen;
    if (o->set && apply_set(c, o->set, err, errlen) != 0)
        return -1;
    if (o->set && !strstr(o->set, "rot=")) /* the preset's rotary share of the head */
        c->rot = c->head_dim * p->rot / p->head_dim;
    if (o->layers > 0) {
        if (o->layers > c->layers)
            snprintf(c->scaled, sizeof c->scaled, "--layers %d: more than the preset's %d",
                     o->layers, c->layers);
        c->layers = o->layers;
    }
    if (c->hidden < 32 || c->heads < 1 || c->kv_heads < 1 || c->ffn < 32 || c->vocab < 2 ||
        c->rot < 2 || c->rot > c->head_dim) {
        snprintf(err, errlen, "shape: hidden %d, heads %d/%d, rot %d of %d, ffn %d, vocab %d does "
                 "not make a model", c->hidden, c->heads, c->kv_heads, c->rot, c->head_dim, c->ffn,
                 c->vocab);
        return -1;
    }
    /* fit: half of the available memory at most */
    const kb_sysinfo *si = kb_sysinfo_get();
    const double avail = (double)(si->mem_avail_bytes ? si->mem_avail_bytes : si->mem_bytes);
    int ncpu = 0;
    const char *bl = o->backends ? o->backends : "all";
    ncpu += strstr(bl, "ref") || strcmp(bl, "all") == 0;
    ncpu += strstr(bl, "cpu") || strcmp(bl, "all") == 0;
    const int vk = strstr(bl, "vk") || strcmp(bl, "all") == 0;
    const int asked = c->layers;
    while (o->layers <= 0 && c->layers > 1 && run_bytes(c, ncpu, vk) > 0.5 * avail)
        c->layers--;
    if (c->layers < asked)
        snprintf(c->scaled, sizeof c->scaled, "layers %d -> %d to fit half of the %.1f GiB of "
                 "available memory (%.1f GiB needed with these backends)", asked, c->layers,
                 avail / (1 << 30), run_bytes(c, ncpu, vk) / (1 << 30));
    if (o->experts > 0 && p->ffn_kind != MDL_FFN_MOE)
        snprintf(c->scaled + strlen(c->scaled), sizeof c->scaled - strlen(c->scaled),
                 "%s--experts %d ignored: %s has no experts", c->scaled[0] ? "; " : "", o->experts,
                 p->name);
    return 0;
}

int kb_model_main(int argc, char **argv)
{
    enum { O_LIST = 256, O_LAYERS, O_EXPERTS, O_PROMPT, O_GEN, O_WEIGHTS, O_BACKEND, O_IMPL,
           O_THREADS, O_DEVICE, O_SEED, O_GGUF, O_CAL, O_SET, O_CSV, O_JSON };
    static const struct option opts[] = {
        {"list", 0, 0, O_LIST},       {"layers", 1, 0, O_LAYERS},   {"experts", 1, 0, O_EXPERTS},
        {"prompt", 1, 0, O_PROMPT},   {"gen", 1, 0, O_GEN},         {"weights", 1, 0, O_WEIGHTS},
        {"backend", 1, 0, O_BACKEND}, {"impl", 1, 0, O_IMPL},       {"threads", 1, 0, O_THREADS},
        {"device", 1, 0, O_DEVICE},   {"seed", 1, 0, O_SEED},       {"gguf", 1, 0, O_GGUF},
        {"calibration", 1, 0, O_CAL}, {"set", 1, 0, O_SET},         {"csv", 0, 0, O_CSV},
        {"json", 1, 0, O_JSON},       {"output", 1, 0, 'o'},        {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'},          {0, 0, 0, 0}};
    mdl_opts o = {.prompt = 16, .gen = 16, .device = -1, .seed = 1, .wfmt = -1,
                  .backends = "all", .argc = argc, .argv = argv};
    o.threads = kb_sysinfo_get()->cores > 0 ? kb_sysinfo_get()->cores : 1;
    int list = 0, c;
    long long v;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:qh", opts, NULL)) != -1) {
        switch (c) {
        case O_LIST: list = 1; break;
        case O_LAYERS:
            if (parse_ll(optarg, 1, 1000, &v)) return die("--layers '%s': expected 1..1000", optarg);
            o.layers = (int)v;
            break;
        case O_EXPERTS:
            if (parse_ll(optarg, 1, 4096, &v)) return die("--experts '%s': expected 1..4096", optarg);
            o.experts = (int)v;
            break;
        case O_PROMPT:
            if (parse_ll(optarg, 1, 1 << 20, &v)) return die("--prompt '%s': expected >= 1", optarg);
            o.prompt = (int)v;
            break;
        case O_GEN:
            if (parse_ll(optarg, 0, 1 << 20, &v)) return die("--gen '%s': expected >= 0", optarg);
            o.gen = (int)v;
            break;
        case O_WEIGHTS: {
            int f = -1;
            for (int k = 0; k < KB_WF_COUNT; k++)
                if (strcmp(optarg, kb_wf_name((kb_wfmt)k)) == 0)
                    f = k;
            if (f < 0 || f == KB_WF_F32 || f == KB_WF_F16)
                return die("--weights '%s': expected q4_0, q8_0 or bf16", optarg);
            o.wfmt = f;
            break;
        }
        case O_BACKEND: {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            char *save = NULL;
            for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
                if (strcmp(w, "ref") && strcmp(w, "cpu") && strcmp(w, "vk") && strcmp(w, "all"))
                    return die("--backend '%s': expected ref, cpu, vk, all or a comma list", optarg);
            o.backends = optarg;
            break;
        }
        case O_IMPL: o.impl = optarg; break;
        case O_THREADS:
            if (parse_ll(optarg, 1, 1024, &v)) return die("--threads '%s': expected 1..1024", optarg);
            o.threads = (int)v;
            break;
        case O_DEVICE:
            if (parse_ll(optarg, 0, 64, &v)) return die("--device '%s': expected a device index", optarg);
            o.device = (int)v;
            break;
        case O_SEED:
            if (parse_ll(optarg, 0, INT64_MAX, &v)) return die("--seed '%s': expected >= 0", optarg);
            o.seed = (uint64_t)v;
            break;
        case O_GGUF: o.gguf = optarg; break;
        case O_CAL: o.calibration = optarg; break;
        case O_SET: o.set = optarg; break;
        case O_CSV: o.csv = 1; break;
        case O_JSON: o.json = optarg; break;
        case 'o': o.output = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case ':': return die("option '%s' needs a value", argv[optind - 1]);
        default: return die("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (list) {
        list_presets(stdout);
        return 0;
    }
    if (optind != argc - 1)
        return die("%sgive one PRESET (kbench model --list)", "");
    o.preset = argv[optind];
    const mdl_preset *p = mdl_preset_find(o.preset);
    if (!p) {
        fprintf(stderr, "kbench model: no preset '%s'.\n", o.preset);
        list_presets(stderr);
        return 2;
    }
    const char *why = mdl_preset_missing(p);
    if (why) {
        fprintf(stderr, "kbench model: %s cannot run in this build: %s\n", p->name, why);
        return 2;
    }
    char err[512];
    if (mdl_impl_spec_check(o.impl, err, sizeof err) != 0) {
        fprintf(stderr, "kbench model: %s\n", err);
        return 2;
    }
    if (!isatty(2))
        o.quiet = 1;
    mdl_model m;
    memset(&m, 0, sizeof m);
    if (o.gguf) {
        if (strcmp(p->name, "llama3-8b") != 0)
            return die("--gguf: the reader takes llama-architecture files (preset llama3-8b), not "
                       "%s", p->name);
        if (o.set || o.wfmt >= 0)
            return die("%s--gguf: the file gives the shape and formats (no --set, --weights)", "");
        if (mdl_load_gguf(&m, o.gguf, o.layers, o.prompt + o.gen, err, sizeof err) != 0) {
            fprintf(stderr, "kbench model: %s\n", err);
            return 2;
        }
    } else {
        mdl_config cfg;
        if (make_config(&o, p, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "kbench model: %s\n", err);
            return 2;
        }
        kb_pool *pool = kb_pool_create(o.threads, 1);
        int rc = mdl_build(&m, &cfg, o.seed, pool, err, sizeof err);
        kb_pool_destroy(pool);
        if (rc != 0) {
            fprintf(stderr, "kbench model: %s\n", err);
            return 1;
        }
    }
    mdl_report r;
    int bad = mdl_run_all(&o, &m, &r);
    FILE *out = stdout;
    char tmp[4096];
    if (o.output) {
        snprintf(tmp, sizeof tmp, "%s.tmp", o.output);
        if (!(out = fopen(tmp, "w"))) {
            fprintf(stderr, "kbench model: cannot write %s: %s\n", o.output, strerror(errno));
            out = stdout;
        }
    }
    if (o.csv)
        mdl_report_csv(out, &r);
    else
        mdl_report_text(out, &r);
    if (out != stdout) {
        int ok = fclose(out) == 0;
        if (!ok || rename(tmp, o.output) != 0) {
            fprintf(stderr, "kbench model: cannot write %s\n", o.output);
            bad++;
        }
    }
    if (o.json && mdl_report_json(o.json, &r) != 0) {
        fprintf(stderr, "kbench model: cannot write %s: %s\n", o.json, strerror(errno));
        bad++;
    }
    if (bad)
        fprintf(stderr, "kbench model: %d backend(s) failed or disagree with the reference\n", bad);
    mdl_report_free(&r);
    mdl_free(&m);
    return bad ? 1 : 0;
}
