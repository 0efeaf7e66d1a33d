/* gdn_prefill: n GatedDeltaNet tokens of one sequence from a given state; outputs every token's
 * o and the final state (KERNELS.md section 5; tensors and recurrence: gdn_common.h). Kernels:
 * the recurrence per token (sequential) and the chunkwise-parallel WY/UT form. */
#include "gdn_common.h"

#define SHAPE(p)     \
    gdn_shape s;     \
    gdn_prefill_shape(p, &s)

static int validate(const int64_t *p, char *err, size_t n)
{
    SHAPE(p);
    return gdn_validate(&s, err, n);
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    SHAPE(p);
    return gdn_describe(&s, 0, in, ni, out, no);
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    SHAPE(p);
    gdn_generate(&s, in, rng, dist);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    SHAPE(p);
    gdn_reference(&s, in, out);
}

static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    SHAPE(p);
    gdn_condition(&s, in, o, scale);
}

static double bytes(const int64_t *p)
{
    SHAPE(p);
    return gdn_bytes(&s);
}

static double flops(const int64_t *p)
{
    SHAPE(p);
    return gdn_flops(&s);
}

const kb_family kb_family_gdn_prefill = {
    .name = "gdn_prefill",
    .suite = "gdn",
    .help = "GatedDeltaNet prefill: n tokens of one sequence from a given state (outputs, final state)",
    .nparams = 5,
    .params = {{"n", 64, 1, 16384, "tokens"}, GD_HEAD_PARAMS},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = GD_INPUTS,
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = GD_ROTATE,
    .tol_nmse = 1e-10,
    .condition = condition,
    .tol_cond = GD_TOL_COND,
    .test_shape = "n=37 hk=1 hv=2 dk=64 dv=64",
};
