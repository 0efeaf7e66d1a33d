/* cvt_f16, avx512: y = f16(x), round to nearest even, elementwise (glue_ew_x86.h). */
#define GV_512
#define GV_EW_OP GV_OP_CVT_F16
#include "glue_ew_x86.h"

GV_IMPL(cvt_f16, "cvt_f16")
