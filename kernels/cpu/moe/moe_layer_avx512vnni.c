/* moe_layer on AVX512-VNNI: the routing kernel of moe_route_avx512 (moe_route_x86.h) for every
 * token, then the FFN of moe_ffn_avx512vnni (moe_ffn_job.h) on its ids and weights. */
#include "moe_ffn_job.h"
#include "moe_layer.h"

typedef struct {
    kb_moe_route r;
    int64_t tokens;
    const float *logits, *bias;
    int32_t *ids;
    float *w;
} ml_route_job;

KB_TARGET_AVX512 static void route_range(const ml_route_job *j, int64_t t0, int64_t t1)
{
    mr_scratch sc;
    for (int64_t t = t0; t < t1; t++)
        mr_route_token(&j->r, j->logits + t * j->r.E, j->bias, j->ids + t * j->r.K,
                       j->w + t * j->r.K, &sc);
}

static void route_task(void *arg, int tid, int nthreads)
{
    const ml_route_job *j = arg;
    int64_t lo, hi;
    kb_split(j->tokens, 1, tid, nthreads, &lo, &hi);
    route_range(j, lo, hi);
}

/* The routing's ids and weights: a buffer of this file's own (mf_run uses kb_scratch). */
static void *route_buf(size_t bytes)
{
    static _Thread_local void *buf;
    static _Thread_local size_t cap;
    if (bytes > cap) {
        free(buf);
        buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!buf) {
            fprintf(stderr, "kbench: out of memory for the moe_layer routing\n");
            abort();
        }
        cap = bytes;
    }
    return buf;
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_moe_ffn f;
    kb_moe_route r;
    kb_moe_layer_from_params(c->p, &f, &r);
    const kb_moe_layer_in ix = kb_moe_layer_inputs(&f, &r);
    int32_t *ids = route_buf((size_t)(f.tokens * f.K) * 8);
    ml_route_job rj = {r, f.tokens, in[ix.logits].data, ix.bias >= 0 ? in[ix.bias].data : NULL,
                       ids, (float *)(ids + f.tokens * f.K)};
    if (f.tokens < 64 || !pool)
        route_range(&rj, 0, f.tokens);
    else
        kb_pool_run(pool, route_task, &rj);
    mf_run(&f, in[ix.x].data, in[ix.h].data, rj.ids, rj.w, in[ix.W].data,
           ix.sc >= 0 ? in[ix.sc].data : NULL, ix.bi >= 0 ? in[ix.bi].data : NULL,
           ix.sg >= 0 ? in[ix.sg].data : NULL, out[0].data, pool);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512vnni();
}

const kb_impl kb_impl_moe_layer_avx512vnni = {
    .family = "moe_layer",
    .name = "avx512vnni",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .tol_cond = 5e-3,
    .tol_why = "int8 activations, as moe_ffn avx512vnni",
    .cpu_run = run,
};
