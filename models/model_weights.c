/* The model's buffers (their layout from the configuration) and its synthetic weights:
 * deterministic from the seed (each 1 MiB piece of a tensor from its own stream, so the
 * thread count does not change them), packed directly in their format (random codes and
 * scales, as the suites make them), with scales that keep activations near unit RMS: a
 * projection of n inputs has weights of standard deviation 1/sqrt(n), so a normalized input
 * gives outputs of RMS ~1; norm weights near 1; the LM head 3/sqrt(hidden), logits of standard
 * deviation ~3 as trained models have (a greedy choice with a margin). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_formats.h"
#include "model.h"

int mdl_buf_add(mdl_model *m, const char *name, mdl_buf_kind kind, kb_wfmt fmt, uint64_t bytes)
{
    if (m->nbufs == m->capbufs) {
        int cap = m->capbufs ? 2 * m->capbufs : 64;
        mdl_buf *v = realloc(m->bufs, sizeof *v * (size_t)cap);
        if (!v)
            return -1;
        m->bufs = v;
        m->capbufs = cap;
    }
    mdl_buf *b = &m->bufs[m->nbufs];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->kind = kind;
    b->fmt = fmt;
    b->bytes = bytes;
    return m->nbufs++;
}

void mdl_op_tensors(const mdl_op *op, kb_tensor *in, kb_tensor *out)
{
    int ni, no;
    op->fam->describe(op->c.p, in, &ni, out, &no);
}

static uint64_t wbytes(kb_wfmt f, int64_t rows, int64_t cols)
{
    return (uint64_t)rows * (uint64_t)kb_wf_row_bytes(f, cols);
}

#define ADD(name, kind, fmt, bytes)                                                            \
    do {                                                                                       \
        if ((id = mdl_buf_add(m, name, kind, fmt, bytes)) < 0)                                 \
            goto oom;                                                                          \
    } while (0)

int mdl_alloc_layout(mdl_model *m, const mdl_config *cfg, char *err, size_t errlen)
{
    const mdl_config *c = cfg;
    m->cfg = *cfg;
    int id;
    const int64_t H = c->hidden, QD = (int64_t)c->heads * c->head_dim,
                  KD = (int64_t)c->kv_heads * c->head_dim, T = MDL_CHUNK;
    ADD("token_embd", MB_WEIGHT, c->emb_fmt, wbytes(c->emb_fmt, c->vocab, H));
    m->b_emb = id;
    if (c->tied) {
        m->b_lm = m->b_emb;
    } else {
        ADD("output", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, c->vocab, H));
        m->b_lm = id;
    }
    ADD("output_norm", MB_WEIGHT, KB_WF_F32, 4 * (uint64_t)H);
    m->b_norm_f = id;
    ADD("rope_cos", MB_TABLE, KB_WF_F32, 4ull * (uint64_t)c->ctx * (uint64_t)(c->rot / 2));
    m->b_cos = id;
    ADD("rope_sin", MB_TABLE, KB_WF_F32, 4ull * (uint64_t)c->ctx * (uint64_t)(c->rot / 2));
    m->b_sin = id;
    ADD("ids", MB_IDS, KB_WF_COUNT, 4 * T);
    m->b_ids = id;
    ADD("x", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * H));
    m->b_x = id;
    ADD("xn", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * H));
    m->b_xn = id;
    ADD("q", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * QD));
    m->b_q = id;
    ADD("k", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * KD));
    m->b_k = id;
    ADD("v", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * KD));
    m->b_v = id;
    ADD("gate", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * QD));
    m->b_g = id;
    ADD("attn_out", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * QD));
    m->b_att = id;
    ADD("proj_out", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * H));
    m->b_o = id;
    ADD("ffn_gate", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * c->ffn));
    m->b_f1 = id;
    ADD("ffn_up", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * c->ffn));
    m->b_f3 = id;
    ADD("ffn_act", MB_ACT, KB_WF_F32, 4 * (uint64_t)(T * c->ffn));
    m->b_fa = id;
    ADD("logits", MB_ACT, KB_WF_F32, 4 * (uint64_t)c->vocab);
    m->b_logits = id;
    m->L = calloc((size_t)c->layers, sizeof *m->L);
    if (!m->L)
        goto oom;
    for (int l = 0; l < c->layers; l++) {
        mdl_layer *L = &m->L[l];
        char n[40];
#define LW(field, what, kind, fmt, bytes)                                                      \
    snprintf(n, sizeof n, "blk.%d.%s", l, what);                                               \
    ADD(n, kind, fmt, bytes);                                                                  \
    L->field = id
        LW(attn_norm, "attn_norm", MB_WEIGHT, KB_WF_F32, 4 * (uint64_t)H);
        LW(wq, "attn_q", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, QD, H));
        LW(wk, "attn_k", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, KD, H));
        LW(wv, "attn_v", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, KD, H));
        LW(wo, "attn_output", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, H, QD));
        L->wgate = L->q_norm = L->k_norm = -1;
        if (c->out_gate) {
            LW(wgate, "attn_gate", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, QD, H));
        }
        if (c->qk_norm) {
            LW(q_norm, "attn_q_norm", MB_WEIGHT, KB_WF_F32, 4 * (uint64_t)c->head_dim);
            LW(k_norm, "attn_k_norm", MB_WEIGHT, KB_WF_F32, 4 * (uint64_t)c->head_dim);
        }
        LW(ffn_norm, "ffn_norm", MB_WEIGHT, KB_WF_F32, 4 * (uint64_t)H);
        LW(w1, "ffn_gate", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, c->ffn, H));
        LW(w3, "ffn_up", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, c->ffn, H));
        LW(w2, "ffn_down", MB_WEIGHT, c->wfmt, wbytes(c->wfmt, H, c->ffn));
        LW(kc, "cache_k", MB_CACHE, KB_WF_F16, 2ull * (uint64_t)c->ctx * (uint64_t)KD);
        LW(vc, "cache_v", MB_CACHE, KB_WF_F16, 2ull * (uint64_t)c->ctx * (uint64_t)KD);
#undef LW
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory for the model's buffer table");
    return -1;
}

void mdl_rope_table(const mdl_config *c, float *cos_t, float *sin_t)
{
    const int64_t half = c->rot / 2;
    if (!c->rope_freq_factors) {
        kb_rope_table(c->theta, c->rot, c->ctx, cos_t, sin_t);
        return;
    }
    for (int64_t i = 0; i < half; i++) { /* Llama 3.1: per-frequency factors divide inv_freq */
        const double f = pow(c->theta, -2.0 * (double)i / (double)c->rot) / c->rope_freq_factors[i];
        for (int64_t p = 0; p < c->ctx; p++) {
            cos_t[p * half + i] = (float)cos((double)p * f);
            sin_t[p * half + i] = (float)sin((double)p * f);
        }
    }
}

/* ---- synthetic weights ---- */

#define PIECE (1u << 20) /* bytes of a tensor per random stream */

typedef struct fill_job {
    mdl_model *m;
    uint64_t seed;
    int64_t *piece_start; /* prefix sums of pieces over the weight buffers */
    int nw;
    int *wid;             /* weight buffer ids */
    int64_t total;
} fill_job;

static uint64_t name_hash(uint64_t seed, const char *s, uint64_t k)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ k) * 0x9E3779B97F4A7C15ull;
}

/* Standard deviation of a weight tensor's values (see the file comment). */
static double sigma_of(const mdl_model *m, const mdl_buf *b)
{
    const mdl_config *c = &m->cfg;
    const char *n = strrchr(b->name, '.') ? strrchr(b->name, '.') + 1 : b->name;
    if (strcmp(b->name, "token_embd") == 0)
        return 1.0;
    if (strcmp(b->name, "output") == 0)
        return 3.0 / sqrt((double)c->hidden);
    if (strcmp(n, "attn_output") == 0)
        return 1.0 / sqrt((double)c->heads * c->head_dim);
    if (strcmp(n, "ffn_down") == 0)
        return 1.0 / sqrt((double)c->ffn);
    return 1.0 / sqrt((double)c->hidden);
}

static uint64_t piece_bytes(kb_wfmt f);

/* Piece k of weight buffer b. */
static void fill_piece(const mdl_model *m, const mdl_buf *b, uint64_t seed, int64_t k)
{
    const uint64_t pb = piece_bytes(b->fmt), at = (uint64_t)k * pb;
    uint8_t *p = (uint8_t *)b->host + at;
    const uint64_t n = b->bytes - at < pb ? b->bytes - at : pb;
    kb_rng rng;
    kb_rng_seed(&rng, name_hash(seed, b->name, (uint64_t)k));
    const double sg = sigma_of(m, b);
    switch (b->fmt) {
    case KB_WF_F32: /* norm weights */
        for (uint64_t i = 0; i < n / 4; i++)
            ((float *)p)[i] = kb_rng_uniform(&rng, 0.8f, 1.2f);
        break;
    case KB_WF_BF16:
    case KB_WF_F16: {
        const float a = (float)(sg * sqrt(3.0)); /* uniform: standard deviation sg */
        for (uint64_t i = 0; i < n / 2; i++) {
            const float w = kb_rng_uniform(&rng, -a, a);
            ((uint16_t *)p)[i] = b->fmt == KB_WF_BF16 ? kb_f32_to_bf16(w) : kb_f32_to_f16(w);
        }
        break;
    }
    case KB_WF_Q8_0: { /* codes uniform in -128..127: standard deviation ~73.9 */
        block_q8_0 *blk = (block_q8_0 *)p;
        for (uint64_t i = 0; i < n / sizeof *blk; i++) {
            blk[i].d = kb_f32_to_f16((float)(sg / 73.9) * kb_rng_uniform(&rng, 0.5f, 1.5f));
            for (int j = 0; j < QK; j += 8) {
                uint64_t r = kb_rng_u64(&rng);
                memcpy(blk[i].qs + j, &r, 8);
            }
        }
        break;
    }
    case KB_WF_Q4_0: { /* codes - 8 uniform in -8..7: standard deviation ~4.64 */
        block_q4_0 *blk = (block_q4_0 *)p;
        for (uint64_t i = 0; i < n / sizeof *blk; i++) {
            const float d = (float)(sg / 4.64) * kb_rng_uniform(&rng, 0.5f, 1.5f);
            blk[i].d = kb_f32_to_f16(kb_rng_u64(&rng) & 1 ? d : -d);
            uint64_t r0 = kb_rng_u64(&rng), r1 = kb_rng_u64(&rng);
            memcpy(blk[i].qs, &r0, 8);
            memcpy(blk[i].qs + 8, &r1, 8);
        }
        break;
    }
    default:
        break;
    }
}

static void fill_task(void *arg, int tid, int nthreads)
{
    fill_job *j = arg;
    int64_t lo, hi;
    kb_split(j->total, 1, tid, nthreads, &lo, &hi);
    int w = 0;
    for (int64_t g = lo; g < hi; g++) {
        while (g >= j->piece_start[w + 1])
            w++;
        fill_piece(j->m, &j->m->bufs[j->wid[w]], j->seed, g - j->piece_start[w]);
    }
}

/* Piece size of a block format: whole blocks (q8_0 34 bytes, q4_0 18 bytes). */
static uint64_t piece_bytes(kb_wfmt f)
{
    if (f == KB_WF_Q8_0)
        return PIECE / sizeof(block_q8_0) * sizeof(block_q8_0);
    if (f == KB_WF_Q4_0)
        return PIECE / sizeof(block_q4_0) * sizeof(block_q4_0);
    return PIECE;
}

int mdl_build(mdl_model *m, const mdl_config *cfg, uint64_t seed, kb_pool *pool, char *err,
              size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (mdl_alloc_layout(m, cfg, err, errlen) != 0)
        return -1;
    fill_job j = {.m = m, .seed = seed};
    j.wid = malloc(sizeof *j.wid * (size_t)m->nbufs);
    j.piece_start = malloc(sizeof *j.piece_start * (size_t)(m->nbufs + 1));
    if (!j.wid || !j.piece_start)
        goto oom;
    j.piece_start[0] = 0;
    for (int i = 0; i < m->nbufs; i++) {
        mdl_buf *b = &m->bufs[i];
        if (b->kind != MB_WEIGHT && b->kind != MB_TABLE)
            continue;
        b->host = aligned_alloc(64, (b->bytes + 63) / 64 * 64);
        if (!b->host) {
            snprintf(err, errlen, "cannot allocate %.1f MiB for %s", (double)b->bytes / (1 << 20),
                     b->name);
            goto fail;
        }
        b->owned = 1;
        if (b->kind == MB_TABLE)
            continue;
        j.wid[j.nw] = i;
        /* pieces of whole blocks: the fill writes blocks, never past a piece */
        const uint64_t pb = piece_bytes(b->fmt);
        j.piece_start[j.nw + 1] = j.piece_start[j.nw] + (int64_t)((b->bytes + pb - 1) / pb);
        j.nw++;
    }
    j.total = j.piece_start[j.nw];
    kb_pool_run(pool, fill_task, &j);
    mdl_rope_table(&m->cfg, m->bufs[m->b_cos].host, m->bufs[m->b_sin].host);
    free(j.wid);
    free(j.piece_start);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    free(j.wid);
    free(j.piece_start);
    mdl_free(m);
    return -1;
}

void mdl_free(mdl_model *m)
{
    for (int i = 0; i < m->nbufs; i++)
        if (m->bufs[i].owned)
            free(m->bufs[i].host);
    free(m->bufs);
    free(m->L);
    mdl_gguf_release(m->gguf);
    m->gguf = NULL;
    m->bufs = NULL;
    m->L = NULL;
    m->nbufs = m->capbufs = 0;
}

double mdl_weight_bytes(const mdl_model *m)
{
    double s = 0;
    for (int i = 0; i < m->nbufs; i++)
        if (m->bufs[i].kind == MB_WEIGHT)
            s += (double)m->bufs[i].bytes;
    return s;
}
