#include "matvec_affine_common.h"

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
    } else {
        desc_mat(&in[n++], "W", KB_I32, &s, s.cols * bits / 32);
        desc_mat(&in[n++], "scales", KB_BF16, &s, s.ngroups);
        desc_mat(&in[n++], "biases", KB_BF16, &s, s.ngroups);
    }
    if (s.shared_x)
        desc(&in[n++], "x", KB_F32, 2, s.tokens, s.cols, 0);
    else
        desc(&in[n++], "x", KB_F32, 3, s.k, s.tokens, s.cols);
    if (s.experts)
        desc(&in[n++], "idx", KB_I32, 1, s.k, 0, 0);
    if (s.experts)
        desc(&out[0], "y", KB_F32, 3, s.k, s.tokens, s.rows);
    else
        desc(&out[0], "y", KB_F32, 2, s.tokens, s.rows, 0);
    *n_in = n;
    *n_out = 1;
    return 0;
}

void kb_mva_generate(const int64_t *p, int bits, kb_tensor *in, kb_rng *rng)
{
    kb_mva s;
    kb_mva_get(p, bits, &s);
    const int bf = bits == MVA_BF16_BITS;
    const int ix = bf ? BF_X : AF_X, iidx = bf ? BF_IDX : AF_IDX;
    if (bf) {
        /* weights of a linear layer: roughly N(0, 0.02^2), as bf16 */
        uint16_t *w = in[BF_W].data;
        for (int64_t i = 0; i < s.e * s.rows * s.cols; i++)
            w[i] = kb_f32_to_bf16(0.02f * kb_rng_normal(rng));
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
            const float sf = kb_rng_uniform(rng, 1e-3f, 2e-2f);
            sc[i] = kb_f32_to_bf16(sf);
            bi[i] = kb_f32_to_bf16(-sf * qmax * kb_rng_uniform(rng, 0.4f, 0.6f));
        }
    }
    float *x = in[ix].data;
    for (int64_t i = 0; i < kb_tensor_numel(&in[ix]); i++)
        x[i] = kb_rng_normal(rng); /* activations after a norm: roughly unit scale */
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
