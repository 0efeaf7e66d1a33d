/* The expert FFN and combine in double, as moe_ref.h defines it; weight layout, generation and
 * the conditioned bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "affine_formats.h"
#include "ggml_formats.h"
#include "moe_ref.h"

void kb_moe_ffn_set(kb_moe_ffn *f, int64_t tokens, int E, int K, int64_t hidden, int64_t ffn,
                    int format, int group, int shared)
{
    memset(f, 0, sizeof *f);
    f->tokens = tokens;
    f->E = E;
    f->K = K;
    f->hidden = hidden;
    f->ffn = ffn;
    f->format = format;
    f->shared = shared;
    f->affine = format != MOE_FMT_Q4_0;
    f->bits = format == MOE_FMT_A8 ? 8 : 4;
    f->group = f->affine ? (group ? group : 64) : QK;
    f->NE = E + (shared != MOE_SHARED_NONE);
    f->S = K + (shared != MOE_SHARED_NONE);
    if (f->affine) {
        f->rb_h = hidden * f->bits / 8;
        f->rb_f = ffn * f->bits / 8;
        f->ng_h = hidden / f->group;
        f->ng_f = ffn / f->group;
    } else {
        f->rb_h = hidden / QK * (int64_t)sizeof(block_q4_0);
        f->rb_f = ffn / QK * (int64_t)sizeof(block_q4_0);
    }
    f->off_gate = 0;
    f->off_up = ffn * f->rb_h;
    f->off_down = 2 * ffn * f->rb_h;
    f->expert_bytes = 2 * ffn * f->rb_h + hidden * f->rb_f;
    f->goff_gate = 0;
    f->goff_up = ffn * f->ng_h;
    f->goff_down = 2 * ffn * f->ng_h;
    f->expert_groups = 2 * ffn * f->ng_h + hidden * f->ng_f;
}

int kb_moe_ffn_validate(const kb_moe_ffn *f, int group_param, char *err, size_t errlen)
{
    if (f->K > f->E) {
        snprintf(err, errlen, "K=%d > E=%d: a token's K experts must be distinct", f->K, f->E);
        return -1;
    }
    if (!f->affine && group_param != 0 && group_param != QK) {
        snprintf(err, errlen, "group=%d: q4_0 blocks are 32 weights (group=0 or 32)",
                 group_param);
        return -1;
    }
    if (f->affine && f->group != 32 && f->group != 64 && f->group != 128) {
        snprintf(err, errlen, "group=%d: must be 32, 64 or 128", f->group);
        return -1;
    }
    if (f->hidden % f->group != 0) {
        snprintf(err, errlen, "hidden=%lld is not a multiple of group=%d", (long long)f->hidden,
                 f->group);
        return -1;
    }
    if (f->ffn % f->group != 0) {
        snprintf(err, errlen, "ffn=%lld is not a multiple of group=%d", (long long)f->ffn,
                 f->group);
        return -1;
    }
    return 0;
}

double kb_moe_ffn_expert_bytes(const kb_moe_ffn *f)
{
    return (double)f->expert_bytes + (f->affine ? 4.0 * (double)f->expert_groups : 0.0);
}

double kb_moe_ffn_experts_read(const kb_moe_ffn *f)
{
    const double sh = f->shared != MOE_SHARED_NONE;
    if (f->tokens == 1)
        return f->K + sh;
    return f->E * (1.0 - pow(1.0 - (double)f->K / f->E, (double)f->tokens)) + sh;
}

double kb_moe_ffn_flops(const kb_moe_ffn *f)
{
    /* gate, up, down per (token, slot); silu and the combine are noise beside them */
    double fl = 2.0 * 3.0 * (double)f->ffn * (double)f->hidden * (double)(f->tokens * f->S);
    if (f->shared == MOE_SHARED_GATED)
        fl += 2.0 * (double)f->hidden * (double)f->tokens;
    return fl;
}

/* ---- inputs ------------------------------------------------------------------------------ */

void kb_moe_ffn_gen_weights(const kb_moe_ffn *f, uint8_t *W, uint16_t *sc, uint16_t *bi,
                            float *sg, kb_rng *rng)
{
    const size_t nb = (size_t)f->NE * (size_t)f->expert_bytes;
    size_t i = 0;
    for (; i + 8 <= nb; i += 8) { /* every bit pattern is a valid code */
        const uint64_t v = kb_rng_u64(rng);
        memcpy(W + i, &v, 8);
    }
    for (; i < nb; i++)
        W[i] = (uint8_t)kb_rng_u64(rng);
    if (f->affine) {
        /* scales as in quantized LLM weights, biases near -scale (2^b - 1) / 2 so that the
         * weights centre near zero; a8 scales 16x smaller: |w| < ~0.1 in both formats */
        const float qmax = (float)((1 << f->bits) - 1), s0 = f->bits == 8 ? 1.0f / 16 : 1.0f;
        for (int64_t g = 0; g < (int64_t)f->NE * f->expert_groups; g++) {
            const float s = s0 * kb_rng_uniform(rng, 1e-3f, 2e-2f);
            sc[g] = kb_f32_to_bf16(s);
            bi[g] = kb_f32_to_bf16(-s * qmax * kb_rng_uniform(rng, 0.4f, 0.6f));
        }
    } else {
        /* Q4_0 scales d = m / -8: signed; |w| < 8 |d| ~ 0.08 */
        const int64_t rows[3] = {f->ffn, f->ffn, f->hidden};
        const int64_t rbs[3] = {f->rb_h, f->rb_h, f->rb_f};
        const int64_t offs[3] = {f->off_gate, f->off_up, f->off_down};
        for (int e = 0; e < f->NE; e++)
            for (int m = 0; m < 3; m++)
                for (int64_t r = 0; r < rows[m]; r++) {
                    uint8_t *row = W + e * f->expert_bytes + offs[m] + r * rbs[m];
                    for (int64_t b = 0; b < rbs[m] / (int64_t)sizeof(block_q4_0); b++) {
                        const float d = kb_rng_uniform(rng, 2e-3f, 1e-2f) *
                                        ((kb_rng_u64(rng) & 1) ? 1.0f : -1.0f);
                        const uint16_t h = kb_f32_to_f16(d);
                        memcpy(row + b * (int64_t)sizeof(block_q4_0), &h, 2);
                    }
                }
    }
    if (sg) /* the shared-expert gate: a linear layer's weights, ~N(0, 0.02^2) */
        for (int64_t c = 0; c < f->hidden; c++)
            sg[c] = 0.02f * kb_rng_normal(rng);
}

void kb_moe_ffn_gen_acts(const kb_moe_ffn *f, float *x, float *h, kb_rng *rng, kb_inputs dist)
{
    const int64_t n = f->tokens * f->hidden;
    int64_t hot[4] = {-1, -1, -1, -1}; /* outlier channels, the same for every token */
    if (dist == KB_INPUTS_OUTLIERS)
        for (int i = 0; i < 4; i++)
            hot[i] = (int64_t)(kb_rng_u64(rng) % (uint64_t)f->hidden);
    for (int64_t i = 0; i < n; i++) {
        float v = kb_rng_normal(rng); /* after a norm: roughly unit scale */
        const int64_t c = i % f->hidden;
        if (c == hot[0] || c == hot[1] || c == hot[2] || c == hot[3])
            v *= 100.0f;
        x[i] = dist == KB_INPUTS_ZEROS ? 0.0f : v;
    }
    for (int64_t i = 0; i < n; i++)
        h[i] = kb_rng_normal(rng);
}

void kb_moe_ffn_gen_routing(const kb_moe_ffn *f, int32_t *ids, float *w, kb_rng *rng)
{
    int32_t perm[MOE_MAX_E];
    for (int64_t t = 0; t < f->tokens; t++) {
        for (int i = 0; i < f->E; i++)
            perm[i] = i;
        for (int k = 0; k < f->K; k++) { /* partial Fisher-Yates: K distinct of E */
            const int j = k + (int)(kb_rng_u64(rng) % (uint64_t)(f->E - k));
            const int32_t tmp = perm[k];
            perm[k] = perm[j];
            perm[j] = tmp;
            ids[t * f->K + k] = perm[k];
            w[t * f->K + k] = kb_rng_uniform(rng, 0.02f, 0.3f);
        }
    }
}

/* ---- the definition ---------------------------------------------------------------------- */

void kb_moe_ffn_row(const kb_moe_ffn *f, const kb_moe_ffn_data *d, int e, int m, int64_t r,
                    double *w)
{
    const int64_t cols = m == 2 ? f->ffn : f->hidden, rb = m == 2 ? f->rb_f : f->rb_h;
    const int64_t off = m == 0 ? f->off_gate : m == 1 ? f->off_up : f->off_down;
    const uint8_t *row = d->W + (int64_t)e * f->expert_bytes + off + r * rb;
    if (f->affine) {
        const int64_t ng = m == 2 ? f->ng_f : f->ng_h;
        const int64_t goff = m == 0 ? f->goff_gate : m == 1 ? f->goff_up : f->goff_down;
        const int64_t g0 = (int64_t)e * f->expert_groups + goff + r * ng;
        for (int64_t c = 0; c < cols; c++) {
            uint32_t word;
            memcpy(&word, row + c * f->bits / 32 * 4, 4); /* the word holding code c */
            const double s = kb_bf16_to_f32(d->sc[g0 + c / f->group]);
            const double b = kb_bf16_to_f32(d->bi[g0 + c / f->group]);
            w[c] = (double)kb_aff_code(&word, c % (32 / f->bits), f->bits) * s + b;
        }
    } else {
        for (int64_t b = 0; b < cols / QK; b++) {
            block_q4_0 blk;
            memcpy(&blk, row + b * (int64_t)sizeof blk, sizeof blk);
            const double dd = kb_f16_to_f32(blk.d);
            for (int j = 0; j < QK / 2; j++) {
                w[b * QK + j] = dd * ((blk.qs[j] & 15) - 8);
                w[b * QK + j + 16] = dd * ((blk.qs[j] >> 4) - 8);
            }
        }
    }
}

static double sigm(double z) { return 1.0 / (1.0 + exp(-z)); }

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "kbench: out of memory in the moe reference\n");
        abort();
    }
    return p;
}

void kb_moe_ffn_eval(const kb_moe_ffn *f, const kb_moe_ffn_data *d, const int32_t *ids,
                     const double *w, float *y, double *scale)
{
    const int64_t T = f->tokens, H = f->hidden, F = f->ffn;
    const int S = f->S, K = f->K;
    /* the weight of every (token, slot); the shared gate's error bound per token */
    double *wt = xmalloc(sizeof(double) * (size_t)(T * S)), *cb = xmalloc(sizeof(double) * (size_t)T);
    for (int64_t t = 0; t < T; t++) {
        for (int k = 0; k < K; k++)
            wt[t * S + k] = w[t * K + k];
        cb[t] = 0;
        if (f->shared == MOE_SHARED_GATED) {
            double z = 0, zb = 0;
            for (int64_t c = 0; c < H; c++) {
                z += (double)d->sg[c] * d->x[t * H + c];
                zb += fabs((double)d->sg[c] * d->x[t * H + c]);
            }
            wt[t * S + K] = sigm(z);
            cb[t] = sigm(z) * (1 - sigm(z)) * zb;
        } else if (f->shared == MOE_SHARED_PLAIN) {
            wt[t * S + K] = 1.0;
        }
    }
    /* (token, slot) pairs grouped by expert: a row is dequantized once for all its tokens */
    int64_t *cnt = calloc((size_t)f->NE + 1, sizeof(int64_t)), *pairs = xmalloc(sizeof(int64_t) * (size_t)(T * S));
    if (!cnt)
        abort();
    for (int64_t p = 0; p < T * S; p++) {
        const int k = (int)(p % S);
        cnt[(k < K ? ids[p / S * K + k] : f->E) + 1]++;
    }
    for (int e = 0; e < f->NE; e++)
        cnt[e + 1] += cnt[e];
    {
        int64_t *fill = xmalloc(sizeof(int64_t) * (size_t)f->NE);
        memcpy(fill, cnt, sizeof(int64_t) * (size_t)f->NE);
        for (int64_t p = 0; p < T * S; p++) {
            const int k = (int)(p % S);
            pairs[fill[k < K ? ids[p / S * K + k] : f->E]++] = p;
        }
        free(fill);
    }
    double *acc = calloc((size_t)(T * H), sizeof(double));
    double *cacc = scale ? calloc((size_t)(T * H), sizeof(double)) : NULL;
    double *wr0 = xmalloc(sizeof(double) * (size_t)H), *wr1 = xmalloc(sizeof(double) * (size_t)H);
    double *wd = xmalloc(sizeof(double) * (size_t)F);
    if (!acc || (scale && !cacc))
        abort();
    for (int e = 0; e < f->NE; e++) {
        const int64_t n = cnt[e + 1] - cnt[e], *pe = pairs + cnt[e];
        if (n == 0)
            continue;
        double *a = xmalloc(sizeof(double) * (size_t)(n * F)), *ca = xmalloc(sizeof(double) * (size_t)(n * F));
        for (int64_t r = 0; r < F; r++) {
            kb_moe_ffn_row(f, d, e, 0, r, wr0);
            kb_moe_ffn_row(f, d, e, 1, r, wr1);
            for (int64_t i = 0; i < n; i++) {
                const float *x = d->x + pe[i] / S * H;
                double g = 0, u = 0, gb = 0, ub = 0;
                for (int64_t c = 0; c < H; c++) {
                    g += wr0[c] * x[c];
                    u += wr1[c] * x[c];
                }
                if (scale)
                    for (int64_t c = 0; c < H; c++) {
                        gb += fabs(wr0[c] * x[c]);
                        ub += fabs(wr1[c] * x[c]);
                    }
                const double sgm = sigm(g), silu = g * sgm, dsilu = sgm * (1 + g * (1 - sgm));
                a[i * F + r] = silu * u;
                ca[i * F + r] = fabs(dsilu * u) * gb + fabs(silu) * ub + fabs(silu * u);
            }
        }
        for (int64_t r = 0; r < H; r++) {
            kb_moe_ffn_row(f, d, e, 2, r, wd);
            for (int64_t i = 0; i < n; i++) {
                const int64_t p = pe[i], t = p / S;
                double v = 0, vb = 0;
                for (int64_t c = 0; c < F; c++)
                    v += wd[c] * a[i * F + c];
                acc[t * H + r] += wt[p] * v;
                if (scale) {
                    for (int64_t c = 0; c < F; c++)
                        vb += fabs(wd[c]) * ca[i * F + c];
                    cacc[t * H + r] += fabs(wt[p]) * vb + (p % S == K ? cb[t] * fabs(v) : 0.0);
                }
            }
        }
        free(a);
        free(ca);
    }
    for (int64_t i = 0; i < T * H; i++) {
        if (y)
            y[i] = (float)(d->h[i] + acc[i]);
        if (scale)
            scale[i] = fabs((double)d->h[i]) + cacc[i];
    }
    free(wr0);
    free(wr1);
    free(wd);
    free(acc);
    free(cacc);
    free(cnt);
    free(pairs);
    free(wt);
    free(cb);
}

/* ---- the cache of the conditioned bound ------------------------------------------------ */

uint64_t kb_moe_hash(uint64_t h, const void *p, size_t bytes)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

uint64_t kb_moe_hash_sampled(uint64_t h, const void *p, size_t bytes)
{
    const unsigned char *c = p;
    for (size_t i = 0; i + 8 <= bytes; i += 4096)
        h = kb_moe_hash(h, c + i, 8);
    return bytes >= 8 ? kb_moe_hash(h, c + bytes - 8, 8) : kb_moe_hash(h, c, bytes);
}

const double *kb_moe_cond_lookup(kb_moe_cond_cache *c, uint64_t key, size_t n, int *hit)
{
    *hit = c->scale && c->key == key && c->n == n;
    if (*hit)
        return c->scale;
    free(c->scale);
    c->scale = malloc(sizeof(double) * (n ? n : 1));
    c->key = key;
    c->n = c->scale ? n : 0;
    return c->scale;
}
