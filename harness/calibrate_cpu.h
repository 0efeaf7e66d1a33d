/* CPU ceilings for kbench calibrate: the harness declares what it needs, the `read` family group
 * implements it (kernels/cpu/read/calib_x86.c), as calibrate_vk.h does for Vulkan. So the harness
 * includes no kernel header and knows no ISA. */
#ifndef KB_CALIBRATE_CPU_H
#define KB_CALIBRATE_CPU_H

#include <stddef.h>

#include "kbench.h"

/* Streaming copy (b -> a) or triad (a = b + 3c) over n floats (n a multiple of 64, 64-byte
 * aligned arrays), split across the pool: a kb_task_fn. NULL when the CPU lacks the ISA. */
typedef struct kb_calib_bw_job {
    float *a, *b, *c;
    size_t n;
    int triad; /* 0: copy, 1: triad */
} kb_calib_bw_job;
kb_task_fn kb_calib_bw_task(void);

/* Peak f32 FMA loop: `iters` iterations of 8 independent vector FMAs per thread. The kb_task_fn
 * for `lanes` (8: AVX2, 16: AVX-512), or NULL when the CPU lacks it. */
typedef struct kb_calib_fma_job {
    double iters;
    volatile float sink;
} kb_calib_fma_job;
kb_task_fn kb_calib_fma_task(int lanes);

#endif
