#include "mma_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "affine_formats.h"
#include "ggml_formats.h"

static const char *const fmt_name[] = {"q8_0", "q4_0", "a4", "f16", "bf16"};

static int64_t row_bytes(kb_mma_fmt fmt, int64_t K)
{
    switch (fmt) {
    case KB_MMA_Q8_0: return K / QK * (int64_t)sizeof(block_q8_0);
    case KB_MMA_Q4_0: return K / QK * (int64_t)sizeof(block_q4_0);
    case KB_MMA_A4: return K / 2;
    default: return 2 * K; /* f16, bf16 */
    }
}

void kb_mma_get(const int64_t *p, kb_mma_fmt fmt, const kb_tensor *in, kb_tensor *out, kb_mma *s)
{
    memset(s, 0, sizeof *s);
    s->fmt = fmt;
    s->M = p[MMA_M];
    s->N = p[MMA_N];
    s->K = p[MMA_K];
    s->group = fmt == KB_MMA_A4 ? p[MMA_GROUP] : QK;
    s->row_bytes = row_bytes(fmt, s->K);
    s->n_in = fmt == KB_MMA_A4 ? 4 : 2;
    if (in) {
        s->w = in[0].data;
        if (fmt == KB_MMA_A4) {
            s->scales = in[1].data;
            s->biases = in[2].data;
        }
        s->a = in[s->n_in - 1].data;
    }
    if (out)
        s->c = out[MMA_C].data;
}

int kb_mma_from_case(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_mma *s)
{
    if (strncmp(c->fam->name, "mma_", 4) != 0)
        return -1;
    for (int f = 0; f < 5; f++)
        if (strcmp(c->fam->name + 4, fmt_name[f]) == 0) {
            kb_mma_get(c->p, (kb_mma_fmt)f, in, out, s);
            return 0;
        }
    return -1;
}

int kb_mma_validate(const int64_t *p, kb_mma_fmt fmt, char *err, size_t errlen)
{
    const int64_t K = p[MMA_K];
    if (fmt == KB_MMA_A4) {
        const int64_t g = p[MMA_GROUP];
        if (g != 32 && g != 64 && g != 128) {
            snprintf(err, errlen, "group=%lld: must be 32, 64 or 128", (long long)g);
            return -1;
        }
        if (K % g != 0) {
            snprintf(err, errlen, "K=%lld is not a multiple of group=%lld", (long long)K,
                     (long long)g);
            return -1;
        }
    }
    /* Q8_0/Q4_0: the block; f16/bf16/a4: the kernels' K step (as matvec_bf16 asks of cols) */
    if (K % QK != 0) {
        snprintf(err, errlen, "K=%lld is not a multiple of 32%s", (long long)K,
                 fmt <= KB_MMA_Q4_0 ? " (the block size)" : "");
        return -1;
    }
    return 0;
}

static void desc(kb_tensor *t, const char *name, kb_dtype dt, int64_t d0, int64_t d1)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = 2;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->bytes = (size_t)(d0 * d1) * kb_dtype_size(dt);
}

int kb_mma_describe(const int64_t *p, kb_mma_fmt fmt, kb_tensor *in, int *n_in, kb_tensor *out,
                    int *n_out)
{
    kb_mma s;
    kb_mma_get(p, fmt, NULL, NULL, &s);
    int n = 0;
    switch (fmt) {
    case KB_MMA_Q8_0:
    case KB_MMA_Q4_0: desc(&in[n++], "W", KB_U8, s.N, s.row_bytes); break;
    case KB_MMA_A4:
        desc(&in[n++], "W", KB_I32, s.N, s.K / 8);
        desc(&in[n++], "scales", KB_BF16, s.N, s.K / s.group);
        desc(&in[n++], "biases", KB_BF16, s.N, s.K / s.group);
        break;
    case KB_MMA_F16: desc(&in[n++], "W", KB_F16, s.N, s.K); break;
    case KB_MMA_BF16: desc(&in[n++], "W", KB_BF16, s.N, s.K); break;
    }
    desc(&in[n++], "A", KB_F32, s.M, s.K);
    desc(&out[MMA_C], "C", KB_F32, s.M, s.N);
    *n_in = n;
    *n_out = 1;
    return 0;
}

/* ---- inputs ----------------------------------------------------------------------------- */

/* A scale for `extreme` inputs: mostly ordinary, some negative, some tiny (f16 subnormals for
 * an f16 scale, below 6.1e-5). */
static float extreme_scale(kb_rng *rng, float lo, float hi)
{
    const uint64_t r = kb_rng_u64(rng) % 8;
    const float mag = r == 0 ? kb_rng_uniform(rng, 1e-7f, 6e-5f) : kb_rng_uniform(rng, lo, hi);
    return r & 1 ? -mag : mag;
}

/* A 16-bit float of random bits with the exponent field in [0, emax] (0: zero and subnormals):
 * every mantissa pattern, both signs, magnitudes up to 2^(emax - bias + 1). */
static uint16_t random_bits16(kb_rng *rng, int mant_bits, unsigned emin, unsigned emax)
{
    const uint64_t r = kb_rng_u64(rng);
    unsigned e = (unsigned)(r % 4 == 0 ? 0 : emin + (r >> 2) % (emax - emin + 1));
    const unsigned m = (unsigned)(r >> 32) & ((1u << mant_bits) - 1);
    return (uint16_t)((r >> 63) << 15 | e << mant_bits | m);
}

static void generate_w(const kb_mma *s, kb_tensor *in, kb_rng *rng, int extreme)
{
    const int64_t nblk = s->N * s->K / QK;
    switch (s->fmt) {
    case KB_MMA_Q8_0: {
        block_q8_0 *w = in[0].data;
        for (int64_t b = 0; b < nblk; b++) {
            const float d = extreme ? extreme_scale(rng, 0.002f, 0.02f)
                                    : kb_rng_uniform(rng, 0.002f, 0.02f);
            w[b].d = kb_f32_to_f16(d);
            for (int i = 0; i < QK; i++) /* random: the quantizer's -127..127; extreme: -128 too */
                w[b].qs[i] = (int8_t)(extreme ? (int)(kb_rng_u64(rng) & 0xFF) - 128
                                              : (int)(kb_rng_u64(rng) % 255) - 127);
        }
        break;
    }
    case KB_MMA_Q4_0: {
        block_q4_0 *w = in[0].data;
        for (int64_t b = 0; b < nblk; b++) {
            const float d = extreme ? extreme_scale(rng, 0.005f, 0.05f)
                                    : kb_rng_uniform(rng, -0.05f, 0.05f); /* signed: d = m/-8 */
            w[b].d = kb_f32_to_f16(d);
            for (int j = 0; j < QK / 2; j++)
                w[b].qs[j] = (uint8_t)(kb_rng_u64(rng) & 0xFF);
        }
        break;
    }
    case KB_MMA_A4: {
        uint64_t *w = in[0].data; /* every bit pattern is a valid code */
        for (size_t i = 0; i < in[0].bytes / 8; i++)
            w[i] = kb_rng_u64(rng);
        uint16_t *sc = in[1].data, *bi = in[2].data;
        for (int64_t i = 0; i < s->N * (s->K / s->group); i++) {
            /* biases near -scale * 15 / 2, so that the weights centre near zero, as a
             * quantizer's bias = min puts them; extreme: negative and tiny scales, and the bias
             * anywhere in [-16, 16] scales */
            const float sf = extreme ? extreme_scale(rng, 1e-3f, 2e-2f)
                                     : kb_rng_uniform(rng, 1e-3f, 2e-2f);
            const float f = extreme ? kb_rng_uniform(rng, -1.0f, 1.0f) : kb_rng_uniform(rng, 0.4f, 0.6f);
            sc[i] = kb_f32_to_bf16(sf);
            bi[i] = kb_f32_to_bf16(-sf * 15.0f * f);
        }
        break;
    }
    case KB_MMA_F16:
    case KB_MMA_BF16: {
        uint16_t *w = in[0].data;
        const int f16 = s->fmt == KB_MMA_F16;
        for (int64_t i = 0; i < s->N * s->K; i++) {
            if (!extreme) /* weights of a linear layer: roughly N(0, 0.02^2) */
                w[i] = f16 ? kb_f32_to_f16(0.02f * kb_rng_normal(rng))
                           : kb_f32_to_bf16(0.02f * kb_rng_normal(rng));
            else /* random bit patterns up to |w| < 4: subnormals, zeros, every mantissa */
                w[i] = f16 ? random_bits16(rng, 10, 1, 16) : random_bits16(rng, 7, 97, 128);
        }
        break;
    }
    }
}

void kb_mma_generate(const int64_t *p, kb_mma_fmt fmt, kb_tensor *in, kb_rng *rng,
                     kb_inputs dist)
{
    kb_mma s;
    kb_mma_get(p, fmt, in, NULL, &s);
    generate_w(&s, in, rng, dist == KB_INPUTS_EXTREME);
    float *a = in[s.n_in - 1].data;
    for (int64_t i = 0; i < s.M * s.K; i++) /* activations after a norm: roughly unit scale */
        a[i] = dist == KB_INPUTS_ZEROS ? 0.0f : kb_rng_normal(rng);
    if (dist == KB_INPUTS_OUTLIERS) {
        /* a few channels (one in 256, at least two) 100x larger in every token, as LLM
         * activations have; they land in some 32-blocks and not others */
        const int64_t nch = s.K / 256 > 2 ? s.K / 256 : 2;
        for (int64_t j = 0; j < nch; j++) {
            const int64_t ch = (int64_t)(kb_rng_u64(rng) % (uint64_t)s.K);
            for (int64_t m = 0; m < s.M; m++)
                a[m * s.K + ch] *= 100.0f;
        }
    }
}

/* ---- the definition ------------------------------------------------------------------- */

void kb_mma_dequant_row(const kb_mma *s, int64_t n, double *w)
{
    const uint8_t *row = (const uint8_t *)s->w + n * s->row_bytes;
    switch (s->fmt) {
    case KB_MMA_Q8_0:
        for (int64_t b = 0; b < s->K / QK; b++) {
            const block_q8_0 *blk = (const block_q8_0 *)row + b;
            const double d = kb_f16_to_f32(blk->d);
            for (int i = 0; i < QK; i++)
                w[b * QK + i] = d * blk->qs[i];
        }
        break;
    case KB_MMA_Q4_0:
        for (int64_t b = 0; b < s->K / QK; b++) {
            const block_q4_0 *blk = (const block_q4_0 *)row + b;
            const double d = kb_f16_to_f32(blk->d);
            for (int j = 0; j < QK / 2; j++) {
                w[b * QK + j] = d * ((blk->qs[j] & 15) - 8);
                w[b * QK + j + 16] = d * ((blk->qs[j] >> 4) - 8);
            }
        }
        break;
    case KB_MMA_A4: {
        const int64_t ng = s->K / s->group;
        const uint16_t *sc = s->scales + n * ng, *bi = s->biases + n * ng;
        for (int64_t k = 0; k < s->K; k++)
            w[k] = (double)kb_aff_code((const uint32_t *)row, k, 4) *
                       kb_bf16_to_f32(sc[k / s->group]) +
                   kb_bf16_to_f32(bi[k / s->group]);
        break;
    }
    case KB_MMA_F16:
        for (int64_t k = 0; k < s->K; k++)
            w[k] = kb_f16_to_f32(((const uint16_t *)row)[k]);
        break;
    case KB_MMA_BF16:
        for (int64_t k = 0; k < s->K; k++)
            w[k] = kb_bf16_to_f32(((const uint16_t *)row)[k]);
        break;
    }
}

static double *alloc_row(int64_t K)
{
    double *w = malloc(sizeof(double) * (size_t)K);
    if (!w) {
        fprintf(stderr, "kbench: out of memory in the mma reference\n");
        abort();
    }
    return w;
}

void kb_mma_reference(const int64_t *p, kb_mma_fmt fmt, const kb_tensor *in, kb_tensor *out)
{
    kb_mma s;
    kb_mma_get(p, fmt, in, out, &s);
    double *w = alloc_row(s.K);
    for (int64_t n = 0; n < s.N; n++) {
        kb_mma_dequant_row(&s, n, w);
        for (int64_t m = 0; m < s.M; m++) {
            const float *a = s.a + m * s.K;
            double acc = 0; /* double: the reference is the truth, not a peer */
            for (int64_t k = 0; k < s.K; k++)
                acc += a[k] * w[k];
            s.c[m * s.N + n] = (float)acc;
        }
    }
    free(w);
}

/* ---- the conditioned check's scale ---------------------------------------------------------
 * scale[m,n] = sum_k |A[m,k] W[n,k]| costs as much as the reference, and the runner asks for it
 * at every check of every implementation: the last one computed is kept, keyed by the format,
 * the shape and a hash of every input byte (a case's inputs are the same at each check). */

static struct {
    uint64_t key;
    int64_t n;
    double *scale;
} cache;

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        h = (h ^ v) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

void kb_mma_condition(const int64_t *p, kb_mma_fmt fmt, const kb_tensor *in, int o,
                      double *scale)
{
    kb_mma s;
    kb_mma_get(p, fmt, in, NULL, &s);
    (void)o;
    uint64_t key = hash_bytes(0xcbf29ce484222325ull, p, sizeof(int64_t) * 4) ^ (uint64_t)fmt;
    for (int i = 0; i < s.n_in; i++)
        key = hash_bytes(key, in[i].data, in[i].bytes);
    const int64_t n = s.M * s.N;
    if (cache.scale && cache.key == key && cache.n == n) {
        memcpy(scale, cache.scale, sizeof(double) * (size_t)n);
        return;
    }
    double *w = alloc_row(s.K);
    for (int64_t j = 0; j < s.N; j++) {
        kb_mma_dequant_row(&s, j, w);
        for (int64_t k = 0; k < s.K; k++)
            w[k] = fabs(w[k]);
        int64_t m = 0;
        for (; m + 4 <= s.M; m += 4) { /* four tokens at a time: independent sums, same order */
            const float *a0 = s.a + m * s.K, *a1 = a0 + s.K, *a2 = a1 + s.K, *a3 = a2 + s.K;
            double t0 = 0, t1 = 0, t2 = 0, t3 = 0;
            for (int64_t k = 0; k < s.K; k++) {
                t0 += fabs((double)a0[k]) * w[k];
                t1 += fabs((double)a1[k]) * w[k];
                t2 += fabs((double)a2[k]) * w[k];
                t3 += fabs((double)a3[k]) * w[k];
            }
            scale[m * s.N + j] = t0;
            scale[(m + 1) * s.N + j] = t1;
            scale[(m + 2) * s.N + j] = t2;
            scale[(m + 3) * s.N + j] = t3;
        }
        for (; m < s.M; m++) {
            const float *a = s.a + m * s.K;
            double t = 0;
            for (int64_t k = 0; k < s.K; k++)
                t += fabs((double)a[k]) * w[k];
            scale[m * s.N + j] = t;
        }
    }
    free(w);
    double *keep = realloc(cache.scale, sizeof(double) * (size_t)n);
    if (keep) {
        memcpy(keep, scale, sizeof(double) * (size_t)n);
        cache.scale = keep;
        cache.key = key;
        cache.n = n;
    } else { /* no room to keep it: computed again next time */
        free(cache.scale);
        cache.scale = NULL;
    }
}

double kb_mma_bytes(const int64_t *p, kb_mma_fmt fmt)
{
    kb_mma s;
    kb_mma_get(p, fmt, NULL, NULL, &s);
    double w = (double)s.N * (double)s.row_bytes;
    if (fmt == KB_MMA_A4)
        w += 4.0 * (double)s.N * (double)(s.K / s.group);
    return w + 4.0 * (double)s.M * (double)s.K + 4.0 * (double)s.M * (double)s.N;
}

double kb_mma_flops(const int64_t *p)
{
    return 2.0 * (double)p[MMA_M] * (double)p[MMA_N] * (double)p[MMA_K];
}
