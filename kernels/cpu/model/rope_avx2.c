/* rope, avx2: rope_x86.h at this width. */
#include "rope_x86.h"

GV_IMPL(rope, "rope")
