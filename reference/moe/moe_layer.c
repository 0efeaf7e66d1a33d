/* moe_layer: the MoE layer after the router matvec: route the logits (moe_route's definition),
 * then the experts and combine (moe_ffn's), y = h + sum_k w_k expert_k(x) + shared. A third
 * family rather than a variant of moe_ffn because its inputs differ (logits instead of ids and
 * weights): it is what the Vulkan implementation records in one command buffer with the expert
 * ids never leaving the device, and what a CPU implementation composes from the route and FFN
 * kernels.
 *
 * Generated logits keep a margin (1e-3, normalized as in moe_route's comparison) between the
 * K-th and (K+1)-th selection scores, and the 4th and 5th group scores, so that every
 * implementation picks the definition's experts and y can be compared element by element (a
 * near tie would swap an expert and change y by that expert's whole output). Routing ties are
 * moe_route's tests' business. The condition is moe_ffn's with the definition's weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe_layer.h"
#include "moe_route.h"

void kb_moe_layer_from_params(const int64_t *p, kb_moe_ffn *f, kb_moe_route *r)
{
    kb_moe_ffn_set(f, p[ML_TOKENS], (int)p[ML_E], (int)p[ML_K], p[ML_HIDDEN], p[ML_FFN],
                   (int)p[ML_FORMAT], 0, (int)p[ML_SHARED]);
    const int grouped = p[ML_ROUTE] == ML_ROUTE_GROUPED;
    r->E = (int)p[ML_E];
    r->K = (int)p[ML_K];
    r->mode = grouped ? MOE_SIGMOID_GROUPED : MOE_SOFTMAX_TOPK;
    r->renorm = p[ML_ROUTE] != ML_ROUTE_SOFTMAX;
    r->groups = ML_GROUPS;
    r->topk_group = ML_TOPK_GROUP;
}

kb_moe_layer_in kb_moe_layer_inputs(const kb_moe_ffn *f, const kb_moe_route *r)
{
    kb_moe_layer_in x = {0, -1, 0, 0, 0, -1, -1, -1, 0};
    int i = 1;
    if (r->mode == MOE_SIGMOID_GROUPED)
        x.bias = i++;
    x.x = i++;
    x.h = i++;
    x.W = i++;
    const kb_moe_ffn_in fi = kb_moe_ffn_inputs(f, i);
    x.sc = fi.sc;
    x.bi = fi.bi;
    x.sg = fi.sg;
    x.n = fi.n;
    return x;
}

static int validate(const int64_t *p, char *err, size_t n)
{
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(p, &f, &r);
    if (kb_moe_route_validate(&r, err, n) != 0)
        return -1;
    return kb_moe_ffn_validate(&f, 0, err, n);
}

static void desc(kb_tensor *t, const char *name, kb_dtype dt, int64_t d0, int64_t d1)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->bytes = (size_t)(d0 * (d1 ? d1 : 1)) * kb_dtype_size(dt);
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(p, &f, &r);
    const kb_moe_layer_in ix = kb_moe_layer_inputs(&f, &r);
    desc(&in[ix.logits], "logits", KB_F32, f.tokens, f.E);
    if (ix.bias >= 0)
        desc(&in[ix.bias], "bias", KB_F32, f.E, 0);
    desc(&in[ix.x], "x", KB_F32, f.tokens, f.hidden);
    desc(&in[ix.h], "h", KB_F32, f.tokens, f.hidden);
    desc(&in[ix.W], "W", KB_U8, f.NE, f.expert_bytes);
    if (ix.sc >= 0) {
        desc(&in[ix.sc], "scales", KB_BF16, f.NE, f.expert_groups);
        desc(&in[ix.bi], "biases", KB_BF16, f.NE, f.expert_groups);
    }
    if (ix.sg >= 0)
        desc(&in[ix.sg], "shared_gate", KB_F32, f.hidden, 0);
    desc(&out[0], "y", KB_F32, f.tokens, f.hidden);
    *ni = ix.n;
    *no = 1;
    return 0;
}

/* The normalized gap between the K-th and (K+1)-th eligible selection scores, and for grouped
 * routing between the 4th and 5th group scores: the smaller. */
static double margin(const kb_moe_route *r, const float *l, const float *bias)
{
    double sel[MOE_MAX_E], wk[MOE_MAX_E], v[MOE_MAX_E];
    int n = 0;
    double m = INFINITY;
    kb_moe_route_keys(r, l, bias, sel, wk);
    if (r->mode == MOE_SIGMOID_GROUPED) {
        double gs[MOE_MAX_E], g[MOE_MAX_E];
        int per = r->E / r->groups;
        kb_moe_group_scores(r, sel, gs);
        memcpy(g, gs, sizeof(double) * (size_t)r->groups);
        for (int a = 0; a < r->groups; a++) /* descending */
            for (int b = a + 1; b < r->groups; b++)
                if (g[b] > g[a]) {
                    double t = g[a];
                    g[a] = g[b];
                    g[b] = t;
                }
        if (r->topk_group < r->groups)
            m = (g[r->topk_group - 1] - g[r->topk_group]) / fmax(1.0, fabs(g[r->topk_group]));
        for (int i = 0; i < r->E; i++)
            if (gs[i / per] >= g[r->topk_group - 1]) /* a kept group */
                v[n++] = sel[i];
    } else {
        for (int i = 0; i < r->E; i++)
            v[n++] = sel[i];
    }
    for (int a = 0; a <= r->K && a < n; a++) /* the K + 1 best, descending */
        for (int b = a + 1; b < n; b++)
            if (v[b] > v[a]) {
                double t = v[a];
                v[a] = v[b];
                v[b] = t;
            }
    if (r->K < n)
        m = fmin(m, (v[r->K - 1] - v[r->K]) / fmax(1.0, fabs(v[r->K])));
    return m;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(p, &f, &r);
    const kb_moe_layer_in ix = kb_moe_layer_inputs(&f, &r);
    kb_moe_ffn_gen_weights(&f, in[ix.W].data, ix.sc >= 0 ? in[ix.sc].data : NULL,
                           ix.bi >= 0 ? in[ix.bi].data : NULL, ix.sg >= 0 ? in[ix.sg].data : NULL,
                           rng);
    float *logits = in[ix.logits].data, *bias = ix.bias >= 0 ? in[ix.bias].data : NULL;
    kb_moe_route_gen_logits(&r, 1, logits, bias, rng, KB_INPUTS_RANDOM); /* the bias */
    for (int64_t t = 0; t < f.tokens; t++) {
        float *lt = logits + t * f.E;
        for (int tries = 0; tries < 1000; tries++) { /* a margin: see the header */
            for (int i = 0; i < f.E; i++)
                lt[i] = 2.0f * kb_rng_normal(rng);
            if (margin(&r, lt, bias) >= 1e-3)
                break;
        }
    }
    kb_moe_ffn_gen_acts(&f, in[ix.x].data, in[ix.h].data, rng, dist);
}

/* The definition's routing of every token: ids [T][K], weights in double. */
static void route_all(const kb_moe_ffn *f, const kb_moe_route *r, const kb_tensor *in,
                      const kb_moe_layer_in *ix, int32_t *ids, double *w)
{
    const float *logits = in[ix->logits].data, *bias = ix->bias >= 0 ? in[ix->bias].data : NULL;
    for (int64_t t = 0; t < f->tokens; t++)
        kb_moe_route_token(r, logits + t * f->E, bias, ids + t * f->K, w + t * f->K);
}

static void eval(const int64_t *p, const kb_tensor *in, float *y, double *scale)
{
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(p, &f, &r);
    const kb_moe_layer_in ix = kb_moe_layer_inputs(&f, &r);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(f.tokens * f.K));
    double *w = malloc(sizeof(double) * (size_t)(f.tokens * f.K));
    if (!ids || !w) {
        fprintf(stderr, "kbench: out of memory in the moe_layer reference\n");
        abort();
    }
    route_all(&f, &r, in, &ix, ids, w);
    const kb_moe_ffn_data d = {in[ix.x].data,
                               in[ix.h].data,
                               in[ix.W].data,
                               ix.sc >= 0 ? in[ix.sc].data : NULL,
                               ix.bi >= 0 ? in[ix.bi].data : NULL,
                               ix.sg >= 0 ? in[ix.sg].data : NULL};
    kb_moe_ffn_eval(&f, &d, ids, w, y, scale);
    free(ids);
    free(w);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    eval(p, in, out[0].data, NULL);
}

static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    static kb_moe_cond_cache cache;
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(p, &f, &r);
    const kb_moe_layer_in ix = kb_moe_layer_inputs(&f, &r);
    uint64_t key = kb_moe_hash(0x84222325cbf29ce4ull, p, sizeof(int64_t) * 8);
    for (int i = 0; i < ix.n; i++)
        key = i == ix.W || i == ix.sc || i == ix.bi
                  ? kb_moe_hash_sampled(key, in[i].data, in[i].bytes)
                  : kb_moe_hash(key, in[i].data, in[i].bytes);
    const size_t n = (size_t)(f.tokens * f.hidden);
    int hit;
    double *c = (double *)kb_moe_cond_lookup(&cache, key, n, &hit);
    (void)o;
    if (!c) {
        eval(p, in, NULL, scale);
        return;
    }
    if (!hit)
        eval(p, in, NULL, c);
    memcpy(scale, c, sizeof(double) * n);
}

static double bytes(const int64_t *p)
{
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(p, &f, &r);
    const double acts = 4.0 * (double)(f.tokens * f.hidden) * 3 + 4.0 * (double)(f.tokens * f.E);
    return kb_moe_ffn_experts_read(&f) * kb_moe_ffn_expert_bytes(&f) + acts +
           (f.shared == MOE_SHARED_GATED ? 4.0 * (double)f.hidden : 0) +
           (r.mode == MOE_SIGMOID_GROUPED ? 4.0 * f.E : 0);
}

static double rotated_read(const int64_t *p)
{
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(p, &f, &r);
    return kb_moe_ffn_experts_read(&f) * kb_moe_ffn_expert_bytes(&f);
}

static double flops(const int64_t *p)
{
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(p, &f, &r);
    return kb_moe_ffn_flops(&f) + 5.0 * (double)(f.tokens * f.E);
}

/* The weights follow the logits: rotated with them (input 0 is the logits, rotated too: a
 * decode step's logits are new every call). Bits past the last input are ignored. */
const kb_family kb_family_moe_layer = {
    .name = "moe_layer",
    .suite = "moe",
    .help = "route (moe_route) then experts and combine (moe_ffn): y = h + sum_k w_k expert_k(x) "
            "+ shared, from router logits; the expert ids stay on the device (vk)",
    .nparams = 8,
    .params = {{"tokens", 1, 1, MOE_MAX_TOKENS, "tokens (1: decode)"},
               {"E", 512, 1, MOE_MAX_E, "routed experts stored"},
               {"K", 10, 1, MOE_MAX_K, "experts per token (K <= E)"},
               {"hidden", 4096, 32, 16384, "model width (a multiple of 64; q4_0: of 32)"},
               {"ffn", 1024, 32, 16384, "expert FFN width (a multiple of 64; q4_0: of 32)"},
               {"format", 0, 0, 2, "weights: 0 a4, 1 a8 (MLX affine, group 64), 2 q4_0"},
               {"shared", 1, 0, 2, "shared expert: 0 none, 1 gated (Qwen), 2 unscaled (DeepSeek)"},
               {"route", 1, 0, 2, "0 softmax_topk, 1 softmax_topk renormalized (Qwen), 2 grouped "
                                  "sigmoid, 8 groups, top 4 (DeepSeek-V3)"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS) | KB_INPUTS_BIT(KB_INPUTS_ZEROS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 0xFFu, /* everything but y; only W, scales, biases are large */
    .rotated_read = rotated_read,
    .tol_nmse = 1e-9,
    .condition = condition,
    .tol_cond = 1e-6,
    .test_shape = "tokens=3 E=16 K=3 hidden=64 ffn=64 shared=1 route=2",
};
