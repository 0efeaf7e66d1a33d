#version 450
/* gdn_conv: causal depthwise conv1d (width 4) + SiLU; one thread per (channel, sequence) walks
 * the tokens with the last 3 inputs in registers (coalesced across channels), then writes
 * them as the new state. */
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) readonly buffer Wb { vec4 w[]; };
layout(std430, binding = 2) readonly buffer Sb { float st[]; };
layout(std430, binding = 3) writeonly buffer Yb { float y[]; };
layout(std430, binding = 4) writeonly buffer S1b { float st1[]; };

layout(push_constant) uniform PC {
    uint n, ch;
} pc;

void main()
{
    const uint c = gl_GlobalInvocationID.x, b = gl_WorkGroupID.y;
    if (c >= pc.ch)
        return;
    const vec4 wc = w[c];
    float x0 = st[(b * 3 + 0) * pc.ch + c], x1 = st[(b * 3 + 1) * pc.ch + c],
          x2 = st[(b * 3 + 2) * pc.ch + c];
    for (uint t = 0; t < pc.n; t++) {
        const uint i = (b * pc.n + t) * pc.ch + c;
        const float x3 = x[i];
        const float a = wc.x * x0 + wc.y * x1 + wc.z * x2 + wc.w * x3;
        y[i] = a / (1.0 + exp(-a));
        x0 = x1;
        x1 = x2;
        x2 = x3;
    }
    st1[(b * 3 + 0) * pc.ch + c] = x0;
    st1[(b * 3 + 1) * pc.ch + c] = x1;
    st1[(b * 3 + 2) * pc.ch + c] = x2;
}
