#version 450
/* Bandwidth yardstick: sums a vec4 array. Each workgroup writes one partial sum to
 * part[base + workgroup]; the same shader run as one workgroup over the partials gives the
 * total. Four independent 16-byte loads per thread per step keep memory busy. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 1) const uint SG_MIN = 8; /* smallest subgroup size the device may use */
const uint NSG = WG / SG_MIN;

layout(std430, binding = 0) readonly buffer Xb { vec4 x[]; };
layout(std430, binding = 1) writeonly buffer Pb { float part[]; };
layout(push_constant) uniform PC {
    uint n4;   /* vec4s in this binding */
    uint base; /* first partial written */
} pc;

shared float red[NSG];

void main()
{
    const uint stride = gl_NumWorkGroups.x * WG;
    uint i = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
    vec4 s0 = vec4(0.0), s1 = vec4(0.0);
    for (; i + 3u * stride < pc.n4; i += 4u * stride) {
        vec4 a = x[i], b = x[i + stride], c = x[i + 2u * stride], e = x[i + 3u * stride];
        s0 += a + b;
        s1 += c + e;
    }
    for (; i < pc.n4; i += stride)
        s0 += x[i];
    s0 += s1;
    float v = subgroupAdd((s0.x + s0.y) + (s0.z + s0.w));
    if (subgroupElect() && gl_SubgroupID < NSG)
        red[gl_SubgroupID] = v;
    barrier();
    if (gl_LocalInvocationID.x == 0) {
        float t = 0.0;
        for (uint g = 0; g < gl_NumSubgroups && g < NSG; g++)
            t += red[g];
        part[pc.base + gl_WorkGroupID.x] = t;
    }
}
