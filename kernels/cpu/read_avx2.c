/* read, AVX2: the streaming-read yardstick. Each thread sums its contiguous share of x with eight
 * independent f32 accumulators (64 floats per iteration); every 4096 floats the accumulators are
 * folded into a double, so the f32 error stays that of a 512-term sum. Thread partials (double)
 * are combined in thread-id order. */
#include "simd_x86.h"

#define CHUNK 4096 /* floats between folds into double */
#define MAX_STACK_THREADS 256

typedef struct {
    const float *x;
    int64_t n;
    double *part;
} read_job;

KB_TARGET_AVX2 static double sum_range(const float *x, int64_t n)
{
    double total = 0.0;
    int64_t i = 0;
    while (n - i >= 64) {
        int64_t end = i + CHUNK <= n ? i + CHUNK : n - (n - i) % 64;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
               a7 = a0;
        for (; i < end; i += 64) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
            a4 = _mm256_add_ps(a4, _mm256_loadu_ps(x + i + 32));
            a5 = _mm256_add_ps(a5, _mm256_loadu_ps(x + i + 40));
            a6 = _mm256_add_ps(a6, _mm256_loadu_ps(x + i + 48));
            a7 = _mm256_add_ps(a7, _mm256_loadu_ps(x + i + 56));
        }
        __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                                 _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
        __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(s)),
                                  _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1)));
        __m128d d2 = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
        total += _mm_cvtsd_f64(_mm_add_sd(d2, _mm_unpackhi_pd(d2, d2)));
    }
    for (; i < n; i++)
        total += x[i];
    return total;
}

static void task(void *arg, int tid, int nthreads)
{
    const read_job *j = arg;
    int64_t lo, hi;
    kb_split(j->n, 64, tid, nthreads, &lo, &hi);
    j->part[tid] = sum_range(j->x + lo, hi - lo);
}

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    (void)c;
    int n = kb_pool_size(pool);
    double stack_part[MAX_STACK_THREADS];
    double *part = n <= MAX_STACK_THREADS ? stack_part : kb_scratch((size_t)n * sizeof(double));
    read_job j = {.x = in[0].data, .n = kb_tensor_numel(&in[0]), .part = part};
    kb_pool_run(pool, task, &j);
    double s = 0.0;
    for (int t = 0; t < n; t++)
        s += part[t];
    *(float *)out[0].data = (float)s;
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_read_avx2 = {
    .family = "read",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
