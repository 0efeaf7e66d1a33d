/* gdn_gates, AVX-512: g = exp(-exp(A_log) softplus(a + dt_bias)), beta = sigmoid(b), 16 heads
 * per vector (the per-head A = exp(A_log) and dt_bias loaded with them); rows of tokens split
 * across threads; masked tails for hv not a multiple of 16. */
#include "gdn_common.h"
#include "gdn_x86.h"

typedef struct gates_job {
    const float *A_log, *a, *dtb, *b;
    float *g, *beta;
    int64_t n, hv;
} gates_job;

KB_TARGET_AVX512 static void gates_task(void *arg, int tid, int nt)
{
    const gates_job *J = arg;
    int64_t lo, hi;
    kb_split(J->n, 1, tid, nt, &lo, &hi);
    for (int64_t h0 = 0; h0 < J->hv && lo < hi; h0 += 16) {
        const __mmask16 m = J->hv - h0 >= 16 ? 0xFFFF : (__mmask16)((1u << (J->hv - h0)) - 1);
        const __m512 A = gdn_exp512(_mm512_maskz_loadu_ps(m, J->A_log + h0));
        const __m512 dt = _mm512_maskz_loadu_ps(m, J->dtb + h0);
        for (int64_t t = lo; t < hi; t++) {
            const int64_t i = t * J->hv + h0;
            const __m512 sp = gdn_softplus512(_mm512_add_ps(_mm512_maskz_loadu_ps(m, J->a + i), dt));
            const __m512 y = _mm512_mul_ps(A, sp);
            _mm512_mask_storeu_ps(J->g + i, m, gdn_exp512(_mm512_sub_ps(_mm512_setzero_ps(), y)));
            _mm512_mask_storeu_ps(J->beta + i, m, gdn_sigmoid512(_mm512_maskz_loadu_ps(m, J->b + i)));
        }
    }
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    gates_job J = {.A_log = in[0].data, .a = in[1].data, .dtb = in[2].data, .b = in[3].data,
                   .g = out[0].data, .beta = out[1].data, .n = c->p[0], .hv = c->p[1]};
    kb_pool_run(pool, gates_task, &J);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_gdn_gates_avx512 = {
    .family = "gdn_gates",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
