/* embed_<fmt>, avx512: embed_x86.h at this width. */
#define GV_512
#include "embed_x86.h"
