/* mla_decode: DeepSeek-V3 multi-head latent attention at decode (KERNELS.md section 6;
 * the formulas are in mla_common.h). The reference is the unabsorbed definition, every head's
 * K and V rows built from the latent, in double. Its cost, H * T * (128 + v_dim) * R
 * multiply-adds, reaches minutes at 128 heads and long caches, so beyond
 * MLA_REF_UNABSORBED_MAX it computes the same sums regrouped by associativity, still in
 * double: q_nope . (W_UK c_t) = (W_UK^T q_nope) . c_t and sum_t p_t W_UV c_t =
 * W_UV sum_t p_t c_t (test_mla_reference pins the two groupings to 1e-12 of each other). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mla_common.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "kbench: mla reference: out of memory for %zu bytes\n", n);
        abort();
    }
    return p;
}

/* sum a[i] b[i] in double, four partial sums in a fixed order (throughput, not one chain) */
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

static int validate(const int64_t *p, char *err, size_t n)
{
    kb_mla_shape s;
    kb_mla_shape_of(p, &s);
    if (s.n_q > s.T) {
        snprintf(err, n, "n_q=%lld exceeds T=%lld: the query tokens are the last n_q cached "
                 "positions", (long long)s.n_q, (long long)s.T);
        return -1;
    }
    if (s.R % 64) {
        snprintf(err, n, "rank=%lld: must be a multiple of 64", (long long)s.R);
        return -1;
    }
    if (s.rope % 16) {
        snprintf(err, n, "rope=%lld: must be a multiple of 16", (long long)s.rope);
        return -1;
    }
    if (s.v_dim % 16) {
        snprintf(err, n, "v_dim=%lld: must be a multiple of 16", (long long)s.v_dim);
        return -1;
    }
    return 0;
}

static void desc(kb_tensor *t, const char *name, kb_dtype dt, int64_t d0, int64_t d1, int64_t d2)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = d2 ? 3 : 2;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    t->bytes = (size_t)(d0 * d1 * (d2 ? d2 : 1)) * kb_dtype_size(dt);
}

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    kb_mla_shape s;
    kb_mla_shape_of(p, &s);
    const kb_dtype cd = s.cache_f16 ? KB_F16 : KB_BF16, wd = s.w_bf16 ? KB_BF16 : KB_F32;
    desc(&in[MLA_IN_QNOPE], "q_nope", KB_F32, s.n_q, s.H, MLA_NOPE);
    desc(&in[MLA_IN_QPE], "q_pe", KB_F32, s.n_q, s.H, s.rope);
    desc(&in[MLA_IN_C], "c", cd, s.T, s.R, 0);
    desc(&in[MLA_IN_KPE], "k_pe", cd, s.T, s.rope, 0);
    desc(&in[MLA_IN_WUK], "W_UK", wd, s.H, MLA_NOPE, s.R);
    desc(&in[MLA_IN_WUV], "W_UV", wd, s.H, s.v_dim, s.R);
    desc(&out[MLA_OUT], "out", KB_F32, s.n_q, s.H, s.v_dim);
    *ni = 6;
    *no = 1;
    return 0;
}

/* ---- inputs ------------------------------------------------------------------------------ */

/* Roughly N(0,1) from one draw: four uniform 16-bit fields summed, centred, scaled to unit
 * variance (Irwin-Hall, within +-3.47); a 131072-position cache holds 75 million values. */
static float normalish(kb_rng *r)
{
    uint64_t u = kb_rng_u64(r);
    double sum = (double)(u & 0xFFFF) + (double)((u >> 16) & 0xFFFF) +
                 (double)((u >> 32) & 0xFFFF) + (double)(u >> 48);
    return (float)((sum * (1.0 / 65536.0) - 2.0) * 1.7320508075688772);
}

static void put_cache(const kb_mla_shape *s, kb_tensor *t, int64_t i, float x)
{
    ((uint16_t *)t->data)[i] = s->cache_f16 ? kb_f32_to_f16(x) : kb_f32_to_bf16(x);
}

static void put_w(const kb_mla_shape *s, kb_tensor *t, int64_t i, float x)
{
    if (s->w_bf16)
        ((uint16_t *)t->data)[i] = kb_f32_to_bf16(x);
    else
        ((float *)t->data)[i] = x;
}

/* RANDOM: the latent c (RMS-normalized in the model) and k_pe ~ N(0, 1), W ~ N(0, 1/R) (so K
 * and V rows ~ N(0, 1)), q_nope ~ N(0, 1.3^2), q_pe ~ N(0, 1): at 128 heads, R = 512 and
 * rope = 64 the scaled scores have a standard deviation of about 2.3, a peaked softmax as in
 * trained models.
 * PEAKY: every query's q_pe is a common direction u (unit RMS) times a (plus noise), k_pe is
 * -a u (plus noise) but at three positions (one of them attended by every query) where it is
 * +a u, with a^2 = 12 / (s * rope): those dominate (scaled rope scores +12 against -12
 * elsewhere, before the no-rope part: weights of e^-24 and less).
 * OUTLIERS: R / 128 (at least 2) latent channels are 100x larger at every position; W_UK's
 * columns of those channels are 100x smaller (a trained projection absorbs a channel's scale),
 * so the scores stay as in RANDOM while the values and the sum of p c carry the outliers. */
static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    kb_mla_shape s;
    kb_mla_shape_of(p, &s);
    const int64_t H = s.H, T = s.T, R = s.R, rope = s.rope, nq = s.n_q;
    const float wsd = (float)(1.0 / sqrt((double)R));
    char *outl = calloc((size_t)R, 1); /* 1 for an outlier channel */
    if (!outl)
        abort();
    if (dist == KB_INPUTS_OUTLIERS) {
        const int64_t n = R / 128 > 2 ? R / 128 : 2;
        for (int64_t k = 0; k < n; k++)
            outl[kb_rng_u64(rng) % (uint64_t)R] = 1;
    }
    float *u = xmalloc(sizeof(float) * (size_t)rope);
    double un = 0;
    for (int64_t j = 0; j < rope; j++) {
        u[j] = normalish(rng);
        un += (double)u[j] * u[j];
    }
    for (int64_t j = 0; j < rope; j++)
        u[j] = (float)(u[j] / sqrt(un > 0 ? un : 1.0) * sqrt((double)rope)); /* unit RMS */
    const int peaky = dist == KB_INPUTS_PEAKY;
    const float a = (float)sqrt(12.0 / (kb_mla_scale(&s) * (double)rope));

    float *qn = in[MLA_IN_QNOPE].data, *qp = in[MLA_IN_QPE].data;
    for (int64_t i = 0; i < nq * H * MLA_NOPE; i++)
        qn[i] = 1.3f * normalish(rng);
    for (int64_t i = 0; i < nq * H; i++)
        for (int64_t j = 0; j < rope; j++)
            qp[i * rope + j] = peaky ? a * u[j] + 0.3f * normalish(rng) : normalish(rng);

    /* peaky: the dominant positions (the first one attended by every query) */
    int64_t dom[3] = {(int64_t)(kb_rng_u64(rng) % (uint64_t)(T - nq + 1)),
                      (int64_t)(kb_rng_u64(rng) % (uint64_t)T),
                      (int64_t)(kb_rng_u64(rng) % (uint64_t)T)};
    for (int64_t t = 0; t < T; t++) {
        for (int64_t r = 0; r < R; r++)
            put_cache(&s, &in[MLA_IN_C], t * R + r, normalish(rng) * (outl[r] ? 100.0f : 1.0f));
        const int d = peaky && (t == dom[0] || t == dom[1] || t == dom[2]);
        for (int64_t j = 0; j < rope; j++) {
            const float x = peaky ? (d ? a : -a) * u[j] + 0.3f * normalish(rng)
                                  : normalish(rng);
            put_cache(&s, &in[MLA_IN_KPE], t * rope + j, x);
        }
    }
    for (int64_t i = 0; i < H * MLA_NOPE; i++)
        for (int64_t r = 0; r < R; r++)
            put_w(&s, &in[MLA_IN_WUK], i * R + r,
                  wsd * normalish(rng) * (outl[r] ? 0.01f : 1.0f));
    for (int64_t i = 0; i < H * s.v_dim * R; i++)
        put_w(&s, &in[MLA_IN_WUV], i, wsd * normalish(rng));
    free(u);
    free(outl);
}

/* ---- the reference ----------------------------------------------------------------------- */

/* Rows [n][len] of a cache or weight tensor from element off, as double. */
static void rows_cache(const kb_mla_shape *s, const kb_tensor *t, int64_t off, int64_t n,
                       double *dst)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = kb_mla_cache_at(s, t, off + i);
}

static void rows_w(const kb_mla_shape *s, const kb_tensor *t, int64_t off, int64_t n, double *dst)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = kb_mla_w_at(s, t, off + i);
}

/* The definition: per head, K_h[t] = [W_UK c_t ; k_pe_t] and V_h[t] = W_UV c_t for every
 * position, the scores of every query, the softmax with its maximum subtracted, then
 * sum_t p_t V_h[t]. */
static void ref_unabsorbed(const kb_mla_shape *s, const kb_tensor *in, kb_tensor *out)
{
    const int64_t H = s->H, T = s->T, nq = s->n_q, R = s->R, rope = s->rope, vd = s->v_dim;
    const double scale = kb_mla_scale(s);
    double *wk = xmalloc(sizeof(double) * (size_t)(MLA_NOPE * R));
    double *wv = xmalloc(sizeof(double) * (size_t)(vd * R));
    double *c = xmalloc(sizeof(double) * (size_t)R);
    double *kpe = xmalloc(sizeof(double) * (size_t)rope);
    double *k = xmalloc(sizeof(double) * MLA_NOPE);
    double *v = xmalloc(sizeof(double) * (size_t)vd);
    double *q = xmalloc(sizeof(double) * (size_t)(nq * (MLA_NOPE + rope)));
    double *sc = xmalloc(sizeof(double) * (size_t)(nq * T));
    double *o = xmalloc(sizeof(double) * (size_t)(nq * vd));
    double *l = xmalloc(sizeof(double) * (size_t)nq);
    const float *qn = in[MLA_IN_QNOPE].data, *qp = in[MLA_IN_QPE].data;
    for (int64_t h = 0; h < H; h++) {
        rows_w(s, &in[MLA_IN_WUK], h * MLA_NOPE * R, MLA_NOPE * R, wk);
        rows_w(s, &in[MLA_IN_WUV], h * vd * R, vd * R, wv);
        for (int64_t i = 0; i < nq; i++) { /* q_h = [q_nope ; q_pe] of query i */
            double *qi = q + i * (MLA_NOPE + rope);
            for (int64_t d = 0; d < MLA_NOPE; d++)
                qi[d] = qn[(i * H + h) * MLA_NOPE + d];
            for (int64_t j = 0; j < rope; j++)
                qi[MLA_NOPE + j] = qp[(i * H + h) * rope + j];
        }
        for (int64_t t = 0; t < T; t++) {
            rows_cache(s, &in[MLA_IN_C], t * R, R, c);
            rows_cache(s, &in[MLA_IN_KPE], t * rope, rope, kpe);
            for (int64_t d = 0; d < MLA_NOPE; d++)
                k[d] = dot(wk + d * R, c, R);
            for (int64_t i = 0; i < nq; i++) {
                const double *qi = q + i * (MLA_NOPE + rope);
                if (t < kb_mla_len(s, i))
                    sc[i * T + t] = (dot(qi, k, MLA_NOPE) + dot(qi + MLA_NOPE, kpe, rope)) * scale;
            }
        }
        for (int64_t i = 0; i < nq; i++) {
            const int64_t n = kb_mla_len(s, i);
            double m = -INFINITY;
            for (int64_t t = 0; t < n; t++)
                m = sc[i * T + t] > m ? sc[i * T + t] : m;
            l[i] = 0;
            for (int64_t t = 0; t < n; t++) {
                sc[i * T + t] = exp(sc[i * T + t] - m);
                l[i] += sc[i * T + t];
            }
        }
        memset(o, 0, sizeof(double) * (size_t)(nq * vd));
        for (int64_t t = 0; t < T; t++) {
            rows_cache(s, &in[MLA_IN_C], t * R, R, c);
            for (int64_t j = 0; j < vd; j++)
                v[j] = dot(wv + j * R, c, R);
            for (int64_t i = 0; i < nq; i++)
                if (t < kb_mla_len(s, i))
                    for (int64_t j = 0; j < vd; j++)
                        o[i * vd + j] += sc[i * T + t] * v[j];
        }
        for (int64_t i = 0; i < nq; i++) /* l >= 1: exp(0) at the max */
            for (int64_t j = 0; j < vd; j++)
                ((float *)out[MLA_OUT].data)[(i * H + h) * vd + j] = (float)(o[i * vd + j] / l[i]);
    }
    free(l);
    free(o);
    free(sc);
    free(q);
    free(v);
    free(k);
    free(kpe);
    free(c);
    free(wv);
    free(wk);
}

#define MLA_REF_TB 64 /* positions converted to double at a time */

/* The absorbed grouping for every row (query i, head h; row = i * H + h), in double:
 * q' = W_UK^T q_nope, scores q'.c_t + q_pe.k_pe_t (scaled), p = softmax, then per row
 * ov[r] = sum_t p_t c_t[r] (when ov) and ova[r] = sum_t p_t |c_t[r]| (when ova). */
static void absorbed_rows(const kb_mla_shape *s, const kb_tensor *in, double *ov, double *ova)
{
    const int64_t H = s->H, T = s->T, nq = s->n_q, R = s->R, rope = s->rope, rows = nq * H;
    const double scale = kb_mla_scale(s);
    double *qa = xmalloc(sizeof(double) * (size_t)(rows * (R + rope))); /* [row][q' ; q_pe] */
    double *wk = xmalloc(sizeof(double) * (size_t)(MLA_NOPE * R));
    double *cb = xmalloc(sizeof(double) * (size_t)(MLA_REF_TB * (R + rope))); /* [t][c ; k_pe] */
    double *sc = xmalloc(sizeof(double) * (size_t)(rows * T));
    double *m = xmalloc(sizeof(double) * (size_t)rows);
    double *l = xmalloc(sizeof(double) * (size_t)rows);
    const float *qn = in[MLA_IN_QNOPE].data, *qp = in[MLA_IN_QPE].data;
    for (int64_t h = 0; h < H; h++) {
        rows_w(s, &in[MLA_IN_WUK], h * MLA_NOPE * R, MLA_NOPE * R, wk);
        for (int64_t i = 0; i < nq; i++) {
            double *a = qa + (i * H + h) * (R + rope);
            for (int64_t r = 0; r < R; r++) {
                double x = 0;
                for (int64_t d = 0; d < MLA_NOPE; d++)
                    x += wk[d * R + r] * qn[(i * H + h) * MLA_NOPE + d];
                a[r] = x;
            }
            for (int64_t j = 0; j < rope; j++)
                a[R + j] = qp[(i * H + h) * rope + j];
        }
    }
    /* two passes over the cache, a block of positions at a time: scores, then the sums */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) { /* the softmax of every row */
            for (int64_t row = 0; row < rows; row++) {
                const int64_t n = kb_mla_len(s, row / H);
                double mx = -INFINITY, sum = 0;
                for (int64_t t = 0; t < n; t++)
                    mx = sc[row * T + t] > mx ? sc[row * T + t] : mx;
                for (int64_t t = 0; t < n; t++)
                    sum += exp(sc[row * T + t] - mx);
                m[row] = mx;
                l[row] = sum;
            }
            if (ov)
                memset(ov, 0, sizeof(double) * (size_t)(rows * R));
            if (ova)
                memset(ova, 0, sizeof(double) * (size_t)(rows * R));
        }
        for (int64_t t0 = 0; t0 < T; t0 += MLA_REF_TB) {
            const int64_t nt = T - t0 < MLA_REF_TB ? T - t0 : MLA_REF_TB;
            for (int64_t t = 0; t < nt; t++) {
                rows_cache(s, &in[MLA_IN_C], (t0 + t) * R, R, cb + t * (R + rope));
                rows_cache(s, &in[MLA_IN_KPE], (t0 + t) * rope, rope, cb + t * (R + rope) + R);
            }
            for (int64_t row = 0; row < rows; row++) {
                const int64_t n = kb_mla_len(s, row / H);
                for (int64_t t = 0; t < nt && t0 + t < n; t++) {
                    const double *ct = cb + t * (R + rope);
                    if (pass == 0) {
                        sc[row * T + t0 + t] = dot(qa + row * (R + rope), ct, R + rope) * scale;
                        continue;
                    }
                    const double w = exp(sc[row * T + t0 + t] - m[row]) / l[row];
                    for (int64_t r = 0; r < R; r++) {
                        if (ov)
                            ov[row * R + r] += w * ct[r];
                        if (ova)
                            ova[row * R + r] += w * fabs(ct[r]);
                    }
                }
            }
        }
    }
    free(l);
    free(m);
    free(sc);
    free(cb);
    free(wk);
    free(qa);
}

/* out = W_UV ov per row (ov already normalized). */
static void ref_absorbed(const kb_mla_shape *s, const kb_tensor *in, kb_tensor *out)
{
    const int64_t H = s->H, nq = s->n_q, R = s->R, vd = s->v_dim;
    double *ov = xmalloc(sizeof(double) * (size_t)(nq * H * R));
    double *wv = xmalloc(sizeof(double) * (size_t)(vd * R));
    absorbed_rows(s, in, ov, NULL);
    for (int64_t h = 0; h < H; h++) {
        rows_w(s, &in[MLA_IN_WUV], h * vd * R, vd * R, wv);
        for (int64_t i = 0; i < nq; i++)
            for (int64_t j = 0; j < vd; j++)
                ((float *)out[MLA_OUT].data)[(i * H + h) * vd + j] =
                    (float)dot(wv + j * R, ov + (i * H + h) * R, R);
    }
    free(wv);
    free(ov);
}

void kb_mla_reference_form(const int64_t *p, const kb_tensor *in, kb_tensor *out, int unabsorbed)
{
    kb_mla_shape s;
    kb_mla_shape_of(p, &s);
    if (unabsorbed)
        ref_unabsorbed(&s, in, out);
    else
        ref_absorbed(&s, in, out);
}

static void reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    kb_mla_shape s;
    kb_mla_shape_of(p, &s);
    const double work = (double)s.H * (double)s.T * (double)(MLA_NOPE + s.v_dim) * (double)s.R;
    kb_mla_reference_form(p, in, out, work <= (double)MLA_REF_UNABSORBED_MAX);
}

/* The scale of out[i][h][v]: sum_r |W_UV[h][v][r]| * sum_t p_t |c_t[r]|, the magnitudes of the
 * terms of out = sum_t p_t sum_r W_UV[v][r] c_t[r] (p from the double softmax). A kernel's
 * score errors perturb p by a relative amount and so also stay within a multiple of it. */
static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    kb_mla_shape s;
    kb_mla_shape_of(p, &s);
    const int64_t H = s.H, nq = s.n_q, R = s.R, vd = s.v_dim;
    (void)o;
    double *ova = xmalloc(sizeof(double) * (size_t)(nq * H * R));
    double *wv = xmalloc(sizeof(double) * (size_t)(vd * R));
    absorbed_rows(&s, in, NULL, ova);
    for (int64_t h = 0; h < H; h++) {
        rows_w(&s, &in[MLA_IN_WUV], h * vd * R, vd * R, wv);
        for (int64_t j = 0; j < vd * R; j++)
            wv[j] = fabs(wv[j]);
        for (int64_t i = 0; i < nq; i++)
            for (int64_t j = 0; j < vd; j++)
                scale[(i * H + h) * vd + j] = dot(wv + j * R, ova + (i * H + h) * R, R);
    }
    free(wv);
    free(ova);
}

/* ---- cost model -------------------------------------------------------------------------- */

/* The cache once, both projections once, q and out. */
static double bytes(const int64_t *p)
{
    kb_mla_shape s;
    kb_mla_shape_of(p, &s);
    const double cache = (double)s.T * (double)(s.R + s.rope) * 2.0;
    const double w = (double)s.H * (double)(MLA_NOPE + s.v_dim) * (double)s.R * (s.w_bf16 ? 2 : 4);
    const double q = (double)(s.n_q * s.H) * (double)(MLA_NOPE + s.rope + s.v_dim) * 4.0;
    return cache + w + q;
}

/* Absorbed: q' (2 * 128 * R), scores (2 * (R + rope) per position), sum p c (2 * R per
 * position), W_UV ov (2 * v_dim * R), per query and head; query i attends T - n_q + i + 1. */
static double flops(const int64_t *p)
{
    kb_mla_shape s;
    kb_mla_shape_of(p, &s);
    const double t_avg = (double)(s.T - s.n_q) + (double)(s.n_q + 1) / 2.0;
    const double per_row = 2.0 * t_avg * (double)(2 * s.R + s.rope) +
                           2.0 * (double)(MLA_NOPE + s.v_dim) * (double)s.R;
    return per_row * (double)(s.n_q * s.H);
}

/* The conditioned tolerance of f32 kernels. Their errors: the scores (q' in f32, then dot
 * products of length R + rope) move p by a relative amount, |delta s| * 2^-23-ish times the
 * sum of the score's term magnitudes, and the sums of p c and of W_UV ov round at 2^-24 per
 * term. Measured with avx512 and vk (lavapipe) on random, peaky and outlier inputs up to
 * T = 131072: at most ~1e-6 (see the report in results/zen4-2c/mla/README.md); 2e-5 leaves
 * an order of magnitude for other summation orders and still fails a kernel that drops one
 * position of a 4096-long cache (~2e-4, test_mla_cpu). */
const kb_family kb_family_mla_decode = {
    .name = "mla_decode",
    .suite = "mla",
    .help = "DeepSeek-V3 MLA decode: n_q queries x heads over a latent cache c[T][R] + k_pe[T][rope] "
            "(bf16/f16), W_UK/W_UV (f32/bf16); kernels absorb W_UK into q and W_UV after the "
            "sum inside the timed run; s = mscale^2/sqrt(128+rope), mscale = 0.1 ln 40 + 1",
    .nparams = 8,
    .params = {{"heads", 128, 1, MLA_MAX_HEADS, "attention heads H"},
               {"T", 4096, 1, MLA_MAX_T, "cached positions, the n_q query tokens' own included"},
               {"n_q", 1, 1, MLA_MAX_NQ, "query tokens, the last n_q positions (causal)"},
               {"rank", 512, 64, 1024, "R = kv_lora_rank, the latent width; a multiple of 64"},
               {"rope", 64, 16, 128, "roped key width (qk_rope_head_dim); a multiple of 16"},
               {"v_dim", 128, 16, 256, "value head width; a multiple of 16"},
               {"cache", 0, 0, 1, "latent and k_pe cache: 0 bf16, 1 f16"},
               {"w_bf16", 1, 0, 1, "W_UK and W_UV: 1 bf16, 0 f32"}},
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .inputs = KB_INPUTS_BIT(KB_INPUTS_PEAKY) | KB_INPUTS_BIT(KB_INPUTS_OUTLIERS),
    .reference = reference,
    .bytes = bytes,
    .flops = flops,
    .rotate_mask = (1u << MLA_IN_C) | (1u << MLA_IN_KPE) | (1u << MLA_IN_WUK) | (1u << MLA_IN_WUV),
    .tol_nmse = 1e-8,
    .condition = condition,
    .tol_cond = MLA_TOL_COND,
    .test_shape = "heads=3 T=37 n_q=2 rank=64 rope=16 v_dim=32",
};
