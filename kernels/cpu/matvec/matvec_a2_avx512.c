/* matvec_a2, AVX-512, f32 activations: the kernel of mva_affine_avx512.h with b = 2. */
#include "mva_affine_avx512.h"

MVA_AFFINE_AVX512_KERNEL(2)

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512();
}

const kb_impl kb_impl_matvec_a2_avx512 = {
    .family = "matvec_a2",
    .name = "avx512",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
