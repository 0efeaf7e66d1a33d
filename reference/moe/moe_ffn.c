/* moe_ffn: per token, its K routed experts' down(silu(gate x) * up x) in a4, a8 or q4_0,
 * summed with the routing weights, plus the shared expert (Qwen: scaled by
 * sigmoid(sg . x); DeepSeek: unscaled) and the residual h. The routing (ids, weights) is an
 * input; the definition is kb_moe_ffn_eval (moe_ref.h). The check is the conditioned one: the
 * bound carries |gate|, |up| sums through silu and down (moe_ref.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moe_ffn.h"

kb_moe_ffn_in kb_moe_ffn_inputs(const kb_moe_ffn *f, int i)
{
    kb_moe_ffn_in r = {-1, -1, -1, 0};
    if (f->affine) {
        r.sc = i++;
        r.bi = i++;
    }
    if (f->shared == MOE_SHARED_GATED)
        r.sg = i++;
    r.n = i;
    return r;
}

void kb_moe_ffn_from_params(const int64_t *p, kb_moe_ffn *f)
{
    kb_moe_ffn_set(f, p[MF_TOKENS], (int)p[MF_E], (int)p[MF_K], p[MF_HIDDEN], p[MF_FFN],
                   (int)p[MF_FORMAT], (int)p[MF_GROUP], (int)p[MF_SHARED]);
}

static int validate(const int64_t *p, char *err, size_t n)
{
    kb_moe_ffn f;
    kb_moe_ffn_from_params(p, &f);
    return kb_moe_ffn_validate(&f, (int)p[MF_GROUP], err, n);
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
    kb_moe_ffn_from_params(p, &f);
    const kb_moe_ffn_in ix = kb_moe_ffn_inputs(&f, MF_W + 1);
    desc(&in[MF_X], "x", KB_F32, f.tokens, f.hidden);
    desc(&in[MF_H], "h", KB_F32, f.tokens, f.hidden);
    desc(&in[MF_IDS], "ids", KB_I32, f.tokens, f.K);
    desc(&in[MF_WEIGHTS], "weights", KB_F32, f.tokens, f.K);
    desc(&in[MF_W], "W", KB_U8, f.NE, f.expert_bytes);
    if (f.affine) {
        desc(&in[ix.sc], "scales", KB_BF16, f.NE, f.expert_groups);
        desc(&in[ix.bi], "biases", KB_BF16, f.NE, f.expert_groups);
    }
    if (ix.sg >= 0)
        desc(&in[ix.sg], "shared_gate", KB_F32, f.hidden, 0);
    desc(&out[MF_Y], "y", KB_F32, f.tokens, f.hidden);
    *ni = ix.n;
    *no = 1;
    return 0;
}

static void data_of(const kb_moe_ffn *f, const kb_tensor *in, kb_moe_ffn_data *d)
{
    const kb_moe_ffn_in ix = kb_moe_ffn_inputs(f, MF_W + 1);
    d->x = in[MF_X].data;
    d->h = in[MF_H].data;
    d->W = in[MF_W].data;
    d->sc = ix.sc >= 0 ? in[ix.sc].data : NULL;
    d->bi = ix.bi >= 0 ? in[ix.bi].data : NULL;
    d->sg = ix.sg >= 0 ? in[ix.sg].data : NULL;
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    kb_moe_ffn f;
    kb_moe_ffn_from_params(p, &f);
    const kb_moe_ffn_in ix = kb_moe_ffn_inputs(&f, MF_W + 1);
    kb_moe_ffn_gen_weights(&f, in[MF_W].data, ix.sc >= 0 ? in[ix.sc].data : NULL,
                           ix.bi >= 0 ? in[ix.bi].data : NULL, ix.sg >= 0 ? in[ix.sg].data : NULL,
                           rng);
    kb_moe_ffn_gen_routing(&f, in[MF_IDS].data, in[MF_WEIGHTS].data, rng);
    kb_moe_ffn_gen_acts(&f, in[MF_X].data, in[MF_H].data, rng, dist);
}

static double *weights_double(const kb_moe_ffn *f, const kb_tensor *in)
{
    double *w = malloc(sizeof(double) * (size_t)(f->tokens * f->K));
    if (!w) {
        fprintf(stderr, "kbench: out of memory in the moe_ffn reference\n");
        abort();
    }
    for (int64_t i = 0; i < f->tokens * f->K; i++)
        w[i] = ((const float *)in[MF_WEIGHTS].data)[i];
    return w;
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    kb_moe_ffn f;
    kb_moe_ffn_data d;
    kb_moe_ffn_from_params(p, &f);
    data_of(&f, in, &d);
    double *w = weights_double(&f, in);
    kb_moe_ffn_eval(&f, &d, in[MF_IDS].data, w, out[MF_Y].data, NULL);
    free(w);
}

/* The bound costs as much as the reference: computed once per case (a hash of the inputs: the
 * small ones whole, the weights sampled). */
static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    static kb_moe_cond_cache cache;
    kb_moe_ffn f;
    kb_moe_ffn_data d;
    kb_moe_ffn_from_params(p, &f);
    data_of(&f, in, &d);
    const kb_moe_ffn_in ix = kb_moe_ffn_inputs(&f, MF_W + 1);
    uint64_t key = kb_moe_hash(0xcbf29ce484222325ull, p, sizeof(int64_t) * 8);
    for (int i = 0; i < ix.n; i++)
        key = i == MF_W || i == ix.sc || i == ix.bi
                  ? kb_moe_hash_sampled(key, in[i].data, in[i].bytes)
                  : kb_moe_hash(key, in[i].data, in[i].bytes);
    const size_t n = (size_t)(f.tokens * f.hidden);
    int hit;
    double *c = (double *)kb_moe_cond_lookup(&cache, key, n, &hit);
    if (!c) { /* no memory for the cache: compute into the runner's array */
        double *w = weights_double(&f, in);
        kb_moe_ffn_eval(&f, &d, in[MF_IDS].data, w, NULL, scale);
        free(w);
        return;
    }
    if (!hit) {
        double *w = weights_double(&f, in);
        kb_moe_ffn_eval(&f, &d, in[MF_IDS].data, w, NULL, c);
        free(w);
    }
    (void)o;
    memcpy(scale, c, sizeof(double) * n);
}

static double bytes(const int64_t *p)
{
    kb_moe_ffn f;
    kb_moe_ffn_from_params(p, &f);
    const double acts = 4.0 * (double)(f.tokens * f.hidden) * 3 + 8.0 * (double)(f.tokens * f.K);
    return kb_moe_ffn_experts_read(&f) * kb_moe_ffn_expert_bytes(&f) + acts +
           (f.shared == MOE_SHARED_GATED ? 4.0 * (double)f.hidden : 0);
}

static double rotated_read(const int64_t *p)
{
    kb_moe_ffn f;
    kb_moe_ffn_from_params(p, &f);
    return kb_moe_ffn_experts_read(&f) * kb_moe_ffn_expert_bytes(&f);
}

static double flops(const int64_t *p)
{
    kb_moe_ffn f;
    kb_moe_ffn_from_params(p, &f);
    return kb_moe_ffn_flops(&f);
}

const kb_family kb_family_moe_ffn = {
    .name = "moe_ffn",
    .suite = "moe",
    .help = "y = h + sum_k w_k down(silu(gate x) up x) over each token's K routed experts + the "
            "shared expert; a4/a8 (MLX affine) or q4_0 weights",
    .nparams = 8,
    .params = {{"tokens", 1, 1, MOE_MAX_TOKENS, "tokens (1: decode)"},
               {"E", 512, 1, MOE_MAX_E, "routed experts stored"},
               {"K", 10, 1, MOE_MAX_K, "experts per token (K <= E)"},
               {"hidden", 4096, 32, 16384, "model width (a multiple of group)"},
               {"ffn", 1024, 32, 16384, "expert FFN width (a multiple of group)"},
               {"format", 0, 0, 2, "weights: 0 a4, 1 a8 (MLX affine), 2 q4_0"},
               {"group", 0, 0, 128, "affine group G (32, 64, 128; 0 = 64); q4_0: 0 or 32"},
               {"shared", 1, 0, 2, "shared expert: 0 none, 1 gated (Qwen), 2 unscaled (DeepSeek)"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_OUTLIERS) | KB_INPUTS_BIT(KB_INPUTS_ZEROS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = 1u << MF_W | 1u << (MF_W + 1) | 1u << (MF_W + 2),
    .rotated_read = rotated_read,
    .tol_nmse = 1e-9,
    .condition = condition,
    .tol_cond = 1e-6,
    .test_shape = "tokens=3 E=6 K=2 hidden=64 ffn=64 group=32 shared=1",
};
