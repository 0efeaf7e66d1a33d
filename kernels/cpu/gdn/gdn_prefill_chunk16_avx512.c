/* gdn_prefill, chunkwise (WY/UT form) with chunks of 16 tokens, AVX-512: gdn_prefill_chunk_x86.h. */
#define GC_C 16
#define GC_IMPL kb_impl_gdn_prefill_chunk16_avx512
#define GC_NAME "chunk16_avx512"
#include "gdn_prefill_chunk_x86.h"
