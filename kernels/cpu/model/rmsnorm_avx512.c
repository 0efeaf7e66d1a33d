/* rmsnorm, avx512: rmsnorm_x86.h at this width. */
#define GV_512
#include "rmsnorm_x86.h"

GV_IMPL(rmsnorm, "rmsnorm")
