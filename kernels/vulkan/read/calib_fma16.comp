#version 450
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
// Calibration: peak f16 FMA rate (packed half math where the GPU has it). Built into a pipeline
// only on devices with shaderFloat16 enabled (kb_vk_limits.float16).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push { uint iters; } pc;

void main()
{
    float16_t g = float16_t(gl_LocalInvocationID.x & 7u);
    f16vec4 a0 = f16vec4(g), a1 = a0 + 1.0hf, a2 = a0 + 2.0hf, a3 = a0 + 3.0hf;
    f16vec4 a4 = a0 + 4.0hf, a5 = a0 + 5.0hf, a6 = a0 + 6.0hf, a7 = a0 + 7.0hf;
    const f16vec4 m = f16vec4(0.999hf), c = f16vec4(0.001hf);
    for (uint i = 0; i < pc.iters; i++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    f16vec4 s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    o[gl_GlobalInvocationID.x] = float(s.x + s.y + s.z + s.w);
}
