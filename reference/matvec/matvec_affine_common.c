#include "matvec_affine_common.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "affine_formats.h"

void kb_mva_get(const int64_t *p, int bits, kb_mva *s)
{
    const int bf = bits == MVA_BF16_BITS;
    memset(s, 0, sizeof *s);
    s->bits = bits;
    s->rows = p[AF_ROWS];
    s->cols = p[AF_COLS];
    s->tokens = p[AF_TOKENS];
    s->group = bf ? 0 : p[AF_GROUP];
    s->ngroups = bf ? 0 : s->cols / s->group;
    s->experts = (int)(bf ? p[BF_EXPERTS] : p[AF_EXPERTS]);
    const int64_t ne = bf ? p[BF_NEXPERTS] : p[AF_NEXPERTS];
    s->shared_x = s->experts ? (int)(bf ? p[BF_SHARED_X] : p[AF_SHARED_X]) : 1;
    s->k = s->experts ? s->experts : 1;
    s->e = s->experts ? (ne ? ne : s->k) : 1;
    s->row_bytes = s->cols * bits / 8;
    s->mat_bytes = s->rows * (s->row_bytes + 4 * s->ngroups);
}

int kb_mva_validate(const int64_t *p, int bits, char *err, size_t errlen)
{
    const int bf = bits == MVA_BF16_BITS;
    const int64_t cols = p[AF_COLS];
    const int64_t experts = bf ? p[BF_EXPERTS] : p[AF_EXPERTS];
    const int64_t ne = bf ? p[BF_NEXPERTS] : p[AF_NEXPERTS];
    const int64_t shared = bf ? p[BF_SHARED_X] : p[AF_SHARED_X];
    if (bf) {
        if (cols % 32 != 0) {
            snprintf(err, errlen, "cols=%lld is not a multiple of 32", (long long)cols);
            return -1;
        }
    } else {
        const int64_t g = p[AF_GROUP];
        if (g != 32 && g != 64 && g != 128) {
            snprintf(err, errlen, "group=%lld: must be 32, 64 or 128", (long long)g);
            return -1;
        }
        if (cols % g != 0) {
            snprintf(err, errlen, "cols=%lld is not a multiple of group=%lld", (long long)cols,
                     (long long)g);
            return -1;
        }
        if (cols % (32 / bits) != 0) { /* implied by the group; stated for the format's sake */
            snprintf(err, errlen, "cols=%lld does not fill whole u32 words of %d codes",
                     (long long)cols, 32 / bits);
            return -1;
        }
    }
    if (experts == 0 && ne != 0) {
        snprintf(err, errlen, "n_experts=%lld needs experts >= 1", (long long)ne);
        return -1;
    }
    if (experts == 0 && shared == 0) {
        snprintf(err, errlen, "shared_x=0 (one input per expert) needs experts >= 1");
        return -1;
    }
    if (experts > 0 && ne != 0 && experts > ne) {
        snprintf(err, errlen, "experts=%lld > n_experts=%lld: idx must pick distinct matrices",
                 (long long)experts, (long long)ne);
        return -1;
    }
    return 0;
}

static void desc(kb_tensor *t, const char *name, kb_dtype dt, int ndim, int64_t d0, int64_t d1,
                 int64_t d2)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = ndim;
    const int64_t d[3] = {d0, d1, d2};
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = d[i];
        n *= (size_t)d[i];
    }
    t->bytes = n * kb_dtype_size(dt);
}

/* [E,] rows, n: the E axis only with experts. */
static void desc_mat(kb_tensor *t, const char *name, kb_dtype dt, const kb_mva *s, int64_t n)
{
    if (s->experts)
        desc(t, name, dt, 3, s->e, s->rows, n);
    else
        desc(t, name, dt, 2, s->rows, n, 0);
}

int kb_mva_describe(const int64_t *p, int bits, kb_tensor *in, int *n_in, kb_tensor *out,
                    int *n_out)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    int n = 0;
    if (bits == MVA_BF16_BITS) {
        desc_mat(&in[n++], "W", KB_BF16, &s, s.cols);
        snprintf(in[n - 1].elem, sizeof in[n - 1].elem, "bf16 bits (f32 = bits << 16)");
    } else {
        desc_mat(&in[n++], "W", KB_U32, &s, s.cols * bits / 32);
        snprintf(in[n - 1].elem, sizeof in[n - 1].elem, "u32 words of %d-bit codes, LSB first", bits);
        desc_mat(&in[n++], "scales", KB_BF16, &s, s.ngroups);
        snprintf(in[n - 1].elem, sizeof in[n - 1].elem, "bf16 bits (f32 = bits << 16)");
        desc_mat(&in[n++], "biases", KB_BF16, &s, s.ngroups);
        snprintf(in[n - 1].elem, sizeof in[n - 1].elem, "bf16 bits (f32 = bits << 16)");
    }
    if (s.shared_x)
        desc(&in[n++], "x", KB_F32, 2, s.tokens, s.cols, 0);
    else
        desc(&in[n++], "x", KB_F32, 3, s.k, s.tokens, s.cols);
    if (s.experts) {
        desc(&in[n++], "idx", KB_I32, 1, s.k, 0, 0);
        snprintf(in[n - 1].elem, sizeof in[n - 1].elem, "expert index (distinct, < n_experts)");
    }
    if (s.experts)
        desc(&out[0], "y", KB_F32, 3, s.k, s.tokens, s.rows);
    else
        desc(&out[0], "y", KB_F32, 2, s.tokens, s.rows, 0);
    *n_in = n;
    *n_out = 1;
    return 0;
}

/* A bf16 weight for the EXTREME distribution: normal ones, bf16 subnormals (below 2^-126),
 * large ones, both signs. */
static float extreme_weight(kb_rng *rng, int64_t i)
{
    const float sign = kb_rng_u64(rng) & 1 ? -1.0f : 1.0f;
    switch (i % 4) {
    case 0: return sign * kb_rng_uniform(rng, 1e-40f, 1e-38f); /* subnormal */
    case 1: return sign * kb_rng_uniform(rng, 1.0f, 100.0f);
    default: return 0.02f * kb_rng_normal(rng);
    }
}

void kb_mva_generate(const int64_t *p, int bits, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    const int bf = bits == MVA_BF16_BITS, extreme = dist == KB_INPUTS_EXTREME;
    const int ix = bf ? BF_X : AF_X, iidx = bf ? BF_IDX : AF_IDX;
    if (bf) {
        /* weights of a linear layer: roughly N(0, 0.02^2), as bf16 */
        uint16_t *w = in[BF_W].data;
        for (int64_t i = 0; i < s.e * s.rows * s.cols; i++)
            w[i] = kb_f32_to_bf16(extreme ? extreme_weight(rng, i) : 0.02f * kb_rng_normal(rng));
    } else {
        /* every bit pattern is a valid code: random words */
        uint64_t *w = in[AF_W].data; /* bytes are a multiple of 8: cols >= 32 codes of >= 2 bits */
        for (size_t i = 0; i < in[AF_W].bytes / 8; i++)
            w[i] = kb_rng_u64(rng);
        /* scales as in quantized LLM weights; biases near -scale * (2^b - 1) / 2, so that the
         * weights centre near zero, as a quantizer's bias = min would put them */
        uint16_t *sc = in[AF_S].data, *bi = in[AF_B].data;
        const float qmax = (float)((1 << bits) - 1);
        for (int64_t i = 0; i < s.e * s.rows * s.ngroups; i++) {
            float sf = kb_rng_uniform(rng, 1e-3f, 2e-2f);
            if (extreme) /* negative, tiny (bf16 subnormal) and large scales */
                sf = (kb_rng_u64(rng) & 1 ? -1.0f : 1.0f) *
                     (i % 3 == 0 ? kb_rng_uniform(rng, 1e-40f, 1e-38f) : kb_rng_uniform(rng, 1e-3f, 4.0f));
            sc[i] = kb_f32_to_bf16(sf);
            bi[i] = kb_f32_to_bf16(-sf * qmax * kb_rng_uniform(rng, 0.4f, 0.6f));
        }
        if (extreme) { /* the lowest and the highest code in every group */
            uint32_t *wd = in[AF_W].data;
            const int64_t words_row = s.cols * bits / 32, per = 32 / bits;
            for (int64_t row = 0; row < s.e * s.rows; row++)
                for (int64_t g = 0; g < s.ngroups; g++) {
                    int64_t j0 = g * s.group + (int64_t)(kb_rng_u64(rng) % (uint64_t)s.group), j1 = j0 ^ 1;
                    uint32_t *w0 = &wd[row * words_row + j0 / per], *w1 = &wd[row * words_row + j1 / per];
                    const uint32_t m = (1u << bits) - 1;
                    *w0 &= ~(m << (bits * (j0 % per))); /* code 0 */
                    *w1 |= m << (bits * (j1 % per));    /* code 2^b - 1 */
                }
        }
    }
    float *x = in[ix].data;
    const int64_t nx = kb_tensor_numel(&in[ix]);
    for (int64_t i = 0; i < nx; i++)
        x[i] = dist == KB_INPUTS_ZEROS ? 0.0f : kb_rng_normal(rng); /* after a norm: unit scale */
    if (dist == KB_INPUTS_OUTLIERS) /* about one channel in 128 100x larger, in every vector */
        for (int64_t k = 0; k < (s.cols / 128 > 0 ? s.cols / 128 : 1); k++) {
            int64_t c = (int64_t)(kb_rng_u64(rng) % (uint64_t)s.cols);
            for (int64_t v = 0; v < nx / s.cols; v++)
                x[v * s.cols + c] *= 100.0f;
        }
    if (s.experts) {
        /* K distinct matrices of E: the first K of a partial Fisher-Yates shuffle */
        int32_t perm[MVA_MAX_E], *idx = in[iidx].data;
        for (int i = 0; i < s.e; i++)
            perm[i] = i;
        for (int i = 0; i < s.k; i++) {
            int j = i + (int)(kb_rng_u64(rng) % (uint64_t)(s.e - i));
            int32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
            idx[i] = perm[i];
        }
    }
}

/* Row r of matrix m, dequantized by the definition (affine_formats.h / bf16 -> f32) in double. */
static void dequant_row(const kb_mva *s, const kb_tensor *in, int64_t m, int64_t r, double *w)
{
    const int64_t row = m * s->rows + r;
    if (s->bits == MVA_BF16_BITS) {
        const uint16_t *wr = (const uint16_t *)in[BF_W].data + row * s->cols;
        for (int64_t c = 0; c < s->cols; c++)
            w[c] = kb_bf16_to_f32(wr[c]);
        return;
    }
    const uint32_t *wr = (const uint32_t *)in[AF_W].data + row * (s->cols * s->bits / 32);
    const uint16_t *sc = (const uint16_t *)in[AF_S].data + row * s->ngroups;
    const uint16_t *bi = (const uint16_t *)in[AF_B].data + row * s->ngroups;
    for (int64_t c = 0; c < s->cols; c++)
        w[c] = (double)kb_aff_code(wr, c, s->bits) * kb_bf16_to_f32(sc[c / s->group]) +
               kb_bf16_to_f32(bi[c / s->group]);
}

void kb_mva_reference(const int64_t *p, int bits, const kb_tensor *in, kb_tensor *out)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    const int bf = bits == MVA_BF16_BITS;
    const float *xall = in[bf ? BF_X : AF_X].data;
    const int32_t *idx = s.experts ? in[bf ? BF_IDX : AF_IDX].data : NULL;
    float *yall = out[MVA_Y].data;
    double *w = malloc(sizeof(double) * (size_t)s.cols);
    if (!w) {
        fprintf(stderr, "kbench: out of memory in the matvec reference\n");
        abort();
    }
    for (int64_t k = 0; k < s.k; k++) {
        const int64_t m = idx ? idx[k] : 0;
        const float *x = xall + (s.shared_x ? 0 : k * s.tokens * s.cols);
        float *y = yall + k * s.tokens * s.rows;
        for (int64_t r = 0; r < s.rows; r++) {
            dequant_row(&s, in, m, r, w);
            for (int64_t t = 0; t < s.tokens; t++) {
                double acc = 0; /* double: the reference is the truth, not a peer */
                for (int64_t c = 0; c < s.cols; c++)
                    acc += w[c] * x[t * s.cols + c];
                y[t * s.rows + r] = (float)acc;
            }
        }
    }
    free(w);
}

void kb_mva_condition(const int64_t *p, int bits, const kb_tensor *in, double *scale)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    const int bf = bits == MVA_BF16_BITS;
    const float *xall = in[bf ? BF_X : AF_X].data;
    const int32_t *idx = s.experts ? in[bf ? BF_IDX : AF_IDX].data : NULL;
    double *w = malloc(sizeof(double) * (size_t)s.cols);
    if (!w)
        abort();
    for (int64_t k = 0; k < s.k; k++) {
        const int64_t m = idx ? idx[k] : 0;
        const float *x = xall + (s.shared_x ? 0 : k * s.tokens * s.cols);
        for (int64_t r = 0; r < s.rows; r++) {
            const int64_t row = m * s.rows + r;
            if (bf) {
                dequant_row(&s, in, m, r, w);
                for (int64_t c = 0; c < s.cols; c++)
                    w[c] = fabs(w[c]);
            } else { /* |q s| + |b|: kernels sum q s x and b x apart (bias through sum(x)) */
                const uint32_t *wr = (const uint32_t *)in[AF_W].data + row * (s.cols * s.bits / 32);
                const uint16_t *sc = (const uint16_t *)in[AF_S].data + row * s.ngroups;
                const uint16_t *bi = (const uint16_t *)in[AF_B].data + row * s.ngroups;
                for (int64_t c = 0; c < s.cols; c++)
                    w[c] = fabs((double)kb_aff_code(wr, c, s.bits) * kb_bf16_to_f32(sc[c / s.group])) +
                           fabs((double)kb_bf16_to_f32(bi[c / s.group]));
            }
            for (int64_t t = 0; t < s.tokens; t++) {
                double acc = 0;
                for (int64_t c = 0; c < s.cols; c++)
                    acc += w[c] * fabs((double)x[t * s.cols + c]);
                scale[(k * s.tokens + t) * s.rows + r] = acc;
            }
        }
    }
    free(w);
}

double kb_mva_rotated_read(const int64_t *p, int bits)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    return (double)s.k * (double)s.mat_bytes;
}

unsigned kb_mva_rotate_mask(const int64_t *p, int bits)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    const int bf = bits == MVA_BF16_BITS;
    if (s.experts && s.e > s.k)
        return 1u << (bf ? BF_IDX : AF_IDX);
    return bf ? 1u << BF_W : (1u << AF_W | 1u << AF_S | 1u << AF_B);
}

void kb_mva_rotate(const int64_t *p, int bits, kb_tensor *in, int k)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    if (!(s.experts && s.e > s.k))
        return;
    /* copy k >= 1 takes the K experts after copy k-1's (distinct within a copy, and from the
     * other copies until they wrap around E) */
    int32_t *idx = in[bits == MVA_BF16_BITS ? BF_IDX : AF_IDX].data;
    for (int j = 0; j < s.k; j++)
        idx[j] = (int32_t)(((int64_t)k * s.k + j) % s.e);
}

double kb_mva_bytes(const int64_t *p, int bits)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    const double nx = (double)(s.shared_x ? 1 : s.k) * (double)(s.tokens * s.cols);
    const double ny = (double)s.k * (double)(s.tokens * s.rows);
    return kb_mva_rotated_read(p, bits) + 4.0 * (nx + ny) + (s.experts ? 4.0 * (double)s.k : 0);
}

double kb_mva_flops(const int64_t *p, int bits)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    return 2.0 * (double)s.k * (double)s.rows * (double)s.cols * (double)s.tokens;
}
