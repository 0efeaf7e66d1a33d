#version 450
/* GatedDeltaNet chunkwise prefill, pass 2: one workgroup per (value head, block of RB state
 * rows), through the chunks in order, with the rows' state in shared memory (St[r][j]). Per
 * chunk of C tokens (matrices from pass 1, gdn_chunk_prep.comp; rows are independent):
 *   1. W_l = S k_l, P_l = S q_l            for every row r of the block    (S: chunk start)
 *   2. X_l = v_l - gamma_l W_l
 *   3. U = Tb X                            (Tb = (I + A)^-1 diag(beta); U_l = delta_l)
 *   4. o_l = gamma_l P_l + sum_{i<=l} M_{l,i} U_i          (the chunk's real tokens only)
 *   5. S <- gamma_{C-1} S + sum_i Gamma_{C-1,i} U_i k_i^T
 * W/X, P and U are [C][RB] in shared memory; Tb and M are staged there too when STAGE = 1
 * (the host's choice by the device's shared memory), else read from the pass-1 buffer.
 * A dispatch runs chunks [ch0, ch0 + nseg) from the state in S0 (from_s0 = 1) or in S1, and
 * leaves it in S1: the host splits the chunks over several dispatches where the device limits
 * one invocation's loop iterations (llvmpipe stops any shader after 65535 in all). */
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint DK = 128;
layout(constant_id = 2) const uint C = 16;
layout(constant_id = 3) const uint RB = 32;   /* rows per workgroup; WG % RB == 0 */
layout(constant_id = 4) const uint STAGE = 1; /* Tb and M in shared memory */
const uint LG = WG / RB;                      /* groups of l in step 1 */
const uint TM = STAGE != 0 ? 2 * C * C : 1;

layout(std430, binding = 0) readonly buffer Qb { float q[]; };
layout(std430, binding = 1) readonly buffer Kb { float k[]; };
layout(std430, binding = 2) readonly buffer Vb { float v[]; };
layout(std430, binding = 3) readonly buffer Pb { float prep[]; };
layout(std430, binding = 4) readonly buffer S0b { float S0[]; };
layout(std430, binding = 5) writeonly buffer Ob { float o[]; };
layout(std430, binding = 6) buffer S1b { float S1[]; };

layout(push_constant) uniform PC {
    uint ntok, hk, hv, dv, nch, ch0, nseg, from_s0;
} pc;

shared float St[RB * DK];
shared float W[C * RB], P[C * RB], U[C * RB];
shared float TMs[TM];
shared float gam[C], glast[C];

float tb(uint base, uint l, uint i) { return STAGE != 0 ? TMs[l * C + i] : prep[base + l * C + i]; }
float mm(uint base, uint l, uint i) { return STAGE != 0 ? TMs[C * C + l * C + i] : prep[base + C * C + l * C + i]; }

void main()
{
    const uint h = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint kh = h / (pc.hv / pc.hk), r0 = gl_WorkGroupID.x * RB;
    const uint sbase = (h * pc.dv + r0) * DK;
    for (uint x = tid; x < RB * DK; x += WG)
        St[x] = pc.from_s0 != 0 ? S0[sbase + x] : S1[sbase + x];
    for (uint ch = pc.ch0; ch < min(pc.ch0 + pc.nseg, pc.nch); ch++) {
        const uint c0 = ch * C, c = min(C, pc.ntok - c0);
        const uint base = (h * pc.nch + ch) * (2 * C * C + 2 * C);
        for (uint x = tid; x < C; x += WG) {
            gam[x] = prep[base + 2 * C * C + x];
            glast[x] = prep[base + 2 * C * C + C + x];
        }
        if (STAGE != 0)
            for (uint x = tid; x < 2 * C * C; x += WG)
                TMs[x] = prep[base + x];
        barrier(); /* St of the previous chunk, gam, TMs */
        /* 1. thread (r, lg): W and P of row r for l = lg, lg + LG, ... */
        {
            const uint r = tid % RB, lg = tid / RB;
            float aw[C / LG], ap[C / LG];
            for (uint m = 0; m < C / LG; m++)
                aw[m] = ap[m] = 0.0;
            for (uint j = 0; j < DK; j++) {
                const float s = St[r * DK + j];
                for (uint m = 0; m < C / LG; m++) {
                    const uint l = lg + m * LG;
                    if (l < c) {
                        const uint kl = ((c0 + l) * pc.hk + kh) * DK + j;
                        aw[m] += s * k[kl];
                        ap[m] += s * q[kl];
                    }
                }
            }
            for (uint m = 0; m < C / LG; m++) {
                const uint l = lg + m * LG;
                W[l * RB + r] = aw[m];
                P[l * RB + r] = ap[m];
            }
        }
        barrier();
        /* 2. X in place of W (0 past the chunk's end) */
        for (uint x = tid; x < C * RB; x += WG) {
            const uint l = x / RB, r = x % RB;
            W[x] = l < c ? v[((c0 + l) * pc.hv + h) * pc.dv + r0 + r] - gam[l] * W[x] : 0.0;
        }
        barrier();
        /* 3. U = Tb X (lower triangular) */
        for (uint x = tid; x < C * RB; x += WG) {
            const uint l = x / RB, r = x % RB;
            float u = 0.0;
            for (uint i = 0; i <= l; i++)
                u += tb(base, l, i) * W[i * RB + r];
            U[x] = u;
        }
        barrier();
        /* 4. outputs of the real tokens */
        for (uint x = tid; x < c * RB; x += WG) {
            const uint l = x / RB, r = x % RB;
            float y = gam[l] * P[x];
            for (uint i = 0; i <= l; i++)
                y += mm(base, l, i) * U[i * RB + r];
            o[((c0 + l) * pc.hv + h) * pc.dv + r0 + r] = y;
        }
        /* 5. the state: thread owns key index j of rows r = j-group, ... (reads U only) */
        {
            const uint j = tid % DK, rg = tid / DK, NRG = WG / DK; /* WG is a multiple of DK */
            const float gl = gam[C - 1];
            for (uint r = rg; r < RB; r += NRG) {
                float s = gl * St[r * DK + j];
                for (uint i = 0; i < c; i++)
                    s += glast[i] * U[i * RB + r] * k[((c0 + i) * pc.hk + kh) * DK + j];
                St[r * DK + j] = s;
            }
        }
        barrier(); /* W, P, U and gam are rewritten by the next chunk */
    }
    for (uint x = tid; x < RB * DK; x += WG)
        S1[sbase + x] = St[x];
}
