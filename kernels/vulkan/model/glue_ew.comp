#version 450
/* The elementwise glue (OP): 0 swiglu y = silu(a) * b, 1 outgate y = a * sigmoid(b),
 * 2 residual y = a + b, 3 cvt_f16 y = f16(a) (16-bit stores; packHalf2x16's rounding is the
 * device's). One element per invocation, the grid looping. y may alias a. */
#extension GL_EXT_shader_16bit_storage : require

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint OP = 0;

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Y16 { uint16_t y16[]; };

layout(push_constant) uniform PC {
    uint n;
} pc;

/* sigmoid without overflow: e^-|g| in (0, 1] */
float sigm(float g)
{
    const float t = exp(-abs(g));
    return g >= 0.0 ? 1.0 / (1.0 + t) : t / (1.0 + t);
}

void main()
{
    const uint step = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += step) {
        const float x = a[i];
        if (OP == 0u)
            y[i] = x * sigm(x) * b[i];
        else if (OP == 1u)
            y[i] = x * sigm(b[i]);
        else if (OP == 2u)
            y[i] = x + b[i];
        else
            y16[i] = uint16_t(packHalf2x16(vec2(x, 0.0)) & 0xFFFFu);
    }
}
