#version 450
/* Decode attention, pass 2: merges the split records of attn_decode.comp. Workgroup (x, h)
 * owns 8 vec4 units (32 dimensions) of head h; its 64 threads are 8 units x 8 split lanes,
 * each lane merging every 8th split, then the lanes through shared memory:
 *   M = max_s m_s, w_s = 2^(m_s - M) (0 for a split whose m_s is -inf),
 *   o = sum_s w_s o_s / sum_s w_s l_s (0 when that sum is 0). */
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint D = 128;
const uint D4 = D / 4;
#define NEG_INF uintBitsToFloat(0xFF800000u)

layout(std430, binding = 0) readonly buffer Ab { vec4 part_o[]; };  /* [H][nsplit][D/4] */
layout(std430, binding = 1) readonly buffer Mb { vec2 part_ml[]; }; /* [H][nsplit] */
layout(std430, binding = 2) writeonly buffer Ob { vec4 o[]; };      /* [H][D/4] */

layout(push_constant) uniform PC {
    uint nsplit;
} pc;

shared vec4 so[64];
shared float sl[64];

void main()
{
    const uint t = gl_LocalInvocationID.x, u = t % 8u, lane = t / 8u;
    const uint h = gl_WorkGroupID.y, du = gl_WorkGroupID.x * 8u + u;
    const uint rec0 = h * pc.nsplit;
    float M = NEG_INF;
    for (uint s = 0; s < pc.nsplit; s++)
        M = max(M, part_ml[rec0 + s].x);
    vec4 acc = vec4(0.0);
    float L = 0.0;
    for (uint s = lane; s < pc.nsplit; s += 8u) {
        const vec2 ml = part_ml[rec0 + s];
        const float w = ml.x == NEG_INF ? 0.0 : exp2(ml.x - M);
        L += w * ml.y;
        acc += w * part_o[(rec0 + s) * D4 + du];
    }
    so[t] = acc;
    sl[t] = L;
    barrier();
    if (lane == 0) {
        for (uint r = 1; r < 8u; r++) {
            acc += so[r * 8u + u];
            L += sl[r * 8u + u];
        }
        o[h * D4 + du] = L > 0.0 ? acc * (1.0 / L) : vec4(0.0);
    }
}
