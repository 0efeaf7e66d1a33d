/* The CPU loops behind kbench calibrate (harness/calibrate_cpu.h): streaming copy and triad for
 * bandwidth, independent FMA chains for the peak f32 rate. */
#include "calibrate_cpu.h"
#include "simd_x86.h"

KB_TARGET_AVX2 static void bw_task(void *arg, int tid, int nt)
{
    kb_calib_bw_job *j = arg;
    int64_t lo, hi;
    kb_split((int64_t)j->n, 64, tid, nt, &lo, &hi);
    const __m256 s = _mm256_set1_ps(3.0f);
    if (!j->triad) {
        for (int64_t i = lo; i < hi; i += 16) {
            _mm256_store_ps(j->a + i, _mm256_load_ps(j->b + i));
            _mm256_store_ps(j->a + i + 8, _mm256_load_ps(j->b + i + 8));
        }
    } else {
        for (int64_t i = lo; i < hi; i += 16) {
            _mm256_store_ps(j->a + i, _mm256_fmadd_ps(s, _mm256_load_ps(j->c + i), _mm256_load_ps(j->b + i)));
            _mm256_store_ps(j->a + i + 8,
                            _mm256_fmadd_ps(s, _mm256_load_ps(j->c + i + 8), _mm256_load_ps(j->b + i + 8)));
        }
    }
}

/* Independent FMA chains in named registers (an array can be kept in memory at -O0/-O2),
 * enough to cover FMA latency x throughput (Zen 3: 4 x 2; Intel: 4 x 2). */
#define FMA8(op, a, m, c) \
    a##0 = op(a##0, m, c); a##1 = op(a##1, m, c); a##2 = op(a##2, m, c); a##3 = op(a##3, m, c); \
    a##4 = op(a##4, m, c); a##5 = op(a##5, m, c); a##6 = op(a##6, m, c); a##7 = op(a##7, m, c)

KB_TARGET_AVX2 static void fma_avx2_task(void *arg, int tid, int nt)
{
    kb_calib_fma_job *j = arg;
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps((float)tid), a1 = _mm256_add_ps(a0, c), a2 = _mm256_add_ps(a1, c),
           a3 = _mm256_add_ps(a2, c), a4 = _mm256_add_ps(a3, c), a5 = _mm256_add_ps(a4, c),
           a6 = _mm256_add_ps(a5, c), a7 = _mm256_add_ps(a6, c);
    const long n = (long)j->iters;
    for (long i = 0; i < n; i++) {
        FMA8(_mm256_fmadd_ps, a, m, c);
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3)); /* keep the chains live */
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    if (tid == 0)
        j->sink = _mm256_cvtss_f32(s);
}

KB_TARGET_AVX512 static void fma_avx512_task(void *arg, int tid, int nt)
{
    kb_calib_fma_job *j = arg;
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps((float)tid), a1 = _mm512_add_ps(a0, c), a2 = _mm512_add_ps(a1, c),
           a3 = _mm512_add_ps(a2, c), a4 = _mm512_add_ps(a3, c), a5 = _mm512_add_ps(a4, c),
           a6 = _mm512_add_ps(a5, c), a7 = _mm512_add_ps(a6, c);
    const long n = (long)j->iters;
    for (long i = 0; i < n; i++) {
        FMA8(_mm512_fmadd_ps, a, m, c);
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    if (tid == 0)
        j->sink = _mm512_reduce_add_ps(s);
}

kb_task_fn kb_calib_bw_task(void) { return kb_need_avx2() ? NULL : bw_task; }

kb_task_fn kb_calib_fma_task(int lanes)
{
    if (lanes == 8)
        return kb_need_avx2() ? NULL : fma_avx2_task;
    if (lanes == 16)
        return kb_need_avx512() ? NULL : fma_avx512_task;
    return NULL;
}
