#include "attn_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT_MAX_CACHE_ELEMS (1LL << 34) /* per K or V tensor: 32 GiB in f16 */

int kb_attn_validate(const kb_attn_shape *s, char *err, size_t errlen)
{
    if (s->kv_heads > s->heads || s->heads % s->kv_heads != 0) {
        snprintf(err, errlen,
                 "heads=%lld is not a multiple of kv_heads=%lld (GQA groups are whole)",
                 (long long)s->heads, (long long)s->kv_heads);
        return -1;
    }
    if (s->D != 64 && s->D != 128 && s->D != 256) {
        snprintf(err, errlen, "head_dim=%lld: must be 64, 128 or 256", (long long)s->D);
        return -1;
    }
    if (s->T * s->kv_heads * s->D > AT_MAX_CACHE_ELEMS) {
        snprintf(err, errlen,
                 "the K/V cache of T=%lld x kv_heads=%lld x head_dim=%lld exceeds %lld elements "
                 "per tensor",
                 (long long)s->T, (long long)s->kv_heads, (long long)s->D, AT_MAX_CACHE_ELEMS);
        return -1;
    }
    return 0;
}

static void desc(kb_tensor *t, const char *name, kb_dtype dt, int64_t d0, int64_t d1, int64_t d2)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = 3;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    t->bytes = (size_t)(d0 * d1 * d2) * kb_dtype_size(dt);
}

int kb_attn_describe(const kb_attn_shape *s, kb_tensor *in, int *n_in, kb_tensor *out, int *n_out)
{
    const kb_dtype kv = s->kv_f16 ? KB_F16 : KB_F32;
    desc(&in[AT_Q], "Q", KB_F32, s->n_q, s->heads, s->D);
    desc(&in[AT_K], "K", kv, s->T, s->kv_heads, s->D);
    desc(&in[AT_V], "V", kv, s->T, s->kv_heads, s->D);
    desc(&out[AT_O], "O", KB_F32, s->n_q, s->heads, s->D);
    *n_in = 3;
    *n_out = 1;
    return 0;
}

/* Roughly N(0,1) from one draw: the sum of four uniform 16-bit fields, centred and scaled to
 * unit variance (Irwin-Hall, bounded by +-3.46). Box-Muller costs ~30x more and a 32k-position
 * cache holds tens of millions of values. */
static float normalish(kb_rng *r)
{
    uint64_t u = kb_rng_u64(r);
    double sum = (double)(u & 0xFFFF) + (double)((u >> 16) & 0xFFFF) +
                 (double)((u >> 32) & 0xFFFF) + (double)(u >> 48);
    return (float)((sum * (1.0 / 65536.0) - 2.0) * 1.7320508075688772);
}

/* Element i of a cache tensor stored from float (f16 rounding where f16). */
static void cache_set(kb_tensor *t, int f16, int64_t i, float v)
{
    if (f16)
        ((uint16_t *)t->data)[i] = kb_f32_to_f16(v);
    else
        ((float *)t->data)[i] = v;
}

/* EXTREME cache values: mostly normal, some f16 subnormals, some large (both signs). */
static float extreme_value(kb_rng *rng, int64_t i)
{
    const float sign = kb_rng_u64(rng) & 1 ? -1.0f : 1.0f;
    switch (i % 16) {
    case 0: return sign * kb_rng_uniform(rng, 1e-7f, 5e-5f); /* f16 subnormal */
    case 1: return sign * kb_rng_uniform(rng, 100.0f, 1000.0f);
    default: return normalish(rng);
    }
}

static void fill_cache(kb_tensor *t, int f16, kb_rng *rng, kb_inputs dist)
{
    const int64_t n = kb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        cache_set(t, f16, i, dist == KB_INPUTS_EXTREME ? extreme_value(rng, i) : normalish(rng));
}

void kb_attn_generate(const kb_attn_shape *s, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    /* Q twice as wide as K: scores q.k/sqrt(D) get a standard deviation of 2, so the softmax
     * is peaked as in trained models (~T/e^4 positions carry the weight) and the running max
     * keeps moving; unit scores would give a near-uniform average of V. */
    const int64_t D = s->D, G = s->heads / s->kv_heads;
    float *q = in[AT_Q].data;
    for (int64_t i = 0; i < kb_tensor_numel(&in[AT_Q]); i++)
        q[i] = dist == KB_INPUTS_ZEROS ? 0.0f : 2.0f * normalish(rng);
    fill_cache(&in[AT_K], s->kv_f16, rng, dist);
    fill_cache(&in[AT_V], s->kv_f16, rng, dist);
    if (dist == KB_INPUTS_OUTLIERS) /* one channel of every query head 100x larger */
        for (int64_t i = 0; i < s->n_q * s->heads; i++)
            q[i * D + (int64_t)(kb_rng_u64(rng) % (uint64_t)D)] *= 100.0f;
    if (dist == KB_INPUTS_PEAKY) {
        /* A few positions per kv head whose key lies along the group's mean query (scores
         * near +30: they take almost all the weight) and a few against it (near -30), at
         * random positions, so the running maximum jumps late as well as early. */
        const int64_t nd = s->T < 4 ? 1 : 4;
        for (int64_t kvh = 0; kvh < s->kv_heads; kvh++) {
            double m[256] = {0}, norm = 0;
            for (int64_t i = 0; i < s->n_q; i++)
                for (int64_t h = kvh * G; h < (kvh + 1) * G; h++)
                    for (int64_t d = 0; d < D; d++)
                        m[d] += q[(i * s->heads + h) * D + d];
            for (int64_t d = 0; d < D; d++)
                norm += m[d] * m[d];
            norm = sqrt(norm);
            if (norm == 0)
                continue;
            for (int64_t k = 0; k < 2 * nd; k++) {
                const int64_t j = (int64_t)(kb_rng_u64(rng) % (uint64_t)s->T);
                /* k = t m/|m| scores q.k/sqrt(D) = t |q| cos / sqrt(D) ~ 2 t cos (|q| ~ 2 sqrt(D)):
                 * t = 15 gives about +-30 for a lone query (cos ~ 1), less in wide groups */
                const double target = k < nd ? 15.0 : -15.0;
                for (int64_t d = 0; d < D; d++)
                    cache_set(&in[AT_K], s->kv_f16, (j * s->kv_heads + kvh) * D + d,
                              (float)(target * m[d] / norm));
            }
        }
    }
}

/* Kv head kvh of a cache as double (exact), converted once rather than in the O(n_q * T * D)
 * loops: [T][D] rows, or transposed to [D][T] so that each output element is one dot product. */
static void cache_head(const kb_attn_shape *s, const kb_tensor *t, int64_t kvh, int transpose,
                       double *dst)
{
    const int64_t D = s->D, T = s->T, stride = s->kv_heads * D;
    for (int64_t j = 0; j < T; j++) {
        const int64_t off = j * stride + kvh * D;
        for (int64_t d = 0; d < D; d++)
            dst[transpose ? d * T + j : j * D + d] =
                s->kv_f16 ? kb_f16_to_f32(((const uint16_t *)t->data)[off + d])
                          : ((const float *)t->data)[off + d];
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "kbench: attention reference: out of memory for %zu bytes\n", n);
        abort();
    }
    return p;
}

/* sum a[i] b[i] in double with four interleaved partial sums (a fixed order): a long prefill
 * reference is then bound by throughput, not by the latency of one chain of additions. */
static double dot(const double *a, const double *b, int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* The definition: for every query and head, the scores of all attended positions, the softmax
 * with its maximum subtracted, then the weighted sum of V, all in double. */
void kb_attn_reference(const kb_attn_shape *s, const kb_tensor *in, kb_tensor *out)
{
    const int64_t H = s->heads, D = s->D, T = s->T, G = s->heads / s->kv_heads;
    const double scale = 1.0 / sqrt((double)D);
    double *k = xmalloc((size_t)(T * D) * sizeof(double));  /* [T][D] */
    double *vt = xmalloc((size_t)(T * D) * sizeof(double)); /* [D][T] */
    double *w = xmalloc((size_t)T * sizeof(double));
    double *q = xmalloc((size_t)D * sizeof(double));
    for (int64_t kvh = 0; kvh < s->kv_heads; kvh++) {
        cache_head(s, &in[AT_K], kvh, 0, k);
        cache_head(s, &in[AT_V], kvh, 1, vt);
        for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
            for (int64_t i = 0; i < s->n_q; i++) {
                const float *qf = (const float *)in[AT_Q].data + (i * H + h) * D;
                for (int64_t d = 0; d < D; d++)
                    q[d] = qf[d];
                const int64_t n = s->p0 + i + 1; /* causal: positions 0..p0+i */
                double m = -INFINITY;
                for (int64_t j = 0; j < n; j++) {
                    w[j] = dot(q, k + j * D, D) * scale;
                    if (w[j] > m)
                        m = w[j];
                }
                double l = 0;
                for (int64_t j = 0; j < n; j++) {
                    w[j] = exp(w[j] - m);
                    l += w[j];
                }
                float *o = (float *)out[AT_O].data + (i * H + h) * D;
                for (int64_t d = 0; d < D; d++)
                    o[d] = (float)(dot(w, vt + d * T, n) / l); /* l >= 1: exp(0) at the max */
            }
        }
    }
    free(q);
    free(w);
    free(vt);
    free(k);
}

/* The conditioning of O (kbench.h condition): for each output element, the magnitude of what
 * flows into it: sum_j p_j (|v_jd| + a_j (|v_jd| + |o_d|)), where p is the softmax (double)
 * and a_j = sum_d |q_d k_jd| / sqrt(D) the magnitude of score j's dot product: an error of
 * eps * a_j in score j moves o_d by at most p_j eps a_j |v_jd - o_d|. So f16 scores (eps 2^-11)
 * and f32 ones are judged on the same scale, peaky or flat. Same loops as the reference. */
void kb_attn_condition(const kb_attn_shape *s, const kb_tensor *in, double *scale)
{
    const int64_t H = s->heads, D = s->D, T = s->T, G = s->heads / s->kv_heads;
    const double sc = 1.0 / sqrt((double)D);
    double *k = xmalloc((size_t)(T * D) * sizeof(double));
    double *v = xmalloc((size_t)(T * D) * sizeof(double));
    double *w = xmalloc((size_t)T * sizeof(double)), *a = xmalloc((size_t)T * sizeof(double));
    double *q = xmalloc((size_t)D * sizeof(double)), *o = xmalloc((size_t)D * sizeof(double));
    for (int64_t kvh = 0; kvh < s->kv_heads; kvh++) {
        cache_head(s, &in[AT_K], kvh, 0, k);
        cache_head(s, &in[AT_V], kvh, 0, v);
        for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
            for (int64_t i = 0; i < s->n_q; i++) {
                const float *qf = (const float *)in[AT_Q].data + (i * H + h) * D;
                for (int64_t d = 0; d < D; d++)
                    q[d] = qf[d];
                const int64_t n = s->p0 + i + 1;
                double m = -INFINITY, l = 0;
                for (int64_t j = 0; j < n; j++) {
                    w[j] = dot(q, k + j * D, D) * sc;
                    a[j] = 0;
                    for (int64_t d = 0; d < D; d++)
                        a[j] += fabs(q[d] * k[j * D + d]);
                    a[j] *= sc;
                    m = w[j] > m ? w[j] : m;
                }
                for (int64_t j = 0; j < n; j++)
                    l += w[j] = exp(w[j] - m);
                for (int64_t d = 0; d < D; d++) {
                    o[d] = 0;
                    for (int64_t j = 0; j < n; j++)
                        o[d] += w[j] / l * v[j * D + d];
                }
                double *out = scale + (i * H + h) * D;
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < n; j++)
                        acc += w[j] / l * (fabs(v[j * D + d]) + a[j] * (fabs(v[j * D + d]) + fabs(o[d])));
                    out[d] = acc;
                }
            }
        }
    }
    free(o);
    free(q);
    free(a);
    free(w);
    free(v);
    free(k);
}

double kb_attn_bytes(const kb_attn_shape *s)
{
    const double cache = 2.0 * (double)(s->T * s->kv_heads * s->D) * (s->kv_f16 ? 2.0 : 4.0);
    return cache + 2.0 * 4.0 * (double)(s->n_q * s->heads * s->D);
}

double kb_attn_flops(const kb_attn_shape *s)
{
    /* query i attends to p0 + i + 1 positions: on average p0 + (n_q + 1) / 2 */
    const double t_avg = (double)s->p0 + (double)(s->n_q + 1) / 2.0;
    return 4.0 * (double)s->heads * (double)s->n_q * t_avg * (double)s->D;
}
