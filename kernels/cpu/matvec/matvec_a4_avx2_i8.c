/* matvec_a4, AVX2, int8 activations: the kernel of mva_affine_i8_avx2.h with b = 4. */
#include "mva_affine_i8_avx2.h"

MVA_AFFINE_I8_AVX2_KERNEL(4)

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx2();
}

const kb_impl kb_impl_matvec_a4_avx2_i8 = {
    .family = "matvec_a4",
    .name = "avx2_i8",
    .backend = KB_BACKEND_CPU,
    .available = available,
    /* Measured NMSE vs the reference (x ~ N(0,1), generate()'s weights): 2.3e-5 to 3.4e-5 on
     * 1024 x 4096 and 1024 x 1024 (a4 and a2, G = 32, 64, 128, 3 seeds), the same as Q4_0 with
     * int8 activations. Over few outputs it is heavy-tailed (a small reference value divides):
     * one output: ~7% of 300 seeds exceed 2e-3; 8 outputs: max 3.1e-4; 33: max 1.2e-4. Biases
     * meet the group sums of x as quantized: with the f32 sums instead, b sum(x - x_q) stays
     * uncancelled and the NMSE measured 1.7x (a4) to 3.5x (a2) higher. */
    .tol_nmse = 2e-3,
    .tol_cond = 1e-2,
    .tol_cond_inputs = {[KB_INPUTS_OUTLIERS] = 5e-2},
    .tol_why = "x quantized to int8 per 32-block (conditioned error measured 1.4e-3 on random "
               "inputs over the matvec suite, 1.2e-2 with --inputs outliers: a 100x channel sets "
               "its block's scale)",
    .cpu_run = run,
};
