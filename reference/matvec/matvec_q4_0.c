/* matvec_q4_0: y[t][r] = sum_c W[r,c] * x[t][c], W in GGML Q4_0 (KERNELS.md section 2). */
#include "ggml_formats.h"
#include "matvec_common.h"

static int64_t row_bytes(const int64_t *p) { return p[MV_COLS] / QK * (int64_t)sizeof(block_q4_0); }

static int validate(const int64_t *p, char *err, size_t n) { return kb_mv_validate(p, QK, err, n); }

static int describe(const int64_t *p, kb_tensor *in, int *ni, kb_tensor *out, int *no)
{
    return kb_mv_describe(p, row_bytes(p), in, ni, out, no);
}

static void generate(const int64_t *p, kb_tensor *in, kb_rng *rng, kb_inputs dist)
{
    block_q4_0 *w = in[MV_W].data;
    for (int64_t b = 0; b < p[MV_ROWS] * p[MV_COLS] / QK; b++) {
        float d = kb_rng_uniform(rng, -0.05f, 0.05f); /* signed, as d = m/-8 */
        if (dist == KB_INPUTS_EXTREME) /* tiny (down to f16 subnormals) and large */
            d = (kb_rng_u64(rng) & 1 ? -1.0f : 1.0f) *
                (b % 3 == 0 ? kb_rng_uniform(rng, 1e-7f, 1e-4f) : kb_rng_uniform(rng, 0.01f, 4.0f));
        w[b].d = kb_f32_to_f16(d);
        for (int j = 0; j < QK / 2; j++)
            w[b].qs[j] = (uint8_t)(kb_rng_u64(rng) & 0xFF);
        if (dist == KB_INPUTS_EXTREME) { /* codes 0 and 15 (-8 and +7) in every block */
            w[b].qs[kb_rng_u64(rng) % (QK / 2)] = 0x0F;
            w[b].qs[kb_rng_u64(rng) % (QK / 2)] = 0xF0;
        }
    }
    kb_mv_generate_x(p, &in[MV_X], rng, dist);
}

/* Row r of W by the definition: w[j] = d * ((qs[j] & 15) - 8), w[j + 16] = d * ((qs[j] >> 4) - 8). */
static void dequant_row(const kb_tensor *wt, int64_t r, int64_t cols, double *out)
{
    const block_q4_0 *w = (const block_q4_0 *)wt->data + r * (cols / QK);
    for (int64_t c = 0; c < cols; c++) {
        const block_q4_0 *blk = &w[c / QK];
        int j = (int)(c % QK), q = j < 16 ? (blk->qs[j] & 15) : (blk->qs[j - 16] >> 4);
        out[c] = (double)kb_f16_to_f32(blk->d) * (q - 8);
    }
}

static void condition(const int64_t *p, const kb_tensor *in, int o, double *scale)
{
    kb_mv_condition(p, in, scale, dequant_row);
}

static void matvec_q4_0_reference(const int64_t *p, const kb_tensor *in, kb_tensor *out)
{
    const int64_t rows = p[MV_ROWS], cols = p[MV_COLS], nb = cols / QK;
    const block_q4_0 *w = in[MV_W].data;
    for (int64_t t = 0; t < p[MV_TOKENS]; t++) {
        const float *x = (const float *)in[MV_X].data + t * cols;
        float *y = (float *)out[MV_Y].data + t * rows;
        for (int64_t r = 0; r < rows; r++) {
            double acc = 0; /* double: the reference is the truth, not a peer */
            for (int64_t b = 0; b < nb; b++) {
                const block_q4_0 *blk = &w[r * nb + b];
                double d = kb_f16_to_f32(blk->d);
                for (int j = 0; j < QK / 2; j++) {
                    acc += d * ((blk->qs[j] & 15) - 8) * x[b * QK + j];
                    acc += d * ((blk->qs[j] >> 4) - 8) * x[b * QK + j + 16];
                }
            }
            y[r] = (float)acc;
        }
    }
}

static double bytes(const int64_t *p) { return kb_mv_bytes(p, row_bytes(p)); }

const kb_family kb_family_matvec_q4_0 = {
    .name = "matvec_q4_0",
    .suite = "matvec",
    .help = "y = W x, W in GGML Q4_0 (f16 scale + 32 4-bit codes per block)",
    MV_PARAMS,
    .validate = validate,
    .describe = describe,
    .generate = generate,
    .reference = matvec_q4_0_reference,
    .bytes = bytes,
    .flops = kb_mv_flops,
    .rotate_mask = 1u << MV_W,
    .tol_nmse = 1e-9,
    .condition = condition,
    .tol_cond = KB_MV_TOL_COND,
    .inputs = KB_MV_INPUTS,
    .test_shape = "rows=33 cols=64 tokens=2",
    .smallest_shape = "rows=1 cols=32",
};
