/* gdn_decode: one GatedDeltaNet token per sequence, `batch` sequences, each from its own state
 * (KERNELS.md section 5; the tensors and the recurrence: gdn_common.h). The state is read once
 * and written once: a decode is bound by that traffic. */
#include "gdn_common.h"

#define SHAPE(p)     \
    gdn_shape s;     \
    gdn_decode_shape(p, &s)

static int validate(const int64_t *p, char *err, size_t n)
{
    SHAPE(p);
    return gdn_validate(&s, err, n);
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    SHAPE(p);
    return gdn_describe(&s, 1, in, ni, out, no);
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

const kb_family kb_family_gdn_decode = {
    .name = "gdn_decode",
    .suite = "gdn",
    .help = "GatedDeltaNet decode: one token per sequence, state read once and written once",
    .nparams = 5,
    .params = {{"batch", 1, 1, 64, "sequences, each with its own state"}, GD_HEAD_PARAMS},
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
    .test_shape = "batch=3 hk=2 hv=4 dk=64 dv=64",
};
