/* Plumbing every CPU kernel of the GGML block matvec families (matvec_q4_0, matvec_q8_0) shares:
 * the job a cpu_run hands its threads, the split of rows over threads and the row loops around a
 * kernel's row(). ISA-neutral: plain C (MVQ_ROWS takes the kernel's target). */
#ifndef KB_MVQ_CPU_H
#define KB_MVQ_CPU_H

#include "ggml_formats.h"
#include "matvec_common.h"
#include "simd_x86.h"

/* Software prefetch distance, bytes ahead in a row's block stream. On Zen 3 with cold weights,
 * 2-4 KiB ahead took the Q4_0 kernel from ~1.37 to ~1.0-1.1 ns per block on one thread; the
 * AVX-512 and VNNI kernels use it as tuned there (no such machine was at hand to tune them). */
#define MVQ_PF_DIST 2048

/* Prefetches the three lines MVQ_PF_DIST ahead of p, once per step of about 140 bytes (a quad of
 * Q8_0 blocks, two of Q4_0): leaving two lines in every nine to the hardware prefetcher measured
 * slower on Zen 3. (SSE only: inlines into every target.) */
KB_INLINE void mvq_prefetch3(const uint8_t *p)
{
    _mm_prefetch((const char *)(p + MVQ_PF_DIST), _MM_HINT_T0);
    _mm_prefetch((const char *)(p + MVQ_PF_DIST + 64), _MM_HINT_T0);
    _mm_prefetch((const char *)(p + MVQ_PF_DIST + 128), _MM_HINT_T0);
}

/* Runs task over all rows of blocks of block_bytes bytes; aux: the kernel's preparation of x. */
static inline void kb_mvq_run(const kb_case *c, const kb_tensor *in, kb_tensor *out,
                              kb_pool *pool, int64_t block_bytes, const void *aux,
                              kb_task_fn task)
{
    const int64_t cols = c->p[MV_COLS];
    kb_mv_job j = {.w = in[MV_W].data,
                   .x = in[MV_X].data,
                   .y = out[MV_Y].data,
                   .rows = c->p[MV_ROWS],
                   .cols = cols,
                   .tokens = c->p[MV_TOKENS],
                   .nb = cols / QK,
                   .row_bytes = cols / QK * block_bytes,
                   .aux = aux};
    kb_pool_run(pool, task, &j);
}

/* Defines task, the thread body of a kernel: its share of the rows (kb_split), each through the
 * kernel's row(j, r, T) (always inline, accumulators its own). rows_1 passes T = 1 as a
 * constant, so that row's loops over tokens fold away and its accumulators live in registers. */
#define MVQ_ROWS(TARGET)                                                                           \
    TARGET static void rows_1(const kb_mv_job *j, int64_t lo, int64_t hi)                          \
    {                                                                                              \
        for (int64_t r = lo; r < hi; r++)                                                          \
            row(j, r, 1);                                                                          \
    }                                                                                              \
    TARGET static void rows_T(const kb_mv_job *j, int64_t lo, int64_t hi)                          \
    {                                                                                              \
        for (int64_t r = lo; r < hi; r++)                                                          \
            row(j, r, (int)j->tokens);                                                             \
    }                                                                                              \
    static void task(void *arg, int tid, int nthreads)                                             \
    {                                                                                              \
        const kb_mv_job *j = arg;                                                                  \
        int64_t lo, hi;                                                                            \
        kb_split(j->rows, 1, tid, nthreads, &lo, &hi);                                             \
        if (j->tokens == 1)                                                                        \
            rows_1(j, lo, hi);                                                                     \
        else                                                                                       \
            rows_T(j, lo, hi);                                                                     \
    }

/* Defines rows_1, rows_T, task (MVQ_ROWS) and run, the cpu_run of a kernel whose row() reads x as
 * it is (no preparation). */
#define MVQ_KERNEL(TARGET, block)                                                                  \
    MVQ_ROWS(TARGET)                                                                               \
    static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)          \
    {                                                                                              \
        kb_mvq_run(c, in, out, pool, (int64_t)sizeof(block), NULL, task);                          \
    }

#endif
