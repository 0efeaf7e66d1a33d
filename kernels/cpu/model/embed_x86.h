/* embed_<fmt> for the vector width of glue_vec.h: each token's row dequantized into y (tokens
 * split over the threads when there are many). Defines run_<fmt> and one kb_impl per format. */
#ifndef KB_EMBED_X86_H
#define KB_EMBED_X86_H

#include "ggml_formats.h"
#include "glue_common.h"
#include "glue_vec.h"

typedef struct em_job {
    const uint8_t *table;
    const int32_t *ids;
    float *y;
    int64_t rows, cols, row_bytes, tokens;
    kb_wfmt fmt;
} em_job;

/* 16 or 32 block values (the block's first half, or the second) scaled: d * (q - bias) */
GV_TARGET KB_INLINE void em_q4_half(const block_q4_0 *b, float *y)
{
    const gv_f d = gv_set1(_cvtsh_ss(b->d));
    int8_t lo[16], hi[16];
    for (int j = 0; j < 16; j++) {
        lo[j] = (int8_t)((b->qs[j] & 15) - 8);
        hi[j] = (int8_t)((b->qs[j] >> 4) - 8);
    }
    for (int j = 0; j < 16; j += GV_W) {
        gv_store(y + j, gv_mul(d, gv_from_i8(lo + j)));
        gv_store(y + 16 + j, gv_mul(d, gv_from_i8(hi + j)));
    }
}

GV_TARGET static void em_row(const em_job *j, int64_t t)
{
    int64_t id = j->ids[t];
    id = id < 0 ? 0 : id >= j->rows ? j->rows - 1 : id;
    const uint8_t *r = j->table + id * j->row_bytes;
    float *y = j->y + t * j->cols;
    const int64_t n = j->cols;
    int64_t c = 0;
    switch (j->fmt) {
    case KB_WF_F32:
        memcpy(y, r, sizeof(float) * (size_t)n);
        return;
    case KB_WF_F16:
        for (; c + GV_W <= n; c += GV_W)
            gv_store(y + c, gv_from_f16((const uint16_t *)r + c));
        break;
    case KB_WF_BF16:
        for (; c + GV_W <= n; c += GV_W)
            gv_store(y + c, gv_from_bf16((const uint16_t *)r + c));
        break;
    case KB_WF_Q8_0:
        for (int64_t b = 0; b < n / QK; b++) {
            const block_q8_0 *blk = (const block_q8_0 *)r + b;
            const gv_f d = gv_set1(_cvtsh_ss(blk->d));
            for (int k = 0; k < QK; k += GV_W)
                gv_store(y + b * QK + k, gv_mul(d, gv_from_i8(blk->qs + k)));
        }
        return;
    case KB_WF_Q4_0:
        for (int64_t b = 0; b < n / QK; b++)
            em_q4_half((const block_q4_0 *)r + b, y + b * QK);
        return;
    default:
        return;
    }
    for (; c < n; c++) /* the tail of an f16 or bf16 row */
        y[c] = j->fmt == KB_WF_F16 ? kb_f16_to_f32(((const uint16_t *)r)[c])
                                   : kb_bf16_to_f32(((const uint16_t *)r)[c]);
}

static void em_task(void *arg, int tid, int nthreads)
{
    const em_job *j = arg;
    int64_t lo, hi;
    kb_split(j->tokens, 1, tid, nthreads, &lo, &hi);
    for (int64_t t = lo; t < hi; t++)
        em_row(j, t);
}

static void em_run(kb_wfmt f, const kb_case *c, const kb_tensor *in, kb_tensor *out,
                   kb_pool *pool)
{
    em_job j = {in[0].data, in[1].data, out[0].data, c->p[0], c->p[1],
                kb_wf_row_bytes(f, c->p[1]), c->p[2], f};
    gv_run(pool, j.tokens * j.cols, em_task, &j);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return gv_need();
}

#define EM_IMPL(fmtname, FMT)                                                                  \
    static void run_##fmtname(const kb_case *c, const kb_tensor *in, kb_tensor *out,          \
                              kb_pool *pool)                                                  \
    {                                                                                          \
        em_run(FMT, c, in, out, pool);                                                         \
    }                                                                                          \
    const kb_impl GV_NAME(embed_##fmtname) = {                                                 \
        .family = "embed_" #fmtname,                                                           \
        .name = GV_ISA,                                                                        \
        .backend = KB_BACKEND_CPU,                                                             \
        .available = available,                                                                \
        .cpu_run = run_##fmtname,                                                              \
    };

EM_IMPL(f32, KB_WF_F32)
EM_IMPL(f16, KB_WF_F16)
EM_IMPL(bf16, KB_WF_BF16)
EM_IMPL(q8_0, KB_WF_Q8_0)
EM_IMPL(q4_0, KB_WF_Q4_0)

#endif
