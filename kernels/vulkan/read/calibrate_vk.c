/* Vulkan calibration kernels (calib_copy.comp, calib_fma.comp) driven for kbench calibrate. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "calib_copy.spv.h"
#include "calib_fma.spv.h"
#include "calib_fma16.spv.h"
#include "calibrate_vk.h"
#include "vk.h"

#define WG 256
#define REPS 10

static double best_submit(kb_vk_cmd *c, char *err, size_t errlen)
{
    double best = INFINITY, t;
    for (int r = 0; r < REPS; r++) {
        if (kb_vk_cmd_submit(c, &t, err, errlen) != 0)
            return -1;
        if (t > 0 && t < best)
            best = t;
    }
    return best;
}

/* GFLOP/s of an FMA shader (8 vec4 chains per invocation), or -1. */
static double fma_rate(struct kb_vk *vk, const uint32_t *spv, size_t bytes, char *err,
                       size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    uint32_t wg = WG < L->max_wg_invocations ? WG : L->max_wg_invocations, spec[1] = {wg};
    uint32_t groups = L->is_cpu ? 64 : 8192, iters = L->is_cpu ? 2000 : 20000;
    if (groups > L->max_wg_count[0])
        groups = L->max_wg_count[0];
    uint64_t threads = (uint64_t)groups * wg;
    double rate = -1;
    kb_vk_pipe *p = kb_vk_pipe_get(vk, spv, bytes, 1, 4, spec, 1, err, errlen);
    kb_vk_buf *o = p ? kb_vk_buf_create(vk, threads * 4, err, errlen) : NULL;
    kb_vk_cmd *c = o ? kb_vk_cmd_create(vk, 1, err, errlen) : NULL;
    kb_vk_bind b[1] = {{o, 0, 0}};
    if (c && kb_vk_cmd_dispatch(c, p, b, &iters, groups, 1, 1, err, errlen) == 0 &&
        kb_vk_cmd_end(c, err, errlen) == 0) {
        double t = best_submit(c, err, errlen);
        if (t > 0)
            rate = 2.0 * 4 * 8 * (double)iters * (double)threads / t * 1e-9;
    }
    kb_vk_cmd_destroy(c);
    kb_vk_buf_destroy(o);
    return rate;
}

double kb_calibrate_vk_f16(struct kb_vk *vk, char *err, size_t errlen)
{
    if (!kb_vk_get_limits(vk)->float16) {
        snprintf(err, errlen, "device without shaderFloat16");
        return 0;
    }
    return fma_rate(vk, kb_spv_calib_fma16, sizeof kb_spv_calib_fma16, err, errlen);
}

int kb_calibrate_vk(struct kb_vk *vk, double *copy_gbps, double *fma_gflops, char *err,
                    size_t errlen)
{
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    uint32_t wg = WG < L->max_wg_invocations ? WG : L->max_wg_invocations;
    uint32_t spec[1] = {wg};
    /* copy: as large as one binding allows, up to 1 GiB (beyond any GPU L2) */
    uint64_t bytes = L->max_storage_range < (1ull << 30) ? L->max_storage_range : (1ull << 30);
    bytes = bytes / 16 * 16;
    int rc = -1;
    kb_vk_buf *src = NULL, *dst = NULL, *o = NULL;
    kb_vk_cmd *c1 = NULL, *c2 = NULL;
    kb_vk_pipe *pc = kb_vk_pipe_get(vk, kb_spv_calib_copy, sizeof kb_spv_calib_copy, 2, 4, spec, 1,
                                    err, errlen);
    kb_vk_pipe *pf = kb_vk_pipe_get(vk, kb_spv_calib_fma, sizeof kb_spv_calib_fma, 1, 4, spec, 1,
                                    err, errlen);
    if (!pc || !pf || !(src = kb_vk_buf_create(vk, bytes, err, errlen)) ||
        !(dst = kb_vk_buf_create(vk, bytes, err, errlen)))
        goto done;
    uint32_t n4 = (uint32_t)(bytes / 16);
    uint64_t groups = (n4 + (uint64_t)wg * 8 - 1) / ((uint64_t)wg * 8);
    if (groups > L->max_wg_count[0])
        groups = L->max_wg_count[0];
    kb_vk_bind b[2] = {{src, 0, 0}, {dst, 0, 0}};
    if (!(c1 = kb_vk_cmd_create(vk, 1, err, errlen)) ||
        kb_vk_cmd_dispatch(c1, pc, b, &n4, (uint32_t)groups, 1, 1, err, errlen) != 0 ||
        kb_vk_cmd_end(c1, err, errlen) != 0)
        goto done;
    double t = best_submit(c1, err, errlen);
    if (t < 0)
        goto done;
    *copy_gbps = 2.0 * (double)bytes / t * 1e-9; /* bytes read + bytes written */

    /* FMA: enough invocations to fill any GPU, iterations to run ~ms */
    uint32_t fgroups = L->is_cpu ? 64 : 8192, iters = L->is_cpu ? 2000 : 20000;
    if (fgroups > L->max_wg_count[0])
        fgroups = L->max_wg_count[0];
    uint64_t threads = (uint64_t)fgroups * wg;
    kb_vk_bind ob[1] = {{NULL, 0, 0}};
    if (!(o = kb_vk_buf_create(vk, threads * 4, err, errlen)))
        goto done;
    ob[0].buf = o;
    if (!(c2 = kb_vk_cmd_create(vk, 1, err, errlen)) ||
        kb_vk_cmd_dispatch(c2, pf, ob, &iters, fgroups, 1, 1, err, errlen) != 0 ||
        kb_vk_cmd_end(c2, err, errlen) != 0)
        goto done;
    t = best_submit(c2, err, errlen);
    if (t < 0)
        goto done;
    *fma_gflops = 2.0 * 4 * 8 * (double)iters * (double)threads / t * 1e-9;
    rc = 0;
done:
    kb_vk_cmd_destroy(c1);
    kb_vk_cmd_destroy(c2);
    kb_vk_buf_destroy(src);
    kb_vk_buf_destroy(dst);
    kb_vk_buf_destroy(o);
    return rc;
}

int kb_vk_warm(struct kb_vk *vk, double seconds, char *err, size_t errlen)
{
    /* Steady FMA load until `seconds` pass: a GPU leaves its idle clock only under load, and
     * per-row warm-ups of short submissions do not always get it there. */
    const kb_vk_limits *L = kb_vk_get_limits(vk);
    if (L->is_cpu)
        return 0;
    uint32_t wg = WG < L->max_wg_invocations ? WG : L->max_wg_invocations, spec[1] = {wg};
    uint32_t groups = 8192 < L->max_wg_count[0] ? 8192 : L->max_wg_count[0], iters = 20000;
    kb_vk_pipe *pf = kb_vk_pipe_get(vk, kb_spv_calib_fma, sizeof kb_spv_calib_fma, 1, 4, spec, 1,
                                    err, errlen);
    kb_vk_buf *o = pf ? kb_vk_buf_create(vk, (uint64_t)groups * wg * 4, err, errlen) : NULL;
    kb_vk_cmd *c = o ? kb_vk_cmd_create(vk, 1, err, errlen) : NULL;
    kb_vk_bind b[1] = {{o, 0, 0}};
    int rc = -1;
    if (c && kb_vk_cmd_dispatch(c, pf, b, &iters, groups, 1, 1, err, errlen) == 0 &&
        kb_vk_cmd_end(c, err, errlen) == 0) {
        double total = 0, t;
        rc = 0;
        while (total < seconds && rc == 0) {
            rc = kb_vk_cmd_submit(c, &t, err, errlen);
            total += t > 0 ? t : 1e-3;
        }
    }
    kb_vk_cmd_destroy(c);
    kb_vk_buf_destroy(o);
    return rc;
}
