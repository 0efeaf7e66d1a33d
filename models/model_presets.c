/* The presets of KERNELS.md section 8. A preset whose families (or whose layer kinds in
 * model_graph.c) are not in this build is listed with the reason and never run: adding one is
 * a row here plus its layer kind in model_graph.c. */
#include <stdio.h>
#include <string.h>

#include "model.h"

static const mdl_preset presets[] = {
    {.name = "llama3-8b",
     .source = "seed 000 style: Llama 3 8B, GGML Q4_0 / Q8_0",
     .attn = MDL_ATTN_FULL,
     .ffn_kind = MDL_FFN_DENSE,
     .layers = 32, .hidden = 4096, .heads = 32, .kv_heads = 8, .head_dim = 128, .rot = 128,
     .ffn = 14336, .vocab = 128256, .eps_exp = 5, .theta = 500000.0,
     .wfmt = {KB_WF_Q4_0, KB_WF_Q8_0}},
    {.name = "qwen3-dense",
     .source = "seed 001 style: Qwen3 1.7B shape, bf16, QK-norm (f16 weights would need a "
               "matvec_f16 family)",
     .attn = MDL_ATTN_FULL,
     .ffn_kind = MDL_FFN_DENSE,
     .layers = 28, .hidden = 2048, .heads = 16, .kv_heads = 8, .head_dim = 128, .rot = 128,
     .ffn = 6144, .vocab = 151936, .eps_exp = 6, .theta = 1000000.0, .qk_norm = 1,
     .wfmt = {KB_WF_BF16, KB_WF_COUNT}},
    {.name = "qwen35-moe",
     .source = "seed 002: Qwen3.5-397B-A17B, 3 GatedDeltaNet : 1 full attention (32 q / 2 kv x "
               "256, output gate, 25% RoPE), 512 experts top-10 + shared (FFN 1024), a4 G64",
     .attn = MDL_ATTN_GDN_MIX,
     .ffn_kind = MDL_FFN_MOE,
     .layers = 60, .hidden = 4096, .heads = 32, .kv_heads = 2, .head_dim = 256, .rot = 64,
     .ffn = 1024, .vocab = 151936, .eps_exp = 6, .theta = 10000000.0, .qk_norm = 1,
     .out_gate = 1, .wfmt = {KB_WF_COUNT, KB_WF_COUNT}, .experts = 512, .topk = 10,
     .expert_ffn = 1024, .needs = "gdn,moe"},
    {.name = "deepseek-v3",
     .source = "seed 002: DeepSeek-V3, MLA (128 heads, R 512, rope 64, v 128), 256 experts "
               "top-8 grouped sigmoid + 1 shared (FFN 2048), a4 G64",
     .attn = MDL_ATTN_MLA,
     .ffn_kind = MDL_FFN_MOE,
     .layers = 61, .hidden = 7168, .heads = 128, .kv_heads = 128, .head_dim = 192, .rot = 64,
     .ffn = 2048, .vocab = 129280, .eps_exp = 6, .theta = 10000.0,
     .wfmt = {KB_WF_COUNT, KB_WF_COUNT}, .experts = 256, .topk = 8, .expert_ffn = 2048,
     .needs = "mla,moe"},
};

int mdl_preset_count(void) { return (int)(sizeof presets / sizeof presets[0]); }
const mdl_preset *mdl_preset_at(int i) { return &presets[i]; }

const mdl_preset *mdl_preset_find(const char *name)
{
    for (int i = 0; i < mdl_preset_count(); i++)
        if (strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

/* A family group is in the build when some registered family belongs to its suite. */
static int group_present(const char *g, size_t n)
{
    for (int i = 0; i < kb_family_count(); i++) {
        const char *s = kb_family_at(i)->suite;
        if (s && strlen(s) == n && strncmp(s, g, n) == 0)
            return 1;
    }
    return 0;
}

const char *mdl_preset_missing(const mdl_preset *p)
{
    static char why[256];
    if (!p->needs)
        return NULL;
    char miss[128] = "";
    for (const char *s = p->needs; *s;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (!group_present(s, n))
            snprintf(miss + strlen(miss), sizeof miss - strlen(miss), "%s%.*s", miss[0] ? "/" : "",
                     (int)n, s);
        s += n + (e ? 1 : 0);
    }
    if (miss[0])
        snprintf(why, sizeof why, "needs families %s (not yet in this build)", miss);
    else /* the families landed; the layer kinds that compose them are the next step */
        snprintf(why, sizeof why, "families %s are in the build, but model_graph.c has no %s "
                 "layers yet", p->needs,
                 p->attn == MDL_ATTN_GDN_MIX ? "GatedDeltaNet/MoE" : "MLA/MoE");
    return why;
}
