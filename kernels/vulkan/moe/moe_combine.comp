#version 450
/* Prefill combine (host: moe_vk.c): y[t][h] = h[t][h] + sum_j w[t][j] out[t S + j][h] + the
 * shared expert's out[t S + K][h] times cv[t] (SHARED 1) or 1 (SHARED 2), slots in order. */
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint SHARED = 0;

layout(std430, binding = 0) readonly buffer Ob { float oute[]; }; /* [P][H] */
layout(std430, binding = 1) readonly buffer Mb { uint meta[]; };
layout(std430, binding = 2) readonly buffer Hb { float hres[]; }; /* [T][H] */
layout(std430, binding = 3) writeonly buffer Yb { float y[]; };   /* [T][H] */

layout(push_constant) uniform PC {
    uint H, K, S, off_w, off_cv;
} pc;

void main()
{
    const uint h = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (h >= pc.H)
        return;
    float a = 0.0;
    for (uint j = 0u; j < pc.K; j++)
        a = fma(uintBitsToFloat(meta[pc.off_w + t * pc.K + j]), oute[(t * pc.S + j) * pc.H + h], a);
    if (SHARED != 0u) {
        const float c = SHARED == 1u ? uintBitsToFloat(meta[pc.off_cv + t]) : 1.0;
        a = fma(c, oute[(t * pc.S + pc.K) * pc.H + h], a);
    }
    y[t * pc.H + h] = hres[t * pc.H + h] + a;
}
