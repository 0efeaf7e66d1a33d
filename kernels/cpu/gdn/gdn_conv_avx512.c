/* gdn_conv, AVX-512: causal depthwise conv1d (width 4) + SiLU and the new 3-row state.
 * Work units are (sequence, tile of CV_TILE channels); a unit deinterleaves its weights
 * ([ch][4] -> 4 rows of the tile) once, then walks the tokens: each output row of the tile
 * reads the 4 rows of the virtual sequence [state | x] it needs (the 3 previous ones are still
 * in L1). Channel tails use masked loads and stores. */
#include "gdn_common.h"
#include "gdn_x86.h"

#define CV_TILE 256

typedef struct conv_job {
    const float *x, *w, *st;
    float *y, *st1;
    int64_t batch, n, ch;
} conv_job;

/* Row p of the virtual sequence of sequence b. */
static inline const float *conv_virt(const conv_job *J, int64_t b, int64_t p)
{
    return p < 3 ? J->st + (b * 3 + p) * J->ch : J->x + (b * J->n + p - 3) * J->ch;
}

KB_TARGET_AVX512 static void conv_task(void *arg, int tid, int nt)
{
    const conv_job *J = arg;
    const int64_t tiles = (J->ch + CV_TILE - 1) / CV_TILE;
    float wt[4][CV_TILE] __attribute__((aligned(64)));
    int64_t lo, hi;
    kb_split(J->batch * tiles, 1, tid, nt, &lo, &hi);
    for (int64_t u = lo; u < hi; u++) {
        const int64_t b = u / tiles, c0 = (u % tiles) * CV_TILE;
        const int64_t nc = J->ch - c0 < CV_TILE ? J->ch - c0 : CV_TILE;
        for (int64_t c = 0; c < nc; c++)
            for (int j = 0; j < 4; j++)
                wt[j][c] = J->w[(c0 + c) * 4 + j];
        for (int64_t t = 0; t < J->n; t++) {
            const float *r0 = conv_virt(J, b, t) + c0, *r1 = conv_virt(J, b, t + 1) + c0,
                        *r2 = conv_virt(J, b, t + 2) + c0, *r3 = conv_virt(J, b, t + 3) + c0;
            float *y = J->y + (b * J->n + t) * J->ch + c0;
            for (int64_t c = 0; c < nc; c += 16) {
                const __mmask16 m = nc - c >= 16 ? 0xFFFF : (__mmask16)((1u << (nc - c)) - 1);
                __m512 a = _mm512_mul_ps(_mm512_load_ps(&wt[0][c]), _mm512_maskz_loadu_ps(m, r0 + c));
                a = _mm512_fmadd_ps(_mm512_load_ps(&wt[1][c]), _mm512_maskz_loadu_ps(m, r1 + c), a);
                a = _mm512_fmadd_ps(_mm512_load_ps(&wt[2][c]), _mm512_maskz_loadu_ps(m, r2 + c), a);
                a = _mm512_fmadd_ps(_mm512_load_ps(&wt[3][c]), _mm512_maskz_loadu_ps(m, r3 + c), a);
                _mm512_mask_storeu_ps(y + c, m, gdn_silu512(a));
            }
        }
        for (int64_t r = 0; r < 3; r++) { /* the new state: the last 3 rows of [state | x] */
            const float *src = conv_virt(J, b, J->n + r) + c0;
            float *dst = J->st1 + (b * 3 + r) * J->ch + c0;
            for (int64_t c = 0; c < nc; c += 16) {
                const __mmask16 m = nc - c >= 16 ? 0xFFFF : (__mmask16)((1u << (nc - c)) - 1);
                _mm512_mask_storeu_ps(dst + c, m, _mm512_maskz_loadu_ps(m, src + c));
            }
        }
    }
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    conv_job J = {.x = in[0].data, .w = in[1].data, .st = in[2].data, .y = out[0].data,
                  .st1 = out[1].data, .batch = c->p[0], .n = c->p[1], .ch = c->p[2]};
    kb_pool_run(pool, conv_task, &J);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_gdn_conv_avx512 = {
    .family = "gdn_conv",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
