#version 450
/* Decode attention, pass 2: merges the split records of attn_decode.comp (and of
 * attn_cm.coopmat.comp's decode). Workgroup (x, h) owns 8 vec4 units (32 dimensions) of head h:
 *   M = max_s m_s (all 128 threads over the splits, then a tree in shared memory: a serial
 *       loop over hundreds of records is latency-bound, tens of microseconds on an H100),
 *   w_s = 2^(m_s - M) (0 for a split whose m_s is -inf),
 *   o = sum_s w_s o_s / sum_s w_s l_s (0 when that sum is 0): thread (lane, unit) sums every
 *       16th split of its unit, then the lanes are summed through shared memory. */
layout(local_size_x = 128) in; /* the least maxComputeWorkGroupInvocations Vulkan allows */
layout(constant_id = 0) const uint D = 128;
const uint D4 = D / 4;
const uint NL = 16; /* split lanes */
#define NEG_INF uintBitsToFloat(0xFF800000u)

layout(std430, binding = 0) readonly buffer Ab { vec4 part_o[]; };  /* [H][nsplit][D/4] */
layout(std430, binding = 1) readonly buffer Mb { vec2 part_ml[]; }; /* [H][nsplit] */
layout(std430, binding = 2) writeonly buffer Ob { vec4 o[]; };      /* [H][D/4] */

layout(push_constant) uniform PC {
    uint nsplit;
} pc;

shared float sm[128];
shared vec4 so[128];
shared float sl[128];

void main()
{
    const uint t = gl_LocalInvocationID.x, u = t % 8u, lane = t / 8u;
    const uint h = gl_WorkGroupID.y, du = gl_WorkGroupID.x * 8u + u;
    const uint rec0 = h * pc.nsplit;
    float M = NEG_INF;
    for (uint s = t; s < pc.nsplit; s += 128u)
        M = max(M, part_ml[rec0 + s].x);
    sm[t] = M;
    barrier();
    for (uint w = 64u; w > 0u; w >>= 1) {
        if (t < w)
            sm[t] = max(sm[t], sm[t + w]);
        barrier();
    }
    M = sm[0];
    vec4 acc = vec4(0.0);
    float L = 0.0;
    for (uint s = lane; s < pc.nsplit; s += NL) {
        const vec2 ml = part_ml[rec0 + s];
        const float w = ml.x == NEG_INF ? 0.0 : exp2(ml.x - M);
        L += w * ml.y;
        acc += w * part_o[(rec0 + s) * D4 + du];
    }
    so[t] = acc;
    sl[t] = L;
    barrier();
    if (lane == 0) {
        for (uint r = 1; r < NL; r++) {
            acc += so[r * 8u + u];
            L += sl[r * 8u + u];
        }
        o[h * D4 + du] = L > 0.0 ? acc * (1.0 / L) : vec4(0.0);
    }
}
