/* rope_yarn, AVX-512: threads over the rows (token, head); per token the cos and sin of its
 * rot / 2 angles once (libm in double of the f32 angle: the exact reduction comes with it; 32
 * pairs of calls per token against rot x heads rotated elements), then the rotation on 16-lane
 * vectors of each half. */
#include <math.h>

#include "rope_yarn.h"
#include "simd_x86.h"

typedef struct ry_job {
    const float *x, *f;
    float *y;
    float ms;
    int64_t H, rot, tokens, pos;
} ry_job;

/* y = [x0 c - x1 s ; x0 s + x1 c] over the two halves of one row */
KB_TARGET_AVX512 static void rotate(const float *x, float *y, const float *c, const float *s,
                                    int64_t half)
{
    for (int64_t i = 0; i < half; i += 16) {
        const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + half + i);
        const __m512 cv = _mm512_loadu_ps(c + i), sv = _mm512_loadu_ps(s + i);
        _mm512_storeu_ps(y + i, _mm512_fmsub_ps(x0, cv, _mm512_mul_ps(x1, sv)));
        _mm512_storeu_ps(y + half + i, _mm512_fmadd_ps(x0, sv, _mm512_mul_ps(x1, cv)));
    }
}

static void task(void *arg, int tid, int n)
{
    const ry_job *J = arg;
    const int64_t half = J->rot / 2;
    float c[128], s[128]; /* rot <= 256 */
    int64_t lo, hi, tcur = -1;
    kb_split(J->tokens * J->H, 1, tid, n, &lo, &hi);
    for (int64_t row = lo; row < hi; row++) {
        const int64_t t = row / J->H;
        if (t != tcur) {
            for (int64_t i = 0; i < half; i++) {
                const double th = kb_ry_theta(J->pos + t, J->f[i]);
                c[i] = (float)(J->ms * cos(th));
                s[i] = (float)(J->ms * sin(th));
            }
            tcur = t;
        }
        rotate(J->x + row * J->rot, J->y + row * J->rot, c, s, half);
    }
}

static void run(const kb_case *cs, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    const int64_t *p = cs->p;
    ry_job J = {.x = in[RY_IN_X].data,
                .f = in[RY_IN_FREQ].data,
                .y = out[RY_OUT].data,
                .ms = *(const float *)in[RY_IN_MSCALE].data,
                .H = p[RY_HEADS],
                .rot = p[RY_ROT],
                .tokens = p[RY_TOKENS],
                .pos = p[RY_POS]};
    kb_pool_run(pool, task, &J);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_rope_yarn_avx512 = {
    .family = "rope_yarn",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
