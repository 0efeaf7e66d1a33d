/* swiglu, avx512: y = silu(gate) * up, elementwise (glue_ew_x86.h). */
#define GV_512
#define GV_EW_OP GV_OP_SWIGLU
#include "glue_ew_x86.h"

GV_IMPL(swiglu, "swiglu")
