/* The elementwise glue kernels (swiglu, outgate, residual, cvt_f16) for the vector width of
 * glue_vec.h: a file defines GV_EW_OP to one of them before including this. */
#ifndef KB_GLUE_EW_X86_H
#define KB_GLUE_EW_X86_H

#include "glue_vec.h"

#define GV_OP_SWIGLU 1
#define GV_OP_OUTGATE 2
#define GV_OP_RESIDUAL 3
#define GV_OP_CVT_F16 4

/* One vector of the result from a and b */
GV_TARGET KB_INLINE gv_f ew_body(gv_f a, gv_f b)
{
#if GV_EW_OP == GV_OP_SWIGLU
    return gv_mul(gv_mul(a, gv_sigmoid(a)), b);
#elif GV_EW_OP == GV_OP_OUTGATE
    return gv_mul(a, gv_sigmoid(b));
#elif GV_EW_OP == GV_OP_RESIDUAL
    return gv_add(a, b);
#else
    (void)b;
    return a;
#endif
}

GV_TARGET static void ew_range(const gv_ew_job *j, int64_t lo, int64_t hi)
{
    const float *a = j->a;
    int64_t i = lo;
#if GV_EW_OP == GV_OP_CVT_F16
    uint16_t *y = j->y;
    for (; i + GV_W <= hi; i += GV_W)
        gv_to_f16(y + i, gv_load(a + i));
    for (; i < hi; i++) /* the scalar F16C conversion rounds to nearest even too */
        y[i] = (uint16_t)_cvtss_sh(a[i], _MM_FROUND_TO_NEAREST_INT);
#else
    const float *b = j->b;
    float *y = j->y;
    for (; i + GV_W <= hi; i += GV_W)
        gv_store(y + i, ew_body(gv_load(a + i), gv_load(b + i)));
    if (i < hi)
        gv_storen(y + i, ew_body(gv_loadn(a + i, (int)(hi - i)), gv_loadn(b + i, (int)(hi - i))),
                  (int)(hi - i));
#endif
}

GV_EW_RUN(GV_EW_OP == GV_OP_CVT_F16 ? 1 : 2)

#endif
