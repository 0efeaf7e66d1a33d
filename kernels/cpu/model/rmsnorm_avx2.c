/* rmsnorm, avx2: rmsnorm_x86.h at this width. */
#include "rmsnorm_x86.h"

GV_IMPL(rmsnorm, "rmsnorm")
