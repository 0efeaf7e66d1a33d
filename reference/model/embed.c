/* embed_<fmt>: y[t][:] = table[id[t]][:] dequantized, the embedding lookup of a decoder, for
 * tables in f32, f16, bf16, q8_0 and q4_0 (KERNELS.md 1 for the formats). Every value is exact
 * in f32 (f16 and bf16 widen exactly; a block's d * q has at most 19 significant bits), so a
 * correct kernel matches the reference bit for bit. An id outside [0, rows) reads row
 * clamp(id, 0, rows - 1): kernels never read out of bounds (the model never passes one). */
#include <stdio.h>
#include <stdlib.h>

#include "ggml_formats.h"
#include "glue_common.h"

enum { EM_ROWS, EM_COLS, EM_TOKENS };
enum { EM_TABLE, EM_IDS }; /* inputs */
enum { EM_Y };             /* outputs */

#define EM_PARAMS                                                                          \
    .nparams = 3,                                                                          \
    .params = {{"rows", 128256, 1, 1 << 22, "table rows (vocabulary)"},                     \
               {"cols", 4096, 1, 1 << 16, "row length (hidden size); a multiple of 32 for " \
                                          "the block formats"},                            \
               {"tokens", 1, 1, 4096, "ids looked up"}}

static int validate(kb_wfmt f, const int64_t *p, char *err, size_t n)
{
    if (p[EM_COLS] % kb_wf_block(f) != 0) {
        snprintf(err, n, "cols=%lld is not a multiple of the %s block size %d",
                 (long long)p[EM_COLS], kb_wf_name(f), kb_wf_block(f));
        return -1;
    }
    return 0;
}

static int describe(kb_wfmt f, const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    static const kb_dtype dt[] = {KB_F32, KB_F16, KB_BF16, KB_U8, KB_U8};
    if (dt[f] == KB_U8)
        kb_glue_desc(&in[EM_TABLE], "table", KB_U8, 2, p[EM_ROWS], kb_wf_row_bytes(f, p[EM_COLS]),
                     0);
    else
        kb_glue_desc(&in[EM_TABLE], "table", dt[f], 2, p[EM_ROWS], p[EM_COLS], 0);
    kb_glue_desc(&in[EM_IDS], "ids", KB_I32, 1, p[EM_TOKENS], 0, 0);
    kb_glue_desc(&out[EM_Y], "y", KB_F32, 2, p[EM_TOKENS], p[EM_COLS], 0);
    *ni = 2;
    *no = 1;
    return 0;
}

static void generate(kb_wfmt f, const int64_t *p, kb_tensor *in, kb_rng *rng)
{
    const int64_t n = p[EM_ROWS] * p[EM_COLS];
    switch (f) {
    case KB_WF_F32:
        for (int64_t i = 0; i < n; i++)
            ((float *)in[EM_TABLE].data)[i] = kb_rng_normal(rng);
        break;
    case KB_WF_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)in[EM_TABLE].data)[i] = kb_f32_to_f16(kb_rng_normal(rng));
        break;
    case KB_WF_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)in[EM_TABLE].data)[i] = kb_f32_to_bf16(kb_rng_normal(rng));
        break;
    case KB_WF_Q8_0: {
        block_q8_0 *b = in[EM_TABLE].data;
        for (int64_t k = 0; k < n / QK; k++) {
            b[k].d = kb_f32_to_f16(kb_rng_uniform(rng, 0.005f, 0.02f));
            for (int j = 0; j < QK; j++)
                b[k].qs[j] = (int8_t)(kb_rng_u64(rng) & 0xFF);
        }
        break;
    }
    case KB_WF_Q4_0: {
        block_q4_0 *b = in[EM_TABLE].data;
        for (int64_t k = 0; k < n / QK; k++) {
            b[k].d = kb_f32_to_f16(kb_rng_uniform(rng, -0.3f, 0.3f)); /* signed, as m / -8 */
            for (int j = 0; j < QK / 2; j++)
                b[k].qs[j] = (uint8_t)(kb_rng_u64(rng) & 0xFF);
        }
        break;
    }
    default: break;
    }
    int32_t *ids = in[EM_IDS].data;
    for (int64_t t = 0; t < p[EM_TOKENS]; t++)
        ids[t] = (int32_t)(kb_rng_u64(rng) % (uint64_t)p[EM_ROWS]);
}

static int64_t clamp_id(int32_t id, int64_t rows) { return id < 0 ? 0 : id >= rows ? rows - 1 : id; }

static void reference(kb_wfmt f, const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int32_t *ids = in[EM_IDS].data;
    for (int64_t t = 0; t < p[EM_TOKENS]; t++)
        kb_wf_dequant_row(f, in[EM_TABLE].data, clamp_id(ids[t], p[EM_ROWS]), p[EM_COLS],
                          (float *)out[EM_Y].data + t * p[EM_COLS]);
}

/* Every element is one exact value: scale = its magnitude (the floor for zeros). */
static void condition(kb_wfmt f, const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    const int32_t *ids = in[EM_IDS].data;
    float *row = malloc(sizeof(float) * (size_t)p[EM_COLS]);
    if (!row)
        abort();
    for (int64_t t = 0; t < p[EM_TOKENS]; t++) {
        kb_wf_dequant_row(f, in[EM_TABLE].data, clamp_id(ids[t], p[EM_ROWS]), p[EM_COLS], row);
        for (int64_t c = 0; c < p[EM_COLS]; c++)
            scale[t * p[EM_COLS] + c] = fabs((double)row[c]) + KB_GLUE_FLOOR;
    }
    free(row);
}

static double bytes(kb_wfmt f, const int64_t *p)
{
    return (double)p[EM_TOKENS] * ((double)kb_wf_row_bytes(f, p[EM_COLS]) + 4.0 * (double)p[EM_COLS] + 4.0);
}

#define EMBED_FAMILY(NAME, FMT, TEST, HELP)                                                             \
    static int validate_##NAME(const int64_t *p, char *e, size_t n) { return validate(FMT, p, e, n); } \
    static int describe_##NAME(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no) \
    {                                                                                            \
        return describe(FMT, p, in, ni, out, no);                                                \
    }                                                                                            \
    static void generate_##NAME(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs d)       \
    {                                                                                            \
        (void)d;                                                                                 \
        generate(FMT, p, in, rng);                                                               \
    }                                                                                            \
    static void reference_##NAME(const int64_t *p, const kb_tensor *in, kb_tensor *out)          \
    {                                                                                            \
        reference(FMT, p, in, out);                                                              \
    }                                                                                            \
    static void condition_##NAME(const int64_t *p, const kb_tensor *in, int o, double *s)        \
    {                                                                                            \
        condition(FMT, p, in, o, s);                                                             \
    }                                                                                            \
    static double bytes_##NAME(const int64_t *p) { return bytes(FMT, p); }                       \
    static double flops_##NAME(const int64_t *p) { return (double)(p[EM_TOKENS] * p[EM_COLS]); } \
    const kb_family kb_family_##NAME = {                                                         \
        .name = #NAME,                                                                           \
        .suite = "model",                                                                        \
        .help = "embedding lookup: y[t] = table[id[t]] dequantized, table in " HELP,              \
        EM_PARAMS,                                                                               \
        .validate = validate_##NAME,                                                             \
        .describe = describe_##NAME,                                                             \
        .generate = generate_##NAME,                                                             \
        .reference = reference_##NAME,                                                           \
        .bytes = bytes_##NAME,                                                                   \
        .flops = flops_##NAME,                                                                   \
        .tol_nmse = 1e-12,                                                                       \
        .condition = condition_##NAME,                                                           \
        .tol_cond = 1e-7, /* exact values: any error is a bug */                                 \
        .test_shape = TEST,                                                                      \
    };

EMBED_FAMILY(embed_f32, KB_WF_F32, "rows=37 cols=40 tokens=5", "f32")
EMBED_FAMILY(embed_f16, KB_WF_F16, "rows=37 cols=40 tokens=5", "f16")
EMBED_FAMILY(embed_bf16, KB_WF_BF16, "rows=37 cols=40 tokens=5", "bf16")
EMBED_FAMILY(embed_q8_0, KB_WF_Q8_0, "rows=37 cols=64 tokens=5", "GGML Q8_0")
EMBED_FAMILY(embed_q4_0, KB_WF_Q4_0, "rows=37 cols=64 tokens=5", "GGML Q4_0")
