#version 450
// Calibration: peak f32 FMA rate. Eight independent vec4 chains per invocation hide the FMA
// latency; the result is stored so the compiler cannot drop the work.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push { uint iters; } pc;

void main()
{
    float g = float(gl_GlobalInvocationID.x);
    vec4 a0 = vec4(g), a1 = a0 + 1.0, a2 = a0 + 2.0, a3 = a0 + 3.0;
    vec4 a4 = a0 + 4.0, a5 = a0 + 5.0, a6 = a0 + 6.0, a7 = a0 + 7.0;
    const vec4 m = vec4(0.999999), c = vec4(1e-7);
    for (uint i = 0; i < pc.iters; i++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    vec4 s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    o[gl_GlobalInvocationID.x] = s.x + s.y + s.z + s.w;
}
