/* moe_ffn on AVX512-VNNI with int8 activations (moe_ffn_job.h, moe_ffn_vnni.h): x and the
 * experts' silu(g) u are quantized per 32-block, the weights meet them with vpdpbusd. */
#include "moe_ffn.h"
#include "moe_ffn_job.h"

static void run(const kb_case *c, const kb_tensor *in, kb_tensor *out, kb_pool *pool)
{
    kb_moe_ffn f;
    kb_moe_ffn_from_params(c->p, &f);
    const kb_moe_ffn_in ix = kb_moe_ffn_inputs(&f, MF_W + 1);
    mf_run(&f, in[MF_X].data, in[MF_H].data, in[MF_IDS].data, in[MF_WEIGHTS].data, in[MF_W].data,
           ix.sc >= 0 ? in[ix.sc].data : NULL, ix.bi >= 0 ? in[ix.bi].data : NULL,
           ix.sg >= 0 ? in[ix.sg].data : NULL, out[MF_Y].data, pool);
}

static const char *available(const kb_env *env)
{
    (void)env;
    return kb_need_avx512vnni();
}

const kb_impl kb_impl_moe_ffn_avx512vnni = {
    .family = "moe_ffn",
    .name = "avx512vnni",
    .backend = KB_BACKEND_CPU,
    .available = available,
    .tol_cond = 5e-3,
    .tol_why = "int8 activations (x and silu(g) u quantized per 32-block, as GGML's Q8): "
               "measured conditioned error up to ~XX on random inputs",
    .cpu_run = run,
};
