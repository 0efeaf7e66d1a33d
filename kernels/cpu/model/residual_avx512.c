/* residual, avx512: y = a + b, elementwise (glue_ew_x86.h). */
#define GV_512
#define GV_EW_OP GV_OP_RESIDUAL
#include "glue_ew_x86.h"

GV_IMPL(residual, "residual")
