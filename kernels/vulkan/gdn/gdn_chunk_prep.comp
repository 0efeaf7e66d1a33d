#version 450
/* GatedDeltaNet chunkwise prefill, pass 1: the C x C matrices of one (value head, chunk),
 * independent of the state, so every chunk of every head runs at once. With local index l,
 * Gamma_{l,i} = g_{i+1} ... g_l (i <= l), gamma_l = g_0 ... g_l (from running products, no log:
 * no clamp needed, g = 0 gives exact zeros):
 *     A_{l,i} = beta_l Gamma_{l,i} (k_i . k_l)  (i < l)          in shared memory
 *     T = (I + A)^-1 by forward substitution, one column per thread
 *     out: Tb = T diag(beta)  [C][C],  M_{l,i} = Gamma_{l,i} (k_i . q_l) (i <= l)  [C][C],
 *          gamma [C],  Gamma_{C-1,i} [C]
 * so that pass 2 has U = Tb (v - gamma W) with W = S0 k (U_l = the true delta_l). A chunk past
 * the sequence's end is padded with g = 1, beta = 0 and no k, q: its padded rows and columns
 * are 0 and gamma, Gamma's last row equal those of the last real token. */
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const uint DK = 128;
layout(constant_id = 2) const uint C = 16;

layout(std430, binding = 0) readonly buffer Qb { float q[]; };
layout(std430, binding = 1) readonly buffer Kb { float k[]; };
layout(std430, binding = 2) readonly buffer Gb { float g[]; };
layout(std430, binding = 3) readonly buffer Bb { float beta[]; };
layout(std430, binding = 4) buffer Pb { float prep[]; };

layout(push_constant) uniform PC {
    uint ntok, hk, hv, nch;
} pc;

shared float sg[C], sb[C];
shared float A[C * C];

/* Gamma_{l,i} for i <= l from the chunk's gates in shared memory */
float gamma_li(uint l, uint i)
{
    float p = 1.0;
    for (uint m = i + 1; m <= l; m++)
        p *= sg[m];
    return p;
}

void main()
{
    const uint ch = gl_WorkGroupID.x, h = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint kh = h / (pc.hv / pc.hk), c0 = ch * C;
    const uint c = min(C, pc.ntok - c0);
    const uint base = (h * pc.nch + ch) * (2 * C * C + 2 * C);
    for (uint l = tid; l < C; l += WG) {
        sg[l] = l < c ? g[(c0 + l) * pc.hv + h] : 1.0;
        sb[l] = l < c ? beta[(c0 + l) * pc.hv + h] : 0.0;
    }
    barrier();
    for (uint x = tid; x < C * C; x += WG) {
        const uint l = x / C, i = x % C;
        float a = 0.0, m = 0.0;
        if (i <= l && l < c) {
            const uint kl = ((c0 + l) * pc.hk + kh) * DK, ki = ((c0 + i) * pc.hk + kh) * DK;
            float kk = 0.0, qk = 0.0;
            for (uint j = 0; j < DK; j++) {
                const float kij = k[ki + j];
                kk += kij * k[kl + j];
                qk += kij * q[kl + j];
            }
            const float gm = gamma_li(l, i);
            a = i < l ? sb[l] * gm * kk : 0.0;
            m = gm * qk;
        }
        A[x] = a;
        prep[base + C * C + x] = m;
    }
    barrier();
    /* column j of Tb = T diag(beta): T_jj = 1, T_lj = -sum_{j<=i<l} A_li T_ij is linear in the
     * column, so running it on beta_j T directly gives Tb */
    for (uint j = tid; j < C; j += WG) {
        const float bj = sb[j];
        for (uint l = 0; l < j; l++)
            prep[base + l * C + j] = 0.0;
        prep[base + j * C + j] = bj;
        for (uint l = j + 1; l < C; l++) {
            float t = 0.0;
            for (uint i = j; i < l; i++) /* reads this column's own earlier writes */
                t -= A[l * C + i] * prep[base + i * C + j];
            prep[base + l * C + j] = t;
        }
    }
    for (uint l = tid; l < C; l += WG) {
        float gl = 1.0;
        for (uint m = 0; m <= l; m++)
            gl *= sg[m];
        prep[base + 2 * C * C + l] = gl;
        prep[base + 2 * C * C + C + l] = gamma_li(C - 1, l);
    }
}
