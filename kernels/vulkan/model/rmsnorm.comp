#version 450
/* rmsnorm: y = (x * w) * s per row, s = 1 / sqrt(mean(x^2) + eps). A workgroup per row (rows
 * beyond the grid loop), its sum of squares reduced through shared memory (any subgroup size). */
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256; /* a power of two */

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform PC {
    uint rows, cols;
    float eps;
} pc;

shared float red[WG];

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    for (uint row = gl_WorkGroupID.x; row < pc.rows; row += gl_NumWorkGroups.x) {
        const uint o = row * pc.cols;
        float s = 0.0;
        for (uint c = lid; c < pc.cols; c += WG)
            s = fma(x[o + c], x[o + c], s);
        red[lid] = s;
        barrier();
        for (uint k = WG / 2u; k > 0u; k >>= 1) {
            if (lid < k)
                red[lid] += red[lid + k];
            barrier();
        }
        const float sc = 1.0 / sqrt(red[0] / float(pc.cols) + pc.eps);
        barrier(); /* red is rewritten for the next row */
        for (uint c = lid; c < pc.cols; c += WG)
            y[o + c] = (x[o + c] * w[c]) * sc;
    }
}
