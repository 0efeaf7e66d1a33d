/* The ops of one forward chunk (a pre-norm decoder: Llama 3, Qwen3 with QK-norm, the output
 * gate of Qwen3.5's full attention), each a family, a case and its tensors' places in the
 * model's buffers. Every backend runs this same list. Layer kinds still to come (GatedDeltaNet,
 * MLA, MoE FFN) are further functions here beside attn_full() and ffn_dense(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "suite.h"

void mdl_graph_free(mdl_graph *g)
{
    free(g->ops);
    memset(g, 0, sizeof *g);
}

const char *mdl_matvec_family(kb_wfmt f)
{
    switch (f) {
    case KB_WF_Q4_0: return "matvec_q4_0";
    case KB_WF_Q8_0: return "matvec_q8_0";
    case KB_WF_BF16: return "matvec_bf16";
    default: return NULL;
    }
}

static const char *embed_family(kb_wfmt f)
{
    static const char *n[] = {"embed_f32", "embed_f16", "embed_bf16", "embed_q8_0", "embed_q4_0"};
    return (unsigned)f < KB_WF_COUNT ? n[f] : NULL;
}

typedef struct gb {
    const mdl_model *m;
    mdl_graph *g;
    char *err;
    size_t errlen;
    int bad;
} gb;

/* Sets parameter `name` of op's case (the family must have it). */
static void set(gb *b, mdl_op *op, const char *name, int64_t v)
{
    for (int i = 0; i < op->fam->nparams; i++)
        if (strcmp(op->fam->params[i].name, name) == 0) {
            op->c.p[i] = v;
            return;
        }
    if (!b->bad)
        snprintf(b->err, b->errlen, "%s has no parameter %s", op->fam->name, name);
    b->bad = 1;
}

static mdl_op *add(gb *b, const char *fam, int layer, const char *role)
{
    const kb_family *f = fam ? kb_family_find(fam) : NULL;
    if (!f) {
        if (!b->bad)
            snprintf(b->err, b->errlen, "family %s is not in this build", fam ? fam : "(none)");
        b->bad = 1;
        return NULL;
    }
    mdl_graph *g = b->g;
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        mdl_op *v = realloc(g->ops, sizeof *v * (size_t)cap);
        if (!v) {
            snprintf(b->err, b->errlen, "out of memory");
            b->bad = 1;
            return NULL;
        }
        g->ops = v;
        g->cap = cap;
    }
    mdl_op *op = &g->ops[g->n++];
    memset(op, 0, sizeof *op);
    op->fam = f;
    op->c.fam = f;
    for (int i = 0; i < f->nparams; i++)
        op->c.p[i] = f->params[i].def;
    op->layer = layer;
    snprintf(op->role, sizeof op->role, "%s", role);
    for (int i = 0; i < KB_MAX_TENSORS; i++)
        op->in[i].buf = op->out[i].buf = -1;
    return op;
}

static mdl_ref R(int buf, uint64_t off) { return (mdl_ref){buf, off}; }

/* Checks the op's case (ranges and the family's validate) once its parameters are set. */
static void done(gb *b, mdl_op *op, int n_in, int n_out)
{
    if (!op)
        return;
    op->n_in = n_in;
    op->n_out = n_out;
    char e[256];
    if (!b->bad && kb_case_check(&op->c, e, sizeof e) != 0) {
        snprintf(b->err, b->errlen, "%s (%s): %s", op->fam->name, op->role, e);
        b->bad = 1;
    }
}

static void matvec(gb *b, int layer, const char *role, int w, int64_t rows, int64_t cols,
                   int ntok, mdl_ref x, mdl_ref y)
{
    const kb_wfmt f = b->m->bufs[w].fmt;
    const char *fam = mdl_matvec_family(f);
    if (!fam && !b->bad) {
        snprintf(b->err, b->errlen, "%s: no matvec family for %s weights", b->m->bufs[w].name,
                 kb_wf_name(f));
        b->bad = 1;
        return;
    }
    mdl_op *op = add(b, fam, layer, role);
    if (!op)
        return;
    set(b, op, "rows", rows);
    set(b, op, "cols", cols);
    set(b, op, "tokens", ntok);
    op->in[0] = R(w, 0);
    op->in[1] = x;
    op->out[0] = y;
    done(b, op, 2, 1);
}

static void rmsnorm(gb *b, int layer, const char *role, int64_t rows, int64_t cols, mdl_ref x,
                    int w, mdl_ref y)
{
    mdl_op *op = add(b, "rmsnorm", layer, role);
    if (!op)
        return;
    set(b, op, "rows", rows);
    set(b, op, "cols", cols);
    set(b, op, "eps_exp", b->m->cfg.eps_exp);
    op->in[0] = x;
    op->in[1] = R(w, 0);
    op->out[0] = y;
    done(b, op, 2, 1);
}

static void ew(gb *b, const char *fam, int layer, const char *role, int64_t cols, int ntok,
               mdl_ref a, mdl_ref bb, mdl_ref y)
{
    mdl_op *op = add(b, fam, layer, role);
    if (!op)
        return;
    set(b, op, "cols", cols);
    set(b, op, "tokens", ntok);
    op->in[0] = a;
    op->in[1] = bb;
    op->out[0] = y;
    done(b, op, bb.buf >= 0 ? 2 : 1, 1);
}

static void rope(gb *b, int layer, const char *role, int64_t heads, mdl_ref x, int ntok, int p0)
{
    const mdl_config *c = &b->m->cfg;
    mdl_op *op = add(b, "rope", layer, role);
    if (!op)
        return;
    set(b, op, "heads", heads);
    set(b, op, "head_dim", c->head_dim);
    set(b, op, "rot", c->rot);
    set(b, op, "tokens", ntok);
    set(b, op, "p0", p0);
    set(b, op, "theta", (int64_t)c->theta);
    op->in[0] = x;
    op->in[1] = R(b->m->b_cos, 0);
    op->in[2] = R(b->m->b_sin, 0);
    op->out[0] = x; /* in place */
    done(b, op, 3, 1);
}

/* Full (GQA) attention: Llama 3; Qwen3's QK-norm; Qwen3.5's output gate and partial RoPE. */
static void attn_full(gb *b, int l, int ntok, int p0)
{
    const mdl_model *m = b->m;
    const mdl_config *c = &m->cfg;
    const mdl_layer *L = &m->L[l];
    const int64_t H = c->hidden, D = c->head_dim, QD = (int64_t)c->heads * D,
                  KD = (int64_t)c->kv_heads * D;
    rmsnorm(b, l, "attn_norm", ntok, H, R(m->b_x, 0), L->attn_norm, R(m->b_xn, 0));
    matvec(b, l, "wq", L->wq, QD, H, ntok, R(m->b_xn, 0), R(m->b_q, 0));
    matvec(b, l, "wk", L->wk, KD, H, ntok, R(m->b_xn, 0), R(m->b_k, 0));
    matvec(b, l, "wv", L->wv, KD, H, ntok, R(m->b_xn, 0), R(m->b_v, 0));
    if (c->out_gate)
        matvec(b, l, "wgate", L->wgate, QD, H, ntok, R(m->b_xn, 0), R(m->b_g, 0));
    if (c->qk_norm) {
        rmsnorm(b, l, "q_norm", (int64_t)ntok * c->heads, D, R(m->b_q, 0), L->q_norm,
                R(m->b_q, 0));
        rmsnorm(b, l, "k_norm", (int64_t)ntok * c->kv_heads, D, R(m->b_k, 0), L->k_norm,
                R(m->b_k, 0));
    }
    rope(b, l, "rope_q", c->heads, R(m->b_q, 0), ntok, p0);
    rope(b, l, "rope_k", c->kv_heads, R(m->b_k, 0), ntok, p0);
    const mdl_ref none = {-1, 0};
    ew(b, "cvt_f16", l, "k_store", KD, ntok, R(m->b_k, 0), none,
       R(L->kc, 2ull * (uint64_t)p0 * (uint64_t)KD));
    ew(b, "cvt_f16", l, "v_store", KD, ntok, R(m->b_v, 0), none,
       R(L->vc, 2ull * (uint64_t)p0 * (uint64_t)KD));
    mdl_op *op = add(b, ntok == 1 ? "attn_decode" : "attn_prefill", l, "attn");
    if (op) {
        set(b, op, "heads", c->heads);
        set(b, op, "kv_heads", c->kv_heads);
        set(b, op, "head_dim", D);
        set(b, op, "kv_f16", 1);
        if (ntok == 1) {
            set(b, op, "T", p0 + 1);
        } else {
            set(b, op, "n_q", ntok);
            set(b, op, "p0", p0);
        }
        op->in[0] = R(m->b_q, 0);
        op->in[1] = R(L->kc, 0);
        op->in[2] = R(L->vc, 0);
        op->out[0] = R(m->b_att, 0);
        done(b, op, 3, 1);
    }
    if (c->out_gate)
        ew(b, "outgate", l, "out_gate", QD, ntok, R(m->b_att, 0), R(m->b_g, 0), R(m->b_att, 0));
    matvec(b, l, "wo", L->wo, H, QD, ntok, R(m->b_att, 0), R(m->b_o, 0));
    ew(b, "residual", l, "attn_residual", H, ntok, R(m->b_x, 0), R(m->b_o, 0), R(m->b_x, 0));
}

static void ffn_dense(gb *b, int l, int ntok)
{
    const mdl_model *m = b->m;
    const mdl_config *c = &m->cfg;
    const mdl_layer *L = &m->L[l];
    const int64_t H = c->hidden;
    rmsnorm(b, l, "ffn_norm", ntok, H, R(m->b_x, 0), L->ffn_norm, R(m->b_xn, 0));
    matvec(b, l, "w_gate", L->w1, c->ffn, H, ntok, R(m->b_xn, 0), R(m->b_f1, 0));
    matvec(b, l, "w_up", L->w3, c->ffn, H, ntok, R(m->b_xn, 0), R(m->b_f3, 0));
    ew(b, "swiglu", l, "swiglu", c->ffn, ntok, R(m->b_f1, 0), R(m->b_f3, 0), R(m->b_fa, 0));
    matvec(b, l, "w_down", L->w2, H, c->ffn, ntok, R(m->b_fa, 0), R(m->b_o, 0));
    ew(b, "residual", l, "ffn_residual", H, ntok, R(m->b_x, 0), R(m->b_o, 0), R(m->b_x, 0));
}

int mdl_graph_build(const mdl_model *m, int ntok, int p0, int head, mdl_graph *g, char *err,
                    size_t errlen)
{
    const mdl_config *c = &m->cfg;
    memset(g, 0, sizeof *g);
    g->ntok = ntok;
    g->p0 = p0;
    g->head = head;
    if (ntok < 1 || ntok > MDL_CHUNK || p0 + ntok > c->ctx) {
        snprintf(err, errlen, "chunk of %d tokens at %d: outside 1..%d tokens or the %d-position "
                 "cache", ntok, p0, MDL_CHUNK, c->ctx);
        return -1;
    }
    gb b = {m, g, err, errlen, 0};
    mdl_op *op = add(&b, embed_family(c->emb_fmt), -1, "embed");
    if (op) {
        set(&b, op, "rows", c->vocab);
        set(&b, op, "cols", c->hidden);
        set(&b, op, "tokens", ntok);
        op->in[0] = R(m->b_emb, 0);
        op->in[1] = R(m->b_ids, 0);
        op->out[0] = R(m->b_x, 0);
        done(&b, op, 2, 1);
    }
    for (int l = 0; l < c->layers && !b.bad; l++) {
        attn_full(&b, l, ntok, p0);
        ffn_dense(&b, l, ntok);
    }
    if (head) {
        const uint64_t last = 4ull * (uint64_t)(ntok - 1) * (uint64_t)c->hidden;
        rmsnorm(&b, -1, "output_norm", 1, c->hidden, R(m->b_x, last), m->b_norm_f, R(m->b_xn, 0));
        matvec(&b, -1, "lm_head", m->b_lm, c->vocab, c->hidden, 1, R(m->b_xn, 0),
               R(m->b_logits, 0));
    }
    if (b.bad) {
        mdl_graph_free(g);
        return -1;
    }
    return 0;
}
