/* moe_route on AVX-512 (F): mr_route_token (moe_route_x86.h) per token, tokens split over
 * threads. Fewer than 64 tokens run on the calling thread alone: one token takes well under a
 * microsecond, less than waking a second thread. */
#include "moe_route.h"
#include "moe_route_x86.h"

typedef struct {
    kb_moe_route r;
    int64_t tokens;
    const float *logits, *bias;
    int32_t *ids;
    float *w;
} mr_job;

KB_TARGET_AVX512 static void route_range(const mr_job *j, int64_t t0, int64_t t1)
{
    mr_scratch sc;
    for (int64_t t = t0; t < t1; t++)
        mr_route_token(&j->r, j->logits + t * j->r.E, j->bias, j->ids + t * j->r.K,
                       j->w + t * j->r.K, &sc);
}

static void task(void *arg, int tid, int nthreads)
{
    const mr_job *j = arg;
    int64_t lo, hi;
    kb_split(j->tokens, 1, tid, nthreads, &lo, &hi);
    route_range(j, lo, hi);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    const int64_t *p = c->p;
    mr_job j = {{(int)p[MR_E], (int)p[MR_K], (int)p[MR_MODE], (int)p[MR_RENORM],
                 (int)p[MR_GROUPS], (int)p[MR_TOPK_GROUP]},
                p[MR_TOKENS],
                in[MR_LOGITS].data,
                p[MR_MODE] == MOE_SIGMOID_GROUPED ? in[MR_BIAS].data : NULL,
                out[MR_IDS].data,
                out[MR_WEIGHTS].data};
    if (j.tokens < 64 || !pool)
        route_range(&j, 0, j.tokens);
    else
        kb_pool_run(pool, task, &j);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_moe_route_avx512 = {
    .family = "moe_route",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
