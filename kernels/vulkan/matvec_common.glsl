/* Shared by matvec_q4_0.comp and matvec_q8_0.comp: interface, accumulators, reduction.
 * A workgroup owns RPW consecutive rows; its threads stride over the 16-byte quant units of
 * those rows (coalesced), so each x load is reused RPW times. Partial sums are reduced with
 * subgroupAdd, then across subgroups through shared memory: correct for any subgroup size
 * >= SG_MIN. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;   /* threads per workgroup */
layout(constant_id = 1) const uint SG_MIN = 8; /* smallest subgroup size the device may use */
layout(constant_id = 2) const uint RPW = 4;    /* rows per workgroup */
layout(constant_id = 3) const uint T = 1;      /* tokens */
const uint NSG = WG / SG_MIN;                  /* most subgroups in a workgroup */

/* Weights repacked by the host: per row, the blocks' quants back to back (16-byte units),
 * and separately the rows' f16 scales (two per word). Same bytes per weight as GGML. */
layout(std430, binding = 0) readonly buffer Qb { uvec4 q[]; };
layout(std430, binding = 1) readonly buffer Db { uint d[]; };
layout(std430, binding = 2) readonly buffer Xb { vec4 x[]; };  /* [T][cols] */
layout(std430, binding = 3) writeonly buffer Yb { float y[]; }; /* [T][ystride] */

layout(push_constant) uniform PC {
    uint rows;    /* rows in this chunk */
    uint nb;      /* blocks per row */
    uint row0;    /* first row of this chunk in y */
    uint ystride; /* all rows */
} pc;

float acc[RPW * T]; /* [row][token] */
shared float red[RPW * T * NSG];

float scale(uint i) { return unpackHalf2x16(d[i >> 1] >> ((i & 1u) << 4)).x; }

/* Four bytes (each < 256) to floats minus bias, through the 2^23 exponent: no int->float
 * conversion, exact. bias = 2^23 + offset. */
vec4 bytes4(uint m, float bias)
{
    return uintBitsToFloat(uvec4(m & 0xFFu, (m >> 8) & 0xFFu, (m >> 16) & 0xFFu, m >> 24) |
                           0x4B000000u) - bias;
}

void reduce_store(uint rbase)
{
    [[unroll]] for (uint i = 0; i < RPW * T; i++) {
        float v = subgroupAdd(acc[i]);
        if (subgroupElect() && gl_SubgroupID < NSG)
            red[i * NSG + gl_SubgroupID] = v;
    }
    barrier();
    for (uint i = gl_LocalInvocationID.x; i < RPW * T; i += WG) {
        float s = 0.0;
        for (uint g = 0; g < gl_NumSubgroups && g < NSG; g++)
            s += red[i * NSG + g];
        uint row = rbase + i / T;
        if (row < pc.rows)
            y[(i % T) * pc.ystride + pc.row0 + row] = s;
    }
}
