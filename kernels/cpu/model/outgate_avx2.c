/* outgate, avx2: y = x * sigmoid(gate), elementwise (glue_ew_x86.h). */
#define GV_EW_OP GV_OP_OUTGATE
#include "glue_ew_x86.h"

GV_IMPL(outgate, "outgate")
