/* embed_<fmt>, avx2: embed_x86.h at this width. */
#include "embed_x86.h"
