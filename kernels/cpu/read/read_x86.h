/* The read yardstick on x86 vectors (read_avx2.c, read_avx512.c): each thread sums its contiguous
 * share of x with eight independent f32 vector accumulators (8 vectors per iteration); every
 * 4096 floats the accumulators are folded into a double, so the f32 error stays that of a sum of
 * 4096 / (8 W) terms per lane. Thread partials (double) are combined in thread-id order.
 * The including file defines first, with its target:
 *   #define READ_TARGET  its KB_TARGET_* attribute
 *   #define READ_BITS    its vector width in bits (256: __m256 and _mm256_*, 512: __m512 ...)
 *   double read_fold(__m<BITS> s)   the sum of s's floats, in double */
#ifndef KB_READ_X86_H
#define KB_READ_X86_H

#include "simd_x86.h"

#ifndef READ_BITS
#error "define READ_TARGET, READ_BITS and read_fold before including read_x86.h"
#endif

#define READ_W (READ_BITS / 32) /* floats per vector */
#define READ_CAT3(a, b, c) a##b##c
#define READ_OP(a, b, c) READ_CAT3(a, b, c) /* expands READ_BITS first */
#define read_v READ_OP(__m, READ_BITS, )
#define read_zero READ_OP(_mm, READ_BITS, _setzero_ps)
#define read_load READ_OP(_mm, READ_BITS, _loadu_ps)
#define read_add READ_OP(_mm, READ_BITS, _add_ps)

#define CHUNK 4096 /* floats between folds into double */
#define MAX_STACK_THREADS 256

typedef struct {
    const float *x;
    int64_t n;
    double *part;
} read_job;

READ_TARGET static double sum_range(const float *x, int64_t n)
{
    const int64_t step = 8 * READ_W;
    double total = 0.0;
    int64_t i = 0;
    while (n - i >= step) {
        int64_t end = i + CHUNK <= n ? i + CHUNK : n - (n - i) % step;
        read_v a0 = read_zero(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (; i < end; i += step) {
            a0 = read_add(a0, read_load(x + i));
            a1 = read_add(a1, read_load(x + i + READ_W));
            a2 = read_add(a2, read_load(x + i + 2 * READ_W));
            a3 = read_add(a3, read_load(x + i + 3 * READ_W));
            a4 = read_add(a4, read_load(x + i + 4 * READ_W));
            a5 = read_add(a5, read_load(x + i + 5 * READ_W));
            a6 = read_add(a6, read_load(x + i + 6 * READ_W));
            a7 = read_add(a7, read_load(x + i + 7 * READ_W));
        }
        read_v s = read_add(read_add(read_add(a0, a1), read_add(a2, a3)),
                            read_add(read_add(a4, a5), read_add(a6, a7)));
        total += read_fold(s);
    }
    for (; i < n; i++)
        total += x[i];
    return total;
}

static void task(void *arg, int tid, int nthreads)
{
    const read_job *j = arg;
    int64_t lo, hi;
    kb_split(j->n, 8 * READ_W, tid, nthreads, &lo, &hi);
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

#endif
