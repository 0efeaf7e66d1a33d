/* matvec_a4, AVX-512, f32 activations: the kernel of mva_affine_avx512.h with b = 4. */
#include "mva_affine_avx512.h"

MVA_AFFINE_AVX512_KERNEL(4)

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_matvec_a4_avx512 = {
    .family = "matvec_a4",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
