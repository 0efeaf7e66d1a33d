/* matvec_a2, AVX2 + FMA, f32 activations: the kernel of mva_affine_avx2.h with b = 2. */
#include "mva_affine_avx2.h"

MVA_AFFINE_AVX2_KERNEL(2)

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_a2_avx2 = {
    .family = "matvec_a2",
    .name = "avx2",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .cpu_run = run,
};
