/* kbench model: end-to-end decoder runs composed from the families (models/README.md).
 *
 * A run is a list of operations (mdl_op: a family, a case, and where its tensors live in the
 * model's buffers) built once per forward chunk by model_graph.c, and executed by a backend:
 * "ref" (every family's reference, double accumulation), "cpu" (the CPU implementations'
 * cpu_run on the same buffers) or "vk" (the recording forms, one command list per step, weights
 * and caches resident on the device). The same list for every backend is what makes their
 * logits comparable, and each op names the suite row (family, shape) that times it alone. */
#ifndef KB_MODEL_H
#define KB_MODEL_H

#include <stdint.h>
#include <stdio.h>

#include "glue_common.h"
#include "kbench.h"

#define MDL_CHUNK 16       /* tokens per prefill chunk: the matvec families take up to 16 */
#define MDL_MAX_BACKENDS 3 /* ref, cpu, vk */

/* ---- presets (model_presets.c) ---------------------------------------------------------- */

typedef enum { MDL_ATTN_FULL, MDL_ATTN_GDN_MIX, MDL_ATTN_MLA } mdl_attn_kind;
typedef enum { MDL_FFN_DENSE, MDL_FFN_MOE } mdl_ffn_kind;

typedef struct mdl_preset {
    const char *name, *source;
    mdl_attn_kind attn;
    mdl_ffn_kind ffn_kind;
    int layers, hidden, heads, kv_heads, head_dim, rot, ffn, vocab, eps_exp;
    double theta;
    int qk_norm, out_gate;
    kb_wfmt wfmt[2]; /* the weight formats it runs with, default first (KB_WF_COUNT: none) */
    int experts, topk, expert_ffn; /* MoE presets */
    const char *needs;             /* families it needs beyond the ones every preset uses */
    const char *missing_why;       /* set at run time when a needed family is not registered */
} mdl_preset;

int mdl_preset_count(void);
const mdl_preset *mdl_preset_at(int i);
const mdl_preset *mdl_preset_find(const char *name);
/* NULL when every family the preset needs is registered, else which are missing (static). */
const char *mdl_preset_missing(const mdl_preset *p);

/* ---- the configuration of a run ---------------------------------------------------------- */

typedef struct mdl_config {
    char name[32];
    int layers, hidden, heads, kv_heads, head_dim, rot, ffn, vocab, eps_exp;
    double theta;
    int qk_norm, out_gate;
    kb_wfmt wfmt;       /* linear weights (and the embedding table unless emb_fmt says) */
    kb_wfmt emb_fmt;    /* embedding table */
    int tied;           /* LM head = the embedding table */
    int ctx;            /* positions the caches hold: prompt + gen */
    const float *rope_freq_factors; /* GGUF rope_freqs (Llama 3.1): inv_freq / factor; NULL */
    char scaled[256];   /* what was scaled down to fit the machine, "" when nothing */
} mdl_config;

/* ---- buffers and tensors ------------------------------------------------------------------ */

typedef enum { MB_WEIGHT, MB_ACT, MB_CACHE, MB_TABLE, MB_IDS } mdl_buf_kind;

typedef struct mdl_buf {
    char name[40];
    mdl_buf_kind kind;
    kb_wfmt fmt;      /* weights: their format (norm weights: KB_WF_F32) */
    uint64_t bytes;   /* payload */
    void *host;       /* weights and tables: the data every backend starts from */
    int owned;        /* host was allocated here (not a view into a mapped file) */
} mdl_buf;

/* A tensor of an op: a range of a buffer (its size comes from the family's describe). */
typedef struct mdl_ref {
    int buf;      /* index in mdl_model.bufs; -1: none */
    uint64_t off; /* bytes */
} mdl_ref;

typedef struct mdl_op {
    const kb_family *fam;
    kb_case c;
    int n_in, n_out;
    mdl_ref in[KB_MAX_TENSORS], out[KB_MAX_TENSORS];
    int layer;        /* -1: embedding or head */
    char role[24];    /* "attn_norm", "wq", "attn", ... */
} mdl_op;

typedef struct mdl_graph {
    mdl_op *ops;
    int n, cap;
    int ntok, p0; /* tokens of this chunk, position of the first */
    int head;     /* ends with the final norm and LM head (the logits) */
} mdl_graph;

/* The buffers of one layer (ids in mdl_model.bufs; -1 where the preset has none). */
typedef struct mdl_layer {
    int attn_norm, wq, wk, wv, wo, wgate, q_norm, k_norm; /* wgate: output gate projection */
    int ffn_norm, w1, w3, w2;                             /* gate, up, down */
    int kc, vc;                                           /* K and V caches, f16 [ctx][kv][D] */
} mdl_layer;

/* The model: configuration, buffers (weights are shared by the backends; activations and
 * caches each backend allocates its own), and the ids of the buffers the graph uses. */
typedef struct mdl_model {
    mdl_config cfg;
    mdl_buf *bufs;
    int nbufs, capbufs;
    int b_emb, b_lm, b_norm_f, b_cos, b_sin, b_ids;                  /* global */
    int b_x, b_xn, b_q, b_k, b_v, b_g, b_att, b_o, b_f1, b_f3, b_fa, b_logits; /* activations */
    mdl_layer *L;
    void *gguf; /* the GGUF file of --gguf (gguf_file), or NULL */
} mdl_model;

int mdl_buf_add(mdl_model *m, const char *name, mdl_buf_kind kind, kb_wfmt fmt, uint64_t bytes);
/* The descriptors of op's tensors (data NULL), from its family. */
void mdl_op_tensors(const mdl_op *op, kb_tensor *in, kb_tensor *out);

/* model_weights.c: buffers of cfg, synthetic weights from seed (threads: pool or NULL). */
int mdl_build(mdl_model *m, const mdl_config *cfg, uint64_t seed, kb_pool *pool, char *err,
              size_t errlen);
/* Buffers of cfg without weights (the GGUF loader fills them). */
int mdl_alloc_layout(mdl_model *m, const mdl_config *cfg, char *err, size_t errlen);
void mdl_free(mdl_model *m);
/* The RoPE table for positions 0 .. ctx-1 (with GGUF frequency factors when present). */
void mdl_rope_table(const mdl_config *cfg, float *cos_t, float *sin_t);
double mdl_weight_bytes(const mdl_model *m); /* every weight and table */

/* model_graph.c: the ops of one chunk: ntok tokens at positions p0.. (ntok <= MDL_CHUNK),
 * the head (final norm + LM head on the last token) when head is set. */
int mdl_graph_build(const mdl_model *m, int ntok, int p0, int head, mdl_graph *g, char *err,
                    size_t errlen);
void mdl_graph_free(mdl_graph *g);
/* The matvec family of a weight format ("matvec_q4_0", ...); NULL when there is none. */
const char *mdl_matvec_family(kb_wfmt f);
/* Parameters of a matvec case for that family: rows, cols, tokens. */
void mdl_matvec_case(const kb_family *f, int64_t rows, int64_t cols, int64_t tokens,
                     kb_case *c);

/* ---- backends (model_exec_cpu.c, model_exec_vk.c) ------------------------------------------ */

typedef struct mdl_backend mdl_backend;

/* A backend runs chunks of ops on its own activations and caches. */
struct mdl_backend {
    const char *name;         /* "ref", "cpu", "vk" */
    const mdl_model *m;
    char impls[768];          /* the implementation chosen per family, "family=impl ..." */
    int low_precision;        /* an implementation with its own (looser) tolerance is in use */
    char precision_why[256];  /* their tol_why */
    /* Runs the chunks g[0..ng) in order, token ids ids[k] for chunk k. op_s (may be NULL)
     * gets each op's seconds, chunk after chunk (g[0].n + g[1].n + ... entries); *seconds the
     * whole (GPU timestamps on Vulkan, wall time on the CPU), *wall the wall time including
     * recording and submission. The logits of the last chunk (which has the head) go to
     * logits[vocab]. Returns 0 or -1 with err. */
    int (*run)(mdl_backend *b, const mdl_graph *g, int ng, const int32_t *const *ids,
               double *op_s, double *seconds, double *wall, float *logits, char *err,
               size_t errlen);
    /* RMS of the hidden state after the embedding (entry 0) and after each layer, for the
     * last token of the last chunk run; NULL where not readable (Vulkan). */
    const double *(*hidden_rms)(mdl_backend *b);
    void (*free)(mdl_backend *b);
};

/* The registry index of family f (tables of implementations per family). */
static inline int kb_family_index(const kb_family *f)
{
    for (int i = 0; i < kb_family_count(); i++)
        if (kb_family_at(i) == f)
            return i;
    return 0;
}

/* Chooses the implementation of every family the model's graphs use for backend be (impl is
 * indexed by kb_family_index); fills b->impls, low_precision, precision_why. */
int mdl_choose_impls(mdl_backend *b, kb_backend be, const kb_env *env, const char *spec,
                     const kb_impl **impl, char *err, size_t errlen);

/* impl_spec: "--impl" (family=impl,... or a bare implementation name), NULL for the defaults */
mdl_backend *mdl_backend_ref(const mdl_model *m, char *err, size_t errlen);
mdl_backend *mdl_backend_cpu(const mdl_model *m, int threads, const char *impl_spec, char *err,
                             size_t errlen);
mdl_backend *mdl_backend_vk(const mdl_model *m, int device, const char *impl_spec, char *err,
                            size_t errlen);
/* The implementation for family f on backend be: from impl_spec, else the last available one
 * registered (the most capable ISA; on Vulkan with a recording form). why when none. */
const kb_impl *mdl_pick_impl(const kb_family *f, kb_backend be, const kb_env *env,
                             const char *impl_spec, int need_record, char *why, size_t whylen);
/* Checks impl_spec names only existing implementations. */
int mdl_impl_spec_check(const char *impl_spec, char *err, size_t errlen);

/* ---- GGUF (gguf.c, model_gguf.c) ----------------------------------------------------------- */

/* Reads a llama-architecture GGUF into cfg and m (weights mapped or copied). --layers may cut
 * the layer count (layers > 0). */
int mdl_load_gguf(mdl_model *m, const char *path, int layers, int ctx, char *err,
                  size_t errlen);
void mdl_gguf_release(void *gguf); /* the mapping of mdl_model.gguf (mdl_free calls it) */

/* ---- the command (model_cli.c, model_run.c) ------------------------------------------------- */

int kb_model_main(int argc, char **argv);

#endif
