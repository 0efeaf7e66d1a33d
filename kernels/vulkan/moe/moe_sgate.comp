#version 450
/* The shared expert's gate per token, cv[t] = sigmoid(sg . x[t]) (Qwen; host: moe_vk.c): one
 * workgroup per token, a strided dot product reduced by subgroups, then over them. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Xb { float x[]; };   /* [T][H] */
layout(std430, binding = 1) readonly buffer Gb { float sg[]; };  /* [H] */
layout(std430, binding = 2) buffer Mb { uint meta[]; };

layout(push_constant) uniform PC {
    uint H, off_cv;
} pc;

shared float part[128];

void main()
{
    const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
    float a = 0.0;
    for (uint c = tid; c < pc.H; c += gl_WorkGroupSize.x)
        a = fma(sg[c], x[t * pc.H + c], a);
    a = subgroupAdd(a);
    if (subgroupElect())
        part[gl_SubgroupID] = a;
    barrier();
    if (tid == 0u) {
        float z = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++)
            z += part[i];
        meta[pc.off_cv + t] = floatBitsToUint(1.0 / (1.0 + exp(-z)));
    }
}
