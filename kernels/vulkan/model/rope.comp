#version 450
/* rope: half-split pairs (i, i + half) of each (token, head) turned by the table's cos and sin
 * of the token's position; dims 2*half .. D-1 copied. Invocation j < D - half of an item: the
 * pair j (j < half) or the pass-through dim j + half. Each pair is read and written by one
 * invocation, so y may alias x. Items beyond the grid's y loop. */
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer C { float cs[]; };
layout(std430, binding = 2) readonly buffer S { float sn[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform PC {
    uint heads, D, half_, p0, items;
} pc;

void main()
{
    const uint j = gl_GlobalInvocationID.x;
    if (j >= pc.D - pc.half_)
        return;
    for (uint it = gl_WorkGroupID.y; it < pc.items; it += gl_NumWorkGroups.y) {
        const uint o = it * pc.D;
        if (j < pc.half_) {
            const uint k = (pc.p0 + it / pc.heads) * pc.half_ + j;
            const float c = cs[k], s = sn[k];
            const float a = x[o + j], b = x[o + j + pc.half_];
            y[o + j] = a * c - b * s;
            y[o + j + pc.half_] = b * c + a * s;
        } else {
            y[o + j + pc.half_] = x[o + j + pc.half_];
        }
    }
}
