/* The GGUF reader: a tiny llama GGUF written here from a synthetic model (query and key rows in
 * GGML's RoPE order, as llama.cpp's converter stores them) loads back into the same model (the
 * reference backend's logits bit for bit equal); tied and F16 output heads run; and malformed
 * or truncated files are errors with a message, never a crash (truncation at every length of
 * the header and tensor table, and at steps through the data; each field corrupted; random
 * byte flips). */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "gguf.h"
#include "kbtest.h"
#include "model_run.h"

typedef struct gw {
    uint8_t *b;
    size_t n, cap;
} gw;

static void put(gw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2;
        w->b = realloc(w->b, w->cap);
        assert_non_null(w->b);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void u32(gw *w, uint32_t v) { put(w, &v, 4); }
static void u64(gw *w, uint64_t v) { put(w, &v, 8); }
static void str(gw *w, const char *s)
{
    u64(w, strlen(s));
    put(w, s, strlen(s));
}
static void kv_u32(gw *w, const char *k, uint32_t v)
{
    str(w, k);
    u32(w, GGUF_U32);
    u32(w, v);
}
static void kv_f32(gw *w, const char *k, float v)
{
    str(w, k);
    u32(w, GGUF_F32);
    put(w, &v, 4);
}

typedef struct wt {
    char name[64];
    uint32_t type, ndim;
    uint64_t ne[2];
    const void *data;
    uint64_t bytes;
    void *own;
} wt;

static uint32_t ggml_of(kb_wfmt f)
{
    return f == KB_WF_Q4_0 ? GGML_Q4_0 : f == KB_WF_Q8_0 ? GGML_Q8_0 : f == KB_WF_BF16 ? GGML_BF16
           : f == KB_WF_F16 ? GGML_F16 : GGML_F32;
}

/* The layer's rows in GGML's order: file row h*D + 2i + s = model row h*D + s*D/2 + i. */
static void *permute(const mdl_buf *b, uint64_t rows, uint64_t D, uint64_t rb)
{
    uint8_t *p = malloc(b->bytes);
    for (uint64_t r = 0; r < rows; r++) {
        const uint64_t h = r / D, j = r % D, i = j / 2, s = j % 2;
        memcpy(p + r * rb, (const uint8_t *)b->host + (h * D + s * (D / 2) + i) * rb, rb);
    }
    return p;
}

enum { W_NORMAL, W_TIED, W_F16_OUT };

/* A GGUF of model m (mode: output as in m, absent, or F16). */
static void write_gguf(const mdl_model *m, int mode, gw *w)
{
    const mdl_config *c = &m->cfg;
    wt t[256];
    int nt = 0;
#define ADDT(nm, bi, cols, rows, perm)                                                        \
    do {                                                                                   \
        const mdl_buf *b_ = &m->bufs[bi];                                                  \
        wt *x = &t[nt++];                                                                  \
        memset(x, 0, sizeof *x);                                                           \
        snprintf(x->name, sizeof x->name, "%s", nm);                                       \
        x->type = ggml_of(b_->fmt);                                                        \
        x->ndim = (rows) ? 2 : 1;                                                          \
        x->ne[0] = cols;                                                                   \
        x->ne[1] = (rows) ? (rows) : 1;                                                    \
        x->bytes = b_->bytes;                                                              \
        x->data = b_->host;                                                                \
        if (perm)                                                                          \
            x->data = x->own = permute(b_, rows, c->head_dim,                              \
                                       (uint64_t)kb_wf_row_bytes(b_->fmt, cols));          \
    } while (0)
    ADDT("token_embd.weight", m->b_emb, c->hidden, c->vocab, 0);
    ADDT("output_norm.weight", m->b_norm_f, c->hidden, 0, 0);
    if (mode == W_NORMAL)
        ADDT("output.weight", m->b_lm, c->hidden, c->vocab, 0);
    if (mode == W_F16_OUT) {
        wt *x = &t[nt++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "output.weight");
        x->type = GGML_F16;
        x->ndim = 2;
        x->ne[0] = c->hidden;
        x->ne[1] = c->vocab;
        x->bytes = 2ull * c->hidden * c->vocab;
        uint16_t *h = malloc(x->bytes);
        for (uint64_t i = 0; i < x->bytes / 2; i++)
            h[i] = kb_f32_to_f16((float)((int)(i % 17) - 8) * 0.01f);
        x->data = x->own = h;
    }
    const uint64_t QD = (uint64_t)c->heads * c->head_dim, KD = (uint64_t)c->kv_heads * c->head_dim;
    for (int l = 0; l < c->layers; l++) {
        const mdl_layer *L = &m->L[l];
        char n[64];
#define LT(what, bi, cols, rows, perm)                                                        \
    snprintf(n, sizeof n, "blk.%d.%s.weight", l, what);                                       \
    ADDT(n, bi, cols, rows, perm)
        LT("attn_norm", L->attn_norm, c->hidden, 0, 0);
        LT("attn_q", L->wq, c->hidden, QD, 1);
        LT("attn_k", L->wk, c->hidden, KD, 1);
        LT("attn_v", L->wv, c->hidden, KD, 0);
        LT("attn_output", L->wo, QD, c->hidden, 0);
        LT("ffn_norm", L->ffn_norm, c->hidden, 0, 0);
        LT("ffn_gate", L->w1, c->hidden, c->ffn, 0);
        LT("ffn_up", L->w3, c->hidden, c->ffn, 0);
        LT("ffn_down", L->w2, c->ffn, c->hidden, 0);
    }
    memset(w, 0, sizeof *w);
    put(w, "GGUF", 4);
    u32(w, 3);
    u64(w, (uint64_t)nt);
    u64(w, 12);
    str(w, "general.architecture");
    u32(w, GGUF_STRING);
    str(w, "llama");
    kv_u32(w, "llama.block_count", (uint32_t)c->layers);
    kv_u32(w, "llama.embedding_length", (uint32_t)c->hidden);
    kv_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn);
    kv_u32(w, "llama.attention.head_count", (uint32_t)c->heads);
    kv_u32(w, "llama.attention.head_count_kv", (uint32_t)c->kv_heads);
    kv_u32(w, "llama.attention.key_length", (uint32_t)c->head_dim); /* hidden != heads x D */
    kv_f32(w, "llama.rope.freq_base", (float)c->theta);
    kv_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_u32(w, "general.alignment", 32);
    str(w, "tokenizer.ggml.tokens"); /* an array of strings the reader skips */
    u32(w, GGUF_ARRAY);
    u32(w, GGUF_STRING);
    u64(w, 3);
    str(w, "<s>");
    str(w, "a");
    str(w, "bc");
    str(w, "tokenizer.ggml.token_type"); /* and one of integers */
    u32(w, GGUF_ARRAY);
    u32(w, GGUF_I32);
    u64(w, 3);
    for (int32_t i = 0; i < 3; i++)
        put(w, &i, 4);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        str(w, t[i].name);
        u32(w, t[i].ndim);
        for (uint32_t d = 0; d < t[i].ndim; d++)
            u64(w, t[i].ne[d]);
        u32(w, t[i].type);
        u64(w, off);
        off = (off + t[i].bytes + 31) / 32 * 32;
    }
    static const uint8_t zeros[32];
    put(w, zeros, (32 - w->n % 32) % 32);
    for (int i = 0; i < nt; i++) {
        put(w, t[i].data, t[i].bytes);
        if (i + 1 < nt)
            put(w, zeros, (32 - t[i].bytes % 32) % 32);
        free(t[i].own);
    }
}

static void tiny(mdl_config *c, kb_wfmt f)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "llama3-8b");
    c->layers = 2;
    c->hidden = 128;
    c->heads = 4;
    c->kv_heads = 2;
    c->head_dim = 64;
    c->rot = 64;
    c->ffn = 256;
    c->vocab = 300;
    c->eps_exp = 5;
    c->theta = 500000;
    c->wfmt = c->emb_fmt = f;
    c->ctx = 12;
}

static char *to_file(const gw *w)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/kbench_gguf_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, w->b, w->n), (ssize_t)w->n);
    close(fd);
    return path;
}

/* Logits of the reference backend on m for 5 prompt tokens and 3 decode steps. */
static void logits_of(mdl_model *m, const char *backend, float *out, int n)
{
    mdl_opts o = {.prompt = 5, .gen = 3, .threads = 2, .device = -1, .seed = 3, .wfmt = -1,
                  .backends = backend, .quiet = 1, .no_roofline = 1};
    char err[256];
    mdl_backend *b = strcmp(backend, "ref") == 0 ? mdl_backend_ref(m, err, sizeof err)
                                                 : mdl_backend_cpu(m, 2, NULL, err, sizeof err);
    assert_non_null(b);
    mdl_graph g;
    assert_int_equal(mdl_graph_build(m, 5, 0, 1, &g, err, sizeof err), 0);
    const int32_t ids[5] = {3, 1, 4, 1, 5};
    const int32_t *p = ids;
    double s, wl;
    assert_int_equal(b->run(b, &g, 1, &p, NULL, &s, &wl, out, err, sizeof err), 0);
    mdl_graph_free(&g);
    for (int k = 1; k < 4; k++) {
        assert_int_equal(mdl_graph_build(m, 1, 4 + k, 1, &g, err, sizeof err), 0);
        const int32_t tok = 7 * k;
        const int32_t *pt = &tok;
        assert_int_equal(b->run(b, &g, 1, &pt, NULL, &s, &wl, out + k * n, err, sizeof err), 0);
        mdl_graph_free(&g);
    }
    (void)o;
    b->free(b);
}

static void roundtrip(kb_wfmt f)
{
    mdl_config c;
    tiny(&c, f);
    mdl_model m, g;
    char err[512];
    assert_int_equal(mdl_build(&m, &c, 11, NULL, err, sizeof err), 0);
    gw w;
    write_gguf(&m, W_NORMAL, &w);
    char *path = to_file(&w);
    if (mdl_load_gguf(&g, path, 0, c.ctx, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    assert_int_equal(g.cfg.layers, 2);
    assert_int_equal(g.cfg.vocab, 300);
    assert_int_equal(g.cfg.eps_exp, 5);
    assert_int_equal(g.bufs[g.L[1].wq].fmt, f);
    float *a = malloc(sizeof(float) * 300 * 4), *b = malloc(sizeof(float) * 300 * 4);
    logits_of(&m, "ref", a, 300);
    logits_of(&g, "ref", b, 300);
    assert_memory_equal(a, b, sizeof(float) * 300 * 4); /* the same weights, the same math */
    logits_of(&g, "cpu", b, 300); /* the CPU kernels on weights in the mapped file */
    free(a);
    free(b);
    mdl_free(&g);
    /* --layers cuts the file's layers */
    assert_int_equal(mdl_load_gguf(&g, path, 1, c.ctx, err, sizeof err), 0);
    assert_int_equal(g.cfg.layers, 1);
    mdl_free(&g);
    unlink(path);
    free(w.b);
    mdl_free(&m);
}

static void test_roundtrip_q4_0(void **st)
{
    (void)st;
    roundtrip(KB_WF_Q4_0);
}

static void test_roundtrip_q8_0(void **st)
{
    (void)st;
    roundtrip(KB_WF_Q8_0);
}

static void test_tied_and_f16_head(void **st)
{
    (void)st;
    mdl_config c;
    tiny(&c, KB_WF_Q8_0);
    mdl_model m, g;
    char err[512];
    assert_int_equal(mdl_build(&m, &c, 5, NULL, err, sizeof err), 0);
    for (int mode = W_TIED; mode <= W_F16_OUT; mode++) {
        gw w;
        write_gguf(&m, mode, &w);
        char *path = to_file(&w);
        if (mdl_load_gguf(&g, path, 0, c.ctx, err, sizeof err) != 0)
            fail_msg("load: %s", err);
        if (mode == W_TIED)
            assert_int_equal(g.b_lm, g.b_emb);
        else
            assert_non_null(strstr(g.cfg.scaled, "converted to bf16"));
        float *l = malloc(sizeof(float) * 300 * 4);
        logits_of(&g, "ref", l, 300);
        for (int i = 0; i < 1200; i++)
            assert_true(isfinite(l[i]));
        free(l);
        mdl_free(&g);
        unlink(path);
        free(w.b);
    }
    mdl_free(&m);
}

/* ---- malformed files ---- */

static gw valid_file(mdl_model *m)
{
    mdl_config c;
    tiny(&c, KB_WF_Q4_0);
    char err[256];
    assert_int_equal(mdl_build(m, &c, 9, NULL, err, sizeof err), 0);
    gw w;
    write_gguf(m, W_NORMAL, &w);
    return w;
}

/* Parse and load from memory copies: -1 with a message, or 0. Never a crash (ASan build). */
static int load_bytes(const uint8_t *b, size_t n, char *err, size_t errlen)
{
    gw w = {0};
    put(&w, b, n ? n : 1);
    char *path = to_file(&(gw){w.b, n, n});
    mdl_model g;
    err[0] = 0;
    int rc = mdl_load_gguf(&g, path, 0, 12, err, errlen);
    if (rc == 0)
        mdl_free(&g);
    unlink(path);
    free(w.b);
    if (rc != 0 && !err[0])
        fail_msg("an error without a message");
    return rc;
}

static void test_truncated(void **st)
{
    (void)st;
    mdl_model m;
    gw w = valid_file(&m);
    char err[512];
    size_t header = 0; /* where the data section begins: every cut before it is tried */
    gguf_file g;
    assert_int_equal(gguf_parse(&g, w.b, w.n, err, sizeof err), 0);
    header = (size_t)(g.t[0].data - w.b);
    gguf_close(&g);
    for (size_t n = 0; n < w.n; n += n < header + 64 ? 1 : 997) {
        if (gguf_parse(&g, w.b, n, err, sizeof err) == 0)
            fail_msg("a file cut at %zu of %zu bytes parsed", n, w.n);
        if (!strstr(err, "truncated") && n >= 8)
            fail_msg("cut at %zu: '%s' does not say truncated", n, err);
    }
    assert_int_equal(load_bytes(w.b, 100, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(load_bytes(w.b, w.n - 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(load_bytes(w.b, w.n, err, sizeof err), 0);
    free(w.b);
    mdl_free(&m);
}

/* Byte offset of the first occurrence of s in w. */
static size_t find(const gw *w, const char *s)
{
    const size_t n = strlen(s);
    for (size_t i = 0; i + n <= w->n; i++)
        if (memcmp(w->b + i, s, n) == 0)
            return i;
    fail_msg("'%s' not in the file", s);
    return 0;
}

/* A copy of w with bytes at `at` replaced; expects load failure saying `says`. */
static void corrupt(const gw *w, size_t at, const void *bytes, size_t n, const char *says)
{
    uint8_t *c = malloc(w->n);
    memcpy(c, w->b, w->n);
    memcpy(c + at, bytes, n);
    char err[512];
    if (load_bytes(c, w->n, err, sizeof err) == 0)
        fail_msg("corruption at %zu (%s) loaded", at, says);
    if (!strstr(err, says))
        fail_msg("corruption at %zu: '%s' does not say '%s'", at, err, says);
    free(c);
}

static void test_corrupt_fields(void **st)
{
    (void)st;
    mdl_model m;
    gw w = valid_file(&m);
    const uint32_t v1 = 1, big32 = 0xFFFFFFFFu, t99 = 99, t9 = GGUF_ARRAY, q6k = 14, three = 3,
                   zero32 = 0, five = 5;
    const uint64_t huge = 1ull << 60, zero64 = 0, odd = 17;
    corrupt(&w, 0, "GGML", 4, "not a GGUF file");
    corrupt(&w, 4, &v1, 4, "version 1");
    corrupt(&w, 8, &huge, 8, "cannot fit");   /* tensor count */
    corrupt(&w, 16, &huge, 8, "cannot fit");  /* metadata count */
    corrupt(&w, 24, &huge, 8, "not plausible"); /* the first key's length */
    const size_t arch = find(&w, "general.architecture");
    corrupt(&w, arch + 20, &t99, 4, "value type 99");
    corrupt(&w, arch + 24, &huge, 8, "not plausible"); /* the string value's length */
    corrupt(&w, arch + 32, "lamma", 5, "architecture 'lamma'");
    const size_t toks = find(&w, "tokenizer.ggml.tokens");
    corrupt(&w, toks + 21 + 4, &t9, 4, "array of type 9");
    corrupt(&w, toks + 21 + 8, &huge, 8, "cannot fit");
    const size_t al = find(&w, "general.alignment");
    corrupt(&w, al + 17 + 4, &three, 4, "power of two");
    const size_t bc = find(&w, "llama.block_count");
    corrupt(&w, bc + 17 + 4, &zero32, 4, "llama.block_count = 0");
    corrupt(&w, bc + 17, &t99, 4, "value type 99");
    /* the tensor table: token_embd.weight's entry */
    const size_t te = find(&w, "token_embd.weight");
    corrupt(&w, te + 17, &five, 4, "5 dimensions");
    corrupt(&w, te + 17 + 4, &zero64, 8, "dimension 0 = 0");
    corrupt(&w, te + 17 + 4, &huge, 8, "dimension 0");
    corrupt(&w, te + 17 + 4 + 16, &big32, 4, "type unknown"); /* unknown: reads as unsized */
    corrupt(&w, te + 17 + 4 + 16 + 4, &odd, 8, "not a multiple of the alignment");
    const uint64_t far = (uint64_t)w.n / 32 * 32;
    corrupt(&w, te + 17 + 4 + 16 + 4, &far, 8, "past the file");
    corrupt(&w, te + 17 + 4, &odd, 8, "not whole Q4_0 blocks");
    const size_t fd = find(&w, "blk.1.ffn_down.weight");
    corrupt(&w, fd, "blk.1.ffn_gate", 14, "appears twice");
    corrupt(&w, fd, "blk.1.ffx_down", 14, "blk.1.ffn_down.weight is missing");
    corrupt(&w, fd + 21 + 4 + 16, &q6k, 4, "type Q6_K");
    const uint64_t bigger = 512; /* layer 0's ffn_down with rows of 512 (the file holds them) */
    corrupt(&w, find(&w, "blk.0.ffn_down.weight") + 21 + 4, &bigger, 8, "has shape");
    free(w.b);
    mdl_free(&m);
}

/* Random byte flips in the metadata and tensor table: load or fail with a message. */
static void test_random_flips(void **st)
{
    (void)st;
    mdl_model m;
    gw w = valid_file(&m);
    gguf_file g;
    char err[512];
    assert_int_equal(gguf_parse(&g, w.b, w.n, err, sizeof err), 0);
    const size_t header = (size_t)(g.t[0].data - w.b);
    gguf_close(&g);
    kb_rng rng;
    kb_rng_seed(&rng, 42);
    uint8_t *c = malloc(w.n);
    int failed = 0;
    for (int k = 0; k < 300; k++) {
        memcpy(c, w.b, w.n);
        for (int f = 0; f < 1 + k % 3; f++)
            c[kb_rng_u64(&rng) % header] ^= (uint8_t)(1u << (kb_rng_u64(&rng) % 8));
        if (gguf_parse(&g, c, w.n, err, sizeof err) == 0)
            gguf_close(&g);
        else
            failed++;
        failed += load_bytes(c, w.n, err, sizeof err) != 0;
    }
    print_message("random flips: %d of 600 parses or loads refused (the rest read)\n", failed);
    assert_true(failed > 0);
    free(c);
    free(w.b);
    mdl_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_q4_0),   cmocka_unit_test(test_roundtrip_q8_0),
        cmocka_unit_test(test_tied_and_f16_head), cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt_fields),   cmocka_unit_test(test_random_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
