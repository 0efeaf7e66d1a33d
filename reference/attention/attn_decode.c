/* attn_decode: one query per head at position T-1 attends to the cached positions 0..T-1
 * (the current one included), GQA, f16 or f32 cache (KERNELS.md section 4). */
#include "attn_common.h"

enum { AD_T = AT_HEAD_DIM + 1, AD_KV_F16 };

void kb_attn_decode_shape(const int64_t *p, kb_attn_shape *s)
{
    *s = (kb_attn_shape){.heads = p[AT_HEADS],
                         .kv_heads = p[AT_KV_HEADS],
                         .D = p[AT_HEAD_DIM],
                         .n_q = 1,
                         .p0 = p[AD_T] - 1,
                         .T = p[AD_T],
                         .kv_f16 = (int)p[AD_KV_F16]};
}

#define SHAPE(p)            \
    kb_attn_shape s;        \
    kb_attn_decode_shape(p, &s)

static int validate(const int64_t *p, char *err, size_t n)
{
    SHAPE(p);
    return kb_attn_validate(&s, err, n);
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    SHAPE(p);
    return kb_attn_describe(&s, in, ni, out, no);
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    SHAPE(p);
    kb_attn_generate(&s, in, rng, dist);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    SHAPE(p);
    kb_attn_reference(&s, in, out);
}

static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    SHAPE(p);
    kb_attn_condition(&s, in, scale);
}

static double bytes(const int64_t *p)
{
    SHAPE(p);
    return kb_attn_bytes(&s);
}

static double flops(const int64_t *p)
{
    SHAPE(p);
    return kb_attn_flops(&s);
}

const kb_family kb_family_attn_decode = {
    .name = "attn_decode",
    .suite = "attention",
    .help = "decode attention: one query per head over T cached positions (GQA, f16/f32 cache)",
    .nparams = 5,
    .params = {AT_COMMON_PARAMS,
               {"T", 4096, 1, 1 << 20, "cached positions, the current one included"},
               {"kv_f16", 1, 0, 1, "1: K/V cache in f16, 0: in f32"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = AT_ROTATE,
    .tol_nmse = AT_TOL_NMSE,
    .condition = condition,
    .tol_cond = AT_TOL_COND,
    .inputs = AT_INPUTS,
    .test_shape = "heads=4 kv_heads=2 head_dim=64 T=37",
    .smallest_shape = "heads=1 kv_heads=1 head_dim=64 T=1",
};
