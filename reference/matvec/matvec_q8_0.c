/* matvec_q8_0: y[t][r] = sum_c W[r,c] * x[t][c], W in GGML Q8_0 (KERNELS.md section 2). */
#include "ggml_formats.h"
#include "matvec_common.h"

static int64_t row_bytes(const int64_t *p) { return p[MV_COLS] / QK * (int64_t)sizeof(block_q8_0); }

static int validate(const int64_t *p, char *err, size_t n) { return kb_mv_validate(p, QK, err, n); }

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    return kb_mv_describe(p, row_bytes(p), in, ni, out, no);
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    block_q8_0 *w = in[MV_W].data;
    for (int64_t b = 0; b < p[MV_ROWS] * p[MV_COLS] / QK; b++) {
        w[b].d = kb_f32_to_f16(kb_rng_uniform(rng, 0.002f, 0.02f)); /* real Q8_0 scale range */
        for (int i = 0; i < QK; i++)
            w[b].qs[i] = (int8_t)((int)(kb_rng_u64(rng) % 255) - 127);
    }
    kb_mv_generate_x(p, &in[MV_X], rng);
}

static void matvec_q8_0_reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int64_t rows = p[MV_ROWS], cols = p[MV_COLS], nb = cols / QK;
    const block_q8_0 *w = in[MV_W].data;
    for (int64_t t = 0; t < p[MV_TOKENS]; t++) {
        const float *x = (const float *)in[MV_X].data + t * cols;
        float *y = (float *)out[MV_Y].data + t * rows;
        for (int64_t r = 0; r < rows; r++) {
            double acc = 0; /* double: the reference is the truth, not a peer */
            for (int64_t b = 0; b < nb; b++) {
                const block_q8_0 *blk = &w[r * nb + b];
                double d = kb_f16_to_f32(blk->d);
                for (int i = 0; i < QK; i++)
                    acc += d * blk->qs[i] * x[b * QK + i];
            }
            y[r] = (float)acc;
        }
    }
}

static double bytes(const int64_t *p) { return kb_mv_bytes(p, row_bytes(p)); }

const kb_family kb_family_matvec_q8_0 = {
    .name = "matvec_q8_0",
    .suite = "matvec",
    .help = "y = W x, W in GGML Q8_0 (f16 scale + 32 int8 per block)",
    MV_PARAMS,
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .reference = matvec_q8_0_reference,
    .bytes = bytes,
    .flops = kb_mv_flops,
    .rotate_mask = 1u << MV_W,
    .tol_nmse = 1e-9,
    .test_shape = "rows=33 cols=64 tokens=2",
};
