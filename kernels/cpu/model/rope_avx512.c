/* rope, avx512: rope_x86.h at this width. */
#define GV_512
#include "rope_x86.h"

GV_IMPL(rope, "rope")
