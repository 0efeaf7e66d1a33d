/* `kbench model llama3-8b --gguf FILE`: a llama-architecture GGUF as the model's configuration
 * and weights. Q4_0, Q8_0 and BF16 weights are used where they lie in the mapped file; F16 and
 * F32 projection weights become bf16 copies (there is no f16 matvec family; the report says
 * so), F16 norm weights f32 copies. The query and key projections are stored with GGML's
 * RoPE pairing (dims 2i, 2i+1 of a head: llama.cpp's converter permutes their rows); kbench's
 * RoPE turns the half-split pairs (i, i + D/2), so their rows are put back in that order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"

typedef enum { K_NORM, K_MATVEC, K_EMBED } kind;

typedef struct loader {
    mdl_model *m;
    gguf_file *g;
    char *err;
    size_t errlen;
    int converted; /* tensors converted to bf16 */
} loader;

static int bad(loader *L, const char *fmt, const char *a, const char *b)
{
    snprintf(L->err, L->errlen, fmt, a, b);
    return -1;
}

static const gguf_tensor *need(loader *L, const char *name, uint64_t cols, uint64_t rows)
{
    const gguf_tensor *t = gguf_find_tensor(L->g, name);
    if (!t) {
        bad(L, "GGUF: tensor %s is missing%s", name, "");
        return NULL;
    }
    const int ok = rows ? t->ndim == 2 && t->ne[0] == cols && t->ne[1] == rows
                        : t->ndim == 1 && t->ne[0] == cols;
    if (!ok) {
        char want[64], have[64];
        snprintf(want, sizeof want, rows ? "[%llu, %llu]" : "[%llu]", (unsigned long long)cols,
                 (unsigned long long)rows);
        snprintf(have, sizeof have, "[%llu, %llu, %llu] (%u dims)", (unsigned long long)t->ne[0],
                 (unsigned long long)t->ne[1], (unsigned long long)t->ne[2], t->ndim);
        snprintf(L->err, L->errlen, "GGUF: tensor %s has shape %s, the model needs %s", name,
                 have, want);
        return NULL;
    }
    if (t->bytes == 0) {
        bad(L, "GGUF: tensor %s has type %s; kbench reads F32, F16, BF16, Q4_0 and Q8_0", name,
            gguf_type_name(t->type));
        return NULL;
    }
    return t;
}

static float value_f(const gguf_tensor *t, uint64_t i)
{
    uint16_t h;
    switch (t->type) {
    case GGML_F32: {
        float f;
        memcpy(&f, t->data + 4 * i, 4);
        return f;
    }
    case GGML_F16: memcpy(&h, t->data + 2 * i, 2); return kb_f16_to_f32(h);
    case GGML_BF16: memcpy(&h, t->data + 2 * i, 2); return kb_bf16_to_f32(h);
    default: return NAN;
    }
}

/* Rows `rows` of `heads` heads of D: row h*D + s*D/2 + i of the result is row h*D + 2i + s of
 * the file (GGML's pairing back to half-split). */
static void unpermute(uint8_t *dst, const uint8_t *src, uint64_t rows, uint64_t D,
                      uint64_t row_bytes)
{
    for (uint64_t r = 0; r < rows; r++) {
        const uint64_t h = r / D, j = r % D, s = j / (D / 2), i = j % (D / 2);
        memcpy(dst + r * row_bytes, src + (h * D + 2 * i + s) * row_bytes, row_bytes);
    }
}

/* Buffer bi from tensor name: its format, bytes and host data (mapped or a copy). heads > 0:
 * a query or key projection of that many heads (rows put back in half-split order). */
static int take(loader *L, int bi, const char *name, kind k, uint64_t cols, uint64_t rows,
                uint64_t heads)
{
    mdl_buf *b = &L->m->bufs[bi];
    const gguf_tensor *t = need(L, name, cols, k == K_NORM ? 0 : rows);
    if (!t)
        return -1;
    const uint64_t n = cols * (k == K_NORM ? 1 : rows);
    kb_wfmt f;
    switch (t->type) {
    case GGML_Q4_0: f = KB_WF_Q4_0; break;
    case GGML_Q8_0: f = KB_WF_Q8_0; break;
    case GGML_BF16: f = KB_WF_BF16; break;
    case GGML_F16: f = k == K_EMBED ? KB_WF_F16 : k == K_NORM ? KB_WF_F32 : KB_WF_BF16; break;
    default: f = k == K_MATVEC ? KB_WF_BF16 : KB_WF_F32; break;
    }
    if (k == K_NORM && t->type != GGML_F32 && t->type != GGML_F16 && t->type != GGML_BF16)
        return bad(L, "GGUF: norm weight %s has type %s (F32 expected)", name,
                   gguf_type_name(t->type));
    const int convert = (t->type == GGML_F16 && f != KB_WF_F16) ||
                        (t->type == GGML_F32 && f != KB_WF_F32) ||
                        (t->type == GGML_BF16 && f != KB_WF_BF16);
    b->fmt = f;
    b->bytes = (uint64_t)kb_wf_row_bytes(f, (int64_t)cols) * (k == K_NORM ? 1 : rows);
    if (!convert && !heads) {
        b->host = (void *)t->data;
        return 0;
    }
    uint8_t *conv = NULL;
    const uint8_t *src = t->data;
    uint64_t rb = (uint64_t)kb_wf_row_bytes(f, (int64_t)cols);
    if (convert) {
        conv = malloc(b->bytes ? b->bytes : 1);
        if (!conv)
            return bad(L, "out of memory converting %s%s", name, "");
        for (uint64_t i = 0; i < n; i++) {
            const float v = value_f(t, i);
            if (f == KB_WF_F32)
                memcpy(conv + 4 * i, &v, 4);
            else {
                const uint16_t h = kb_f32_to_bf16(v);
                memcpy(conv + 2 * i, &h, 2);
            }
        }
        L->converted += f == KB_WF_BF16;
        src = conv;
    }
    if (heads) {
        const uint64_t D = rows / heads;
        uint8_t *p = malloc(b->bytes);
        if (!p || D % 2) {
            free(conv);
            free(p);
            return bad(L, "GGUF: cannot reorder %s%s", name, D % 2 ? " (odd head size)" : "");
        }
        unpermute(p, src, rows, D, rb);
        free(conv);
        conv = p;
    }
    b->host = conv;
    b->owned = 1;
    return 0;
}

static int hp(loader *L, const char *key, uint64_t *v, uint64_t lo, uint64_t hi)
{
    if (gguf_get_uint(L->g, key, v) != 0)
        return bad(L, "GGUF: metadata %s is missing or not an integer%s", key, "");
    if (*v < lo || *v > hi) {
        snprintf(L->err, L->errlen, "GGUF: %s = %llu is outside %llu..%llu", key,
                 (unsigned long long)*v, (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    return 0;
}

void mdl_gguf_release(void *g)
{
    if (!g)
        return;
    gguf_close(g);
    free(g);
}

int mdl_load_gguf(mdl_model *m, const char *path, int layers, int ctx, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    gguf_file *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (gguf_open(g, path, err, errlen) != 0) {
        free(g);
        return -1;
    }
    m->gguf = g;
    loader L = {m, g, err, errlen, 0};
    char arch[64] = "";
    if (gguf_get_str(g, "general.architecture", arch, sizeof arch) != 0 ||
        strcmp(arch, "llama") != 0) {
        bad(&L, "GGUF: architecture '%s'%s: this reader takes llama", arch[0] ? arch : "(none)",
            "");
        goto fail;
    }
    mdl_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "llama3-8b (gguf)");
    uint64_t nl, H, F, nh, nkv = 0, rot = 0, D = 0;
    if (hp(&L, "llama.block_count", &nl, 1, 1000) || hp(&L, "llama.embedding_length", &H, 32, 1 << 16) ||
        hp(&L, "llama.feed_forward_length", &F, 32, 1 << 20) ||
        hp(&L, "llama.attention.head_count", &nh, 1, 1024))
        goto fail;
    if (gguf_get_uint(g, "llama.attention.head_count_kv", &nkv) != 0)
        nkv = nh;
    if (gguf_get_uint(g, "llama.attention.key_length", &D) != 0)
        D = H / nh;
    if (gguf_get_uint(g, "llama.rope.dimension_count", &rot) != 0)
        rot = D;
    if (nkv < 1 || nh % nkv || D * nh == 0 || rot != D) {
        snprintf(err, errlen, "GGUF: %llu heads / %llu kv heads of %llu, RoPE on %llu dims: kbench "
                 "takes whole GQA groups and RoPE over the whole head", (unsigned long long)nh,
                 (unsigned long long)nkv, (unsigned long long)D, (unsigned long long)rot);
        goto fail;
    }
    double theta = 10000.0, eps = 1e-5;
    gguf_get_float(g, "llama.rope.freq_base", &theta);
    gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &eps);
    if (!(theta > 1) || !(eps > 0 && eps < 1)) {
        snprintf(err, errlen, "GGUF: rope.freq_base %g or rms epsilon %g not plausible", theta, eps);
        goto fail;
    }
    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->ndim != 2 || te->ne[0] != H || te->ne[1] < 2 || te->ne[1] > (1u << 22)) {
        snprintf(err, errlen, "GGUF: token_embd.weight is missing or not [%llu, vocab]",
                 (unsigned long long)H);
        goto fail;
    }
    c.layers = layers > 0 && (uint64_t)layers < nl ? layers : (int)nl;
    if (layers > 0 && (uint64_t)layers < nl)
        snprintf(c.scaled, sizeof c.scaled, "layers %llu -> %d (--layers)", (unsigned long long)nl,
                 layers);
    c.hidden = (int)H;
    c.heads = (int)nh;
    c.kv_heads = (int)nkv;
    c.head_dim = (int)D;
    c.rot = (int)rot;
    c.ffn = (int)F;
    c.vocab = (int)te->ne[1];
    c.eps_exp = (int)lround(-log10(eps));
    if (fabs(pow(10.0, -c.eps_exp) - eps) > 1e-3 * eps)
        snprintf(c.scaled + strlen(c.scaled), sizeof c.scaled - strlen(c.scaled),
                 "%srms epsilon %g taken as 1e-%d", c.scaled[0] ? "; " : "", eps, c.eps_exp);
    c.theta = theta;
    c.ctx = ctx;
    const gguf_tensor *tq = gguf_find_tensor(g, "blk.0.attn_q.weight");
    c.wfmt = tq && tq->type == GGML_Q8_0 ? KB_WF_Q8_0 : tq && tq->type == GGML_Q4_0 ? KB_WF_Q4_0
                                                                                    : KB_WF_BF16;
    c.emb_fmt = KB_WF_F32; /* set from the tensor below */
    c.tied = gguf_find_tensor(g, "output.weight") == NULL;
    const gguf_tensor *rf = gguf_find_tensor(g, "rope_freqs.weight");
    if (rf) {
        if (rf->type != GGML_F32 || rf->ndim != 1 || rf->ne[0] != rot / 2) {
            snprintf(err, errlen, "GGUF: rope_freqs.weight is not F32 [%llu]",
                     (unsigned long long)(rot / 2));
            goto fail;
        }
        c.rope_freq_factors = (const float *)rf->data; /* 32-byte aligned in the file */
    }
    if (mdl_alloc_layout(m, &c, err, errlen) != 0)
        goto fail;
    const uint64_t QD = nh * D, KD = nkv * D;
    if (take(&L, m->b_emb, "token_embd.weight", K_EMBED, H, (uint64_t)c.vocab, 0) ||
        take(&L, m->b_norm_f, "output_norm.weight", K_NORM, H, 0, 0))
        goto fail;
    m->cfg.emb_fmt = m->bufs[m->b_emb].fmt;
    if (c.tied) {
        if (!mdl_matvec_family(m->cfg.emb_fmt)) { /* f16/f32 table: a bf16 copy as the head */
            m->cfg.tied = 0;
            m->b_lm = mdl_buf_add(m, "output", MB_WEIGHT, KB_WF_BF16, 0);
            if (m->b_lm < 0 || take(&L, m->b_lm, "token_embd.weight", K_MATVEC, H,
                                    (uint64_t)c.vocab, 0))
                goto fail;
        }
    } else if (take(&L, m->b_lm, "output.weight", K_MATVEC, H, (uint64_t)c.vocab, 0)) {
        goto fail;
    }
    for (int l = 0; l < c.layers; l++) {
        const mdl_layer *Y = &m->L[l];
        char n[96];
#define T(field, what, k, cols, rows, heads)                                                   \
    snprintf(n, sizeof n, "blk.%d.%s.weight", l, what);                                        \
    if (take(&L, Y->field, n, k, cols, rows, heads))                                           \
        goto fail
        T(attn_norm, "attn_norm", K_NORM, H, 0, 0);
        T(wq, "attn_q", K_MATVEC, H, QD, nh);
        T(wk, "attn_k", K_MATVEC, H, KD, nkv);
        T(wv, "attn_v", K_MATVEC, H, KD, 0);
        T(wo, "attn_output", K_MATVEC, QD, H, 0);
        T(ffn_norm, "ffn_norm", K_NORM, H, 0, 0);
        T(w1, "ffn_gate", K_MATVEC, H, F, 0);
        T(w3, "ffn_up", K_MATVEC, H, F, 0);
        T(w2, "ffn_down", K_MATVEC, F, H, 0);
#undef T
    }
    if (L.converted)
        snprintf(m->cfg.scaled + strlen(m->cfg.scaled), sizeof m->cfg.scaled - strlen(m->cfg.scaled),
                 "%s%d F16/F32 projection tensors converted to bf16 (no f16 matvec family)",
                 m->cfg.scaled[0] ? "; " : "", L.converted);
    for (int i = 0; i < m->nbufs; i++) { /* the RoPE tables */
        mdl_buf *b = &m->bufs[i];
        if (b->kind != MB_TABLE)
            continue;
        if (!(b->host = malloc(b->bytes ? b->bytes : 1))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        b->owned = 1;
    }
    mdl_rope_table(&m->cfg, m->bufs[m->b_cos].host, m->bufs[m->b_sin].host);
    return 0;
fail:
    mdl_free(m);
    return -1;
}
