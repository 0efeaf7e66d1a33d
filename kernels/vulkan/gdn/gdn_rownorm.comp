#version 450
/* gdn_qknorm (GATED = 0) and gdn_gatednorm (GATED = 1): one subgroup per row of D (a token's
 * head), lanes over its elements (any subgroup size), the mean square by one subgroupAdd, then
 *   qknorm:    y = x * c / sqrt(mean(x^2) + 1e-6), c = 1/D for q rows, 1/sqrt(D) for k rows
 *              (rows [0, rows) are q, [rows, 2 rows) are k: two bindings each side)
 *   gatednorm: y = o / sqrt(mean(o^2) + 1e-6) * w * silu(z)
 * Rows grid-stride over the subgroups of the whole dispatch. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 1) const uint D = 128;
layout(constant_id = 2) const uint SG_MIN = 8;
layout(constant_id = 3) const uint GATED = 0;
const uint NE = (D + SG_MIN - 1) / SG_MIN;

/* qknorm: q, k, q', k'; gatednorm: o, z, y, w */
layout(std430, binding = 0) readonly buffer X0 { float x0[]; };
layout(std430, binding = 1) readonly buffer X1 { float x1[]; };
layout(std430, binding = 2) buffer Y0 { float y0[]; };
layout(std430, binding = 3) buffer Y1 { float y1[]; };

layout(push_constant) uniform PC {
    uint rows; /* per tensor */
} pc;

float rd(uint which, uint i) { return which == 0 ? x0[i] : x1[i]; }

void main()
{
    const uint S = gl_SubgroupSize, lane = gl_SubgroupInvocationID;
    const uint nsub = gl_NumWorkGroups.x * gl_NumSubgroups;
    const uint total = GATED != 0 ? pc.rows : 2 * pc.rows;
    for (uint r = gl_WorkGroupID.x * gl_NumSubgroups + gl_SubgroupID; r < total; r += nsub) {
        const uint which = GATED != 0 ? 0 : (r >= pc.rows ? 1 : 0);
        const uint base = (r - which * pc.rows) * D;
        float xv[NE];
        float ss = 0.0;
        for (uint i = 0; i < NE; i++) {
            const uint e = lane + i * S;
            xv[i] = e < D ? rd(which, base + e) : 0.0;
            ss += xv[i] * xv[i];
        }
        const float f = inversesqrt(subgroupAdd(ss) / float(D) + 1e-6);
        for (uint i = 0; i < NE; i++) {
            const uint e = lane + i * S;
            if (e >= D)
                continue;
            if (GATED != 0) {
                const float z = x1[base + e];
                y0[base + e] = xv[i] * f * y1[e] * (z / (1.0 + exp(-z)));
            } else if (which == 0) {
                y0[base + e] = xv[i] * f / float(D);
            } else {
                y1[base + e] = xv[i] * f * inversesqrt(float(D));
            }
        }
    }
}
