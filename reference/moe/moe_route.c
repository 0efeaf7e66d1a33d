/* moe_route: router logits [tokens, E] to the top-K expert ids [tokens, K] (i32) and their
 * weights [tokens, K] (f32), softmax_topk (Qwen) or DeepSeek-V3's grouped sigmoid; the
 * definition, NaN and tie rules are in moe_ref.h.
 *
 * Its check is its own (`compare`): ids are judged by the scores the definition gives them, so
 * where the K-th and (K+1)-th scores are within the tolerance either choice passes, and an exact
 * tie must go to the lower index; weights are compared with those the definition gives the
 * kernel's own ids (a near-tie swap in sigmoid mode changes every weight of the token), relative
 * to each weight (floored at 1e-6 of the token's largest). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "moe_route.h"

static kb_moe_route cfg(const int64_t *p)
{
    kb_moe_route r = {(int)p[MR_E], (int)p[MR_K], (int)p[MR_MODE], (int)p[MR_RENORM],
                      (int)p[MR_GROUPS], (int)p[MR_TOPK_GROUP]};
    return r;
}

int kb_moe_route_validate_params(const int64_t *p, char *err, size_t n)
{
    const kb_moe_route r = cfg(p);
    if (r.mode == MOE_SOFTMAX_TOPK && (r.groups != 8 || r.topk_group != 4)) {
        snprintf(err, n, "groups and topk_group apply to mode=1 (sigmoid_grouped) only");
        return -1;
    }
    if (r.mode == MOE_SIGMOID_GROUPED && !r.renorm) {
        snprintf(err, n, "mode=1 (sigmoid_grouped) always normalizes its weights: renorm=0 "
                 "applies to mode=0 only");
        return -1;
    }
    return kb_moe_route_validate(&r, err, n);
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    memset(in, 0, sizeof *in * 2);
    memset(out, 0, sizeof *out * 2);
    const int64_t T = p[MR_TOKENS], E = p[MR_E], K = p[MR_K];
    snprintf(in[0].name, sizeof in[0].name, "logits");
    in[0].dtype = KB_F32;
    in[0].ndim = 2;
    in[0].shape[0] = T;
    in[0].shape[1] = E;
    in[0].bytes = (size_t)(T * E) * 4;
    *ni = 1;
    if (p[MR_MODE] == MOE_SIGMOID_GROUPED) {
        snprintf(in[1].name, sizeof in[1].name, "bias");
        in[1].dtype = KB_F32;
        in[1].ndim = 1;
        in[1].shape[0] = E;
        in[1].bytes = (size_t)E * 4;
        *ni = 2;
    }
    const char *names[2] = {"ids", "weights"};
    for (int o = 0; o < 2; o++) {
        snprintf(out[o].name, sizeof out[o].name, "%s", names[o]);
        out[o].dtype = o == MR_IDS ? KB_I32 : KB_F32;
        out[o].ndim = 2;
        out[o].shape[0] = T;
        out[o].shape[1] = K;
        out[o].bytes = (size_t)(T * K) * 4;
    }
    *no = 2;
    return 0;
}

void kb_moe_route_gen_logits(const kb_moe_route *r, int64_t T, float *logits, float *bias,
                             kb_rng *rng, kb_inputs dist)
{
    const int E = r->E;
    if (bias) /* DeepSeek's correction bias: small against the sigmoid's (0, 1) */
        for (int i = 0; i < E; i++)
            bias[i] = dist == KB_INPUTS_ZEROS ? 0.0f : kb_rng_uniform(rng, -0.1f, 0.1f);
    for (int64_t t = 0; t < T; t++) {
        float *l = logits + t * E;
        for (int i = 0; i < E; i++)
            l[i] = 2.0f * kb_rng_normal(rng);
        switch (dist) {
        case KB_INPUTS_ZEROS: /* all equal: every choice is a tie */
            for (int i = 0; i < E; i++)
                l[i] = 0.0f;
            break;
        case KB_INPUTS_PEAKY: /* one to three dominant experts */
            for (int i = 0; i < E; i++)
                l[i] = l[i] * 0.5f - 4.0f;
            for (int k = 0, n = 1 + (int)(kb_rng_u64(rng) % 3); k < n; k++)
                l[kb_rng_u64(rng) % (uint64_t)E] = kb_rng_uniform(rng, 8.0f, 12.0f);
            break;
        case KB_INPUTS_EXTREME: {
            /* per token one of: exact ties around the K-th place, all equal, -inf, NaN,
             * nothing finite; see the tests for what each checks */
            const float NaN = nanf("");
            switch (t % 6) {
            case 0: /* a tied value at several places, low and high indices */
                for (int k = 0; k < 2 * r->K + 2 && k < E; k++)
                    l[(k * 7 + (int)t) % E] = 1.5f;
                break;
            case 1:
                for (int i = 0; i < E; i++)
                    l[i] = -3.0f;
                break;
            case 2: /* three quarters -inf */
                for (int i = 0; i < E; i++)
                    if (i % 4 != (int)(t / 6) % 4)
                        l[i] = -INFINITY;
                break;
            case 3: /* NaNs, some where the top scores would be */
                for (int i = 0; i < E; i += 3)
                    l[i] = NaN;
                l[E - 1] = NaN;
                break;
            case 4: /* nothing finite */
                for (int i = 0; i < E; i++)
                    l[i] = i % 2 ? -INFINITY : NaN;
                break;
            default: /* large magnitudes: exp underflows in f32 for most */
                for (int i = 0; i < E; i++)
                    l[i] *= 40.0f;
                break;
            }
            break;
        }
        default:
            break;
        }
    }
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    const kb_moe_route r = cfg(p);
    kb_moe_route_gen_logits(&r, p[MR_TOKENS], in[0].data,
                            r.mode == MOE_SIGMOID_GROUPED ? in[1].data : NULL, rng, dist);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const kb_moe_route r = cfg(p);
    const float *logits = in[0].data, *bias = r.mode == MOE_SIGMOID_GROUPED ? in[1].data : NULL;
    int32_t *ids = out[MR_IDS].data;
    float *w = out[MR_WEIGHTS].data;
    for (int64_t t = 0; t < p[MR_TOKENS]; t++) {
        double wd[MOE_MAX_K];
        kb_moe_route_token(&r, logits + t * r.E, bias, ids + t * r.K, wd);
        for (int k = 0; k < r.K; k++)
            w[t * r.K + k] = (float)wd[k];
    }
}

double kb_moe_route_compare_weights(const kb_moe_route *r, const float *logits, const float *bias,
                                    const int32_t *ids, const float *w, char *msg, size_t n)
{
    double sel[MOE_MAX_E], wk[MOE_MAX_E], e[MOE_MAX_K], emax = 0, err = 0;
    for (int k = 0; k < r->K; k++)
        if (ids[k] < 0 || ids[k] >= r->E) {
            snprintf(msg, n, "slot %d: id %d is outside 0..%d", k, ids[k], r->E - 1);
            return INFINITY;
        }
    kb_moe_route_keys(r, logits, bias, sel, wk);
    kb_moe_route_weights_for(r, wk, ids, e);
    for (int k = 0; k < r->K; k++)
        emax = fmax(emax, fabs(e[k]));
    for (int k = 0; k < r->K; k++) {
        const double den = fmax(fabs(e[k]), 1e-6 * emax), d = fabs(w[k] - e[k]);
        if (d == 0)
            continue;
        if (den == 0) {
            snprintf(msg, n, "slot %d (expert %d): weight %g where the definition gives 0", k,
                     ids[k], w[k]);
            return INFINITY;
        }
        err = fmax(err, d / den);
    }
    return err;
}

static double compare(const int64_t *p, const kb_tensor *in, int o, const kb_tensor *out,
                      const kb_tensor *ref, char *msg, size_t msglen)
{
    (void)ref; /* judged against the definition from the inputs: ties may differ */
    const kb_moe_route r = cfg(p);
    const float *logits = in[0].data, *bias = r.mode == MOE_SIGMOID_GROUPED ? in[1].data : NULL;
    /* The weights are checked against the kernel's own ids, output 0: the runner passes
     * &outputs[o], so the ids are out[-1]; the name and shape are checked before use. */
    const kb_tensor *ids_t = o == MR_IDS ? out : out - 1;
    if (strcmp(ids_t->name, "ids") != 0 || ids_t->dtype != KB_I32 ||
        ids_t->shape[0] != out->shape[0] || ids_t->shape[1] != r.K) {
        snprintf(msg, msglen, "the ids output is not where the weights' check expects it");
        return INFINITY;
    }
    const int32_t *ids = ids_t->data;
    double worst = 0;
    for (int64_t t = 0; t < p[MR_TOKENS]; t++) {
        char why[160] = "";
        const float *lt = logits + t * r.E;
        const double e =
            o == MR_IDS
                ? kb_moe_compare_ids(&r, lt, bias, ids + t * r.K, why, sizeof why)
                : kb_moe_route_compare_weights(&r, lt, bias, ids + t * r.K,
                                               (const float *)out->data + t * r.K, why,
                                               sizeof why);
        if (e > worst || isnan(e)) {
            worst = e;
            snprintf(msg, msglen, "token %lld: %s", (long long)t, why);
            if (!(e < INFINITY))
                return INFINITY;
        }
    }
    if (worst == 0)
        msg[0] = 0;
    return worst;
}

static double bytes(const int64_t *p)
{
    const double T = (double)p[MR_TOKENS], E = (double)p[MR_E], K = (double)p[MR_K];
    return 4.0 * (T * E + T * K * 2 + (p[MR_MODE] == MOE_SIGMOID_GROUPED ? E : 0));
}

/* Nominal: ~5 operations per logit (max, subtract, exp, sum, compare). */
static double flops(const int64_t *p) { return 5.0 * (double)p[MR_TOKENS] * (double)p[MR_E]; }

static int validate(const int64_t *p, char *err, size_t n)
{
    return kb_moe_route_validate_params(p, err, n);
}

const kb_family kb_family_moe_route = {
    .name = "moe_route",
    .suite = "moe",
    .help = "router logits [tokens, E] to top-K ids and weights: mode 0 softmax_topk (renorm), "
            "1 DeepSeek-V3 grouped sigmoid (bias, groups, topk_group, x2.5)",
    .nparams = 7,
    .params = {{"tokens", 1, 1, MOE_MAX_TOKENS, "tokens routed"},
               {"E", 512, 1, MOE_MAX_E, "experts"},
               {"K", 10, 1, MOE_MAX_K, "experts picked per token (K <= E)"},
               {"mode", 0, 0, 1, "0 softmax_topk (Qwen), 1 sigmoid_grouped (DeepSeek-V3)"},
               {"renorm", 1, 0, 1, "mode 0: 1 = the K weights renormalized to sum 1"},
               {"groups", 8, 1, 64, "mode 1: expert groups (divides E)"},
               {"topk_group", 4, 1, 64, "mode 1: groups kept"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_PEAKY) | KB_INPUTS_BIT(KB_INPUTS_EXTREME) |
              KB_INPUTS_BIT(KB_INPUTS_ZEROS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 1u << 0,
    .tol_nmse = 1e-9,
    .tol_cond = 1e-5,
    .compare = compare,
    .test_shape = "tokens=7 E=32 K=4 mode=1 groups=4 topk_group=2",
};
