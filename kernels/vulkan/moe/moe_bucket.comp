#version 450
/* Prefill: the (token, slot) pairs grouped by expert (host: moe_vk.c), one workgroup: a count
 * per expert (shared-memory atomics), an exclusive scan, then each pair's place in its expert's
 * list. The order inside one expert's list is whatever the atomics give: every pair's result
 * lands in its own place (act, out [pair]), so y does not depend on it. Pair p = t S + j; slot
 * j = K (when S > K) is the shared expert, number E. */
layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer Mb { uint meta[]; };

layout(push_constant) uniform PC {
    uint P, K, S, E, NE;
    uint off_ids, off_eoff, off_pl;
} pc;

shared uint cnt[520];

uint expert(uint p)
{
    const uint j = p % pc.S;
    return j < pc.K ? meta[pc.off_ids + p / pc.S * pc.K + j] : pc.E;
}

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    for (uint e = tid; e < pc.NE; e += 256u)
        cnt[e] = 0u;
    barrier();
    for (uint p = tid; p < pc.P; p += 256u)
        atomicAdd(cnt[expert(p)], 1u);
    barrier();
    if (tid == 0u) {
        uint s = 0u;
        for (uint e = 0u; e < pc.NE; e++) {
            const uint c = cnt[e];
            meta[pc.off_eoff + e] = s;
            cnt[e] = s; /* from here on: the expert's fill cursor */
            s += c;
        }
        meta[pc.off_eoff + pc.NE] = s;
    }
    barrier();
    for (uint p = tid; p < pc.P; p += 256u)
        meta[pc.off_pl + atomicAdd(cnt[expert(p)], 1u)] = p;
}
