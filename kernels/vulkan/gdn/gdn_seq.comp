#version 450
/* GatedDeltaNet, the recurrence token by token (gdn_decode and the sequential gdn_prefill):
 * nseq sequences of ntok tokens (decode: nseq = batch, ntok = 1; prefill: 1 and n).
 * One subgroup per state row (value index r): its lanes hold the row's dk elements in
 * registers for all the tokens (lane l: elements l, l + S, l + 2S, ... with S the subgroup
 * size, whatever it is at run time), one subgroupAdd per token gives S k, S q and k.q, and
 *     u = g S k, delta = beta (v - u), o = g S q + delta k.q, S <- g S + delta k^T
 * (the output of the updated state, from the state before the decay). A workgroup covers RPW
 * rows of one (sequence, value head); its subgroups take rows in turn, so a device whose
 * subgroups are smaller or larger than the host assumed still covers every row once.
 * No shared memory, no barriers. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint DK = 128;
layout(constant_id = 2) const uint SG_MIN = 8; /* smallest subgroup size the device may use */
const uint NE = (DK + SG_MIN - 1) / SG_MIN;   /* state elements per lane, at most */

layout(std430, binding = 0) readonly buffer Qb { float q[]; };
layout(std430, binding = 1) readonly buffer Kb { float k[]; };
layout(std430, binding = 2) readonly buffer Vb { float v[]; };
layout(std430, binding = 3) readonly buffer Gb { float g[]; };
layout(std430, binding = 4) readonly buffer Bb { float beta[]; };
layout(std430, binding = 5) readonly buffer S0b { float S0[]; };
layout(std430, binding = 6) writeonly buffer Ob { float o[]; };
layout(std430, binding = 7) writeonly buffer S1b { float S1[]; };

layout(push_constant) uniform PC {
    uint ntok, hk, hv, dv, rpw;
} pc;

void main()
{
    const uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    const uint kh = h / (pc.hv / pc.hk);
    const uint S = gl_SubgroupSize, lane = gl_SubgroupInvocationID;
    const uint r0 = gl_WorkGroupID.x * pc.rpw;
    const uint r1 = min(r0 + pc.rpw, pc.dv);
    for (uint r = r0 + gl_SubgroupID; r < r1; r += gl_NumSubgroups) {
        const uint sbase = ((b * pc.hv + h) * pc.dv + r) * DK;
        float s[NE];
        for (uint i = 0; i < NE; i++) {
            const uint e = lane + i * S;
            s[i] = e < DK ? S0[sbase + e] : 0.0;
        }
        for (uint t = 0; t < pc.ntok; t++) {
            const uint tok = b * pc.ntok + t;
            const uint kb = (tok * pc.hk + kh) * DK;
            float kv[NE];
            float sk = 0.0, sq = 0.0, kq = 0.0;
            for (uint i = 0; i < NE; i++) {
                const uint e = lane + i * S;
                kv[i] = 0.0;
                if (e < DK) {
                    kv[i] = k[kb + e];
                    const float qe = q[kb + e];
                    sk += s[i] * kv[i];
                    sq += s[i] * qe;
                    kq += kv[i] * qe;
                }
            }
            const vec3 red = subgroupAdd(vec3(sk, sq, kq));
            const float gt = g[tok * pc.hv + h], bt = beta[tok * pc.hv + h];
            const uint vo = (tok * pc.hv + h) * pc.dv + r;
            const float delta = bt * (v[vo] - gt * red.x);
            for (uint i = 0; i < NE; i++)
                s[i] = gt * s[i] + delta * kv[i];
            if (subgroupElect())
                o[vo] = gt * red.y + delta * red.z;
        }
        for (uint i = 0; i < NE; i++) {
            const uint e = lane + i * S;
            if (e < DK)
                S1[sbase + e] = s[i];
        }
    }
}
